"""PromQL for the embedded mesh, with Prometheus 2.55 semantics, over any series store.

`stat`, `routes`, Flagger's checks and the plots all ask the embedded mesh the
same PromQL that linkerd-viz and Flagger send a real Prometheus
(reference/linkerd-formats.md §3, flagger-and-policies.md §2.4). This module
answers it, so both backends share one code path and a real Prometheus can
check the numbers (tests/test_promql_reference.py runs ``promtool``).

How it works, and why:

* **Parsing** is ``promql_parser.parse`` (the Rust parser, compatible with
  Prometheus 2.45); its AST is compiled once per query string (``lru_cache``)
  into small frozen dataclasses, and anything outside the supported subset
  raises :class:`labkit.errors.QueryError` naming the construct and the query,
  before any data is read.
* **Evaluation is vectorised over series and steps at once.** An instant
  vector is an ``(N series, K steps)`` value matrix plus a presence mask; an
  instant query is the case ``K == 1``. Range functions find each window's
  first/last sample for all series and steps with one ``searchsorted`` over the
  flattened samples, so a query over a few thousand series costs milliseconds
  with no per-sample Python loop.
* **Semantics follow Prometheus 2.55** (the release linkerd-viz ships):
  5-minute lookback, windows closed on both ends (``end - range <= t <=
  end``), staleness markers, ``extrapolatedRate`` (counter resets,
  extrapolation to the window edges up to 1.1x the average sample spacing,
  else half a spacing, then the zero-point clamp for counters — v2.51's
  order), ``irate``'s last-two-samples rule, ``bucketQuantile`` for
  ``histogram_quantile``, Kahan–Neumaier sums (``sum``, ``avg``,
  ``*_over_time``, ``deriv``), NaN ranked last by topk/bottomk/sort, vector
  matching one-to-one and many-to-one (group_left/group_right),
  metric-name dropping, IEEE float division (x/0 = ±Inf, 0/0 = NaN), ``@``
  and subqueries aligned to absolute multiples of their step, RE2 regexes
  (:mod:`labkit.metrics.label_regex`). Range-vector functions other than
  rate & co. are in :mod:`labkit.metrics.promql_windows`. Native histograms
  are not modelled (their functions raise a clear error). ``holt_winters``
  is parsed under promql-parser's (Prometheus 3) name
  (:mod:`labkit.metrics.promql_dialect`); ``limit_ratio`` picks series by
  Prometheus's label-set hash (:mod:`labkit.metrics.label_hash`); an
  aggregation's parameter (k, q, ratio) is read at the first step (2.52+).
  The test suite checks the answers against a real Prometheus server (2.53 in
  CI, which differs from 2.55 in nothing the checks compare; Debian 12's 2.42
  through ``compat="2.42"``, which reproduces its older extrapolation order and
  per-step aggregation parameters).

The source is any object with ``select(name, matchers) -> list[Series]``
(``Series`` having ``.labels``, ``.times`` in unix seconds and ``.values``). A
source may also offer ``gather_window(series, mint_ms, maxt_ms)`` (see
:meth:`labkit.sim.store.SeriesStore.gather_window`) for speed.
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Optional, Sequence

import numpy as np
import promql_parser as _pp

from labkit.errors import QueryError
from labkit.metrics.label_regex import expand, matcher_regex, replace_regex
from labkit.metrics.promql_dialect import UnknownFunction, from_parser_name, parser_message, to_parser_dialect
from labkit.metrics.promql_windows import (
    WINDOW_FUNCTIONS, compensated_mean, kahan_inc_array, over_time, quantile, smoothing_error,
)

__all__ = [
    "instant", "range_", "instant_matrix", "result_type", "format_value", "to_frame", "compile_query",
    "bucket_quantile",
    "InstantVector", "Matrix", "LOOKBACK_DELTA", "SUPPORTED_FUNCTIONS",
]

#: Prometheus's default ``--query.lookback-delta``, seconds.
LOOKBACK_DELTA = 300.0
#: Prometheus refuses range queries with more points per series than this.
MAX_POINTS = 11_000

Items = tuple[tuple[str, str], ...]

# The staleness marker's bit pattern (Prometheus value.StaleNaN); duplicated from
# labkit.sim.store on purpose: metrics/ must not import a backend.
_STALE_BITS = np.uint64(0x7FF0000000000002)


# =============================================================================================
# The compiled query: a small immutable tree
# =============================================================================================


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Str:
    value: str


#: An ``@`` modifier: None, ("at", ms), ("start",) or ("end",) (the query's start/end).
At = Optional[tuple]


@dataclass(frozen=True)
class Sel:
    """An instant vector selector ``name{matchers} offset … @ …``."""

    name: str | None
    matchers: tuple[tuple[str, str, str], ...]
    offset_ms: int
    at: At = None


@dataclass(frozen=True)
class RangeSel:
    """A range vector selector ``sel[range]``; only valid as a range function's argument."""

    sel: Sel
    range_ms: int


@dataclass(frozen=True)
class Subquery:
    """``expr[range:step] offset … @ …``: ``expr`` evaluated at every ``step`` in the range."""

    expr: Any
    range_ms: int
    step_ms: int
    offset_ms: int
    at: At = None


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Agg:
    """``op [by|without (labels)] ([param,] expr)``; ``grouping`` None means over everything."""

    op: str
    expr: Any
    param: Any
    grouping: tuple[str, ...] | None
    without: bool


@dataclass(frozen=True)
class Bin:
    """``lhs op [bool] [on|ignoring (labels)] [group_left|group_right (include)] rhs``."""

    op: str
    lhs: Any
    rhs: Any
    return_bool: bool
    matching: str | None  # "on", "ignoring" or None
    labels: tuple[str, ...]
    card: str = "one"  # "one" (one-to-one), "left" (group_left) or "right" (group_right)
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class Neg:
    expr: Any


