"""Lab 1's tasks: add the viz extension, and prepare a namespace for meshed workloads."""
from __future__ import annotations

from labkit.lookups import annotations, get_or_none, labels, missing, names_of, ready_replicas
from labkit.tasks import task

NAMESPACE = "labs"
INJECT = "linkerd.io/inject"
INBOUND_POLICY = "config.linkerd.io/default-inbound-policy"
#: The values Linkerd's default-inbound-policy setting accepts (Linkerd's authorization-policy reference).
POLICIES = ("all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated",
            "deny", "audit")
WANTED_POLICY = "all-authenticated"


@task("1.1", "install the viz extension and see `linkerd check` pass with it",
      "linkerd viz install | kubectl apply -f - && linkerd check",
      "mesh.install_linkerd(viz=True) adds viz to an installed control plane (installing again changes nothing).",
      "viz's pods take a minute to become ready: mesh.wait_for(lambda m: m.check().ok, timeout='5m').")
def viz(mesh) -> list[str]:
    if get_or_none(mesh, "namespace", "linkerd-viz") is None:
        return ["the linkerd-viz namespace does not exist: viz is not installed"]
    deployments = names_of(mesh, "deploy", "linkerd-viz")
    if not deployments:
        return ["the linkerd-viz namespace has no deployments yet"]
    waiting = [d for d in deployments if ready_replicas(get_or_none(mesh, "deploy", d, "linkerd-viz")) < 1]
    if waiting:
        return [f"viz is still starting: {', '.join(waiting)} not ready yet (wait a minute, then check again)"]
    report = mesh.check()
    if not any(name.startswith("linkerd-viz") for name, _ in report.extensions):
        return ["`linkerd check` does not list the linkerd-viz extension yet"]
    failed = [c.description for c in report.failed()]
    return [f"`linkerd check` still fails: {', '.join(failed[:3])}"] if failed else []


@task("1.2", f"create the namespace {NAMESPACE} so that every pod created in it is meshed",
      f"kubectl create namespace {NAMESPACE} && kubectl annotate namespace {NAMESPACE} {INJECT}=enabled",
      f"The proxy injector reads an annotation (metadata.annotations), {INJECT}, on the pod or its namespace.",
      "Its value is the word enabled.")
def inject_namespace(mesh) -> list[str]:
    ns = get_or_none(mesh, "namespace", NAMESPACE)
    if ns is None:
        return [missing("namespace", NAMESPACE, None, names_of(mesh, "namespace"))]
    value = annotations(ns).get(INJECT)
    if value is None:
        if INJECT in labels(ns):
            return [f"{INJECT} is a label on namespace {NAMESPACE}; the injector reads the annotation"]
        return [f"namespace {NAMESPACE} has no {INJECT} annotation"]
    if value != "enabled":
        return [f"{INJECT} is {value!r}; the injector meshes pods only for 'enabled' "
                "('ingress' is for ingress controllers, 'disabled' turns it off)"]
    return []


@task("1.3", f"make the meshed pods of {NAMESPACE} accept only clients with a mesh identity ({WANTED_POLICY})",
      f"kubectl annotate namespace {NAMESPACE} {INBOUND_POLICY}={WANTED_POLICY}",
      "A namespace annotation sets the default inbound policy of every meshed pod in it.",
      f"The annotation is {INBOUND_POLICY}; the values are: {', '.join(POLICIES)}.")
def inbound_policy(mesh) -> list[str]:
    ns = get_or_none(mesh, "namespace", NAMESPACE)
    if ns is None:
        return [f"create the namespace {NAMESPACE} first (task 1.2)"]
    value = annotations(ns).get(INBOUND_POLICY)
    if value is None:
        return [f"namespace {NAMESPACE} has no {INBOUND_POLICY} annotation"]
    if value not in POLICIES:
        return [f"{value!r} is not a policy Linkerd knows (a proxy would refuse to start); "
                f"the values are: {', '.join(POLICIES)}"]
    if value != WANTED_POLICY:
        return [f"{value!r} is a valid policy, but not the one asked for: meshed clients anywhere "
                f"(mesh identity required, any cluster) is {WANTED_POLICY!r}"]
    return []
