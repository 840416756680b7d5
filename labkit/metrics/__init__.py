"""Prometheus math shared by both backends: PromQL evaluation and the queries linkerd-viz and Flagger send."""
