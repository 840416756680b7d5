"""labkit: the Linkerd labs' toolkit.

One object, ``mesh = labkit.connect(...)``, with the same methods and shapes on
the embedded mesh (``"sim"``, the default) and on a real cluster (``"kube"``).
See DESIGN.md ("The labkit contract") for the whole surface.

This module is the public surface only. It imports nothing heavy at import
time (pandas, matplotlib and especially ``kubernetes`` load when a backend is
connected), so ``import labkit`` stays well under half a second.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from labkit.durations import DurationError, seconds
from labkit.errors import ApplyError, BackendError, LabkitError, NotFoundError, QueryError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "connect", "inject", "uninject", "cli_text", "seconds",
    "BACKENDS", "LabkitError", "BackendError", "ApplyError", "NotFoundError", "QueryError", "DurationError",
]
__version__ = "0.1.0"

#: The backends ``connect`` knows, and what each is.
BACKENDS = {
    "sim": "the embedded mesh: a seeded, virtual-clock model of Kubernetes + Linkerd + Flagger (no cluster needed)",
    "kube": "a real cluster, through a kubeconfig context you name (context=... or LABKIT_CONTEXT)",
}


_SUBMODULES = {"selfcheck", "tables", "plots", "widgets", "manifests", "durations", "steps", "tasks",
               "lookups", "breakfix"}


def __getattr__(name: str):
    """Load ``labkit.selfcheck``, ``labkit.plots``… on first use, keeping ``import labkit`` light."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"labkit.{name}")
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


def connect(backend: str = "sim", *, seed: int = 0, context: str | None = None, **options: Any):
    """Connect to a mesh and return the object every lab talks to.

    ``backend="sim"`` (the default) starts the embedded mesh with ``seed``.
    ``backend="kube"`` uses the real cluster of the kubeconfig context named by
    ``context`` (or the ``LABKIT_CONTEXT`` environment variable). It is never
    chosen implicitly, and the current kubeconfig context is never used
    implicitly: the labs install software into the cluster they are given.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        valid = ", ".join(f"{name!r} ({what})" for name, what in BACKENDS.items())
        raise BackendError(f"unknown backend {backend!r}; valid backends are: {valid}")
    if backend == "sim":
        if context is not None:
            raise BackendError(
                f"context={context!r} names a real cluster, but backend='sim' is the embedded mesh; "
                "use connect('kube', context=...) to reach that cluster, or drop context"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise BackendError(f"seed={seed!r} must be an integer (same seed → same outputs)")
        from labkit.sim.mesh import SimMesh

        return SimMesh(seed=seed, **options)
    context = context or os.environ.get("LABKIT_CONTEXT") or None
    if not context:
        raise BackendError(
            "backend='kube' needs the kubeconfig context of the cluster to use, named explicitly: "
            "connect('kube', context='kind-labs') or set LABKIT_CONTEXT=kind-labs "
            "(list yours with `kubectl config get-contexts`). labkit never uses the current context implicitly."
        )
    from labkit.kube.mesh import KubeMesh

    return KubeMesh(context=context, **options)


def inject(yaml_text: str, **options: Any) -> tuple[str, str]:
    """Like ``linkerd inject -``: the YAML with proxy-injection annotations added, and Linkerd's report."""
    from labkit.manifests import inject_yaml

    return inject_yaml(yaml_text, **options)


def uninject(yaml_text: str) -> tuple[str, str]:
    """Like ``linkerd uninject -``: the YAML without Linkerd's proxy and annotations, and the report."""
    from labkit.manifests import uninject_yaml

    return uninject_yaml(yaml_text)


def cli_text(table: "pd.DataFrame") -> str:
    """Render a labkit table exactly the way the linkerd / kubectl CLI prints it.

    ``print()`` / ``str()`` give the CLI's bytes; as a cell's last line it shows as a
    block that scrolls sideways instead of wrapping (a :class:`labkit.clitext.CliText`).
    """
    from labkit.tables import cli_text as render

    return render(table)
