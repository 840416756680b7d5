"""Lab 6, break-fix: the books app with one seeded fault, found with the labs' tools, fixed, graded on the mesh.

``start(mesh, seed)`` deploys a healthy, meshed books app (no built-in
failures, service profiles applied), then breaks it in one of the ways real
meshes break — a workload left out of the mesh, a Service that selects
nothing, a timeout tighter than the route, a scaled-down dependency, a traffic
split nobody remembers, a misconfigured app, a Service on the wrong port —
and hands the learner a user's report of the symptom, not the cause. The same
seed always picks the same fault, so an instructor can hand out seeds.

``grade(mesh)`` then checks, on the mesh, that this fault is gone *and*
nothing else is broken: every deployment running and meshed, webapp answering,
no split to a failing backend. Which fault was chosen is recorded on the
``booksapp`` namespace (its seed, as an annotation), so grading works from a
fresh kernel and on a real cluster as well; every fault is made with contract
calls only (``apply``, ``patch``, ``inject``), so it applies to both backends.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from labkit import steps
from labkit.lookups import (annotations, get_or_none, is_number, meshed, names_of, profile, profile_route,
                            ready_replicas, route_median_ms, stat_rows, template)
from labkit.tasks.books import SLACK

NS = "booksapp"
DEPLOYMENTS = ("authors", "books", "traffic", "webapp")
SEED_ANNOTATION = "linkerd-labs/break-fix-seed"
PUT = "PUT /books/{id}.json"
#: webapp's success rate (last minute) above which the app counts as healthy again.
HEALTHY = 0.95


@dataclass(frozen=True)
class Fault:
    name: str
    report: str                            # what a user tells you: the symptom, never the cause
    make: Callable[..., None]              # break the healthy app (contract calls only)
    remains: Callable[..., list[str]]      # what of this fault is still there ([] once fixed)
    fix: Callable[..., list[str]]          # the answer key: one way to fix it, as kubectl-like lines
    cause: str                             # said once it is fixed: what it was, and the tool that shows it
    hints: tuple[str, ...]


def _patch_template_annotation(mesh, deployment: str, key: str, value) -> None:
    mesh.patch("deploy", deployment, {"spec": {"template": {"metadata": {"annotations": {key: value}}}}}, NS)


def _env(mesh, deployment: str) -> dict:
    containers = (template(get_or_none(mesh, "deploy", deployment, NS)).get("spec") or {}).get("containers") or []
    return {e.get("name"): e.get("value") for e in (containers[0].get("env") or [])} if containers else {}


def _set_env(mesh, deployment: str, name: str, value: str | None) -> None:
    deploy = mesh.get("deploy", deployment, NS)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    env = [e for e in container.get("env") or [] if e.get("name") != name]
    if value is not None:
        env.append({"name": name, "value": value})
    mesh.patch("deploy", deployment, {"spec": {"template": {"spec": {"containers": [{**container, "env": env}]}}}}, NS)


# -- the faults ---------------------------------------------------------------------------------------------

def _unmeshed_make(mesh) -> None:
    _patch_template_annotation(mesh, "books", "linkerd.io/inject", "disabled")


def _unmeshed_remains(mesh) -> list[str]:
    row = stat_rows(mesh, NS).get("books")
    return [] if meshed(row) else ["books runs without a proxy (MESHED 0/1)"]


def _unmeshed_fix(mesh) -> list[str]:
    _patch_template_annotation(mesh, "books", "linkerd.io/inject", "enabled")
    return ["kubectl -n booksapp patch deploy/books  # linkerd.io/inject: enabled on the pod template"]


def _selector_make(mesh) -> None:
    mesh.patch("svc", "authors", {"spec": {"selector": {"app": "authors", "version": "v2"}}}, NS)


def _selector_remains(mesh) -> list[str]:
    endpoints = get_or_none(mesh, "endpoints", "authors", NS) or {}
    ready = [a for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]
    return [] if ready else ["the authors Service selects no pods (its Endpoints are empty)"]


def _selector_fix(mesh) -> list[str]:
    mesh.patch("svc", "authors", {"spec": {"selector": {"app": "authors", "version": None}}}, NS)
    return ["kubectl -n booksapp patch svc/authors  # selector back to app: authors"]


def _timeout_make(mesh) -> None:
    steps.edit_route(mesh, "books", NS, PUT, timeout="10ms")


def _timeout_remains(mesh) -> list[str]:
    from labkit.durations import DurationError, seconds

    raw = profile_route(profile(mesh, "books", NS), PUT).get("timeout")
    if raw in (None, ""):
        return []
    try:
        ms = seconds(raw) * 1000
    except (DurationError, ValueError, TypeError):
        return [f"the {PUT} route's timeout {raw!r} is not a duration"]
    median = route_median_ms(mesh, NS, "books", PUT) or 50.0
    return [] if ms >= SLACK * median else [f"{PUT} times out after {raw}, before books usually answers"]


def _timeout_fix(mesh) -> list[str]:
    return [steps.edit_route(mesh, "books", NS, PUT, timeout=None) + "  # the PUT route's timeout removed"]


def _scaled_make(mesh) -> None:
    mesh.patch("deploy", "authors", {"spec": {"replicas": 0}}, NS)


def _scaled_remains(mesh) -> list[str]:
    return [] if ready_replicas(get_or_none(mesh, "deploy", "authors", NS)) >= 1 else ["authors has no ready pod"]


def _scaled_fix(mesh) -> list[str]:
    mesh.patch("deploy", "authors", {"spec": {"replicas": 1}}, NS)
    return ["kubectl -n booksapp scale deploy/authors --replicas=1"]


_SPLIT = {
    "apiVersion": "policy.linkerd.io/v1beta2", "kind": "HTTPRoute",
    "metadata": {"name": "books-canary", "namespace": NS},
    "spec": {"parentRefs": [{"group": "core", "kind": "Service", "name": "books", "port": 7002}],
             "rules": [{"backendRefs": [{"name": "books", "port": 7002, "weight": 70},
                                        {"name": "error-injector", "port": 7002, "weight": 30}]}]},
}


def _split_make(mesh) -> None:
    # Proxies ignore an HTTPRoute while a ServiceProfile exists for the same Service (Linkerd >= 2.16):
    # whoever added the route removed books' profile first.
    mesh.delete(f"sp/books.{NS}.svc.cluster.local", NS)
    mesh.apply("booksapp/failure-injection/error-injector.yml")
    mesh.apply([_SPLIT])
    steps.rollout_restart(mesh, "webapp", NS)  # "since yesterday's release": webapp's new proxies read the route
    steps.wait_rolled_out(mesh, ("webapp", "error-injector"), NS)


def _split_routes(mesh) -> list[str]:
    out = []
    for kind in steps.HTTPROUTE_KINDS:
        for name in names_of(mesh, kind, NS):
            rules = ((get_or_none(mesh, kind, name, NS) or {}).get("spec") or {}).get("rules") or []
            if any(b.get("name") == "error-injector" and b.get("weight", 1) for r in rules
                   for b in r.get("backendRefs") or []):
                out.append(f"{kind.split('.')[0]}/{name}")
    return out


def _split_remains(mesh) -> list[str]:
    return [f"{route} still sends some of books' traffic to error-injector" for route in _split_routes(mesh)]


def _split_fix(mesh) -> list[str]:
    return steps.delete_route(mesh, "books-canary", NS)


def _failure_make(mesh) -> None:
    _set_env(mesh, "authors", "FAILURE_RATE", "0.4")


def _failure_remains(mesh) -> list[str]:
    rate = _env(mesh, "authors").get("FAILURE_RATE")
    if rate in (None, "", "0", "0.0"):
        return []
    retried = profile_route(profile(mesh, "authors", NS), "HEAD /authors/{id}.json").get("isRetryable") is True
    return [] if retried else [f"authors fails {float(rate):.0%} of its HEAD requests (FAILURE_RATE={rate})"]


def _failure_fix(mesh) -> list[str]:
    _set_env(mesh, "authors", "FAILURE_RATE", None)
    return ["kubectl -n booksapp set env deploy/authors FAILURE_RATE-"]


def _port_make(mesh) -> None:
    mesh.patch("svc", "books", {"spec": {"ports": [{"name": "service", "port": 7002, "targetPort": 7003}]}}, NS)


def _port_remains(mesh) -> list[str]:
    ports = ((get_or_none(mesh, "svc", "books", NS) or {}).get("spec") or {}).get("ports") or []
    target = [p.get("targetPort", p.get("port")) for p in ports if p.get("port") == 7002]
    return [] if target and target[0] in (7002, "service") else [
        f"the books Service sends port 7002 to the pods' port {target[0] if target else '?'}, where nothing listens"]


def _port_fix(mesh) -> list[str]:
    mesh.patch("svc", "books", {"spec": {"ports": [{"name": "service", "port": 7002, "targetPort": 7002}]}}, NS)
    return ["kubectl -n booksapp patch svc/books  # targetPort 7002"]


FAULTS: tuple[Fault, ...] = (
    Fault("unmeshed", "The security review says part of the books app talks in plain text, and the dashboard has "
                      "gaps where a service should be.", _unmeshed_make, _unmeshed_remains, _unmeshed_fix,
          "books had `linkerd.io/inject: disabled` on its pod template, so its pods ran without a proxy: no mTLS, "
          "no metrics. `stat` showed MESHED 0/1.",
          ("Compare the MESHED column of `stat` across the deployments.",
           "What decides whether a pod gets a proxy? Look at the pod template's annotations (mesh.get('deploy', …)).")),
    Fault("selector", "Users say almost every page of the books app is an error page since the last change.",
          _selector_make, _selector_remains, _selector_fix,
          "the authors Service's selector asked for a label (version: v2) no pod has, so it had no endpoints and "
          "every call to authors failed.",
          ("`stat` shows who fails; `stat --from deploy/books` shows what books' calls fail against.",
           "A Service with no endpoints: compare its spec.selector with the pods' labels.")),
    Fault("tight-timeout", "Users say editing a book never saves; adding one works.",
          _timeout_make, _timeout_remains, _timeout_fix,
          f"books' ServiceProfile gave {PUT} a 10ms timeout; books needs far longer, so every edit timed out (504).",
          ("`routes deploy/webapp --to svc/books -o wide`: which route fails, and what do its latencies say?",
           "Look at the books ServiceProfile's routes (mesh.get('sp', 'books.booksapp.svc.cluster.local', …)).")),
    Fault("scaled-to-zero", "The books app is down for most users: pages answer errors.",
          _scaled_make, _scaled_remains, _scaled_fix,
          "authors was scaled to 0 replicas: nothing served it.",
          ("`mesh.pods('booksapp')` and `stat`: is every service there?",
           "A Deployment's spec.replicas says how many pods it keeps.")),
    Fault("error-split", "Saving a book fails about one time in three, for everyone, since yesterday's release.",
          _split_make, _split_remains, _split_fix,
          "an HTTPRoute on the books Service (books-canary) sent 30% of the requests to the error injector.",
          ("`stat deploy --from deploy/webapp`: where does webapp's traffic to books really go?",
           "Which HTTPRoutes attach to the books Service? (mesh.get('httproute.policy.linkerd.io', None, …))")),
    Fault("failure-rate", "Adding a book fails now and then; nothing else seems wrong.",
          _failure_make, _failure_remains, _failure_fix,
          "authors ran with FAILURE_RATE=0.4: it failed 40% of its HEAD requests, which books turns into 500s "
          "(a retry on HEAD /authors/{id}.json would also have hidden it).",
          ("`routes deploy/books --to svc/authors`: which route fails?",
           "The app's own configuration: the authors Deployment's environment.")),
    Fault("wrong-port", "Nothing about books works any more: the list is empty and saving fails.",
          _port_make, _port_remains, _port_fix,
          "the books Service sent port 7002 to the pods' port 7003, where nothing listens: every connection was "
          "refused.",
          ("`stat --from deploy/webapp` and `tap`: do the requests to books reach a pod at all?",
           "Compare the books Service's ports with the port the books container listens on.")),
)


def fault_for(seed: int) -> Fault:
    """The fault a seed stands for: every run of consecutive seeds 0–6, 7–13… covers all seven faults once, in
    a shuffled order, so a class handed seeds 0..N gets every fault about equally (a seeded draw, not a hash:
    the same on every machine)."""
    block, slot = divmod(int(seed), len(FAULTS))
    order = list(range(len(FAULTS)))
    random.Random(f"break-fix:{block}").shuffle(order)
    return FAULTS[order[slot]]


def _by_name(name: str) -> Fault:
    for fault in FAULTS:
        if fault.name == name:
            return fault
    raise ValueError(f"no break-fix fault {name!r}; the faults are: {', '.join(f.name for f in FAULTS)}")


@dataclass(frozen=True)
class Scenario:
    seed: int
    fault: Fault

    def __str__(self) -> str:
        return (f"Ticket #{1000 + self.seed} (seed {self.seed}), about the books app in namespace {NS}:\n"
                f"  \"{self.fault.report}\"")

    __repr__ = __str__


def healthy_books(mesh) -> list[str]:
    """The books app meshed, without its built-in failures, with its service profiles: the lab's baseline."""
    lines = [steps.linkerd_ready(mesh)]
    lines += mesh.apply("booksapp")
    _set_env(mesh, "authors", "FAILURE_RATE", None)
    mesh.wait("1m")
    lines += mesh.inject("deploy", namespace=NS)
    lines += [mesh.apply([mesh.profile(svc, NS, open_api=f"booksapp/openapi/{svc}.swagger")])[0]
              for svc in ("webapp", "authors", "books")]
    lines += steps.rollout_restart(mesh, DEPLOYMENTS, NS)
    steps.wait_rolled_out(mesh, DEPLOYMENTS, NS)
    mesh.wait("2m")
    return lines


