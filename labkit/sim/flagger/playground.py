"""The canary playground: one Flagger analysis on a fresh embedded mesh, with the parameters you choose.

:func:`prepare` builds the Lab 3 cluster (Linkerd + viz, Flagger, podinfo and
the loadtester in ``test``, the tutorial's Canary with your analysis
settings) and waits for Flagger's ``Initialization done!``;
:func:`run` then releases a new podinfo version whose behaviour you choose
and lets Flagger analyse it to the end:

* ``error_rate``: the share of the canary's requests that fail with a 500 —
  produced the way the lab produces them, by the loadtester calling
  ``/status/500`` on ``podinfo-canary`` next to its ``hey`` load (a second
  rollout webhook with ``hey -q`` sized to give that share);
* ``latency_ms``: extra latency of the new version, with podinfo's own fault
  injection (``--random-delay --random-delay-unit=ms``, each request delayed
  uniformly between half and one and a half times the value).

Nothing is precomputed: every run is a real run of the model — requests
through the proxies, Prometheus scrapes and Flagger's PromQL — so the
outcome (promoted or rolled back, and when) is what Flagger decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The load test's own rate (``hey -q 10 -c 2``: two workers at 10 req/s).
LOAD_RPS = 20.0
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.1"


def canary_manifest(*, interval: str = "30s", threshold: int = 5, max_weight: int = 50, step_weight: int = 5,
                    iterations: int = 0, success_rate: float = 99.0, max_latency_ms: float = 500.0,
                    success_interval: str = "1m", latency_interval: str = "30s", error_rate: float = 0.0,
                    load_duration: str = "2m", skip_analysis: bool = False) -> dict:
    """The tutorial's Canary (manifests/podinfo/flagger/canary.yml) with these analysis settings."""
    analysis: dict[str, Any] = {"interval": interval, "threshold": int(threshold)}
    if iterations:
        analysis["iterations"] = int(iterations)
    else:
        analysis["maxWeight"] = int(max_weight)
        analysis["stepWeight"] = int(step_weight)
    analysis["metrics"] = [
        {"name": "request-success-rate", "thresholdRange": {"min": success_rate}, "interval": success_interval},
        {"name": "request-duration", "thresholdRange": {"max": max_latency_ms}, "interval": latency_interval},
    ]
    webhooks = [
        {"name": "acceptance-test", "type": "pre-rollout", "url": "http://flagger-loadtester.test/", "timeout": "30s",
         "metadata": {"type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token"}},
        {"name": "load-test", "type": "rollout", "url": "http://flagger-loadtester.test/",
         "metadata": {"cmd": f"hey -z {load_duration} -q 10 -c 2 http://podinfo-canary.test:9898/"}},
    ]
    if error_rate > 0:
        q = LOAD_RPS * error_rate / (1.0 - error_rate) if error_rate < 1 else 100.0
        webhooks.append({"name": "faults", "type": "rollout", "url": "http://flagger-loadtester.test/",
                         "metadata": {"cmd": f"hey -z {load_duration} -q {q:.3g} -c 1 "
                                             "http://podinfo-canary.test:9898/status/500"}})
    analysis["webhooks"] = webhooks
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "autoscalerRef": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"},
        "progressDeadlineSeconds": 60,
        "service": {"port": 9898, "targetPort": 9898},
        "analysis": analysis,
    }
    if skip_analysis:
        spec["skipAnalysis"] = True
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": spec}


def prepare(seed: int = 0, *, provider: str = "linkerd", canary: dict | None = None, upstream: str | None = None):
    """A fresh embedded mesh running Lab 3's setup, the Canary initialized; returns the mesh.

    ``upstream`` is a folder with Flagger's own podinfo and loadtester manifests
    (applied unchanged into ``test``); by default the project's ``manifests/podinfo``.
    """
    import labkit

    mesh = labkit.connect("sim", seed=seed)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=True)
    mesh.wait_for(lambda m: m.cluster.control_plane().get("viz", False), timeout="5m", every="5s")
    mesh.install_flagger(provider=provider)
    if upstream is None:
        for name in ("podinfo/00-namespace.yml", "podinfo/loadtester.yml", "podinfo/podinfo.yml"):
            mesh.apply(name)
    else:
        mesh.apply("podinfo/00-namespace.yml")
        mesh.apply(upstream, namespace="test")
    mesh.wait_for(lambda m: "successfully rolled out" in m.rollout_status("podinfo", "test")
                  and "successfully rolled out" in m.rollout_status("flagger-loadtester", "test"),
                  timeout="5m", every="5s")
    mesh.apply([canary or canary_manifest()])
    mesh.wait_for(lambda m: (m.canary("podinfo", "test").get("status") or {}).get("phase") == "Initialized",
                  timeout="10m", every="5s")
    return mesh


