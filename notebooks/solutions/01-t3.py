# Lab 1, your turn 1.3: kubectl annotate namespace labs config.linkerd.io/default-inbound-policy=all-authenticated
patch = {"metadata": {"annotations": {"config.linkerd.io/default-inbound-policy": "all-authenticated"}}}
mesh.patch("namespace", "labs", patch)  # noqa: F821 - mesh comes from the lab
