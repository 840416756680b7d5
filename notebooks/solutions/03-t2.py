# Lab 3, your turn 3.2: the Canary's metrics list, with the new template appended (a merge patch replaces lists)
metrics = mesh.canary("podinfo", "test")["spec"]["analysis"]["metrics"]  # noqa: F821 - mesh comes from the lab
metrics = metrics + [{"name": "error percentage", "templateRef": {"name": "error-percentage", "namespace": "test"},
                      "thresholdRange": {"max": 5}, "interval": "1m"}]
mesh.patch("canary", "podinfo", {"spec": {"analysis": {"metrics": metrics}}}, namespace="test")  # noqa: F821
