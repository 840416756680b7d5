"""The books app's behaviour models and its traffic generator."""
from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from labkit.sim.apps.model import Request, Response
from labkit.sim.apps.testing import MiniMesh

IMAGE = "ghcr.io/buoyantio/booksapp:v0.0.5"


def _c(role, **env):
    return {"name": "service", "image": IMAGE, "args": [f"prod:{role}"],
            "env": [{"name": k, "value": v} for k, v in env.items()]}


def stack(failure_rate: str | None = "0.5", seed=0, traffic_args=("-initial-delay=30s", "webapp:7000")):
    m = MiniMesh(seed)
    authors_env = {"DATABASE_URL": "sqlite3:db/db.sqlite3", "BOOKS_SITE": "http://books:7002"}
    if failure_rate is not None:
        authors_env["FAILURE_RATE"] = failure_rate
    m.deploy("authors", _c("authors", **authors_env))
    m.deploy("books", _c("books", DATABASE_URL="sqlite3:db/db.sqlite3", AUTHORS_SITE="http://authors:7001"))
    m.deploy("webapp", _c("webapp", DATABASE_URL="sqlite3:db/db.sqlite3", AUTHORS_SITE="http://authors:7001",
                          BOOKS_SITE="http://books:7002"))
    if traffic_args is not None:
        m.deploy("traffic", {"name": "traffic", "image": "ghcr.io/buoyantio/booksapp-traffic:v0.0.3",
                             "args": list(traffic_args)})
    return m


def call(m, method, path, body=None):
    return m.dispatch("test", "webapp:7000", method, path, False, {"host": "webapp:7000"}, 0, body)


def test_roles_and_ports_from_args():
    m = stack(traffic_args=None)
    assert [m.apps[n].ports for n in ("webapp", "authors", "books")] == [{7000: "http"}, {7001: "http"}, {7002: "http"}]
    bad = m.deploy("x", {"name": "x", "image": IMAGE})
    assert "Don't know how to build task" in bad.failure


def test_head_authors_fails_at_failure_rate():
    for rate in ("0.5", "0.2"):
        m = stack(rate, traffic_args=None)
        authors, ctx = m.apps["authors"], m.ctxs["authors"]
        codes = Counter(authors.handle(Request("HEAD", "/authors/3.json", "authors:7001"), ctx).status
                        for _ in range(5000))
        assert set(codes) == {200, 503}
        assert abs(codes[503] / 5000 - float(rate)) < 0.03
        gets = Counter(authors.handle(Request("GET", "/authors/3.json", "authors:7001"), ctx).status
                       for _ in range(500))
        assert gets == {200: 500}                 # only HEAD requests are failed


def test_failure_rate_unset_means_no_failures():
    m = stack(None, traffic_args=None)
    authors, ctx = m.apps["authors"], m.ctxs["authors"]
    assert all(authors.handle(Request("HEAD", "/authors/3.json", "authors:7001"), ctx).status == 200
               for _ in range(2000))


def test_book_create_500_propagates_from_authors_503():
    m = stack("1.0", traffic_args=None)
    r = call(m, "POST", "/books", "author_id=1&pages=10&title=X")
    assert r.status == 500 and r.body == "<h1>Internal Server Error</h1>" and r.length == 30
    chain = [(x.service, x.method, x.path, x.status) for x in m.records[-3:]]
    assert chain == [("authors", "HEAD", "/authors/1.json", 503), ("books", "POST", "/books.json", 500),
                     ("webapp", "POST", "/books", 500)]
    m = stack("0", traffic_args=None)
    r = call(m, "POST", "/books", "author_id=1&pages=10&title=X")
    assert r.status == 303 and re.fullmatch(r"http://webapp:7000/books/\d+", r.headers["location"])


def test_crud_with_real_ids_and_cascading_author_delete():
    m = stack("0", traffic_args=None)
    r = call(m, "POST", "/authors", "first_name=Ernest&last_name=Cline")
    assert r.status == 303
    aid = int(r.headers["location"].rsplit("/", 1)[1])
    assert aid == 11                                             # after the 10 seeded authors
    assert call(m, "POST", "/authors", "first_name=Ernest&last_name=Cline").headers["location"].endswith("/")
    b1 = call(m, "POST", "/books", f"author_id={aid}&pages=345&title=Ready+Player+One").headers["location"]
    b2 = call(m, "POST", "/books", f"author_id={aid}&pages=456&title=Ready+Player+Two").headers["location"]
    assert int(b2.rsplit("/", 1)[1]) == int(b1.rsplit("/", 1)[1]) + 1
    assert m.apps["books"].rows[int(b1.rsplit("/", 1)[1])]["title"] == "Ready Player One"
    n = len(m.records)
    assert call(m, "POST", f"/authors/{aid}/delete").status == 303
    hops = [(x.service, x.method, re.sub(r"\d+", "N", x.path)) for x in m.records[n:]]
    assert hops == [("books", "GET", "/books.json?author_id=N"), ("books", "DELETE", "/books/N.json"),
                    ("books", "DELETE", "/books/N.json"), ("authors", "DELETE", "/authors/N.json"),
                    ("webapp", "POST", "/authors/N/delete")]
    assert aid not in m.apps["authors"].rows
    assert call(m, "GET", f"/authors/{aid}").status == 302       # rescue_not_found → redirect "/"


