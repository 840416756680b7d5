"""podinfo and nginx behaviour models."""
from __future__ import annotations

import json

import pytest
import yaml

from labkit.sim.apps.model import Request
from labkit.sim.apps.testing import MiniMesh


def podinfo(image="ghcr.io/stefanprodan/podinfo:6.0.0", command=None, env=None, m=None, name="podinfo"):
    m = m or MiniMesh()
    c = {"name": "podinfod", "image": image}
    if command is not None:
        c["command"] = command
    if env:
        c["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return m, m.deploy(name, c)


def get(m, target, path, method="GET", headers=None, body=None):
    return m.dispatch("test", target, method, path, False, headers, 0, body)


@pytest.mark.parametrize("image,version", [("quay.io/stefanprodan/podinfo:1.7.1", "1.7.1"),
                                           ("ghcr.io/stefanprodan/podinfo:6.0.3", "6.0.3"),
                                           ("stefanprodan/podinfo:3.1.0", "3.1.0")])
def test_version_from_tag(image, version):
    m, app = podinfo(image)
    info = json.loads(get(m, "podinfo:9898", "/").body)
    assert info["version"] == version and info["message"] == f"greetings from podinfo v{version}"
    assert info["hostname"] == "podinfo-5d8f9c7b6-x2x4z"
    assert json.loads(get(m, "podinfo:9898", "/version").body)["version"] == version
    assert app.name == f"podinfo:{version}"


def test_ui_color_env_and_flag_precedence():
    m, _ = podinfo(env={"PODINFO_UI_COLOR": "#34577c"})
    assert json.loads(get(m, "podinfo:9898", "/api/info").body)["color"] == "#34577c"
    m, _ = podinfo(env={"PODINFO_UI_COLOR": "#34577c"}, command=["./podinfo", "--ui-color=#ff0000"])
    assert json.loads(get(m, "podinfo:9898", "/").body)["color"] == "#ff0000"


def test_ports_from_flags(upstream):
    doc = yaml.safe_load((upstream / "flagger" / "podinfo-deployment.yaml").read_text())
    m = MiniMesh()
    app = m.deploy("podinfo", doc["spec"]["template"]["spec"]["containers"][0])
    assert app.failure is None
    assert app.ports == {9898: "http", 9797: "http", 9999: "grpc"}
    assert json.loads(get(m, "podinfo:9898", "/").body)["color"] == "#34577c"
    # the exec probes the manifest declares
    probe = doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    out, code = app.run(probe, m.ctxs["podinfo"])
    assert code == 0 and "check succeed" in out


def test_status_delay_token():
    m, _ = podinfo("quay.io/stefanprodan/podinfo:1.7.2")
    r = get(m, "podinfo:9898", "/status/500")
    assert r.status == 500 and json.loads(r.body) == {"status": 500}
    assert get(m, "podinfo:9898", "/status/404").status == 404
    r = get(m, "podinfo.test:9898", "/delay/1")
    assert r.status == 200 and r.latency_ms >= 1000 and json.loads(r.body) == {"delay": 1}
    assert get(m, "podinfo:9898", "/delay/3").latency_ms >= 3000
    r = get(m, "podinfo:9898", "/token", method="POST", body="test")
    tok = json.loads(r.body)
    assert r.status == 200 and tok["token"].count(".") == 2 and "expires_at" in tok
    r = get(m, "podinfo:9898", "/token/validate", headers={"Authorization": f"Bearer {tok['token']}"})
    assert r.status == 200 and json.loads(r.body)["token_name"] == "test"
    assert get(m, "podinfo:9898", "/token").status == 405          # GET on a POST route
    assert get(m, "podinfo:9898", "/nope").status == 404
    assert get(m, "podinfo:9898", "/healthz").status == 200 and get(m, "podinfo:9898", "/readyz").status == 200


def test_default_latency_is_a_few_ms():
    m, _ = podinfo()
    lat = sorted(get(m, "podinfo:9898", "/").latency_ms for _ in range(2000))
    assert 0.8 < lat[1000] < 3.5 and lat[1900] < 5


def test_random_error_flag():
    m, _ = podinfo(command=["./podinfo", "--random-error=true"])
    codes = [get(m, "podinfo:9898", "/").status for _ in range(3000)]
    bad = sum(c != 200 for c in codes) / len(codes)
    assert 0.28 < bad < 0.39 and set(codes) <= {200, 500, 400, 409}
    m, _ = podinfo(command=["./podinfo", "--random-error=false"])
    assert all(get(m, "podinfo:9898", "/").status == 200 for _ in range(300))


def test_unready_flag_and_readyz_toggle():
    m, app = podinfo(command=["./podinfo", "--unready"])
    assert get(m, "podinfo:9898", "/readyz").status == 503
    assert get(m, "podinfo:9898", "/readyz/enable", method="POST").status == 202
    assert get(m, "podinfo:9898", "/readyz").status == 200


def test_podinfo_versions_outside_range_refused():
    from labkit.sim.apps import UnknownImageError, check_image
    with pytest.raises(UnknownImageError, match="1.x–6.x"):
        check_image("ghcr.io/stefanprodan/podinfo:7.0.0")


# -- nginx ---------------------------------------------------------------------------------------------

INJECTOR_CONF = "events {\n    worker_connections  1024;\n}\nhttp {\n    server {\n        location / {\n            return 500;\n        }\n    }\n}\n"


def injector(conf=INJECTOR_CONF, with_cm=True, m=None):
    m = m or MiniMesh()
    container = {"name": "nginx", "image": "nginx:alpine", "ports": [{"containerPort": 80, "name": "nginx"}],
                 "volumeMounts": [{"name": "nginx-config", "mountPath": "/etc/nginx/nginx.conf",
                                   "subPath": "nginx.conf"}]}
    pod = {"metadata": {"name": "error-injector-1", "namespace": "booksapp"},
           "spec": {"containers": [container],
                    "volumes": [{"name": "nginx-config", "configMap": {"name": "error-injector-config"}}]}}
    objects = {("ConfigMap", "error-injector-config"): {"data": {"nginx.conf": conf}}} if with_cm else {}
    return m, m.deploy("error-injector", container, pod=pod, objects=objects)


def test_error_injector_returns_500_from_its_configmap():
    m, app = injector()
    assert app.failure is None and app.ports == {80: "http"}     # no `listen`: nginx's default port
    rs = [get(m, "error-injector:7002", p) for p in ("/", "/books.json", "/books/12.json")]
    assert {r.status for r in rs} == {500}
    assert "<h1>500 Internal Server Error</h1>" in rs[0].body
    lat = sorted(get(m, "error-injector:7002", "/books.json").latency_ms for _ in range(500))
    assert lat[250] < 1.5                                       # ≈ 1 ms


def test_nginx_reads_listen_and_return_text():
    conf = "events {}\nhttp { server { listen 8080; location = /x { return 200 'hi'; } location / { return 404; } } }"
    m, app = injector(conf)
    assert app.ports == {8080: "http"}
    assert get(m, "error-injector:8080", "/x").body == "hi"
    assert get(m, "error-injector:8080", "/y").status == 404


def test_nginx_proxy_pass_goes_through_the_mesh():
    m, _ = podinfo()
    conf = "events {}\nhttp { server { listen 8080; location / { proxy_pass http://podinfo:9898; } } }"
    _, app = injector(conf, m=m)
    r = get(m, "error-injector:8080", "/status/503")
    assert r.status == 503
    assert [x.service for x in m.records[-2:]] == ["podinfo", "error-injector"]
    m.down.add("podinfo")
    assert get(m, "error-injector:8080", "/").status == 503      # the proxy's own 503 passes through


def test_nginx_missing_configmap_or_bad_config_fails():
    _, app = injector(with_cm=False)
    assert 'configmap "error-injector-config" not found' in app.failure
    _, app = injector("events {}\nhttp { server { location / { return 500; }")
    assert app.failure.startswith("nginx: [emerg] unexpected end of file")
    _, app = injector("http { server { location / { return 500; } } }")
    assert app.failure == 'nginx: [emerg] no "events" section in configuration'


def test_nginx_default_config_serves_welcome_page():
    m = MiniMesh()
    app = m.deploy("web", {"name": "nginx", "image": "nginx:1.25-alpine"})
    assert app.ports == {80: "http"}
    assert "Welcome to nginx!" in get(m, "web:80", "/").body
    r = get(m, "web:80", "/missing")
    assert r.status == 404 and "nginx/1.25" in r.body


def test_nginx_location_precedence():
    conf = ("events {}\nhttp { server {\n location / { return 200 'prefix-root'; }\n"
            " location /api { return 200 'prefix-api'; }\n location ~ \\.json$ { return 200 'regex'; }\n"
            " location ^~ /static { return 200 'static'; }\n location = /api { return 200 'exact'; } } }")
    m, _ = injector(conf)
    assert [get(m, "error-injector:80", p).body for p in ("/api", "/api/x", "/api/x.json", "/static/a.json", "/z")] == \
        ["exact", "prefix-api", "regex", "static", "prefix-root"]


def test_flagger_frontend_conf_d_mount():
    conf = "server { listen 8080; location / { proxy_pass http://podinfo:9898; } }"
    m, _ = podinfo()
    container = {"name": "nginx", "image": "nginx:alpine",
                 "volumeMounts": [{"name": "cfg", "mountPath": "/etc/nginx/conf.d"}]}
    pod = {"metadata": {"name": "frontend-1", "namespace": "test"},
           "spec": {"containers": [container], "volumes": [{"name": "cfg", "configMap": {"name": "frontend"}}]}}
    app = m.deploy("frontend", container, pod=pod, objects={("ConfigMap", "frontend"): {"data": {"default.conf": conf}}})
    assert app.ports == {8080: "http"}
    assert json.loads(get(m, "frontend:8080", "/").body)["version"] == "6.0.0"


def test_request_struct_for_direct_handle():
    m, app = injector()
    r = app.handle(Request("GET", "/", "error-injector:7002"), m.ctxs["error-injector"])
    assert r.status == 500
