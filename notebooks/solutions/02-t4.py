# Lab 2, your turn 2.4: the 2019 retry, the 2.20 way — an HTTPRoute for authors' HEAD requests, retried on 5xx, and
# a second route for every other request: once a route attaches to a Service, a request no route matches gets 404.
routes = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: authors-head
  namespace: booksapp
  annotations:
    retry.linkerd.io/http: 5xx
    retry.linkerd.io/limit: "3"
spec:
  parentRefs:
  - {group: core, kind: Service, name: authors, port: 7001}
  rules:
  - matches:
    - method: HEAD
      path: {type: RegularExpression, value: "/authors/\\\\d+.json"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: authors-rest
  namespace: booksapp
spec:
  parentRefs:
  - {group: core, kind: Service, name: authors, port: 7001}
  rules:
  - matches:
    - path: {type: PathPrefix, value: /}
"""
print("\n".join(mesh.apply(routes)))  # noqa: F821 - mesh comes from the lab
mesh.wait("2m")  # noqa: F821
