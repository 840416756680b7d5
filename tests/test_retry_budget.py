"""The ServiceProfile retry budget: tower's TpsBudget arithmetic (flagger-and-policies.md §4.1).

tower/src/retry/budget/tps_budget.rs: (deposit, withdraw) = (0, 1) for ratio 0,
(1, ⌊1/ratio⌋) for ratio ≤ 1, (1000, ⌊1000/ratio⌋) above (f32 arithmetic);
reserve = min/s × ttl(whole seconds) × withdraw; ttl in 10 slots that expire;
a withdrawal succeeds when current + Σslots + reserve ≥ withdraw.
"""
import random

import numpy as np
import pytest

from labkit.sim.linkerd.policy import DEFAULT_BUDGET, TpsBudget, budget_params


@pytest.mark.parametrize("ratio, deposit, withdraw", [
    (0.2, 1, 5), (0.1, 1, 10), (0.3, 1, 3), (1.0, 1, 1), (0.0, 0, 1), (2.0, 1000, 500), (1000.0, 1000, 1),
])
def test_deposit_and_withdraw_amounts(ratio, deposit, withdraw):
    b = TpsBudget(10, 10, ratio)
    assert (b.deposit_amount, b.withdraw_amount) == (deposit, withdraw)


def test_amounts_use_f32_like_the_proxy():
    """1/0.001 in f32 is 999.99994, truncated to 999 (the upstream emojivoto profiles use 0.001)."""
    expected = int(np.float32(1.0) / np.float32(0.001))
    assert expected == 999
    assert TpsBudget(10, 10, 0.001).withdraw_amount == expected


def test_defaults_reserve_500_and_window_of_a_second():
    ratio, min_rps, ttl = DEFAULT_BUDGET
    b = TpsBudget(ttl, min_rps, ratio)
    assert (ratio, min_rps, ttl) == (0.2, 10, 10.0)
    assert b.reserve == 500 and b.window == 1_000_000_000 and b.sum() == 500


def test_reserve_uses_whole_seconds_of_ttl():
    assert TpsBudget(1.9, 10, 0.2).reserve == 10 * 1 * 5


# -- tower's own unit tests, on the virtual clock ---------------------------------------------------

def test_tps_empty():
    assert not TpsBudget(1, 0, 1.0).withdraw(0.0)


def test_tps_leaky():
    b = TpsBudget(1, 0, 1.0, now=0.0)
    b.deposit(0.0)
    assert not b.withdraw(3.0)


def test_tps_slots():
    b = TpsBudget(1, 0, 0.5, now=0.0)
    b.deposit(0.0)
    b.deposit(0.0)
    t = 0.901
    assert b.withdraw(t)  # 900 ms later the deposits are still valid
    t += 2.001  # blank slate
    b.deposit(t)
    t += 0.301
    b.deposit(t)
    t += 0.801
    b.deposit(t)
    assert b.withdraw(t)  # the first deposit expired; the second and third still add up to 2


def test_tps_reserve():
    b = TpsBudget(1, 5, 1.0)
    assert all(b.withdraw(0.0) for _ in range(5))
    assert not b.withdraw(0.0)


# -- the budget as the proxy uses it -----------------------------------------------------------------

def _run(rate_per_s: float, p_fail: float, seconds: int, budget: TpsBudget, rng: random.Random):
    """Requests at ``rate_per_s`` failing with ``p_fail``, retried as linkerd-proxy does (budget only,
    no per-request cap); returns (originals, retries) per second."""
    per_second = []
    t, dt = 0.0, 1.0 / rate_per_s
    for second in range(seconds):
        originals = retries = 0
        while t < second + 1:
            originals += 1
            while True:
                if rng.random() >= p_fail:
                    budget.deposit(t)
                    break
                if not budget.withdraw(t):
                    break
                retries += 1
            t += dt
        per_second.append((originals, retries))
    return per_second


def test_all_failing_traffic_gets_only_the_free_retries():
    """No success, no deposits: retries come from the reserve alone — 100 per 10 s window at the defaults."""
    b = TpsBudget(10, 10, 0.2, now=0.0)
    per_second = _run(50, 1.0, 60, b, random.Random(0))
    retries = [r for _, r in per_second]
    assert retries[0] == 100  # the whole reserve at once: budgets are bursty
    windows = [sum(retries[i:i + 10]) for i in range(len(retries) - 10)]
    assert max(windows) == 100  # never more than the reserve in any 10 s
    # the reserve's withdrawals expire with their slot about every ttl (+ a slot), so ≈ 10 a second overall
    assert 500 <= sum(retries) <= 600


def test_retries_stay_within_ratio_plus_minimum():
    """In any 10 s window, retries ≤ 0.2 × deposits in the window + 10/s × 10 s (plus slot granularity)."""
    b = TpsBudget(10, 10, 0.2, now=0.0)
    per_second = _run(200, 0.6, 60, b, random.Random(1))
    for i in range(10, 50):
        window = per_second[i:i + 10]
        retries = sum(r for _, r in window)
        # deposits are successful final responses ≈ originals × P(success within retries) ≤ originals
        originals = sum(o for o, _ in window)
        assert retries <= 0.2 * originals * 1.1 + 100 + 0.2 * originals * 0.1 + 25
    # at 200 rps with 60% failing the budget binds: far fewer retries than a retry-until-success client would send
    assert sum(r for _, r in per_second[20:30]) < 0.5 * sum(o for o, _ in per_second[20:30])


def test_low_rate_failures_are_all_retried():
    """The books app's HEAD route: ≈ 3.5 rps, half failing — well inside 10 free retries a second."""
    b = TpsBudget(10, 10, 0.2, now=0.0)
    rng = random.Random(2)
    per_second = _run(3.5, 0.5, 120, b, rng)
    failed_finally = 0
    b2 = TpsBudget(10, 10, 0.2, now=0.0)
    t = 0.0
    for _ in range(400):
        ok = False
        while True:
            if rng.random() >= 0.5:
                b2.deposit(t)
                ok = True
                break
            if not b2.withdraw(t):
                break
        failed_finally += not ok
        t += 1 / 3.5
    assert failed_finally == 0
    assert sum(r for _, r in per_second) > 0


@pytest.mark.parametrize("spec, expected", [
    (None, DEFAULT_BUDGET),
    ({"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "10s"}, (0.2, 10, 10.0)),
    ({"retryRatio": 0.001, "minRetriesPerSecond": 10, "ttl": "10s"}, (0.001, 10, 10.0)),
    ({"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "500ms"}, None),   # ttl below 1 s: the proxy refuses it
    ({"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "2m"}, None),      # above 60 s
    ({"retryRatio": 1001, "minRetriesPerSecond": 10, "ttl": "10s"}, None),    # ratio above 1000
])
def test_budget_params_validated_like_the_proxy(spec, expected):
    assert budget_params(spec) == expected


def test_out_of_range_budget_is_an_error_in_the_bucket_itself():
    with pytest.raises(ValueError):
        TpsBudget(0.5, 10, 0.2)
    with pytest.raises(ValueError):
        TpsBudget(10, 10, -1)
