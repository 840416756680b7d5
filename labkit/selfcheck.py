"""The labs' self-check cells: each lab's outcome, checked on whatever backend ran it.

A self-check never raises for a missing outcome: it prints what is done and
what is missing, so a learner halfway through a lab gets a to-do list rather
than a traceback. Tests and the headless runner read its last line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class SelfCheck:
    lab: int
    items: list[tuple[str, bool, str]] = field(default_factory=list)

    def expect(self, what: str, ok: bool, hint: str = "") -> bool:
        self.items.append((what, bool(ok), hint))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(ok for _, ok, _ in self.items)

    @property
    def summary(self) -> str:
        if self.ok:
            return f"Lab {self.lab} complete"
        missing = sum(1 for _, ok, _ in self.items if not ok)
        return f"Lab {self.lab} not complete yet: {missing} of {len(self.items)} checks to go"

    def __str__(self) -> str:
        lines = []
        for what, ok, hint in self.items:
            mark = "√" if ok else "×"
            lines.append(f"{mark} {what}" + ("" if ok or not hint else f"  ({hint})"))
        lines.append(self.summary)
        return "\n".join(lines)

    __repr__ = __str__


def _version_tuple(version: str) -> tuple[int, int]:
    m = re.match(r"v?(\d+)\.(\d+)", str(version))
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


#: The oldest Kubernetes any Linkerd release the labs teach supports (2.14: 1.21+).
MIN_KUBERNETES = (1, 21)


def lab0(mesh) -> SelfCheck:
    """Lab 0: a connected cluster whose nodes are all Ready, on a Kubernetes version Linkerd supports."""
    check = SelfCheck(0)
    nodes = mesh.nodes()
    check.expect(f"connected to a cluster ({mesh.backend})", len(nodes) > 0,
                 "labkit.connect(...) returned a cluster with no nodes")
    not_ready = [n for n, s in zip(nodes["NAME"], nodes["STATUS"]) if s != "Ready"]
    check.expect("every node is Ready", len(nodes) > 0 and not not_ready,
                 f"not ready: {', '.join(not_ready)}" if not_ready else "no nodes")
    old = [v for v in nodes["VERSION"] if _version_tuple(v) < MIN_KUBERNETES]
    check.expect(f"Kubernetes {MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]} or newer", len(nodes) > 0 and not old,
                 f"too old for Linkerd: {', '.join(sorted(set(old)))}" if old else "no nodes")
    return check


def _stat_by_name(mesh, namespace: str) -> dict:
    table = mesh.stat("deploy", namespace=namespace)
    return {row["NAME"]: row for _, row in table.iterrows()}


def _expect_meshed(check: "SelfCheck", rows: dict, expected: tuple[str, ...], app: str) -> None:
    """Every deployment in ``expected`` shows a meshed pod in ``stat`` (MESHED 1/1, 2/2…)."""
    unmeshed = [n for n in expected if n not in rows or not str(rows[n]["MESHED"]).startswith(tuple("123456789"))]
    check.expect(f"every {app} deployment is meshed", not unmeshed, f"not meshed: {', '.join(unmeshed)}")


def lab5(mesh) -> SelfCheck:
    """Lab 5: emojivoto meshed, and stat shows voting failing while emoji is healthy."""
    check = SelfCheck(5)
    rows = _stat_by_name(mesh, "emojivoto")
    _expect_meshed(check, rows, ("emoji", "voting", "web", "vote-bot"), "emojivoto")
    voting = rows.get("voting", {}).get("SUCCESS") if "voting" in rows else None
    emoji = rows.get("emoji", {}).get("SUCCESS") if "emoji" in rows else None
    check.expect("stat shows traffic to voting and emoji", voting is not None and emoji is not None
                 and voting == voting and emoji == emoji, "wait a minute or two for vote-bot's traffic")
    check.expect("voting is the failing service (success well below 100%)",
                 voting is not None and voting == voting and voting < 0.95)
    check.expect("emoji answers everything", emoji is not None and emoji == emoji and emoji > 0.99)
    pods = mesh.pods("emojivoto")
    voting = pods[pods["NAME"].str.startswith("voting-") & (pods["STATUS"] == "Running")]
    check.expect("voting runs the debug sidecar (3/3 containers ready)",
                 len(voting) > 0 and all(r == "3/3" for r in voting["READY"]),
                 "inject voting with enable_debug_sidecar=True and wait for the rollout")
    return check


def lab1(mesh) -> SelfCheck:
    """Lab 1: Linkerd's control plane and viz installed, and `linkerd check` passing."""
    check = SelfCheck(1)
    report = mesh.check()
    failed = [c.description for c in report.failed()] if hasattr(report, "failed") else []
    check.expect("`linkerd check` passes", report.ok, f"failing: {', '.join(failed[:3])}" if failed else "")
    for ns in ("linkerd", "linkerd-viz"):
        pods = mesh.pods(ns)
        running = len(pods) > 0 and all(s == "Running" for s in pods["STATUS"])
        check.expect(f"the {ns} namespace's pods are Running", running, f"see mesh.pods({ns!r})")
    return check