_RATE_FUNCS = {"rate", "irate", "increase", "delta", "idelta"}
_RANGE_FUNCS = _RATE_FUNCS | set(WINDOW_FUNCTIONS) | {"absent_over_time"}
_MATH_FUNCS = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "sqrt": np.sqrt,
    "exp": np.exp, "ln": np.log, "log2": np.log2, "log10": np.log10, "sgn": np.sign,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "deg": np.degrees, "rad": np.radians,
}
_DATE_FUNCS = {"year", "month", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute"}
_LABEL_FUNCS = {"label_replace", "label_join"}
_ORDER_FUNCS = {"sort", "sort_desc", "sort_by_label", "sort_by_label_desc"}
_OTHER_FUNCS = {
    "round", "clamp", "clamp_min", "clamp_max", "scalar", "vector", "time", "timestamp", "pi",
    "histogram_quantile", "absent",
}
#: Functions over native histograms, which the embedded mesh does not model (Linkerd exports classic buckets).
_NATIVE_HISTOGRAM_FUNCS = {
    "histogram_count", "histogram_sum", "histogram_avg", "histogram_fraction", "histogram_stddev",
    "histogram_stdvar",
}
_AGGREGATIONS = {
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "limitk",
    "limit_ratio", "quantile", "count_values",
}
_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
_COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
_SET_OPS = {"and", "or", "unless"}
_MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
#: A subquery without ``:step`` uses the global evaluation interval (Prometheus's default, 1m).
DEFAULT_SUBQUERY_STEP_MS = 60_000

SUPPORTED_FUNCTIONS = frozenset(
    _RANGE_FUNCS | set(_MATH_FUNCS) | _DATE_FUNCS | _LABEL_FUNCS | _ORDER_FUNCS | _OTHER_FUNCS
)


def _unsupported(what: str, query: str) -> QueryError:
    return QueryError(
        f"{what} is not supported by the embedded mesh's PromQL evaluator (query: {query!r}); "
        f"it supports the PromQL of Prometheus 2.55 on float samples: selectors with offset and @, subqueries, "
        f"the functions {', '.join(sorted(SUPPORTED_FUNCTIONS))}, the aggregations "
        f"{', '.join(sorted(_AGGREGATIONS))}, arithmetic, comparisons, and/or/unless and vector matching "
        f"(on/ignoring, group_left/group_right)"
    )


def _ms(delta) -> int:
    """A parser timedelta as integer milliseconds (may be negative)."""
    return int(round(delta.total_seconds() * 1000.0))


@lru_cache(maxsize=1024)
def compile_query(query: str):
    """Parse ``query`` and compile it to the evaluator's tree (cached per query string).

    Raises QueryError with the parser's message for malformed PromQL and with
    the construct's name for PromQL outside the supported subset.
    """
    if not isinstance(query, str):
        raise QueryError(f"a PromQL query must be a string, got {type(query).__name__}")
    try:
        text, renamed = to_parser_dialect(query)  # holt_winters( is spelled the parser's (3.x) way
    except UnknownFunction as exc:
        raise QueryError(f"cannot parse PromQL {query!r}: {exc}") from None
    try:
        ast = _pp.parse(text)
    except BaseException as exc:  # ValueError, or a Rust panic surfacing as PanicException
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        message = parser_message(str(exc)) if renamed else str(exc)
        raise QueryError(f"cannot parse PromQL {query!r}: {message}") from None
    return _compile(ast, query)


def _compile_at(node, query: str) -> At:
    """The ``@`` modifier of a selector or subquery (the parser panics on negative times; say so clearly)."""
    at = node.at
    if at is None:
        return None
    kind = str(at.type)
    if kind.endswith("Start"):
        return ("start",)
    if kind.endswith("End"):
        return ("end",)
    try:
        when = at.at
    except BaseException as exc:  # pyo3 PanicException for times before 1970
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise _unsupported("an @ time before 1970-01-01", query) from None
    return ("at", int(round(when.timestamp() * 1000.0)))


def _compile(node, query: str):
    if isinstance(node, _pp.ParenExpr):
        return _compile(node.expr, query)
    if isinstance(node, _pp.NumberLiteral):
        return Num(float(node.val))
    if isinstance(node, _pp.StringLiteral):
        return Str(node.val)
    if isinstance(node, _pp.VectorSelector):
        return _compile_selector(node, query)
    if isinstance(node, _pp.MatrixSelector):
        return RangeSel(_compile_selector(node.vector_selector, query), _ms(node.range))
    if isinstance(node, _pp.SubqueryExpr):
        inner = _compile(node.expr, query)
        step = _ms(node.step) if node.step is not None else DEFAULT_SUBQUERY_STEP_MS
        offset = _ms(node.offset) if node.offset is not None else 0
        return Subquery(inner, _ms(node.range), step, offset, _compile_at(node, query))
    if isinstance(node, _pp.UnaryExpr):  # the parser folds unary plus away; this is negation
        return Neg(_compile(node.expr, query))
    if isinstance(node, _pp.Call):
        name = from_parser_name(node.func.name)
        if name in _NATIVE_HISTOGRAM_FUNCS:
            raise _unsupported(
                f"the function {name}() (native histograms: the embedded mesh stores Linkerd's classic "
                f"_bucket series; use histogram_quantile over them)", query)
        if name not in SUPPORTED_FUNCTIONS:
            raise _unsupported(f"the function {name}()", query)
        args = tuple(_compile(arg, query) for arg in node.args)
        if name == "label_replace":
            _replace_regex_checked(args[4].value, query)
            _check_label_name(args[1].value, "destination", name, query)
        if name == "label_join":
            _check_label_name(args[1].value, "destination", name, query)
            for src in args[3:]:
                _check_label_name(src.value, "source", name, query)
        return Call(name, args)
    if isinstance(node, _pp.AggregateExpr):
        op = str(node.op)
        if op not in _AGGREGATIONS:
            raise _unsupported(f"the aggregation {op}()", query)
        grouping, without = None, False
        if node.modifier is not None:
            grouping = tuple(node.modifier.labels)
            without = str(node.modifier.type).endswith("Without")
        param = _compile(node.param, query) if node.param is not None else None
        if op == "count_values":
            _check_label_name(param.value, "value", "count_values", query)
        return Agg(op, _compile(node.expr, query), param, grouping, without)
    if isinstance(node, _pp.BinaryExpr):
        op = str(node.op)
        if op not in _ARITHMETIC | _COMPARISON | _SET_OPS:
            raise _unsupported(f"the binary operator {op!r}", query)
        mod = node.modifier
        return_bool, matching, labels, card, include = False, None, (), "one", ()
        if mod is not None:
            kind = str(mod.card)
            if kind.endswith("ManyToOne"):
                card = "left"
            elif kind.endswith("OneToMany"):
                card = "right"
            include = tuple(getattr(mod, "group_labels", None) or ())
            fill = getattr(mod, "fill_values", None)
            if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                raise _unsupported("fill() in vector matching", query)
            return_bool = bool(mod.return_bool)
            if mod.matching is not None:
                matching = "on" if str(mod.matching.type).endswith("Include") else "ignoring"
                labels = tuple(mod.matching.labels)
        return Bin(op, _compile(node.lhs, query), _compile(node.rhs, query), return_bool, matching, labels,
                   card, include)
    raise _unsupported(f"the expression {type(node).__name__}", query)


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _check_label_name(name: str, role: str, func: str, query: str) -> None:
    if not _LABEL_NAME.match(name):
        raise QueryError(f"invalid {role} label name in {func}(): {name!r} (query: {query!r})")


def _replace_regex_checked(pattern: str, query: str):
    try:
        return replace_regex(pattern)
    except ValueError as exc:
        raise QueryError(f"{exc} (query: {query!r})") from None


def _compile_selector(node, query: str) -> Sel:
    if node.matchers.or_matchers:
        raise _unsupported("'or' inside a label selector", query)
    matchers = []
    for m in node.matchers.matchers:
        op = _MATCH_OPS.get(str(m.op))
        if op is None:
            raise _unsupported(f"the label matcher operator {m.op}", query)
        if op in ("=~", "!~"):
            try:
                matcher_regex(m.value)
            except ValueError as exc:
                raise QueryError(f"{exc} (query: {query!r})") from None
        matchers.append((m.name, op, m.value))
    offset = _ms(node.offset) if node.offset is not None else 0
    return Sel(node.name, tuple(matchers), offset, _compile_at(node, query))


# =============================================================================================
# Values during evaluation
# =============================================================================================


@dataclass
class _Vec:
    """An instant vector over K steps: row i is a series, present where ``mask[i, k]``."""

    names: list  # metric name per row, or None once dropped
    items: list  # sorted (label, value) pairs per row, without __name__
    vals: np.ndarray  # (N, K) float64
    mask: np.ndarray  # (N, K) bool


@dataclass(frozen=True)
class _Ctx:
    source: Any
    steps: np.ndarray  # evaluation timestamps, int64 ms, ascending
    lookback_ms: int
    query: str
    start_ms: int = 0  # the query's start and end: what "@ start()" and "@ end()" mean, in subqueries too
    end_ms: int = 0
    clamp_first: bool = False  # rate's pre-2.51 order (zero-point clamp before the half-spacing cap)
    step_params: bool = False  # pre-2.52: an aggregation's k/q/ratio read at every step, not the first one only


def _empty(k: int) -> _Vec:
    return _Vec([], [], np.empty((0, k)), np.zeros((0, k), dtype=bool))


def _take(vec: _Vec, rows: np.ndarray) -> _Vec:
    """The vector restricted to ``rows`` (an index or boolean array)."""
    idx = np.flatnonzero(rows) if rows.dtype == bool else rows
    return _Vec([vec.names[i] for i in idx], [vec.items[i] for i in idx], vec.vals[idx], vec.mask[idx])


def _compact(vec: _Vec) -> _Vec:
    """Drop rows that are present at no step (they would only cost time downstream)."""
    keep = vec.mask.any(axis=1)
    return vec if keep.all() else _take(vec, keep)


def _drop_names(vec: _Vec, ctx: _Ctx) -> _Vec:
    """Drop ``__name__`` like Prometheus functions and arithmetic do, then re-check uniqueness."""
    distinct = len(set(vec.names))
    out = _Vec([None] * len(vec.names), vec.items, vec.vals, vec.mask)
    return _dedupe(out, ctx) if distinct > 1 else out


def _dedupe(vec: _Vec, ctx: _Ctx) -> _Vec:
    """Merge rows with identical labels if they never coincide in time; error if they do.

    Prometheus evaluates each step separately and fails with "vector cannot
    contain metrics with the same labelset" only where two such series are
    present at the same step; rows present at disjoint steps are one series of
    the range result.
    """
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(vec.names, vec.items)):
        groups.setdefault(key, []).append(i)
    if len(groups) == len(vec.names):
        return vec
    keep = []
    vals, mask = vec.vals.copy(), vec.mask.copy()
    for rows in groups.values():
        first = rows[0]
        keep.append(first)
        for r in rows[1:]:
            if (mask[first] & vec.mask[r]).any():
                raise QueryError(
                    f"vector cannot contain metrics with the same labelset {_fmt(vec.names[r], vec.items[r])} "
                    f"(query: {ctx.query!r})"
                )
            vals[first] = np.where(vec.mask[r], vec.vals[r], vals[first])
            mask[first] |= vec.mask[r]
    keep.sort()
    return _Vec([vec.names[i] for i in keep], [vec.items[i] for i in keep], vals[keep], mask[keep])


def _fmt(name: str | None, items: Items) -> str:
    body = ", ".join(f'{k}="{v}"' for k, v in items)
    return f"{name or ''}{{{body}}}"


# =============================================================================================
# Reading the source
# =============================================================================================


def _select(ctx: _Ctx, sel: Sel) -> tuple[list, list, list]:
    """The selector's series as (objects, names, label items) from the source."""
    found = ctx.source.select(sel.name, list(sel.matchers))
    if all(hasattr(s, "label_items") for s in found):  # the store's Series: labels already canonical
        return found, [s.name for s in found], [s.label_items for s in found]
    names, items = [], []
    for s in found:
        item = getattr(s, "label_items", None)
        if item is not None:
            names.append(s.name)
            items.append(item)
        else:
            labels = s.labels
            names.append(labels.get("__name__"))
            items.append(tuple(sorted((k, v) for k, v in labels.items() if k != "__name__" and v != "")))
    return found, names, items


