"""The embedded mesh's Kubernetes: API server (object store), admission, and controllers.

One module per real component:
  cluster.py      the contract's cluster calls and the data plane's read API (start here)
  apiserver.py    object store, metadata, defaulting, admission webhooks, watches, garbage collection
  discovery.py    which kinds are served (built-ins + applied CRDs) and kubectl's names for them
  validation.py   field checks of the kinds the labs use (and of their CRDs)
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