def lab3(mesh) -> SelfCheck:
    """Lab 3: Flagger runs podinfo's canary; a release was promoted, a faulty one rolled back, a custom metric added."""
    from labkit.errors import LabkitError

    check = SelfCheck(3)
    flagger = None
    for ns in ("linkerd", "flagger-system"):
        try:
            flagger = mesh.get("deploy", "flagger", ns)
            break
        except LabkitError:
            continue
    check.expect("Flagger is installed and available",
                 flagger is not None and (flagger.get("status") or {}).get("availableReplicas", 0) >= 1,
                 "mesh.install_flagger(), then wait for its rollout")
    try:
        cd = mesh.canary("podinfo", "test")
    except LabkitError:
        cd = None
    check.expect("the podinfo Canary exists in namespace test", cd is not None,
                 "mesh.apply('podinfo/flagger/canary.yml')")
    events = mesh.events("test")
    mine = events[events["OBJECT"] == "canary/podinfo"] if len(events) else events
    said = set(mine["MESSAGE"]) if len(mine) else set()
    check.expect("a new version was promoted", "Promotion completed! Scaling down podinfo.test" in said,
                 "set a new podinfo image and wait for the analysis to finish")
    check.expect("a faulty version was rolled back", "Canary failed! Scaling down podinfo.test" in said,
                 "release again and make the canary fail (curl /status/500 from the load tester)")
    metrics = ((cd or {}).get("spec") or {}).get("analysis", {}).get("metrics") or []
    check.expect("the canary has a custom metric (a MetricTemplate)", any(m.get("templateRef") for m in metrics),
                 "apply podinfo/flagger/metric-templates.yml and add a templateRef metric to the Canary")
    check.expect("the last release finished (Succeeded or Failed)",
                 ((cd or {}).get("status") or {}).get("phase") in ("Succeeded", "Failed"))
    return check


def _route_rows(mesh, target: str, to: str, wide: bool = False) -> dict:
    try:
        table = mesh.routes(target, namespace="booksapp", to=to, wide=wide)
    except Exception:  # no profiles / routes not available yet: nothing to read
        return {}
    return {row["ROUTE"]: row for _, row in table.iterrows()}


def _profile(mesh, service: str) -> dict:
    from labkit.errors import LabkitError

    try:
        return mesh.get("sp", f"{service}.booksapp.svc.cluster.local", "booksapp")
    except (LabkitError, KeyError, ValueError):
        return {}


def _route_spec(profile: dict, name: str) -> dict:
    return next((r for r in (profile.get("spec") or {}).get("routes") or [] if r.get("name") == name), {})


def _sum(mesh, promql: str) -> float:
    frame = mesh.query(promql)
    return float(frame["value"].sum()) if len(frame) else 0.0


