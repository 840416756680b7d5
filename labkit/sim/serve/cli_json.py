"""``-o json`` as the linkerd CLI (viz/cmd at version-2.20) writes it, for the CLI stand-in.

Shapes, from linkerd2's ``viz/cmd`` (``stat.go`` jsonStats, ``routes.go``
JSONRouteStats, ``edges.go`` edgesJSONStats, ``tap.go`` tapEvent):

* ``stat``: an indented array; ``success``/``rps``/latencies ``null`` for a
  resource without traffic, else numbers plus ``tcp_open_connections``,
  ``tcp_read_bytes_rate`` and ``tcp_write_bytes_rate`` (bytes per second over
  the window); no ``meshed``.
* ``routes``: ``{resource: [rows]}``; ``success``/``rps``, or with ``--to``
  ``effective_*`` and ``actual_*``; latencies are whole milliseconds.
* ``edges``: an indented array of src/dst/identities/``no_tls_reason``.
* ``tap``: one indented object per event, back to back; ``scheme`` is the
  protobuf enum's name (``HTTP``), headers and trailers are lists of
  ``{"name", "valueStr"}`` or ``null`` when there are none (a nil Go slice),
  ``resetErrorCode`` only when non-zero.

``linkerd viz top`` has no ``-o`` flag in 2.20 (it is an interactive
terminal view), so there is no JSON to write for it.

Numbers are written as Go's encoding/json writes float64: ``1`` not ``1.0``.
"""
from __future__ import annotations

import json
import math

__all__ = ["go_json", "stat_json", "edges_json", "routes_json", "tap_event", "GRPC_CODES"]

GRPC_CODES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
              "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
              "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated")


def _go_float(value: float) -> str:
    """A float64 as Go's encoding/json writes it: shortest digits, 'f' format unless the exponent is below -6
    or at least 21 ('e' format with a one-digit negative exponent written without its 0: 1e-7)."""
    if not math.isfinite(value):
        raise ValueError(f"JSON cannot hold {value!r} (Go's encoder refuses it too)")
    if value == 0:
        return "0"
    exp = math.floor(math.log10(abs(value)))
    if -6 <= exp < 21:
        import numpy as np

        return np.format_float_positional(value, unique=True, trim="-")
    text = repr(value)
    mantissa, _, power = text.partition("e")
    sign = "-" if power.startswith("-") else "+"
    return f"{mantissa}e{sign}{int(power.lstrip('+-')):02d}" if int(power.lstrip('+-')) >= 10 or sign == "+" \
        else f"{mantissa}e-{int(power.lstrip('+-'))}"


