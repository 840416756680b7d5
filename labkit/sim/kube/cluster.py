"""The embedded cluster: the object store and the controllers behind the labkit contract.

(Foundation version: nodes only. The API server, controllers and Linkerd's
control plane arrive with the cluster-model issue.)
"""
from __future__ import annotations

import pandas as pd

from labkit.sim.clock import Clock

#: The embedded cluster's nodes: a kind-like cluster, one control plane and two workers.
KUBERNETES_VERSION = "v1.32.2"
NODES = (
    ("labs-control-plane", "control-plane"),
    ("labs-worker", "<none>"),
    ("labs-worker2", "<none>"),
)
#: The nodes were created this long before virtual time zero (so AGE reads like a real cluster's).
NODE_AGE = 3 * 86400.0


class Cluster:
    def __init__(self, clock: Clock, seed: int = 0):
        self.clock = clock
        self.seed = seed
        self.created = clock.t - NODE_AGE

    def nodes(self) -> pd.DataFrame:
        from labkit.tables import new_table

        age = self.clock.t - self.created
        rows = [
            {"NAME": name, "STATUS": "Ready", "ROLES": role, "AGE": age, "VERSION": KUBERNETES_VERSION}
            for name, role in NODES
        ]
        return new_table("nodes", rows)
