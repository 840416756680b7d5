# Lab 2, your turn 2.2: books answers a PUT in about 70 ms, so 90ms lets nearly every update through.
print(labkit.steps.edit_route(mesh, "books", "booksapp", "PUT /books/{id}.json", timeout="90ms"))  # noqa: F821
