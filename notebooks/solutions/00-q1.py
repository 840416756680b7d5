# Lab 0, question 1: why does labkit.connect("kube") refuse to run without a context?
import labkit

try:
    labkit.connect("kube")
except labkit.BackendError as err:
    print(err)
print("The labs install Linkerd, Flagger and demo apps: they must only ever touch a cluster you named,")
print("never whatever context your kubeconfig happens to point at.")