def start(mesh, seed: int = 0, *, fault: str | None = None) -> Scenario:
    """Deploy the healthy books app, break it with the seed's fault (or the one named), and wait for users to
    notice. Returns the scenario, whose text is the user's report."""
    chosen = _by_name(fault) if fault is not None else fault_for(seed)
    healthy_books(mesh)
    chosen.make(mesh)
    mesh.patch("namespace", NS, {"metadata": {"annotations": {SEED_ANNOTATION: f"{seed}:{chosen.name}"}}})
    mesh.wait("3m")
    return Scenario(seed, chosen)


def current(mesh) -> Scenario | None:
    """The scenario set up on this mesh, read back from the namespace (None when there is none)."""
    value = annotations(get_or_none(mesh, "namespace", NS)).get(SEED_ANNOTATION)
    if not value:
        return None
    seed, _, name = str(value).partition(":")
    return Scenario(int(seed), _by_name(name))


def problems(mesh, *, reveal: bool = False) -> list[str]:
    """What is still wrong: the scenario's fault, and anything else broken in the books app.

    The fault itself is named only with ``reveal=True`` (an instructor's view): to a learner the grader says
    the ticket still holds, and what it sees of the app's health, never the cause it is looking for.
    """
    scenario = current(mesh)
    if scenario is None:
        return ["no break-fix scenario on this mesh: run labkit.breakfix.start(mesh, seed) first"]
    remains = scenario.fault.remains(mesh)
    rows = stat_rows(mesh, NS)
    if remains and not reveal:
        # What the app's health would show now names the cause too (a scaled-down or unmeshed workload): until
        # the fault is gone the learner hears only the ticket and the symptom.
        return [f"the ticket still holds: \"{scenario.fault.report}\""] + _symptom(rows)
    out = list(remains)
    for name in DEPLOYMENTS:
        deploy = get_or_none(mesh, "deploy", name, NS)
        if deploy is None:
            out.append(f"deployment {name} is gone")
        elif ready_replicas(deploy) < 1:
            out.append(f"{name} has no ready pod")
        elif not meshed(rows.get(name)):
            out.append(f"{name} is not meshed")
    out += [p for p in _split_remains(mesh) if p not in out]
    return out + _symptom(rows)


