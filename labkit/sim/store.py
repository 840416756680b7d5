"""The embedded mesh's time-series store: what the linkerd-viz Prometheus keeps.

The scraper appends every proxy's samples here on the viz scrape interval (10 s,
reference/linkerd-formats.md §1.5) and :mod:`labkit.metrics.promql` evaluates
the PromQL that linkerd-viz and Flagger send on top of it.

Why it is shaped this way:

* **Prometheus's data model, not a DataFrame.** A series is a metric name plus a
  label set; a sample is ``(time, value)``. Times are kept as integer
  milliseconds, because Prometheus works in milliseconds and PromQL's window
  edges (``t >= end - range``) must compare exactly.
* **Compact.** A 10-minute run may hold ~50k series x 60 samples, so samples
  live in ``array.array`` buffers (8 bytes per time, 8 per value) rather than
  lists of Python floats (~32 bytes each). Label sets are the scraper's own
  sorted tuples, stored once per series. Numpy arrays are made only when asked.
* **Fast selection.** An inverted index (metric name → label → value → series
  ids) answers ``=``, ``!=``, ``=~`` and ``!~`` matchers without scanning every
  series, and :meth:`SeriesStore.gather_window` hands the evaluator only the
  samples of the time range a query needs, as flat numpy arrays.
* **Prometheus ingestion rules.** Labels with an empty value are dropped (an
  empty label is the same as no label in Prometheus); a sample at or before a
  series' last timestamp is refused (``append``) or dropped and counted
  (``append_many``, like Prometheus's out-of-order scrape samples).
* **Staleness.** A series whose pod is gone simply gets no more samples, and
  instant selectors stop seeing it 5 minutes (the lookback delta) after its last
  sample. :meth:`SeriesStore.mark_stale` additionally writes Prometheus's
  staleness marker (:data:`STALE_NAN`), which ends the series at once, as a real
  Prometheus does when a target disappears.
* **Scrapes written in bulk.** Writing a scrape sample by sample touches two
  buffers of every series every 10 s. :meth:`SeriesStore.append_block` takes a
  scrape whose samples cannot be out of order as one block and writes blocks
  into their series later, many scrapes per series at once; every read of
  samples (``select``, ``gather_window``, a ``Series``' times and values) and
  every other write does :meth:`SeriesStore.flush` first, so nothing reads or
  orders differently, and ``sample_count`` counts a block when it arrives.
"""
from __future__ import annotations

import bisect
import struct
from array import array
from collections import deque
from itertools import repeat
from operator import attrgetter
from typing import Iterable, Sequence

import numpy as np

from labkit.metrics.label_regex import matcher_regex

__all__ = ["SeriesStore", "Series", "STALE_NAN", "is_stale", "to_ms", "MATCH_OPS"]

#: Prometheus's staleness marker: a NaN with a specific payload (``value.StaleNaN``,
#: bits 0x7ff0000000000002). Any other NaN is an ordinary sample value.
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_STALE_BITS = np.uint64(0x7FF0000000000002)

#: How many samples back from a series' end ``gather_window`` looks first (a 1-2 minute window).
_TAIL = 16

#: Samples ``SeriesStore.append_block`` may keep deferred before it writes them into their series (~8 MB).
MAX_DEFERRED = 500_000

#: The label matcher operators PromQL has.
MATCH_OPS = ("=", "!=", "=~", "!~")

Matcher = tuple[str, str, str]
LabelItems = tuple[tuple[str, str], ...]


