"""The embedded Prometheus's scrape: series found by their label tuples' identity store what finding them by label
content stores, and what it remembers to do so stays bounded."""
from __future__ import annotations

from conftest import meshed_app
from labkit.sim.prometheus import Prometheus


def _store_after(mesh) -> str:
    mesh.wait("30s")
    mesh.patch("Deployment", "web", {"spec": {"replicas": 2}}, "emojivoto")
    mesh.wait("40s")
    mesh.patch("Deployment", "web", {"spec": {"replicas": 1}}, "emojivoto")  # a target goes: staleness markers
    mesh.wait("40s")
    store = mesh.prometheus.store
    return repr([(s.name, s.label_items, s.times_ms.tolist(), s.values.tolist()) for s in store._series])  # NaN too


def test_series_found_by_identity_store_what_finding_them_by_labels_stores(monkeypatch):
    remembered = _store_after(meshed_app("emojivoto", wait="10s"))
    scrape = Prometheus.scrape

    def forgetting(self):
        self._known.clear()  # every sample looked up by its labels' content
        self._known_size = 0
        scrape(self)

    monkeypatch.setattr(Prometheus, "scrape", forgetting)
    assert _store_after(meshed_app("emojivoto", wait="10s")) == remembered
    assert "nan]" in remembered  # the staleness markers were written


def test_what_the_scraper_remembers_stays_bounded():
    mesh = meshed_app("emojivoto", wait="10s")
    prom = mesh.prometheus
    sizes = []
    for _ in range(40):
        mesh.wait("10s")
        sizes.append(sum(len(by_id) for known in prom._known.values() for by_id in known.values()))
    series = prom.store.series_count
    assert max(sizes) <= 2 * series + 1000
    assert sizes[-1] == prom._known_size
