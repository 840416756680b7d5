# Lab 3, your turn 3.1: the share of failed responses, in percent. Counted as 100 minus the successes: while nothing
# fails there is no failure series at all, and a query over it would return no data, which halts Flagger.
template = """
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-percentage
  namespace: test
spec:
  provider:
    type: prometheus
    address: http://prometheus.linkerd-viz:9090
  query: |
    100 - 100 * sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
                                        direction="inbound", classification="success"}[{{ interval }}]))
              / sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
                                        direction="inbound"}[{{ interval }}]))
"""
print(mesh.apply(template)[0])  # noqa: F821 - mesh comes from the lab
