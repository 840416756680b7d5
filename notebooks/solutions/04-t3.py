# Lab 4, your turn 4.3: kubectl -n booksapp delete trafficsplit/error-split deploy/error-injector svc/error-injector
for what in ("trafficsplit/error-split", "deploy/error-injector", "svc/error-injector"):
    print("\n".join(mesh.delete(what, "booksapp")))  # noqa: F821 - mesh comes from the lab
mesh.wait("2m")  # noqa: F821
