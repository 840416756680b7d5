"""The embedded mesh's Kubernetes: API server (object store), admission, and controllers.

One module per real component:
  cluster.py      the contract's cluster calls and the data plane's read API (start here)
  apiserver.py    object store, metadata, defaulting, admission webhooks, watches, garbage collection
  discovery.py    which kinds are served (built-ins + applied CRDs) and kubectl's names for them
  validation.py   a write as the API server judges it: decode (field validation), default, validate, admit
  builtin_schemas.py  the built-in kinds' OpenAPI (Kubernetes 1.32) and the JSON decoder's errors
  schema.py       a CRD's structural schema: pruning, defaulting, validation, CEL hook
  apiserver_rules.py  kube-apiserver's hand-written (Go) checks: names, labels, ports, selectors, enums
  fielderrors.py  field errors worded and formatted as the API server's
  defaults.py     the fields a cluster fills in
  scheduler.py    binds pods to nodes
  kubelet.py      runs pods: IPs, image pulls, init containers, probes, restarts, termination
  replicaset.py   ReplicaSet controller        deployment.py  Deployment controller (rollouts)
  endpoints.py    Service endpoints            hpa.py         HorizontalPodAutoscaler (replica bounds)
  job.py          Job controller               namespace.py   namespace lifecycle
  events.py       Events (``kubectl get events``)
  printers.py     kubectl's READY / STATUS / RESTARTS columns
  commands.py     the real command behind each call
  objects.py      pure helpers over API-shaped dicts (clone, selectors, patches, hashes)
"""
