"""The ``linkerd`` CLI of the served embedded mesh: real commands, real output formats.

No ``linkerd`` binary exists where the embedded mesh runs (Binder, CI), so
``serve()`` provides a small ``linkerd`` executable (``labkit.sim.serve.shim``)
that sends its argv here and prints what this module answers. The answers use
the real CLI's formats (reference/linkerd-formats.md §2, §5, §6), computed
from the embedded mesh's state, so the kube backend's CLI-running and parsing
code runs for real against them:

=============================================  =============================================
``linkerd version [--client] [--short]``        ``Client version: edge-25.4.4`` / ``Server version: …``
``linkerd check [--pre|--proxy] [-n NS]``       table text, or ``-o json`` documents; exit 1 on failure
``linkerd install --crds`` / ``install``        the YAML the embedded installer applies
``linkerd viz install``                         the viz YAML
``linkerd inject|uninject [flags] FILE|-``      YAML on stdout, the report on stderr
``linkerd profile [--template|--open-api F] S``  a ServiceProfile as YAML (or JSON with ``-o json``)
``linkerd diagnostics proxy-metrics -n NS T``   one ``# POD`` block per pod
``linkerd viz tap T [-o json]``                 a stream of events until stopped (see ``http.py``)
``linkerd viz stat|edges ... -o json``          the JSON the real CLI prints
``linkerd viz stat-outbound|stat-inbound|authz``  the 2.17+ verbs' tables (``-o json`` for the stat ones)
=============================================  =============================================

Everything runs under the served mesh's lock, like any API request.
"""
from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass, field

from labkit.errors import LabkitError


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    code: int = 0
    tap: dict | None = None  # a tap to stream: {"target", "namespace", "options", "output"}
    extra: dict = field(default_factory=dict)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # never exit the server
        raise CLIError(f"Error: {message}")


class CLIError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="linkerd", add_help=False)
    p.add_argument("--context")
    p.add_argument("--kubeconfig")
    p.add_argument("-n", "--namespace")
    p.add_argument("-L", "--linkerd-namespace", default="linkerd")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _opts(args: list[str], spec: dict) -> tuple[dict, list[str]]:
    """Parse ``args`` with ``spec`` {flag: takes_value}; flags may sit anywhere, ``--x=v`` allowed."""
    opts: dict = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=")
            if name not in spec:
                raise CLIError(f"Error: unknown flag: {name}")
            key = spec[name][0]
            if spec[name][1]:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise CLIError(f"Error: flag needs an argument: {name}")
                    value = args[i]
                opts[key] = value
            else:
                opts[key] = value.lower() not in ("false", "0") if eq else True
        else:
            positional.append(a)
        i += 1
    return opts, positional


COMMON = {"-n": ("namespace", True), "--namespace": ("namespace", True), "-o": ("output", True),
          "--output": ("output", True), "--context": ("context", True), "--kubeconfig": ("kubeconfig", True),
          "-L": ("linkerd_namespace", True), "--linkerd-namespace": ("linkerd_namespace", True)}


def run(mesh, argv: list[str], stdin: str | None = None, files: dict | None = None) -> Result:
    """Answer one ``linkerd`` invocation on the served mesh."""
    files = files or {}
    try:
        return _run(mesh, list(argv), stdin, files)
    except CLIError as exc:
        return Result(stderr=str(exc) + "\n", code=1)
    except LabkitError as exc:
        return Result(stderr=f"Error: {exc}\n", code=1)
    except (ValueError, KeyError, TypeError) as exc:
        return Result(stderr=f"Error: {exc}\n", code=1)


def _read(path: str, stdin: str | None, files: dict) -> str:
    if path == "-":
        return stdin or ""
    if path in files:
        return files[path]
    raise CLIError(f"Error: open {path}: no such file or directory")


