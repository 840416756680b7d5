"""Benchmarks: the figures the project's targets are stated in (not timed tests).

    make bench                      # everything
    .venv/bin/python tools/bench.py import mesh labs

- import:  wall time of `import labkit` in a fresh interpreter (target < 0.5 s)
- mesh:    simulated inbound requests per wall second on emojivoto with vote-bot at
           REQUEST_RATE=50 for 10 virtual minutes (target >= 50,000/s, stretch 200,000/s)
- labs:    all lab notebooks executed headlessly on the embedded mesh: total wall time
           (target < 60 s) and peak resident memory of any process (target < 1 GiB)
- flagger: wall time of a full canary promotion with the tutorial's Canary (target < 2 s)
- promql:  instant queries per second of the `linkerd viz stat deploy` query set (requests, three latency
           quantiles, TCP connections, TCP bytes read/written) over a 1-hour, 500-series store
- apply:   wall time of applying the labs' apps (manifests/booksapp and manifests/emojivoto) to a fresh embedded
           mesh, and of `install_gateway_api()` + `install_linkerd()` (the same apply path: decoding against the
           OpenAPI, schema validation, admission); median of 5 runs each, mesh creation not counted
- crds:    the real CRDs and their CEL rules: `install_gateway_api()` + `install_linkerd()` wall time (first mesh
           of a process, which parses the CRD data, then later ones), and the CEL rules of a Gateway API HTTPRoute
           like the labs' (every schema node with rules, through labkit/sim/kube/cel.py): first time in a fresh
           process (interpreter import + compiling) and then per HTTPRoute
- serve:   the served API under load: 8 client threads x 20 s of mixed requests with the bearer token
           (list/get/create/patch/delete ConfigMaps, list pods as a table, read a Deployment's Scale, a clock
           advance, /version) on keep-alive connections; requests/s, p50/p99, status counts, 5xx (target 0)
           and writes lost (every acknowledged create is read back at the end; target 0)
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_import() -> None:
    runs = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", "import time; t=time.perf_counter(); import labkit; print(time.perf_counter()-t)"],
            capture_output=True, text=True, check=True,
        ).stdout
        runs.append(float(out))
    print(f"import labkit: median {statistics.median(runs) * 1000:.1f} ms over {len(runs)} runs (target < 500 ms)")


def emojivoto_at(rate: int) -> list[dict]:
    """The lab's emojivoto manifests with vote-bot's REQUEST_RATE set (a copy; manifests/ is untouched)."""
    import labkit.manifests as manifests

    docs = [d.obj for d in manifests.load("emojivoto")[0]]
    for doc in docs:
        if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == "vote-bot":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            env = [e for e in container.get("env", []) if e["name"] != "REQUEST_RATE"]
            container["env"] = env + [{"name": "REQUEST_RATE", "value": str(rate)}]
    return docs


def bench_mesh(rate: int = 50, minutes: int = 10, runs: int = 3) -> None:
    """``runs`` fresh meshes, each timed over ``minutes`` virtual minutes after a minute of warm-up; the median
    run is the figure (one run on a shared VM can be off by 15% either way). The timed window ends with a read of
    the Prometheus store, so counting or storing the model defers is paid inside it."""
    import labkit

    figures = []
    for _ in range(runs):
        mesh = labkit.connect()
        mesh.install_gateway_api()
        mesh.install_linkerd()
        mesh.wait("2m")
        mesh.apply(emojivoto_at(rate))
        mesh.inject("deploy", namespace="emojivoto")
        mesh.wait("1m")
        plane, store = mesh.dataplane, mesh.prometheus.store
        before = plane.inbound_requests
        start, cpu = time.perf_counter(), time.process_time()
        mesh.wait(f"{minutes}m")
        samples = store.sample_count
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        n = plane.inbound_requests - before
        figures.append((n / wall, n / cpu, n, wall))
    by_wall = sorted(figures)
    rate_wall, rate_cpu, n, wall = by_wall[len(by_wall) // 2]
    print(f"embedded mesh: {n:,} inbound requests in {minutes} virtual min, {wall:.2f} s wall "
          f"= {rate_wall:,.0f} requests/s, median of {runs} runs (target >= 50,000, stretch 200,000); "
          f"{rate_cpu:,.0f} per CPU second; all runs: {', '.join(f'{f[0]:,.0f}' for f in figures)}")
    print(f"  series in store: {store.series_count:,}, samples: {samples:,}")


def bench_labs() -> None:
    start = time.perf_counter()
    code = "from labkit.runner import run_labs; import sys; sys.exit(0 if all(r.ok for r in run_labs(out='build/bench-labs', html=False)) else 1)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    status = "all complete" if proc.returncode == 0 else "SOME LABS FAILED"
    print(f"labs headless: {wall:.1f} s total (target < 60 s), peak RSS of any process {peak_kib / 1024:.0f} MiB "
          f"(target < 1024 MiB); {status}")


def bench_flagger(runs: int = 5) -> None:
    """Wall time of one full canary promotion: the tutorial's Canary (interval 30s, threshold 5, maxWeight 50,
    stepWeight 5) on Flagger's upstream podinfo + loadtester, from `set image` to phase Succeeded."""
    from labkit.sim.flagger import playground as pg

    upstream = ROOT.parent / "shared" / "upstream" / "flagger"
    walls, setups, virtual = [], [], 0.0
    for seed in range(runs):
        start = time.perf_counter()
        mesh = pg.prepare(seed, upstream=str(upstream) if upstream.is_dir() else None)
        setups.append(time.perf_counter() - start)
        t0 = mesh.clock.t
        start = time.perf_counter()
        pg.release(mesh)
        mesh.wait_for(pg.finished, timeout="1h", every="10s")
        walls.append(time.perf_counter() - start)
        virtual = mesh.clock.t - t0
        assert mesh.canary("podinfo", "test")["status"]["phase"] == "Succeeded"
    print(f"flagger: full promotion (tutorial Canary, {virtual / 60:.1f} virtual min) median "
          f"{statistics.median(walls):.2f} s wall, max {max(walls):.2f} s over {runs} seeds (target < 2 s); "
          f"setup (Linkerd + viz + Flagger + podinfo, initialized) median {statistics.median(setups):.2f} s")


