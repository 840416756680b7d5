"""Run Prometheus's own PromQL test scripts through labkit's evaluator and count the outcomes.

    .venv/bin/python tools/promqltest.py                       # v2.55.1's scripts, a summary per file
    .venv/bin/python tools/promqltest.py -v                    # + every wrong answer, crash and refusal
    .venv/bin/python tools/promqltest.py --git-dir DIR --ref v2.55.1 functions.test

Prometheus keeps its engine's acceptance tests as scripts in
``promql/promqltest/testdata/*.test`` (``load`` series, ``eval`` a query,
expect a result). They are the most complete statement of PromQL's semantics
there is, so they measure how far labkit's evaluator (which models v2.55.1,
the release linkerd-viz ships) is from the real engine. The scripts are read
at run time from a git checkout of Prometheus (a bare clone is enough); none
are copied into this project.

Each ``eval`` is one outcome:

* **pass**: the same series and values (relative error < 1e-6, Prometheus's
  tolerance; order too for ``eval_ordered``), or an error where one is
  expected;
* **wrong**: a different answer, an error where none is expected, or none
  where one is;
* **unsupported**: labkit refuses the query as outside what it models (its
  "not supported" error) or its parser cannot read it;
* **crash**: any other exception, or more than ``--timeout`` seconds;
* **skipped**: native-histogram data or queries (not modelled: Linkerd exports
  classic histograms) and series without a metric name (the store needs one).

An instant ``eval`` must also agree when run as a range query around its time
(the middle step of t-1m..t+1m), as Prometheus's Go runner checks; the
runner's further re-runs with ``@`` added are not repeated, and warnings are
not compared (labkit does not report them). Prometheus's runner
enables the ``promql-delayed-name-removal`` feature, which v2.55.1 leaves off by
default; the few scripts whose answer depends on it are reported as wrong and
listed with ``-v``.
"""
from __future__ import annotations

import argparse
import math
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_GIT_DIR = Path("/work/.mirror/prometheus+prometheus/repo")
DEFAULT_REF = "v2.55.1"
SCRIPTS = "promql/promqltest/testdata"
EPSILON = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308
_STALE_BITS = 0x7FF0000000000002

# ---- the script language -----------------------------------------------------------------------

_DURATION_UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0,
                   "ms": 0.001}
