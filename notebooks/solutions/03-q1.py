# Lab 3, question 1: why did a healthy version halt with "no values found", and what removes the halts?
# Flagger judges only the canary traffic inside each metric's window. The load test starts at the first
# analysis step (so the first check sees nothing yet) and `hey -z 2m` ends just as the next call arrives
# (the load tester skips it while the old run finishes), leaving a 30s window empty. Give the canary
# traffic all along: here a client calling podinfo-canary once a second, as real users would through the split.
import labkit.canary as canary  # noqa: E402

for steady in (False, True):
    run = canary.run_playground(seed=1, steady_traffic=steady)
    halts = run.events.query("type == 'Warning'")
    print(f"{'with steady traffic' if steady else 'load test only':<20} {len(halts)} halts; {run.outcome} "
          f"after {run.intervals} intervals")
