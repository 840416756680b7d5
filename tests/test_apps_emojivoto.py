"""Emojivoto's behaviour models: the failing doughnut, the bot's mix, the web routes."""
from __future__ import annotations

import re

import pytest
import yaml

from labkit.sim.apps import emojivoto
from labkit.sim.apps.testing import MiniMesh

WEB = "ghcr.io/buoyantio/emojivoto-web:{tag}"


def _web(tag="v11", **env):
    base = {"WEB_PORT": "8080", "EMOJISVC_HOST": "emoji-svc.emojivoto:8080",
            "VOTINGSVC_HOST": "voting-svc.emojivoto:8080", "INDEX_BUNDLE": "dist/index_bundle.js"}
    base.update(env)
    return {"name": "web-svc", "image": WEB.format(tag=tag),
            "env": [{"name": k, "value": v} for k, v in base.items()], "ports": [{"containerPort": 8080}]}


def _svc(kind, tag="v11", **env):
    base = {"GRPC_PORT": "8080", "PROM_PORT": "8801"}
    base.update(env)
    return {"name": kind, "image": f"ghcr.io/buoyantio/emojivoto-{kind}:{tag}",
            "env": [{"name": k, "value": v} for k, v in base.items()]}


def _bot(tag="v11", **env):
    base = {"WEB_HOST": "web-svc.emojivoto:80"}
    base.update(env)
    return {"name": "vote-bot", "image": WEB.format(tag=tag), "command": ["emojivoto-vote-bot"],
            "env": [{"name": k, "value": v} for k, v in base.items() if v is not None]}


def stack(tag="v11", bot=True, seed=0, voting_env=None, bot_env=None):
    m = MiniMesh(seed)
    m.deploy("emoji-svc", _svc("emoji-svc", tag))
    m.deploy("voting-svc", _svc("voting-svc", tag, **(voting_env or {})))
    m.deploy("web-svc", _web(tag))
    if bot:
        m.deploy("vote-bot", _bot(tag, **(bot_env or {})))
    return m


def vote(m, choice):
    return m.ctxs["vote-bot"].call("web-svc.emojivoto:80", "GET", f"/api/vote?choice={choice}") \
        if "vote-bot" in m.ctxs else m.dispatch("test", "web-svc:80", "GET", f"/api/vote?choice={choice}",
                                                False, None, 0, None)


def test_emoji_list_is_the_99_of_emoji_svc():
    assert len(emojivoto.SHORTCODES) == 99 == len(set(emojivoto.SHORTCODES))
    assert emojivoto.SHORTCODES[2] == ":doughnut:"
    assert emojivoto.SHORTCODES[-1] == ":poop:"


def test_vote_methods_are_the_protos(upstream):
    proto = (upstream / "emojivoto" / "Voting.proto").read_text()
    rpcs = set(re.findall(r"rpc (Vote\w+) \(", proto))
    derived = {p.rsplit("/", 1)[1] for p in emojivoto.VOTE_PATH.values()}
    assert len(rpcs) == 100       # the 99 listed emoji + :relaxed: (in the proto and web's switch, not the list)
    assert derived == rpcs
    assert emojivoto.VOTE_PATH[":doughnut:"] == "/emojivoto.v1.VotingService/VoteDoughnut"


@pytest.mark.parametrize("tag", ["v8", "v10", "v11"])
def test_vote_doughnut_always_fails_up_to_v11(tag):
    m = stack(tag, bot=False)
    voting = m.apps["voting-svc"]
    for _ in range(200):
        r = voting.handle(emojivoto_request("VoteDoughnut"), m.ctxs["voting-svc"])
        assert r.status == 200 and r.grpc_status == 2
    r = voting.handle(emojivoto_request("VoteJoy"), m.ctxs["voting-svc"])
    assert r.status == 200 and r.grpc_status == 0


def emojivoto_request(method):
    from labkit.sim.apps.model import Request
    return Request("POST", f"/emojivoto.v1.VotingService/{method}", "voting-svc.emojivoto:8080", grpc=True)


