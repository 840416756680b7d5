"""Parsers for the real ``linkerd`` CLI's output, into labkit's shared tables.

The kube backend shells out to ``linkerd viz stat|routes|tap|edges -o json``
and ``linkerd check -o json``; these pure functions turn that output into the
same DataFrames (and :class:`~labkit.tables.CheckReport`) the embedded mesh
returns, so ``labkit.cli_text`` prints them back exactly as the CLI did.
No subprocess here: the backend wires the commands and passes the text.

Formats: reference/linkerd-formats.md §2 (viz JSON shapes) and §6 (check).
"""
from __future__ import annotations

import base64
import json
import math
import re
from typing import Any, Iterator, Mapping

import pandas as pd

from labkit.tables import (
    SHORT_NAMES,
    Check,
    CheckReport,
    HINT_BASE_URL,
    new_table,
    resource_type,
)

__all__ = [
    "parse_stat_json", "parse_stat_text", "parse_routes_json", "parse_tap_json", "parse_edges_json",
    "parse_check_json", "parse_check_text", "iter_json_documents", "GRPC_CODE_NAMES",
]

#: Go's ``codes.Code.String()`` names, which `tap` prints as ``grpc-status=<Name>``.
GRPC_CODE_NAMES = (
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
)

_NAN = float("nan")


def _grpc_name(code: int) -> str:
    """``codes.Code(n).String()``: the name, or ``Code(n)`` for codes gRPC does not define."""
    return GRPC_CODE_NAMES[code] if 0 <= code < len(GRPC_CODE_NAMES) else f"Code({code})"


def iter_json_documents(text: str) -> Iterator[Any]:
    """Yield each JSON value of a concatenation (``tap -o json`` prints indented objects back to back).

    Not NDJSON and not an array, so a streaming decoder walks it. Blank text
    yields nothing.
    """
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not linkerd JSON output at character {exc.pos}: {exc.msg}") from None
        yield value


def _num(value: Any) -> float:
    """A JSON number (or null) as a float, null → NaN."""
    return _NAN if value is None else float(value)


def _lookup(table: Mapping[str, Any] | None, namespace: str, name: str) -> Any:
    """Find a per-resource value given as ``{"name": v}`` or ``{"ns/name": v}``."""
    if not table:
        return None
    for key in (f"{namespace}/{name}", name):
        if key in table:
            return table[key]
    return None


# --------------------------------------------------------------------------- stat


def parse_stat_json(
    text: str,
    kind: str | None = None,
    meshed: Mapping[str, str] | None = None,
    *,
    status: Mapping[str, str] | None = None,
    all_namespaces: bool = False,
    wide: bool = False,
    window: str | None = None,
) -> pd.DataFrame:
    """``linkerd viz stat -o json`` (an indented array) → the ``stat`` table.

    The JSON has no MESHED count (and no pod STATUS), so pass them as
    ``meshed={"web": "1/1"}`` / ``status={"web-5f8…": "Running"}`` (keys
    ``name`` or ``namespace/name``); unknown ones print ``-``. ``kind`` is
    the resource type asked for (``"deploy"``, ``"po"``, ``"svc"``,
    ``"trafficsplit"``…); by default the entries' own ``kind``. Rows without
    traffic (``success: null``) get SUCCESS and latencies NaN and RPS 0.
    """
    entries = json.loads(text) if text.strip() else []
    if not isinstance(entries, list):
        raise ValueError("`linkerd viz stat -o json` output should be a JSON array")
    rtype = resource_type(kind) or (resource_type(entries[0].get("kind")) if entries else "deployment")
    rows = []
    for entry in entries:
        ns, name = entry.get("namespace", ""), entry.get("name", "")
        traffic = entry.get("success") is not None
        row: dict[str, Any] = {
            "NAMESPACE": ns,
            "NAME": name,
            "SUCCESS": _num(entry.get("success")),
            "RPS": _num(entry.get("rps")) if traffic else 0.0,
            "LATENCY_P50": _num(entry.get("latency_ms_p50")) if traffic else _NAN,
            "LATENCY_P95": _num(entry.get("latency_ms_p95")) if traffic else _NAN,
            "LATENCY_P99": _num(entry.get("latency_ms_p99")) if traffic else _NAN,
            "TCP_CONN": entry.get("tcp_open_connections") or 0,
            "READ_BYTES/SEC": entry.get("tcp_read_bytes_rate") or 0.0,
            "WRITE_BYTES/SEC": entry.get("tcp_write_bytes_rate") or 0.0,
        }
        row["MESHED"] = entry.get("meshed") or _lookup(meshed, ns, name) or "-"
        if rtype == "pod":
            row["STATUS"] = _lookup(status, ns, name) or ""
        if rtype == "trafficsplit" or "leaf" in entry:
            row.update(APEX=entry.get("apex", ""), LEAF=entry.get("leaf", ""), WEIGHT=entry.get("weight", ""))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not all_namespaces and "NAMESPACE" in frame.columns:
        frame = frame.drop(columns=["NAMESPACE"])
    attrs: dict[str, Any] = {"resource": rtype, "all_namespaces": all_namespaces, "wide": wide}
    if window is not None:
        attrs["window"] = window
    if not all_namespaces and entries:
        attrs["namespace"] = entries[0].get("namespace", "")
    return new_table("stat", frame, **attrs)


