"""``linkerd check`` computed from the embedded cluster's state.

Categories, check descriptions, hint anchors, messages and the fatal /
warning semantics follow ``pkg/healthcheck/healthcheck.go`` and the viz
extension's checks (reference/linkerd-formats.md §6, labs.md §0.D): a failed
fatal check ends the run, warnings (‼) do not fail it. Every result comes
from objects in the cluster — no namespace before ``install``, pods not
ready yet, a proxy whose version differs from the CLI's — so the report
changes exactly when the cluster does.

The real CLI retries "waiting" checks for up to five minutes; the embedded
mesh reports the state at the current virtual instant instead (wait first,
e.g. ``mesh.wait_for(lambda m: m.check().ok)``).
"""
from __future__ import annotations

from labkit.k8s import running_container_statuses
from labkit.sim import linkerd as l5d
from labkit.sim.kube.printers import pod_status

NS, VIZ = l5d.CONTROL_PLANE_NS, l5d.VIZ_NS
MIN_K8S = (1, 31, 0)  # Linkerd 2.20's minimum Kubernetes API version (pkg/k8s/api.go)
#: Prometheus' scrape interval in linkerd-viz: a proxy has metrics one interval after it is ready.
SCRAPE_INTERVAL = 10.0


class _Run:
    """Collects checks per category and stops after a fatal failure, like ``RunChecks``."""

    def __init__(self):
        self.categories: list[tuple[str, list]] = []
        self.stopped = False

    def category(self, name: str, checks: list[tuple]) -> None:
        """``checks``: (description, anchor, error or None, fatal, warning) tuples, evaluated lazily."""
        from labkit.tables import Check

        if self.stopped:
            return
        results = []
        for description, anchor, evaluate, fatal, warning in checks:
            error = evaluate() if callable(evaluate) else evaluate
            if error is _SKIP:
                continue
            if error is None:
                results.append(Check(description, "ok", anchor))
                continue
            results.append(Check(description, "warn" if warning else "fail", anchor, error))
            if fatal:
                self.stopped = True
                break
        if results:
            self.categories.append((name, results))


_SKIP = object()


def _ok(*_):
    return None


def _k8s_version(cluster) -> tuple[int, ...]:
    from labkit.sim.kube.cluster import KUBERNETES_VERSION

    return tuple(int(x) for x in KUBERNETES_VERSION.lstrip("v").split("."))


def _pods(cluster, namespace: str | None, selector: dict | None = None) -> list[dict]:
    return cluster.list("Pod", namespace, selector)


def _ns_exists(cluster, name: str) -> bool:
    return any(n["metadata"]["name"] == name for n in cluster.list("Namespace"))


def _pods_running(pods: list[dict], namespace: str | None) -> str | None:
    """``CheckPodsRunning``: every pod Running with a ready proxy."""
    if not pods:
        where = f' in the "{namespace}" namespace' if namespace else ""
        return f'No "{l5d.PROXY_CONTAINER}" containers found{where}'
    for pod in pods:
        status = pod_status(pod)
        if status in ("Completed", "Terminating"):
            continue
        if status != "Running":
            return f'{pod["metadata"]["name"]} status is {status}'
        ready = next((cs.get("ready") for cs in running_container_statuses(pod)
                      if cs.get("name") == l5d.PROXY_CONTAINER), False)
        if not ready:
            return f'The "{pod["metadata"]["name"]}" pod\'s "{l5d.PROXY_CONTAINER}" container is not ready'
    return None


def _control_plane_pods_ready(cluster) -> str | None:
    """``validateControlPlanePods``: destination, identity and proxy-injector each have a fully ready pod."""
    pods = [p for p in _pods(cluster, NS) if (p.get("status") or {}).get("phase") == "Running"]
    for component in ("destination", "identity", "proxy-injector"):
        mine = [p for p in pods if p["metadata"]["name"].startswith(f"linkerd-{component}-")]
        if not mine:
            return f'No running pods for "linkerd-{component}"'
        error = None
        for pod in mine:
            statuses = running_container_statuses(pod)
            bad = [cs["name"] for cs in statuses if not cs.get("ready")]
            if not bad:
                error = None
                break
            error = f"pod/{pod['metadata']['name']} container {bad[-1]} is not ready"
        if error:
            return error
    return None


