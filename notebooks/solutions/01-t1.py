# Lab 1, your turn 1.1: linkerd viz install | kubectl apply -f -, then linkerd check
lines = mesh.install_linkerd(viz=True)  # noqa: F821 - mesh comes from the lab
print(f"{len(lines)} objects applied")
mesh.wait_for(lambda m: m.check().ok and len(m.check().extensions) > 0, timeout="5m")  # noqa: F821