def _encode(value, level: int, indent: bool) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if isinstance(value, dict):
        items = [(json.dumps(str(k), ensure_ascii=False), v) for k, v in value.items()]
        if not items:
            return "{}"
        if not indent:
            return "{" + ",".join(f"{k}:{_encode(v, 0, False)}" for k, v in items) + "}"
        pad, inner = "  " * level, "  " * (level + 1)
        return "{\n" + ",\n".join(f"{inner}{k}: {_encode(v, level + 1, True)}" for k, v in items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if not indent:
            return "[" + ",".join(_encode(v, 0, False) for v in value) + "]"
        pad, inner = "  " * level, "  " * (level + 1)
        return "[\n" + ",\n".join(f"{inner}{_encode(v, level + 1, True)}" for v in value) + f"\n{pad}]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def go_json(value, *, indent: bool = True) -> str:
    """``json.MarshalIndent(v, "", "  ")`` (or ``json.Marshal``) as Go writes it: Go's float format, UTF-8
    text, ``<``, ``>`` and ``&`` escaped as Go's encoder escapes them."""
    return _encode(value, 0, indent)


def _num(v):
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _int(v):
    n = _num(v)
    return None if n is None else int(round(n))


def stat_json(table, resource: str, namespace: str) -> str:
    """``linkerd viz stat -o json``. ``table`` is the embedded stat table, built wide (byte rates included)."""
    from labkit.tables import resource_type

    kind = resource_type(resource.split("/", 1)[0]) or "deployment"
    out = []
    for row in table.to_dict("records"):
        success = _num(row.get("SUCCESS"))
        entry = {"namespace": row.get("NAMESPACE", namespace), "kind": kind, "name": row["NAME"]}
        if success is None:  # no stats for this resource: every stat null, the TCP ones absent
            entry.update(success=None, rps=None, latency_ms_p50=None, latency_ms_p95=None, latency_ms_p99=None)
        else:
            entry.update(success=success, rps=_num(row.get("RPS")) or 0.0,
                         latency_ms_p50=_int(row.get("LATENCY_P50")) or 0,
                         latency_ms_p95=_int(row.get("LATENCY_P95")) or 0,
                         latency_ms_p99=_int(row.get("LATENCY_P99")) or 0)
            if kind not in ("authority", "serverauthorization", "authorizationpolicy", "httproute"):
                entry["tcp_open_connections"] = _int(row.get("TCP_CONN")) or 0
                entry["tcp_read_bytes_rate"] = _num(row.get("READ_BYTES/SEC")) or 0.0
                entry["tcp_write_bytes_rate"] = _num(row.get("WRITE_BYTES/SEC")) or 0.0
        for extra, key in (("APEX", "apex"), ("LEAF", "leaf"), ("WEIGHT", "weight")):
            if row.get(extra):
                entry[key] = str(row[extra])
        out.append(entry)
    return go_json(out) + "\n"


def edges_json(table) -> str:
    out = [{"src": r["SRC"], "src_namespace": r["SRC_NS"], "dst": r["DST"], "dst_namespace": r["DST_NS"],
            "client_id": r.get("CLIENT_ID", ""), "server_id": r.get("SERVER_ID", ""),
            "no_tls_reason": "" if r.get("SECURED") == "\u221a" else r.get("SECURED", "")}
           for r in table.to_dict("records")]
    return go_json(out) + "\n"


def routes_json(table, resource: str, to: bool) -> str:
    """``linkerd viz routes -o json``; with ``--to`` the table must be the wide one (effective and actual)."""
    rows = []
    for r in table.to_dict("records"):
        entry = {"route": r.get("ROUTE", ""), "authority": r.get("SERVICE", r.get("AUTHORITY", ""))}
        if to:
            entry.update(effective_success=_num(r.get("EFFECTIVE_SUCCESS", r.get("SUCCESS"))) or 0.0,
                         effective_rps=_num(r.get("EFFECTIVE_RPS", r.get("RPS"))) or 0.0,
                         actual_success=_num(r.get("ACTUAL_SUCCESS", r.get("SUCCESS"))) or 0.0,
                         actual_rps=_num(r.get("ACTUAL_RPS", r.get("RPS"))) or 0.0)
        else:
            entry.update(success=_num(r.get("SUCCESS")) or 0.0, rps=_num(r.get("RPS")) or 0.0)
        entry.update(latency_ms_p50=_int(r.get("LATENCY_P50")) or 0, latency_ms_p95=_int(r.get("LATENCY_P95")) or 0,
                     latency_ms_p99=_int(r.get("LATENCY_P99")) or 0)
        rows.append(entry)
    return go_json({resource: rows}) + "\n"


# ---- tap ----------------------------------------------------------------------------------------------


def _duration(us: float | None) -> dict:
    """A protobuf Duration as encoding/json writes it (seconds/nanos, each omitted when zero)."""
    nanos = int(round((us or 0.0) * 1000.0))
    secs, nanos = divmod(nanos, 1_000_000_000)
    out = {}
    if secs:
        out["seconds"] = secs
    if nanos:
        out["nanos"] = nanos
    return out


def _peer(addr: str, labels: dict | None) -> dict:
    host, _, port = addr.rpartition(":")
    return {"ip": host.strip("[]"), "port": int(port or 0), "metadata": dict(labels) if labels else None}


def _headers(pairs) -> list | None:
    """Headers or trailers: ``[{"name", "valueStr"}]``, or None (JSON null) when there are none."""
    out = [{"name": str(name), "valueStr": str(value)} for name, value in (pairs or [])]
    return out or None


def tap_event(row: dict, grpc: bool) -> dict:
    """One tap row (req / rsp / end) as the object ``linkerd viz tap -o json`` prints.

    ``row["_headers"]`` / ``row["_trailers"]`` (pairs, from the tap session)
    are the headers the proxy saw; without them a gRPC stream still carries
    ``content-type: application/grpc``.
    """
    base, _, stream = str(row.get("id", "0:0")).partition(":")
    ident = {"base": int(base or 0), "stream": int(stream or 0)}
    event: dict = {"source": _peer(row["src"], row.get("src_labels")),
                   "destination": _peer(row["dst"], row.get("dst_labels")),
                   "routeMeta": {"route": row["rt_route"]} if row.get("rt_route") else None,
                   "proxyDirection": "INBOUND" if row.get("proxy") == "in" else "OUTBOUND"}
    kind = row.get("type")
    default = [("content-type", "application/grpc")] if grpc else []
    if kind == "req":
        event["requestInitEvent"] = {"id": ident, "method": row.get("method"), "scheme": "HTTP",
                                     "authority": row.get("authority"), "path": row.get("path"),
                                     "headers": _headers(row.get("_headers", default))}
    elif kind == "rsp":
        event["responseInitEvent"] = {"id": ident, "sinceRequestInit": _duration(row.get("latency_us")),
                                      "httpStatus": int(row.get("status") or 0),
                                      "headers": _headers(row.get("_headers", default))}
    else:
        end: dict = {"id": ident, "sinceRequestInit": _duration(row.get("latency_us")),
                     "sinceResponseInit": _duration(row.get("duration_us")),
                     "responseBytes": int(row.get("response_length") or 0)}
        grpc_status = row.get("grpc_status")
        code = 0
        trailers = row.get("_trailers")
        if grpc_status is not None and grpc_status == grpc_status:
            code = GRPC_CODES.index(grpc_status) if grpc_status in GRPC_CODES else int(str(grpc_status)[5:-1])
            if trailers is None:
                trailers = [("grpc-status", str(code))]
        end["trailers"] = _headers(trailers)
        end["grpcStatusCode"] = code
        reset = row.get("reset_error")
        if reset is not None and reset == reset and int(reset):
            end["resetErrorCode"] = int(reset)
        event["responseEndEvent"] = end
    return event