def _versions_up_to_date(pods: list[dict]) -> str | None:
    outdated = [f"\t* {p['metadata']['name']} ({l5d.proxy_version(p)})" for p in pods
                if pod_status(p) == "Running" and l5d.proxy_container(p) is not None
                and l5d.proxy_version(p) and l5d.modelled_release(l5d.proxy_version(p)) != l5d.LINKERD_VERSION]
    if outdated:
        return "some proxies are not running the current version:\n" + "\n".join(outdated)
    return None


def _versions_match_cli(pods: list[dict]) -> str | None:
    for p in pods:
        version = l5d.proxy_version(p)
        if version and l5d.modelled_release(version) != l5d.LINKERD_VERSION:
            return f"{p['metadata']['name']} running {version} but cli running {l5d.LINKERD_VERSION}"
    return None


def _deployments_exist(cluster, namespace: str, names: list[str]) -> bool:
    have = {d["metadata"]["name"] for d in cluster.list("Deployment", namespace)}
    return all(n in have for n in names)


def _resources(cluster, kind: str, expected: list[str], label: str) -> str | None:
    have = {o["metadata"]["name"] for o in cluster.list(kind, None)}
    missing = sorted(n for n in expected if n not in have)
    return f"missing {label}: {', '.join(missing)}" if missing else None


def pre_checks(cluster, run: _Run) -> None:
    run.category("pre-kubernetes-setup", [
        ("control plane namespace does not already exist", "pre-ns",
         lambda: f'The "{NS}" namespace already exists' if _ns_exists(cluster, NS) else None, False, False),
        ("can create non-namespaced resources", "pre-k8s-cluster-k8s", None, False, False),
        ("can create ServiceAccounts", "pre-k8s", None, False, False),
        ("can create Services", "pre-k8s", None, False, False),
        ("can create Deployments", "pre-k8s", None, False, False),
        ("can create CronJobs", "pre-k8s", None, False, False),
        ("can create ConfigMaps", "pre-k8s", None, False, False),
        ("can create Secrets", "pre-k8s", None, False, False),
        ("can read Secrets", "pre-k8s", None, False, False),
        ("can read extension-apiserver-authentication configmap", "pre-k8s", None, False, False),
        ("no clock skew detected", "pre-k8s-clock-skew", None, False, True),
    ])


