"""Flagger's webhooks: HTTP POSTs from Flagger's pod, through the data plane, and the gates built on them.

``call_webhook`` is ``pkg/controller/webhook.go``'s ``CallWebhook``: a POST of
``{name, namespace, phase, checksum, metadata}`` (JSON) to the hook's URL
with its timeout (default 10s). The request leaves **Flagger's own pod** and
goes through the embedded data plane like any other request — DNS, the
Service's endpoints, the target pod's inbound proxy (so the loadtester's
proxy counts Flagger's calls) — to whatever answers there, usually the
flagger-loadtester model, which runs ``bash`` tasks (the acceptance test's
``curl``) before answering and queues ``cmd`` tasks (``hey``) in the
background, answering 202. A status above 202 is a failure whose error is
the response body; a timeout or a connection failure is Go's client error.

The runners below are ``scheduler_hooks.go``: which hook types run when,
and the events each outcome records (reference §1.8, §1.11).
"""
from __future__ import annotations

import json
import math

from labkit.sim.apps.base import go_duration, split_target
from labkit.sim.apps.model import call, transport_error
from labkit.sim.flagger.deployment import compute_hash

#: Hook types (``canary.go`` HookType).
CONFIRM_ROLLOUT, PRE_ROLLOUT, ROLLOUT = "confirm-rollout", "pre-rollout", "rollout"
CONFIRM_TRAFFIC_INCREASE, CONFIRM_PROMOTION = "confirm-traffic-increase", "confirm-promotion"
POST_ROLLOUT, ROLLBACK, EVENT = "post-rollout", "rollback", "event"


def checksum(cd) -> str:
    """``CanaryChecksum``: a hash of the revision under analysis (lastAppliedSpec + tracked configs)."""
    return compute_hash([cd.status.get("lastAppliedSpec", ""), cd.status.get("trackedConfigs") or {}])


def call_webhook(flagger, cd, phase: str, hook: dict) -> str | None:
    """POST the webhook payload from Flagger's pod; None on success (status <= 202), else the error text."""
    url = str(hook.get("url", ""))
    timeout = str(hook.get("timeout") or "")
    if len(timeout) < 2:
        timeout = "10s"
    try:
        limit_ms = go_duration(timeout) * 1000.0
    except ValueError as exc:
        return str(exc)
    payload = {"name": cd.name, "namespace": cd.namespace, "phase": phase, "checksum": checksum(cd)}
    if hook.get("metadata"):
        payload["metadata"] = {str(k): str(v) for k, v in hook["metadata"].items()}
    body = json.dumps(payload, separators=(",", ":"))
    client = flagger.client_context()
    if client is None:
        return f'Post "{url}": dial tcp: no route to host (Flagger\'s pod is not running)'
    target, path, scheme = split_target(url)
    if scheme not in ("http", "https"):
        return f'Post "{url}": unsupported protocol scheme "{scheme}"'
    resp = call(client, target, "POST", path, headers={"Content-Type": "application/json"}, body=body,
                body_bytes=len(body))
    failure = transport_error(resp)
    if failure is not None:
        host = target.rsplit(":", 1)[0]
        if "no such host" in failure or "dns" in failure:
            return f'Post "{url}": dial tcp: lookup {host} on 10.96.0.10:53: no such host'
        return f'Post "{url}": dial tcp {target}: connect: {failure}'
    if resp.latency_ms > limit_ms or math.isinf(resp.latency_ms):
        return f'Post "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    if resp.status > 202:
        text = resp.body if isinstance(resp.body, str) else (json.dumps(resp.body) if resp.body is not None else "")
        return text
    return None


def _hooks(cd, kind: str) -> list[dict]:
    return [h for h in cd.webhooks if (h.get("type") or ROLLOUT) == kind]


def run_confirm_rollout_hooks(flagger, cd) -> bool:
    """``runConfirmRolloutHooks``: a failing gate parks the canary in Waiting (one Warning), else go on."""
    for hook in _hooks(cd, CONFIRM_ROLLOUT):
        if call_webhook(flagger, cd, "Progressing", hook) is not None:
            if cd.phase != "Waiting":
                flagger.dc.set_status_phase(cd, "Waiting")
                flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement waiting for approval {hook.get('name')}")
            return False
        if cd.phase == "Waiting":
            flagger.info(cd, f"Confirm-rollout check {hook.get('name')} passed")
    return True


def run_confirm_traffic_increase_hooks(flagger, cd) -> bool:
    for hook in _hooks(cd, CONFIRM_TRAFFIC_INCREASE):
        if call_webhook(flagger, cd, "Progressing", hook) is not None:
            flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement waiting for traffic increase approval "
                             f"{hook.get('name')}")
            return False
        flagger.info(cd, f"Confirm-traffic-increase check {hook.get('name')} passed")
    return True


def run_confirm_promotion_hooks(flagger, cd) -> bool:
    """``runConfirmPromotionHooks``: a failing gate parks the canary in WaitingPromotion."""
    for hook in _hooks(cd, CONFIRM_PROMOTION):
        if call_webhook(flagger, cd, "Progressing", hook) is not None:
            if cd.phase != "WaitingPromotion":
                flagger.dc.set_status_phase(cd, "WaitingPromotion")
                flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement waiting for promotion approval "
                                 f"{hook.get('name')}")
            return False
        flagger.info(cd, f"Confirm-promotion check {hook.get('name')} passed")
        if cd.phase == "WaitingPromotion":
            flagger.dc.set_status_phase(cd, "Progressing")
    return True


def run_pre_rollout_hooks(flagger, cd) -> bool:
    for hook in _hooks(cd, PRE_ROLLOUT):
        err = call_webhook(flagger, cd, "Progressing", hook)
        if err is not None:
            flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement pre-rollout check {hook.get('name')} failed {err}")
            return False
        flagger.info(cd, f"Pre-rollout check {hook.get('name')} passed")
    return True


def run_rollout_hooks(flagger, cd) -> bool:
    """The ``rollout`` hooks of ``runAnalysis`` (type unset means rollout): the first failure halts."""
    for hook in _hooks(cd, ROLLOUT):
        err = call_webhook(flagger, cd, "Progressing", hook)
        if err is not None:
            flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement external check {hook.get('name')} failed {err}")
            return False
    return True


def run_post_rollout_hooks(flagger, cd, phase: str) -> bool:
    for hook in _hooks(cd, POST_ROLLOUT):
        err = call_webhook(flagger, cd, phase, hook)
        if err is not None:
            flagger.warn(cd, f"Post-rollout hook {hook.get('name')} failed {err}")
            return False
        flagger.info(cd, f"Post-rollout check {hook.get('name')} passed")
    return True


def run_rollback_hooks(flagger, cd, phase: str) -> bool:
    """``runRollbackHooks``: a rollback hook answering 2xx asks for a rollback."""
    for hook in _hooks(cd, ROLLBACK):
        if call_webhook(flagger, cd, phase, hook) is not None:
            flagger.info(cd, f"Rollback hook {hook.get('name')} not signaling a rollback")
        else:
            flagger.warn(cd, f"Rollback check {hook.get('name')} passed")
            return True
    return False
