"""The embedded mesh: a seeded, virtual-clock model of Kubernetes + Linkerd + Flagger.

Layout, one module per real component:
  clock.py        the virtual clock every component schedules on
  kube/           the API server (object store, validation, admission) and controllers
  linkerd/        install, check, proxy injector, proxies (metrics), destination, tap
  apps/           behaviour models of the images the labs run, keyed by image
  dataplane.py    requests flowing client → outbound proxy → inbound proxy → app
  store.py        the time-series store the scraper fills
  prometheus.py   linkerd-viz's Prometheus: scrape loop + PromQL over the store
  mesh.py         the labkit contract over all of the above
"""
