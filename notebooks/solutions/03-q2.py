# Lab 3, question 2: the shortest promotion and rollback with interval 30s, stepWeight 5, maxWeight 50, threshold 5.
# Promotion: 1 interval to detect the revision (scale up), 1 to start (pre-rollout hooks, weight 5), 9 more
# steps to 50, 1 to check at 50 and copy the spec (Promoting), 1 to route back to the primary (Finalising),
# 1 to finish: 13 intervals after the tick that saw the change — 6.5 minutes, plus readiness waits.
# Rollback: `threshold` failed checks in a row, then the rollback at the top of the next interval.
interval, step, max_weight, threshold = 30, 5, 50, 5
promote = (1 + max_weight // step + 2) * interval
print(f"promotion: {promote // interval} intervals = {promote / 60:.1f} min after detection")
print(f"rollback:  first failure at the 2nd interval, then {threshold} intervals = "
      f"{(1 + 1 + threshold) * interval / 60:.1f} min after detection")
print("the docs' formulas: interval * maxWeight / stepWeight =", interval * max_weight // step / 60, "min of analysis;",
      "interval * threshold =", interval * threshold / 60, "min to roll back")