def lab2(mesh) -> SelfCheck:
    """Lab 2: the books app meshed, profiles from its OpenAPI specs, HEAD /authors/{id}.json retried, a PUT timeout."""
    check = SelfCheck(2)
    rows = _stat_by_name(mesh, "booksapp")
    _expect_meshed(check, rows, ("authors", "books", "traffic", "webapp"), "books app")
    profiles = {svc: _profile(mesh, svc) for svc in ("webapp", "authors", "books")}
    missing = [svc for svc, p in profiles.items() if not p]
    check.expect("service profiles for webapp, authors and books", not missing,
                 f"missing: {', '.join(missing)} — apply mesh.profile(svc, 'booksapp', open_api=...)")
    head = "HEAD /authors/{id}.json"
    check.expect(f"{head} is retryable", _route_spec(profiles["authors"], head).get("isRetryable") is True,
                 "add isRetryable: true to that route of the authors profile")
    row = _route_rows(mesh, "deploy/books", "svc/authors", wide=True).get(head)
    effective = None if row is None else row["EFFECTIVE_SUCCESS"]
    actual = None if row is None else row["ACTUAL_SUCCESS"]
    check.expect("retries work: EFFECTIVE success ≈ 100% while ACTUAL stays lower",
                 effective is not None and effective == effective and effective >= 0.95
                 and actual == actual and actual < 0.9,
                 "restart books after applying the profiles, then wait a minute for traffic")
    put = "PUT /books/{id}.json"
    check.expect(f"{put} has a timeout", bool(_route_spec(profiles["books"], put).get("timeout")),
                 "add timeout: … to that route of the books profile")
    timed_out = _sum(mesh, 'sum(increase(route_response_total{namespace="booksapp", deployment="webapp", '
                           f'direction="outbound", rt_route="{put}", classification="failure"}}[30m]))')
    check.expect("the timeout failed some PUTs (EFFECTIVE success below 100%)", timed_out > 0,
                 "restart webapp if it has not picked up the profiles, and wait a minute")
    return check


def lab4(mesh) -> SelfCheck:
    """Lab 4: books app without FAILURE_RATE, the error injector behind a split that failed ≈10%, then removed."""
    from labkit.errors import LabkitError

    check = SelfCheck(4)
    try:
        authors = mesh.get("deploy", "authors", "booksapp")
        env = [e.get("name") for e in authors["spec"]["template"]["spec"]["containers"][0].get("env") or []]
    except (LabkitError, KeyError, IndexError):
        env = None
    check.expect("authors runs without its FAILURE_RATE", env is not None and "FAILURE_RATE" not in env,
                 "patch the authors deployment: remove /spec/template/spec/containers/0/env/2")
    try:
        injector = mesh.get("deploy", "error-injector", "booksapp")
        available = (injector.get("status") or {}).get("availableReplicas", 0) >= 1
    except LabkitError:
        available = False
    check.expect("the error injector is deployed", available,
                 "mesh.apply('booksapp/failure-injection/error-injector.yml')")
    base = ('sum(increase(response_total{direction="outbound", namespace="booksapp", deployment="webapp", '
            'dst_deployment="error-injector", classification="%s"}[1h]))')
    failed, ok = _sum(mesh, base % "failure"), _sum(mesh, base % "success")
    check.expect("a split sent some of webapp's calls to books to the error injector, which failed them all",
                 failed > 0 and ok == 0, "apply a split (an HTTPRoute or a TrafficSplit) and wait a few minutes")
    active = []
    for kind, name in (("httproute.policy.linkerd.io", "error-split"), ("httproute.gateway.networking.k8s.io", "error-split"),
                       ("trafficsplit", "error-split")):
        try:
            mesh.get(kind, name, "booksapp")
            active.append(kind.split(".")[0])
        except (LabkitError, KeyError, ValueError):
            pass
    check.expect("the split is removed again", not active, f"still there: {', '.join(active)}")
    webapp = _stat_by_name(mesh, "booksapp").get("webapp")
    success = None if webapp is None else webapp["SUCCESS"]
    check.expect("webapp is back to 100% success", success is not None and success == success and success >= 0.99,
                 "wait a minute after removing the split")
    return check