def stat_store(series: int = 500, hours: float = 1.0, scrape: int = 10):
    """A deterministic store shaped like linkerd-viz's scrape of meshed pods: exactly ``series`` series.

    Per pod: response_total (success/failure), 26 response_latency_ms buckets,
    tcp_open_connections and tcp_read/write_bytes_total (31 series); pods are
    added across deployments until the count is reached (the last pod partial).
    """
    import random

    from labkit.sim.store import SeriesStore

    bounds = ["1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200", "300", "400", "500",
              "1000", "2000", "3000", "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf"]
    rng = random.Random(16)
    plan = []  # (name, labels, kind)
    pod = 0
    while len(plan) < series:
        deploy = f"app-{pod // 2}"
        base = {"namespace": "bench", "deployment": deploy, "pod": f"{deploy}-{pod % 2}", "direction": "inbound",
                "tls": "true"}
        plan += [("response_total", {**base, "classification": c}, "counter") for c in ("success", "failure")]
        plan += [("response_latency_ms_bucket", {**base, "le": le}, "bucket") for le in bounds]
        plan.append(("tcp_open_connections", {**base, "peer": "src"}, "gauge"))
        plan += [(f"tcp_{d}_bytes_total", {**base, "peer": "src"}, "counter") for d in ("read", "write")]
        pod += 1
    plan = plan[:series]
    store = SeriesStore()
    totals = [0.0] * len(plan)
    steps = int(hours * 3600 / scrape)
    for i in range(steps + 1):
        t = 1_700_000_000 + i * scrape
        for j, (name, labels, kind) in enumerate(plan):
            if kind == "gauge":
                value = float(rng.randint(0, 20))
            else:
                totals[j] += rng.randint(0, 50) * (1 + bounds.index(labels["le"]) if kind == "bucket" else 1)
                value = totals[j]
            store.append(name, labels, t, value)
    return store, 1_700_000_000 + steps * scrape


def bench_promql(seconds: float = 5.0) -> None:
    """Instant queries per second for the viz ``stat deploy`` query set at times spread over the hour."""
    from labkit.metrics import promql, queries

    store, end = stat_store()
    labels, group = {"namespace": "bench"}, ["namespace", "deployment"]
    query_set = [queries.stat_requests(labels, group, "1m")]
    query_set += [queries.stat_latency(q, labels, group, "1m") for q in queries.STAT_QUANTILES]
    query_set += [queries.stat_tcp_connections(labels, group)]
    query_set += [queries.stat_tcp_bytes(d, labels, group, "1m") for d in ("read", "write")]
    for q in query_set:  # warm the compile cache; check the set answers something
        assert promql.instant(q, store, end), q
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        at = end - (n * 37) % 3000
        for q in query_set:
            promql.instant(q, store, at)
        n += len(query_set)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"promql: viz stat query set ({len(query_set)} queries) over {store.series_count} series x 1 h "
          f"({store.sample_count:,} samples): {n / wall:,.0f} instant queries/s; "
          f"{n / cpu:,.0f} per CPU second (the figure a busy machine cannot skew)")


