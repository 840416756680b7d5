"""linkerd-viz's Prometheus in the embedded mesh (foundation version: not scraping yet)."""
from __future__ import annotations


class Prometheus:
    def __init__(self, cluster, dataplane, clock):
        self.cluster, self.dataplane, self.clock = cluster, dataplane, clock

    def ensure_started(self) -> None:
        """Schedule the scrape loop once (nothing to scrape in the foundation)."""
