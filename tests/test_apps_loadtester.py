"""flagger-loadtester webhooks and the exec shell (curl, hey, watch, grep…)."""
from __future__ import annotations

import json

import yaml

from labkit.sim.apps.model import Request
from labkit.sim.apps.testing import MiniMesh

ACCEPTANCE = "curl -sd 'test' http://podinfo-canary:9898/token | grep token"
LOAD = "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"


def mesh(seed=0, podinfo_up=True):
    m = MiniMesh(seed)
    m.deploy("flagger-loadtester", {"name": "loadtester", "image": "ghcr.io/fluxcd/flagger-loadtester:0.38.0",
                                    "command": ["./loadtester", "-port=8080", "-log-level=info", "-timeout=1h"]})
    if podinfo_up:
        m.deploy("podinfo-canary", {"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.0.1"})
    return m


def webhook(m, metadata, name="podinfo", namespace="test"):
    payload = {"name": name, "namespace": namespace, "phase": "Progressing", "metadata": metadata}
    req = Request("POST", "/", "flagger-loadtester.test:80", body_bytes=len(json.dumps(payload)), body=payload)
    return m.apps["flagger-loadtester"].handle(req, m.ctxs["flagger-loadtester"])


def test_upstream_tester_deployment(upstream):
    doc = yaml.safe_load((upstream / "flagger" / "tester-deployment.yaml").read_text())
    m = MiniMesh()
    container = doc["spec"]["template"]["spec"]["containers"][0]
    app = m.deploy("flagger-loadtester", container)
    assert app.failure is None and app.ports == {8080: "http"}
    assert "Starting load tester v0.38.0 API on port 8080" in m.logs["flagger-loadtester"][0]
    out, code = app.run(container["readinessProbe"]["exec"]["command"], m.ctxs["flagger-loadtester"])
    assert code == 0


def test_default_port_is_9090():
    m = MiniMesh()
    assert m.deploy("lt", {"name": "lt", "image": "weaveworks/flagger-loadtester:0.9.0"}).ports == {9090: "http"}


def test_acceptance_test_passes_against_podinfo():
    m = mesh()
    r = webhook(m, {"type": "bash", "cmd": ACCEPTANCE})
    assert r.status == 200
    post = m.records[-1]
    assert (post.service, post.method, post.path, post.status) == ("podinfo-canary", "POST", "/token", 200)


def test_acceptance_test_fails_when_podinfo_unreachable():
    m = mesh(podinfo_up=False)
    r = webhook(m, {"type": "bash", "cmd": ACCEPTANCE})
    assert r.status == 500 and r.body.startswith(" exit status 1")
    assert any("command failed" in line for line in m.logs["flagger-loadtester"])


def test_load_test_webhook_runs_hey_in_background():
    m = mesh()
    r = webhook(m, {"cmd": LOAD})                                # type defaults to cmd
    assert r.status == 202
    m.run_for(90)
    load = m.served("podinfo-canary", source="flagger-loadtester")
    assert len(load) == 2 * 10 * 60                              # -c 2 × -q 10 for -z 1m
    ts = [x.t for x in load]
    assert min(ts) - m.records[0].t < 1 and max(ts) - min(ts) < 60.5
    window = [x for x in load if 20 <= x.t - ts[0] < 30]
    assert len(window) == 200                                     # 20 req/s
    logs = m.logs["flagger-loadtester"]
    assert any(f"command starting {LOAD}" in line for line in logs)
    assert any(f"command finished {LOAD}" in line for line in logs)


def test_load_test_is_not_started_twice_while_running():
    m = mesh()
    webhook(m, {"cmd": LOAD})
    m.run_for(30)
    assert webhook(m, {"cmd": LOAD}).status == 202
    m.run_for(10)
    assert any("command skipped" in line for line in m.logs["flagger-loadtester"])
    m.run_for(60)
    assert len(m.served("podinfo-canary", source="flagger-loadtester")) == 1200
    webhook(m, {"cmd": LOAD})                                     # after it finished: runs again
    m.run_for(70)
    assert len(m.served("podinfo-canary", source="flagger-loadtester")) == 2400


def test_task_timeout_stops_the_load():
    m = MiniMesh()
    m.deploy("flagger-loadtester", {"name": "lt", "image": "ghcr.io/fluxcd/flagger-loadtester:0.38.0",
                                    "command": ["./loadtester", "-port=8080", "-timeout=30s"]})
    m.deploy("podinfo-canary", {"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.0.1"})
    webhook(m, {"cmd": "hey -z 2m -q 10 -c 1 http://podinfo-canary:9898/"})
    m.run_for(200)
    assert 295 <= len(m.served("podinfo-canary")) <= 301
    assert any("context deadline exceeded" in line for line in m.logs["flagger-loadtester"])


def test_hey_follows_slow_responses():
    m = mesh()
    webhook(m, {"cmd": "hey -z 30s -q 10 -c 1 http://podinfo-canary:9898/delay/1"})
    m.run_for(60)
    n = len(m.served("podinfo-canary", source="flagger-loadtester"))
    assert 28 <= n <= 31                                          # one at a time, each taking 1 s


def test_bad_payloads():
    m = mesh()
    app = m.apps["flagger-loadtester"]
    assert app.handle(Request("POST", "/", "lt:80", body="not json"), m.ctxs["flagger-loadtester"]).status == 400
    r = webhook(m, {})
    assert r.status == 400 and r.body == "metadata not found in payload"
    r = webhook(m, {"type": "nope", "cmd": "x"})
    assert r.status == 400 and r.body == "unknown task type nope"