def _gather(ctx: _Ctx, series: Sequence, mint: int, maxt: int):
    """Flattened samples with ``mint <= t <= maxt``: (times ms, values, starts[N+1])."""
    fast = getattr(ctx.source, "gather_window", None)
    if fast is not None:
        t, v, lengths = fast(series, mint, maxt)
    else:
        ts, vs, ls = [], [], []
        for s in series:
            tm = np.round(np.asarray(s.times, dtype=np.float64) * 1000.0).astype(np.int64)
            vals = np.asarray(s.values, dtype=np.float64)
            lo, hi = np.searchsorted(tm, mint, side="left"), np.searchsorted(tm, maxt, side="right")
            ts.append(tm[lo:hi])
            vs.append(vals[lo:hi])
            ls.append(hi - lo)
        t = np.concatenate(ts) if ts else np.empty(0, dtype=np.int64)
        v = np.concatenate(vs) if vs else np.empty(0, dtype=np.float64)
        lengths = np.asarray(ls, dtype=np.int64)
    starts = np.zeros(len(series) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return t, v, starts


def _is_stale(v: np.ndarray) -> np.ndarray:
    return v.view(np.uint64) == _STALE_BITS


def _window_bounds(t, starts, lo_t, hi_t, mint, maxt):
    """Per series and step, ``lo`` = first sample with t >= lo_t and ``hi`` = one past the last with t <= hi_t.

    All N x K windows at once, without a per-series loop:

    * one step whose window is exactly the gathered range: the segment bounds;
    * evenly spaced steps (every range query): each sample's first step is
      computed arithmetically, and a per-series running count over steps
      (``bincount`` + ``cumsum``) gives the bounds in O(samples + N*K);
    * otherwise one ``searchsorted`` over composite (series, time) keys.
    """
    n, k = len(starts) - 1, len(lo_t)
    if k == 1 and lo_t[0] <= mint and hi_t[0] >= maxt:
        return starts[:-1, None].copy(), starts[1:, None].copy()
    seg = np.repeat(np.arange(n, dtype=np.int64), np.diff(starts))
    step = int(hi_t[1] - hi_t[0]) if k > 1 else 0
    if step > 0 and np.all(np.diff(hi_t) == step) and np.all(hi_t - lo_t == hi_t[0] - lo_t[0]):
        before = starts[:-1, None]
        hi = before + _count_until(t, seg, n, int(hi_t[0]), step, k)
        lo = before + _count_until(t + 1, seg, n, int(lo_t[0]), step, k)
        return lo, hi
    span = int(maxt - mint) + 2
    keys = seg * span + (t - mint)
    base = (np.arange(n, dtype=np.int64) * span)[:, None]
    lo = np.searchsorted(keys, base + (np.maximum(lo_t, mint) - mint)[None, :], side="left")
    hi = np.searchsorted(keys, base + (np.minimum(hi_t, maxt) - mint)[None, :], side="right")
    return lo, hi


def _count_until(t, seg, n: int, first: int, step: int, k: int) -> np.ndarray:
    """``out[i, j]`` = how many samples of series ``i`` have ``t <= first + j * step``."""
    # A sample counts from step ceil((t - first) / step) on. Float division is exact enough:
    # a non-integer quotient is >= 1/step away from an integer, far beyond float64 error.
    from_step = np.ceil((t - first) / float(step))
    np.clip(from_step, 0, k, out=from_step)
    from_step = from_step.astype(np.int64)
    counts = np.bincount(seg * (k + 1) + from_step, minlength=n * (k + 1)).reshape(n, k + 1)
    return np.cumsum(counts[:, :k], axis=1)


# =============================================================================================
# Evaluation
# =============================================================================================


def _eval(node, ctx: _Ctx):
    """Evaluate a compiled node: a numpy (K,) array for scalars, a _Vec, or a str."""
    if isinstance(node, Num):
        return np.full(len(ctx.steps), node.value)
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Sel):
        return _eval_selector(node, ctx)
    if isinstance(node, Neg):
        inner = _eval(node.expr, ctx)
        if isinstance(inner, np.ndarray):
            return -inner
        return _drop_names(_Vec(inner.names, inner.items, -inner.vals, inner.mask), ctx)
    if isinstance(node, Call):
        return _eval_call(node, ctx)
    if isinstance(node, Agg):
        return _eval_agg(node, ctx)
    if isinstance(node, Bin):
        return _eval_binary(node, ctx)
    if isinstance(node, (RangeSel, Subquery)):
        raise QueryError(
            f"a range vector cannot be a query's result here; wrap it in a function such as rate() or "
            f"max_over_time() (query: {ctx.query!r})"
        )
    raise QueryError(f"cannot evaluate {node!r} (query: {ctx.query!r})")  # pragma: no cover


def _times(at: At, offset_ms: int, ctx: _Ctx) -> np.ndarray:
    """The time each step reads a selector or subquery at: the step, or the ``@`` time, minus the offset."""
    if at is None:
        base = ctx.steps
    elif at[0] == "start":
        base = np.full(len(ctx.steps), ctx.start_ms, dtype=np.int64)
    elif at[0] == "end":
        base = np.full(len(ctx.steps), ctx.end_ms, dtype=np.int64)
    else:
        base = np.full(len(ctx.steps), at[1], dtype=np.int64)
    return base - offset_ms


def _eval_selector(sel: Sel, ctx: _Ctx, *, sample_times: bool = False):
    """Instant vector selector: each series' latest sample within the lookback delta (inclusive).

    With ``sample_times`` also returns the (N, K) sample timestamps in ms (for ``timestamp()``).
    """
    series, names, items = _select(ctx, sel)
    k = len(ctx.steps)
    if not series:
        return (_empty(k), np.zeros((0, k), dtype=np.int64)) if sample_times else _empty(k)
    at = _times(sel.at, sel.offset_ms, ctx)
    mint, maxt = int(at.min()) - ctx.lookback_ms, int(at.max())
    t, v, starts = _gather(ctx, series, mint, maxt)
    if t.size == 0:
        return (_empty(k), np.zeros((0, k), dtype=np.int64)) if sample_times else _empty(k)
    lo, hi = _window_bounds(t, starts, at - ctx.lookback_ms, at, mint, maxt)
    present = hi > lo
    last = np.where(present, hi - 1, 0)
    vals = v[last]
    mask = present & ~_is_stale(vals)
    out = _Vec(names, items, np.where(mask, vals, np.nan), mask)
    if sample_times:
        return out, t[last]
    return _compact(out)


@dataclass
class _Windows:
    """A range argument's samples, flattened, and each (series, step) window ``[lo, hi)`` into them."""

    names: list
    items: list
    t: np.ndarray
    v: np.ndarray
    starts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    range_start: np.ndarray  # (K,) ms
    range_end: np.ndarray  # (K,) ms
    range_ms: int


