# Lab 1, question 2: `linkerd check --pre` after the install.
report = mesh.check(pre=True)  # noqa: F821 - `mesh` comes from the lab notebook
print(report)
print("It fails: --pre checks that the control plane namespace does not already exist.")