def _run(mesh, argv: list[str], stdin: str | None, files: dict) -> Result:
    from labkit.sim import linkerd as l5d

    if not argv:
        return Result(stderr="linkerd manages the Linkerd service mesh.\n\nUsage:\n  linkerd [command]\n", code=1)
    cmd, rest = argv[0], argv[1:]
    if cmd == "version":
        opts, _ = _opts(rest, {**COMMON, "--client": ("client", False), "--short": ("short", False),
                               "--proxy": ("proxy", False)})
        if opts.get("short"):
            return Result(stdout=l5d.LINKERD_VERSION + "\n")
        out = f"Client version: {l5d.LINKERD_VERSION}\n"
        if not opts.get("client"):
            installed = mesh.cluster.control_plane()["linkerd"] or bool(mesh.cluster.list("Deployment", l5d.CONTROL_PLANE_NS))
            out += f"Server version: {l5d.LINKERD_VERSION if installed else 'unavailable'}\n"
        return Result(stdout=out)
    if cmd == "check":
        opts, _ = _opts(rest, {**COMMON, "--pre": ("pre", False), "--proxy": ("proxy", False),
                               "--wait": ("wait", True), "--expected-version": ("expected", True),
                               "--crds": ("crds", False)})
        report = mesh.check(pre=bool(opts.get("pre")), proxy=bool(opts.get("proxy")), namespace=opts.get("namespace"))
        if opts.get("output") == "json":
            text = "\n".join(json.dumps(doc, indent=2, ensure_ascii=False) for doc in report.to_json()) + "\n"
        elif opts.get("output") == "short":
            text = report.render() if not report.ok or report.warnings() else "Status check results are \u221a\n"
        else:
            text = report.render()
        return Result(stdout=text, code=0 if report.ok else 1)
    if cmd == "install":
        from labkit.manifests import dump
        from labkit.sim.linkerd import install

        opts, _ = _opts(rest, {**COMMON, "--crds": ("crds", False), "--ignore-cluster": ("ignore", False),
                               "--set": ("set", True), "--ha": ("ha", False)})
        if opts.get("crds"):
            return Result(stdout=dump(install.crd_objects()))
        install.register(mesh.cluster)  # the control plane's in-process parts (webhooks answer once pods run)
        return Result(stdout=dump(install.control_plane_objects(mesh.cluster.seed)))
    if cmd in ("inject", "uninject"):
        from labkit.manifests import inject_yaml, uninject_yaml

        flags = {"--enable-debug-sidecar": ("enable_debug_sidecar", False), "--manual": ("manual", False),
                 "--ingress": ("ingress", False), "--proxy-log-level": ("proxy_log_level", True),
                 "--skip-inbound-ports": ("skip_inbound_ports", True), "--skip-outbound-ports": ("skip_outbound_ports", True),
                 "--opaque-ports": ("opaque_ports", True), "--proxy-version": ("proxy_version", True)}
        opts, positional = _opts(rest, {**COMMON, **flags} if cmd == "inject" else COMMON)
        if not positional:
            raise CLIError("Error: please specify a kubernetes resource file")
        text = "".join(_read(p, stdin, files) for p in positional)
        if cmd == "inject":
            options = {k: v for k, v in opts.items() if k in {v2[0] for v2 in flags.values()} and k != "manual"}
            yaml_out, report = inject_yaml(text, **options)
        else:
            yaml_out, report = uninject_yaml(text)
        return Result(stdout=yaml_out, stderr=report)
    if cmd == "profile":
        import yaml

        opts, positional = _opts(rest, {**COMMON, "--template": ("template", False), "--open-api": ("open_api", True),
                                        "--proto": ("proto", True), "--ignore-cluster": ("ignore", False)})
        if not positional:
            raise CLIError("Error: please specify a service")
        open_api = opts.get("open_api")
        if open_api is not None:
            open_api = _read(open_api, stdin, files)
        sp = mesh.profile(positional[0], namespace=opts.get("namespace"), open_api=open_api,
                          template=bool(opts.get("template")))
        if isinstance(sp, str):
            return Result(stdout=sp)
        if opts.get("output") == "json":
            return Result(stdout=json.dumps(sp, indent=2) + "\n")
        return Result(stdout=yaml.safe_dump(sp, sort_keys=True, default_flow_style=False))
    if cmd == "diagnostics":
        if not rest or rest[0] != "proxy-metrics":
            raise CLIError(f"Error: unknown command {' '.join(rest[:1])!r} for \"linkerd diagnostics\"")
        opts, positional = _opts(rest[1:], {**COMMON, "--obfuscate": ("obfuscate", False)})
        if not positional:
            raise CLIError("Error: please specify a resource, e.g. deploy/web")
        return Result(stdout=mesh.proxy_metrics(positional[0], namespace=opts.get("namespace")))
    if cmd == "viz":
        return _viz(mesh, rest, stdin, files)
    return Result(stderr=f'Error: unknown command "{cmd}" for "linkerd"\nRun \'linkerd --help\' for usage.\n', code=1)


