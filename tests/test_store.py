"""The embedded mesh's time-series store: ingestion rules, matchers, windows, staleness."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from labkit.sim.store import STALE_NAN, SeriesStore, is_stale, to_ms


def _store() -> SeriesStore:
    store = SeriesStore()
    for i, (dep, pod) in enumerate([("web", "web-1"), ("web-2", "web-2-a"), ("voting", "voting-1")]):
        for t in range(0, 60, 10):
            store.append("request_total", {"deployment": dep, "pod": pod, "direction": "inbound"}, t, t * (i + 1))
    store.append("request_total", {"deployment": "web", "pod": "web-1", "direction": "outbound", "tls": "true"}, 0, 1)
    store.append("tcp_open_connections", {"deployment": "web", "pod": "web-1"}, 0, 3)
    return store


def _pods(series) -> list[str]:
    return sorted(s.labels.get("pod", "") + "/" + s.labels.get("direction", "") for s in series)


def test_series_has_labels_with_name_times_and_values():
    store = _store()
    [s] = store.select("request_total", [("pod", "=", "web-1"), ("direction", "=", "inbound")])
    assert s.labels == {"__name__": "request_total", "deployment": "web", "direction": "inbound", "pod": "web-1"}
    assert list(s.labels)[0] == "__name__"
    np.testing.assert_array_equal(s.times, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    np.testing.assert_array_equal(s.values, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    assert s.times.dtype == np.float64 and s.values.dtype == np.float64
    np.testing.assert_array_equal(s.times_ms, [0, 10_000, 20_000, 30_000, 40_000, 50_000])
    assert store.series_count == 5
    assert store.sample_count == 3 * 6 + 2


def test_equality_and_inequality_matchers():
    store = _store()
    assert _pods(store.select("request_total", [("deployment", "=", "web")])) == ["web-1/inbound", "web-1/outbound"]
    assert _pods(store.select("request_total", [("deployment", "!=", "web")])) == ["voting-1/inbound", "web-2-a/inbound"]
    assert store.select("request_total", [("deployment", "=", "nope")]) == []
    assert store.select("no_such_metric", []) == []


def test_regex_matchers_are_fully_anchored():
    store = _store()
    # "web" must not match "web-2": Prometheus anchors regexes as ^(?:web)$
    assert _pods(store.select("request_total", [("deployment", "=~", "web"), ("direction", "=", "inbound")])) == [
        "web-1/inbound"
    ]
    assert _pods(store.select("request_total", [("deployment", "=~", "we")])) == []
    assert _pods(store.select("request_total", [("deployment", "=~", "web.*"), ("direction", "=", "inbound")])) == [
        "web-1/inbound", "web-2-a/inbound",
    ]
    assert _pods(store.select("request_total", [("deployment", "=~", "web|voting"), ("direction", "=", "inbound")])) == [
        "voting-1/inbound", "web-1/inbound",
    ]
    assert _pods(store.select("request_total", [("deployment", "!~", "web.*")])) == ["voting-1/inbound"]


def test_absent_label_reads_as_empty_string():
    store = _store()
    # only the outbound series has tls; tls="" selects the ones without it, tls!="" the one with it
    assert _pods(store.select("request_total", [("tls", "=", "")])) == [
        "voting-1/inbound", "web-1/inbound", "web-2-a/inbound",
    ]
    assert _pods(store.select("request_total", [("tls", "!=", "")])) == ["web-1/outbound"]
    assert _pods(store.select("request_total", [("tls", "!=", "true")])) == [
        "voting-1/inbound", "web-1/inbound", "web-2-a/inbound",
    ]
    assert len(store.select("request_total", [("tls", "=~", ".*")])) == 4
    assert _pods(store.select("request_total", [("tls", "=~", ".+")])) == ["web-1/outbound"]


def test_name_matchers_and_selecting_without_a_name():
    store = _store()
    assert len(store.select(None, [("__name__", "=~", "request_.*")])) == 4
    assert len(store.select(None, [("__name__", "=~", "request_.*|tcp_.*"), ("pod", "=", "web-1")])) == 3
    assert store.select("request_total", [("__name__", "=", "tcp_open_connections")]) == []
    assert store.names() == ["request_total", "tcp_open_connections"]


def test_empty_label_values_are_dropped_on_ingest_like_prometheus():
    store = SeriesStore()
    store.append_many(10, [("response_total", (("classification", "success"), ("error", ""), ("pod", "a")), 1.0)])
    store.append("response_total", {"pod": "a", "classification": "success", "error": ""}, 20, 2.0)
    [s] = store.select("response_total", [("error", "=", "")])
    assert s.labels == {"__name__": "response_total", "classification": "success", "pod": "a"}
    np.testing.assert_array_equal(s.values, [1.0, 2.0])


def test_append_many_reuses_series_whatever_the_label_order():
    store = SeriesStore()
    items = (("a", "1"), ("b", "2"))
    assert store.append_many(0, [("m", items, 1.0), ("m", (("a", "1"), ("b", "3")), 5.0)]) == 2
    store.append_many(10, [("m", (("b", "2"), ("a", "1")), 2.0)])  # unsorted spelling, same series
    store.append("m", {"b": "2", "a": "1"}, 20, 3.0)
    assert store.series_count == 2
    [s] = store.select("m", [("b", "=", "2")])
    np.testing.assert_array_equal(s.values, [1.0, 2.0, 3.0])


def test_out_of_order_samples_are_refused_or_counted():
    store = SeriesStore()
    store.append("m", {"a": "1"}, 10, 1.0)
    with pytest.raises(ValueError, match="out-of-order"):
        store.append("m", {"a": "1"}, 10, 2.0)
    with pytest.raises(ValueError, match="out-of-order"):
        store.append("m", {"a": "1"}, 5, 2.0)
    assert store.append_many(10, [("m", (("a", "1"),), 9.0), ("m", (("a", "2"),), 1.0)]) == 1
    assert store.out_of_order_samples == 1
    [s] = store.select("m", [("a", "=", "1")])
    np.testing.assert_array_equal(s.values, [1.0])


def test_times_are_milliseconds_rounded_like_the_prometheus_api():
    assert to_ms(1570615200.0) == 1570615200000
    assert to_ms(0.0015) == 2
    store = SeriesStore()
    store.append("m", {}, 1.2346, 1.0)
    [s] = store.select("m", [])
    assert s.times_ms.tolist() == [1235]
    assert s.times.tolist() == [1.235]


def test_gather_window_is_inclusive_on_both_ends():
    store = _store()
    series = store.select("request_total", [("direction", "=", "inbound")])
    t, v, lengths = store.gather_window(series, 20_000, 40_000)
    assert lengths.tolist() == [3, 3, 3]
    assert t.tolist() == [20_000, 30_000, 40_000] * 3
    assert v.tolist() == [20.0, 30.0, 40.0, 40.0, 60.0, 80.0, 60.0, 90.0, 120.0]
    t, v, lengths = store.gather_window(series, 51_000, 99_000)
    assert lengths.tolist() == [0, 0, 0] and t.size == 0 and v.size == 0


def test_gather_window_tail_search_on_long_series():
    store = SeriesStore()
    for i in range(100):
        store.append("m", {}, i * 10, float(i))
    [s] = store.select("m", [])
    for mint, maxt in [(0, 990_000), (925_000, 990_000), (500_000, 600_000), (0, 0), (985_000, 2_000_000)]:
        t, v, lengths = store.gather_window([s], mint, maxt)
        expected = [x for x in range(0, 1_000_000, 10_000) if mint <= x <= maxt]
        assert t.tolist() == expected
        assert lengths.tolist() == [len(expected)]


def test_staleness_marker_is_a_specific_nan():
    store = SeriesStore()
    store.append("m", {"a": "1"}, 0, 1.0)
    store.mark_stale("m", {"a": "1"}, 10)
    [s] = store.select("m", [])
    assert math.isnan(s.values[1])
    assert is_stale(s.values).tolist() == [False, True]
    assert not is_stale(np.array([math.nan]))[0]  # an ordinary NaN is a value, not a marker
    assert math.isnan(STALE_NAN)


def test_bad_matchers_raise_clear_errors():
    store = _store()
    with pytest.raises(ValueError, match="regular expression"):
        store.select("request_total", [("pod", "=~", "(")])
    with pytest.raises(ValueError, match="operator"):
        store.select("request_total", [("pod", "==", "x")])


def test_storage_is_compact():
    store = SeriesStore()
    n = 10_000
    store.append_many(0, [("m", (("i", str(i)),), 0.0) for i in range(3)])
    for k in range(1, n):
        store.append_many(k * 10, [("m", (("i", "0"),), float(k))])
    [s] = store.select("m", [("i", "=", "0")])
    size = sys.getsizeof(s._t) + sys.getsizeof(s._v)
    assert size < 18 * n + 1024, f"{size} bytes for {n} samples: samples must live in compact arrays"


# -- whole scrapes in blocks (append_block) -----------------------------------------------------------------------

def _dump(store: SeriesStore) -> list:
    """Everything a reader can see, NaN payloads included."""
    return [(s.name, s.label_items, s.times_ms.tobytes(), s.values.tobytes(), len(s))
            for s in store.select(None)] + [store.sample_count, store.out_of_order_samples, store.series_count]


@pytest.mark.parametrize("seed", range(8))
def test_blocks_store_what_sample_by_sample_appends_store(seed, monkeypatch):
    """Random scrapes (series tuples that stay, change, repeat a series; times that repeat or go back) mixed
    with other writes and with reads: a store taking the scrapes as blocks holds, at every read, what one
    taking them sample by sample holds."""
    import random

    from labkit.sim import store as st

    monkeypatch.setattr(st, "MAX_DEFERRED", 40)  # some blocks are written for being too many, not by a read
    rng = random.Random(seed)
    plain, blocks = SeriesStore(), SeriesStore()
    names = [("m", (("i", str(i)),)) for i in range(12)]

    def tuples(store):
        return {k: tuple(store.series(n, items) for n, items in names[a:b]) for k, (a, b) in
                enumerate([(0, 6), (2, 9), (0, 12)])}

    mine, theirs = tuples(plain), tuples(blocks)
    repeated = {k: v + v[:2] for k, v in mine.items()}, {k: v + v[:2] for k, v in theirs.items()}
    t = 0.0
    for _ in range(300):
        op = rng.randrange(10)
        t += rng.choice((10.0, 10.0, 10.0, 0.0, -10.0, 0.0004))
        if op < 6:
            k = rng.randrange(3)
            a, b = (repeated[0][k], repeated[1][k]) if rng.random() < 0.1 else (mine[k], theirs[k])
            values = [rng.choice((float(rng.randrange(100)), 7, STALE_NAN, math.nan)) for _ in a]
            assert plain.append_series(t, zip(a, values)) == blocks.append_block(t, b, values)
        elif op == 6:
            name, items = rng.choice(names)
            for store in (plain, blocks):
                try:
                    store.append(name, dict(items), t, 1.5)
                except ValueError:
                    pass
        elif op == 7:
            samples = [(n, items, rng.random()) for n, items in rng.sample(names, 3)]
            assert plain.append_many(t, samples) == blocks.append_many(t, samples)
        else:
            assert plain.sample_count == blocks.sample_count
            assert _dump(plain) == _dump(blocks)
    assert _dump(plain) == _dump(blocks)


def test_a_series_read_directly_sees_its_deferred_samples():
    store = SeriesStore()
    series = (store.series("a", ()), store.series("b", (("x", "1"),)))
    held = series[1]
    for k in range(3):
        assert store.append_block(10.0 * k, series, [k, STALE_NAN]) == 2
    assert store.sample_count == 6  # counted when they arrive
    assert len(held) == 3 and held.times_ms.tolist() == [0, 10_000, 20_000]  # no select in between
    assert is_stale(held.values).tolist() == [True] * 3
    store.append_block(30.0, series, [3, 4])
    t, v, lengths = store.gather_window(list(series), 0, 30_000)
    assert v.tolist()[:4] == [0.0, 1.0, 2.0, 3.0] and lengths.tolist() == [4, 4]
    store.append_block(35.0, series, np.array([5.0, STALE_NAN]))  # a numpy array of doubles, bit for bit
    assert is_stale(held.values).tolist() == [True, True, True, False, True] and series[0].values[-1] == 5.0
    with pytest.raises(ValueError, match="2 series but 1 values"):
        store.append_block(40.0, series, [1.0])
    with pytest.raises(TypeError, match="must be numbers, got 'x'"):
        store.append_block(40.0, series, [1.0, "x"])
    assert store.sample_count == 10 and len(held) == 5  # a refused block leaves nothing behind