def _symptom(rows: dict) -> list[str]:
    """What users feel: webapp's success over the last minute, when it is below healthy."""
    webapp = rows.get("webapp")
    success = None if webapp is None else webapp["SUCCESS"]
    if not is_number(success):
        return ["webapp served no requests in the last minute"]
    if success < HEALTHY:
        return [f"webapp's success rate is {success:.1%} over the last minute (healthy is {HEALTHY:.0%} or more; "
                "after a fix, give it a minute: mesh.wait('1m'))"]
    return []


@dataclass
class Grade:
    scenario: Scenario | None
    problems: list[str]

    @property
    def fixed(self) -> bool:
        return self.scenario is not None and not self.problems

    def __str__(self) -> str:
        if self.fixed:
            return f"✓ Fixed, and nothing else is broken. What it was: {self.scenario.fault.cause}"
        return "✗ Not fixed yet:\n" + "\n".join(f"  - {p}" for p in self.problems)

    __repr__ = __str__


def grade(mesh) -> Grade:
    """Is the seeded fault fixed, with nothing else broken? Reads the mesh only."""
    return Grade(current(mesh), problems(mesh))


_hints_given: dict[str, int] = {}


def hint(mesh) -> str:
    """The next hint for this mesh's fault, one more each call."""
    scenario = current(mesh)
    if scenario is None:
        return "Start a scenario first: labkit.breakfix.start(mesh, seed)"
    hints = scenario.fault.hints
    i = min(_hints_given.get(scenario.fault.name, 0), len(hints) - 1)
    _hints_given[scenario.fault.name] = i + 1
    return f"Hint {i + 1}/{len(hints)}: {hints[i]}"


def answer(mesh) -> list[str]:
    """The answer key: fix this mesh's fault one way (what an instructor would show), as kubectl-like lines."""
    scenario = current(mesh)
    if scenario is None:
        raise ValueError("no break-fix scenario on this mesh: run labkit.breakfix.start(mesh, seed) first")
    return scenario.fault.fix(mesh)
