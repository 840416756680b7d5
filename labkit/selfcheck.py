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


def lab5(mesh) -> SelfCheck:
    """Lab 5: emojivoto meshed, and stat shows voting failing while emoji is healthy."""
    check = SelfCheck(5)
    rows = _stat_by_name(mesh, "emojivoto")
    expected = ("emoji", "voting", "web", "vote-bot")
    unmeshed = [n for n in expected if n not in rows or not str(rows[n]["MESHED"]).startswith(tuple("123456789"))]
    check.expect("every emojivoto deployment is meshed", not unmeshed, f"not meshed: {', '.join(unmeshed)}")
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

