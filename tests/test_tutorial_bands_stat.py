"""The tutorials' numbers, reproduced from the UPSTREAM manifests (unchanged) by simulated traffic.

Bands are wide enough for a 5-minute window at a few requests per second and
tight enough to catch a broken model (references: labs.md §5.4 for emojivoto:
web ≈ 92% at ≈ 2 rps, voting ≈ 84% at ≈ 1 rps, emoji 100% at ≈ 2 rps;
§2.3 for the books app: webapp ≈ 77%).
"""
import pytest

import labkit
from conftest import meshed_app


def _row(table, name):
    rows = table[table["NAME"] == name]
    assert len(rows) == 1, f"no stat row for {name}: {list(table['NAME'])}"
    return rows.iloc[0]


def _meshed(upstream, seed=0):
    return meshed_app(upstream / "emojivoto" / "ns.yml", upstream / "emojivoto", seed=seed, wait="5m")


@pytest.fixture(scope="module")
def emojivoto(upstream):
    return _meshed(upstream)


def test_emojivoto_matches_the_tutorial(emojivoto):
    stat = emojivoto.stat("deploy", namespace="emojivoto", window="5m")
    web, voting, emoji = _row(stat, "web"), _row(stat, "voting"), _row(stat, "emoji")
    assert 0.88 <= web["SUCCESS"] <= 0.95 and 1.8 <= web["RPS"] <= 2.2
    assert 0.78 <= voting["SUCCESS"] <= 0.90 and 0.9 <= voting["RPS"] <= 1.1
    assert emoji["SUCCESS"] == 1.0 and 1.8 <= emoji["RPS"] <= 2.2
    assert all(stat["MESHED"] == "1/1")


def test_stat_is_computed_from_the_scraped_series(emojivoto):
    """stat's SUCCESS is exactly what the viz query gives on the store (nothing computed beside it)."""
    frame = emojivoto.query('sum(increase(response_total{direction="inbound", namespace="emojivoto", '
                            'deployment="voting"}[1m])) by (classification)')
    counts = {r["classification"]: round(r["value"]) for r in frame.to_dict("records")}
    stat = _row(emojivoto.stat("deploy/voting", namespace="emojivoto"), "voting")
    assert stat["SUCCESS"] == pytest.approx(counts["success"] / (counts["success"] + counts["failure"]))


def test_same_seed_same_table_other_seed_other_table(upstream, emojivoto):
    text = labkit.cli_text(emojivoto.stat("deploy", namespace="emojivoto"))
    assert labkit.cli_text(_meshed(upstream, seed=0).stat("deploy", namespace="emojivoto")) == text
    assert labkit.cli_text(_meshed(upstream, seed=1).stat("deploy", namespace="emojivoto")) != text


def test_unmeshed_pods_have_no_linkerd_metrics(upstream):
    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply(upstream / "emojivoto" / "ns.yml")
    mesh.apply(upstream / "emojivoto")
    mesh.wait("3m")
    assert mesh.query('sum(request_total{namespace="emojivoto"})').empty
    assert len(mesh.stat("deploy", namespace="emojivoto")) == 0  # viz stat hides unmeshed workloads


def test_meshed_client_to_unmeshed_server_counts_outbound_only(upstream):
    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply(upstream / "emojivoto" / "ns.yml")
    mesh.apply(upstream / "emojivoto")
    mesh.inject("deploy", namespace="emojivoto", name="web")
    mesh.wait("3m")
    outbound = mesh.query('sum(increase(response_total{direction="outbound", deployment="web"}[1m])) by (dst_deployment, tls)')
    rows = {r["dst_deployment"]: r for r in outbound.to_dict("records")}
    assert set(rows) == {"emoji", "voting"} and all(r["tls"] == "no_identity" for r in rows.values())
    inbound = mesh.query('sum(increase(response_total{direction="inbound", namespace="emojivoto"}[1m])) by (deployment)')
    assert list(inbound["deployment"]) == ["web"]  # emoji and voting have no proxy to count anything


def test_books_app_webapp_is_about_77_percent(upstream):
    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "booksapp"}})
    mesh.apply(upstream / "booksapp" / "booksapp.yml", namespace="booksapp")
    mesh.inject("deploy", namespace="booksapp")
    mesh.wait("6m")
    stat = mesh.stat("deploy", namespace="booksapp", window="5m")
    webapp = _row(stat, "webapp")
    assert 0.70 <= webapp["SUCCESS"] <= 0.84
    assert webapp["MESHED"] == "3/3"
    assert _row(stat, "authors")["SUCCESS"] < 0.95  # HEAD /authors/{id}.json fails half the time
