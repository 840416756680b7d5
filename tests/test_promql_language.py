"""The PromQL a learner writes: functions, operators and semantics of Prometheus 2.55, by hand-worked cases.

The real-engine cross-check (tests/test_prometheus_server.py) runs against the
installed Prometheus (2.53 in CI); the cases here pin the behaviour where 2.55
differs from it (limitk, limit_ratio, compensated sums), where the arithmetic
is easy to get subtly wrong (NaN ordering, Go's regex and template syntax), and
the older rules ``compat="2.42"`` reproduces for Debian 12's package.
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


# ---- limit_ratio: a stable sample chosen by Prometheus's label-set hash ---------------------------------

WEB = series_store(*[("up", {"pod": f"web-{i}"}, [float(i)] * 13) for i in range(12)])  # samples 0..120 s


def pods(expr, t=60, store=WEB):
    return sorted(labels["pod"] for labels, _ in instant(expr, store, t))


def test_label_set_hash_is_the_release_binaries():
    from labkit.metrics.label_hash import encode_labels, label_set_hash

    # the stringlabels encoding: each name and value preceded by its length as a uvarint, names sorted
    assert encode_labels([("a", "1"), ("__name__", "x")]) == b"\x08__name__\x01x\x01a\x011"
    assert encode_labels([("k", "v" * 200)]) == b"\x01k\xc8\x01" + b"v" * 200  # 200 = 0x48 | 0x80, then 1
    # XXH64 with seed 0 (the algorithm's published value for no input)
    assert label_set_hash([]) == 0xEF46DB3751D8E999
    # labels.Labels.Hash() of Prometheus v2.55.1's model/labels built with -tags stringlabels (as its release
    # binaries are), run on these label sets
    assert label_set_hash([("__name__", "http_requests"), ("job", "api-server"), ("instance", "0"),
                           ("group", "production")]) == 1744331236799518182
    assert label_set_hash([("__name__", "x")]) == 7278096412898179492
    assert label_set_hash([("k", "v" * 200)]) == 3488702888619603350


def test_limit_ratio_keeps_the_series_whose_hash_falls_in_the_ratio():
    # offsets hash/2^64 of up{pod="web-N"} (from the Go build above): web-4 .176, web-0 .246, web-7 .253, web-2
    # .351, … web-5 .969. Below 0.3: three pods; from 0.7 up (ratio -0.3): web-5, web-8 and web-9.
    assert pods("limit_ratio(0.3, up)") == ["web-0", "web-4", "web-7"]
    assert pods("limit_ratio(-0.3, up)") == ["web-5", "web-8", "web-9"]
    # the hash covers the whole label set: without the metric name other series are picked
    assert pods("limit_ratio(0.3, up + 0)") == ["web-1", "web-4", "web-5", "web-7", "web-8", "web-9"]
    # grouping does not matter: each series is kept or not on its own
    assert pods("limit_ratio by (pod) (0.3, up)") == pods("limit_ratio(0.3, up)")


@pytest.mark.parametrize("r", [0.2, 0.25, 0.5, 0.75, 0.9])
def test_limit_ratio_and_its_complement_partition_the_series(r):
    kept, rest = pods(f"limit_ratio({r}, up)"), pods(f"limit_ratio({r} - 1, up)")
    assert not set(kept) & set(rest)
    assert sorted(kept + rest) == pods("up")
    assert 0 < len(kept) < 12


def test_limit_ratio_membership_is_stable_over_time():
    result = range_("limit_ratio(0.5, up)", WEB, 0, 120, 10)
    assert 0 < len(result) < 12
    for labels, times, _ in result:  # a chosen series is there at every step
        assert list(times) == [float(t) for t in range(0, 121, 10)], labels
    assert sorted(labels["pod"] for labels, _, _ in result) == pods("limit_ratio(0.5, up)", t=120)


def test_limit_ratio_bounds():
    assert pods("limit_ratio(0, up)") == []
    assert pods("limit_ratio(1, up)") == pods("up") == pods("limit_ratio(-1, up)")
    assert pods("limit_ratio(7, up)") == pods("up") == pods("limit_ratio(-7, up)")  # capped at ±1
    with pytest.raises(QueryError, match="Ratio value NaN is NaN"):
        instant("limit_ratio(0/0, nothing)", WEB, 60)  # refused before looking at the series


# ---- aggregation parameters: read once, checked like Prometheus --------------------------------------


def test_aggregation_parameter_is_read_at_the_first_step():
    # k is 1 at t=0 and 30 and 2 at t=60 and 90; Prometheus >= 2.52 keeps the first step's k throughout
    expr = "topk(1 + (time() % 60 > bool 29), up)"
    assert [labels["pod"] for labels, _, _ in range_(expr, WEB, 0, 90, 30)] == ["web-11"]
    old = range_(expr, WEB, 0, 90, 30, compat="2.42")  # 2.42 read it at every step
    assert {labels["pod"]: list(times) for labels, times, _ in old} == {"web-11": [0, 30, 60, 90], "web-10": [30, 90]}
    assert [list(v) for _, _, v in range_("quantile(time() / 90, up)", WEB, 0, 90, 30)] == [[0.0] * 4]


def test_k_must_fit_an_int64():
    with pytest.raises(QueryError, match=r"Scalar value 1e\+20 overflows int64"):
        instant("topk(1e20, up)", WEB, 60)
    with pytest.raises(QueryError, match="Scalar value NaN overflows int64"):
        instant("limitk(0/0, nothing)", WEB, 60)
    assert pods("topk(2.9, up)") == ["web-10", "web-11"]  # truncated
    assert pods("bottomk(-3, up)") == [] and pods("topk(9e18, up)") == pods("up")


# ---- holt_winters -----------------------------------------------------------------------------------


def test_holt_winters_smooths_level_and_trend():
    store = series_store(("g", {}, [1, 3, 6]), ("h", {}, [4]))
    # level starts at 1, trend at 3 - 1 = 2. Sample 3: level .5*3 + .5*(1 + 2) = 3. Sample 6: trend
    # .5*(3 - 1) + .5*2 = 2, level .5*6 + .5*(3 + 2) = 5.5
    assert one("holt_winters(g[1m], 0.5, 0.5)", store, 20) == 5.5
    # sf .9, tf .1: level 2.7 + .3 = 3, then trend .1*2 + .9*2 = 2 and level 5.4 + .1*(3 + 2) = 5.9
    assert one("holt_winters(g[1m], 0.9, 0.1)", store, 20) == pytest.approx(5.9, rel=1e-15)
    assert instant("holt_winters(h[1m], 0.5, 0.5)", store, 20) == []  # one sample: nothing to smooth


def test_holt_winters_checks_its_factors_where_there_is_data():
    store = series_store(("g", {}, [1, 3, 6]))
    with pytest.raises(QueryError, match=r"invalid smoothing factor\. Expected: 0 < sf < 1, got: 1\.000000"):
        instant("holt_winters(g[1m], 1, 0.5)", store, 20)
    with pytest.raises(QueryError, match=r"invalid trend factor\. Expected: 0 < tf < 1, got: -Inf"):
        instant("holt_winters(g[1m], 0.5, -1/0)", store, 20)
    assert instant("holt_winters(g[1m], 2, 2)", store, 500) == []  # no sample in the window: no check


def test_holt_winters_is_2_55s_name_and_only_calls_are_renamed():
    store = series_store(("holt_winters", {"holt_winters": "x"}, [1, 3, 6]))
    assert one("holt_winters", store, 20) == 6  # a metric of that name
    assert one('holt_winters{holt_winters="x"} # holt_winters(', store, 20) == 6
    assert one('count by (holt_winters) (holt_winters (holt_winters[1m], 0.5, 0.5))', store, 20) == 1
    assert instant('holt_winters{holt_winters="holt_winters("}', store, 20) == []
    with pytest.raises(QueryError, match='unknown function with name "double_exponential_smoothing"'):
        instant("double_exponential_smoothing(holt_winters[1m], 0.5, 0.5)", store, 20)  # Prometheus 3's name
    with pytest.raises(QueryError, match="expected 3 argument.*'holt_winters', got 2"):
        instant("holt_winters(holt_winters[1m], 0.5)", store, 20)


def test_compat_2_42_clamps_at_the_zero_point_first():
    # a counter born inside the window (see test_promql.py): 2.51+ give 35, 2.42 extended the start by 8 s
    store = series_store(("x_total", {}, [None, None, None, 8, 18, 28]))
    assert one("increase(x_total[1m])", store, 60) == pytest.approx(35.0, abs=1e-9)
    assert instant("increase(x_total[1m])", store, 60, compat="2.42")[0][1] == pytest.approx(38.0, abs=1e-9)


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
