"""``KubeMesh``: the labkit contract over a real cluster, named by its kubeconfig context.

Foundation version: connects to the named context and serves Lab 0 (nodes,
time, waiting). The rest of the contract arrives with the real-cluster issue.
"""
from __future__ import annotations

import time

import pandas as pd

from labkit.durations import seconds
from labkit.errors import BackendError


def load_context(context: str, kubeconfig: str | None = None):
    """An ``ApiClient`` for exactly ``context``; never the kubeconfig's current context."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, _current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, FileNotFoundError, OSError) as err:
        raise BackendError(
            f"cannot read a kubeconfig to find context {context!r}: {err}. "
            "Create one (kind create cluster, or oci ce cluster create-kubeconfig) or set KUBECONFIG"
        ) from None
    names = [c["name"] for c in contexts or []]
    if context not in names:
        raise BackendError(
            f"kubeconfig context {context!r} not found; available: {', '.join(names) or 'none'} "
            "(see `kubectl config get-contexts`)"
        )
    return config.new_client_from_config(config_file=kubeconfig, context=context), client


class KubeMesh:
    backend = "kube"

    def __init__(self, context: str, kubeconfig: str | None = None):
        self.context = context
        self._api_client, self._client = load_context(context, kubeconfig)
        self._core = self._client.CoreV1Api(self._api_client)

    @property
    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC").floor("s")

    def wait(self, duration) -> pd.Timestamp:
        time.sleep(seconds(duration, name="duration"))
        return self.now

    def nodes(self) -> pd.DataFrame:
        from labkit.tables import new_table

        rows = []
        now = self.now
        for node in self._core.list_node().items:
            labels = node.metadata.labels or {}
            roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
            ready = next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "Unknown")
            created = pd.Timestamp(node.metadata.creation_timestamp)
            rows.append({
                "NAME": node.metadata.name,
                "STATUS": "Ready" if ready == "True" else "NotReady",
                "ROLES": ",".join(roles) or "<none>",
                "AGE": (now - created).total_seconds(),
                "VERSION": node.status.node_info.kubelet_version,
            })
        return new_table("nodes", rows)
