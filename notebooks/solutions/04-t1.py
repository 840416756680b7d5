# Lab 4, your turn 4.1: an HTTPRoute on the books Service that sends 10% of its traffic to the error injector
route = """
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata:
  name: error-split
  namespace: booksapp
spec:
  parentRefs:
  - {group: core, kind: Service, name: books, port: 7002}
  rules:
  - backendRefs:
    - {name: books, port: 7002, weight: 90}
    - {name: error-injector, port: 7002, weight: 10}
"""
print(mesh.apply(route)[0])  # noqa: F821 - mesh comes from the lab
