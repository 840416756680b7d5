# Lab 6, the answer key: what the fault was, and one way to fix it (different seeds, different faults).
print("\n".join(labkit.breakfix.answer(mesh)))  # noqa: F821 - labkit and mesh come from the lab
labkit.steps.wait_rolled_out(mesh, labkit.breakfix.DEPLOYMENTS, "booksapp")  # noqa: F821
