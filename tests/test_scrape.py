"""The embedded Prometheus's scrape: a pod's series taken again from its last scrape store what looking every
sample up by its labels stores, and what the scraper keeps per pod goes with the pod."""
from __future__ import annotations

from conftest import meshed_app
from labkit.sim.linkerd import proxy as lp
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


def _store_bytes(mesh) -> list:
    return [(s.name, s.label_items, s.times_ms.tobytes(), s.values.tobytes()) for s in mesh.prometheus.store.select(None)]


def test_layouts_store_what_the_plain_scrape_stores_through_every_change(monkeypatch):
    """The mesh changed under traffic (a second endpoint, a probe route, an authorization policy refusing
    requests, retries and timeouts, ServiceProfile routes, a rolling restart, a pod leaving the mesh): scraping
    by layouts stores, to the bit, what scraping every sample on its own stores, and at every scrape each proxy's
    layout and values are its plain exposition's."""
    from test_dataplane_fast_path import _changing_mesh

    layouts = []
    read = lp.Proxy.scrape_columns

    def checked(self):
        layout, parts = read(self)
        plain = self.samples()
        assert list(zip(layout.names, layout.labels)) == [(name, labels) for name, labels, _ in plain]
        assert [(type(v), v) for v in layout.values(parts)] == [(type(v), v) for _, _, v in plain]
        layouts.append(layout)
        return layout, parts

    monkeypatch.setattr(lp.Proxy, "scrape_columns", checked)
    mesh = meshed_app("emojivoto", wait="30s")
    fast = _changing_mesh(mesh)
    fast_store = _store_bytes(mesh)
    distinct = len({id(layout) for layout in layouts})
    assert distinct > 20 and len(layouts) > 5 * distinct  # layouts changed, and were reused far more often

    monkeypatch.setattr(Prometheus, "plain", True)
    read_by_layouts = len(layouts)
    mesh = meshed_app("emojivoto", wait="30s")
    plain = _changing_mesh(mesh)
    assert len(layouts) == read_by_layouts  # the plain scrape reads no layout
    assert fast == plain  # every proxy's exposition at every step, and the store
    assert fast_store == _store_bytes(mesh)
