# Lab 3, your turn 3.3: kubectl -n test set image deploy/podinfo podinfod=ghcr.io/stefanprodan/podinfo:6.0.5
release_5 = mesh.now  # noqa: F821 - mesh comes from the lab
print(mesh.set_image("podinfo", "podinfod=ghcr.io/stefanprodan/podinfo:6.0.5", namespace="test"))  # noqa: F821
mesh.wait_for(lambda m: m.canary("podinfo", "test")["status"]["phase"] == "Progressing",  # noqa: F821
              timeout="5m", every="5s")
final = canary.watch(mesh, "podinfo", "test", timeout="30m", out=lambda text: None)  # noqa: F821
print(canary.timeline(mesh, "podinfo", "test", since=release_5), end="")  # noqa: F821
