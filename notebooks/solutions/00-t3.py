# Lab 0, your turn 0.3: kubectl -n sandbox expose deployment hello --port=80
service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello", "namespace": "sandbox"},
           "spec": {"selector": {"app": "hello"}, "ports": [{"port": 80, "targetPort": 80}]}}
print(mesh.apply([service])[0])  # noqa: F821 - mesh comes from the lab
mesh.wait("5s")  # noqa: F821
