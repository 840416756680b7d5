"""tools/promqltest.py reads Prometheus's test-script language correctly and counts honestly.

Its figures are only worth something if a wrong answer is counted wrong: these
scripts are written here (not Prometheus's) with deliberately right and wrong
expectations.
"""
from __future__ import annotations

import math
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import promqltest as pt  # noqa: E402


def test_series_notation_expands_like_promtool():
    labels, values = pt.series_desc('up{job="a b", x=\'1\'} 1+2x3 _x2 stale -1-0.5x1 _ 7x2')
    assert labels == {"__name__": "up", "job": "a b", "x": "1"}
    assert values[:4] == [1, 3, 5, 7] and values[4:6] == [None, None]
    assert pt._is_stale(values[6]) and values[7:9] == [-1, -1.5] and values[9] is None and values[10:] == [7] * 3
    assert pt.series_desc("{} 5 0x10") == ({}, [5.0] + [0.0] * 11)  # "0 times 10", as Go's series lexer reads it
    assert math.isinf(pt.number("-Inf")) and pt.number("0x10") == 16 and math.isnan(pt.number("NaN"))
    with pytest.raises(pt.NativeHistogram):
        pt.series_desc("h {{schema:0 sum:1 count:1}}")


def test_durations_and_tolerance():
    assert pt.duration("1h30m") == 5400 and pt.duration("0") == 0 and pt.duration("500ms") == 0.5
    with pytest.raises(ValueError):
        pt.duration("5 m")
    assert pt.almost_equal(1.0, 1.0 + 1e-9) and not pt.almost_equal(1.0, 1.001)
    assert pt.almost_equal(math.nan, math.nan) and not pt.almost_equal(math.nan, pt._stale())


SCRIPT = """
# a comment
load 1m
    c_total{k="a"} 0+60x10
    c_total{k="b"} 0+120x10

eval instant at 5m rate(c_total[2m])
    {k="a"} 1
    {k="b"} 2

eval instant at 5m rate(c_total[2m])
    {k="a"} 1
    {k="b"} 3

eval instant at 5m sum(rate(c_total[2m]))
    {} 3

eval range from 0 to 2m step 1m c_total{k="a"}
    c_total{k="a"} 0 60 120

eval range from 0 to 2m step 1m c_total{k="a"}
    c_total{k="a"} 0 _ 120

eval_ordered instant at 5m sort_desc(c_total)
    c_total{k="b"} 600
    c_total{k="a"} 300

eval_fail instant at 5m c_total + ignoring(k) c_total

eval_fail instant at 5m c_total

eval instant at 5m scalar(sum(c_total))
    900

eval instant at 5m histogram_count(c_total)

eval instant at 5m info(c_total)

clear

eval instant at 5m c_total
"""


def test_outcomes_are_counted_honestly():
    got = [(ev.line, outcome) for ev, outcome, _ in pt.run_script(SCRIPT, timeout=30)]
    assert [outcome for _, outcome in got] == [
        "pass", "wrong", "pass", "pass", "wrong", "pass", "pass", "wrong", "pass", "skipped", "unsupported", "pass",
    ], got
