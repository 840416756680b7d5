"""Lab 5's tasks on emojivoto: stat's SUCCESS as a query, a proxy's log level, and a workload taken out of the mesh."""
from __future__ import annotations

from labkit.lookups import annotations, get_or_none, running_pods, template
from labkit.tasks import grade_query, task

NS = "emojivoto"
LOG_LEVEL = "config.linkerd.io/proxy-log-level"
LEVELS = ("trace", "debug", "info", "warn", "error", "off")
PROXY_NAMES = ("linkerd-proxy",)
VOTING_SUCCESS = ('sum(rate(response_total{{namespace="{ns}", deployment="voting", direction="inbound", '
                  'classification="success"}}[1m])) / sum(rate(response_total{{namespace="{ns}", '
                  'deployment="voting", direction="inbound"}}[1m]))')


@task("5.1", "reproduce stat's SUCCESS for voting with your own PromQL (inbound, last minute)",
      "linkerd viz -n emojivoto stat deploy/voting   # its SUCCESS column, as a query",
      "stat reads the server's side: direction=\"inbound\" in response_total, for deployment voting.",
      "sum(rate(...{classification=\"success\"}[1m])) / sum(rate(...[1m])).",
      takes_answer=True)
def voting_success(mesh, answer) -> list[str]:
    return grade_query(mesh, str(answer), VOTING_SUCCESS.format(ns=NS), what="voting's inbound success")


def _proxy(pod: dict) -> dict | None:
    spec = pod.get("spec") or {}
    return next((c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                 if c.get("name") in PROXY_NAMES), None)


@task("5.2", "turn voting's proxy log level up to debug (with the rest of its pods' settings unchanged)",
      "kubectl -n emojivoto patch deploy/voting -p "
      "'{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"config.linkerd.io/proxy-log-level\":\"debug\"}}}}}'",
      f"The injector reads {LOG_LEVEL} from the pod's annotations: the Deployment's pod template.",
      "Changing the template rolls the pods; the new pods' proxy gets LINKERD2_PROXY_LOG=debug.")
def log_level(mesh) -> list[str]:
    deploy = get_or_none(mesh, "deploy", "voting", NS)
    if deploy is None:
        return ["deployment voting is gone"]
    value = annotations(template(deploy)).get(LOG_LEVEL)
    if value is None:
        if LOG_LEVEL in annotations(deploy):
            return [f"{LOG_LEVEL} is on the Deployment's own metadata; the injector reads the pod template's "
                    "(spec.template.metadata.annotations)"]
        return [f"voting's pod template has no {LOG_LEVEL} annotation"]
    if str(value).split(",")[0].split("=")[-1] not in LEVELS:
        return [f"{value!r} is not a log level the proxy knows ({', '.join(LEVELS)})"]
    if not str(value).startswith("debug"):
        return [f"the log level is {value!r}; the task asks for debug"]
    pods = running_pods(mesh, "voting", NS)
    stale = [p["metadata"]["name"] for p in pods
             if not any(e.get("name") == "LINKERD2_PROXY_LOG" and str(e.get("value", "")).startswith("debug")
                        for e in (_proxy(p) or {}).get("env") or [])]
    if not pods or stale:
        return [f"the running voting pods ({', '.join(stale) or 'none yet'}) do not run a debug proxy yet: "
                "wait for the rollout (labkit.steps.wait_rolled_out)"]
    return []


@task("5.3", "take vote-bot out of the mesh, keeping it running (the deck's `linkerd uninject`)",
      "kubectl -n emojivoto get deploy/vote-bot -o yaml | linkerd uninject - | kubectl apply -f -",
      "mesh.uninject(kind, namespace=..., name=...) is `linkerd uninject` piped to kubectl apply.",
      "Uninject removes the proxy; deleting vote-bot would stop the votes altogether.")
def uninject_bot(mesh) -> list[str]:
    if get_or_none(mesh, "deploy", "vote-bot", NS) is None:
        return ["vote-bot is gone: uninject keeps the workload, only without its proxy (re-apply emojivoto)"]
    pods = running_pods(mesh, "vote-bot", NS)
    if not pods:
        return ["vote-bot has no running pod yet: wait for the rollout"]
    meshed = [p["metadata"]["name"] for p in pods if _proxy(p) is not None]
    if meshed:
        return [f"{', '.join(meshed)} still runs linkerd-proxy"]
    others = [d for d in ("web", "emoji", "voting") if any(_proxy(p) is None for p in running_pods(mesh, d, NS))]
    return [f"{', '.join(others)} lost its proxy too: only vote-bot leaves the mesh"] if others else []
