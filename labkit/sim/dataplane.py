"""The embedded mesh's data plane (foundation version: no traffic yet)."""
from __future__ import annotations


class DataPlane:
    def __init__(self, cluster, clock, seed: int = 0):
        self.cluster, self.clock, self.seed = cluster, clock, seed

    def sync(self) -> None:
        """Start traffic for pods that became ready (nothing runs yet in the foundation)."""