_PERCENT = re.compile(r"^(-?\d+(?:\.\d+)?)%$")
_SUFFIXED = re.compile(r"^(-?\d+(?:\.\d+)?)(rps|ms|B/s)$")


def _stat_cell(text: str) -> Any:
    """``100.00%`` → 1.0, ``2.0rps`` → 2.0, ``123ms`` → 123.0, ``-`` → NaN, other text unchanged."""
    if text == "-":
        return _NAN
    match = _PERCENT.match(text)
    if match:
        return float(match.group(1)) / 100.0
    match = _SUFFIXED.match(text)
    if match:
        return float(match.group(1))
    return text


def parse_stat_text(text: str, kind: str | None = None) -> pd.DataFrame:
    """``linkerd viz stat`` table text → the ``stat`` table (a fallback when JSON is unavailable).

    Columns are split on whitespace (no CLI cell contains a space). Several
    tables (one per resource type) are concatenated; ``No traffic found.``
    gives an empty table. ``kind`` defaults to what the header implies.
    """
    body = [line for line in text.splitlines() if line.strip() and line.strip() != "No traffic found."]
    if not body:
        return new_table("stat", [], resource=kind)
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    for line in body:
        fields = line.split()
        if fields[0] in ("NAME", "NAMESPACE") and "SUCCESS" in fields:
            header = fields
            continue
        if not header:
            raise ValueError("stat table text without a header line")
        row: dict[str, Any] = {}
        for col, cell in zip(header, fields):
            value = _stat_cell(cell)
            if col in ("SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "READ_BYTES/SEC", "WRITE_BYTES/SEC"):
                row[col] = value if isinstance(value, float) else _NAN
            elif col == "TCP_CONN":
                row[col] = int(cell) if cell.isdigit() else 0
            else:
                row[col] = cell
        if isinstance(row.get("SUCCESS"), float) and math.isnan(row["SUCCESS"]):
            row["RPS"] = 0.0
        rows.append(row)
    rtype = kind
    if rtype is None:
        rtype = "trafficsplit" if "APEX" in header else ("pod" if "STATUS" in header else None)
    return new_table(
        "stat", rows, resource=rtype, all_namespaces="NAMESPACE" in header,
        wide="READ_BYTES/SEC" in header,
    )


# --------------------------------------------------------------------------- routes


def parse_routes_json(text: str, wide: bool = False, *, authority: bool = False) -> pd.DataFrame:
    """``linkerd viz routes -o json`` (an object keyed by ``"deploy/web"``) → the ``routes`` table.

    With ``--to`` the JSON has ``effective_*`` / ``actual_*`` keys; ``wide``
    keeps both (EFFECTIVE_/ACTUAL_ columns), otherwise the effective numbers
    become SUCCESS / RPS as the table view shows them. The JSON writes a
    route without traffic as success 0 and rps 0: those rows get NaN success
    and latencies (the table's ``-``). ``authority=True`` names the column
    AUTHORITY (the target was an authority, not a service).
    """
    data = json.loads(text) if text.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("`linkerd viz routes -o json` output should be a JSON object keyed by resource")
    rows = []
    for resource, entries in data.items():
        for entry in entries or []:
            eff_s = entry.get("effective_success", entry.get("success"))
            eff_r = entry.get("effective_rps", entry.get("rps"))
            act_s, act_r = entry.get("actual_success"), entry.get("actual_rps")
            traffic = bool(eff_r) or bool(act_r)
            row: dict[str, Any] = {
                "ROUTE": entry.get("route", ""),
                ("AUTHORITY" if authority else "SERVICE"): entry.get("authority", ""),
                "LATENCY_P50": _num(entry.get("latency_ms_p50")) if traffic else _NAN,
                "LATENCY_P95": _num(entry.get("latency_ms_p95")) if traffic else _NAN,
                "LATENCY_P99": _num(entry.get("latency_ms_p99")) if traffic else _NAN,
                "RESOURCE": resource,
            }
            if wide:
                row.update(
                    EFFECTIVE_SUCCESS=_num(eff_s) if traffic else _NAN, EFFECTIVE_RPS=_num(eff_r or 0),
                    ACTUAL_SUCCESS=_num(act_s) if traffic else _NAN, ACTUAL_RPS=_num(act_r or 0),
                )
            else:
                row.update(SUCCESS=_num(eff_s) if traffic else _NAN, RPS=_num(eff_r or 0))
            rows.append(row)
    attrs: dict[str, Any] = {"wide": wide, "authority": authority}
    if len(data) == 1:
        attrs["resource"] = next(iter(data))
    return new_table("routes", rows, **attrs)


# --------------------------------------------------------------------------- tap


def _duration_us(value: Mapping[str, Any] | None) -> float:
    """A protobuf Duration (``{"seconds": s, "nanos": n}``, zero fields omitted) in microseconds."""
    if not value:
        return 0.0
    nanos = int(value.get("seconds", 0)) * 1_000_000_000 + int(value.get("nanos", 0))
    return nanos / 1000.0


def _address(peer: Mapping[str, Any] | None) -> str:
    """``ip:port`` as the CLI prints it, with IPv6 in brackets (``[ff01::1]:0``)."""
    if not peer:
        return ":0"
    ip, port = str(peer.get("ip", "")), peer.get("port", 0)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _resource_of(labels: Mapping[str, str], kind: str | None) -> str | None:
    """``src_res``: the peer's ``kind`` resource (``deploy/web``), else another owner, else its pod."""
    kinds = [resource_type(kind)] if kind else []
    kinds += ["deployment", "statefulset", "daemonset", "job", "cronjob", "replicationcontroller", "replicaset"]
    for canon in kinds:
        if canon and labels.get(canon):
            return f"{SHORT_NAMES.get(canon, canon)}/{labels[canon]}"
    if labels.get("pod"):
        return f"pod/{labels['pod']}"
    return None


def _header_value(header: Mapping[str, Any]) -> str:
    if "valueStr" in header:
        return str(header["valueStr"])
    try:
        return base64.b64decode(header.get("valueBin", "")).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return ""


def _is_grpc(headers: Any) -> bool:
    """A stream is gRPC when it carries ``content-type: application/grpc…`` or a ``grpc-status`` trailer."""
    for header in headers or []:
        name = str(header.get("name", "")).lower()
        if name == "grpc-status" or (name == "content-type" and _header_value(header).startswith("application/grpc")):
            return True
    return False


def parse_tap_json(text: str, *, wide: bool = False, resource: str | None = None) -> pd.DataFrame:
    """``linkerd viz tap -o json`` (indented objects back to back) → the ``tap`` table, one row per event.

    ``tls`` is the source's label for inbound events and the destination's
    for outbound (as the text view prints it). ``end`` rows carry both the
    time since the request started (``latency_us``, what `top` uses) and
    since the response started (``duration_us``, what tap prints). The JSON
    always has ``grpcStatusCode`` (0 even for plain HTTP), so a 0 only counts
    as gRPC ``OK`` when the stream's headers or trailers say gRPC. ``resource``
    (the tap target's type) picks which owner ``src_res``/``dst_res`` name.
    """
    rows: list[dict[str, Any]] = []
    grpc_streams: set[tuple[str, str, str]] = set()
    for event in iter_json_documents(text):
        src_meta = dict(event.get("source", {}).get("metadata") or {})
        dst_meta = dict(event.get("destination", {}).get("metadata") or {})
        direction = {"INBOUND": "in", "OUTBOUND": "out"}.get(str(event.get("proxyDirection", "")).upper())
        tls = src_meta.get("tls", "") if direction == "in" else dst_meta.get("tls", "") if direction == "out" else ""
        route = (event.get("routeMeta") or {}).get("route")
        row: dict[str, Any] = {
            "proxy": direction, "src": _address(event.get("source")), "dst": _address(event.get("destination")),
            "tls": tls, "src_res": _resource_of(src_meta, resource), "src_ns": src_meta.get("namespace"),
            "dst_res": _resource_of(dst_meta, resource), "dst_ns": dst_meta.get("namespace"), "rt_route": route,
            "src_labels": src_meta or None, "dst_labels": dst_meta or None,
        }
        if "requestInitEvent" in event:
            body = event["requestInitEvent"]
            row.update(type="req", method=body.get("method"), authority=body.get("authority"), path=body.get("path"))
        elif "responseInitEvent" in event:
            body = event["responseInitEvent"]
            row.update(type="rsp", status=body.get("httpStatus"), latency_us=_duration_us(body.get("sinceRequestInit")))
        elif "responseEndEvent" in event:
            body = event["responseEndEvent"]
            row.update(
                type="end",
                latency_us=_duration_us(body.get("sinceRequestInit")),
                duration_us=_duration_us(body.get("sinceResponseInit")),
                response_length=body.get("responseBytes", 0),
            )
        else:
            continue
        ident = body.get("id") or {}
        row["id"] = f"{ident.get('base', 0)}:{ident.get('stream', 0)}"
        stream = (row["src"], row["dst"], row["id"])
        if _is_grpc(body.get("headers")) or _is_grpc(body.get("trailers")):
            grpc_streams.add(stream)
        if row["type"] == "end":
            code = body.get("grpcStatusCode")
            if body.get("resetErrorCode"):
                row["reset_error"] = body["resetErrorCode"]
            elif code is not None and (code != 0 or stream in grpc_streams):
                row["grpc_status"] = _grpc_name(int(code))
            grpc_streams.discard(stream)
        rows.append(row)
    return new_table("tap", rows, wide=wide)


# --------------------------------------------------------------------------- edges


def parse_edges_json(text: str, *, wide: bool = False) -> pd.DataFrame:
    """``linkerd viz edges -o json`` (an indented array) → the ``edges`` table.

    SECURED is ``√`` when ``no_tls_reason`` is empty, else that reason, as the
    table view prints it.
    """
    entries = json.loads(text) if text.strip() else []
    rows = [
        {
            "SRC": e.get("src", ""), "DST": e.get("dst", ""),
            "SRC_NS": e.get("src_namespace", ""), "DST_NS": e.get("dst_namespace", ""),
            "CLIENT_ID": e.get("client_id", ""), "SERVER_ID": e.get("server_id", ""),
            "SECURED": e.get("no_tls_reason") or "\u221a",
        }
        for e in entries
    ]
    return new_table("edges", rows, wide=wide)


# --------------------------------------------------------------------------- check


def _anchor(hint: str | None) -> str | None:
    """Keep just the anchor of ``https://linkerd.io/2/checks/#anchor`` (other URLs stay whole)."""
    if not hint:
        return None
    return hint[len(HINT_BASE_URL):] if hint.startswith(HINT_BASE_URL) else hint


def _categories(doc: Mapping[str, Any]) -> list[tuple[str, list[Check]]]:
    out = []
    for category in doc.get("categories") or []:
        checks = [
            Check(c.get("description", ""), c.get("result", "success"), _anchor(c.get("hint")), c.get("error"))
            for c in category.get("checks") or []
        ]
        out.append((category.get("categoryName", ""), checks))
    return out


def parse_check_json(text: str, *, header: bool = True) -> CheckReport:
    """``linkerd check -o json`` → :class:`~labkit.tables.CheckReport`.

    The main command prints one JSON document for the core checks and, when
    extensions are installed, one more per extension run (back to back):
    the first becomes ``categories``, the rest ``extensions``.
    """
    docs = [d for d in iter_json_documents(text) if isinstance(d, dict)]
    if not docs:
        raise ValueError("no `linkerd check -o json` document in the text")
    extensions = [cat for doc in docs[1:] for cat in _categories(doc)]
    return CheckReport(_categories(docs[0]), extensions=extensions, header=header)


_MARK_STATUS = {"\u221a": "ok", "\u203c": "warn", "\u00d7": "fail", "\u2714": "ok", "\u2718": "fail"}
_HINT_LINE = re.compile(r"^    see (\S+) for hints$", re.IGNORECASE)


def parse_check_text(text: str) -> CheckReport:
    """``linkerd check`` table text → :class:`~labkit.tables.CheckReport` (the banner decides ``header``)."""
    lines = text.splitlines()
    core: list[tuple[str, list[Check]]] = []
    extensions: list[tuple[str, list[Check]]] = []
    target = core
    header = False
    pending: dict[str, Any] | None = None
    checks: list[Check] | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None and checks is not None:
            checks.append(Check(**pending))
        pending = None

    for index, line in enumerate(lines):
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        if line in ("Linkerd core checks", "Linkerd extensions checks") and set(nxt) == {"="}:
            flush()
            header = header or line == "Linkerd core checks"
            target = core if line == "Linkerd core checks" else extensions
            continue
        if line and set(line) <= {"=", "-"}:
            continue
        if line.startswith("Status check results are"):
            flush()
            break
        if nxt and set(nxt) == {"-"} and len(nxt) == len(line.encode("utf-8")):
            flush()
            checks = []
            target.append((line, checks))
            continue
        if line[:1] in _MARK_STATUS and line[1:2] == " ":
            flush()
            pending = {"description": line[2:], "status": _MARK_STATUS[line[0]], "hint_anchor": None, "message": None}
            continue
        if pending is not None and line.startswith("    "):
            hint = _HINT_LINE.match(line)
            if hint:
                pending["hint_anchor"] = _anchor(hint.group(1))
            elif pending["message"] is None:
                pending["message"] = line[4:]
            else:
                pending["message"] += "\n" + line[4:]
            continue
        flush()
    flush()
    return CheckReport(core, extensions=extensions, header=header)


# --------------------------------------------------------------------------- running the CLI

#: How to get the real CLI, for the error when it is missing.
INSTALL_HINT = (
    "install it with `curl --proto '=https' --tlsv1.2 -sSfL https://run.linkerd.io/install-edge | sh` "
    "and add $HOME/.linkerd2/bin to PATH (https://linkerd.io/2/getting-started/), or point LABKIT_LINKERD "
    "at a linkerd binary"
)


class LinkerdCLIError(Exception):
    """The ``linkerd`` CLI is missing, or a command failed: the message names the command and its stderr."""


def find_linkerd(extension: Mapping[str, Any] | None = None) -> list[str]:
    """The command that runs ``linkerd``: ``LABKIT_LINKERD``, else a served mesh's stand-in, else ``PATH``.

    ``LABKIT_LINKERD`` may hold a path or a command line (``"python -m labkit linkerd"``).
    """
    import os
    import shlex
    import shutil

    configured = os.environ.get("LABKIT_LINKERD")
    if configured:
        argv = shlex.split(configured)
        if argv and (shutil.which(argv[0]) or os.path.isfile(argv[0])):
            return argv
        raise LinkerdCLIError(f"LABKIT_LINKERD={configured!r} does not name a runnable linkerd; {INSTALL_HINT}")
    stand_in = (extension or {}).get("linkerd")
    if stand_in and os.path.isfile(stand_in):
        return [stand_in]
    found = shutil.which("linkerd") or next(
        (p for p in (os.path.expanduser("~/.linkerd2/bin/linkerd"),) if os.path.isfile(p)), None)
    if found:
        return [found]
    raise LinkerdCLIError(f"the linkerd CLI was not found on PATH; {INSTALL_HINT}")


def run(cli: list[str], args: list[str], *, context: str, kubeconfig: str | None = None, stdin: str | None = None,
        timeout: float = 300.0, ok_codes: tuple[int, ...] = (0,)) -> tuple[str, str, int]:
    """Run ``linkerd --context CONTEXT ARGS``: (stdout, stderr, exit code); other codes raise LinkerdCLIError."""
    import subprocess

    argv = [*cli, "--context", context, *(["--kubeconfig", kubeconfig] if kubeconfig else []), *args]
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise LinkerdCLIError(f"cannot run {cli[0]!r}; {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise LinkerdCLIError(f"`linkerd {' '.join(args)}` did not finish within {timeout:g}s") from None
    if proc.returncode not in ok_codes:
        detail = (proc.stderr or proc.stdout).strip()
        raise LinkerdCLIError(f"`linkerd {' '.join(args)}` failed (exit {proc.returncode}): {detail}")
    return proc.stdout, proc.stderr, proc.returncode


def start(cli: list[str], args: list[str], *, context: str, kubeconfig: str | None = None):
    """Start a long-running command (``viz tap``) whose output is collected when it is stopped."""
    import subprocess

    argv = [*cli, "--context", context, *(["--kubeconfig", kubeconfig] if kubeconfig else []), *args]
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise LinkerdCLIError(f"cannot run {cli[0]!r}; {INSTALL_HINT}") from None


def report_lines(stderr: str) -> list[str]:
    """`linkerd inject`'s report (stderr) as lines: warnings first, then one line per resource."""
    return [line for line in stderr.splitlines() if line.strip()]
