"""``KubeMesh``: the labkit contract (DESIGN.md) over a real cluster, named by its kubeconfig context.

How each part is reached:

* Kubernetes objects through :class:`labkit.kube.client.KubeClient` (raw REST
  through the ``kubernetes`` package; retries with backoff where safe, one
  clear error otherwise). ``apply`` is kubectl's client-side apply
  (last-applied annotation, three-way merge, optimistic concurrency with a
  re-read on 409) — what the labs teach and the embedded mesh models — or,
  with ``connect("kube", ..., server_side=True)``, server-side apply (field
  manager ``labkit``, falling back where a server refuses it); ``pods()`` uses the server-side table ``kubectl get pods``
  prints; ``exec`` and ``logs`` use the ``pods/exec`` WebSocket and
  ``pods/log``.
* Linkerd through the ``linkerd`` CLI (``labkit.kube.linkerd_cli``):
  ``check -o json``, ``install --crds`` / ``install`` / ``viz install``
  (applied with ``apply``), ``inject`` / ``uninject`` (the
  ``kubectl get | linkerd inject - | kubectl apply`` round trip),
  ``profile``, ``diagnostics proxy-metrics`` and ``viz tap -o json`` (``top``
  aggregates tap events, as the CLI's ``top`` does).
* Metrics through linkerd-viz's Prometheus over a port-forward
  (``labkit.kube.prometheus``): ``query`` / ``query_range``; ``stat``,
  ``history``, ``edges`` and ``routes`` are the code both backends share
  (``labkit.metrics``).

Safety: only the context the user named is used; every object labkit creates
carries ``linkerd-labs/lab: <lab>`` (and ``app.kubernetes.io/part-of:
linkerd-labs`` unless its manifest names its own application, as emojivoto's
``part-of: emojivoto`` does), and :meth:`teardown` deletes only objects with
the ``linkerd-labs/lab`` label.

Against a served embedded mesh (``mesh.serve()``), whose kubeconfig names the
labkit extension, time is the embedded mesh's virtual clock: ``now`` reads
it and ``wait`` fast-forwards it instead of sleeping. Everything else is the
real-cluster code path.
"""
from __future__ import annotations

import copy
import math
import os
import re
import shlex
import time
from typing import Any, Callable

import pandas as pd

from labkit.durations import seconds
from labkit.errors import ApplyError, BackendError, LabkitError, NotFoundError
from labkit.kube.flagger import SMI_INSTALL
from labkit.k8s import (default_container, deployment_of, duplicate_fields_error, field_validation, image_container,
                        is_meshed, kubectl_error, kubectl_source, metadata_decode_error, pick_pods, place_in_namespace,
                        ready_containers, running_container_statuses, strip_server_fields)
from labkit.kube import apply as kapply
from labkit.kube import linkerd_cli
from labkit.kube.client import LAB_LABEL, PART_OF, PART_OF_VALUE, Conflict, KubeClient, KubeError, load_configuration

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
#: Where a CRD-backed kind comes from, for the hint in ``no matches for kind`` errors.
CRD_SOURCES = {
    "linkerd.io": "Linkerd's CRDs (mesh.install_linkerd())",
    "policy.linkerd.io": "Linkerd's CRDs (mesh.install_linkerd())",
    "gateway.networking.k8s.io": "the Gateway API CRDs",
    "split.smi-spec.io": f"the linkerd-smi extension ({SMI_INSTALL})",
    "flagger.app": "Flagger (mesh.install_flagger())",
}
CONTROL_PLANE = ("linkerd", ("linkerd-destination", "linkerd-identity", "linkerd-proxy-injector"))
FLAGGER_VERSION = "1.44.0"
#: The Gateway API release Linkerd 2.20 names, as its official standard-channel manifest.
GATEWAY_API_URL = "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml"
VIZ_POLL = 5.0  # how often a deferred `linkerd viz install` re-checks that the control plane is ready
CONFLICT_RETRIES = 5


def load_context(context: str, kubeconfig: str | None = None):
    """An ``ApiClient`` for exactly ``context``; never the kubeconfig's current context."""
    from kubernetes import client

    cfg, _cluster = load_configuration(context, kubeconfig)
    return client.ApiClient(cfg), client


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    base = base.split("+")[0]
    whole = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float("0." + frac) if frac else 0.0)


