"""Containers whose behaviour lives elsewhere in the simulator, and small client images.

* Linkerd and linkerd-viz control-plane images (``cr.l5d.io/linkerd/*``,
  2019's ``gcr.io/linkerd-io/*``), the Flagger controller, Prometheus and
  Grafana: the cluster model, the proxies and the Prometheus evaluator do
  their work; here their pods only run, become ready and answer probes
  (``Inert``).  They are distroless (no shell to exec into) except where noted.
* ``linkerd-debug`` (``--enable-debug-sidecar``): a shell with tshark/tcpdump;
  what ``tshark`` prints comes from the observability part of the simulator,
  which can set ``capture(argv, ctx) -> str`` on the model.
* ``curlimages/curl``: a shell with curl, for ``kubectl exec``.
* ``buoyantio/slow_cooker``: the load generator of Linkerd's Flagger task
  (``slow_cooker -qps ${QPS} -concurrency ${CONCURRENCY} http://podinfo:9898``):
  ``concurrency`` workers each sending ``qps`` requests per second, printing a
  summary line every ``-interval`` (10s).
"""
from __future__ import annotations

import time

from .base import BASE_TOOLS, App, Inert, Spec, go_duration, go_flags

SHELL_TOOLS = frozenset({"sh", "ash", "echo", "cat", "grep", "ls", "wget", "ps", "kill", "sleep",
                         "true", "false", "env", "printenv", "hostname", "date", "head", "tail", "wc"})
DEBUG_TOOLS = BASE_TOOLS | {"tshark", "tcpdump", "lsof", "ip", "nc", "dig", "nslookup"}

READY = {"controller": 5.0, "destination": 5.0, "identity": 4.0, "policy-controller": 6.0,
         "proxy-injector": 5.0, "sp-validator": 5.0, "web": 4.0, "metrics-api": 4.0, "tap": 4.0,
         "tap-injector": 4.0, "prometheus": 6.0, "grafana": 8.0, "proxy": 2.0, "proxy-init": 0.5,
         "debug": 1.0, "flagger": 3.0}


class Debug(Inert):
    """The linkerd-debug sidecar: tshark logs traffic from the start."""

    capture = None   # set by the observability model: capture(argv, ctx) -> str


class CurlBox(App):
    READY_AFTER = 0.2

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.name = f"curl:{tag}"
        self.argv = spec.argv(["curl"], ["--help"])


class SlowCooker(App):
    """slow_cooker: steady load with periodic latency reports."""

    READY_AFTER = 0.2
    FLAGS = {"qps": "value", "concurrency": "value", "interval": "value", "totalRequests": "value",
             "method": "value", "host": "value", "header": "value", "data": "value",
             "metric-addr": "value", "noreuse": "bool", "compress": "bool", "noLatencySummary": "bool",
             "reportLatenciesCSV": "value", "hashValue": "value", "hashSampleRate": "value",
             "latencyUnit": "value", "timeout": "value", "iterations": "value", "help": "bool"}

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.name = f"slow_cooker:{tag}"
        self.argv = spec.argv(["slow_cooker"])
        argv = self.argv
        if argv and argv[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash") and "-c" in argv:
            from .shell import words
            script = argv[argv.index("-c") + 1] if argv.index("-c") + 1 < len(argv) else ""
            argv = words(script, self.env)
        self.qps, self.concurrency, self.interval_s = 1.0, 1, 10.0
        self.method, self.url, self.host = "GET", "", None
        try:
            prog = next(i for i, w in enumerate(argv) if w.rsplit("/", 1)[-1] == "slow_cooker")
            flags, rest = go_flags(argv[prog + 1:], self.FLAGS)
            self.qps = float(flags.get("qps", "1"))
            self.concurrency = int(flags.get("concurrency", "1"))
            self.interval_s = go_duration(flags.get("interval", "10s"))
            self.method = flags.get("method", "GET")
            self.host = flags.get("host")
            if not rest:
                raise ValueError("slow_cooker: a URL is required")
            self.url = rest[0]
        except (StopIteration, ValueError) as e:
            if self.failure is None:
                self.failure = str(e) if not isinstance(e, StopIteration) else "slow_cooker: not found in command"
        self._window: list[float] = []
        self._good = self._bad = self._failed = 0

    def start(self, ctx) -> None:
        super().start(ctx)
        if self.failure is not None:
            return
        ctx.log(f"# sending {self.qps * self.concurrency:g} {self.method} req/s with concurrency="
                f"{self.concurrency} to {self.url} ...")
        ctx.log("#                      good/b/f t   goal%  min [p50 p95 p99  p999]  max bhash change")
        step = 1.0 / self.qps if self.qps > 0 else 1.0
        for _ in range(self.concurrency):
            ctx.schedule(step, self._worker(step))
        ctx.schedule(self.interval_s, self._report)

    def _worker(self, step: float):
        from .shell import do_request, transport_failure

        def go():
            if self.stopped:
                return
            headers = {"host": self.host} if self.host else None
            r, _, _ = do_request(self, self.bg, self.url, self.method, headers)
            if transport_failure(r) is not None:
                self._failed += 1
            elif r.status >= 500:
                self._bad += 1
            else:
                self._good += 1
                self._window.append(r.latency_ms)
            self.bg.schedule(max(step, r.latency_ms / 1000.0), go)
        return go

    def _report(self) -> None:
        if self.stopped:
            return
        ctx = self.bg
        lat = sorted(self._window)
        total = self._good + self._bad + self._failed
        goal = self.qps * self.concurrency * self.interval_s

        def q(p: float) -> int:
            return int(round(lat[min(len(lat) - 1, int(len(lat) * p))])) if lat else 0
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ctx.now))
        pct = int(100 * total / goal) if goal else 0
        ctx.log(f"{stamp} {self._good:6d}/{self._bad}/{self._failed} {total} {pct:3d}% "
                f"{int(self.interval_s)}s {q(0.0):3d} [{q(0.5):3d} {q(0.95):3d} {q(0.99):3d} {q(0.999):4d} ] "
                f"{(int(round(lat[-1])) if lat else 0):4d} 0")
        self._window.clear()
        self._good = self._bad = self._failed = 0
        ctx.schedule(self.interval_s, self._report)


def _component(repository: str) -> str:
    return repository.rsplit("/", 1)[-1]


def build_control_plane(spec: Spec, repository: str, tag: str) -> App:
    comp = _component(repository)
    if comp == "debug":
        return Debug(spec, f"linkerd-debug:{tag}", DEBUG_TOOLS, READY["debug"])
    tools = SHELL_TOOLS if comp in ("prometheus", "grafana", "flagger", "proxy-init") else frozenset()
    prefix = "" if comp in ("prometheus", "grafana", "flagger") else "linkerd-"
    return Inert(spec, f"{prefix}{comp}:{tag}", tools, READY.get(comp, 3.0))


def build_curl(spec: Spec, tag: str) -> App:
    return CurlBox(spec, tag)


def build_slow_cooker(spec: Spec, tag: str) -> App:
    return SlowCooker(spec, tag)

