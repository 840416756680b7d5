"""The PromQL a learner writes: functions, operators and semantics of Prometheus 2.55, by hand-worked cases.

The real-engine cross-check (tests/test_prometheus_server.py) runs against the
installed Prometheus (Debian's 2.42); the cases here pin the behaviour where
2.55 differs from it or where the arithmetic is easy to get subtly wrong
(compensated sums, NaN ordering, Go's regex and template syntax).
"""
from __future__ import annotations

import math

import pytest

from labkit.errors import QueryError
from labkit.metrics.promql import instant, range_
from test_promql import one, series_store, values


def labelled(expr, store, t):
    return [(labels.get("k"), value) for labels, value in instant(expr, store, t)]


# ---- compensated summation ------------------------------------------------------------------------

CANCEL = [1e100, 1.0, -1e100, 1.0]  # naive left-to-right sum: 1; Kahan–Neumaier: 2


def test_sum_and_avg_are_compensated_across_series():
    store = series_store(*[("x", {"k": k}, [v]) for k, v in zip("abcd", CANCEL)])
    assert one("sum(x)", store, 0) == 2.0
    assert one("avg(x)", store, 0) == 0.5
    assert sum(CANCEL) == 1.0  # what a plain float sum would have answered


def test_sum_and_avg_over_time_are_compensated():
    store = series_store(("x", {}, CANCEL))
    assert one("sum_over_time(x[1m])", store, 30) == 2.0
    assert one("avg_over_time(x[1m])", store, 30) == 0.5


def test_avg_near_the_float_limit_does_not_overflow():
    big = [1e308, 1e308, -1e308]
    store = series_store(*[("x", {"k": k}, [v]) for k, v in zip("abc", big)], ("y", {}, big))
    assert one("avg(x)", store, 0) == pytest.approx(1e308 / 3, rel=1e-12)
    assert one("avg_over_time(y[1m])", store, 20) == pytest.approx(1e308 / 3, rel=1e-12)
    assert one("sum(x)", store, 0) == math.inf


def test_stddev_and_stdvar():
    data = [2, 4, 4, 4, 5, 5, 7, 9]  # mean 5, variance 4
    store = series_store(*[("x", {"k": str(i)}, [v]) for i, v in enumerate(data)], ("y", {}, data))
    assert one("stdvar(x)", store, 0) == pytest.approx(4.0)
    assert one("stddev(x)", store, 0) == pytest.approx(2.0)
    assert one("stddev_over_time(y[70s])", store, 70) == pytest.approx(2.0)
    assert one("stdvar_over_time(y[30s])", store, 70) == pytest.approx(2.75)  # 5, 5, 7, 9: mean 6.5


# ---- NaN ordering -----------------------------------------------------------------------------------

NANS = series_store(("x", {"k": "a"}, [3.0]), ("x", {"k": "b"}, [math.nan]), ("x", {"k": "c"}, [1.0]))


def test_topk_and_bottomk_rank_nan_last():
    assert labelled("topk(2, x)", NANS, 0) == [("a", 3.0), ("c", 1.0)]
    assert labelled("bottomk(2, x)", NANS, 0) == [("c", 1.0), ("a", 3.0)]
    last = labelled("bottomk(3, x)", NANS, 0)
    assert [k for k, _ in last] == ["c", "a", "b"] and math.isnan(last[2][1])


def test_sort_orders_by_value_with_nan_last():
    assert [k for k, _ in labelled("sort(x)", NANS, 0)] == ["c", "a", "b"]
    assert [k for k, _ in labelled("sort_desc(x)", NANS, 0)] == ["a", "c", "b"]


def test_limitk_keeps_the_first_series_of_each_group():
    store = series_store(*[("x", {"k": k, "g": g}, [i]) for i, (k, g) in enumerate(zip("abcd", "1122"))])
    assert sorted(labelled("limitk by (g) (1, x)", store, 0)) == [("a", 0.0), ("c", 2.0)]
    assert len(instant("limitk(3, x)", store, 0)) == 3


# ---- regexes: RE2 as Prometheus compiles them ----------------------------------------------------------


def test_matchers_use_re2_syntax_and_full_anchoring():
    store = series_store(("x", {"k": "Foo"}, [1]), ("x", {"k": "food"}, [2]), ("x", {"k": "a1"}, [3]))
    assert labelled('x{k=~"(?i)foo"}', store, 0) == [("Foo", 1.0)]
    assert sorted(labelled('x{k=~"f(?i:O)od|\\\\pL\\\\d"}', store, 0)) == [("a1", 3.0), ("food", 2.0)]
    assert sorted(k for k, _ in labelled('x{k!~"(?i)f.*"}', store, 0)) == ["a1"]
    with pytest.raises(QueryError, match="regex"):
        instant('x{k=~"(?<=a)1"}', store, 0)  # lookbehind: Python's re has it, Go's regexp does not
    with pytest.raises(QueryError, match="RE2"):
        instant('x{k=~"a{2000}"}', store, 0)  # RE2's repetition limit is 1000