def bench_serve(threads: int = 8, seconds: float = 20.0, tls: bool = False) -> None:
    import http.client
    import json
    import random
    import threading

    import labkit

    mesh = labkit.connect("sim", seed=0)
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply("emojivoto")
    mesh.wait("1m")
    served = mesh.serve(pace=0)
    auth = {"Authorization": f"Bearer {served.token}"}
    context = None
    if tls:
        from labkit.sim.serve.tls import client_context

        context = client_context(served.certificate)
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    created: list[str] = []
    deleted: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        rng = random.Random(n)
        conn = (http.client.HTTPSConnection(served.host, served.port, context=context, timeout=30) if tls
                else http.client.HTTPConnection(served.host, served.port, timeout=30))
        mine: list[str] = []
        i = 0
        while time.monotonic() < stop:
            i += 1
            roll = rng.random()
            name = f"load-{n}-{i}"
            if roll < 0.25:
                req = ("POST", "/api/v1/namespaces/default/configmaps",
                       {"metadata": {"name": name}, "data": {"n": str(i)}})
            elif roll < 0.35 and mine:
                req = ("PATCH", f"/api/v1/namespaces/default/configmaps/{rng.choice(mine)}", {"data": {"p": str(i)}})
            elif roll < 0.42 and mine:
                req = ("DELETE", f"/api/v1/namespaces/default/configmaps/{mine.pop(rng.randrange(len(mine)))}", None)
            elif roll < 0.60:
                req = ("GET", "/api/v1/namespaces/default/configmaps", None)
            elif roll < 0.75:
                req = ("GET", "/api/v1/namespaces/emojivoto/pods", None)
            elif roll < 0.85:
                req = ("GET", "/apis/apps/v1/namespaces/emojivoto/deployments/web/scale", None)
            elif roll < 0.90:
                req = ("POST", "/labkit/v1/clock", {"advance": 1})
            else:
                req = ("GET", "/version", None)
            method, path, body = req
            headers = dict(auth)
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = ("application/merge-patch+json" if method == "PATCH"
                                           else "application/json")
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                resp.read()
                code = resp.status
            except Exception as exc:  # noqa: BLE001 - counted: a dropped connection is a failure here
                with lock:
                    errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                conn.close()
                continue
            took = time.perf_counter() - t0
            if method == "POST" and path.endswith("configmaps") and code == 201:
                mine.append(name)
                with lock:
                    created.append(name)
            if method == "DELETE" and code == 200:
                with lock:
                    deleted.append(path.rsplit("/", 1)[1])
            with lock:
                latencies.append(took)
                statuses[code] = statuses.get(code, 0) + 1
        conn.close()

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    with served.lock:
        present = {c["metadata"]["name"] for c in mesh.cluster.list("ConfigMap", "default")}
    served.close()
    lost = sorted(set(created) - set(deleted) - present)
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    n = len(latencies)
    fivexx = sum(v for k, v in statuses.items() if k >= 500)
    print(f"served API load ({'HTTPS' if tls else 'HTTP'}, token): {threads} threads x {seconds:g} s: {n:,} requests "
          f"in {wall:.1f} s = {n / wall:,.0f} req/s; p50 {q(0.50):.1f} ms, p99 {q(0.99):.1f} ms, max {q(1.0):.0f} ms")
    print(f"  statuses {dict(sorted(statuses.items()))}; 5xx: {fivexx} (target 0); dropped connections: "
          f"{len(errors)} (target 0); creates acknowledged {len(created):,}, deleted {len(deleted):,}, "
          f"lost {len(lost)} (target 0); server-side errors logged: {len(served.errors)}")