def core_checks(cluster, run: _Run, proxy: bool, namespace: str | None) -> None:
    config_exists = lambda: None if any(c["metadata"]["name"] == "linkerd-config" for c in cluster.list("ConfigMap", NS)) \
        else 'configmaps "linkerd-config" not found'  # noqa: E731
    run.category("linkerd-existence", [
        ("'linkerd-config' config map exists", "l5d-existence-linkerd-config", config_exists, True, False),
        ("heartbeat ServiceAccount exist", "l5d-existence-sa",
         lambda: _resources_ns(cluster, "ServiceAccount", NS, ["linkerd-heartbeat"], "ServiceAccounts"), True, False),
        ("control plane replica sets are ready", "l5d-existence-replicasets", None, True, False),
        ("no unschedulable pods", "l5d-existence-unschedulable-pods", lambda: _unschedulable(cluster), False, True),
        ("control plane pods are ready", "l5d-api-control-ready", lambda: _control_plane_pods_ready(cluster), True, False),
        ("cluster networks contains all node podCIDRs", "l5d-cluster-networks-cidr", None, False, False),
        ("cluster networks contains all pods", "l5d-cluster-networks-pods", None, False, False),
        ("cluster networks contains all services", "l5d-cluster-networks-pods", None, False, False),
    ])
    run.category("linkerd-config", [
        ("control plane Namespace exists", "l5d-existence-ns",
         lambda: None if _ns_exists(cluster, NS) else f'The "{NS}" namespace does not exist', True, False),
        ("control plane ClusterRoles exist", "l5d-existence-cr",
         lambda: _resources(cluster, "ClusterRole", [f"linkerd-{NS}-identity", f"linkerd-{NS}-proxy-injector"], "ClusterRoles"), True, False),
        ("control plane ClusterRoleBindings exist", "l5d-existence-crb",
         lambda: _resources(cluster, "ClusterRoleBinding", [f"linkerd-{NS}-identity", f"linkerd-{NS}-proxy-injector"], "ClusterRoleBindings"), True, False),
        ("control plane ServiceAccounts exist", "l5d-existence-sa",
         lambda: _resources_ns(cluster, "ServiceAccount", NS, ["linkerd-destination", "linkerd-identity", "linkerd-proxy-injector"], "ServiceAccounts"),
         True, False),
        ("control plane CustomResourceDefinitions exist", "l5d-existence-crd",
         lambda: _resources(cluster, "CustomResourceDefinition",
                            ["authorizationpolicies.policy.linkerd.io", "httproutes.policy.linkerd.io", "meshtlsauthentications.policy.linkerd.io",
                             "networkauthentications.policy.linkerd.io", "serverauthorizations.policy.linkerd.io", "servers.policy.linkerd.io",
                             "serviceprofiles.linkerd.io"], "CustomResourceDefinitions"), True, False),
        ("control plane MutatingWebhookConfigurations exist", "l5d-existence-mwc",
         lambda: _resources(cluster, "MutatingWebhookConfiguration", ["linkerd-proxy-injector-webhook-config"], "MutatingWebhookConfigurations"),
         True, False),
        ("control plane ValidatingWebhookConfigurations exist", "l5d-existence-vwc",
         lambda: _resources(cluster, "ValidatingWebhookConfiguration", ["linkerd-sp-validator-webhook-config"], "ValidatingWebhookConfigurations"),
         True, False),
        ("proxy-init container runs as root user if docker container runtime is used", "l5d-proxy-init-run-as-root", None, False, False),
    ])
    run.category("linkerd-identity", [
        ("certificate config is valid", "l5d-identity-cert-config-valid", None, True, False),
        ("trust anchors are using supported crypto algorithm", "l5d-identity-trustAnchors-use-supported-crypto", None, True, False),
        ("trust anchors are within their validity period", "l5d-identity-trustAnchors-are-time-valid", None, True, False),
        ("trust anchors are valid for at least 60 days", "l5d-identity-trustAnchors-not-expiring-soon", None, False, True),
        ("issuer cert is using supported crypto algorithm", "l5d-identity-issuer-cert-uses-supported-crypto", None, True, False),
        ("issuer cert is within its validity period", "l5d-identity-issuer-cert-is-time-valid", None, True, False),
        ("issuer cert is valid for at least 60 days", "l5d-identity-issuer-cert-not-expiring-soon", None, False, True),
        ("issuer cert is issued by the trust anchor", "l5d-identity-issuer-cert-issued-by-trust-anchor", None, False, False),
    ])
    run.category("linkerd-webhooks-and-apisvc-tls", [
        ("proxy-injector webhook has valid cert", "l5d-proxy-injector-webhook-cert-valid", None, True, False),
        ("proxy-injector cert is valid for at least 60 days", "l5d-proxy-injector-webhook-cert-not-expiring-soon", None, False, True),
        ("sp-validator webhook has valid cert", "l5d-sp-validator-webhook-cert-valid", None, True, False),
        ("sp-validator cert is valid for at least 60 days", "l5d-sp-validator-webhook-cert-not-expiring-soon", None, False, True),
        ("policy-validator webhook has valid cert", "l5d-policy-validator-webhook-cert-valid", None, True, False),
        ("policy-validator cert is valid for at least 60 days", "l5d-policy-validator-webhook-cert-not-expiring-soon", None, False, True),
    ])
    if proxy:
        run.category("linkerd-identity-data-plane", [
            ("data plane proxies certificate match CA", "l5d-identity-data-plane-proxies-certs-match-ca", None, False, True),
        ])
    run.category("linkerd-version", version_checks())
    run.category("control-plane-version", [
        ("can retrieve the control plane version", "l5d-version-control", None, True, False),
        ("control plane is up-to-date", "l5d-version-control", None, False, True),
        ("control plane and cli versions match", "l5d-version-control", None, False, True),
    ])
    cp_pods = [p for p in _pods(cluster, NS) if l5d.is_meshed(p)]
    run.category("linkerd-control-plane-proxy", [
        ("control plane proxies are healthy", "l5d-cp-proxy-healthy", lambda: _pods_running(cp_pods, NS), True, False),
        ("control plane proxies are up-to-date", "l5d-cp-proxy-version", lambda: _versions_up_to_date(cp_pods), False, True),
        ("control plane proxies and cli versions match", "l5d-cp-proxy-cli-version", lambda: _versions_match_cli(cp_pods), False, True),
    ])
    if proxy:
        data = [p for p in _pods(cluster, namespace, {l5d.CONTROL_PLANE_NS_LABEL: NS})]
        run.category("linkerd-data-plane", [
            ("data plane namespace exists", "l5d-data-plane-exists",
             lambda: None if namespace is None or _ns_exists(cluster, namespace) else f'The "{namespace}" namespace does not exist', True, False),
            ("data plane proxies are ready", "l5d-data-plane-ready", lambda: _pods_running(data, namespace), True, False),
            ("data plane is up-to-date", "l5d-data-plane-version", lambda: _versions_up_to_date(data), False, True),
            ("data plane and cli versions match", "l5d-data-plane-cli-version", lambda: _versions_match_cli(data), False, True),
            ("data plane pod labels are configured correctly", "l5d-data-plane-pod-labels", None, False, True),
            ("data plane service labels are configured correctly", "l5d-data-plane-services-labels", None, False, True),
            ("data plane service annotations are configured correctly", "l5d-data-plane-services-annotations", None, False, True),
            ("opaque ports are properly annotated", "linkerd-opaque-ports-definition", None, False, True),
        ])


