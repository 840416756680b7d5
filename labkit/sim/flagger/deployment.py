"""Flagger's canary controller for Deployments: primary workload, readiness, promotion, status.

Mirrors ``pkg/canary/deployment_controller.go``, ``deployment_ready.go``,
``config_tracker.go``, ``hpa_reconciler.go``, ``spec.go`` and ``status.go``
(Flagger v1.44; reference/flagger-and-policies.md §1.3, §1.6, §1.7, §1.10):

* ``initialize`` creates ``<target>-primary`` (selector label renamed to
  ``<value>-primary``, a new ``flagger-id`` pod annotation, owned by the
  Canary), the ``-primary`` copies of tracked ConfigMaps/Secrets, and the
  primary HPA; while the canary is Initializing it waits for the primary to be
  ready, then scales the target to zero;
* ``is_primary_ready`` / ``is_canary_ready`` read the Deployment's status the
  way ``isDeploymentReady`` does, including the non-retriable progress
  deadline;
* ``promote`` copies the target's template (and strategy, minReadySeconds...)
  onto the primary, which starts a rolling update;
* the status setters write the Canary's ``/status`` with Flagger's side
  effects (``lastTransitionTime`` on every write, weight and iterations reset
  by phase changes, the ``Promoted`` condition).

Errors are returned as ``(retriable, message)`` pairs, the Go ``(bool,
error)`` shape, with Flagger's exact wording.
"""
from __future__ import annotations

import hashlib
import json

from labkit.sim.flagger.spec import SELECTOR_LABELS, CanarySpec
from labkit.sim.kube.objects import clone, fnv32a, owner_ref, parse_rfc3339, rfc3339, safe_encode

CANARY_API_VERSION = "flagger.app/v1beta1"
FLAGGER_ID = "flagger-id"
CONFIG_TRACKING = "flagger.app/config-tracking"
#: Annotations Flagger does not copy onto generated objects (``filterMetadata``).
_FILTERED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_TOOLKIT_MARKER = "toolkit.fluxcd.io"


def compute_hash(obj) -> str:
    """``ComputeHash``: FNV-32a over the object, then ``SafeEncodeString`` of the decimal (spec.go)."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return safe_encode(str(fnv32a(data)))


def not_found(name: str, namespace: str) -> str:
    """Flagger's error for a Deployment it cannot get (``deployment X.ns get query error: ...``)."""
    return f'deployment {name}.{namespace} get query error: deployments.apps "{name}" not found'


def _condition(cond_list, ctype: str) -> dict | None:
    for cond in cond_list or []:
        if cond.get("type") == ctype:
            return cond
    return None


# -- the Promoted condition --------------------------------------------------------------------

_CONDITIONS = {  # phase → (status, message); "{kind}" is spec.targetRef.kind
    "Initializing": ("Unknown", "New {kind} detected, starting initialization."),
    "Initialized": ("True", "{kind} initialization completed."),
    "Waiting": ("Unknown", "Waiting for approval."),
    "WaitingPromotion": ("Unknown", "Waiting for approval."),
    "Progressing": ("Unknown", "New revision detected, progressing canary analysis."),
    "Promoting": ("Unknown", "Canary analysis completed, starting primary rolling update."),
    "Finalising": ("Unknown", "Canary analysis completed, routing all traffic to primary."),
    "Succeeded": ("True", "Canary analysis completed successfully, promotion finished."),
    "Failed": ("False", "Canary analysis failed, {kind} scaled to zero."),
}


def make_status_conditions(cd: CanarySpec, phase: str, now: str) -> list[dict] | None:
    """``MakeStatusConditions``: the new ``Promoted`` condition, or None when it would not change."""
    status, message = _CONDITIONS.get(phase, _CONDITIONS["Initializing"])
    message = message.format(kind=cd.target_kind)
    current = _condition(cd.status.get("conditions"), "Promoted")
    if current is not None and current.get("status") == status and current.get("reason") == phase:
        return None
    transition = current["lastTransitionTime"] if current is not None and current.get("status") == status else now
    return [{"type": "Promoted", "status": status, "lastUpdateTime": now, "lastTransitionTime": transition,
             "reason": phase, "message": message}]