def bench_apply(runs: int = 5) -> None:
    import labkit

    def timed(step) -> float:
        out = []
        for _ in range(runs):
            mesh = labkit.connect("sim", seed=0)
            started = time.perf_counter()
            step(mesh)
            out.append(time.perf_counter() - started)
        return statistics.median(out)

    apps = timed(lambda m: (m.apply("booksapp"), m.apply("emojivoto")))
    install = timed(lambda m: (m.install_gateway_api(), m.install_linkerd()))
    print(f"apply booksapp + emojivoto: median {apps * 1000:.1f} ms; install_gateway_api + install_linkerd: median "
          f"{install * 1000:.1f} ms (over {runs} runs)")
#: An HTTPRoute like the labs' (a weighted split with a header filter and a timeout), checked by bench_crds.
ROUTE = {"parentRefs": [{"group": "core", "kind": "Service", "name": "books", "port": 7002}],
         "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/books"}}],
                    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-lab", "value": "4"}]}}],
                    "backendRefs": [{"group": "", "kind": "Service", "name": "books", "port": 7002, "weight": 9},
                                    {"group": "", "kind": "Service", "name": "error-injector", "port": 7002, "weight": 1}],
                    "timeouts": {"request": "10s"}},
                   {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"group": "", "kind": "Service", "name": "books", "port": 7002, "weight": 1}]}]}


def _httproute_schema() -> dict:
    from labkit.sim.kube import crds

    global _SCHEMA
    if _SCHEMA is None:
        crd = next(c for c in crds.crds(crds.GATEWAY_API) if c["spec"]["names"]["kind"] == "HTTPRoute")
        _SCHEMA = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    return _SCHEMA


_SCHEMA = None


def check_route_rules(spec: dict = ROUTE) -> int:
    """Evaluate every CEL rule an HTTPRoute's spec meets (as the schema validator does); the number of rule nodes."""
    from labkit.sim.kube import cel

    schema = _httproute_schema()
    nodes = 0

    def walk(value, node, path):
        nonlocal nodes
        if isinstance(value, dict):
            for key, item in value.items():
                if key in (node.get("properties") or {}):
                    walk(item, node["properties"][key], f"{path}.{key}")
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for i, item in enumerate(value):
                walk(item, node["items"], f"{path}[{i}]")
        if node.get("x-kubernetes-validations"):
            nodes += 1
            errors = cel.check_rules(node["x-kubernetes-validations"], value, path, schema=node)
            assert not errors, errors

    walk(spec, schema["properties"]["spec"], "spec")
    return nodes


def bench_crds(runs: int = 5) -> None:
    import labkit

    first = []
    for _ in range(3):  # fresh processes: the first mesh parses the CRD data
        out = subprocess.run([sys.executable, "-c", (
            "import time, labkit; m = labkit.connect(); t = time.perf_counter(); m.install_gateway_api(); "
            "u = time.perf_counter(); m.install_linkerd(); print(u - t, time.perf_counter() - u)")],
            capture_output=True, text=True, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
        first.append([float(x) for x in out.split()])
    later = []
    for seed in range(runs):
        mesh = labkit.connect(seed=seed)
        t = time.perf_counter()
        mesh.install_gateway_api()
        u = time.perf_counter()
        mesh.install_linkerd()
        later.append((u - t, time.perf_counter() - u))
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"install_gateway_api(): first mesh {ms([g for g, _ in first]):.1f} ms, later {ms([g for g, _ in later]):.1f} ms; "
          f"install_linkerd(): first {ms([l for _, l in first]):.1f} ms, later {ms([l for _, l in later]):.1f} ms (medians)")
    cold = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", (
            "import sys, time; sys.path.insert(0, 'tools'); import bench; t = time.perf_counter(); "
            "bench.check_route_rules(); print(time.perf_counter() - t)")],
            capture_output=True, text=True, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
        cold.append(float(out))
    nodes = check_route_rules()
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        check_route_rules()
    warm = (time.perf_counter() - t) / n
    print(f"CEL rules of one HTTPRoute ({nodes} schema nodes with rules): first in a process {ms(cold):.0f} ms "
          f"(CEL interpreter import + compiling), then {warm * 1000:.2f} ms per HTTPRoute")


def main(argv: list[str]) -> int:
    os.environ.setdefault("LABKIT_HEADLESS", "1")  # no progress bars in the measurements
    which = argv[1:] or ["import", "mesh", "labs", "flagger", "promql"]
    benches = {"import": bench_import, "mesh": bench_mesh, "labs": bench_labs, "flagger": bench_flagger,
               "promql": bench_promql, "apply": bench_apply, "crds": bench_crds, "serve": bench_serve,
               "serve-tls": lambda: bench_serve(tls=True)}
    for name in which:
        benches[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