_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_EVAL_INSTANT = re.compile(r"^eval(?:_(fail|warn|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_EVAL_RANGE = re.compile(r"^eval(?:_(fail|warn))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")


def duration(text: str) -> float:
    """Prometheus's model.ParseDuration (``1h30m``, ``0``, ``500ms``) in seconds."""
    text = text.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {text!r}")
    return total


def number(text: str) -> float:
    """A Go-syntax float (``1e3``, ``0x1f``, ``Inf``, ``-NaN``, ``1_000``)."""
    t = text.replace("_", "")
    sign = -1.0 if t.startswith("-") else 1.0
    body = t.lstrip("+-")
    if body.lower().startswith("0x"):
        return sign * float(int(body, 16))
    if body.lower() in ("inf", "infinity"):
        return sign * math.inf
    if body.lower() == "nan":
        return math.nan
    return float(t)


def _stale() -> float:
    import struct

    return struct.unpack("<d", struct.pack("<Q", _STALE_BITS))[0]


def _is_stale(x: float) -> bool:
    import struct

    return struct.unpack("<Q", struct.pack("<d", x))[0] == _STALE_BITS


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _string(text: str, i: int) -> tuple[str, int]:
    """A quoted label value starting at text[i] (Go escapes for ' and ", none for `)."""
    quote = text[i]
    j = i + 1
    out = []
    while j < len(text) and text[j] != quote:
        if text[j] == "\\" and quote != "`":
            nxt = text[j + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(nxt, "\\" + nxt))
            j += 2
            continue
        out.append(text[j])
        j += 1
    if j >= len(text):
        raise ValueError(f"unterminated string in {text!r}")
    return "".join(out), j + 1


def series_desc(line: str) -> tuple[dict, list]:
    """``metric{a="b"} 1+2x3 _ stale`` -> (labels incl. __name__, values); None = no sample, histograms raise."""
    labels: dict[str, str] = {}
    i = 0
    m = _NAME.match(line, i)
    if m:
        labels["__name__"] = m.group(0)
        i = m.end()
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            while line[i] in " \t,":
                i += 1
            if line[i] == "}":
                i += 1
                break
            m = _NAME.match(line, i)
            if not m:
                raise ValueError(f"bad label in {line!r}")
            name = m.group(0)
            i = m.end()
            while line[i] in " \t":
                i += 1
            if line[i] != "=":
                raise ValueError(f"bad label matcher in {line!r}")
            i += 1
            while line[i] in " \t":
                i += 1
            labels[name], i = _string(line, i)
    rest = line[i:]
    if "{{" in rest:
        raise NativeHistogram(line)
    values: list = []
    for item in rest.split():
        values += _series_item(item)
    return labels, values


class NativeHistogram(ValueError):
    """A native-histogram sample in a script (not modelled)."""


_ITEM = re.compile(r"^(?P<a>[^x]+?)(?:(?P<d>[+-][^x]+))?x(?P<n>\d+)$")


def _series_item(item: str) -> list:
    if item == "_":
        return [None]
    if item.startswith("_x"):
        return [None] * int(item[2:])
    if item == "stale":
        return [_stale()]
    m = _ITEM.match(item)  # in series notation 0x10 is eleven zeros, not a hex number (as Go's lexer reads it)
    if m and m.group("a") not in ("+", "-"):
        first = _stale() if m.group("a") == "stale" else number(m.group("a"))
        step = number(m.group("d")) if m.group("d") else 0.0
        out, value = [], first
        for _ in range(int(m.group("n")) + 1):
            out.append(value)
            value += step  # repeated addition, as the Go parser does
        return out
    return [number(item)]


@dataclass
class Eval:
    line: int
    expr: str
    kind: str  # "instant" or "range"
    mod: str  # "", "fail", "warn", "ordered"
    start: float
    end: float = 0.0
    step: float = 0.0
    scalar: float | None = None
    expected: list = field(default_factory=list)  # [(labels, values)]
    fail_message: str | None = None
    fail_regexp: str | None = None
    native: bool = False


@dataclass
class Load:
    line: int
    interval: float
    series: list  # [(labels, values)]
    native: bool = False
    nhcb_names: tuple = ()


def parse_script(text: str) -> list:
    lines = []
    for raw in text.split("\n"):
        s = raw.strip()
        lines.append("" if s.startswith("#") else s)
    cmds: list = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = re.split(r"[\t ]+", line, maxsplit=1)[0].lower()
        body = []
        j = i + 1
        while j < len(lines) and lines[j]:
            body.append(lines[j])
            j += 1
        if word == "clear":
            cmds.append("clear")
            i += 1
            continue
        if word.startswith("load"):
            m = _LOAD.match(line)
            load = Load(i + 1, duration(m.group(2)), [])
            for b in body:
                try:
                    load.series.append(series_desc(b))
                except NativeHistogram:
                    load.native = True
            if m.group(1):  # load_with_nhcb: native histograms with custom buckets are made from _bucket series
                load.nhcb_names = tuple(sorted({lab.get("__name__", "")[: -len("_bucket")]
                                                for lab, _ in load.series
                                                if lab.get("__name__", "").endswith("_bucket")}))
            cmds.append(load)
            i = j
            continue
        if word.startswith("eval"):
            mi, mr = _EVAL_INSTANT.match(line), _EVAL_RANGE.match(line)
            if mi:
                ev = Eval(i + 1, mi.group(3), "instant", mi.group(1) or "", duration(mi.group(2) or "0"))
            else:
                ev = Eval(i + 1, mr.group(5), "range", mr.group(1) or "", duration(mr.group(2)),
                          duration(mr.group(3)), duration(mr.group(4)))
            for b in body:
                if ev.mod == "fail" and b.startswith("expected_fail_message"):
                    ev.fail_message = b[len("expected_fail_message"):].strip()
                    break
                if ev.mod == "fail" and b.startswith("expected_fail_regexp"):
                    ev.fail_regexp = b[len("expected_fail_regexp"):].strip()
                    break
                try:
                    ev.scalar = number(b)
                    break
                except ValueError:
                    pass
                try:
                    ev.expected.append(series_desc(b))
                except NativeHistogram:
                    ev.native = True
            cmds.append(ev)
            i = j
            continue
        raise ValueError(f"line {i + 1}: unknown command {line!r}")
    return cmds


# ---- running against labkit ---------------------------------------------------------------------


def almost_equal(a: float, b: float) -> bool:
    """Prometheus's util/almost.Equal with its test epsilon (stale markers equal only each other)."""
    if _is_stale(a) or _is_stale(b):
        return _is_stale(a) and _is_stale(b)
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum, diff = abs(a) + abs(b), abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < EPSILON * _MIN_NORMAL
    return diff / min(abs_sum, sys.float_info.max) < EPSILON


def _key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


@dataclass
class State:
    store: object
    native: bool = False
    nameless: bool = False
    nhcb: set = field(default_factory=set)


def _load(state: State, load: Load) -> None:
    state.native |= load.native
    state.nhcb |= set(load.nhcb_names)
    latest = {_key(labels): (labels, values) for labels, values in load.series}  # a series defined twice: the last
    for labels, values in latest.values():
        name = labels.get("__name__")
        if not name:
            state.nameless = True
            continue
        rest = {k: v for k, v in labels.items() if k != "__name__"}
        for n, value in enumerate(values):
            if value is not None:
                try:
                    state.store.append(name, rest, n * load.interval, value)
                except ValueError:  # not after the series' last sample: Prometheus's appender refuses it too
                    pass


def _uses_native(expr: str, state: State) -> bool:
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    native_funcs = {"histogram_count", "histogram_sum", "histogram_avg", "histogram_fraction",
                    "histogram_stddev", "histogram_stdvar"}
    return bool(names & native_funcs) or bool(names & state.nhcb)


def run_eval(ev: Eval, state: State) -> tuple[str, str]:
    """(outcome, detail) of one eval against labkit."""
    from labkit.errors import QueryError
    from labkit.metrics import promql

    if ev.native or state.native or _uses_native(ev.expr, state):
        return "skipped", "native histograms"
    try:
        if ev.kind == "instant":
            kind = promql.result_type(ev.expr)
            if kind == "matrix":
                got = [(lab, list(v)) for lab, _, v in promql.instant_matrix(ev.expr, state.store, ev.start)]
                result, got_scalar = got, None
            else:
                res = promql.instant(ev.expr, state.store, ev.start)
                got_scalar = res[0][1] if kind == "scalar" else None
                result = [(lab, [v]) for lab, v in res]
        else:
            kind = promql.result_type(ev.expr)
            res = promql.range_(ev.expr, state.store, ev.start, ev.end, ev.step)
            got_scalar = None
            result = [(lab, list(zip(t, v))) for lab, t, v in res]
            if kind == "scalar":
                result = [({}, list(zip(res[0][1], res[0][2])))]
    except QueryError as exc:
        text = str(exc)
        if ev.mod == "fail":
            return "pass", f"failed as expected: {text}"
        if "is not supported" in text:
            return "unsupported", text
        if text.startswith("cannot parse PromQL"):
            return "unsupported", text
        if state.nameless:
            return "skipped", "series without a metric name"
        return "wrong", f"error: {text}"
    if ev.mod == "fail":
        return "wrong", "no error, but Prometheus fails this query"
    if state.nameless:
        return "skipped", "series without a metric name"
    outcome = _compare(ev, result, got_scalar)
    if outcome[0] == "pass" and ev.kind == "instant" and kind != "matrix" and ev.mod != "ordered":
        outcome = _range_mode(ev, state, kind)
    return outcome


def _range_mode(ev: Eval, state: State, kind: str) -> tuple[str, str]:
    """The instant eval again as a range query from t-1m to t+1m by 1m, its middle step compared (as Go does)."""
    from labkit.errors import QueryError
    from labkit.metrics import promql

    try:
        res = promql.range_(ev.expr, state.store, ev.start - 60, ev.start + 60, 60)
    except QueryError as exc:
        return "wrong", f"range mode: error: {exc}"
    middle = [(lab, [v[list(t).index(ev.start)]]) for lab, t, v in res if ev.start in list(t)]
    scalar = middle[0][1][0] if kind == "scalar" and middle else None
    outcome, detail = _compare(ev, middle, scalar)
    return (outcome, f"range mode: {detail}") if outcome != "pass" else (outcome, detail)


def _compare(ev: Eval, result: list, got_scalar) -> tuple[str, str]:
    if ev.scalar is not None:
        if got_scalar is None:
            if ev.kind == "range" and len(result) == 1 and not result[0][0]:
                pts = result[0][1]
                ok = all(almost_equal(v, ev.scalar) for _, v in pts)
                return ("pass", "") if ok else ("wrong", f"expected scalar {ev.scalar}, got {pts}")
            return "wrong", f"expected scalar {ev.scalar}, got {result}"
        ok = almost_equal(got_scalar, ev.scalar)
        return ("pass", "") if ok else ("wrong", f"expected scalar {ev.scalar}, got {got_scalar}")
    expected = {_key(lab): vals for lab, vals in ev.expected}
    got = {_key(lab): vals for lab, vals in result}
    if set(expected) != set(got):
        missing = [dict(k) for k in expected if k not in got]
        extra = [dict(k) for k in got if k not in expected]
        return "wrong", f"series differ: missing {missing[:3]}, unexpected {extra[:3]}"
    for key, exp in expected.items():
        act = got[key]
        if ev.kind == "range":
            want = [(ev.start + n * ev.step, v) for n, v in enumerate(exp) if v is not None]
            if len(want) != len(act) or any(abs(t1 - t2) > 1e-9 or not almost_equal(v2, v1)
                                            for (t1, v1), (t2, v2) in zip(want, act)):
                return "wrong", f"{dict(key)}: expected {want[:6]}, got {act[:6]}"
        elif ev.kind == "instant" and len(act) != 1:
            want = [v for v in exp if v is not None]
            if len(want) != len(act) or not all(almost_equal(a, b) for a, b in zip(act, want)):
                return "wrong", f"{dict(key)}: expected {want[:6]}, got {act[:6]}"
        elif not almost_equal(act[0], exp[0]):
            return "wrong", f"{dict(key)}: expected {exp[0]}, got {act[0]}"
    if ev.mod == "ordered":
        order_exp = [_key(lab) for lab, _ in ev.expected]
        order_got = [_key(lab) for lab, _ in result]
        if order_exp != order_got:
            return "wrong", f"order differs: expected {order_exp}, got {order_got}"
    return "pass", ""


def run_script(text: str, timeout: float) -> list[tuple[Eval, str, str]]:
    from labkit.sim.store import SeriesStore

    out = []
    state = State(SeriesStore())
    for cmd in parse_script(text):
        if cmd == "clear":
            state = State(SeriesStore())
        elif isinstance(cmd, Load):
            _load(state, cmd)
        else:
            signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                outcome, detail = run_eval(cmd, state)
            except _Timeout:
                outcome, detail = "crash", f"no answer within {timeout:g} s"
            except Exception as exc:  # noqa: BLE001 - a crash is what this counts
                outcome, detail = "crash", f"{type(exc).__name__}: {exc}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            out.append((cmd, outcome, detail))
    return out


def scripts(git_dir: Path, ref: str) -> dict[str, str]:
    """``{file name: text}`` of the test scripts at ``ref`` in the Prometheus git checkout ``git_dir``."""
    def git(*args):
        return subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True, text=True,
                              check=True).stdout

    names = [n for n in git("ls-tree", "--name-only", f"{ref}:{SCRIPTS}").split() if n.endswith(".test")]
    return {n: git("show", f"{ref}:{SCRIPTS}/{n}") for n in names}