# ---- label_replace / label_join ---------------------------------------------------------------------

PODS = series_store(("up", {"pod": "web-5d8-x2", "ns": "app"}, [1]), ("up", {"pod": "db-0", "ns": "app"}, [2]))


def _by(expr, label, store=PODS, t=0):
    return sorted(((labels.get(label), labels.get("__name__")) for labels, _ in instant(expr, store, t)),
                  key=lambda pair: (pair[0] is not None, pair[0] or ""))


def test_label_replace_expands_go_templates():
    assert _by('label_replace(up, "app", "$1", "pod", "(.*?)-.*")', "app") == [("db", "up"), ("web", "up")]
    assert _by('label_replace(up, "x", "${1}_$2!", "pod", "([a-z]+)-(.*)")', "x") == [("db_0!", "up"), ("web_5d8-x2!", "up")]
    assert _by('label_replace(up, "x", "[$1x]", "pod", "(.*)")', "x") == [("[]", "up"), ("[]", "up")]  # $1x: group "1x"
    assert _by('label_replace(up, "x", "$name-$$", "pod", "(?P<name>db)-.*")', "x") == [(None, "up"), ("db-$", "up")]


def test_label_replace_without_match_or_with_empty_result():
    assert _by('label_replace(up, "pod", "", "pod", "db-.*")', "pod") == [(None, "up"), ("web-5d8-x2", "up")]
    assert _by('label_replace(up, "ns", "other", "nope", "x")', "ns") == [("app", "up"), ("app", "up")]
    with pytest.raises(QueryError, match="same labelset"):
        instant('label_replace(up, "pod", "same", "pod", ".*")', PODS, 0)
    with pytest.raises(QueryError, match="invalid destination label name"):
        instant('label_replace(up, "1x", "a", "pod", ".*")', PODS, 0)


def test_label_join():
    assert _by('label_join(up, "id", "/", "ns", "pod", "missing")', "id") == [("app/db-0/", "up"), ("app/web-5d8-x2/", "up")]


# ---- vector matching ----------------------------------------------------------------------------------

MATCH = series_store(
    ("req", {"dep": "web", "pod": "w1"}, [6]), ("req", {"dep": "web", "pod": "w2"}, [9]),
    ("req", {"dep": "db", "pod": "d1"}, [4]),
    ("owner", {"dep": "web", "team": "shop"}, [3]), ("owner", {"dep": "db", "team": "data"}, [2]),
)


def test_group_left_copies_labels_from_the_one_side():
    got = values("req / on(dep) group_left(team) owner", MATCH, 0)
    assert got == {
        frozenset({("dep", "web"), ("pod", "w1"), ("team", "shop")}): 2.0,
        frozenset({("dep", "web"), ("pod", "w2"), ("team", "shop")}): 3.0,
        frozenset({("dep", "db"), ("pod", "d1"), ("team", "data")}): 2.0,
    }


def test_group_right_and_comparisons_keep_the_left_value():
    got = values("owner * on(dep) group_right req", MATCH, 0)
    assert got[frozenset({("dep", "web"), ("pod", "w2")})] == 27.0
    # comparison with group_right filters the many (right) side, returning the left operand's value
    got = values("owner < on(dep) group_right req", MATCH, 0)
    assert got == {frozenset({("__name__", "req"), ("dep", "web"), ("pod", "w1")}): 3.0,
                   frozenset({("__name__", "req"), ("dep", "web"), ("pod", "w2")}): 3.0,
                   frozenset({("__name__", "req"), ("dep", "db"), ("pod", "d1")}): 2.0}


def test_many_to_many_is_refused():
    with pytest.raises(QueryError, match="many-to-many"):
        instant("owner * on(dep) group_left req", MATCH, 0)


# ---- range functions ---------------------------------------------------------------------------------


def test_changes_resets_deriv_predict_linear():
    store = series_store(("c", {}, [1, 1, 2, 2, 3]), ("r", {}, [5, 3, 4, 1, 2]),
                         ("lin", {}, [0, 10, 20, 30, 40, 50, 60]))
    assert one("changes(c[1m])", store, 40) == 2
    assert one("resets(r[1m])", store, 40) == 2
    assert one("deriv(lin[1m])", store, 60) == pytest.approx(1.0)
    assert one("predict_linear(lin[1m], 30)", store, 60) == pytest.approx(90.0)


