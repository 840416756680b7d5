# Lab 1, question 1: the control plane's and viz's deployments (`kubectl -n linkerd get deploy`,
# `kubectl -n linkerd-viz get deploy`).
for ns in ("linkerd", "linkerd-viz"):
    pods = mesh.pods(ns)  # noqa: F821 - `mesh` comes from the lab notebook
    deployments = sorted({name.rsplit("-", 2)[0] for name in pods["NAME"]})
    print(f"{ns}: {', '.join(deployments)}")