OUTCOMES = ("pass", "wrong", "unsupported", "crash", "skipped")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", help="only these scripts (e.g. functions.test)")
    ap.add_argument("--git-dir", type=Path, default=DEFAULT_GIT_DIR,
                    help="a git checkout (bare is fine) of github.com/prometheus/prometheus")
    ap.add_argument("--ref", default=DEFAULT_REF, help="the tag or commit whose scripts to run")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds one eval may take before it counts as a hang")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every eval that did not pass")
    args = ap.parse_args(argv)
    if not (args.git_dir / "HEAD").exists() and not (args.git_dir / ".git").exists():
        print(f"no Prometheus git checkout at {args.git_dir}; clone github.com/prometheus/prometheus and pass "
              f"--git-dir", file=sys.stderr)
        return 2
    try:
        found = scripts(args.git_dir, args.ref)
    except subprocess.CalledProcessError as exc:
        print(f"cannot read {SCRIPTS} at {args.ref} in {args.git_dir}: {exc.stderr.strip()}", file=sys.stderr)
        return 2
    if args.files:
        unknown = sorted(set(args.files) - set(found))
        if unknown:
            print(f"no such script at {args.ref}: {unknown}; there are {sorted(found)}", file=sys.stderr)
            return 2
        found = {n: found[n] for n in args.files}
    total: Counter = Counter()
    print(f"Prometheus {args.ref} test scripts through labkit.metrics.promql")
    print(f"{'script':28} " + " ".join(f"{o:>11}" for o in OUTCOMES))
    for name, text in found.items():
        results = run_script(text, args.timeout)
        counts = Counter(outcome for _, outcome, _ in results)
        total.update(counts)
        print(f"{name:28} " + " ".join(f"{counts[o]:>11}" for o in OUTCOMES))
        if args.verbose:
            for ev, outcome, detail in results:
                if outcome not in ("pass", "skipped"):
                    print(f"    {outcome}: {name}:{ev.line} {ev.kind} {ev.expr}\n        {detail[:400]}")
    print(f"{'total':28} " + " ".join(f"{total[o]:>11}" for o in OUTCOMES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
