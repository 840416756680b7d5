"""What ``kubectl logs POD -c linkerd-proxy`` shows: the proxy's start-up lines, as its configuration makes them.

The proxy logs through ``tracing`` with the filter in ``LINKERD2_PROXY_LOG``
(``warn,linkerd=info,hickory=error`` as installed): at ``info`` for the
``linkerd`` targets it announces its release, its listeners (admin, inbound,
outbound, tap when viz's tap injector configured one), its identity and where
it resolves destinations, then that identity was certified. With a filter at
``warn`` it says nothing; at ``debug`` it adds what it read from its
environment. Every value comes from the container's own ``env``, so an install
value or a ``config.linkerd.io/*`` override shows up here as it would.
"""
from __future__ import annotations

import random

from labkit.sim import linkerd as l5d

LEVELS = {"off": 0, "error": 1, "warn": 2, "info": 3, "debug": 4, "trace": 5}


def level_for(filter_text: str, target: str) -> int:
    """The ``tracing`` env-filter level for a target: the longest matching ``target=level`` directive, else the default."""
    default, best, best_len = LEVELS["error"], None, -1
    for directive in (filter_text or "").split(","):
        directive = directive.strip()
        if not directive or directive.startswith("["):
            continue
        if "=" not in directive:
            default = LEVELS.get(directive.lower(), default)
            continue
        name, _, level = directive.partition("=")
        if target.startswith(name) and len(name) > best_len:  # tracing's EnvFilter matches target prefixes
            best, best_len = LEVELS.get(level.lower()), len(name)
    return default if best is None else best


def _env(container: dict) -> dict[str, str]:
    return {e.get("name"): e.get("value") for e in container.get("env") or [] if "value" in e}


def startup_lines(pod: dict, container: dict, seed: int = 0) -> list[str]:
    """The proxy's log from start-up, filtered by its ``LINKERD2_PROXY_LOG``."""
    env = _env(container)
    meta = pod.get("metadata") or {}
    identity = l5d.local_identity(pod)
    dst = (env.get("LINKERD2_PROXY_DESTINATION_SVC_ADDR") or "").replace(".svc.cluster.local.:", ".svc.cluster.local:")
    rng = random.Random(f"{seed}:proxy-log:{meta.get('name')}")
    events = [("info", "linkerd2_proxy", "ThreadId(01)", f"release {l5d.PROXY_BUILD_VERSION.lstrip('v')} by linkerd"),
              ("debug", "linkerd_app::env", "ThreadId(01)", f"LINKERD2_PROXY_INBOUND_PORTS={env.get('LINKERD2_PROXY_INBOUND_PORTS', '')}"),
              ("info", "linkerd2_proxy", "ThreadId(01)", f"Admin interface on {env.get('LINKERD2_PROXY_ADMIN_LISTEN_ADDR')}"),
              ("info", "linkerd2_proxy", "ThreadId(01)", f"Inbound interface on {env.get('LINKERD2_PROXY_INBOUND_LISTEN_ADDR')}"),
              ("info", "linkerd2_proxy", "ThreadId(01)", f"Outbound interface on {env.get('LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR')}")]
    if env.get("LINKERD2_PROXY_TAP_SVC_NAME"):
        events.append(("info", "linkerd2_proxy", "ThreadId(01)", f"Tap interface on {env.get('LINKERD2_PROXY_CONTROL_LISTEN_ADDR')}"))
    events += [("info", "linkerd2_proxy", "ThreadId(01)", f"SNI is {identity}"),
               ("info", "linkerd2_proxy", "ThreadId(01)", f"Local identity is {identity}"),
               ("info", "linkerd2_proxy", "ThreadId(01)",
                f"Destinations resolved via {dst} ({env.get('LINKERD2_PROXY_DESTINATION_SVC_NAME')})"),
               ("info", "linkerd_app", "ThreadId(02) daemon:identity:", f"Certified identity id={identity}")]
    filter_text = env.get("LINKERD2_PROXY_LOG", "")
    lines, t = [], rng.uniform(0.0015, 0.003)
    for level, target, thread, message in events:
        t += rng.uniform(0.00001, 0.0008) if "identity" not in thread else rng.uniform(0.005, 0.02)
        if LEVELS[level] <= level_for(filter_text, target):
            lines.append(f"[{t:>13.6f}s] {level.upper():>5} {thread} {target}: {message}")
    return lines
