"""Running the linkerd CLI from the kube backend, and the served stand-in's output in the real CLI formats.

The parsers themselves are tested on the CLI's golden outputs in
test_linkerd_cli.py; here: finding the binary (and the clear error when it is
missing), exit codes, the inject report, and that what the served mesh's
stand-in prints has the real formats' shape (reference/linkerd-formats.md §2)
and parses back to the embedded mesh's own tables.
"""
from __future__ import annotations

import json
import math
import os
import stat
import subprocess

import pytest

from labkit.kube import linkerd_cli
from conftest import meshed_app


def fake_cli(tmp_path, body: str) -> str:
    path = tmp_path / "linkerd"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_missing_cli_is_a_clear_error_naming_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.delenv("LABKIT_LINKERD", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(linkerd_cli.LinkerdCLIError) as err:
        linkerd_cli.find_linkerd(None)
    msg = str(err.value)
    assert "not found on PATH" in msg and "https://run.linkerd.io/install-edge" in msg and "LABKIT_LINKERD" in msg


def test_where_the_cli_is_found(monkeypatch, tmp_path):
    real = fake_cli(tmp_path, "echo real")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("LABKIT_LINKERD", raising=False)
    assert linkerd_cli.find_linkerd(None) == [real]
    stand_in = fake_cli(tmp_path / "..", "echo stand-in")
    # a served embedded mesh's own stand-in wins over PATH: a real CLI cannot talk to it
    assert linkerd_cli.find_linkerd({"linkerd": stand_in}) == [stand_in]
    monkeypatch.setenv("LABKIT_LINKERD", f"{real} --verbose")
    assert linkerd_cli.find_linkerd({"linkerd": stand_in}) == [real, "--verbose"]
    monkeypatch.setenv("LABKIT_LINKERD", str(tmp_path / "nope"))
    with pytest.raises(linkerd_cli.LinkerdCLIError, match="does not name a runnable linkerd"):
        linkerd_cli.find_linkerd(None)


def test_run_passes_the_context_and_reports_failures_with_stderr(tmp_path):
    cli = fake_cli(tmp_path, 'echo "args: $*"; [ "$3" = "check" ] && { echo "× failed" >&2; exit 1; }; exit 0')
    out, err, code = linkerd_cli.run([cli], ["version"], context="kind-labs")
    assert out == "args: --context kind-labs version\n" and code == 0
    out, err, code = linkerd_cli.run([cli], ["check"], context="kind-labs", ok_codes=(0, 1))
    assert code == 1 and "× failed" in err
    with pytest.raises(linkerd_cli.LinkerdCLIError, match=r"`linkerd check` failed \(exit 1\): × failed"):
        linkerd_cli.run([cli], ["check"], context="kind-labs")
    slow = fake_cli(tmp_path, "sleep 5")
    with pytest.raises(linkerd_cli.LinkerdCLIError, match="did not finish within 0.5s"):
        linkerd_cli.run([slow], ["check"], context="x", timeout=0.5)


def test_inject_report_lines():
    report = '\n‼ "linkerd.io/inject: disabled" annotation set on deployment/web\n\ndeployment "web" skipped\n\n'
    assert linkerd_cli.report_lines(report) == ['‼ "linkerd.io/inject: disabled" annotation set on deployment/web',
                                                'deployment "web" skipped']


@pytest.fixture(scope="module")
def served_mesh():
    pytest.importorskip("kubernetes")
    from labkit.sim.serve import serve

    mesh = meshed_app("emojivoto", wait="3m")
    s = serve(mesh, pace=0)
    yield mesh, s
    s.close()


def run(s, *args):
    out = subprocess.run([s.linkerd, "--context", s.context, "--kubeconfig", s.kubeconfig, *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_stat_json_has_the_real_shape_and_parses_back_to_the_same_table(served_mesh):
    mesh, s = served_mesh
    text = run(s, "viz", "stat", "deploy", "-n", "emojivoto", "-o", "json")
    entries = json.loads(text)
    assert text.startswith("[\n  {\n")  # an indented array, like json.MarshalIndent
    assert set(entries[0]) == {"namespace", "kind", "name", "success", "rps", "latency_ms_p50", "latency_ms_p95",
                               "latency_ms_p99", "tcp_open_connections", "tcp_read_bytes_rate", "tcp_write_bytes_rate"}
    assert "meshed" not in entries[0]  # the real JSON has no MESHED count
    assert all(e["tcp_read_bytes_rate"] > 0 and e["tcp_write_bytes_rate"] > 0 for e in entries if e["success"] is not None)
    with s.lock:
        table = mesh.stat("deploy", namespace="emojivoto")
        meshed = dict(zip(table["NAME"], table["MESHED"]))
    parsed = linkerd_cli.parse_stat_json(text, "deploy", meshed)
    for (_, a), (_, b) in zip(table.iterrows(), parsed.iterrows()):
        assert a["NAME"] == b["NAME"] and a["MESHED"] == b["MESHED"]
        for col in ("SUCCESS", "LATENCY_P99"):
            assert (math.isnan(a[col]) and math.isnan(b[col])) or math.isclose(a[col], b[col])
        assert (math.isnan(a["RPS"]) and b["RPS"] == 0) or math.isclose(a["RPS"], b["RPS"])


def test_tap_json_events_have_the_real_shape(served_mesh):
    mesh, s = served_mesh
    proc = subprocess.Popen([s.linkerd, "--context", s.context, "--kubeconfig", s.kubeconfig, "viz", "tap",
                             "deploy/web", "-n", "emojivoto", "-o", "json"], stdout=subprocess.PIPE, text=True)
    import urllib.request

    for _ in range(200):
        taps = json.load(urllib.request.urlopen(urllib.request.Request(
            s.url + "/labkit/v1/taps", headers={"Authorization": f"Bearer {s.token}"})))["taps"]
        if taps:
            break
        import time

        time.sleep(0.02)
    with s.lock:
        mesh.wait("2s")
    urllib.request.urlopen(urllib.request.Request(f"{s.url}/labkit/v1/taps/{taps[0]['id']}/stop", method="POST",
                                                  headers={"Authorization": f"Bearer {s.token}"}))
    out, _ = proc.communicate(timeout=30)
    events = list(linkerd_cli.iter_json_documents(out))
    assert out.startswith("{\n  \"source\": {\n")  # indented objects back to back, not an array
    kinds = {next(k for k in e if k.endswith("Event")) for e in events}
    assert kinds == {"requestInitEvent", "responseInitEvent", "responseEndEvent"}
    req = next(e for e in events if "requestInitEvent" in e)
    assert set(req) == {"source", "destination", "routeMeta", "proxyDirection", "requestInitEvent"}
    assert req["proxyDirection"] in ("INBOUND", "OUTBOUND") and set(req["source"]) == {"ip", "port", "metadata"}
    assert set(req["requestInitEvent"]["id"]) == {"base", "stream"}
    assert {e["requestInitEvent"]["scheme"] for e in events if "requestInitEvent" in e} == {"HTTP"}
    grpc_req = next(e for e in events if "requestInitEvent" in e and e["requestInitEvent"]["headers"])
    assert {"name": "te", "valueStr": "trailers"} in grpc_req["requestInitEvent"]["headers"]
    end = next(e for e in events if "responseEndEvent" in e)["responseEndEvent"]
    assert {"sinceRequestInit", "sinceResponseInit", "responseBytes", "grpcStatusCode"} <= set(end)
    table = linkerd_cli.parse_tap_json(out)
    assert set(table["type"]) == {"req", "rsp", "end"}
    assert "grpc_status" in table and set(table["grpc_status"].dropna()) <= {"OK", "Unknown"}


def test_check_json_documents_parse_back_to_the_embedded_report(served_mesh):
    mesh, s = served_mesh
    out = subprocess.run([s.linkerd, "--context", s.context, "--kubeconfig", s.kubeconfig, "check", "-o", "json"],
                         capture_output=True, text=True, timeout=60).stdout
    with s.lock:
        report = mesh.check()
    assert str(linkerd_cli.parse_check_json(out)) == str(report)
    table = subprocess.run([s.linkerd, "--context", s.context, "--kubeconfig", s.kubeconfig, "check"],
                           capture_output=True, text=True, timeout=60).stdout
    assert table == str(report)
    assert str(linkerd_cli.parse_check_text(table)) == str(report)


@pytest.mark.skipif(not os.environ.get("LABKIT_CONTEXT"), reason="needs a real cluster: set LABKIT_CONTEXT")
@pytest.mark.cluster
def test_the_real_cli_answers_check_pre_in_json():
    cli = linkerd_cli.find_linkerd(None)
    out, _, _ = linkerd_cli.run(cli, ["check", "--pre", "-o", "json"], context=os.environ["LABKIT_CONTEXT"],
                                ok_codes=(0, 1))
    report = linkerd_cli.parse_check_json(out)
    assert report.categories[0][0] == "kubernetes-api"
