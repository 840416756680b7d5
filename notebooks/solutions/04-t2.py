# Lab 4, your turn 4.2: webapp's success rate to the books Service over the last minute
success_query = """
  sum(rate(response_total{namespace="booksapp", deployment="webapp", direction="outbound",
                          dst_service="books", classification="success"}[1m]))
/ sum(rate(response_total{namespace="booksapp", deployment="webapp", direction="outbound",
                          dst_service="books"}[1m]))
"""
print(labkit.cli_text(mesh.query(success_query)))  # noqa: F821 - labkit and mesh come from the lab
