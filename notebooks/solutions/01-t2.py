# Lab 1, your turn 1.2: kubectl create namespace labs && kubectl annotate namespace labs linkerd.io/inject=enabled
labs = {"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "labs", "annotations": {"linkerd.io/inject": "enabled"}}}
print(mesh.apply([labs])[0])  # noqa: F821 - mesh comes from the lab