def _range_windows(arg, ctx: _Ctx) -> _Windows | None:
    """The samples a range function sees: a range selector's (staleness markers dropped) or a subquery's."""
    k = len(ctx.steps)
    if isinstance(arg, RangeSel):
        sel = arg.sel
        series, names, items = _select(ctx, sel)
        if not series:
            return None
        end = _times(sel.at, sel.offset_ms, ctx)
        range_ms = arg.range_ms
        start = end - range_ms
        mint, maxt = int(start.min()), int(end.max())
        t, v, starts = _gather(ctx, series, mint, maxt)
        stale = _is_stale(v)
        if stale.any():  # range vectors never contain staleness markers
            kept = np.concatenate(([0], np.cumsum(~stale)))
            t, v, starts = t[~stale], v[~stale], kept[starts]
    elif isinstance(arg, Subquery):
        end = _times(arg.at, arg.offset_ms, ctx)
        range_ms, step = arg.range_ms, arg.step_ms
        start = end - range_ms
        mint, maxt = int(start.min()), int(end.max())
        first = step * (mint // step)
        if first < mint:
            first += step
        inner_steps = np.arange(first, maxt + 1, step, dtype=np.int64)
        if inner_steps.size == 0:
            return None
        inner_ctx = replace(ctx, steps=inner_steps)
        inner = _eval(arg.expr, inner_ctx)
        if not isinstance(inner, _Vec):
            raise QueryError(f"a subquery needs an instant vector expression, not a scalar or string "
                             f"(query: {ctx.query!r})")
        names, items = inner.names, inner.items
        if not names:
            return None
        lengths = inner.mask.sum(axis=1)
        starts = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        rows, cols = np.nonzero(inner.mask)
        t, v = inner_steps[cols], inner.vals[rows, cols]
    else:
        raise QueryError(f"expected a range vector (selector[range] or subquery) argument in {ctx.query!r}")
    if t.size == 0:
        return None
    lo, hi = _window_bounds(t, starts, start, end, mint, maxt)
    return _Windows(names, items, t, v, starts, lo, hi, start, end, range_ms)


def _eval_range_function(node: Call, ctx: _Ctx) -> _Vec:
    """A function over a range vector (rate, *_over_time, changes, deriv …), for every series and step."""
    func = node.func
    arg = node.args[1] if func == "quantile_over_time" else node.args[0]
    k = len(ctx.steps)
    param = param2 = None
    if func == "quantile_over_time":
        param = _scalar_arg(node.args[0], ctx)
    elif func == "predict_linear":
        param = _scalar_arg(node.args[1], ctx)
    elif func == "holt_winters":
        param, param2 = _scalar_arg(node.args[1], ctx), _scalar_arg(node.args[2], ctx)
    w = _range_windows(arg, ctx)
    if func == "absent_over_time":
        seen = np.zeros(k, dtype=bool) if w is None else (w.hi > w.lo).any(axis=0)
        return _absent_vector(arg, ~seen, ctx)
    if w is None:
        return _empty(k)
    if func in ("irate", "idelta"):
        vals, mask = _instant_value(w.t, w.v, w.lo, w.hi, is_rate=func == "irate")
    elif func in _RATE_FUNCS:
        vals, mask = _extrapolated_rate(
            w.t, w.v, w.starts, w.lo, w.hi, w.range_start, w.range_end, w.range_ms,
            is_counter=func in ("rate", "increase"), is_rate=func == "rate", clamp_first=ctx.clamp_first,
        )
    else:
        if func == "holt_winters":
            _check_smoothing(w, param, param2, ctx)
        vals, mask = over_time(func, w.t, w.v, w.lo, w.hi, param=param, param2=param2, steps_ms=ctx.steps)
    out = _Vec(w.names, w.items, np.where(mask, vals, np.nan), mask)
    if func == "last_over_time":  # keeps the metric name, like an instant selector
        return _dedupe(_compact(out), ctx)
    return _drop_names(_compact(out), ctx)


def _check_smoothing(w: _Windows, sf: np.ndarray, tf: np.ndarray, ctx: _Ctx) -> None:
    """holt_winters' factor check, raised where Prometheus raises it: at the first window holding a sample.

    Prometheus smooths series by series (in label-set order), step by step,
    and fails at the first call whose factors are out of range.
    """
    bad = np.array([smoothing_error(float(a), float(b)) is not None for a, b in zip(sf, tf)])
    hit = (w.hi > w.lo) & bad[None, :]
    if not hit.any():
        return
    row = min(np.flatnonzero(hit.any(axis=1)), key=lambda i: _sort_key(w.names[i], w.items[i]))
    j = int(np.flatnonzero(hit[row])[0])
    raise QueryError(f"{smoothing_error(float(sf[j]), float(tf[j]))} (query: {ctx.query!r})")


def _absent_labels(arg) -> Items:
    """The labels absent()/absent_over_time() report: the selector's equality matchers (Prometheus's rule)."""
    sel = arg.sel if isinstance(arg, RangeSel) else arg
    if not isinstance(sel, Sel):
        return ()
    out: dict[str, str] = {}
    dropped: set[str] = set()
    for label, op, value in sel.matchers:
        if label == "__name__":
            continue
        if op == "=" and label not in out and label not in dropped:
            out[label] = value
        else:
            out.pop(label, None)
            dropped.add(label)
    return tuple(sorted(out.items()))


def _absent_vector(arg, absent: np.ndarray, ctx: _Ctx) -> _Vec:
    if not absent.any():
        return _empty(len(ctx.steps))
    return _Vec([None], [_absent_labels(arg)], np.where(absent, 1.0, np.nan)[None, :], absent[None, :].copy())


def _instant_value(t, v, lo, hi, *, is_rate: bool):
    """irate/idelta: the last two samples of the window (Prometheus ``instantValue``)."""
    mask = (hi - lo) >= 2
    if v.size < 2:
        return np.zeros(mask.shape), np.zeros(mask.shape, dtype=bool)
    last, prev = hi - 1, hi - 2  # negative where masked out: valid indexes, results ignored
    lv, pv = v[last], v[prev]
    with np.errstate(all="ignore"):
        if is_rate:
            result = np.where(lv < pv, lv, lv - pv)  # a counter reset: the counter restarted at 0
            result /= (t[last] - t[prev]) / 1000.0
        else:
            result = lv - pv
    return result, mask


def _extrapolated_rate(t, v, starts, lo, hi, range_start, range_end, range_ms, *, is_counter, is_rate,
                       clamp_first=False):
    """rate/increase/delta exactly as Prometheus 2.55's ``extrapolatedRate`` computes them.

    The raw change between the first and last sample in the window (plus, for
    counters, the value before each reset) is scaled up to the window: each end
    is extrapolated to the window edge when the sample is within 1.1x the
    average spacing of it, else by half a spacing; then a counter is never
    extrapolated below zero (the start is clamped at the zero crossing). That
    order is v2.51's; before it the clamp came first, overstating the rate of
    a counter that starts inside the window (a new canary pod's) by up to ~10%.
    """
    count = hi - lo
    mask = count >= 2
    first = np.minimum(lo, v.size - 1)  # in range everywhere; masked-out results are ignored
    last = np.maximum(hi - 1, 0)
    first_t, last_t = t[first], t[last]
    first_v, last_v = v[first], v[last]
    result = last_v - first_v
    if is_counter:
        result = _add_reset_corrections(result, v, starts, first, last, mask)
    with np.errstate(all="ignore"):
        duration_to_start = (first_t - range_start[None, :]) / 1000.0
        duration_to_end = (range_end[None, :] - last_t) / 1000.0
        sampled = (last_t - first_t) / 1000.0
        average = sampled / np.maximum(count - 1, 1)
        threshold = average * 1.1
        to_zero = sampled * (first_v / result)
        clamps = (result > 0) & (first_v >= 0) if is_counter else np.zeros(result.shape, dtype=bool)
        if clamp_first:  # the pre-2.51 order, only to check against an older Prometheus
            duration_to_start = np.where(clamps & (to_zero < duration_to_start), to_zero, duration_to_start)
        # Prometheus >= 2.51: cap each end at half a spacing first, then (counters) clamp at the zero point
        duration_to_start = np.where(duration_to_start >= threshold, average / 2, duration_to_start)
        duration_to_end = np.where(duration_to_end >= threshold, average / 2, duration_to_end)
        duration_to_start = np.where(clamps & (to_zero < duration_to_start), to_zero, duration_to_start)
        interval = sampled + duration_to_start + duration_to_end
        factor = interval / sampled
        if is_rate:
            factor = factor / (range_ms / 1000.0)
        result = result * factor
    return result, mask


def _add_reset_corrections(result, v, starts, first, last, mask):
    """Add, for every counter reset inside a window, the value just before it.

    Vectorised with prefix sums when every value is an integer small enough for
    float64 sums to be exact (counters of requests and bytes are); otherwise the
    few windows that contain a reset are summed sample by sample, in
    Prometheus's order, so the float result is bit-identical.
    """
    if v.size < 2:
        return result
    reset = np.zeros(v.size, dtype=bool)
    reset[1:] = v[1:] < v[:-1]
    reset[starts[:-1][starts[:-1] < v.size]] = False  # a segment's first sample follows another series
    if not reset.any():
        return result
    resets = np.concatenate(([0], np.cumsum(reset)))
    in_window = (resets[last + 1] - resets[first + 1]) * mask  # resets at positions first+1 .. last
    if not in_window.any():
        return result
    before = np.zeros(v.size)
    before[1:] = np.where(reset[1:], v[:-1], 0.0)
    total = np.cumsum(before)
    exact = bool(np.all(np.isfinite(v)) and np.all(v == np.floor(v)) and total[-1] < 2.0**52
                 and np.all(np.abs(v) < 2.0**52))
    if exact:
        return result + np.where(in_window > 0, total[last] - total[first], 0.0)
    result = result.copy()
    for i, j in zip(*np.nonzero(in_window)):
        acc = result[i, j]
        for p in range(first[i, j] + 1, last[i, j] + 1):
            if v[p] < v[p - 1]:
                acc += v[p - 1]
        result[i, j] = acc
    return result


def _scalar_arg(node, ctx: _Ctx) -> np.ndarray:
    value = _eval(node, ctx)
    if not isinstance(value, np.ndarray):  # the parser type-checks; this guards compiled trees
        raise QueryError(f"expected a scalar argument in {ctx.query!r}")
    return value


def _vector_arg(node, ctx: _Ctx) -> _Vec:
    value = _eval(node, ctx)
    if not isinstance(value, _Vec):
        raise QueryError(f"expected an instant vector argument in {ctx.query!r}")
    return value


def _eval_call(node: Call, ctx: _Ctx):
    func, args = node.func, node.args
    k = len(ctx.steps)
    if func in _RANGE_FUNCS:
        return _eval_range_function(node, ctx)
    if func == "time":
        return ctx.steps / 1000.0
    if func == "pi":
        return np.full(k, math.pi)
    if func == "vector":
        value = _scalar_arg(args[0], ctx)
        return _Vec([None], [()], value[None, :].copy(), np.ones((1, k), dtype=bool))
    if func == "scalar":
        vec = _vector_arg(args[0], ctx)
        counts = vec.mask.sum(axis=0)
        picked = np.where(vec.mask, vec.vals, 0.0).sum(axis=0) if len(vec.names) else np.zeros(k)
        return np.where(counts == 1, picked, np.nan)
    if func == "histogram_quantile":
        return _histogram_quantile(_scalar_arg(args[0], ctx), _vector_arg(args[1], ctx), ctx)
    if func == "absent":
        vec = _vector_arg(args[0], ctx)
        return _absent_vector(args[0], ~vec.mask.any(axis=0), ctx)
    if func in _DATE_FUNCS and not args:
        return _Vec([None], [()], _date_part(func, ctx.steps // 1000)[None, :], np.ones((1, k), dtype=bool))
    if func == "timestamp":
        if isinstance(args[0], Sel):  # the sample's own time, as Prometheus reports it for a selector
            vec, times = _eval_selector(args[0], ctx, sample_times=True)
            vec = _Vec(vec.names, vec.items, np.where(vec.mask, times / 1000.0, np.nan), vec.mask)
        else:
            vec = _vector_arg(args[0], ctx)
            vec = _Vec(vec.names, vec.items, np.where(vec.mask, ctx.steps[None, :] / 1000.0, np.nan), vec.mask)
        return _drop_names(_compact(vec), ctx)
    vec = _vector_arg(args[0], ctx)
    if func in _ORDER_FUNCS:  # the order is applied to the query's result (see instant())
        return vec
    if func in _LABEL_FUNCS:
        return _relabel(func, vec, args, ctx)
    with np.errstate(all="ignore"):
        if func in _MATH_FUNCS:
            vals = _MATH_FUNCS[func](vec.vals)
        elif func in _DATE_FUNCS:
            vals = _date_part(func, vec.vals)
        elif func == "round":
            to_nearest = _scalar_arg(args[1], ctx) if len(args) > 1 else np.ones(k)
            inverse = 1.0 / to_nearest
            vals = np.floor(vec.vals * inverse[None, :] + 0.5) / inverse[None, :]
        elif func == "clamp_min":
            vals = np.maximum(_scalar_arg(args[1], ctx)[None, :], vec.vals)
        elif func == "clamp_max":
            vals = np.minimum(_scalar_arg(args[1], ctx)[None, :], vec.vals)
        elif func == "clamp":
            low, high = _scalar_arg(args[1], ctx), _scalar_arg(args[2], ctx)
            vals = np.maximum(low[None, :], np.minimum(high[None, :], vec.vals))
            vec = _Vec(vec.names, vec.items, vec.vals, vec.mask & ~(high < low)[None, :])
        else:  # pragma: no cover - compile_query only lets supported functions through
            raise _unsupported(f"the function {func}()", ctx.query)
    return _drop_names(_compact(_Vec(vec.names, vec.items, vals, vec.mask)), ctx)


def _date_part(func: str, seconds) -> np.ndarray:
    """Prometheus's date functions on unix seconds (truncated to whole seconds, UTC), element-wise.

    Non-finite inputs give NaN (Go would convert them to an arbitrary int64).
    """
    x = np.asarray(seconds, dtype=np.float64)
    finite = np.isfinite(x)
    secs = np.where(finite, np.trunc(x), 0).astype(np.int64)
    days = np.floor_divide(secs, 86400)
    day_start = days.astype("datetime64[D]")
    if func == "hour":
        out = (secs - days * 86400) // 3600
    elif func == "minute":
        out = ((secs - days * 86400) // 60) % 60
    elif func == "day_of_week":
        out = (days + 4) % 7  # 1970-01-01 was a Thursday; Sunday is 0
    else:
        month_start = day_start.astype("datetime64[M]")
        year_start = day_start.astype("datetime64[Y]")
        if func == "year":
            out = year_start.astype(np.int64) + 1970
        elif func == "month":
            out = month_start.astype(np.int64) % 12 + 1
        elif func == "day_of_month":
            out = (day_start - month_start.astype("datetime64[D]")).astype(np.int64) + 1
        elif func == "day_of_year":
            out = (day_start - year_start.astype("datetime64[D]")).astype(np.int64) + 1
        else:  # days_in_month
            out = ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(np.int64)
    return np.where(finite, out.astype(np.float64), np.nan)


def _relabel(func: str, vec: _Vec, args, ctx: _Ctx) -> _Vec:
    """label_replace / label_join: rewrite one label of every series (values untouched), as Prometheus does.

    An empty result value removes the label; setting ``__name__`` gives the
    series a name again. Two series ending with the same labels at one step
    are an error ("vector cannot contain metrics with the same labelset").
    """
    dst = args[1].value
    names, items = list(vec.names), list(vec.items)
    if func == "label_replace":
        repl, src, regex = args[2].value, args[3].value, _replace_regex_checked(args[4].value, ctx.query)
    else:
        sep, sources = args[2].value, [a.value for a in args[3:]]
    for row, (name, its) in enumerate(zip(names, items)):
        labels = dict(its)
        if name is not None:
            labels["__name__"] = name
        if func == "label_replace":
            m = regex.fullmatch(labels.get(src, ""))
            if m is None:
                continue
            value = expand(repl, m)
        else:
            value = sep.join(labels.get(label, "") for label in sources)
        if value:
            labels[dst] = value
        else:
            labels.pop(dst, None)
        names[row] = labels.pop("__name__", None)
        items[row] = tuple(sorted(labels.items()))
    return _dedupe(_Vec(names, items, vec.vals, vec.mask), ctx)


# ---- histogram_quantile ------------------------------------------------------------------------


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's ``bucketQuantile`` for one histogram: ``buckets`` is (upper bound, cumulative count).

    The reference (scalar) implementation; :func:`_histogram_quantile`
    vectorises the same rules. Sorted by ``le``; NaN without a ``+Inf`` bucket,
    with fewer than two buckets or with no observations; equal bounds merged;
    counts forced monotonic; linear interpolation inside the bucket holding the
    rank, the lowest bucket interpolated from 0 (unless its bound is <= 0); a
    rank in the +Inf bucket returns the highest finite bound.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not buckets:
        return math.nan
    ordered = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    highest = -math.inf
    for b in merged:  # ensureMonotonic
        if b[1] > highest:
            highest = b[1]
        elif b[1] < highest:
            b[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


def _parse_le(text: str | None) -> float | None:
    """An ``le`` label as Go's strconv.ParseFloat reads it; None (skip the series) if it cannot."""
    if text is None or text != text.strip() or "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _histogram_quantile(q: np.ndarray, vec: _Vec, ctx: _Ctx) -> _Vec:
    """histogram_quantile(q, buckets): one result per label set without ``le``, per step.

    Histograms with the same bucket layout (all of Linkerd's share one) are
    computed together as one array; steps where only some buckets are present
    fall back to :func:`bucket_quantile`.
    """
    k = len(ctx.steps)
    parsed: dict[str | None, float | None] = {}
    groups: dict[tuple, list[tuple[float, int]]] = {}
    for row, (name, items) in enumerate(zip(vec.names, vec.items)):
        le = next((v for l, v in items if l == "le"), None)
        if le not in parsed:
            parsed[le] = _parse_le(le)
        bound = parsed[le]
        if bound is None:
            continue
        rest = tuple([p for p in items if p[0] != "le"])
        groups.setdefault((name, rest), []).append((bound, row))
    layouts: dict[tuple, list[tuple[Items, list[int]]]] = {}
    for (_, rest), members in groups.items():
        members.sort(key=lambda m: m[0])
        layouts.setdefault(tuple(m[0] for m in members), []).append((rest, [m[1] for m in members]))
    out_items, out_vals, out_mask = [], [], []
    for layout, members in layouts.items():
        bounds = np.array(layout)
        rows = np.array([m[1] for m in members])  # (G, nb)
        counts = np.where(vec.mask[rows], vec.vals[rows], 0.0)  # (G, nb, K)
        present = vec.mask[rows]
        uniq, first_idx = np.unique(bounds, return_index=True)
        if len(uniq) != len(bounds):  # equal bounds are summed, as Prometheus coalesces them
            counts = np.add.reduceat(counts, first_idx, axis=1)
            present = np.logical_or.reduceat(present, first_idx, axis=1)
            bounds = uniq
        g, nb = len(members), len(bounds)
        flat = counts.transpose(1, 0, 2).reshape(nb, g * k)
        values = _quantiles_dense(np.tile(q, g), bounds, flat).reshape(g, k)
        any_present = present.any(axis=1)
        for gi, j in zip(*np.nonzero(any_present & ~present.all(axis=1))):
            sel = present[gi, :, j]
            values[gi, j] = bucket_quantile(float(q[j]), list(zip(bounds[sel], counts[gi, sel, j])))
        out_items.extend(m[0] for m in members)
        out_vals.append(values)
        out_mask.append(any_present)
    if not out_items:
        return _empty(k)
    result = _Vec([None] * len(out_items), out_items, np.vstack(out_vals), np.vstack(out_mask))
    return _dedupe(_compact(result), ctx)


def _quantiles_dense(q: np.ndarray, bounds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """bucketQuantile for one histogram at many steps where every bucket is present.

    ``bounds`` sorted and distinct (nb,), ``counts`` (nb, K): the same rules as
    :func:`bucket_quantile`, as array operations.
    """
    nb, k = counts.shape
    out = np.full(k, np.nan)
    if nb >= 2 and math.isinf(bounds[-1]) and bounds[-1] > 0:
        # ensureMonotonic: running maximum, leaving NaN counts where they are
        running = np.fmax.accumulate(counts, axis=0)
        fixed = np.where(np.isnan(counts), counts, running)
        observations = fixed[-1]
        rank = q * observations
        reached = fixed[:-1] >= rank[None, :]
        b = np.where(reached.any(axis=0), reached.argmax(axis=0), nb - 1)
        cols = np.arange(k)
        below = np.where(b > 0, fixed[np.maximum(b - 1, 0), cols], 0.0)
        start = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
        end = bounds[np.minimum(b, nb - 1)]
        with np.errstate(all="ignore"):
            inside = start + (end - start) * ((rank - below) / (fixed[b, cols] - below))
        out = np.where(b == nb - 1, bounds[nb - 2], np.where((b == 0) & (bounds[0] <= 0), bounds[0], inside))
        out = np.where(observations == 0, np.nan, out)
    out = np.where(np.isnan(q), np.nan, out)
    out = np.where(q < 0, -np.inf, out)
    return np.where(q > 1, np.inf, out)


# ---- aggregation -------------------------------------------------------------------------------


def _group_keys(vec: _Vec, grouping, without: bool) -> list[tuple]:
    """The (name, labels) each input row's aggregation group gets.

    This runs once per input series, so it is written for speed: ``by`` finds
    each wanted label by bisection in the sorted label tuple instead of
    scanning all twenty-odd labels of a Linkerd series.
    """
    if grouping is None:
        return [(None, ())] * len(vec.names)
    wanted = frozenset(grouping)
    if without:
        return [(None, tuple([p for p in items if p[0] not in wanted])) for items in vec.items]
    probes = [(label,) for label in sorted(wanted - {"__name__"})]
    keep_name = "__name__" in wanted
    left = bisect.bisect_left
    out = []
    for name, items in zip(vec.names, vec.items):
        n = len(items)
        key = []
        for probe in probes:
            i = left(items, probe)
            if i < n and items[i][0] == probe[0]:
                key.append(items[i])
        out.append(((name if keep_name else None), tuple(key)))
    return out


def _eval_agg(node: Agg, ctx: _Ctx) -> _Vec:
    vec = _vector_arg(node.expr, ctx)
    k = len(ctx.steps)
    if node.op in ("topk", "bottomk", "limitk"):
        return _eval_topk(node, vec, _agg_param(node, ctx), ctx)
    if node.op == "limit_ratio":
        return _limit_ratio(vec, _agg_param(node, ctx), ctx)
    if node.op == "count_values":
        return _count_values(node, vec, ctx)
    if not vec.names:
        return _empty(k)
    keys_per_row = _group_keys(vec, node.grouping, node.without)
    if node.op in ("stddev", "stdvar") or (node.op in ("sum", "avg") and _largest_group(keys_per_row) > 2):
        # the float result depends on the order values are added in: Prometheus's (sorted label sets).
        # A compensated sum of two values is exact whatever the order, so pairs need no sorting.
        vec = _in_label_order(vec)
        keys_per_row = _group_keys(vec, node.grouping, node.without)
    index: dict[tuple, int] = {}
    gid = np.array([index.setdefault(key, len(index)) for key in keys_per_row], dtype=np.int64)
    order = np.argsort(gid, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(gid[order]) != 0])
    mask = vec.mask[order]
    ordered = vec.vals[order]
    counts = np.add.reduceat(mask.astype(np.int64), bounds, axis=0)
    with np.errstate(all="ignore"):
        if node.op in ("sum", "avg"):
            vals = _compensated_sum(ordered, mask, bounds)
            if node.op == "avg":
                vals = vals / counts
                for g, j in np.argwhere(~np.isfinite(vals) & (counts > 0)):
                    rows = _members(bounds, g, len(order))  # overflow: Prometheus's incremental mean
                    vals[g, j] = _avg_exact(ordered[rows, j], mask[rows, j])
        elif node.op == "count":
            vals = counts.astype(np.float64)
        elif node.op == "group":
            vals = np.ones(counts.shape)
        elif node.op in ("stddev", "stdvar"):
            vals = _welford(ordered, mask, bounds) / counts
            if node.op == "stddev":
                vals = np.sqrt(vals)
        elif node.op == "quantile":
            q = _agg_param(node, ctx)
            vals = np.full(counts.shape, np.nan)
            for g, j in zip(*np.nonzero(counts > 0)):
                rows = _members(bounds, g, len(order))
                vals[g, j] = quantile(float(q[j]), ordered[rows, j][mask[rows, j]].tolist())
        else:  # min / max ignore NaN unless every value is NaN, like Prometheus
            masked = np.where(mask, ordered, np.nan)
            ufunc = np.fmax if node.op == "max" else np.fmin
            vals = ufunc.reduceat(masked, bounds, axis=0)
    keys = list(index)  # insertion order == group id order == reduceat order
    present = counts > 0
    out = _Vec([key[0] for key in keys], [key[1] for key in keys], np.where(present, vals, np.nan), present)
    return _compact(out)


def _largest_group(keys: list) -> int:
    counts: dict = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return max(counts.values(), default=0)


def _in_label_order(vec: _Vec) -> _Vec:
    """Rows in Prometheus's series order (sorted label sets), the order its aggregations add them in."""
    keys = [_sort_key(n, it) for n, it in zip(vec.names, vec.items)]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    if order == list(range(len(keys))):
        return vec
    return _take(vec, np.array(order, dtype=np.int64))


def _members(bounds: np.ndarray, g: int, n: int) -> slice:
    return slice(int(bounds[g]), int(bounds[g + 1]) if g + 1 < len(bounds) else n)


def _positions(bounds: np.ndarray, n: int):
    """For p = 0, 1, …: (group ids, row indexes) of the p-th member of every group that has one."""
    sizes = np.diff(np.r_[bounds, n])
    for p in range(int(sizes.max())):
        groups = np.flatnonzero(sizes > p)
        yield groups, bounds[groups] + p


def _compensated_sum(vals: np.ndarray, mask: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per group and step, the Kahan–Neumaier sum of the present values, added in row order (Prometheus's).

    Groups are processed side by side, one member position at a time; a plain
    sum is used when it is provably identical (integers with exact sums).
    """
    n, k = vals.shape
    data = np.where(mask, vals, 0.0)
    if len(bounds) == n or (n <= 2 * len(bounds) and int(np.diff(np.r_[bounds, n]).max()) <= 2):
        # at most two values per group: fl(a + b) plus its exact error rounds back to fl(a + b)
        return np.add.reduceat(data, bounds, axis=0)
    if np.all(np.isfinite(data)) and np.all(data == np.floor(data)) and float(np.abs(data).sum()) < 2.0 ** 52:
        return np.add.reduceat(data, bounds, axis=0)
    total = np.zeros((len(bounds), k))
    comp = np.zeros((len(bounds), k))
    for groups, rows in _positions(bounds, n):
        t, c = kahan_inc_array(data[rows], total[groups], comp[groups])
        live = mask[rows]
        total[groups] = np.where(live, t, total[groups])
        comp[groups] = np.where(live, c, comp[groups])
    with np.errstate(all="ignore"):
        return total + comp


def _avg_exact(values: np.ndarray, present: np.ndarray) -> float:
    """One group's avg exactly as Prometheus's aggregation computes it (used where the sum overflows)."""
    return compensated_mean(values[present].tolist())


def _welford(vals: np.ndarray, mask: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per group and step, the sum of squared deviations by Welford's update (Prometheus's stddev/stdvar)."""
    n, k = vals.shape
    count = np.zeros((len(bounds), k))
    mean = np.zeros((len(bounds), k))
    acc = np.zeros((len(bounds), k))
    with np.errstate(all="ignore"):
        for groups, rows in _positions(bounds, n):
            f, live = vals[rows], mask[rows]
            c = count[groups] + live
            first = live & (c == 1)
            delta = f - mean[groups]
            new_mean = np.where(first, f, mean[groups] + delta / np.maximum(c, 1))
            new_acc = np.where(first, 0.0, acc[groups] + delta * (f - new_mean))
            count[groups] = c
            mean[groups] = np.where(live, new_mean, mean[groups])
            acc[groups] = np.where(live, new_acc, acc[groups])
    return acc


def format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return np.format_float_positional(value, unique=True, trim="-")


def _count_values(node: Agg, vec: _Vec, ctx: _Ctx) -> _Vec:
    """count_values("label", v): per group and step, how many series have each value (the value as a label)."""
    k = len(ctx.steps)
    label = node.param.value
    grouping = node.grouping
    if not node.without:  # Prometheus groups by the value label too
        grouping = tuple(sorted(set(grouping or ()) | {label}))
    cells: dict[tuple, np.ndarray] = {}
    for row, (name, items) in enumerate(zip(vec.names, vec.items)):
        labels = dict(items)
        for j in np.flatnonzero(vec.mask[row]):
            labels[label] = format_value(float(vec.vals[row, j]))
            one = _Vec([name], [tuple(sorted(labels.items()))], vec.vals[:1], vec.mask[:1])
            key = _group_keys(one, grouping, node.without)[0]
            cells.setdefault(key, np.zeros(k))[j] += 1
    if not cells:
        return _empty(k)
    keys = list(cells)
    vals = np.vstack([cells[key] for key in keys])
    return _compact(_Vec([None] * len(keys), [key[1] for key in keys], vals, vals > 0))


def _agg_param(node: Agg, ctx: _Ctx) -> np.ndarray:
    """An aggregation's parameter (topk's k, quantile's q, limit_ratio's ratio) per step.

    Prometheus >= 2.52 evaluates it once and uses its value at the first step
    of the (sub)query for every step, so ``topk(scalar(x), y)`` over a range
    keeps the first step's k throughout; 2.42 read it anew at each step.
    """
    value = _scalar_arg(node.param, ctx)
    return value if ctx.step_params else np.full(len(value), value[0])


#: The largest float64 Go converts to an int64 without overflow (engine.go's maxInt64), and the smallest.
_MAX_INT64_FLOAT = 9223372036854774784.0
_MIN_INT64_FLOAT = -9223372036854775808.0


def _go_float(value: float) -> str:
    """A float64 as Go's ``%v`` prints one of int64-overflowing size (or NaN/±Inf): ``1e+20``, ``+Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))  # shortest digits; beyond 1e16 Python, like Go, writes d.ddde+XX


def _check_k(k: float, ctx: _Ctx) -> None:
    """topk/bottomk/limitk refuse a k that does not fit an int64 (NaN included), with Prometheus's error."""
    if not (_MIN_INT64_FLOAT <= k <= _MAX_INT64_FLOAT):
        raise QueryError(f"Scalar value {_go_float(k)} overflows int64 (query: {ctx.query!r})")


def _eval_topk(node: Agg, vec: _Vec, param: np.ndarray, ctx: _Ctx) -> _Vec:
    """topk/bottomk/limitk: keep k samples per group and step, labels intact.

    topk/bottomk rank NaN after every number (a NaN is only kept when a group
    has fewer than k numbers), as Prometheus does; limitk keeps the first k
    series in label-set order (a real Prometheus takes them in its storage's
    order, which is label-set order once the data is in compacted blocks).
    k is truncated to an integer; below 1 the result is empty.
    """
    if not ctx.step_params:
        _check_k(float(param[0]), ctx)
    vec = _in_label_order(vec)
    mask = np.zeros_like(vec.mask)
    groups: dict[tuple, list[int]] = {}
    for row, key in enumerate(_group_keys(vec, node.grouping, node.without)):
        groups.setdefault(key, []).append(row)
    for rows in groups.values():
        rows_arr = np.array(rows)
        for j in range(len(ctx.steps)):
            if not math.isfinite(param[j]) or int(param[j]) < 1:
                continue
            live = rows_arr[vec.mask[rows_arr, j]]
            if node.op == "limitk":
                mask[live[: int(param[j])], j] = True
                continue
            vals = vec.vals[live, j]
            key = -vals if node.op == "topk" else vals
            order = np.lexsort((key, np.isnan(vals)))[: int(param[j])]
            mask[live[order], j] = True
    return _compact(_Vec(vec.names, vec.items, np.where(mask, vec.vals, np.nan), mask))


def _limit_ratio(vec: _Vec, ratio: np.ndarray, ctx: _Ctx) -> _Vec:
    """limit_ratio(r, v): the series whose label-set hash puts them in the first r of [0, 1) (r < 0: the last -r).

    Membership depends only on a series' labels (see
    :mod:`labkit.metrics.label_hash`), so it is the same at every step and
    whatever the grouping. A NaN ratio is an error; beyond ±1 it is capped
    (Prometheus adds a warning, which the evaluator does not report).
    """
    if np.isnan(ratio).any():
        raise QueryError(f"Ratio value NaN is NaN (query: {ctx.query!r})")
    if not vec.names:
        return vec
    from labkit.metrics.label_hash import ratio_offset

    r = np.clip(ratio, -1.0, 1.0)[None, :]
    offset = np.array([ratio_offset(_sort_key(n, it)) for n, it in zip(vec.names, vec.items)])[:, None]
    with np.errstate(invalid="ignore"):
        keep = np.where(r >= 0, offset < r, offset >= 1.0 + r)
    mask = vec.mask & keep
    return _compact(_Vec(vec.names, vec.items, np.where(mask, vec.vals, np.nan), mask))


# ---- binary operators --------------------------------------------------------------------------


def _arith(op: str, a, b):
    """The element-wise result of an operator; comparisons return (lhs value, condition)."""
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b, None
        if op == "-":
            return a - b, None
        if op == "*":
            return a * b, None
        if op == "/":
            return a / b, None
        if op == "%":
            return np.fmod(a, b), None
        if op == "^":
            return np.power(a, b), None
        if op == "atan2":
            return np.arctan2(a, b), None
        cond = {
            "==": np.equal, "!=": np.not_equal, ">": np.greater,
            "<": np.less, ">=": np.greater_equal, "<=": np.less_equal,
        }[op](a, b)
    return a, cond


def _signature(name, items: Items, node: Bin):
    """The labels two series must share to match (Prometheus ``signatureFunc``)."""
    if node.matching == "on":
        wanted = set(node.labels)
        return ((name if "__name__" in wanted else None), tuple(p for p in items if p[0] in wanted))
    ignored = set(node.labels) if node.matching == "ignoring" else ()
    return (None, tuple(p for p in items if p[0] not in ignored))


def _eval_binary(node: Bin, ctx: _Ctx):
    lhs, rhs = _eval(node.lhs, ctx), _eval(node.rhs, ctx)
    op = node.op
    if isinstance(lhs, str) or isinstance(rhs, str):
        raise QueryError(f"binary operator {op!r} on a string (query: {ctx.query!r})")
    l_scalar, r_scalar = isinstance(lhs, np.ndarray), isinstance(rhs, np.ndarray)
    if l_scalar and r_scalar:
        value, cond = _arith(op, lhs, rhs)
        return cond.astype(np.float64) if cond is not None else value
    if op in _SET_OPS:
        return _set_operation(node, lhs, rhs, ctx)
    if l_scalar or r_scalar:
        return _vector_scalar(node, rhs if l_scalar else lhs, lhs if l_scalar else rhs, l_scalar, ctx)
    return _vector_vector(node, lhs, rhs, ctx)


def _vector_scalar(node: Bin, vec: _Vec, scalar: np.ndarray, swapped: bool, ctx: _Ctx) -> _Vec:
    """``vector op scalar`` / ``scalar op vector``; comparisons filter (or give 0/1 with bool)."""
    s = scalar[None, :]
    value, cond = _arith(node.op, s, vec.vals) if swapped else _arith(node.op, vec.vals, s)
    mask = vec.mask
    if cond is not None:
        if node.return_bool:
            value = cond.astype(np.float64)
        else:
            value = vec.vals  # the vector's own sample, whichever side it was on
            mask = mask & cond
    out = _compact(_Vec(vec.names, vec.items, np.where(mask, value, np.nan), mask))
    if cond is None or node.return_bool:
        out = _drop_names(out, ctx)
    return out


def _unique_by_signature(vec: _Vec, sigs: list, side: str, ctx: _Ctx):
    """Rows grouped by signature, merged into one row per signature (error if two coincide)."""
    groups: dict[tuple, list[int]] = {}
    for row, sig in enumerate(sigs):
        groups.setdefault(sig, []).append(row)
    keys = list(groups)
    vals = np.empty((len(keys), vec.vals.shape[1]))
    mask = np.zeros((len(keys), vec.vals.shape[1]), dtype=bool)
    for g, sig in enumerate(keys):
        rows = groups[sig]
        if len(rows) > 1 and (vec.mask[rows].sum(axis=0) > 1).any():
            raise QueryError(
                f"found duplicate series for the match group {_fmt(sig[0], sig[1])} on the {side} hand-side "
                f"of the operation; many-to-many matching not allowed: matching labels must be unique on one "
                f"side (query: {ctx.query!r})"
            )
        vals[g] = vec.vals[rows[0]]
        mask[g] = vec.mask[rows[0]]
        for r in rows[1:]:
            vals[g] = np.where(vec.mask[r], vec.vals[r], vals[g])
            mask[g] |= vec.mask[r]
    return {sig: g for g, sig in enumerate(keys)}, vals, mask


def _vector_vector(node: Bin, lhs: _Vec, rhs: _Vec, ctx: _Ctx) -> _Vec:
    """Vector matching: one-to-one, or many-to-one / one-to-many with group_left / group_right.

    The "one" side must be unique per matching signature at every step; each
    "many"-side series meets its partner. The result keeps the many side's
    labels (one-to-one: only the ``on`` labels / without the ``ignoring``
    ones) plus, with group_x, the listed labels copied from the one side.
    """
    k = len(ctx.steps)
    if not lhs.names or not rhs.names:
        return _empty(k)
    many, one = (rhs, lhs) if node.card == "right" else (lhs, rhs)
    o_sigs = [_signature(n, it, node) for n, it in zip(one.names, one.items)]
    o_index, o_vals, o_mask = _unique_by_signature(one, o_sigs, "left" if node.card == "right" else "right", ctx)
    m_sigs = [_signature(n, it, node) for n, it in zip(many.names, many.items)]
    match = np.array([o_index.get(sig, -1) for sig in m_sigs], dtype=np.int64)
    rows = np.flatnonzero(match >= 0)
    if rows.size == 0:
        return _empty(k)
    mv, ov = many.vals[rows], o_vals[match[rows]]
    mask = many.mask[rows] & o_mask[match[rows]]
    value, cond = _arith(node.op, ov, mv) if node.card == "right" else _arith(node.op, mv, ov)
    if cond is not None:
        if node.return_bool:
            value = cond.astype(np.float64)
        else:
            mask = mask & cond
    if node.card == "one":  # several lhs series of one signature may not both find a partner at one step
        seen: dict[tuple, int] = {}
        for pos, row in enumerate(rows):
            other = seen.setdefault(m_sigs[row], pos)
            if other != pos and (mask[pos] & mask[other]).any():
                raise QueryError(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right) "
                    f"(query: {ctx.query!r})"
                )
    drop_name = cond is None or node.return_bool
    one_items = _one_side_items(one, o_sigs, o_index) if node.include else []
    names, items = [], []
    for pos, row in enumerate(rows):
        name, its = many.names[row], many.items[row]
        if node.card == "one" and node.matching == "on":
            wanted = set(node.labels)
            its = tuple(p for p in its if p[0] in wanted)
            if "__name__" not in wanted:
                name = None
        elif node.card == "one" and node.matching == "ignoring":
            ignored = set(node.labels)
            its = tuple(p for p in its if p[0] not in ignored)
            if "__name__" in ignored:
                name = None
        if node.include:
            labels = dict(its)
            partner = dict(one_items[int(match[row])])
            for label in node.include:
                if partner.get(label, ""):
                    labels[label] = partner[label]
                else:
                    labels.pop(label, None)
            its = tuple(sorted(labels.items()))
        names.append(None if drop_name else name)
        items.append(its)
    out = _Vec(names, items, np.where(mask, value, np.nan), mask)
    return _dedupe(_compact(out), ctx)


def _one_side_items(one: _Vec, sigs: list, index: dict) -> list:
    """Per one-side signature, the labels of its first series (where group_x copies labels from)."""
    out: list = [None] * len(index)
    for items, sig in zip(one.items, sigs):
        g = index[sig]
        if out[g] is None:
            out[g] = items
    return out


def _set_operation(node: Bin, lhs: _Vec, rhs: _Vec, ctx: _Ctx) -> _Vec:
    """and / or / unless, step by step, matching on signatures; labels (and names) kept."""
    k = len(ctx.steps)

    def presence(vec: _Vec):
        index: dict[tuple, int] = {}
        ids = np.array([index.setdefault(_signature(n, it, node), len(index))
                        for n, it in zip(vec.names, vec.items)], dtype=np.int64)
        pres = np.zeros((len(index), k), dtype=bool)
        if len(ids):
            np.logical_or.at(pres, ids, vec.mask)
        return index, pres

    if node.op in ("and", "unless"):
        if not lhs.names:
            return lhs
        r_index, r_pres = presence(rhs)
        hit = np.array([r_index.get(_signature(n, it, node), -1) for n, it in zip(lhs.names, lhs.items)])
        other = np.where((hit >= 0)[:, None], r_pres[np.maximum(hit, 0)] if len(r_pres) else False, False)
        mask = lhs.mask & (other if node.op == "and" else ~other)
        return _compact(_Vec(lhs.names, lhs.items, np.where(mask, lhs.vals, np.nan), mask))
    # or
    if not rhs.names:
        return lhs
    l_index, l_pres = presence(lhs)
    hit = np.array([l_index.get(_signature(n, it, node), -1) for n, it in zip(rhs.names, rhs.items)])
    taken = np.where((hit >= 0)[:, None], l_pres[np.maximum(hit, 0)] if len(l_pres) else False, False)
    r_mask = rhs.mask & ~taken
    out = _Vec(
        lhs.names + rhs.names, lhs.items + rhs.items,
        np.vstack([lhs.vals, np.where(r_mask, rhs.vals, np.nan)]),
        np.vstack([lhs.mask, r_mask]),
    )
    return _dedupe(_compact(out), ctx)


# =============================================================================================
# Public API
# =============================================================================================


class InstantVector(list):
    """``instant``'s result: a plain list of ``(labels, value)``, typed so ``to_frame`` knows its shape."""


class Matrix(list):
    """``range_``'s result: a plain list of ``(labels, times, values)``, typed so ``to_frame`` knows its shape."""


def _labels(name: str | None, items: Items) -> dict[str, str]:
    out = {"__name__": name} if name is not None else {}
    out.update(items)
    return out


def _sort_key(name: str | None, items: Items):
    """Prometheus's label-set order: compare the sorted (name, value) pairs, __name__ included."""
    if name is None:
        return items
    return tuple(sorted(items + (("__name__", name),)))


#: Prometheus releases whose rules differ from the modelled one (2.55) in a way ``compat`` can reproduce.
COMPAT_RELEASES = ("2.42",)


def _run(expr: str, source, steps: np.ndarray, lookback: float, compat: str | None = None):
    if compat is not None and compat not in COMPAT_RELEASES:
        raise QueryError(f"compat must be None (Prometheus 2.55's rules) or one of {COMPAT_RELEASES}, got {compat!r}")
    node = compile_query(expr)
    ctx = _Ctx(source, steps, int(round(lookback * 1000.0)), expr, int(steps[0]), int(steps[-1]),
               clamp_first=compat == "2.42", step_params=compat == "2.42")
    value = _eval(node, ctx)
    if isinstance(value, str):
        raise QueryError(f"a string cannot be a query's result (query: {expr!r})")
    return node, value


_SCALAR_FUNCS = {"time", "pi", "scalar"}


def result_type(expr: str) -> str:
    """The type of ``expr``'s value as Prometheus's API names it: "scalar", "vector", "matrix" or "string".

    The API needs it to pick ``resultType`` (an instant query of ``1 + 1`` is
    a scalar, of ``x[5m]`` a matrix), which the values alone cannot tell.
    """
    return _node_type(compile_query(expr))


def _node_type(node) -> str:
    if isinstance(node, Num):
        return "scalar"
    if isinstance(node, Str):
        return "string"
    if isinstance(node, (RangeSel, Subquery)):
        return "matrix"
    if isinstance(node, Neg):
        return _node_type(node.expr)
    if isinstance(node, Call):
        return "scalar" if node.func in _SCALAR_FUNCS else "vector"
    if isinstance(node, Bin):
        both = (_node_type(node.lhs), _node_type(node.rhs))
        return "scalar" if both == ("scalar", "scalar") else "vector"
    return "vector"


def instant_matrix(expr: str, source, time: float, *, lookback_delta: float = LOOKBACK_DELTA) -> "Matrix":
    """An instant query whose result is a range vector (``x[5m]``, ``expr[5m:1m]``): each series' raw samples.

    As Prometheus's ``/api/v1/query`` returns it: the samples in the window
    ending at ``time`` (closed on both ends), staleness markers left out.
    """
    node = compile_query(expr)
    if not isinstance(node, (RangeSel, Subquery)):
        raise QueryError(f"{expr!r} is not a range vector; use instant()")
    steps = np.array([int(round(float(time) * 1000.0))], dtype=np.int64)
    ctx = _Ctx(source, steps, int(round(lookback_delta * 1000.0)), expr, int(steps[0]), int(steps[0]))
    w = _range_windows(node, ctx)
    out = []
    if w is not None:
        for row, (name, items) in enumerate(zip(w.names, w.items)):
            lo, hi = int(w.lo[row, 0]), int(w.hi[row, 0])
            if hi > lo:
                out.append((_sort_key(name, items), _labels(name, items), w.t[lo:hi] / 1000.0, w.v[lo:hi].copy()))
    out.sort(key=lambda r: r[0])
    return Matrix((labels, t, v) for _, labels, t, v in out)


def _natural_key(text: str) -> tuple:
    """A natural-order key (``pod-9`` before ``pod-10``), as sort_by_label orders label values.

    Runs of digits compare as numbers (leading zeros ignored: by length,
    then digit by digit), everything else byte by byte.
    """
    key = []
    for digits, other in re.findall(r"(\d+)|(\D+)", text):
        if digits:
            stripped = digits.lstrip("0") or "0"
            key.append((0, len(stripped), stripped))
        else:
            key.append((1, 0, other))
    return tuple(key)


def _value_order(node) -> bool | None:
    """Whether the query's result is ordered by value: True descending, False ascending, None by labels."""
    if isinstance(node, Agg) and node.op in ("topk", "bottomk"):
        return node.op == "topk"
    if isinstance(node, Call) and node.func in _ORDER_FUNCS:
        return node.func == "sort_desc"
    return None


def instant(expr: str, source, time: float, *, lookback_delta: float = LOOKBACK_DELTA,
            compat: str | None = None) -> list[tuple[dict, float]]:
    """Evaluate ``expr`` at unix time ``time``, like Prometheus's ``/api/v1/query``.

    Returns the instant vector as ``[(labels, value), ...]``, sorted by label
    set (topk/bottomk/sort/sort_desc: by value, NaN last, as Prometheus
    returns them). Labels include
    ``__name__`` only where Prometheus keeps it (plain selectors, comparisons
    without ``bool``, and/or/unless). A scalar result is ``[({}, value)]``.

    ``compat="2.42"`` reproduces the two rules of an older Prometheus that
    differ measurably (rate/increase's pre-2.51 extrapolation order, and
    aggregation parameters read at every step rather than the first); it
    exists to cross-check against Debian 12's ``prometheus`` package.
    """
    steps = np.array([int(round(float(time) * 1000.0))], dtype=np.int64)
    node, value = _run(expr, source, steps, lookback_delta, compat)
    if isinstance(value, np.ndarray):
        return InstantVector([({}, float(value[0]))])
    rows = [(_labels(n, it), float(v[0])) for n, it, v, m in zip(value.names, value.items, value.vals, value.mask) if m[0]]
    keys = [_sort_key(n, it) for n, it, m in zip(value.names, value.items, value.mask) if m[0]]
    order = sorted(range(len(rows)), key=keys.__getitem__)
    if isinstance(node, Call) and node.func in ("sort_by_label", "sort_by_label_desc"):
        by = [arg.value for arg in node.args[1:]]
        order.sort(key=lambda i: tuple(_natural_key(rows[i][0].get(label, "")) for label in by))
        if node.func == "sort_by_label_desc":
            order.reverse()
        return InstantVector(rows[i] for i in order)
    descending = _value_order(node)
    if descending is not None:
        sign = -1.0 if descending else 1.0
        order.sort(key=lambda i: (math.isnan(rows[i][1]), sign * rows[i][1] if not math.isnan(rows[i][1]) else 0.0))
    return InstantVector(rows[i] for i in order)


def range_(
    expr: str, source, start: float, end: float, step: float, *, lookback_delta: float = LOOKBACK_DELTA,
    compat: str | None = None,
) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """Evaluate ``expr`` at ``start, start+step, …, <= end``, like ``/api/v1/query_range``.

    Returns ``[(labels, times, values), ...]`` sorted by label set, with each
    series' times (unix seconds) and values at the steps where it has a value.
    A scalar result is one series with empty labels.
    """
    start_ms, end_ms = int(round(float(start) * 1000.0)), int(round(float(end) * 1000.0))
    step_ms = int(round(float(step) * 1000.0))
    if step_ms <= 0:
        raise QueryError(f"zero or negative query resolution step widths are not accepted (step={step!r})")
    if end_ms < start_ms:
        raise QueryError(f"end timestamp must not be before start time (start={start!r}, end={end!r})")
    if (end_ms - start_ms) // step_ms + 1 > MAX_POINTS:
        raise QueryError(
            f"exceeded maximum resolution of {MAX_POINTS} points per timeseries; "
            f"try decreasing the query resolution (?step=XX) (query: {expr!r})"
        )
    steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
    _, value = _run(expr, source, steps, lookback_delta, compat)
    times = steps / 1000.0
    if isinstance(value, np.ndarray):
        return Matrix([({}, times, value.astype(np.float64))])
    out = []
    for name, items, vals, mask in zip(value.names, value.items, value.vals, value.mask):
        if mask.any():
            out.append((_sort_key(name, items), _labels(name, items), times[mask], vals[mask]))
    out.sort(key=lambda r: r[0])
    return Matrix((labels, t, v) for _, labels, t, v in out)


def to_frame(result, *, kind: str | None = None):
    """A query result as a pandas DataFrame: the shape ``mesh.query`` / ``mesh.query_range`` return.

    Instant results: one column per label (sorted names; ``__name__`` only if
    present), then ``value``. Range results: ``time`` (UTC pandas Timestamps)
    first, then the labels, then ``value``, one row per point (long format,
    series by series). A label a series lacks is "" (PromQL's view of a
    missing label). The shape comes from the result's type (:class:`Matrix` /
    :class:`InstantVector`), else from its rows; ``kind`` ("instant" /
    "range") overrides, which only matters for an empty plain list.
    """
    import pandas as pd

    if kind is None:
        if isinstance(result, (Matrix, InstantVector)):
            kind = "range" if isinstance(result, Matrix) else "instant"
        else:
            kind = "range" if result and len(result[0]) == 3 else "instant"
    if kind not in ("instant", "range"):
        raise ValueError(f"kind must be 'instant' or 'range', got {kind!r}")
    names = sorted({label for row in result for label in row[0]})
    if kind == "instant":
        data = {label: [row[0].get(label, "") for row in result] for label in names}
        data["value"] = np.array([row[1] for row in result], dtype=np.float64)
        return pd.DataFrame(data, columns=[*names, "value"])
    counts = [len(row[1]) for row in result]
    times_ms = (
        np.round(np.concatenate([np.asarray(row[1], dtype=np.float64) for row in result]) * 1000.0).astype(np.int64)
        if result else np.empty(0, dtype=np.int64)
    )
    data = {"time": pd.to_datetime(times_ms, unit="ms", utc=True)}
    for label in names:
        data[label] = np.repeat(np.array([row[0].get(label, "") for row in result], dtype=object), counts)
    data["value"] = (
        np.concatenate([np.asarray(row[2], dtype=np.float64) for row in result]) if result else np.empty(0)
    )
    return pd.DataFrame(data, columns=["time", *names, "value"])