def test_over_time_family():
    store = series_store(("g", {}, [1, 2, 3, 4]), ("m", {}, [1, 1, 2, 2, 4, 6, 9]))
    assert one("quantile_over_time(0.5, g[1m])", store, 30) == 2.5
    assert one("quantile_over_time(0.9, g[1m])", store, 30) == pytest.approx(3.7)
    assert one("min_over_time(g[15s])", store, 30) == 3
    assert one("max_over_time(g[1m])", store, 30) == 4
    assert one("count_over_time(g[1m])", store, 30) == 4
    assert one("last_over_time(g[1m])", store, 90) == 4  # the window 30..90 still holds t=30
    assert instant("last_over_time(g[1m])", store, 90)[0][0] == {"__name__": "g"}
    assert instant("present_over_time(g[1m])", store, 91) == []
    assert one("mad_over_time(m[1m])", store, 60) == 1.0


def test_absent_and_absent_over_time_report_the_equality_labels():
    store = series_store(("up", {"job": "a"}, [1]))
    assert instant('absent(up{job="a"})', store, 0) == []
    assert instant('absent(nope{job="a", instance=~"x.*", zone="1", zone="2"})', store, 0) == [({"job": "a"}, 1.0)]
    assert instant('absent_over_time(up{job="a"}[1m])', store, 30) == []
    assert instant('absent_over_time(up{job="a"}[1m])', store, 61) == [({"job": "a"}, 1.0)]


# ---- @, offset and subqueries ----------------------------------------------------------------------------

LINE = series_store(("lin", {}, [i * 10 for i in range(13)]))  # value == time, 0..120


def test_at_pins_the_evaluation_time():
    assert one("lin @ 50", LINE, 120) == 50
    assert one("lin @ 50 offset 20s", LINE, 120) == 30
    (_, _, vals), = range_("lin @ end()", LINE, 60, 100, 20)
    assert list(vals) == [100, 100, 100]
    (_, _, vals), = range_("lin @ start()", LINE, 60, 100, 20)
    assert list(vals) == [60, 60, 60]


def test_subqueries_step_on_absolute_multiples_of_their_resolution():
    assert one("count_over_time(lin[1m:20s])", LINE, 70) == 3  # 20, 40, 60
    assert one("count_over_time(lin[1m:20s])", LINE, 60) == 4  # 0, 20, 40, 60: closed on both ends
    assert one("max_over_time(lin[30s:10s] offset 20s)", LINE, 100) == 80
    assert one("sum_over_time(rate(lin[20s])[40s:20s])", LINE, 100) == pytest.approx(3.0)


# ---- aggregations with parameters, dates ------------------------------------------------------------------


def test_quantile_and_count_values():
    store = series_store(*[("x", {"k": str(i)}, [v]) for i, v in enumerate([1e21, 0.1, 2.0, 2.0, math.nan])])
    got = {labels["v"]: value for labels, value in instant('count_values("v", x)', store, 0)}
    assert got == {"1000000000000000000000": 1, "0.1": 1, "2": 2, "NaN": 1}
    store = series_store(*[("y", {"k": str(i)}, [v]) for i, v in enumerate([1, 2, 3, 4])])
    assert one("quantile(0.25, y)", store, 0) == 1.75
    assert one("quantile(2, y)", store, 0) == math.inf


def test_date_functions_are_utc():
    store = series_store(("t", {}, [0]))
    leap_day = 951782400  # 2000-02-29T00:00:00Z
    assert one("day_of_week(vector(0))", store, 0) == 4  # Thursday
    assert one(f"days_in_month(vector({leap_day}))", store, 0) == 29
    assert one(f"day_of_year(vector({leap_day} + 306 * 86400))", store, 0) == 366  # 2000-12-31
    assert one(f"month(vector({leap_day}))", store, 0) == 2
    assert one(f"hour(vector({leap_day} + 5 * 3600 + 59))", store, 0) == 5
    assert one("minute()", store, 150) == 2
    assert one("year()", store, 0) == 1970


def test_native_histogram_functions_are_refused_clearly():
    store = series_store(("h", {}, [1]))
    with pytest.raises(QueryError, match="native histograms"):
        instant("histogram_count(h)", store, 0)


def test_sort_by_label_uses_natural_order_then_the_label_set():
    store = series_store(*[("x", {"pod": p, "z": z}, [1]) for p, z in
                           (("web-10", "a"), ("web-9", "a"), ("db-1", "b"), ("web-9", "0"))])
    got = [(labels["pod"], labels["z"]) for labels, _ in instant('sort_by_label(x, "pod")', store, 0)]
    assert got == [("db-1", "b"), ("web-9", "0"), ("web-9", "a"), ("web-10", "a")]
    got = [(labels["pod"], labels["z"]) for labels, _ in instant('sort_by_label_desc(x, "pod")', store, 0)]
    assert got == [("web-10", "a"), ("web-9", "a"), ("web-9", "0"), ("db-1", "b")]