def _viz(mesh, argv: list[str], stdin, files) -> Result:
    if not argv:
        raise CLIError("Error: linkerd viz needs a command (install, check, stat, top, tap, routes, edges)")
    cmd, rest = argv[0], argv[1:]
    if cmd == "install":
        from labkit.manifests import dump
        from labkit.sim.linkerd import install

        return Result(stdout=dump(install.viz_objects(mesh.cluster.seed)))
    if cmd == "check":
        opts, _ = _opts(rest, {**COMMON, "--proxy": ("proxy", False), "--wait": ("wait", True)})
        report = mesh.check(proxy=bool(opts.get("proxy")), namespace=opts.get("namespace"))
        from labkit.tables import CheckReport

        viz = CheckReport(report.extensions, header=False)
        if opts.get("output") == "json":
            return Result(stdout=json.dumps(viz.to_json()[0], indent=2, ensure_ascii=False) + "\n", code=0 if viz.ok else 1)
        return Result(stdout=viz.render(), code=0 if viz.ok else 1)
    if cmd == "tap":
        flags = {"--to": ("to", True), "--to-namespace": ("to_namespace", True), "--method": ("method", True),
                 "--path": ("path", True), "--authority": ("authority", True), "--max-rps": ("max_rps", True)}
        opts, positional = _opts(rest, {**COMMON, **flags})
        if not positional:
            raise CLIError("Error: please specify a resource to tap, e.g. deploy/web")
        options = {k: opts[k] for k in ("to", "to_namespace", "method", "path", "authority") if opts.get(k)}
        if opts.get("max_rps"):
            options["max_rps"] = float(opts["max_rps"])
        return Result(tap={"target": positional[0], "namespace": opts.get("namespace") or "default",
                           "options": options, "output": opts.get("output") or ""})
    if cmd == "top":
        return Result(stderr="Error: linkerd viz top needs a terminal (it is an interactive view); "
                             "use `linkerd viz tap -o json` and aggregate, as labkit's mesh.top() does\n", code=1)
    if cmd == "stat":
        opts, positional = _opts(rest, {**COMMON, "--to": ("to", True), "--from": ("from_", True),
                                        "-t": ("window", True), "--time-window": ("window", True)})
        if not positional:
            raise CLIError("Error: please specify a resource type, e.g. deploy")
        table = mesh.stat(positional[0], namespace=opts.get("namespace"), to=opts.get("to"),
                          from_=opts.get("from_"), window=opts.get("window") or "1m")
        if opts.get("output") == "json":
            return Result(stdout=stat_json(table, positional[0], opts.get("namespace") or "default"))
        from labkit.tables import cli_text

        return Result(stdout=cli_text(table))
    if cmd == "edges":
        opts, positional = _opts(rest, COMMON)
        if not positional:
            raise CLIError("Error: please specify a resource type, e.g. deploy")
        table = mesh.edges(positional[0], namespace=opts.get("namespace"))
        if opts.get("output") == "json":
            return Result(stdout=edges_json(table))
        from labkit.tables import cli_text

        return Result(stdout=cli_text(table))
    if cmd == "routes":
        opts, positional = _opts(rest, {**COMMON, "--to": ("to", True)})
        if not positional:
            raise CLIError("Error: please specify a resource, e.g. svc/webapp")
        table = mesh.routes(positional[0], namespace=opts.get("namespace"), to=opts.get("to"),
                            wide=opts.get("output") == "wide")
        from labkit.tables import cli_text

        if opts.get("output") == "json":
            return Result(stdout=routes_json(table, positional[0], bool(opts.get("to"))))
        return Result(stdout=cli_text(table))
    if cmd in ("stat-outbound", "stat-inbound", "authz"):
        return _viz_2_20(mesh, cmd, rest)
    raise CLIError(f'Error: unknown command "{cmd}" for "linkerd viz"')


