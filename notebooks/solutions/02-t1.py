# Lab 2, your turn 2.1: kubectl -n booksapp edit sp/authors.booksapp.svc.cluster.local (isRetryable: true)
print(labkit.steps.edit_route(mesh, "authors", "booksapp", "HEAD /authors/{id}.json", isRetryable=True))  # noqa: F821