class KubeMesh:
    backend = "kube"

    def __init__(self, context: str, kubeconfig: str | None = None, *, lab: str | None = None,
                 label: bool = True, server_side: bool = False, **client_options):
        from labkit.kube.prometheus import PrometheusClient

        self.context = context
        self.kubeconfig = kubeconfig
        self.kube = KubeClient(context, kubeconfig, **client_options)
        #: The ``linkerd-labs/lab`` label value; None: named after what is applied (the manifests' app folder,
        #: ``linkerd``, ``linkerd-viz``, ``flagger``), so ``teardown("emojivoto")`` removes one app.
        self.lab = lab or os.environ.get("LABKIT_LAB") or None
        self.label = label
        #: ``apply`` as server-side apply (``kubectl apply --server-side``, field manager ``labkit``) instead of
        #: kubectl's default client-side apply; falls back to client-side where the server refuses it.
        self.server_side = server_side
        self.prometheus = PrometheusClient(self.kube)
        self._pending: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._cli: list[str] | None = None

    def __repr__(self) -> str:
        return f"<KubeMesh context={self.context} server={self.kube.server}>"

    # -- time ------------------------------------------------------------------------------------------
    def _t(self) -> float:
        """Seconds since the epoch: the cluster's wall clock, or a served embedded mesh's virtual clock."""
        if self.kube.embedded:
            return float(self.kube.call("GET", "/labkit/v1/clock")["now"])
        return time.time()

    def _advance_to(self, target: float) -> None:
        if self.kube.embedded:
            # A served mesh advances at most max_advance virtual seconds per request (it is busy meanwhile).
            most = float((self.kube.extension or {}).get("max_advance") or 3600.0)
            delta = target - self._t()
            while delta > 0:
                step = min(delta, most)
                doc = self.kube.call("POST", "/labkit/v1/clock", body={"advance": step}, idempotent=False)
                delta = target - float(doc["now"]) if isinstance(doc, dict) and "now" in doc else delta - step
            return
        delay = target - time.time()
        if delay > 0:
            time.sleep(delay)

    @property
    def now(self) -> pd.Timestamp:
        if self.kube.embedded:
            return pd.Timestamp(self._t(), unit="s", tz="UTC")
        return pd.Timestamp.now(tz="UTC").floor("s")

    def _schedule(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        self._pending.append((when, self._seq, fn))
        self._pending.sort(key=lambda p: (p[0], p[1]))

    def _run_due(self, until: float | None = None) -> None:
        """Run deferred actions (a pending ``viz install``) due by ``until`` (default: now), advancing to each."""
        while self._pending:
            when = self._pending[0][0]
            if until is None:
                if when > self._t():
                    return
            elif when > until:
                return
            self._advance_to(when)
            _, _, fn = self._pending.pop(0)
            fn()

    def wait(self, duration) -> pd.Timestamp:
        """Real time on a cluster (sleep); a served embedded mesh's clock is fast-forwarded instead."""
        secs = seconds(duration, name="duration")
        target = self._t() + secs
        self._run_due(target)
        self._advance_to(target)
        return self.now

    def wait_for(self, condition: Callable[["KubeMesh"], bool], timeout="10m", every="10s") -> pd.Timestamp:
        """Check ``condition(mesh)`` every ``every`` until true; TimeoutError naming it after ``timeout``.

        The deadline is checked between evaluations; each evaluation is bounded by the API
        request timeouts, so the call never runs past ``timeout`` by more than one check.
        """
        limit, step = seconds(timeout, name="timeout"), seconds(every, name="every")
        if step <= 0:
            raise ValueError("every= must be a positive duration, e.g. '10s'")
        deadline = self._t() + limit
        while True:
            if condition(self):
                return self.now
            t = self._t()
            if t >= deadline:
                name = getattr(condition, "__name__", repr(condition))
                clock = "virtual time" if self.kube.embedded else "real time"
                raise TimeoutError(f"condition {name} still false after {timeout} ({clock})")
            self.wait(min(step, deadline - t))

    # -- labels and teardown ---------------------------------------------------------------------------
    def _labelled(self, obj: dict, lab: str | None) -> dict:
        if not self.label:
            return obj
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        labels.setdefault(PART_OF, PART_OF_VALUE)
        labels.setdefault(LAB_LABEL, _label_value(self.lab or lab or "labs"))
        return obj

    def teardown(self, lab: str | None = None, *, dry_run: bool = False) -> list[str]:
        """Delete what labkit created (label ``linkerd-labs/lab``; only one lab's with ``lab=``).

        Nothing without the label is touched. Namespaced objects go first, then
        cluster-scoped ones (namespaces and CRDs last), each as ``kubectl delete``
        would report it.
        """
        selector = f"{LAB_LABEL}={_label_value(lab)}" if lab else LAB_LABEL
        found: list[tuple[Any, dict]] = []
        for res in self.kube.resources(refresh=True):
            if res.kind in ("Event", "Pod", "ReplicaSet", "Endpoints", "EndpointSlice") or res.group in ("metrics.k8s.io",):
                continue  # owned objects go with their owners
            try:
                items = self.kube.call("GET", res.path(), query={"labelSelector": selector}).get("items") or []
            except (KubeError, NotFoundError):
                continue
            found += [(res, item) for item in items if not item["metadata"].get("deletionTimestamp")]
        order = lambda pair: (pair[0].kind == "CustomResourceDefinition", not pair[0].namespaced,  # noqa: E731
                              pair[0].kind == "Namespace")
        lines = []
        for res, item in sorted(found, key=order):
            md = item["metadata"]
            query = {"dryRun": "All"} if dry_run else {}
            try:
                self.kube.call("DELETE", res.path(md.get("namespace"), md["name"]), query=query,
                               body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
            except NotFoundError:
                continue  # already gone with its namespace
            lines.append(f'{res.qualified} "{md["name"]}" deleted' + (" (dry run)" if dry_run else ""))
        return lines

    # -- cluster: reads ------------------------------------------------------------------------------------
    def nodes(self) -> pd.DataFrame:
        from labkit.tables import new_table

        now = self._t()
        rows = []
        for node in self.kube.call("GET", "/api/v1/nodes").get("items") or []:
            labels = node["metadata"].get("labels") or {}
            roles = ",".join(k.split("/", 1)[1] for k in sorted(labels) if k.startswith("node-role.kubernetes.io/"))
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (node.get("status") or {}).get("conditions") or [])
            rows.append({"NAME": node["metadata"]["name"], "STATUS": "Ready" if ready else "NotReady",
                         "ROLES": roles or "<none>",
                         "AGE": now - (_parse_time(node["metadata"].get("creationTimestamp")) or now),
                         "VERSION": ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")})
        return new_table("nodes", rows)

    def pods(self, namespace: str | None = None) -> pd.DataFrame:
        """``kubectl get pods``: NAME READY STATUS RESTARTS AGE (``namespace="*"``: all namespaces)."""
        from labkit.tables import new_table

        self._run_due()
        all_ns = namespace == "*"
        ns = None if all_ns else (namespace or "default")
        path = "/api/v1/pods" if all_ns else f"/api/v1/namespaces/{ns}/pods"
        table = self.kube.call("GET", path, accept=TABLE_ACCEPT)
        now = self._t()
        rows = []
        if table.get("kind") == "Table":
            cols = [c["name"].upper() for c in table.get("columnDefinitions") or []]
            for row in table.get("rows") or []:
                cells = dict(zip(cols, row.get("cells") or []))
                md = (row.get("object") or {}).get("metadata") or {}
                created = _parse_time(md.get("creationTimestamp"))
                out = {"NAME": cells.get("NAME", md.get("name")), "READY": cells.get("READY", ""),
                       "STATUS": cells.get("STATUS", ""), "RESTARTS": _restarts(cells.get("RESTARTS", 0)),
                       "AGE": now - created if created is not None else math.nan}
                if all_ns:
                    out = {"NAMESPACE": md.get("namespace", ""), **out}
                rows.append(out)
        else:  # a server without table printing: kubectl's own rules from the objects
            for pod in table.get("items") or []:
                ready, total = ready_containers(pod)
                out = {"NAME": pod["metadata"]["name"], "READY": f"{ready}/{total}", "STATUS": _pod_status(pod),
                       "RESTARTS": sum(cs.get("restartCount", 0) for cs in running_container_statuses(pod)),
                       "AGE": now - (_parse_time(pod["metadata"].get("creationTimestamp")) or now)}
                if all_ns:
                    out = {"NAMESPACE": pod["metadata"].get("namespace", ""), **out}
                rows.append(out)
        return new_table("pods", rows, all_namespaces=all_ns, namespace=ns)

    def events(self, namespace: str | None = None) -> pd.DataFrame:
        """``kubectl get events``: LAST SEEN TYPE REASON OBJECT MESSAGE, oldest first (``"*"``: all namespaces)."""
        from labkit.tables import new_table

        self._run_due()
        all_ns = namespace == "*"
        ns = None if all_ns else (namespace or "default")
        path = "/api/v1/events" if all_ns else f"/api/v1/namespaces/{ns}/events"
        items = self.kube.call("GET", path).get("items") or []
        now = self._t()
        stamped = []
        for e in items:
            times = [t for t in (_parse_time(e.get("lastTimestamp")), _parse_time(e.get("eventTime")),
                                 _parse_time((e.get("series") or {}).get("lastObservedTime"))) if t is not None]
            stamped.append((max(times) if times else now, e))
        stamped.sort(key=lambda p: p[0])  # stable: ties keep the server's order
        rows = []
        for last, e in stamped:
            inv = e.get("involvedObject") or e.get("regarding") or {}
            row = {"LAST SEEN": now - last, "TYPE": e.get("type", ""), "REASON": e.get("reason", ""),
                   "OBJECT": f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
                   "MESSAGE": e.get("message") or e.get("note", "")}
            if all_ns:
                row = {"NAMESPACE": e["metadata"].get("namespace", ""), **row}
            rows.append(row)
        return new_table("events", rows, all_namespaces=all_ns, namespace=ns)

    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> dict:
        """``kubectl get KIND NAME -o yaml`` as a dict (no name: a ``List``)."""
        res = self.kube.resolve(kind)
        ns = (namespace or "default") if res.namespaced else None
        if name is None:
            items = self.kube.call("GET", res.path(ns)).get("items") or []
            for item in items:
                item.setdefault("apiVersion", res.api_version)
                item.setdefault("kind", res.kind)
            return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
        obj = self.kube.call("GET", res.path(ns, name),
                             not_found=f'Error from server (NotFound): {res.plural_qualified} "{name}" not found')
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        return obj

    def canary(self, name: str, namespace: str | None = None) -> dict:
        return self.get("Canary", name, namespace=namespace)

    # -- cluster: writes ------------------------------------------------------------------------------------
    def apply(self, source, namespace: str | None = None, *, server_side: bool | None = None,
              validate: str | bool = "strict") -> list[str]:
        """``kubectl apply [--server-side] [--validate=...] -f SOURCE [-n NAMESPACE]`` → ``["deployment.apps/web created", ...]``.

        Every object is first sent as a server dry run; if the cluster refuses
        any, one :class:`ApplyError` says what kubectl prints for it and nothing
        from this call is applied (objects in a namespace the same call creates
        skip the dry run). ``validate`` is kubectl's ``--validate``, sent as the
        ``fieldValidation`` query parameter: ``"strict"`` (default) makes the
        server refuse unknown fields, ``"warn"`` makes it drop them with a
        warning (printed as kubectl prints it), ``"ignore"`` silently. Keys a
        manifest repeats never reach the server (JSON has one value per key), so
        they are judged here, in the server's words. ``server_side`` overrides
        the connection's choice for this call (large CRDs need it: client-side
        apply's last-applied copy passes the API server's 262,144-byte
        annotations limit).
        """
        from labkit import manifests

        mode = field_validation(validate)
        self._run_due()
        docs, _arg = manifests.load(source, "apply")
        items = [(d.obj, d.where, d.duplicates) for d in docs]
        if server_side is None or server_side == self.server_side:
            return self._apply_objects(items, namespace, lab=_lab_of(source), validation=mode)
        saved, self.server_side = self.server_side, server_side
        try:
            return self._apply_objects(items, namespace, lab=_lab_of(source), validation=mode)
        finally:
            self.server_side = saved

    def _plan(self, items: list[tuple], namespace: str | None, lab: str | None = None, validation: str = "Strict"):
        planned, warnings = [], []
        for item in items:
            obj, where = item[0], item[1]
            duplicates = item[2] if len(item) > 2 else ()
            source = kubectl_source(where.rsplit(", document ", 1)[0])
            api_version, kind = obj.get("apiVersion"), obj.get("kind")
            missing = [f for f, v in (("apiVersion", api_version), ("kind", kind)) if not v]
            if missing:
                raise ApplyError(f"error: error validating \"{source}\": error validating data: "
                                 f"[{', '.join(m + ' not set' for m in missing)}]\n({where}: nothing from this apply "
                                 "was applied)")
            problem = metadata_decode_error(obj)
            if problem:
                raise ApplyError(f'error: unable to decode "{source}": {problem}\n({where}: nothing from this apply '
                                 "was applied)")
            if duplicates and validation != "Ignore":
                text = duplicate_fields_error(str(kind), str(api_version), duplicates)
                if validation == "Strict":
                    error = ApplyError(f'Error from server (BadRequest): error when creating "{source}": {text}\n'
                                       f"({where}: nothing from this apply was applied)")
                    error.status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": text, "reason": "BadRequest", "code": 400}
                    raise error
                warnings += [f'duplicate field "{d}"' for d in duplicates]
            name = (obj.get("metadata") or {}).get("name", "")
            group = str(api_version).rpartition("/")[0]
            res = self.kube.for_manifest(str(api_version), str(kind))
            if res is None:
                hint = CRD_SOURCES.get(group)
                message = (f'error: resource mapping not found for name: "{name}" from "{where}": no matches for kind '
                           f'"{kind}" in version "{api_version}"\nensure CRDs are installed first')
                if hint:
                    message += f" — {kind} comes with {hint}"
                raise ApplyError(message + "; nothing from this apply was applied")
            config = strip_server_fields(obj)
            target_ns = place_in_namespace(config, namespace, where) if res.namespaced else None
            planned.append((res, self._labelled(config, lab), target_ns, where))
        self._duplicate_warnings = warnings
        return planned

    def _apply_objects(self, items: list[tuple], namespace: str | None, *, dry_run: bool = False,
                       lab: str | None = None, validation: str = "Strict") -> list[str]:
        planned = self._plan(items, namespace, lab, validation)
        creating = {c["metadata"]["name"] for r, c, _, _ in planned if r.kind == "Namespace"}
        new_namespaces = set()
        for ns in creating:
            try:
                self.kube.call("GET", f"/api/v1/namespaces/{ns}")
            except NotFoundError:
                new_namespaces.add(ns)
        for res, config, ns, where in planned:  # validate everything before changing anything
            if ns is not None and ns in new_namespaces:
                continue  # its namespace does not exist yet: the server cannot dry-run it
            try:
                self._apply_one(res, config, ns, dry_run=True, validation=validation)
            except (ApplyError, KubeError, NotFoundError) as exc:
                error = ApplyError(f"{_kubectl_text(exc, where)}\n({where}: nothing from this apply was applied)")
                error.status = _status_of(exc)
                raise error from None
        if dry_run:
            return [f"{res.qualified}/{config['metadata']['name']} created" if ns in new_namespaces
                    else self._apply_one(res, config, ns, dry_run=True, validation=validation)
                    for res, config, ns, _ in planned]
        lines = []
        self.kube.warnings = []
        for res, config, ns, where in planned:
            try:
                lines.append(self._apply_one(res, config, ns, validation=validation))
            except (ApplyError, KubeError, NotFoundError) as exc:
                raise ApplyError(f"{_kubectl_text(exc, where)}\n({where}; applied before it: "
                                 f"{', '.join(lines) or 'nothing'})") from None
        _print_warnings(getattr(self, "_duplicate_warnings", []) + self.kube.warnings)
        return lines

    def _server_side_apply(self, res, config: dict, ns: str | None, dry_run: bool,
                           validation: str = "Strict") -> str | None:
        """``kubectl apply --server-side --force-conflicts``; None when the server does not offer it."""
        name = config["metadata"]["name"]
        try:
            live = self.kube.call("GET", res.path(ns, name))
        except NotFoundError:
            live = None
        query = {"fieldManager": "labkit", "force": "true", "fieldValidation": validation,
                 **({"dryRun": "All"} if dry_run else {})}
        import yaml

        try:
            stored = self.kube.call("PATCH", res.path(ns, name), query=query, body=yaml.safe_dump(config),
                                    content_type="application/apply-patch+yaml", idempotent=True)
        except KubeError as exc:
            if exc.status in (405, 415):
                self.server_side = False
                return None
            raise
        if live is None:
            return f"{res.qualified}/{name} serverside-applied" if not dry_run else f"{res.qualified}/{name} created"
        changed = (stored["metadata"].get("resourceVersion") != live["metadata"].get("resourceVersion")) if not dry_run \
            else not kapply.same_object(live, stored)
        return f"{res.qualified}/{name} {'configured' if changed else 'unchanged'}"

    def _apply_one(self, res, config: dict, ns: str | None, *, dry_run: bool = False, validation: str = "Strict") -> str:
        name = config["metadata"]["name"]
        if self.server_side:
            line = self._server_side_apply(res, config, ns, dry_run, validation)
            if line is not None:
                return line
        query = {"fieldValidation": validation, **({"dryRun": "All"} if dry_run else {})}
        for _attempt in range(CONFLICT_RETRIES):
            try:
                live = self.kube.call("GET", res.path(ns, name))
            except NotFoundError:
                live = None
            if live is None:
                try:
                    self.kube.call("POST", res.path(ns), query=query, body=kapply.for_create(config))
                except Conflict as exc:
                    if exc.reason == "AlreadyExists":
                        continue  # created meanwhile: apply as an update
                    raise
                return f"{res.qualified}/{name} created"
            merged = kapply.for_update(live, config)
            before = live["metadata"].get("resourceVersion")
            try:
                stored = self.kube.call("PUT", res.path(ns, name), query=query, body=merged, idempotent=True)
            except Conflict:
                continue  # someone wrote in between: read again and merge again
            if dry_run:
                return f"{res.qualified}/{name} {'unchanged' if kapply.same_object(live, stored) else 'configured'}"
            after = (stored or {}).get("metadata", {}).get("resourceVersion")
            return f"{res.qualified}/{name} {'unchanged' if after == before else 'configured'}"
        raise Conflict(f"{res.qualified}/{name}: still conflicting after {CONFLICT_RETRIES} attempts "
                       "(something else keeps changing it)", 409, "Conflict")

    def delete(self, source, namespace: str | None = None) -> list[str]:
        """``kubectl delete -f SOURCE`` or ``kubectl delete KIND/NAME``."""
        from labkit import manifests

        self._run_due()
        targets = []
        if isinstance(source, str) and re.fullmatch(r"[A-Za-z][\w.-]*/[a-z0-9][\w.-]*", source.strip()) and \
                not (manifests.MANIFESTS / source).exists():
            kind, name = source.strip().split("/", 1)
            res = self.kube.resolve(kind)
            targets.append((res, (namespace or "default") if res.namespaced else None, name))
        else:
            docs, _arg = manifests.load(source, "delete")
            for doc in docs:
                res = self.kube.for_manifest(str(doc.obj.get("apiVersion", "")), str(doc.obj.get("kind", "")))
                if res is None:
                    raise ApplyError(f'error: resource mapping not found for "{doc.where}": no matches for kind '
                                     f'"{doc.obj.get("kind")}" in version "{doc.obj.get("apiVersion")}"')
                md = doc.obj.get("metadata") or {}
                targets.append((res, (md.get("namespace") or namespace or "default") if res.namespaced else None,
                                md.get("name", "")))
        lines, missing = [], []
        for res, ns, name in targets:
            try:
                self.kube.call("DELETE", res.path(ns, name),
                               body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
            except NotFoundError:
                missing.append(f'Error from server (NotFound): {res.plural_qualified} "{name}" not found')
                continue
            lines.append(f'{res.qualified} "{name}" deleted')
        if missing:
            raise NotFoundError("\n".join(lines + missing))
        return lines

    def _deployment(self, deployment: str, namespace: str | None) -> tuple[Any, dict, str]:
        name = deployment.split("/", 1)[1] if "/" in deployment else deployment
        ns = namespace or "default"
        res = self.kube.resolve("deployments.apps")
        obj = self.kube.call("GET", res.path(ns, name),
                             not_found=f'Error from server (NotFound): deployments.apps "{name}" not found')
        return res, obj, ns

    def set_image(self, deployment: str, image: str, namespace: str | None = None, container: str | None = None) -> str:
        """``kubectl set image deployment/NAME CONTAINER=IMAGE`` (a template change: a rollout)."""
        self._run_due()
        for _attempt in range(CONFLICT_RETRIES):
            res, deploy, ns = self._deployment(deployment, namespace)
            name = deploy["metadata"]["name"]
            index, container, image = image_container(deploy, image, container)
            ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": deploy["metadata"]["resourceVersion"]},
                   {"op": "replace", "path": f"/spec/template/spec/containers/{index}/image", "value": image}]
            try:
                stored = self.kube.call("PATCH", res.path(ns, name), body=ops, content_type="application/json-patch+json")
            except (ApplyError, KubeError) as exc:
                if "test" in str(exc).lower() and "resourceVersion" in str(exc):
                    continue  # changed meanwhile: read again
                if isinstance(exc, Conflict):
                    continue
                raise ApplyError(f"error: deployment/{name}: {_strip_error(exc)}") from None
            changed = stored["metadata"]["resourceVersion"] != deploy["metadata"]["resourceVersion"]
            return f"deployment.apps/{name} image {'updated' if changed else 'unchanged'}"
        raise Conflict(f"deployment/{deployment}: still conflicting after {CONFLICT_RETRIES} attempts", 409, "Conflict")

    def patch(self, kind: str, name: str, patch, namespace: str | None = None) -> dict:
        """``kubectl patch``: a dict is a JSON merge patch; a list of ops is a JSON patch (RFC 6902)."""
        self._run_due()
        if isinstance(patch, str):
            import yaml

            patch = yaml.safe_load(patch)
        res = self.kube.resolve(kind)
        ns = (namespace or "default") if res.namespaced else None
        ctype = "application/json-patch+json" if isinstance(patch, list) else "application/merge-patch+json"
        try:
            return self.kube.call("PATCH", res.path(ns, name), body=patch, content_type=ctype,
                                  not_found=f'Error from server (NotFound): {res.plural_qualified} "{name}" not found')
        except KubeError as exc:
            if exc.status == 400:
                raise ApplyError(f"error: {res.qualified}/{name}: {_strip_error(exc)}") from None
            raise

    def annotate(self, kind: str, name: str, annotations: dict, namespace: str | None = None) -> str:
        """``kubectl annotate --overwrite KIND NAME K=V …`` (a None value removes K): ``kind/name annotated``."""
        from labkit.k8s import annotation_patch

        patch = annotation_patch(annotations)
        self.patch(kind, name, patch, namespace)
        return f"{self.kube.resolve(kind).qualified}/{name} annotated"

    def rollout_status(self, deployment: str, namespace: str | None = None) -> str:
        """``kubectl rollout status deployment/NAME --watch=false``: the current message."""
        self._run_due()
        _res, deploy, _ns = self._deployment(deployment, namespace)
        return rollout_status_message(deploy)

    # -- exec and logs ----------------------------------------------------------------------------------
    def _pods_of(self, target: str, namespace: str | None) -> list[dict]:
        """``deploy/web``, ``pod/NAME``, ``po/NAME`` or a bare pod name → running pods, sorted by name."""
        ns = namespace or "default"
        pods = self.kube.call("GET", f"/api/v1/namespaces/{ns}/pods").get("items") or []
        running = sorted((p for p in pods if (p.get("status") or {}).get("phase") == "Running"
                          and not p["metadata"].get("deletionTimestamp")), key=lambda p: p["metadata"]["name"])
        return pick_pods(target, ns, running, lambda p: p["metadata"]["name"], deployment_of)

    def exec(self, target: str, command, namespace: str | None = None, container: str | None = None) -> str:
        """Like ``kubectl exec TARGET [-c CONTAINER] -- COMMAND``: the output (stdout, then stderr)."""
        from kubernetes import client
        from kubernetes.stream import stream

        self._run_due()
        ns = namespace or "default"
        pod = self._pods_of(target, ns)[0]
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        core = client.CoreV1Api(self.kube.api_client)
        kwargs = {"command": argv, "stderr": True, "stdin": False, "stdout": True, "tty": False, "_preload_content": False}
        container = container or default_container(pod)  # a real API server refuses to guess for a meshed pod
        if container:
            kwargs["container"] = container
        try:
            ws = stream(core.connect_get_namespaced_pod_exec, pod["metadata"]["name"], ns, **kwargs)
        except Exception as exc:  # noqa: BLE001 - ApiException(status=0) from the WebSocket handshake
            reason = getattr(exc, "reason", str(exc))
            if "404" in str(reason):
                raise NotFoundError(f"exec in {target}: {reason}") from None
            raise KubeError(f"exec in {target} (pod {pod['metadata']['name']}) failed: {reason}") from None
        out, err = [], []
        deadline = time.monotonic() + self.kube.timeout * 10
        try:
            while ws.is_open() and time.monotonic() < deadline:
                ws.update(timeout=1)
                if ws.peek_stdout():
                    out.append(ws.read_stdout())
                if ws.peek_stderr():
                    err.append(ws.read_stderr())
            status_text = ws.read_channel(3)
        finally:
            ws.close()
        text = "".join(out) + "".join(err)
        code = _exit_code(status_text)
        if code:
            if text and not text.endswith("\n"):
                text += "\n"
            text += f"command terminated with exit code {code}\n"
        return text

    def logs(self, target: str, namespace: str | None = None, container: str | None = None, tail: int | None = None) -> str:
        self._run_due()
        ns = namespace or "default"
        pod = self._pods_of(target, ns)[0]
        query = {}
        container = container or default_container(pod)  # a real API server refuses to guess for a meshed pod
        if container:
            query["container"] = container
        if tail is not None:
            query["tailLines"] = str(int(tail))
        status, _headers, raw = self.kube.request("GET", f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/log",
                                                  query=query, accept="text/plain")
        if status != 200:
            from labkit.kube.client import api_error

            raise api_error(status, raw, f"logs {target}")
        return raw.decode("utf-8", "replace")

    # -- Linkerd: the CLI ---------------------------------------------------------------------------------
    def _linkerd(self, args: list[str], *, stdin: str | None = None, ok_codes=(0,), timeout: float = 300.0):
        try:
            if self._cli is None:
                self._cli = linkerd_cli.find_linkerd(self.kube.extension)
            return linkerd_cli.run(self._cli, args, context=self.context, kubeconfig=self.kubeconfig, stdin=stdin,
                                   timeout=timeout, ok_codes=ok_codes)
        except linkerd_cli.LinkerdCLIError as exc:
            raise BackendError(str(exc)) from None

    def check(self, pre: bool = False, proxy: bool = False, namespace: str | None = None):
        """``linkerd check`` [``--pre``] [``--proxy``] [``-n NS``]: a CheckReport from ``-o json``.

        ``--wait=0s``: the report is the cluster's state now (wait with ``wait_for`` if needed).
        """
        self._run_due()
        args = ["check", "-o", "json", "--wait=0s"]
        if pre:
            args.append("--pre")
        if proxy:
            args.append("--proxy")
        if namespace:
            args += ["-n", namespace]
        out, err, _code = self._linkerd(args, ok_codes=(0, 1))
        if not out.strip():
            raise BackendError(f"`linkerd {' '.join(args)}` printed no report: {err.strip()}")
        return linkerd_cli.parse_check_json(out)

    def _control_plane_ready(self) -> bool:
        ns, names = CONTROL_PLANE
        try:
            items = self.kube.call("GET", f"/apis/apps/v1/namespaces/{ns}/deployments").get("items") or []
        except NotFoundError:
            return False
        by_name = {d["metadata"]["name"]: d for d in items}
        return all(n in by_name and (by_name[n].get("status") or {}).get("availableReplicas", 0)
                   >= by_name[n]["spec"].get("replicas", 1) > 0 for n in names)

    def _yaml_items(self, text: str, origin: str) -> list[tuple[dict, str]]:
        from labkit import manifests

        return [(d.obj, d.where) for d in manifests.parse(text, origin)]

    def install_linkerd(self, viz: bool = True) -> list[str]:
        """``linkerd install --crds | kubectl apply -f - && linkerd install | kubectl apply -f -`` (+ viz).

        As ``linkerd check`` must pass before ``linkerd viz install``, viz is applied
        now if the control plane is ready, else (its dry run reported now) as soon
        as it is: re-checked every 5 s while the lab waits.
        """
        self._run_due()
        crds, _, _ = self._linkerd(["install", "--crds"])
        lines = self._apply_objects(self._yaml_items(crds, "linkerd install --crds"), None, lab="linkerd")
        control, _, _ = self._linkerd(["install"])
        lines += self._apply_objects(self._yaml_items(control, "linkerd install"), None, lab="linkerd")
        if viz:
            lines += self._install_viz()
        return lines

    def install_gateway_api(self, *, source: str | None = None, channel: str = "standard") -> list[str]:
        """``kubectl apply --server-side -f <the Gateway API release manifest>``: what Linkerd 2.20 needs first.

        The manifest is the official release asset of ``channel`` (``GATEWAY_API_URL``, standard; experimental
        adds TCPRoute and TLSRoute), or ``source`` (a file, URL or YAML text), or
        ``LABKIT_GATEWAY_API_MANIFESTS``; large CRDs need server-side apply.
        """
        if channel not in ("standard", "experimental"):
            raise BackendError(f"channel={channel!r}: the Gateway API release has the channels 'standard' and "
                               "'experimental' (TCPRoute and TLSRoute are experimental)")
        self._run_due()
        source = source or os.environ.get("LABKIT_GATEWAY_API_MANIFESTS")
        if source is None and self.kube.embedded:
            source = self.kube.call("GET", "/labkit/v1/gateway-api", query={"channel": channel}, accept="application/yaml")
        source = source or GATEWAY_API_URL.replace("/standard-install.yaml", f"/{channel}-install.yaml")
        if isinstance(source, str) and source.startswith(("https://", "http://")):
            import urllib.request

            try:
                with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 - the official release URL
                    source = response.read().decode("utf-8")
            except OSError as exc:
                raise BackendError(f"could not download the Gateway API CRDs from {source} ({exc}); download "
                                   "standard-install.yaml yourself and pass install_gateway_api(source=PATH)") from None
        from labkit import manifests

        docs, _arg = manifests.load(source)
        return self.apply([d.obj for d in docs], server_side=True)

    def install_smi(self) -> list[str]:
        """``linkerd smi install | kubectl apply -f -``: the linkerd-smi extension (SMI's TrafficSplit CRD)."""
        from labkit.kube import flagger

        self._run_due()
        return self._install_smi(flagger.SMI_HELP)

    @property
    def versions(self) -> dict[str, str]:
        """The cluster's: Linkerd's control plane (``linkerd version``), Kubernetes, the Gateway API CRDs' bundle, Flagger."""
        out = {"linkerd": "", "kubernetes": "", "gateway_api": "", "flagger": ""}
        try:
            out["kubernetes"] = self.kube.call("GET", "/version").get("gitVersion", "")
        except Exception:  # noqa: BLE001 - an unreachable cluster reports what it can
            pass
        try:
            text, _, _ = self._linkerd(["version", "--short"], ok_codes=(0, 1))
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            out["linkerd"] = lines[-1] if lines else ""
        except BackendError:
            pass
        try:
            crd = self.kube.call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/httproutes.gateway.networking.k8s.io")
            out["gateway_api"] = (crd["metadata"].get("annotations") or {}).get("gateway.networking.k8s.io/bundle-version", "")
        except Exception:  # noqa: BLE001
            pass
        try:
            deploy = self.kube.call("GET", "/apis/apps/v1/namespaces/flagger-system/deployments/flagger")
            image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
            out["flagger"] = image.rpartition(":")[2]
        except Exception:  # noqa: BLE001
            pass
        return out

    def _install_viz(self) -> list[str]:
        text, _, _ = self._linkerd(["viz", "install"])
        items = self._yaml_items(text, "linkerd viz install")
        if self._control_plane_ready():
            return self._apply_objects(items, None, lab="linkerd-viz")
        planned = self._apply_objects(items, None, dry_run=True, lab="linkerd-viz")

        def attempt() -> None:
            if self._control_plane_ready():
                self._apply_objects(items, None, lab="linkerd-viz")
            else:
                self._schedule(self._t() + VIZ_POLL, attempt)

        if not any(True for _ in self._pending):
            self._schedule(self._t() + VIZ_POLL, attempt)
        return planned

    def _round_trip(self, kind: str, namespace: str | None, name: str | None) -> list[dict]:
        res = self.kube.resolve(kind)
        ns = (namespace or "default") if res.namespaced else None
        if name is not None:
            objs = [self.get(kind, name, namespace)]
        else:
            objs = self.get(kind, None, namespace)["items"]
            if not objs:
                raise NotFoundError(f"No resources found in {ns} namespace." if ns else "No resources found")
        for obj in objs:
            obj.pop("status", None)
        return objs

    def inject(self, kind: str, namespace: str | None = None, name: str | None = None, **options) -> list[str]:
        """``kubectl get KIND [NAME] -o yaml | linkerd inject [flags] - | kubectl apply -f -``."""
        from labkit import manifests

        self._run_due()
        objs = self._round_trip(kind, namespace, name)
        flags = []
        for key, value in options.items():
            if key not in manifests.INJECT_OPTIONS and key != "ingress":
                raise TypeError(f"unknown inject option {key}; known: {', '.join(sorted(manifests.INJECT_OPTIONS))}, ingress")
            if value is None or value is False:
                continue
            flag = "--" + key.replace("_", "-")
            flags.append(flag if value is True else f"{flag}={','.join(map(str, value)) if isinstance(value, (list, tuple)) else value}")
        out, err, _ = self._linkerd(["inject", *flags, "-"], stdin=manifests.dump(objs))
        return linkerd_cli.report_lines(err) + self._apply_objects(self._yaml_items(out, "<stdin>"), None)

    def uninject(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[str]:
        from labkit import manifests

        self._run_due()
        objs = self._round_trip(kind, namespace, name)
        out, err, _ = self._linkerd(["uninject", "-"], stdin=manifests.dump(objs))
        return linkerd_cli.report_lines(err) + self._apply_objects(self._yaml_items(out, "<stdin>"), None)

    def profile(self, service: str, namespace: str | None = None, *, open_api=None, template: bool = False) -> dict:
        """``linkerd profile [--template | --open-api FILE] -n NS SERVICE`` → the ServiceProfile as a dict."""
        import tempfile

        import yaml

        args = ["profile", "-n", namespace or "default"]
        cleanup = None
        if template:
            args.append("--template")
        if open_api is not None:
            path = _manifest_path(open_api)
            if path is None:  # the spec's text: hand the CLI a file, as a learner would
                handle = tempfile.NamedTemporaryFile("w", suffix=".swagger", delete=False)
                handle.write(open_api if isinstance(open_api, str) else yaml.safe_dump(open_api))
                handle.close()
                path = cleanup = handle.name
            args += ["--open-api", path]
        try:
            out, _, _ = self._linkerd([*args, service])
        finally:
            if cleanup:
                os.unlink(cleanup)
        return yaml.safe_load(out) or {}

    def proxy_metrics(self, target: str, namespace: str | None = None) -> str:
        """``linkerd diagnostics proxy-metrics -n NS TARGET``: one ``# POD`` block per pod."""
        out, _, _ = self._linkerd(["diagnostics", "proxy-metrics", "-n", namespace or "default", target])
        return out

    def tap(self, target: str, namespace: str | None = None, *, duration="10s", method=None, path=None,
            wide: bool = False, **filters) -> pd.DataFrame:
        """``linkerd viz tap TARGET -o json`` for ``duration``: one row per req/rsp/end event."""
        self._run_due()
        secs = seconds(duration, name="duration")
        ns = namespace or "default"
        args = ["viz", "tap", target, "-n", ns, "-o", "json"]
        for key, value in (("method", method), ("path", path), *filters.items()):
            if value is not None:
                args.append(f"--{key.replace('_', '-')}={value}")
        if self._cli is None:
            try:
                self._cli = linkerd_cli.find_linkerd(self.kube.extension)
            except linkerd_cli.LinkerdCLIError as exc:
                raise BackendError(str(exc)) from None
        before = self.kube.call("GET", "/labkit/v1/taps")["started"] if self.kube.embedded else 0
        proc = linkerd_cli.start(self._cli, args, context=self.context, kubeconfig=self.kubeconfig)
        try:
            tap_id = self._tap_started(proc, before)
            self.wait(secs)
            if tap_id is not None:
                self.kube.call("POST", f"/labkit/v1/taps/{tap_id}/stop", idempotent=False)
            else:
                import signal

                proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if proc.returncode not in (0, -2, 130) and not out.strip():
            raise BackendError(f"`linkerd {' '.join(args)}` failed: {err.strip()}")
        from labkit.tables import new_table

        table = linkerd_cli.parse_tap_json(out, wide=wide, resource=target.split("/", 1)[0])
        return new_table("tap", table, wide=wide, target=target, namespace=ns)

    def _tap_started(self, proc, before: int) -> int | None:
        """Block until the tap stream is open (the served mesh says so; a real one gets a second)."""
        if not self.kube.embedded:
            time.sleep(1.0)
            return None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            doc = self.kube.call("GET", "/labkit/v1/taps")
            mine = [t["id"] for t in doc["taps"] if t["id"] > before]
            if mine:
                return mine[0]
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise BackendError(f"linkerd viz tap ended at once: {err.strip() or out.strip()}")
            time.sleep(0.02)
        raise BackendError("linkerd viz tap did not start within 30 s")

    def top(self, target: str, namespace: str | None = None, *, window="1m", routes: bool = False, **filters) -> pd.DataFrame:
        """``linkerd viz top``: tap for ``window`` and aggregate, as the CLI's interactive view does."""
        from labkit.tables import top_from_tap

        events = self.tap(target, namespace, duration=window, **filters)
        return top_from_tap(events, routes=routes, target=target, window=window)

    # -- metrics --------------------------------------------------------------------------------------------
    def query(self, promql: str, time=None) -> pd.DataFrame:
        from labkit.kube.prometheus import to_seconds

        return self.prometheus.query(promql, None if time is None else to_seconds(time))

    def query_range(self, promql: str, start, end, step="10s") -> pd.DataFrame:
        from labkit.kube.prometheus import to_seconds

        return self.prometheus.query_range(promql, to_seconds(start), to_seconds(end), seconds(step, name="step"))

    def stat(self, resource: str, namespace: str | None = None, *, to=None, from_=None, window="1m") -> pd.DataFrame:
        from labkit.metrics import viz

        self._run_due()
        return viz.stat(self, resource, namespace=namespace, to=to, from_=from_, window=window)

    def history(self, target: str, namespace: str | None = None, *, since=None, step="10s") -> pd.DataFrame:
        from labkit.metrics import viz

        return viz.history(self, target, namespace=namespace, since=since, step=step)

    def edges(self, resource: str, namespace: str | None = None) -> pd.DataFrame:
        from labkit.metrics import viz

        return viz.edges(self, resource, namespace=namespace)

    def stat_outbound(self, target: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
        """``linkerd viz stat-outbound``: the same queries the CLI sends, to linkerd-viz's Prometheus."""
        from labkit.metrics import stat_outbound

        self._run_due()
        return stat_outbound.stat_outbound(self, target, namespace=namespace, window=window)

    def authz(self, target: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
        """``linkerd viz authz``: the target's inbound traffic per route, server and authorization (denied too)."""
        from labkit.metrics import authz

        self._run_due()
        return authz.authz(self, target, namespace=namespace, window=window)

    def stat_inbound(self, target: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
        """``linkerd viz stat-inbound``: the same queries the CLI sends, to linkerd-viz's Prometheus."""
        from labkit.metrics import stat_inbound

        self._run_due()
        return stat_inbound.stat_inbound(self, target, namespace=namespace, window=window)

    def routes(self, target: str, namespace: str | None = None, *, to=None, wide: bool = False) -> pd.DataFrame:
        try:
            from labkit.metrics import routes
        except ImportError:
            raise BackendError("routes is not available yet in this labkit (labkit.metrics.routes)") from None
        return routes.routes(self, target, namespace=namespace, to=to, wide=wide)

    # -- Flagger -----------------------------------------------------------------------------------------
    def install_flagger(self, provider: str = "gatewayapi:v1beta1", *, source: str | None = None, namespace: str | None = None,
                        **_options) -> list[str]:
        """Flagger's Helm-free install for Linkerd: ``kubectl apply -k github.com/fluxcd/flagger//kustomize/linkerd``
        with ``-mesh-provider=<provider>`` (``labkit.kube.flagger``); the SMI providers bring linkerd-smi first
        when the cluster lacks the TrafficSplit CRD.

        The manifests come from ``source`` (a file, a URL or YAML text), else
        ``LABKIT_FLAGGER_MANIFESTS``, else the served embedded mesh (which renders the
        same kustomization), else ``kubectl kustomize`` of Flagger's repository.
        """
        self._run_due()
        source = source or os.environ.get("LABKIT_FLAGGER_MANIFESTS")
        if source is None and self.kube.embedded:
            query = {"provider": provider, **({"namespace": namespace} if namespace else {})}
            source = self.kube.call("GET", "/labkit/v1/flagger", query=query, accept="application/yaml")
        elif namespace not in (None, "flagger-system"):
            raise BackendError(f"install_flagger(namespace={namespace!r}): on a cluster Flagger goes where its "
                               "kustomization puts it, flagger-system (meshed, so linkerd-viz's Prometheus answers it); "
                               "drop namespace=, or render and edit the manifests yourself and pass source=")
        if source is None:
            import shutil
            import subprocess

            kubectl = shutil.which("kubectl")
            url = f"https://github.com/fluxcd/flagger//kustomize/linkerd?ref=v{FLAGGER_VERSION}"
            if not kubectl:
                raise BackendError(f"install_flagger needs Flagger's manifests: render them with `kubectl kustomize {url} "
                                   "> flagger.yaml` and call install_flagger(source='flagger.yaml')")
            out = subprocess.run([kubectl, "kustomize", url], capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise BackendError(f"`kubectl kustomize {url}` failed: {out.stderr.strip()}")
            source = out.stdout
        elif re.match(r"^https?://", str(source)):
            import urllib.request

            with urllib.request.urlopen(source, timeout=60) as resp:  # noqa: S310 - the learner's own URL
                source = resp.read().decode("utf-8")
        from labkit import manifests
        from labkit.kube import flagger

        docs, _arg = manifests.load(source)
        lines = []
        if flagger.needs_smi(provider) and not self._has_crd(flagger.TRAFFICSPLIT_CRD):
            lines += self._install_smi(flagger.SMI_HELP)  # before anything of Flagger's is applied
        objs = flagger.with_provider([d.obj for d in docs], provider)
        return lines + self._apply_objects([(obj, d.where) for obj, d in zip(objs, docs)], None, lab="flagger")

    def _has_crd(self, name: str) -> bool:
        try:
            self.kube.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        except NotFoundError:
            return False
        return True

    def _install_smi(self, help_text: str) -> list[str]:
        """``linkerd smi install | kubectl apply -f -``, through the CLI's linkerd-smi extension."""
        try:
            text, _, _ = self._linkerd(["smi", "install"])
        except BackendError as exc:
            raise BackendError(f"Flagger's linkerd provider writes SMI TrafficSplits and this cluster has no "
                               f"TrafficSplit CRD; `linkerd smi install` failed ({exc}): {help_text}") from None
        return self._apply_objects(self._yaml_items(text, "linkerd smi install"), None, lab="linkerd-smi")

    # -- outward (embedded mesh only) ---------------------------------------------------------------------
    def export_metrics(self, path) -> str:
        raise BackendError("export_metrics exports the embedded mesh's scraped series; on a cluster, "
                           "query Prometheus with mesh.query_range(...) instead")

    def serve(self, port: int = 0):
        raise BackendError("serve() serves the embedded mesh; this is already a real cluster")

    # -- helpers the shared tables use ---------------------------------------------------------------------
    def _meshed_counts(self, kind: str, namespace: str | None) -> dict[str, tuple[int, int]]:
        """``{name: (meshed pods, pods)}`` per resource of ``kind``, as ``linkerd viz stat`` counts them."""
        res = self.kube.resolve(kind)
        pod_path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        pods = [p for p in self.kube.call("GET", pod_path).get("items") or []
                if (p.get("status") or {}).get("phase", "Pending") in ("Pending", "Running")]
        counts: dict[str, list[int]] = {}
        if res.kind != "Pod":
            for obj in self.kube.call("GET", res.path(namespace if res.namespaced else None)).get("items") or []:
                if res.kind != "Namespace" or namespace is None or obj["metadata"]["name"] == namespace:
                    counts[obj["metadata"]["name"]] = [0, 0]
                    if res.kind == "Service":
                        selector = (obj.get("spec") or {}).get("selector")
                        mine = [p for p in pods if p["metadata"].get("namespace") == obj["metadata"].get("namespace")
                                and selector and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
                        counts[obj["metadata"]["name"]] = [sum(1 for p in mine if is_meshed(p)), len(mine)]
        if res.kind == "Service":
            return {k: (v[0], v[1]) for k, v in counts.items()}
        rs_owner: dict[tuple[str, str], str | None] = {}
        if res.kind == "Deployment":
            rs_path = f"/apis/apps/v1/namespaces/{namespace}/replicasets" if namespace else "/apis/apps/v1/replicasets"
            for rs in self.kube.call("GET", rs_path).get("items") or []:
                ref = next((r for r in rs["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
                rs_owner[(rs["metadata"].get("namespace"), rs["metadata"]["name"])] = \
                    ref["name"] if ref and ref["kind"] == "Deployment" else None
        for pod in pods:
            md = pod["metadata"]
            if res.kind == "Pod":
                key = md["name"]
            elif res.kind == "Namespace":
                key = md.get("namespace")
            else:
                ref = next((r for r in md.get("ownerReferences") or [] if r.get("controller")), None)
                if ref is None:
                    continue
                if res.kind == "Deployment":
                    if ref["kind"] != "ReplicaSet":
                        continue
                    key = rs_owner.get((md.get("namespace"), ref["name"]))
                elif ref["kind"] == res.kind:
                    key = ref["name"]
                else:
                    continue
                if key is None:
                    continue
            entry = counts.setdefault(key, [0, 0])
            entry[1] += 1
            entry[0] += 1 if is_meshed(pod) else 0
        return {k: (v[0], v[1]) for k, v in counts.items()}

    def _service_accounts(self, namespace: str | None) -> dict[str, str]:
        """``{pod name: service account}`` (what ``edges`` prints as the client identity)."""
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        return {p["metadata"]["name"]: (p.get("spec") or {}).get("serviceAccountName") or "default"
                for p in self.kube.call("GET", path).get("items") or []}


# -- helpers ------------------------------------------------------------------------------------------

def _lab_of(source) -> str | None:
    """The app a manifest path belongs to: its first folder under manifests/ (``emojivoto/web.yml`` → emojivoto)."""
    if not isinstance(source, (str, os.PathLike)) or "\n" in str(source):
        return None
    from labkit.manifests import MANIFESTS

    path = os.path.abspath(str(source)) if os.path.exists(str(source)) else str(MANIFESTS / str(source))
    try:
        rel = os.path.relpath(path, MANIFESTS)
    except ValueError:
        return None
    if rel.startswith(".."):
        return None
    return rel.split(os.sep)[0].rsplit(".", 1)[0]


def _label_value(lab: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", str(lab))[:63].strip("-_.")
    return value or "labs"


def _strip_error(exc: Exception) -> str:
    return str(exc)


def _status_of(exc: Exception) -> dict | None:
    status = getattr(exc, "status_body", None) or getattr(exc, "body", None)
    return status if isinstance(status, dict) and status.get("kind") == "Status" else None


def _kubectl_text(exc: Exception, where: str) -> str:
    """What kubectl prints for a refusal the API server answered with a Status (else the error as is)."""
    status = _status_of(exc)
    if status is not None:
        return kubectl_error(status, "creating", kubectl_source(where.rsplit(", document ", 1)[0]))
    return str(exc)


def _print_warnings(warnings: list[str]) -> None:
    """``Warning: unknown field "spec.replica"``: the API server's warnings, on stderr as kubectl prints them."""
    import sys

    for text in dict.fromkeys(warnings):
        print(f"Warning: {text}", file=sys.stderr)


def _restarts(cell) -> int:
    m = re.match(r"\s*(\d+)", str(cell))
    return int(m.group(1)) if m else 0


def _exit_code(status_text) -> int:
    if not status_text:
        return 0
    import json

    try:
        status = json.loads(status_text) if isinstance(status_text, str) else status_text
    except ValueError:
        return 0
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return 1
    return 1


def _manifest_path(value) -> str | None:
    """A path to a file (as given, or under manifests/), or None when ``value`` is the content itself."""
    if not isinstance(value, (str, os.PathLike)):
        return None
    text = str(value)
    if "\n" in text or len(text) > 4096:
        return None
    if os.path.isfile(text):
        return text
    from labkit.manifests import MANIFESTS

    candidate = MANIFESTS / text
    return str(candidate) if candidate.is_file() else None


def _pod_status(pod: dict) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def rollout_status_message(deploy: dict) -> str:
    """kubectl's ``rollout status`` message for a Deployment (``DeploymentStatusViewer``)."""
    name = deploy["metadata"]["name"]
    status = deploy.get("status") or {}
    spec = deploy.get("spec") or {}
    if deploy["metadata"].get("generation", 1) <= status.get("observedGeneration", 0):
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None)
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return f'error: deployment "{name}" exceeded its progress deadline'
        replicas = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        if updated < replicas:
            return f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new replicas have been updated...'
        if status.get("replicas", 0) > updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {status.get("replicas", 0) - updated} '
                    "old replicas are pending termination...")
        available = status.get("availableReplicas", 0)
        if available < updated:
            return f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas are available...'
        return f'deployment "{name}" successfully rolled out'
    return "Waiting for deployment spec update to be observed..."


__all__ = ["KubeMesh", "load_context", "rollout_status_message", "LabkitError", "copy"]