def is_stale(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the staleness markers in a float64 array (bit-exact, not isnan)."""
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64) == _STALE_BITS


def to_ms(t: float) -> int:
    """Unix seconds → integer milliseconds, rounded like Prometheus's API parses times."""
    return int(round(t * 1000.0))


def _regex(pattern: str):
    """A compiled label regex with Prometheus's semantics (RE2, anchored): see labkit.metrics.label_regex."""
    return matcher_regex(pattern)


def matcher_predicate(op: str, value: str):
    """The test one label matcher applies to a label's value ("" when the label is absent)."""
    if op == "=":
        return lambda v: v == value
    if op == "!=":
        return lambda v: v != value
    if op == "=~":
        rx = _regex(value)
        return lambda v: rx.fullmatch(v) is not None
    if op == "!~":
        rx = _regex(value)
        return lambda v: rx.fullmatch(v) is None
    raise ValueError(f"unknown label matcher operator {op!r}; expected one of {', '.join(MATCH_OPS)}")


class Series:
    """One time series: a metric name, its labels and its samples (read-only view for callers).

    ``times`` / ``values`` are fresh numpy arrays made on each access (the store
    keeps compact buffers); ``times_ms`` gives the exact integer milliseconds.
    """

    __slots__ = ("sid", "name", "label_items", "_t", "_v", "_src", "_store")

    def __init__(self, sid: int, name: str, label_items: LabelItems, store: "SeriesStore | None" = None):
        self.sid = sid
        self.name = name
        #: Sorted ``(label, value)`` pairs, without ``__name__`` and without empty values.
        self.label_items = label_items
        self._t = array("q")
        self._v = array("d")
        self._src: LabelItems | None = None  # the label tuple the scraper last used for it
        # _t and _v are extended, never replaced: the store keeps references to them (SeriesStore._buffers)
        self._store = store  # whose deferred blocks (SeriesStore.append_block) may still hold samples of it

    def _settle(self) -> None:
        store = self._store
        if store is not None and store._blocks:
            store.flush()

    @property
    def labels(self) -> dict[str, str]:
        """All labels including ``__name__`` (first), as Prometheus's API returns them."""
        out = {"__name__": self.name}
        out.update(self.label_items)
        return out

    @property
    def times_ms(self) -> np.ndarray:
        self._settle()
        return np.array(self._t, dtype=np.int64)

    @property
    def times(self) -> np.ndarray:
        """Sample times in unix seconds (float64)."""
        self._settle()
        return np.array(self._t, dtype=np.int64) / 1000.0

    @property
    def values(self) -> np.ndarray:
        self._settle()
        return np.array(self._v, dtype=np.float64)

    def __len__(self) -> int:
        self._settle()
        return len(self._t)

    def __repr__(self) -> str:
        self._settle()
        body = ",".join(f'{k}="{v}"' for k, v in self.label_items)
        return f"<Series {self.name}{{{body}}} samples={len(self._t)}>"


class SeriesStore:
    """An in-memory TSDB: append samples, select series by matchers, hand out time windows."""

    def __init__(self) -> None:
        self._series: list[Series] = []
        # (name, label items as given by a caller) -> Series; several spellings may map to one series.
        self._by_key: dict[tuple[str, LabelItems], Series] = {}
        # (name, id of the caller's last label tuple) -> Series: hashing a 20-label tuple per sample
        # would dominate a scrape, an id does not (each series keeps its tuple alive, so ids stay valid).
        self._by_ident: dict[tuple[str, int], Series] = {}
        # name -> ids of that name, in creation order.
        self._ids_by_name: dict[str, array] = {}
        # name -> label -> value -> ids (ascending), the postings lists.
        self._postings: dict[str, dict[str, dict[str, array]]] = {}
        self.sample_count = 0
        #: Samples ``append_many`` dropped because they were not newer than the series' last one.
        self.out_of_order_samples = 0
        # No series has a sample at or after this time (ms), deferred ones included: a later block cannot hold
        # an out-of-order sample.
        self._latest_ms = -(2**63)
        self._distinct: tuple | None = None  # the last series tuple append_block found free of repeats
        # append_block's deferred blocks, oldest first: (time ms, series tuple, values as doubles); see flush.
        self._blocks: list[tuple[int, tuple, bytes]] = []
        self._deferred = 0  # how many samples they hold
        self._kept: tuple | None = None  # (a series tuple, its buffers): see _buffers

    # ---- writing -------------------------------------------------------------------------------

    @property
    def series_count(self) -> int:
        return len(self._series)

    def _lookup(self, name: str, items: LabelItems) -> Series:
        """The series for ``name`` + ``items``, created on first sight (with its index entries)."""
        series = self._by_key.get((name, items))
        if series is None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"metric name must be a non-empty string, got {name!r}")
            pairs = [p for p in items if p[1] != "" and p[0] != "__name__"]
            pairs.sort()
            # share the caller's tuple when it is already canonical (the scraper's usually are)
            same = len(pairs) == len(items) and all(a is b for a, b in zip(pairs, items))
            canonical = items if same and isinstance(items, tuple) else tuple(pairs)
            series = self._by_key.get((name, canonical))
            if series is None:
                series = self._create(name, canonical)
            self._by_key[(name, items)] = series
        # remember the caller's tuple by identity: the next scrape then skips hashing it
        if series._src is not items:
            if series._src is not None:
                self._by_ident.pop((name, id(series._src)), None)
            series._src = items
            self._by_ident[(name, id(items))] = series
        return series

    def _create(self, name: str, canonical: LabelItems) -> Series:
        series = Series(len(self._series), name, canonical, self)
        sid = series.sid
        self._series.append(series)
        self._by_key[(name, canonical)] = series
        ids = self._ids_by_name.get(name)
        if ids is None:
            self._ids_by_name[name] = array("i", (sid,))
            self._postings[name] = {}
        else:
            ids.append(sid)
        by_label = self._postings[name]
        for label, value in canonical:
            by_value = by_label.get(label)
            if by_value is None:
                by_value = by_label[label] = {}
            posting = by_value.get(value)
            if posting is None:
                by_value[value] = array("i", (sid,))
            else:
                posting.append(sid)
        return series

    def append(self, name: str, labels: dict[str, str], t: float, value: float) -> None:
        """Add one sample. ``t`` is unix seconds; samples of a series must come in increasing time."""
        if self._blocks:
            self.flush()
        series = self._lookup(name, tuple(sorted((str(k), str(v)) for k, v in labels.items())))
        t_ms = to_ms(t)
        if series._t and series._t[-1] >= t_ms:
            raise ValueError(
                f"out-of-order sample for {series!r}: t={t} is not after its last sample "
                f"t={series._t[-1] / 1000.0}"
            )
        series._t.append(t_ms)
        series._v.append(float(value))
        self.sample_count += 1
        if t_ms > self._latest_ms:
            self._latest_ms = t_ms

    def append_many(self, t: float, samples: Iterable[tuple[str, LabelItems, float]]) -> int:
        """Add one scrape: every ``(name, sorted label-item tuple, value)`` at time ``t``.

        Samples not newer than their series' last sample are dropped and counted
        in :attr:`out_of_order_samples`, as Prometheus does on scrape. Returns how
        many samples were stored. (The scraper keeps its series and calls
        :meth:`append_series` directly.)
        """
        by_ident = self._by_ident.get
        lookup = self._lookup

        def resolved():
            for name, items, value in samples:
                series = by_ident((name, id(items)))
                if series is None or series._src is not items:
                    series = lookup(name, items)
                yield series, value

        return self.append_series(t, resolved())

    def series(self, name: str, items: LabelItems) -> Series:
        """The series for ``name`` and sorted label ``items`` (created on first sight), for :meth:`append_series`."""
        return self._lookup(name, items)

    def append_series(self, t: float, samples: Iterable[tuple[Series, float]]) -> int:
        """:meth:`append_many` for a caller that keeps the :class:`Series` it appends to (the scraper, scrape after
        scrape): ``(series, value)`` pairs at time ``t``, with the same out-of-order rule."""
        if self._blocks:
            self.flush()
        t_ms = to_ms(t)
        stamp = array("q", (t_ms,))  # extending by an array of the same type copies bytes: no per-sample parsing
        stored = 0
        for series, value in samples:
            times = series._t
            if times and times[-1] >= t_ms:
                self.out_of_order_samples += 1
                continue
            times.extend(stamp)
            series._v.append(value)
            stored += 1
        self.sample_count += stored
        if stored and t_ms > self._latest_ms:
            self._latest_ms = t_ms
        return stored

    def append_block(self, t: float, series: tuple, values: Sequence[float]) -> int:
        """:meth:`append_series` of ``zip(series, values)`` (same length; ``values`` may be a numpy array), for a
        caller that appends to the same tuple of series scrape after scrape (the scraper).

        When ``t`` is later than every sample in the store and no series comes twice (checked once per tuple),
        every sample will be stored: the block is counted now and written into its series later, many scrapes
        in one go (:meth:`flush`, which every read of samples does first). Otherwise it goes through
        :meth:`append_series` at once.
        """
        if len(series) != len(values):
            raise ValueError(f"append_block: {len(series)} series but {len(values)} values")
        t_ms = to_ms(t)
        if t_ms <= self._latest_ms or not self._free_of_repeats(series):
            return self.append_series(t, zip(series, values))
        if not series:
            return 0
        n = len(series)
        if isinstance(values, np.ndarray):
            packed = values.astype(np.float64, copy=False).tobytes()
        else:
            try:
                packed = struct.pack(f"{n}d", *values)  # every value converted now, or none
            except struct.error:
                bad = next((v for v in values if not isinstance(v, (int, float))), values)
                raise TypeError(f"append_block: sample values must be numbers, got {bad!r}") from None
        self._blocks.append((t_ms, series, packed))
        self._latest_ms = t_ms
        self.sample_count += n
        self._deferred += n
        if self._deferred > MAX_DEFERRED:
            self.flush()
        return n

    def _free_of_repeats(self, series: Sequence[Series]) -> bool:
        if series is self._distinct:
            return True
        if type(series) is not tuple or len(set(series)) != len(series):
            return False
        self._distinct = series  # a tuple cannot change: checked once
        return True

    def flush(self) -> None:
        """Write the deferred blocks into their series, oldest first; consecutive blocks of the same series
        tuple go in together: each series' times and values grow by one ``extend`` per run of blocks."""
        blocks = self._blocks
        if not blocks:
            return
        self._blocks = []
        self._deferred = 0
        start = 0
        while start < len(blocks):
            series = blocks[start][1]
            end = start + 1
            while end < len(blocks) and blocks[end][1] is series:
                end += 1
            _write_run(self._buffers(series), blocks[start:end])
            start = end

    def _buffers(self, series: tuple) -> tuple:
        """The times and values arrays of ``series`` (kept for the last tuple asked: a series never replaces
        its arrays, and the scraper appends to the same tuple scrape after scrape)."""
        kept = self._kept
        if kept is None or kept[0] is not series:
            kept = self._kept = (series, (tuple(map(_TIMES, series)), tuple(map(_VALUES, series))))
        return kept[1]

    def mark_stale(self, name: str, labels: dict[str, str], t: float) -> None:
        """Write a staleness marker: the series disappears from instant queries from ``t`` on."""
        self.append(name, labels, t, STALE_NAN)

    # ---- reading -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Metric names present, sorted."""
        return sorted(self._ids_by_name)

    def select(self, name: str | None, matchers: Sequence[Matcher] = ()) -> list[Series]:
        """Series whose name is ``name`` (any if None) and whose labels satisfy every matcher.

        A matcher is ``(label, op, value)`` with ``op`` one of ``=``, ``!=``, ``=~``,
        ``!~``; regexes are fully anchored and an absent label reads as "" (both
        as in Prometheus). ``__name__`` may be matched too. Series come in
        creation order.
        """
        if self._blocks:
            self.flush()
        name_matchers = [(op, value) for label, op, value in matchers if label == "__name__"]
        label_matchers = [(label, op, value) for label, op, value in matchers if label != "__name__"]
        checks = [matcher_predicate(op, value) for op, value in name_matchers]
        predicates = [(label, matcher_predicate(op, value), op, value) for label, op, value in label_matchers]
        candidates = [name] if name is not None else sorted(self._ids_by_name)
        out: list[Series] = []
        for metric in candidates:
            if metric not in self._ids_by_name or not all(check(metric) for check in checks):
                continue
            ids = self._match_ids(metric, predicates)
            series = self._series
            out.extend(series[i] for i in ids.tolist())
        return out

    def _match_ids(self, metric: str, predicates) -> np.ndarray:
        """Ids of ``metric``'s series that satisfy all label predicates (intersection of postings)."""
        ids: np.ndarray | None = None
        postings = self._postings.get(metric, {})
        # Cheapest first: an equality on a present value is one postings list.
        for label, pred, op, value in sorted(predicates, key=lambda p: p[2] != "=" or p[3] == ""):
            by_value = postings.get(label, {})
            if op == "=" and value != "":
                hit = by_value.get(value)
                matched = _ids(hit) if hit is not None else np.empty(0, dtype=np.int64)
            elif pred(""):
                # Absent labels match: everything except the present values that fail.
                failing = [_ids(p) for v, p in by_value.items() if not pred(v)]
                every = ids if ids is not None else _ids(self._ids_by_name[metric])
                matched = np.setdiff1d(every, np.concatenate(failing), assume_unique=True) if failing else every
            else:
                passing = [_ids(p) for v, p in by_value.items() if pred(v)]
                matched = np.sort(np.concatenate(passing)) if passing else np.empty(0, dtype=np.int64)
            ids = matched if ids is None else np.intersect1d(ids, matched, assume_unique=True)
            if ids.size == 0:
                return ids
        return ids if ids is not None else _ids(self._ids_by_name[metric])

    def gather_window(self, series: Sequence[Series], mint_ms: int, maxt_ms: int):
        """The samples of ``series`` with ``mint_ms <= t <= maxt_ms``, flattened for the evaluator.

        Returns ``(times_ms int64, values float64, lengths int64)``: the samples
        of series ``i`` are the ``lengths[i]`` entries after those of series
        ``i-1``. One pass of C-level array copies, so a query over a few
        thousand series costs milliseconds.
        """
        if self._blocks:
            self.flush()
        out_t = array("q")
        out_v = array("d")
        lengths = array("q")
        left, right = bisect.bisect_left, bisect.bisect_right
        for s in series:
            times = s._t
            n = len(times)
            if n == 0:
                lengths.append(0)
                continue
            # Queries mostly look at the last minute: search the tail first.
            if n > _TAIL and times[n - _TAIL] < mint_ms:
                lo = left(times, mint_ms, n - _TAIL)
            else:
                lo = left(times, mint_ms)
            hi = n if times[-1] <= maxt_ms else right(times, maxt_ms, lo)
            if hi <= lo:
                lengths.append(0)
                continue
            if lo == 0 and hi == n:
                out_t += times
                out_v += s._v
            else:
                out_t += times[lo:hi]
                out_v += s._v[lo:hi]
            lengths.append(hi - lo)
        return (
            np.frombuffer(out_t, dtype=np.int64) if out_t else np.empty(0, dtype=np.int64),
            np.frombuffer(out_v, dtype=np.float64) if out_v else np.empty(0, dtype=np.float64),
            np.frombuffer(lengths, dtype=np.int64) if lengths else np.empty(0, dtype=np.int64),
        )

    def __repr__(self) -> str:
        return f"<SeriesStore series={self.series_count} samples={self.sample_count}>"


_TIMES, _VALUES = attrgetter("_t"), attrgetter("_v")


def _write_run(buffers: tuple, blocks: list) -> None:
    """Append blocks of the same series (times ascending, each later than the series' samples) to their
    ``buffers`` (times arrays, values arrays): per series one ``extend`` of the blocks' times and one
    ``frombytes`` of its values (an array's ``append`` parses its argument; these copy bytes, and NaN payloads
    stay as they are)."""
    times = array("q", [block[0] for block in blocks])
    times_arrays, values_arrays = buffers
    k, n = len(blocks), len(times_arrays)
    matrix = np.frombuffer(b"".join([block[2] for block in blocks]), dtype=np.float64).reshape(k, n)
    rows = matrix.T.tobytes()  # series x blocks
    width = 8 * k
    deque(map(array.extend, times_arrays, repeat(times)), 0)
    deque(map(array.frombytes, values_arrays, [rows[i:i + width] for i in range(0, n * width, width)]), 0)


def _ids(postings: array) -> np.ndarray:
    """A postings list as an int64 numpy copy (a copy, so the store can keep appending)."""
    return np.array(postings, dtype=np.int64)
