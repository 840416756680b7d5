"""Every lab notebook through the kube backend, against the served embedded mesh, matches the sim backend.

For each notebook in notebooks/ (new labs are picked up automatically), a
fresh embedded mesh with the same seed is served on loopback with its clock
stopped (pace 0: only the notebook's waits move it), the notebook runs with
``backend="kube"`` and the served context — real REST calls, the ``linkerd``
CLI stand-in as a subprocess, Prometheus through a port-forward — and every
output must equal the sim backend's run, except the lines that name the
backend.
"""
from __future__ import annotations

import re

import pytest

from conftest import BUILD, NOTEBOOKS, run_notebook

pytest.importorskip("kubernetes")

LABS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))

#: Output that names the backend, and so differs on purpose.
BACKEND_NAMES = [(re.compile(r"\bbackend: kube\b"), "backend: sim"),
                 (re.compile(r"connected to a cluster \(kube\)"), "connected to a cluster (sim)"),
                 # the banner (labkit.steps.about) says which backend on purpose: compared as a placeholder
                 (re.compile(r"(Real cluster \(labkit-embedded\)|Embedded mesh \(seed \d+\)): .*\n.*\n.*\n"),
                  "(the banner: which backend, and its versions)\n")]


def outputs(nb) -> list:
    keep = []
    index = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue
        index += 1
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":  # consecutive chunks of one stream are one text (chunking depends on timing)
                text = out["text"]
                for pattern, repl in BACKEND_NAMES:
                    text = pattern.sub(repl, text)
                if keep and keep[-1][:3] == (index, "stream", out["name"]):
                    keep[-1] = (index, "stream", out["name"], keep[-1][3] + text)
                else:
                    keep.append((index, "stream", out["name"], text))
            elif kind in ("display_data", "execute_result"):
                data = {k: v for k, v in out["data"].items() if k != "application/vnd.jupyter.widget-view+json"}
                keep.append((index, "data", sorted(data.items())))
            elif kind == "error":
                keep.append((index, "error", out["ename"], out["evalue"]))
    return keep


@pytest.mark.parametrize("name", LABS)
def test_lab_through_the_kube_backend_matches_the_sim_backend(name, monkeypatch):
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    import labkit
    from labkit.runner import execute, verdict
    from labkit.sim.serve import serve

    served = serve(labkit.connect("sim", seed=0), pace=0)
    out = BUILD / "kube-served" / name
    failure = None
    try:
        monkeypatch.setenv("KUBECONFIG", served.kubeconfig)  # the kernel inherits it
        monkeypatch.delenv("LABKIT_LINKERD", raising=False)  # found through the kubeconfig's extension
        try:
            nb, _ = execute(NOTEBOOKS / name, out.parent,
                            {"backend": "kube", "context": served.context, "solutions": True})
        except PapermillExecutionError as exc:
            failure = exc
            nb = nbformat.read(str(out), as_version=4)
    finally:
        served.close()
    kube = outputs(nb)
    sim = outputs(run_notebook(name, solutions=True))
    assert failure is None, failure
    errors = [o for o in kube if o[1] == "error"]
    assert not errors, errors
    assert verdict(nb) == f"Lab {int(name[:2])} complete"
    for a, b in zip(sim, kube):
        assert a == b, f"code cell {a[0]} differs between the sim and kube backends"
    assert len(kube) == len(sim)