def version_checks() -> list[tuple]:
    return [
        ("can determine the latest version", "l5d-version-latest", None, False, True),
        ("cli is up-to-date", "l5d-version-cli", None, False, True),
    ]


def viz_checks(cluster, run: _Run, proxy: bool, namespace: str | None) -> None:
    if not _ns_exists(cluster, VIZ):
        return  # `linkerd check` runs an extension's checks only when it is installed
    pods = _pods(cluster, VIZ)
    names = lambda: {p["metadata"]["name"].rsplit("-", 2)[0] for p in pods}  # noqa: E731

    def pods_running():
        missing = [n for n in ("web", "tap", "metrics-api", "tap-injector") if n not in names()]
        if missing:
            return f"No running pods for \"{missing[0]}\""
        return _pods_running(pods, VIZ)

    def injected():
        bare = [p["metadata"]["name"] for p in pods if l5d.proxy_container(p) is None]
        return f"could not find proxy container for {bare[0]} pod" if bare else None

    def prometheus():
        return None if "prometheus" in names() else 'missing pods: "prometheus"'

    def self_check():
        ready = cluster.control_plane()["viz"]
        return None if ready else "Error calling Prometheus from the control plane: server_error: server error: 503"

    checks = [
        ("linkerd-viz Namespace exists", "l5d-viz-ns-exists", None, True, False),
        ("linkerd-viz ClusterRoles exist", "l5d-viz-cr-exists",
         lambda: _resources(cluster, "ClusterRole", [f"linkerd-{VIZ}-tap", f"linkerd-{VIZ}-metrics-api", f"linkerd-{VIZ}-tap-admin",
                                                     "linkerd-tap-injector"], "ClusterRoles"), True, False),
        ("linkerd-viz ClusterRoleBindings exist", "l5d-viz-crb-exists",
         lambda: _resources(cluster, "ClusterRoleBinding", [f"linkerd-{VIZ}-tap", f"linkerd-{VIZ}-metrics-api",
                                                            f"linkerd-{VIZ}-tap-auth-delegator", "linkerd-tap-injector"], "ClusterRoleBindings"),
         True, False),
        ("tap API server has valid cert", "l5d-tap-cert-valid", None, True, False),
        ("tap API server cert is valid for at least 60 days", "l5d-tap-cert-not-expiring-soon", None, False, True),
        ("tap API service is running", "l5d-tap-api",
         lambda: None if _ready_pod(pods, "tap") else "FailedDiscoveryCheck: failing or missing response from https://tap.linkerd-viz.svc:443/apis/tap.linkerd.io/v1alpha1",
         False, True),
        ("linkerd-viz pods are injected", "l5d-viz-pods-injection", injected, False, True),
        ("viz extension pods are running", "l5d-viz-pods-running", pods_running, False, True),
        ("viz extension proxies are healthy", "l5d-viz-proxy-healthy",
         lambda: _pods_running([p for p in pods if l5d.is_meshed(p)], VIZ), False, True),
        ("viz extension proxies are up-to-date", "l5d-viz-proxy-cp-version", lambda: _versions_up_to_date(pods), False, True),
        ("viz extension proxies and cli versions match", "l5d-viz-proxy-cli-version", lambda: _versions_match_cli(pods), False, True),
        ("prometheus is installed and configured correctly", "l5d-viz-prometheus", prometheus, False, True),
        ("can initialize the client", "l5d-viz-existence-client", None, True, False),
        ("viz extension self-check", "l5d-viz-metrics-api", self_check, True, False),
    ]
    run.category("linkerd-viz", checks)
    if proxy:
        data = _pods(cluster, namespace, {l5d.CONTROL_PLANE_NS_LABEL: NS})

        def metrics_present():
            prom = [p for p in pods if p["metadata"]["name"].startswith("prometheus-")]
            prom_since = _ready_since(prom[0]) if prom else None
            missing = []
            for pod in data:
                since = _ready_since(pod, l5d.PROXY_CONTAINER)
                if since is None or prom_since is None or cluster.clock.t < max(since, prom_since) + SCRAPE_INTERVAL:
                    missing.append(pod["metadata"]["name"])
            return f"Data plane metrics not found for {', '.join(missing)}." if missing else None

        run.category("linkerd-viz-data-plane", [
            ("data plane namespace exists", "l5d-data-plane-exists",
             lambda: None if namespace is None or _ns_exists(cluster, namespace) else f'The "{namespace}" namespace does not exist', True, False),
            ("prometheus is authorized to scrape data plane pods", "l5d-viz-data-plane-prom-authz", None, False, True),
            ("data plane proxy metrics are present in Prometheus", "l5d-data-plane-prom", metrics_present, False, True),
        ])


