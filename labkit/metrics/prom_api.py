"""Prometheus's HTTP query API (``/api/v1/query``, ``/api/v1/query_range``) as labkit DataFrames.

Both directions live here so they cannot drift apart: the kube backend reads
a real (or served) Prometheus's JSON into the same frames ``mesh.query``
returns on the embedded mesh, and the served embedded mesh answers with the
JSON a real Prometheus sends (reference: linkerd-formats.md §4.3 — values as
strings, ``NaN`` allowed, ``vector`` vs ``matrix``).
"""
from __future__ import annotations

import json
import urllib.parse
import urllib.request

from labkit.errors import QueryError
from labkit.metrics import promql


def _float(text: str) -> float:
    return float(text)  # Prometheus writes "NaN", "+Inf", "-Inf", which float() reads


def _string(value: float) -> str:
    """A sample value as Prometheus writes it in JSON (Go's FormatFloat 'f', -1: "0.0000001", "1e+21" never)."""
    return promql.format_value(float(value))


def frame_from_json(body: dict):
    """A decoded API response → the DataFrame ``mesh.query`` / ``mesh.query_range`` returns."""
    if body.get("status") != "success":
        raise QueryError(f"Prometheus refused the query: {body.get('errorType', '')}: {body.get('error', body)}")
    data = body["data"]
    kind, result = data["resultType"], data["result"]
    if kind == "matrix":
        rows = [(r["metric"], [float(t) for t, _ in r["values"]], [_float(v) for _, v in r["values"]]) for r in result]
        return promql.to_frame(rows, kind="range")
    if kind == "vector":
        return promql.to_frame([(r["metric"], _float(r["value"][1])) for r in result], kind="instant")
    if kind == "scalar":
        return promql.to_frame([({}, _float(result[1]))], kind="instant")
    raise QueryError(f"unexpected Prometheus result type {kind!r}")


def instant_json(result, time: float) -> dict:
    """An instant-query result (list of (labels, value)) as Prometheus's JSON body."""
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": dict(labels), "value": [time, _string(value)]} for labels, value in result]}}


def range_json(result) -> dict:
    """A range-query result (list of (labels, times, values)) as Prometheus's JSON body."""
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": dict(labels), "values": [[float(t), _string(v)] for t, v in zip(times, values)]}
        for labels, times, values in result]}}


def get(base_url: str, path: str, params: dict, timeout: float = 10.0) -> dict:
    """GET ``base_url + path`` with query parameters; the decoded JSON (errors carry Prometheus's message)."""
    url = base_url.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as err:  # 400/422 carry the JSON error body
        try:
            return json.load(err)
        except ValueError:
            raise QueryError(f"Prometheus at {base_url} answered HTTP {err.code} for {path}") from None


def query(base_url: str, expr: str, time: float):
    return frame_from_json(get(base_url, "/api/v1/query", {"query": expr, "time": f"{time:.3f}"}))


def query_range(base_url: str, expr: str, start: float, end: float, step: float):
    return frame_from_json(get(base_url, "/api/v1/query_range",
                               {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}))
