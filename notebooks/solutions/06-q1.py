# Lab 6, question 1: which faults does `linkerd check --proxy -n booksapp` report? Each fault on a fresh mesh
# (about five seconds each). None of them: the check examines the proxies that exist — ready, certificates valid,
# versions current — not where traffic goes or what apps answer, and a pod left without a proxy is simply not one
# of the pods it looks at (`stat`'s MESHED column is what shows that).
import labkit  # noqa: E402

for fault in labkit.breakfix.FAULTS:
    broken = labkit.connect(seed=1)
    labkit.breakfix.start(broken, seed=1, fault=fault.name)
    report = broken.check(proxy=True, namespace="booksapp")
    failed = [c.description for c in report.failed()] + [c.description for c in report.warnings()]
    print(f"{fault.name:<15} {'reported: ' + failed[0] if failed else 'check --proxy is happy'}")
