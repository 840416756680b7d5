"""PromQL's range-vector functions (``*_over_time``, ``changes``, ``deriv`` …) over windows of samples.

:mod:`labkit.metrics.promql` hands these functions every series' samples
flattened into one array (``t`` in ms, ``v``) and, per series and step, the
window ``v[lo:hi]`` the function sees. Each returns ``(values, present)``
arrays of the windows' shape. The arithmetic is Prometheus 2.55's
(``promql/functions.go``): compensated (Kahan–Neumaier) sums in
``sum_over_time`` / ``avg_over_time`` / ``stddev_over_time`` and the linear
regression, ``quantile``'s interpolation, NaN rules of ``min``/``max``.
Cheap functions are whole-array operations; the ones whose float result
depends on the order of additions run sample by sample, in Prometheus's order,
unless the values make the order irrelevant (integers whose sums are exact).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["kahan_inc", "kahan_inc_array", "quantile", "over_time", "smoothing_error", "WINDOW_FUNCTIONS"]

#: The range-vector functions this module computes (rate & co. live in promql.py).
WINDOW_FUNCTIONS = frozenset({
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
    "mad_over_time", "changes", "resets", "deriv", "predict_linear", "holt_winters",
})

_EXACT = 2.0 ** 52


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """Prometheus's ``kahanSumInc``: add ``inc`` to ``total`` with Neumaier's compensation ``c``."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def kahan_inc_array(inc: np.ndarray, total: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kahan_inc` element-wise (NumPy), for aggregations over many groups and steps at once."""
    with np.errstate(all="ignore"):
        t = total + inc
        big = np.abs(total) >= np.abs(inc)
        c = c + np.where(big, (total - t) + inc, (inc - t) + total)
        c = np.where(np.isinf(t), 0.0, c)
    return t, c


def _nan_first_sorted(values) -> list[float]:
    """Sorted as Prometheus's ``vectorByValueHeap`` sorts: NaN before every number."""
    return sorted(values, key=lambda x: (not math.isnan(x), 0.0 if math.isnan(x) else x))


