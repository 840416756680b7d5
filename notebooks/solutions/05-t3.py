# Lab 5, your turn 5.3: kubectl -n emojivoto get deploy/vote-bot -o yaml | linkerd uninject - | kubectl apply -f -
print("\n".join(mesh.uninject("deploy", namespace="emojivoto", name="vote-bot")))  # noqa: F821 - from the lab
print(labkit.steps.wait_rolled_out(mesh, "vote-bot", "emojivoto"))  # noqa: F821
