# Lab 0, your turn 0.1: kubectl create namespace sandbox
print(mesh.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sandbox"}}])[0])  # noqa: F821