def _viz_2_20(mesh, cmd: str, rest: list[str]) -> Result:
    """``linkerd viz stat-outbound|stat-inbound|authz [-n NS] [-t WINDOW] [-o json] TYPE/NAME`` (2.17+ verbs)."""
    from labkit.metrics import authz, stat_inbound, stat_outbound
    from labkit.tables import cli_text

    opts, positional = _opts(rest, {**COMMON, "-t": ("window", True), "--time-window": ("window", True)})
    if not positional:
        raise CLIError("Error: requires at least 1 arg(s), only received 0")
    resource = "/".join(positional[:2])
    window = opts.get("window") or "1m"
    call = {"stat-outbound": mesh.stat_outbound, "stat-inbound": mesh.stat_inbound, "authz": mesh.authz}[cmd]
    try:
        table = call(resource, opts.get("namespace"), window=window)
    except ValueError as exc:
        raise CLIError(f"Error: {exc}") from None
    output = opts.get("output") or "table"
    if output == "json":
        module = {"stat-outbound": stat_outbound, "stat-inbound": stat_inbound, "authz": authz}[cmd]
        return Result(stdout=module.json_text(table))
    if output not in ("table", "wide") or (output == "wide" and cmd != "authz"):
        raise CLIError(f"Invalid output format: {output}")
    return Result(stdout=cli_text(table))


def _num(v):
    import math

    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def stat_json(table, resource: str, namespace: str) -> str:
    """``linkerd viz stat -o json``: an indented array (no MESHED count, as in the real CLI)."""
    from labkit.tables import resource_type

    kind = resource_type(resource.split("/", 1)[0]) or "deployment"
    out = []
    for row in table.to_dict("records"):
        success = _num(row.get("SUCCESS"))
        entry = {"namespace": row.get("NAMESPACE", namespace), "kind": kind, "name": row["NAME"]}
        if success is None:
            entry.update(success=None, rps=None, latency_ms_p50=None, latency_ms_p95=None, latency_ms_p99=None)
        else:
            entry.update(success=success, rps=_num(row.get("RPS")),
                         latency_ms_p50=_int(row.get("LATENCY_P50")), latency_ms_p95=_int(row.get("LATENCY_P95")),
                         latency_ms_p99=_int(row.get("LATENCY_P99")))
            tcp = _num(row.get("TCP_CONN"))
            if tcp is not None:
                entry["tcp_open_connections"] = int(tcp)
        out.append(entry)
    return json.dumps(out, indent=2) + "\n"


def _int(v):
    n = _num(v)
    return None if n is None else int(round(n))


def edges_json(table) -> str:
    out = [{"src": r["SRC"], "src_namespace": r["SRC_NS"], "dst": r["DST"], "dst_namespace": r["DST_NS"],
            "client_id": r.get("CLIENT_ID", ""), "server_id": r.get("SERVER_ID", ""),
            "no_tls_reason": "" if r.get("SECURED") == "\u221a" else r.get("SECURED", "")}
           for r in table.to_dict("records")]
    return json.dumps(out, indent=2) + "\n"