def test_index_calls_books_and_authors():
    m = stack("0", traffic_args=None)
    r = call(m, "GET", "/")
    assert r.status == 200 and "Dear Life" in r.body
    assert [(x.service, x.path) for x in m.records[-3:-1]] == [
        ("books", "/books.json?order=lower%28title%29"), ("authors", "/authors.json?order=lower%28last_name%29")]


def test_traffic_waits_initial_delay_then_resets():
    m = stack()
    m.run_for(29.9)
    assert not m.served("webapp")
    m.run_for(0.2)
    first = m.served("webapp")[0]
    assert (first.method, first.path, first.status) == ("GET", "/reset", 204)


def test_traffic_sleep_flag_sets_the_pace():
    fast, slow = stack(traffic_args=("-initial-delay=0s", "-sleep=50ms", "webapp:7000")), \
        stack(traffic_args=("-initial-delay", "0s", "-sleep", "500ms", "webapp:7000"))
    for m in (fast, slow):
        m.run_for(120)
    assert len(fast.served("webapp")) > 4 * len(slow.served("webapp"))


def test_traffic_retries_posts_until_303():
    m = stack("0.5", seed=5)
    m.run_for(300)
    posts = [r for r in m.served("webapp") if r.method == "POST"]
    # a failed POST is always followed by the same POST again
    seq = m.served("webapp")
    for a, b in zip(seq, seq[1:]):
        if a.method == "POST" and a.status != 303:
            assert (b.method, b.path) == (a.method, a.path)
    failed = [r for r in posts if r.status == 500]
    assert failed and all(re.fullmatch(r"/books(/\d+/edit)?", r.path) for r in failed)


def test_webapp_success_about_77_percent():
    m = stack("0.5", seed=2)
    m.run_for(630)
    web = m.served("webapp", since=m.now - 600)
    assert len(web) > 3000
    assert 0.72 < MiniMesh.success(web) < 0.82
    lat = sorted(r.latency_ms for r in web)
    p50, p95, p99 = (lat[int(len(lat) * q)] for q in (0.5, 0.95, 0.99))
    assert 12 < p50 < 30 and 60 < p95 < 100 and 80 < p99 < 130
    head = m.served("authors", source="books", method="HEAD")
    assert 0.45 < MiniMesh.success(head) < 0.55
    put = [r.latency_ms for r in m.served("books", method="PUT")]
    post = [r.latency_ms for r in m.served("books", method="POST")]
    assert sorted(put)[len(put) // 2] > 2.5 * sorted(post)[len(post) // 2]   # PUT is the slow one (~70 ms)


def test_webapp_all_success_without_failure_rate():
    m = stack(None, seed=2)
    m.run_for(300)
    assert MiniMesh.success(m.served("webapp")) == 1.0
    assert MiniMesh.success(m.served("books")) == 1.0


def test_traffic_get_errors_are_logged_and_retried():
    m = stack(traffic_args=("-initial-delay=1s", "webapp:7000"))
    m.apps["webapp"].handle = lambda req, ctx: Response(0, 1.0, error="connection refused")
    m.run_for(5)
    logs = m.logs["traffic"]
    assert len(logs) > 10 and all(line.startswith("ERR\tGET\thttp://webapp:7000/reset") for line in logs)


def test_traffic_exits_on_a_post_connection_error_and_starts_over():
    m = stack(traffic_args=("-initial-delay=1s", "webapp:7000"))
    real = m.apps["webapp"].handle
    m.apps["webapp"].handle = lambda req, ctx: (Response(0, 1.0, error="connection reset by peer")
                                                if req.method == "POST" else real(req, ctx))
    m.run_for(20)
    logs = m.logs["traffic"]
    assert "Failed to create author: connection reset by peer" in logs
    resets = [r for r in m.served("webapp") if r.path == "/reset"]
    assert len(resets) == 2 and resets[1].t - resets[0].t > 10      # restart: backoff + initial delay again


def test_bad_traffic_args_fail_like_go_flag():
    m = MiniMesh()
    t = m.deploy("traffic", {"name": "t", "image": "buoyantio/booksapp-traffic:v0.0.3", "args": ["-bogus=1", "x:1"]})
    assert t.failure == "flag provided but not defined: -bogus"
    t = m.deploy("traffic2", {"name": "t", "image": "buoyantio/booksapp-traffic:v0.0.3", "args": []})
    assert t.failure.startswith("Usage: simulate-traffic")


def test_upstream_manifest_unchanged(upstream):
    m = MiniMesh(4)
    for doc in yaml.safe_load_all((upstream / "booksapp" / "booksapp.yml").read_text()):
        if doc and doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            pod = {"metadata": {"name": doc["metadata"]["name"] + "-abc", "namespace": "booksapp"}, "spec": spec}
            app = m.deploy(doc["metadata"]["name"], spec["containers"][0], pod=pod)
            assert app.failure is None
    assert m.apps["authors"].failure_rate == 0.5 and m.apps["books"].failure_rate is None
    m.run_for(400)
    assert 0.70 < MiniMesh.success(m.served("webapp", since=m.now - 360)) < 0.84


@pytest.mark.parametrize("tag", ["v0.0.3", "v0.0.4", "v0.0.5"])
def test_versions_accepted(tag):
    m = MiniMesh()
    assert m.deploy("books", {"name": "b", "image": f"buoyantio/booksapp:{tag}", "args": ["prod:books"]}).ports == {7002: "http"}
