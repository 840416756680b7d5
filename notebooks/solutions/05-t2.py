# Lab 5, your turn 5.2: the proxy log level is a pod annotation, so it goes on the pod template
patch = {"spec": {"template": {"metadata": {"annotations": {"config.linkerd.io/proxy-log-level": "debug"}}}}}
mesh.patch("deploy", "voting", patch, namespace="emojivoto")  # noqa: F821 - mesh comes from the lab
print(labkit.steps.wait_rolled_out(mesh, "voting", "emojivoto"))  # noqa: F821
