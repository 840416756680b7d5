# Lab 0, question 2: how many nodes, and which one runs the control plane?
nodes = mesh.nodes()  # noqa: F821 - `mesh` comes from the lab notebook
control = nodes[nodes["ROLES"].str.contains("control-plane")]["NAME"].tolist()
print(f"{len(nodes)} nodes; control plane: {', '.join(control) or 'none listed (managed control plane)'}")
