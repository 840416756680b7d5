# Lab 5, your turn 5.1: voting's inbound success rate over the last minute, as stat computes it
voting_query = """
  sum(rate(response_total{namespace="emojivoto", deployment="voting", direction="inbound", classification="success"}[1m]))
/ sum(rate(response_total{namespace="emojivoto", deployment="voting", direction="inbound"}[1m]))
"""
print(labkit.cli_text(mesh.query(voting_query)))  # noqa: F821 - labkit and mesh come from the lab
