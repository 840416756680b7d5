# Lab 6, question 2: the failure-rate fault is also "fixed" by retrying HEAD /authors/{id}.json. The grader accepts it
# because users no longer see the failures, but the cause stays: authors still fails 40% of its HEADs, and each
# request now costs 1 / (1 - p) attempts on average. Linkerd's default retry budget (20% extra load, and at least
# 10 retries a second whatever the load) pays for that only while the retries needed stay under 10 a second.
p, head_rps = 0.4, 8.0  # the failure rate, and about how many HEADs books sends authors a second
attempts = 1 / (1 - p)
print(f"attempts per request: {attempts:.2f} ({attempts - 1:.0%} more load on authors); "
      f"retries needed: {head_rps * (attempts - 1):.1f}/s of the 10/s the default budget always allows")