def release(mesh, image: str = NEW_IMAGE, latency_ms: float = 0.0) -> None:
    """``kubectl set image`` to a new podinfo version; with ``latency_ms``, podinfo's random delay on."""
    if latency_ms > 0:
        low, high = max(1, int(round(latency_ms * 0.5))), max(2, int(round(latency_ms * 1.5)))
        containers = mesh.get("deploy", "podinfo", "test")["spec"]["template"]["spec"]["containers"]
        podinfod = containers[0]
        command = [a for a in podinfod.get("command") or ["./podinfo"] if not a.startswith("--random-delay")]
        podinfod["command"] = command + ["--random-delay=true", "--random-delay-unit=ms",
                                         f"--random-delay-min={low}", f"--random-delay-max={high}"]
        podinfod["image"] = image
        # a JSON merge patch replaces the whole list: send every container, as kubectl edit would
        mesh.patch("deploy", "podinfo", {"spec": {"template": {"spec": {"containers": containers}}}}, namespace="test")
    else:
        mesh.set_image("podinfo", f"podinfod={image}", namespace="test")


def finished(mesh) -> bool:
    return (mesh.canary("podinfo", "test").get("status") or {}).get("phase") in ("Succeeded", "Failed")


@dataclass
class PlaygroundResult:
    """What Flagger decided for one playground run."""

    params: dict
    outcome: str                   # "promoted", "rolled back" or "still analysing"
    phase: str
    seconds: float                 # virtual time from the release to the outcome
    intervals: int                 # analysis intervals from the tick that saw the new revision to the outcome
    failed_checks: int             # the most failed checks counted during the analysis
    history: Any = None            # labkit.canary.history(...) of this run
    events: Any = None             # Flagger's events of this run, in order
    mesh: Any = field(default=None, repr=False)

    def summary(self) -> str:
        p = self.params
        head = (f"stepWeight {p['step_weight']}, maxWeight {p['max_weight']}, interval {p['interval']}, "
                f"threshold {p['threshold']}; new version: {p['error_rate']:.1%} errors, "
                f"+{p['latency_ms']:g} ms latency")
        minutes, secs = divmod(int(round(self.seconds)), 60)
        verdict = {"promoted": "PROMOTED", "rolled back": "ROLLED BACK"}.get(self.outcome, self.outcome.upper())
        return (f"{head}\n→ {verdict} after {minutes}m{secs:02d}s ({self.intervals} intervals), "
                f"at most {self.failed_checks} failed check(s)")

    def __str__(self) -> str:
        return self.summary()

    def plot(self, title: str | None = None):
        from labkit import canary

        return canary.plot(self.mesh, "podinfo", "test", title=title or self.summary(),  # two lines: it fits the figure
                           since=self.history["time"].iloc[0] if self.history is not None and len(self.history) else None)


def run(*, step_weight: int = 5, max_weight: int = 50, interval: str = "30s", threshold: int = 5,
        error_rate: float = 0.0, latency_ms: float = 0.0, seed: int = 0, timeout: str = "2h",
        max_latency_ms: float = 500.0, success_rate: float = 99.0, steady_traffic: bool = False) -> PlaygroundResult:
    """One real run: prepare a mesh, release the new version, let Flagger finish, report.

    ``steady_traffic`` adds what users give a real canary: a client calling it once a second all along, not only
    the load test Flagger's webhooks start (whose gaps leave some windows with no canary traffic at all).
    """
    from labkit import canary as public
    from labkit.durations import seconds
    from labkit.sim.flagger import controller_of

    if not 0.0 <= error_rate < 1.0:
        raise ValueError(f"error_rate={error_rate!r} must be between 0 and 1 (a share of requests)")
    if latency_ms < 0:
        raise ValueError(f"latency_ms={latency_ms!r} must not be negative")
    params = {"step_weight": int(step_weight), "max_weight": int(max_weight), "interval": interval,
              "threshold": int(threshold), "error_rate": float(error_rate), "latency_ms": float(latency_ms)}
    manifest = canary_manifest(interval=interval, threshold=threshold, max_weight=max_weight,
                               step_weight=step_weight, error_rate=error_rate, max_latency_ms=max_latency_ms,
                               success_rate=success_rate)
    mesh = prepare(seed, canary=manifest)
    history = controller_of(mesh).history.of("test", "podinfo")
    first_tick = len(history.ticks)
    start = mesh.clock.t
    release(mesh, latency_ms=latency_ms)
    if steady_traffic:
        mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    every = min(10.0, seconds(interval))
    try:
        mesh.wait_for(finished, timeout=timeout, every=every)
    except TimeoutError:
        pass
    ticks = history.ticks[first_tick:]
    detect = next((i for i, t in enumerate(ticks) if t.phase == "Progressing"), 0)
    phase = (mesh.canary("podinfo", "test").get("status") or {}).get("phase", "")
    outcome = {"Succeeded": "promoted", "Failed": "rolled back"}.get(phase, "still analysing")
    end = ticks[-1].time if ticks and outcome != "still analysing" else mesh.clock.t
    since = ticks[0].time if ticks else start
    return PlaygroundResult(
        params=params, outcome=outcome, phase=phase, seconds=end - start,
        intervals=max(len(ticks) - detect - 1, 0), failed_checks=max((t.failed_checks for t in ticks), default=0),
        history=public.history(mesh, "podinfo", "test", since=since),
        events=public.events(mesh, "podinfo", "test", since=since), mesh=mesh)