def test_vote_doughnut_v12_fails_only_with_failure_rate():
    m = stack("v12", bot=False)
    voting = m.apps["voting-svc"]
    assert all(voting.handle(emojivoto_request("VoteDoughnut"), m.ctxs["voting-svc"]).grpc_status == 0
               for _ in range(500))
    m = stack("v12", bot=False, voting_env={"FAILURE_RATE": "0.3"})
    voting = m.apps["voting-svc"]
    fails = sum(voting.handle(emojivoto_request("VoteDoughnut"), m.ctxs["voting-svc"]).grpc_status == 2
                for _ in range(4000))
    assert 0.26 < fails / 4000 < 0.34


def test_failure_rate_is_ignored_before_v12():
    m = stack("v11", bot=False, voting_env={"FAILURE_RATE": "0"})
    r = m.apps["voting-svc"].handle(emojivoto_request("VoteDoughnut"), m.ctxs["voting-svc"])
    assert r.grpc_status == 2


def test_artificial_delay_v12():
    m = stack("v12", bot=False, voting_env={"ARTIFICIAL_DELAY": "250ms"})
    r = m.apps["voting-svc"].handle(emojivoto_request("VoteJoy"), m.ctxs["voting-svc"])
    assert r.latency_ms >= 250


def test_web_vote_route_statuses():
    m = stack(bot=False)
    call = lambda path: m.dispatch("test", "web-svc:80", "GET", path, False, None, 0, None)  # noqa: E731
    empty = call("/api/vote?choice=")
    assert empty.status == 400 and "is mandatory" in empty.body
    unknown = call("/api/vote?choice=:unicorn:")
    assert unknown.status == 400 and "doesnt exist" in unknown.body
    d = call("/api/vote?choice=:doughnut:")
    assert d.status == 500
    assert d.body.strip() == '{"error": "rpc error: code = Unknown desc = ERROR"}'
    ok = call("/api/vote?choice=:joy:")
    assert ok.status == 200
    # the vote path went web → emoji FindByShortcode → voting VoteJoy
    last = [(r.service, r.path) for r in m.records[-3:]]
    assert last == [("emoji-svc", "/emojivoto.v1.EmojiService/FindByShortcode"),
                    ("voting-svc", "/emojivoto.v1.VotingService/VoteJoy"), ("web-svc", "/api/vote?choice=:joy:")]
    lst = call("/api/list")
    assert lst.status == 200 and ":doughnut:" in lst.body and lst.length == len(lst.body.encode())
    assert call("/anything").status == 200          # Go's ServeMux "/" catch-all: the index page


def test_leaderboard_calls_find_per_result():
    m = stack(bot=False)
    for c in (":joy:", ":joy:", ":pizza:"):
        m.dispatch("test", "web-svc:80", "GET", f"/api/vote?choice={c}", False, None, 0, None)
    n = len(m.records)
    r = m.dispatch("test", "web-svc:80", "GET", "/api/leaderboard", False, None, 0, None)
    assert r.status == 200
    assert r.body.index(":joy:") < r.body.index(":pizza:")
    finds = [x for x in m.records[n:] if x.path.endswith("FindByShortcode")]
    assert len(finds) == 2


def test_grpc_failure_reaches_web_as_500():
    m = stack(bot=False)
    m.down.add("emoji-svc")
    r = m.dispatch("test", "web-svc:80", "GET", "/api/list", False, None, 0, None)
    assert r.status == 500 and "Unavailable" in r.body


def test_vote_bot_mix_and_doughnut_share():
    m = stack(seed=3)
    m.run_for(3000)
    bot = m.served("web-svc", source="vote-bot")
    lists = [r for r in bot if r.path == "/api/list"]
    votes = [r for r in bot if r.path.startswith("/api/vote?choice=")]
    assert abs(len(lists) - len(votes)) <= 1
    assert 2900 < len(lists) < 3000              # one iteration per second plus request time
    share = sum(r.path.endswith(":doughnut:") for r in votes) / len(votes)
    assert 0.14 < share < 0.18                   # 0.15 + 0.85/99 ≈ 0.159
    assert m.logs["vote-bot"][0].startswith("✔ Voting for :")


