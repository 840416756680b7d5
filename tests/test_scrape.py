"""The embedded Prometheus's scrape: a pod's series taken again from its last scrape store what looking every
sample up by its labels stores, and what the scraper keeps per pod goes with the pod."""
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


def test_series_taken_from_the_last_scrape_store_what_looking_them_up_stores(monkeypatch):
    remembered = _store_after(meshed_app("emojivoto", wait="10s"))
    scrape = Prometheus.scrape

    def forgetting(self):
        self._plans.clear()  # every sample looked up by its labels
        scrape(self)

    monkeypatch.setattr(Prometheus, "scrape", forgetting)
    assert _store_after(meshed_app("emojivoto", wait="10s")) == remembered
    assert "nan]" in remembered  # the staleness markers were written


def test_the_scraper_keeps_series_only_for_the_pods_it_scrapes():
    mesh = meshed_app("emojivoto", wait="30s")
    prom = mesh.prometheus
    mesh.patch("Deployment", "web", {"spec": {"replicas": 3}}, "emojivoto")
    mesh.wait("40s")
    mesh.patch("Deployment", "web", {"spec": {"replicas": 1}}, "emojivoto")
    mesh.wait("40s")
    meshed = {p.uid for p in mesh.dataplane.pods.values() if p.proxy is not None}
    assert set(prom._plans) == meshed and len(meshed) >= 4
