# Lab 3, question 1: why did a healthy version halt with "no values found", and what removes the halts?
# Flagger judges only the canary traffic inside each metric's window. The load test starts at the first
# analysis step (so the first check sees nothing yet) and `hey -z 2m` ends just as the next call arrives
# (the load tester skips it while the old run finishes), leaving a 30s window empty. Give the canary
# traffic all along: here a client calling podinfo-canary once a second, as real users would through the split.
import labkit.canary as canary  # noqa: E402

quiet = canary.run_playground(seed=1)
print("load test only:       ", quiet.summary().splitlines()[1])
from labkit.sim.flagger import playground as pg  # noqa: E402

mesh = pg.prepare(seed=1)
start = mesh.clock.t
pg.release(mesh)
mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
mesh.wait_for(pg.finished, timeout="30m")
halts = canary.events(mesh, "podinfo", "test", since=start).query("type == 'Warning'")
print("with steady traffic:   ", len(halts), "halts; final phase", mesh.canary("podinfo", "test")["status"]["phase"])
