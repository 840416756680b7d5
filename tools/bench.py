"""Benchmarks: the figures the project's targets are stated in (not timed tests).

    make bench                      # everything
    .venv/bin/python tools/bench.py import mesh labs

- import:  wall time of `import labkit` in a fresh interpreter (target < 0.5 s)
- mesh:    simulated inbound requests per wall second on emojivoto with vote-bot at
           REQUEST_RATE=50 for 10 virtual minutes (target >= 50,000/s, stretch 200,000/s)
- labs:    all lab notebooks executed headlessly on the embedded mesh: total wall time
           (target < 60 s) and peak resident memory of any process (target < 1 GiB)
- flagger: wall time of a full canary promotion with the tutorial's Canary (target < 2 s)
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


def bench_mesh(rate: int = 50, minutes: int = 10) -> None:
    import labkit

    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply(emojivoto_at(rate))
    mesh.inject("deploy", namespace="emojivoto")
    mesh.wait("1m")
    plane = mesh.dataplane
    before = plane.inbound_requests
    start, cpu = time.perf_counter(), time.process_time()
    mesh.wait(f"{minutes}m")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = plane.inbound_requests - before
    print(f"embedded mesh: {n:,} inbound requests in {minutes} virtual min, {wall:.2f} s wall "
          f"= {n / wall:,.0f} requests/s (target >= 50,000, stretch 200,000); "
          f"{n / cpu:,.0f} per CPU second (the figure a busy machine cannot skew)")
    print(f"  series in store: {mesh.prometheus.store.series_count:,}, samples: {mesh.prometheus.store.sample_count:,}")


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


def main(argv: list[str]) -> int:
    os.environ.setdefault("LABKIT_HEADLESS", "1")  # no progress bars in the measurements
    which = argv[1:] or ["import", "mesh", "labs", "flagger"]
    for name in which:
        {"import": bench_import, "mesh": bench_mesh, "labs": bench_labs, "flagger": bench_flagger}[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
