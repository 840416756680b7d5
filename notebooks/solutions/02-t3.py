# Lab 2, your turn 2.3: a retry budget on the whole authors profile (spec.retryBudget)
authors = mesh.get("sp", "authors.booksapp.svc.cluster.local", "booksapp")  # noqa: F821 - from the lab
authors["spec"]["retryBudget"] = {"retryRatio": 0.1, "minRetriesPerSecond": 1, "ttl": "10s"}
print(mesh.apply([authors])[0])  # noqa: F821
