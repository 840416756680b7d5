"""The labs' self-check cells: each lab's outcome, checked on whatever backend ran it.

A self-check never raises for a missing outcome: it prints what is done and
what is missing, so a learner halfway through a lab gets a to-do list rather
than a traceback. Tests and the headless runner read its last line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from labkit import tasks
from labkit.lookups import get_or_none, is_number, meshed, query_sum, stat_rows


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


#: The oldest Kubernetes Linkerd 2.20, the release the labs teach, supports (its pkg/k8s/api.go: 1.31).
MIN_KUBERNETES = (1, 31)


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
    tasks.expect_all(check, mesh, 0)
    return check


def _expect_meshed(check: "SelfCheck", rows: dict, expected: tuple[str, ...], app: str) -> None:
    """Every deployment in ``expected`` shows a meshed pod in ``stat`` (MESHED 1/1, 2/2…)."""
    unmeshed = [n for n in expected if not meshed(rows.get(n))]
    check.expect(f"every {app} deployment is meshed", not unmeshed, f"not meshed: {', '.join(unmeshed)}")


def lab5(mesh) -> SelfCheck:
    """Lab 5: emojivoto meshed, and stat shows voting failing while emoji is healthy; the tasks."""
    check = SelfCheck(5)
    rows = stat_rows(mesh, "emojivoto")
    _expect_meshed(check, rows, ("emoji", "voting", "web"), "emojivoto")  # vote-bot leaves the mesh in task 5.3
    voting = rows["voting"]["SUCCESS"] if "voting" in rows else None
    emoji = rows["emoji"]["SUCCESS"] if "emoji" in rows else None
    check.expect("stat shows traffic to voting and emoji", is_number(voting) and is_number(emoji),
                 "wait a minute or two for vote-bot's traffic")
    check.expect("voting is the failing service (success well below 100%)", is_number(voting) and voting < 0.95)
    check.expect("emoji answers everything", is_number(emoji) and emoji > 0.99)
    pods = mesh.pods("emojivoto")
    voting = pods[pods["NAME"].str.startswith("voting-") & (pods["STATUS"] == "Running")]
    check.expect("voting runs the debug sidecar (3/3 containers ready)",
                 len(voting) > 0 and all(r == "3/3" for r in voting["READY"]),
                 "inject voting with enable_debug_sidecar=True and wait for the rollout")
    tasks.expect_all(check, mesh, 5)
    return check


def lab1(mesh) -> SelfCheck:
    """Lab 1: Linkerd's control plane installed and `linkerd check` passing; the tasks (viz among them)."""
    check = SelfCheck(1)
    report = mesh.check()
    failed = [c.description for c in report.failed()] if hasattr(report, "failed") else []
    check.expect("`linkerd check` passes", report.ok, f"failing: {', '.join(failed[:3])}" if failed else "")
    pods = mesh.pods("linkerd")
    running = len(pods) > 0 and all(s == "Running" for s in pods["STATUS"])
    check.expect("the linkerd namespace's pods are Running", running, "see mesh.pods('linkerd')")
    tasks.expect_all(check, mesh, 1)
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
                 "mesh.install_flagger(provider='linkerd'), then wait for its rollout")
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
    tasks.expect_all(check, mesh, 3)
    return check


def lab2(mesh) -> SelfCheck:
    """Lab 2: the books app meshed, profiles from its OpenAPI specs, retries seen on the wire, a PUT timeout; tasks."""
    check = SelfCheck(2)
    _expect_meshed(check, stat_rows(mesh, "booksapp"), ("authors", "books", "traffic", "webapp"), "books app")
    # the lab removes the 2019 profiles when it switches to HTTPRoutes; the per-route metrics they gave remain
    routed = query_sum(mesh, 'count(sum by (deployment, rt_route) (increase(route_response_total{'
                             'namespace="booksapp", direction="inbound"}[2h])) > 0)')
    check.expect("service profiles gave per-route metrics (the 2019 way)", routed >= 3,
                 "apply mesh.profile(svc, 'booksapp', open_api=...) for webapp, authors and books")
    head = 'rt_route="HEAD /authors/{id}.json"'
    where = f'namespace="booksapp", deployment="books", direction="outbound", {head}'
    actual = query_sum(mesh, f"sum(increase(route_actual_response_total{{{where}}}[30m]))")
    effective = query_sum(mesh, f"sum(increase(route_response_total{{{where}}}[30m]))")
    check.expect("books' proxy retried HEAD /authors/{id}.json (more ACTUAL than EFFECTIVE requests)",
                 effective > 0 and actual > 1.3 * effective,
                 "restart books after applying the profiles, mark the route retryable, wait a minute")
    put = 'rt_route="PUT /books/{id}.json"'
    timed_out = query_sum(mesh, 'sum(increase(route_response_total{namespace="booksapp", deployment="webapp", '
                                f'direction="outbound", {put}, classification="failure"}}[30m]))')
    check.expect("a timeout failed some PUTs (EFFECTIVE success below 100%)", timed_out > 0,
                 "restart webapp if it has not picked up the profiles, and wait a minute")
    tasks.expect_all(check, mesh, 2)
    return check


def lab4(mesh) -> SelfCheck:
    """Lab 4: books app without FAILURE_RATE, the error injector behind a split that failed ≈10%, all removed; tasks."""
    check = SelfCheck(4)
    authors = get_or_none(mesh, "deploy", "authors", "booksapp")
    try:
        env = [e.get("name") for e in authors["spec"]["template"]["spec"]["containers"][0].get("env") or []]
    except (TypeError, KeyError, IndexError):
        env = None
    check.expect("authors runs without its FAILURE_RATE", env is not None and "FAILURE_RATE" not in env,
                 "patch the authors deployment: remove /spec/template/spec/containers/0/env/2")
    base = ('sum(increase(response_total{direction="outbound", namespace="booksapp", deployment="webapp", '
            'dst_deployment="error-injector", classification="%s"}[1h]))')
    failed, ok = query_sum(mesh, base % "failure"), query_sum(mesh, base % "success")
    check.expect("a split sent some of webapp's calls to books to the error injector, which failed them all",
                 failed > 0 and ok == 0, "apply a split (an HTTPRoute or a TrafficSplit) and wait a few minutes")
    tasks.expect_all(check, mesh, 4)
    return check




def lab6(mesh) -> SelfCheck:
    """Lab 6: the seeded fault found and fixed, and nothing else broken (labkit.breakfix grades it)."""
    from labkit import breakfix

    check = SelfCheck(6)
    scenario = breakfix.current(mesh)
    check.expect("a break-fix scenario runs on this mesh", scenario is not None,
                 "labkit.breakfix.start(mesh, seed) sets one up")
    remaining = breakfix.problems(mesh) if scenario is not None else []
    check.expect("the fault is fixed and nothing else is broken", scenario is not None and not remaining,
                 remaining[0] if remaining else "")
    return check