def test_gates():
    m = mesh()
    app, ctx = m.apps["flagger-loadtester"], m.ctxs["flagger-loadtester"]
    body = {"name": "podinfo", "namespace": "test"}
    check = lambda: app.handle(Request("POST", "/gate/check", "lt", body=body), ctx).status  # noqa: E731
    assert check() == 403
    assert app.handle(Request("POST", "/gate/open", "lt", body=body), ctx).status == 202
    assert check() == 200
    assert app.handle(Request("POST", "/gate/halt", "lt"), ctx).status == 403


# -- exec ------------------------------------------------------------------------------------------------

def exec_(m, *argv):
    return m.apps["flagger-loadtester"].exec(list(argv), m.ctxs["flagger-loadtester"])


def test_exec_curl_and_pipelines():
    m = mesh()
    out = exec_(m, "curl", "-s", "http://podinfo-canary.test:9898/")
    assert json.loads(out)["version"] == "6.0.1"
    assert exec_(m, "sh", "-c", ACCEPTANCE).strip().startswith('"token":')
    assert exec_(m, "sh", "-c", "curl -s -o /dev/null -w '%{http_code}' http://podinfo-canary:9898/status/500") == "500"
    out = exec_(m, "curl", "-sf", "http://podinfo-canary:9898/status/503")
    assert out == "command terminated with exit code 22\n"
    out = exec_(m, "curl", "http://nowhere:80/")
    assert out == "command terminated with exit code 0\n" or out == ""     # a 503 body-less answer
    out = exec_(m, "sh", "-c", "curl -s http://podinfo-canary:9898/token -d x | jq -r .token | wc -l")
    assert out.strip() == "1"
    assert exec_(m, "sh", "-c", "echo hello | grep -q hello && echo yes || echo no") == "yes\n"
    assert exec_(m, "sh", "-c", "echo hello | grep -q bye && echo yes || echo no") == "no\n"


def test_exec_unknown_command_and_loops():
    m = mesh()
    assert exec_(m, "frobnicate", "--x") == "sh: frobnicate: not found\ncommand terminated with exit code 127\n"
    assert "not modelled" in exec_(m, "sh", "-c", "while true; do curl podinfo:9898; done")


def test_exec_watch_repeats_until_stopped():
    m = mesh()
    out = exec_(m, "watch", "-n", "1", "curl", "http://podinfo-canary.test:9898/status/500")
    assert out.startswith("Every 1.0s: curl http://podinfo-canary.test:9898/status/500")
    assert '"status": 500' in out
    m.run_for(30)
    hits = m.served("podinfo-canary", path_prefix="/status/500")
    assert 28 <= len(hits) <= 31
    assert "watch" in exec_(m, "ps")
    assert exec_(m, "pkill", "watch") == ""
    m.run_for(30)
    assert len(m.served("podinfo-canary", path_prefix="/status/500")) == len(hits)


def test_exec_watch_is_bounded():
    m = mesh()
    exec_(m, "sh", "-c", "watch -n 1 curl http://podinfo-canary:9898/delay/1")
    m.run_for(3600)
    n = len(m.served("podinfo-canary", path_prefix="/delay/1"))
    assert 290 <= n <= 302                    # every 1 s + the 1 s response, for 10 virtual minutes


def test_exec_hey_background_summary_in_log():
    m = mesh()
    out = exec_(m, "hey", "-n", "100", "-c", "10", "http://podinfo-canary:9898/")
    assert "started on the virtual clock" in out
    m.run_for(5)
    log = "\n".join(m.logs["flagger-loadtester"])
    assert "Summary:" in log and "[200]\t100 responses" in log


def test_exec_hey_blocks_when_the_context_can_advance():
    m = mesh()
    app = m.apps["flagger-loadtester"]
    out = app.exec(["hey", "-z", "10s", "-q", "5", "-c", "2", "http://podinfo-canary:9898/status/500"],
                   m.blocking_ctx("flagger-loadtester"))
    assert "Summary:" in out and "[500]\t100 responses" in out
    assert abs(m.now - (1_700_000_000.0 + 10)) < 2


def test_hey_usage_errors():
    m = mesh()
    assert "command terminated with exit code" in exec_(m, "hey", "-n", "1", "-c", "2", "http://x/")
    assert "flag provided but not defined: -k" in exec_(m, "hey", "-k", "http://x/")


def test_distroless_images_have_no_shell():
    m = MiniMesh()
    app = m.deploy("ctl", {"name": "c", "image": "cr.l5d.io/linkerd/controller:stable-2.14.10"})
    out = app.exec(["sh"], m.ctxs["ctl"])
    assert 'exec: "sh": executable file not found in $PATH' in out
    assert app.handle(Request("GET", "/ready", "x:9995"), m.ctxs["ctl"]).status == 200


def test_shell_tokenizer_quoting_and_env():
    m = mesh()
    app = m.apps["flagger-loadtester"]
    app.env["GREETING"] = "hi there"
    assert exec_(m, "sh", "-c", 'echo "$GREETING" \'$GREETING\' ${GREETING:-x}') == "hi there $GREETING hi there\n"
    assert exec_(m, "sh", "-c", "echo a; echo b >/dev/null; echo c 2>&1") == "a\nc\n"
    assert exec_(m, "sh", "-c", "printf 'a\\nb\\nc\\n' | grep -c '[ab]'") == "2\n"
    assert exec_(m, "sh", "-c", "printf 'x1\\ny22\\n' | grep -E 'y[0-9]+'") == "y22\n"
    assert exec_(m, "sh", "-c", "false; echo $?") == "1\n"