def quantile(q: float, values) -> float:
    """Prometheus's ``quantile``: linear interpolation between the closest ranks (``q*(n-1)``)."""
    if not len(values) or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = _nan_first_sorted(values)
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def _linear_regression(ts, vs, intercept_ms: int) -> tuple[float, float]:
    """Prometheus's ``linearRegression``: least squares with compensated sums; x in seconds from ``intercept_ms``."""
    n = sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = vs[0]
    const_y = True
    for i, (t, f) in enumerate(zip(ts, vs)):
        if const_y and i > 0 and f != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_ms) / 1e3
        sum_x, c_x = kahan_inc(x, sum_x, c_x)
        sum_y, c_y = kahan_inc(f, sum_y, c_y)
        sum_xy, c_xy = kahan_inc(x * f, sum_xy, c_xy)
        sum_x2, c_x2 = kahan_inc(x * x, sum_x2, c_x2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    try:
        slope = cov_xy / var_x
    except ZeroDivisionError:
        slope = math.copysign(math.inf, cov_xy) if cov_xy else math.nan
    return slope, sum_y / n - slope * sum_x / n


def _sum(vs) -> float:
    total = c = 0.0
    for f in vs:
        total, c = kahan_inc(f, total, c)
    return total if math.isinf(total) else total + c


def compensated_mean(vs) -> float:
    """Prometheus's mean (avg_over_time, and avg where a group's sum overflows): compensated sum / count,
    switching to an incremental mean if the sum would overflow."""
    total = mean = count = c = 0.0
    incremental = False
    for f in vs:
        count += 1
        if not incremental:
            new_total, new_c = kahan_inc(f, total, c)
            if count == 1 or not math.isinf(new_total):
                total, c = new_total, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        if math.isinf(mean):
            if math.isinf(f) and (mean > 0) == (f > 0):
                continue
            if not math.isinf(f) and not math.isnan(f):
                continue
        corrected = mean + c
        mean, c = kahan_inc(f / count - corrected / count, mean, c)
    if incremental:
        return mean + c
    return (total + c) / count


def _variance(vs) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for f in vs:
        count += 1
        delta = f - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (f - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _go_fixed(x: float) -> str:
    """Go's ``%f``: six decimals, infinities as ``+Inf``/``-Inf``."""
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:.6f}"


def smoothing_error(sf: float, tf: float) -> str | None:
    """Why holt_winters refuses these factors (Prometheus's message), or None: both must lie strictly in (0, 1).

    Prometheus checks the smoothing factor first, and only when it is about
    to smooth a window holding a sample (an empty selection never fails). A
    NaN factor passes the check, as in Go, and makes the result NaN.
    """
    if sf <= 0 or sf >= 1:
        return f"invalid smoothing factor. Expected: 0 < sf < 1, got: {_go_fixed(sf)}"
    if tf <= 0 or tf >= 1:
        return f"invalid trend factor. Expected: 0 < tf < 1, got: {_go_fixed(tf)}"
    return None


def _holt_winters(vs, sf: float, tf: float) -> float:
    """Prometheus 2.55's ``funcHoltWinters``: double exponential smoothing; the last smoothed value.

    The level starts at the first sample and the trend at the first
    difference; each later sample updates the level with weight ``sf`` and
    then (from the third sample on) the trend with weight ``tf``, in
    Prometheus's order of operations so the floats come out identical.
    """
    s0, s1, b = 0.0, vs[0], vs[1] - vs[0]
    for i in range(1, len(vs)):
        x = sf * vs[i]
        if i > 1:  # calcTrendValue(i-1, …) returns the initial trend for i-1 == 0
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


def _mad(vs) -> float:
    median = quantile(0.5, vs)
    return quantile(0.5, [abs(f - median) for f in vs])


def _exact_integers(v: np.ndarray) -> bool:
    """True when every value is an integer and all partial sums are exact in float64 (order-independent sums)."""
    if v.size == 0:
        return True
    if not np.all(np.isfinite(v)) or not np.all(v == np.floor(v)):
        return False
    return float(np.abs(v).sum()) < _EXACT


def _pair_counts(flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many ``flags[p]`` are set for p in ``lo+1 .. hi-1`` (pairs of neighbours inside each window)."""
    prefix = np.concatenate(([0], np.cumsum(flags)))
    start = np.minimum(lo + 1, hi)
    return (prefix[hi] - prefix[start]).astype(np.float64)


def over_time(func: str, t: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, *,
              param: np.ndarray | None = None, param2: np.ndarray | None = None,
              steps_ms: np.ndarray | None = None):
    """``func`` over every window ``v[lo[i, j]:hi[i, j]]``: ``(values, present)`` of ``lo``'s shape.

    ``param`` is the per-step scalar of ``quantile_over_time`` (q),
    ``predict_linear`` (seconds ahead) and ``holt_winters`` (the smoothing
    factor; ``param2`` is its trend factor, both checked by the caller with
    :func:`smoothing_error`); ``steps_ms`` the evaluation times
    ``predict_linear`` extrapolates from.
    """
    count = hi - lo
    present = count >= (2 if func in ("deriv", "predict_linear", "holt_winters") else 1)
    out = np.full(lo.shape, np.nan)
    if not present.any():
        return out, present
    with np.errstate(all="ignore"):
        if func == "count_over_time":
            return count.astype(np.float64), present
        if func == "present_over_time":
            return np.ones(lo.shape), present
        if func == "last_over_time":
            return np.where(present, v[np.maximum(hi - 1, 0)], np.nan), present
        if func in ("min_over_time", "max_over_time"):
            cells = np.nonzero(present)
            padded = np.append(v, np.nan)  # reduceat needs every index < len
            idx = np.stack([lo[cells], hi[cells]], axis=1).ravel()
            ufunc = np.fmax if func == "max_over_time" else np.fmin
            out[cells] = ufunc.reduceat(padded, idx)[::2]
            return out, present
        if func in ("changes", "resets"):
            flags = np.zeros(v.size, dtype=np.int64)
            if v.size > 1:
                a, b = v[1:], v[:-1]
                flags[1:] = (a < b) if func == "resets" else ((a != b) & ~(np.isnan(a) & np.isnan(b)))
            return np.where(present, _pair_counts(flags, lo, hi), np.nan), present
        if func in ("sum_over_time", "avg_over_time") and _exact_integers(v):
            prefix = np.concatenate(([0.0], np.cumsum(v)))
            total = prefix[hi] - prefix[lo]
            return np.where(present, total if func == "sum_over_time" else total / np.maximum(count, 1), np.nan), present
    cells = zip(*np.nonzero(present))
    for i, j in cells:
        a, b = int(lo[i, j]), int(hi[i, j])
        vs = v[a:b].tolist()
        if func == "sum_over_time":
            out[i, j] = _sum(vs)
        elif func == "avg_over_time":
            out[i, j] = compensated_mean(vs)
        elif func == "stdvar_over_time":
            out[i, j] = _variance(vs)
        elif func == "stddev_over_time":
            var = _variance(vs)
            out[i, j] = math.sqrt(var) if var >= 0 else math.nan  # Go's Sqrt: NaN for NaN and negatives
        elif func == "quantile_over_time":
            out[i, j] = quantile(float(param[j]), vs)
        elif func == "mad_over_time":
            out[i, j] = _mad(vs)
        elif func == "deriv":
            ts = t[a:b].tolist()
            out[i, j] = _linear_regression(ts, vs, ts[0])[0]
        elif func == "predict_linear":
            slope, intercept = _linear_regression(t[a:b].tolist(), vs, int(steps_ms[j]))
            out[i, j] = slope * float(param[j]) + intercept
        elif func == "holt_winters":
            out[i, j] = _holt_winters(vs, float(param[j]), float(param2[j]))
        else:  # pragma: no cover - promql only routes WINDOW_FUNCTIONS here
            raise ValueError(f"unknown range function {func}")
    return out, present