class DeploymentController:
    """The Kubernetes half of Flagger's work on one cluster (stateless between calls)."""

    def __init__(self, cluster, rng, include_label_prefixes=("app.kubernetes.io",)):
        self.cluster = cluster
        self.api = cluster.api
        self.clock = cluster.clock
        self.types = cluster.types
        self.rng = rng
        self.include_label_prefixes = tuple(include_label_prefixes)

    # -- lookups -----------------------------------------------------------------------------
    @property
    def canary_type(self):
        return self.cluster.discovery.by_key("flagger.app", "Canary")

    def canary(self, namespace: str, name: str) -> dict | None:
        rtype = self.canary_type
        return self.api.get(rtype, namespace, name) if rtype else None

    def deployment(self, namespace: str, name: str) -> dict | None:
        return self.api.get(self.types.deployment, namespace, name)

    def selector_label(self, deploy: dict) -> tuple[str | None, str | None, str | None]:
        """``getSelectorLabel``: the first of app / name / app.kubernetes.io/name in the selector."""
        match = ((deploy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        for label in SELECTOR_LABELS:
            if label in match:
                return label, match[label], None
        return None, None, (f"deployment {deploy['metadata']['name']}.{deploy['metadata'].get('namespace')} "
                            f"spec.selector.matchLabels must contain one of [{' '.join(SELECTOR_LABELS)}]")

    def get_metadata(self, cd: CanarySpec) -> tuple[str | None, str | None, str | None]:
        """``GetMetadata``: (label, value, error) of the target's selector."""
        _target, label, value, err = self._target_and_label(cd)
        return (None, None, err) if err else (label, value, None)

    def _target_and_label(self, cd: CanarySpec) -> tuple[dict | None, str | None, str | None, str | None]:
        """The target Deployment with its selector label and value, or the error Flagger logs instead."""
        target = self.deployment(cd.namespace, cd.target)
        if target is None:
            return None, None, None, not_found(cd.target, cd.namespace)
        label, value, err = self.selector_label(target)
        if err:
            return target, None, None, f"getSelectorLabel failed: {err}"
        return target, label, value, None

    # -- labels and annotations --------------------------------------------------------------------
    def _include_labels(self, labels: dict) -> dict:
        out = {}
        for key, value in (labels or {}).items():
            if _TOOLKIT_MARKER in key:
                continue
            if any(p == "*" or key.startswith(p) for p in self.include_label_prefixes):
                out[key] = value
        return out

    @staticmethod
    def _primary_labels(labels: dict, value: str, label: str) -> dict:
        out = dict(labels or {})
        out[label] = value
        return out

    @staticmethod
    def _filter_metadata(annotations: dict | None) -> dict:
        return {k: v for k, v in (annotations or {}).items()
                if k not in _FILTERED_ANNOTATIONS and _TOOLKIT_MARKER not in k}

    def _annotations(self, annotations: dict | None) -> dict:
        """``makeAnnotations``: the pod annotations plus a fresh ``flagger-id`` (forces a rollout)."""
        raw = bytes(self.rng.getrandbits(8) for _ in range(16))
        uid = f"{raw[0:4].hex()}-{raw[4:6].hex()}-{raw[6:8].hex()}-{raw[8:10].hex()}-{raw[10:].hex()}"
        out = {k: v for k, v in (annotations or {}).items() if k != FLAGGER_ID}
        out[FLAGGER_ID] = uid
        return out

    def _owner(self, cd: CanarySpec) -> dict:
        return owner_ref(cd.obj, "Canary", CANARY_API_VERSION)

    # -- config tracking (config_tracker.go) ----------------------------------------------------------
    def target_configs(self, namespace: str, template: dict) -> dict[str, dict]:
        """ConfigMaps and Secrets the pod template uses, keyed ``configmap/<name>`` / ``secret/<name>``."""
        spec = template.get("spec") or {}
        refs: list[tuple[str, str]] = []
        for vol in spec.get("volumes") or []:
            if (vol.get("configMap") or {}).get("name"):
                refs.append(("configmap", vol["configMap"]["name"]))
            if (vol.get("secret") or {}).get("secretName"):
                refs.append(("secret", vol["secret"]["secretName"]))
            for src in (vol.get("projected") or {}).get("sources") or []:
                if (src.get("configMap") or {}).get("name"):
                    refs.append(("configmap", src["configMap"]["name"]))
                if (src.get("secret") or {}).get("name"):
                    refs.append(("secret", src["secret"]["name"]))
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for env in c.get("env") or []:
                vf = env.get("valueFrom") or {}
                if (vf.get("configMapKeyRef") or {}).get("name"):
                    refs.append(("configmap", vf["configMapKeyRef"]["name"]))
                if (vf.get("secretKeyRef") or {}).get("name"):
                    refs.append(("secret", vf["secretKeyRef"]["name"]))
            for ef in c.get("envFrom") or []:
                if (ef.get("configMapRef") or {}).get("name"):
                    refs.append(("configmap", ef["configMapRef"]["name"]))
                if (ef.get("secretRef") or {}).get("name"):
                    refs.append(("secret", ef["secretRef"]["name"]))
        out: dict[str, dict] = {}
        for kind, name in refs:
            rtype = self.types.configmap if kind == "configmap" else self.cluster.discovery.by_key("", "Secret")
            obj = self.api.get(rtype, namespace, name)
            if obj is None:
                continue
            if ((obj.get("metadata") or {}).get("annotations") or {}).get(CONFIG_TRACKING) == "disabled":
                continue
            out[f"{kind}/{name}"] = obj
        return out

    @staticmethod
    def _checksum(obj: dict) -> str:
        payload = {k: obj.get(k) for k in ("data", "binaryData", "stringData") if obj.get(k) is not None}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def tracked_configs(self, cd: CanarySpec) -> dict[str, str]:
        deploy = self.deployment(cd.namespace, cd.target)
        if deploy is None:
            return {}
        configs = self.target_configs(cd.namespace, deploy["spec"]["template"])
        return {key: self._checksum(obj) for key, obj in sorted(configs.items())}

    def have_dependencies_changed(self, cd: CanarySpec) -> bool:
        """``HasConfigChanged``: a tracked ConfigMap/Secret's data differs from ``status.trackedConfigs``."""
        current = self.tracked_configs(cd)
        if not current:
            return False
        return current != (cd.status.get("trackedConfigs") or {})

    def _create_primary_configs(self, cd: CanarySpec, configs: dict[str, dict]) -> None:
        for key, obj in configs.items():
            kind = key.split("/", 1)[0]
            rtype = self.types.configmap if kind == "configmap" else self.cluster.discovery.by_key("", "Secret")
            name = f"{obj['metadata']['name']}-primary"
            copy = {"apiVersion": "v1", "kind": obj.get("kind", "ConfigMap" if kind == "configmap" else "Secret"),
                    "metadata": {"name": name, "namespace": cd.namespace,
                                 "labels": self._include_labels(obj["metadata"].get("labels")),
                                 "annotations": self._filter_metadata(obj["metadata"].get("annotations")),
                                 "ownerReferences": [self._owner(cd)]}}
            for field in ("data", "binaryData", "type"):
                if field in obj:
                    copy[field] = clone(obj[field])
            live = self.api.get(rtype, cd.namespace, name)
            if live is None:
                self.api.create(rtype, copy)
            else:
                merged = clone(live)
                for field in ("data", "binaryData"):
                    if field in copy:
                        merged[field] = copy[field]
                    else:
                        merged.pop(field, None)
                self.api.update(rtype, merged)

    @staticmethod
    def _primary_template_spec(template: dict, configs: dict[str, dict]) -> dict:
        """The target's pod spec with tracked ConfigMap/Secret references renamed to ``-primary``."""
        spec = clone(template.get("spec") or {})
        cms = {k.split("/", 1)[1] for k in configs if k.startswith("configmap/")}
        secrets = {k.split("/", 1)[1] for k in configs if k.startswith("secret/")}

        def rename(ref: dict, key: str, names: set) -> None:
            if ref and ref.get(key) in names:
                ref[key] = ref[key] + "-primary"

        for vol in spec.get("volumes") or []:
            rename(vol.get("configMap") or {}, "name", cms)
            rename(vol.get("secret") or {}, "secretName", secrets)
            for src in (vol.get("projected") or {}).get("sources") or []:
                rename(src.get("configMap") or {}, "name", cms)
                rename(src.get("secret") or {}, "name", secrets)
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for env in c.get("env") or []:
                vf = env.get("valueFrom") or {}
                rename(vf.get("configMapKeyRef") or {}, "name", cms)
                rename(vf.get("secretKeyRef") or {}, "name", secrets)
            for ef in c.get("envFrom") or []:
                rename(ef.get("configMapRef") or {}, "name", cms)
                rename(ef.get("secretRef") or {}, "name", secrets)
        return spec

    # -- the primary ----------------------------------------------------------------------------------
    def _create_primary(self, cd: CanarySpec) -> str | None:
        target, label, value, err = self._target_and_label(cd)
        if err:
            return err
        if self.deployment(cd.namespace, cd.primary) is not None:
            return None
        configs = self.target_configs(cd.namespace, target["spec"]["template"])
        self._create_primary_configs(cd, configs)
        tspec = target["spec"]
        replicas = tspec.get("replicas", 1) or 1
        primary_value = f"{value}-primary"
        template = target["spec"]["template"]
        primary = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": cd.primary, "namespace": cd.namespace,
                         "labels": self._primary_labels(self._include_labels(target["metadata"].get("labels")), primary_value, label),
                         "annotations": self._filter_metadata(target["metadata"].get("annotations")),
                         "ownerReferences": [self._owner(cd)]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {label: primary_value}},
                     "template": {"metadata": {"labels": self._primary_labels((template.get("metadata") or {}).get("labels"),
                                                                             primary_value, label),
                                               "annotations": self._annotations((template.get("metadata") or {}).get("annotations"))},
                                  "spec": self._primary_template_spec(template, configs)}},
        }
        for field in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"):
            if field in tspec:
                primary["spec"][field] = clone(tspec[field])
        if not primary["metadata"]["annotations"]:
            del primary["metadata"]["annotations"]
        self.api.create(self.types.deployment, primary)
        return None

    def initialize(self, cd: CanarySpec) -> tuple[bool, str | None]:
        """``Initialize``: create the primary; while initializing wait for it, then scale the target to 0."""
        err = self._create_primary(cd)
        if err:
            return True, f"createPrimaryDeployment failed: {err}"
        if cd.phase in ("", "Initializing"):
            if not cd.skip_analysis():
                retriable, err = self.is_primary_ready(cd)
                if err:
                    return retriable, err
        return True, None

    def reconcile_primary_hpa(self, cd: CanarySpec, init: bool) -> str | None:
        """``reconcilePrimaryHpa``: ``<hpa>-primary`` scaling the primary with the target HPA's bounds."""
        ref = cd.autoscaler
        if not ref:
            return None
        if ref.get("kind", "HorizontalPodAutoscaler") != "HorizontalPodAutoscaler":
            return f"cd.Spec.AutoscalerRef.Kind is invalid: {ref.get('kind')}"
        hpa = self.api.get(self.types.hpa, cd.namespace, ref.get("name", ""))
        if hpa is None:
            return (f"HorizontalPodAutoscaler {ref.get('name')}.{cd.namespace} get query error: "
                    f'horizontalpodautoscalers.autoscaling "{ref.get("name")}" not found')
        spec = clone(hpa["spec"])
        spec["scaleTargetRef"] = {**spec.get("scaleTargetRef", {}), "name": cd.primary}
        name = f"{ref.get('name')}-primary"
        live = self.api.get(self.types.hpa, cd.namespace, name)
        if live is None:
            self.api.create(self.types.hpa, {
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": cd.namespace,
                             "labels": self._filter_metadata(hpa["metadata"].get("labels")),
                             "ownerReferences": [self._owner(cd)]},
                "spec": spec})
            return None
        if not init:
            new = clone(live)
            for field in ("minReplicas", "maxReplicas", "metrics", "behavior"):
                if field in spec:
                    new["spec"][field] = spec[field]
            self.api.update(self.types.hpa, new)
        return None

    def promote(self, cd: CanarySpec) -> str | None:
        """``Promote``: copy the target's pod template (and rollout settings) onto the primary."""
        target, label, value, err = self._target_and_label(cd)
        if err:
            return err
        primary = self.deployment(cd.namespace, cd.primary)
        if primary is None:
            return not_found(cd.primary, cd.namespace)
        configs = self.target_configs(cd.namespace, target["spec"]["template"])
        self._create_primary_configs(cd, configs)
        new = clone(primary)
        tspec = target["spec"]
        for field in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"):
            if field in tspec:
                new["spec"][field] = clone(tspec[field])
            else:
                new["spec"].pop(field, None)
        if not cd.autoscaler and "replicas" in tspec:
            new["spec"]["replicas"] = tspec["replicas"]
        template = tspec["template"]
        new["spec"]["template"] = {
            "metadata": {"labels": self._primary_labels((template.get("metadata") or {}).get("labels"), f"{value}-primary", label),
                         "annotations": self._annotations((template.get("metadata") or {}).get("annotations"))},
            "spec": self._primary_template_spec(template, configs),
        }
        self.api.update(self.types.deployment, new)
        return self.reconcile_primary_hpa(cd, init=False)

    # -- scaling ---------------------------------------------------------------------------------------
    def _set_replicas(self, namespace: str, name: str, replicas_of) -> str | None:
        deploy = self.deployment(namespace, name)
        if deploy is None:
            return not_found(name, namespace)
        new = clone(deploy)
        new["spec"]["replicas"] = replicas_of(deploy["spec"].get("replicas", 1))
        self.api.update(self.types.deployment, new)
        return None

    def scale_to_zero(self, cd: CanarySpec) -> str | None:
        return self._set_replicas(cd.namespace, cd.target, lambda _: 0)

    def scale_from_zero(self, cd: CanarySpec) -> str | None:
        """``ScaleFromZero``: one replica (the HPA takes it from there), or the count already set."""
        return self._set_replicas(cd.namespace, cd.target, lambda r: r if r and r > 0 else 1)

    # -- readiness (deployment_ready.go) --------------------------------------------------------------
    def _is_deployment_ready(self, deploy: dict, deadline: int, ready_threshold: int) -> tuple[bool, str | None]:
        retriable = True
        status = deploy.get("status") or {}
        spec = deploy.get("spec") or {}
        if deploy["metadata"].get("generation", 1) <= status.get("observedGeneration", 0):
            conditions = status.get("conditions") or []
            progress = _condition(conditions, "Progressing")
            if progress is not None:
                available = _condition(conditions, "Available")
                if available is not None and available.get("status") == "False" and \
                        available.get("reason") == "MinimumReplicasUnavailable":
                    since = parse_rfc3339(available["lastUpdateTime"])
                    retriable = not (since + deadline < self.clock.t)
            updated = status.get("updatedReplicas", 0)
            threshold_updated = int(updated * (ready_threshold / 100.0))
            if progress is not None and progress.get("reason") == "ProgressDeadlineExceeded":
                return False, f'deployment "{deploy["metadata"]["name"]}" exceeded its progress deadline'
            if spec.get("replicas") is not None and updated < spec["replicas"]:
                return retriable, (f"waiting for rollout to finish: {updated} out of {spec['replicas']} "
                                   "new replicas have been updated")
            if status.get("replicas", 0) > updated:
                return retriable, (f"waiting for rollout to finish: {status.get('replicas', 0) - updated} "
                                   "old replicas are pending termination")
            if status.get("availableReplicas", 0) < threshold_updated:
                return retriable, (f"waiting for rollout to finish: {status.get('availableReplicas', 0)} of "
                                   f"{threshold_updated} (readyThreshold {ready_threshold}%) updated replicas are available")
            return True, None
        return True, "waiting for rollout to finish: observed deployment generation less than desired generation"

    def is_primary_ready(self, cd: CanarySpec) -> tuple[bool, str | None]:
        primary = self.deployment(cd.namespace, cd.primary)
        if primary is None:
            return True, not_found(cd.primary, cd.namespace)
        retriable, err = self._is_deployment_ready(primary, cd.progress_deadline(), cd.primary_ready_threshold())
        if err:
            return retriable, f"{cd.primary}.{cd.namespace} not ready: {err}"
        return True, None

    def is_canary_ready(self, cd: CanarySpec) -> tuple[bool, str | None]:
        target = self.deployment(cd.namespace, cd.target)
        if target is None:
            return True, not_found(cd.target, cd.namespace)
        retriable, err = self._is_deployment_ready(target, cd.progress_deadline(), cd.canary_ready_threshold())
        if err:
            return retriable, f"canary deployment {cd.target}.{cd.namespace} not ready: {err}"
        return True, None

    # -- revision detection (spec.go) ---------------------------------------------------------------------
    def target_hash(self, cd: CanarySpec) -> str | None:
        target = self.deployment(cd.namespace, cd.target)
        return compute_hash(target["spec"]["template"]) if target is not None else None

    def has_target_changed(self, cd: CanarySpec) -> bool:
        """``hasSpecChanged`` on the pod template, honouring the manual-rollback rule."""
        new_hash = self.target_hash(cd)
        if new_hash is None:
            return False
        last = cd.status.get("lastAppliedSpec", "")
        if not last:
            return True
        if cd.status.get("lastPromotedSpec") == new_hash:
            return False
        return last != new_hash

    # -- status (status.go) ------------------------------------------------------------------------------
    def _write_status(self, cd: CanarySpec, mutate) -> CanarySpec:
        """Re-read the Canary, apply ``mutate(status, current)`` and write ``/status`` (RetryOnConflict)."""
        rtype = self.canary_type
        live = self.api.get(rtype, cd.namespace, cd.name)
        if live is None:
            return cd
        current = CanarySpec(live)
        status = clone(live.get("status") or {})
        mutate(status, current)
        status["lastTransitionTime"] = rfc3339(self.clock.t)
        stored = self.api.update_status(rtype, live, _ordered(status))
        return CanarySpec(stored)

    def sync_status(self, cd: CanarySpec, phase: str, weight: int = 0, failed: int = 0, iterations: int = 0) -> CanarySpec:
        """``SyncStatus``: phase, weight, failed checks and iterations at once; lastAppliedSpec = hash."""
        spec_hash = self.target_hash(cd) or ""
        configs = self.tracked_configs(cd)
        now = rfc3339(self.clock.t)

        def mutate(status: dict, current: CanarySpec) -> None:
            status.update(phase=phase, canaryWeight=weight, failedChecks=failed, iterations=iterations,
                          lastAppliedSpec=spec_hash)
            if configs:
                status["trackedConfigs"] = configs
            if phase == "Initialized":
                status["lastPromotedSpec"] = spec_hash
            conditions = make_status_conditions(cd, phase, now)
            if conditions is not None:
                status["conditions"] = conditions
        return self._write_status(cd, mutate)

    def set_status_phase(self, cd: CanarySpec, phase: str) -> CanarySpec:
        """``setStatusPhase``: weight and iterations reset outside Progressing/Waiting/Promoting."""
        now = rfc3339(self.clock.t)

        def mutate(status: dict, current: CanarySpec) -> None:
            status["phase"] = phase
            if phase not in ("Progressing", "Waiting", "Promoting"):
                status["canaryWeight"] = 0
                status["iterations"] = 0
                if phase == "WaitingPromotion":
                    status["iterations"] = current.iterations - 1  # Go: analysis.iterations - 1, even -1
            if phase in ("Initialized", "Succeeded"):
                status["lastPromotedSpec"] = current.status.get("lastAppliedSpec", "")
            conditions = make_status_conditions(current, phase, now)
            if conditions is not None:
                status["conditions"] = conditions
        return self._write_status(cd, mutate)

    def set_status_weight(self, cd: CanarySpec, weight: int) -> CanarySpec:
        return self._write_status(cd, lambda s, _: s.__setitem__("canaryWeight", weight))

    def set_status_failed_checks(self, cd: CanarySpec, value: int) -> CanarySpec:
        return self._write_status(cd, lambda s, _: s.__setitem__("failedChecks", value))

    def set_status_iterations(self, cd: CanarySpec, value: int) -> CanarySpec:
        return self._write_status(cd, lambda s, _: s.__setitem__("iterations", value))

    def set_phase_initializing(self, cd: CanarySpec) -> CanarySpec:
        """The informer's first sight of a Canary: phase Initializing with its condition."""
        now = rfc3339(self.clock.t)

        def mutate(status: dict, current: CanarySpec) -> None:
            conditions = make_status_conditions(current, "Initializing", now)
            if conditions is not None:
                status["conditions"] = conditions
            status["phase"] = "Initializing"
            status.setdefault("failedChecks", 0)
            status.setdefault("canaryWeight", 0)
            status.setdefault("iterations", 0)
        return self._write_status(cd, mutate)


_STATUS_ORDER = ("phase", "failedChecks", "canaryWeight", "iterations", "trackedConfigs", "lastAppliedSpec",
                 "lastPromotedSpec", "lastTransitionTime", "conditions")


def _ordered(status: dict) -> dict:
    """``CanaryStatus`` fields in the Go struct's order (how ``kubectl get -o yaml`` lists them)."""
    out = {k: status[k] for k in _STATUS_ORDER if k in status}
    out.update({k: v for k, v in status.items() if k not in out})
    return out