def routes_json(table, resource: str, to: bool) -> str:
    rows = []
    for r in table.to_dict("records"):
        entry = {"route": r.get("ROUTE", ""), "authority": r.get("SERVICE", r.get("AUTHORITY", ""))}
        if to:
            entry.update(effective_success=_num(r.get("EFFECTIVE_SUCCESS", r.get("SUCCESS"))) or 0,
                         effective_rps=_num(r.get("EFFECTIVE_RPS", r.get("RPS"))) or 0,
                         actual_success=_num(r.get("ACTUAL_SUCCESS", r.get("SUCCESS"))) or 0,
                         actual_rps=_num(r.get("ACTUAL_RPS", r.get("RPS"))) or 0)
        else:
            entry.update(success=_num(r.get("SUCCESS")) or 0, rps=_num(r.get("RPS")) or 0)
        entry.update(latency_ms_p50=_int(r.get("LATENCY_P50")) or 0, latency_ms_p95=_int(r.get("LATENCY_P95")) or 0,
                     latency_ms_p99=_int(r.get("LATENCY_P99")) or 0)
        rows.append(entry)
    return json.dumps({resource: rows}, indent=2) + "\n"


# -- tap events in `linkerd viz tap -o json`'s shape ---------------------------------------------------

GRPC_CODES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
              "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
              "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated")


def _duration(us: float | None) -> dict:
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


def tap_event(row: dict, grpc: bool) -> dict:
    """One tap table row (req / rsp / end) as the JSON object `linkerd viz tap -o json` prints."""
    base, _, stream = str(row.get("id", "0:0")).partition(":")
    ident = {"base": int(base or 0), "stream": int(stream or 0)}
    event: dict = {"source": _peer(row["src"], row.get("src_labels")),
                   "destination": _peer(row["dst"], row.get("dst_labels")),
                   "routeMeta": {"route": row["rt_route"]} if row.get("rt_route") else None,
                   "proxyDirection": "INBOUND" if row.get("proxy") == "in" else "OUTBOUND"}
    kind = row.get("type")
    if kind == "req":
        headers = [{"name": "content-type", "valueStr": "application/grpc"}] if grpc else []
        event["requestInitEvent"] = {"id": ident, "method": row.get("method"), "scheme": "http",
                                     "authority": row.get("authority"), "path": row.get("path"), "headers": headers}
    elif kind == "rsp":
        headers = [{"name": "content-type", "valueStr": "application/grpc"}] if grpc else []
        event["responseInitEvent"] = {"id": ident, "sinceRequestInit": _duration(row.get("latency_us")),
                                      "httpStatus": int(row.get("status") or 0), "headers": headers}
    else:
        end: dict = {"id": ident, "sinceRequestInit": _duration(row.get("latency_us")),
                     "sinceResponseInit": _duration(row.get("duration_us")),
                     "responseBytes": int(row.get("response_length") or 0)}
        grpc_status = row.get("grpc_status")
        if grpc_status is not None and grpc_status == grpc_status:
            code = GRPC_CODES.index(grpc_status) if grpc_status in GRPC_CODES else int(str(grpc_status)[5:-1])
            end["trailers"] = [{"name": "grpc-status", "valueStr": str(code)}]
            end["grpcStatusCode"] = code
        else:
            end["trailers"] = []
            end["grpcStatusCode"] = 0
        reset = row.get("reset_error")
        if reset is not None and reset == reset:
            end["resetErrorCode"] = int(reset)
        event["responseEndEvent"] = end
    return event


def tap_text(rows: list[dict], output: str, grpc_streams: set) -> str:
    if output == "json":
        return "".join(json.dumps(tap_event(r, _stream(r) in grpc_streams), indent=2) + "\n" for r in rows)
    from labkit.tables import cli_text, new_table

    return cli_text(new_table("tap", rows, wide=output == "wide")) if rows else ""


def _stream(row: dict) -> tuple:
    return (row.get("src"), row.get("dst"), row.get("id"), row.get("proxy"))


def split_command(text: str) -> list[str]:
    return shlex.split(text)