def _ready_pod(pods: list[dict], component: str) -> bool:
    return any(p["metadata"]["name"].startswith(component + "-") and _ready_since(p) is not None
               and not p["metadata"]["name"].startswith(component + "-injector") for p in pods)


def _ready_since(pod: dict, container: str | None = None) -> float | None:
    from labkit.sim.kube.objects import parse_rfc3339

    status = pod.get("status") or {}
    if container is not None:
        cs = next((c for c in running_container_statuses(pod) if c.get("name") == container), None)
        if not cs or not cs.get("ready"):
            return None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return parse_rfc3339(cond["lastTransitionTime"])
    return None


def _resources_ns(cluster, kind: str, namespace: str, expected: list[str], label: str) -> str | None:
    have = {o["metadata"]["name"] for o in cluster.list(kind, namespace)}
    missing = sorted(n for n in expected if n not in have)
    return f"missing {label}: {', '.join(missing)}" if missing else None


def _unschedulable(cluster) -> str | None:
    for pod in _pods(cluster, NS):
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("reason") == "Unschedulable":
                return f"{pod['metadata']['name']}: {cond.get('message', '')}"
    return None


def check(cluster, pre: bool = False, proxy: bool = False, namespace: str | None = None):
    """``linkerd check`` [``--pre``] [``--proxy``] [``-n namespace``] → :class:`labkit.tables.CheckReport`."""
    from labkit.tables import CheckReport

    if pre and proxy:
        raise ValueError("--pre and --proxy cannot be combined (linkerd check runs one or the other)")
    run = _Run()
    version = _k8s_version(cluster)
    run.category("kubernetes-api", [
        ("can initialize the client", "k8s-api", None, True, False),
        ("can query the Kubernetes API", "k8s-api", None, True, False),
    ])
    run.category("kubernetes-version", [
        ("is running the minimum Kubernetes API version", "k8s-version",
         None if version >= MIN_K8S else f"Kubernetes is on version [{'.'.join(map(str, version))}], but version [{'.'.join(map(str, MIN_K8S))}] or more recent is required",
         False, False),
    ])
    if pre:
        pre_checks(cluster, run)
        run.category("linkerd-version", version_checks())
        return CheckReport(run.categories)
    core_checks(cluster, run, proxy, namespace)
    extensions = _Run()
    if not run.stopped:
        extensions.category("linkerd-extension-checks", [
            ("namespace configuration for extensions", "l5d-extension-namespaces", None, False, True),
        ])
        viz_checks(cluster, extensions, proxy, namespace)
    core = run.categories + [c for c in extensions.categories if c[0] == "linkerd-extension-checks"]
    ext = [c for c in extensions.categories if c[0] != "linkerd-extension-checks"]
    return CheckReport(core, extensions=ext)
