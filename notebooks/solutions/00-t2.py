# Lab 0, your turn 0.2: kubectl -n sandbox create deployment hello --image=nginx:1.27 --replicas=2
hello = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: sandbox
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
"""
print(mesh.apply(hello)[0])  # noqa: F821 - mesh comes from the lab
mesh.wait("30s")  # noqa: F821