def test_tutorial_rates_and_success():
    """web ≈ 92% at ≈ 2 rps, voting ≈ 84% at ≈ 1 rps, emoji 100% at ≈ 2 rps."""
    m = stack(seed=1)
    m.run_for(1200)
    web, voting, emoji = (m.served(s) for s in ("web-svc", "voting-svc", "emoji-svc"))
    assert 1.9 < len(web) / 1200 < 2.01 and 1.9 < len(emoji) / 1200 < 2.01 and 0.95 < len(voting) / 1200 < 1.01
    assert 0.89 < MiniMesh.success(web) < 0.95
    assert 0.80 < MiniMesh.success(voting) < 0.88
    assert MiniMesh.success(emoji) == 1.0
    lat = sorted(r.latency_ms for r in web)
    assert 0.5 < lat[len(lat) // 2] < 5 and lat[int(len(lat) * 0.99)] < 12


def test_request_rate_scales_the_bot():
    m = stack(bot_env={"REQUEST_RATE": "50"})
    m.run_for(60)
    votes = [r for r in m.served("web-svc", source="vote-bot") if r.path.startswith("/api/vote")]
    assert 2500 < len(votes) < 3000              # 50/s minus the requests' own time


def test_host_override_and_web_host():
    m = stack(bot_env={"HOST_OVERRIDE": "emoji.example"})
    seen = []
    orig = m.apps["web-svc"].handle
    m.apps["web-svc"].handle = lambda req, ctx: (seen.append((req.authority, req.headers)), orig(req, ctx))[1]
    m.run_for(2)
    assert seen[0] == ("web-svc.emojivoto:80", {"host": "emoji.example"})


def test_missing_env_is_a_crash_with_the_binarys_message():
    m = MiniMesh()
    bot = m.deploy("vote-bot", _bot(WEB_HOST=None))
    assert bot.failure == "WEB_HOST environment variable must me set"
    m.run_for(10)
    assert not m.records
    web = m.deploy("web-svc", {"name": "web", "image": WEB.format(tag="v11"), "env": []})
    assert web.failure.startswith("WEB_PORT (currently []) EMOJISVC_HOST")
    svc = m.deploy("emoji-svc", {"name": "emoji", "image": "ghcr.io/buoyantio/emojivoto-emoji-svc:v11"})
    assert "GRPC_PORT" in svc.failure


def test_web_port_comes_from_env():
    m = MiniMesh()
    web = m.deploy("web-svc", _web(WEB_PORT="9090"))
    assert web.ports == {9090: "http"}
    svc = m.deploy("voting-svc", _svc("voting-svc", GRPC_PORT="7070"))
    assert svc.ports == {7070: "grpc", 8801: "http"}


def test_upstream_manifests_build_unchanged(upstream):
    m = MiniMesh()
    names = {"emoji": "emoji-svc", "voting": "voting-svc", "web": "web-svc", "vote-bot": "vote-bot"}
    for f in ("emoji", "voting", "web", "vote-bot"):
        for doc in yaml.safe_load_all((upstream / "emojivoto" / f"{f}.yml").read_text()):
            if doc and doc["kind"] == "Deployment":
                pod = {"metadata": {"name": f"{f}-abc", "namespace": "emojivoto",
                                    "labels": doc["spec"]["template"]["metadata"]["labels"]},
                       "spec": doc["spec"]["template"]["spec"]}
                app = m.deploy(names[f], pod["spec"]["containers"][0], pod=pod)
                assert app.failure is None
    assert type(m.apps["vote-bot"]).__name__ == "VoteBot"
    m.run_for(120)
    assert 0.85 < MiniMesh.success(m.served("web-svc")) < 0.98
