"""Lab 0's tasks: the kubectl basics every later lab assumes — a namespace, a Deployment, a Service."""
from __future__ import annotations

from labkit.lookups import get_or_none, labels, missing, names_of, ready_replicas, template
from labkit.tasks import task

NAMESPACE = "sandbox"
NAME = "hello"
REPLICAS = 2


@task("0.1", f"create the namespace {NAMESPACE}", f"kubectl create namespace {NAMESPACE}",
      "A Namespace needs only apiVersion v1, kind Namespace and metadata.name.",
      f"mesh.apply([{{'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {{'name': '{NAMESPACE}'}}}}])")
def namespace(mesh) -> list[str]:
    ns = get_or_none(mesh, "namespace", NAMESPACE)
    if ns is None:
        return [missing("namespace", NAMESPACE, None, names_of(mesh, "namespace"))]
    phase = (ns.get("status") or {}).get("phase")
    return [] if phase in (None, "Active") else [f"namespace {NAMESPACE} is {phase}, not Active"]


@task("0.2", f"run nginx as the Deployment {NAME} with {REPLICAS} ready replicas in {NAMESPACE}",
      f"kubectl -n {NAMESPACE} create deployment {NAME} --image=nginx:1.27 --replicas={REPLICAS}",
      "A Deployment needs spec.selector.matchLabels, and the same labels on spec.template.metadata.labels.",
      "The container image is nginx with a tag, e.g. nginx:1.27; spec.replicas says how many pods.",
      "After applying, give the pods time to start: mesh.wait('30s'), then check again.")
def deployment(mesh) -> list[str]:
    deploy = get_or_none(mesh, "deploy", NAME, NAMESPACE)
    if deploy is None:
        elsewhere = [ns for ns in names_of(mesh, "namespace") if ns != NAMESPACE
                     and get_or_none(mesh, "deploy", NAME, ns) is not None]
        if elsewhere:
            return [f"deployment {NAME} is in namespace {elsewhere[0]}, not {NAMESPACE}: "
                    f"set metadata.namespace (or apply with namespace={NAMESPACE!r})"]
        return [missing("deployment", NAME, NAMESPACE, names_of(mesh, "deploy", NAMESPACE))]
    problems = []
    containers = (template(deploy).get("spec") or {}).get("containers") or []
    images = [c.get("image", "") for c in containers]
    if not any(image.split("/")[-1].split(":")[0].split("@")[0] == "nginx" for image in images):
        problems.append(f"its container runs {', '.join(images) or 'no image'}, not nginx")
    wanted = (deploy.get("spec") or {}).get("replicas", 1)
    if wanted != REPLICAS:
        problems.append(f"spec.replicas is {wanted}; the task asks for {REPLICAS}")
    ready = ready_replicas(deploy)
    if not problems and ready < REPLICAS:
        problems.append(f"{ready} of {REPLICAS} replicas are ready so far: wait a little (mesh.wait('30s')) "
                        f"and look at mesh.pods({NAMESPACE!r})")
    return problems


@task("0.3", f"expose {NAME} inside the cluster as the Service {NAME} on port 80",
      f"kubectl -n {NAMESPACE} expose deployment {NAME} --port=80",
      "A Service's spec.selector must equal labels the pods carry (look at the Deployment's template labels).",
      "spec.ports: [{port: 80, targetPort: 80}] — nginx listens on 80.")
def service(mesh) -> list[str]:
    svc = get_or_none(mesh, "svc", NAME, NAMESPACE)
    if svc is None:
        return [missing("service", NAME, NAMESPACE, names_of(mesh, "svc", NAMESPACE))]
    spec = svc.get("spec") or {}
    problems = []
    if 80 not in [p.get("port") for p in spec.get("ports") or []]:
        problems.append(f"the Service does not listen on port 80 (ports: {[p.get('port') for p in spec.get('ports') or []]})")
    selector = spec.get("selector") or {}
    pod_labels = labels(template(get_or_none(mesh, "deploy", NAME, NAMESPACE)))
    if not selector:
        problems.append("the Service has no selector, so it picks no pods")
    elif pod_labels and any(pod_labels.get(k) != v for k, v in selector.items()):
        problems.append(f"its selector {selector} matches none of {NAME}'s pods (they carry {pod_labels})")
    if not problems:
        endpoints = get_or_none(mesh, "endpoints", NAME, NAMESPACE) or {}
        addresses = [a for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]
        if not addresses:
            problems.append("the Service has no ready endpoints yet: is the Deployment of task 0.2 ready?")
    return problems
