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
``linkerd viz top T``                           one frame of top's view: T's requests over 10 s of mesh time
``linkerd viz stat|routes|edges ... [-o json]`` the tables (or JSON) the real CLI prints
``linkerd smi install [--skip-checks]``         linkerd-smi's TrafficSplit CRD (the embedded mesh runs its adaptor),
                                                after the core checks pass, as linkerd-smi does
``linkerd viz stat-outbound|stat-inbound|authz``  the 2.17+ verbs' tables (``-o json`` for the stat ones)
=============================================  =============================================

Flags go where cobra accepts them: global and persistent flags (``-n``,
``--context``, ``-L`` ...) before or after the subcommand words
(``linkerd -n x viz stat deploy``, ``linkerd viz -n x stat deploy``,
``linkerd viz stat deploy -n x``), as ``--flag value``, ``--flag=value``,
``-fvalue`` or ``-f=value`` (:func:`command_path`).

Everything runs under the served mesh's lock, like any API request.
"""
from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass, field

from labkit.errors import LabkitError
from labkit.sim.serve.cli_json import edges_json, go_json, routes_json, stat_json, tap_event


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


#: The stand-in's commands: a word maps to its subcommands (``None``: a leaf that takes arguments).
COMMANDS: dict = {
    "version": None, "check": None, "install": None, "inject": None, "uninject": None, "profile": None,
    "diagnostics": {"proxy-metrics": None},
    "viz": {"install": None, "check": None, "tap": None, "top": None, "stat": None, "edges": None, "routes": None,
            "stat-outbound": None, "stat-inbound": None, "authz": None},
    "smi": {"install": None},
}
#: Boolean flags: they never take the next word as their value (pflag's NoOptDefVal). Every other flag does.
BOOL_FLAGS = frozenset({"--verbose", "--skip-checks", "--client", "--short", "--proxy", "--pre", "--crds",
                        "--ignore-cluster", "--ha", "--enable-debug-sidecar", "--manual", "--ingress", "--template", "--obfuscate", "--routes",
                        "-A", "--all-namespaces"})


def command_path(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split argv into (command words, the rest) as cobra's ``Find`` does.

    Flags may come before, between or after the command words: cobra skips
    them (and the value of a flag that takes one) while it walks down the
    command tree, and hands every remaining word, flags included, to the leaf.
    So ``linkerd -n x viz stat deploy`` and ``linkerd viz -n x stat deploy``
    name the same command as ``linkerd viz stat deploy -n x``.
    """
    path: list[str] = []
    taken: set[int] = set()
    tree: dict | None = COMMANDS
    for i in _word_indices(argv):
        if tree is None or argv[i] not in tree:
            break  # the first argument of the command found so far
        path.append(argv[i])
        taken.add(i)
        tree = tree[argv[i]]
    return path, [a for j, a in enumerate(argv) if j not in taken]


def _word_indices(argv: list[str]):
    """Indices of argv's words that are not flags nor flag values (cobra's ``stripFlags``), up to ``--``."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return
        if a.startswith("-") and a != "-":
            if "=" in a or a in BOOL_FLAGS or (not a.startswith("--") and len(a) > 2):
                i += 1  # --flag=value, a boolean, or a short flag with its value attached (-nemojivoto)
            else:
                i += 2
            continue
        yield i
        i += 1


def _first_word(argv: list[str]) -> str | None:
    return next((argv[i] for i in _word_indices(argv)), None)


def _opts(args: list[str], spec: dict) -> tuple[dict, list[str]]:
    """Parse ``args`` with ``spec`` {flag: (key, takes_value)}: flags anywhere, as ``--x v``, ``--x=v``, ``-xv``."""
    opts: dict = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            positional.extend(args[i + 1:])
            break
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=")
            if not a.startswith("--") and len(name) > 2 and name[:2] in spec and spec[name[:2]][1]:
                name, eq, value = name[:2], "=", a[2:].removeprefix("=")  # -nemojivoto, -ojson, -n=emojivoto
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


def _helm_sets(args: list[str]) -> tuple[list[str], dict]:
    """Take every ``--set a.b=v[,c=w]`` out of ``args``: (the other args, {path: value}) with Helm's scalar types."""
    rest, sets, i = [], {}, 0
    while i < len(args):
        a = args[i]
        if a == "--set" or a.startswith("--set="):
            if a == "--set":
                i += 1
                if i >= len(args):
                    raise CLIError("Error: flag needs an argument: --set")
                text = args[i]
            else:
                text = a.split("=", 1)[1]
            for item in text.split(","):
                key, eq, value = item.partition("=")
                if not eq or not key:
                    raise CLIError(f'Error: failed parsing --set data: key "{item}" has no value')
                sets[key] = {"true": True, "false": False}.get(value, int(value) if value.isdigit() else value)
        else:
            rest.append(a)
        i += 1
    return rest, sets


COMMON = {"-n": ("namespace", True), "--namespace": ("namespace", True), "-o": ("output", True),
          "--output": ("output", True), "--context": ("context", True), "--kubeconfig": ("kubeconfig", True),
          "-L": ("linkerd_namespace", True), "--linkerd-namespace": ("linkerd_namespace", True),
          # the root command's other persistent flags: accepted everywhere, meaningless to the embedded mesh
          "--verbose": ("verbose", False), "--api-addr": ("api_addr", True), "--as": ("as_user", True),
          "--as-group": ("as_group", True), "--cni-namespace": ("cni_namespace", True)}


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

    path, rest = command_path(argv)
    if not path:
        word = _first_word(argv)
        if word:
            return Result(stderr=f'Error: unknown command "{word}" for "linkerd"\nRun \'linkerd --help\' for usage.\n',
                          code=1)
        return Result(stderr="linkerd manages the Linkerd service mesh.\n\nUsage:\n  linkerd [command]\n", code=1)
    cmd = path[0]
    if cmd in ("viz", "diagnostics", "smi") and len(path) == 1:
        word = _first_word(rest)
        if word:
            raise CLIError(f'Error: unknown command "{word}" for "linkerd {cmd}"')
        raise CLIError(f"Error: linkerd {cmd} needs a command ({', '.join(COMMANDS[cmd])})")
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

        rest, overrides = _helm_sets(rest)
        opts, _ = _opts(rest, {**COMMON, "--crds": ("crds", False), "--ignore-cluster": ("ignore", False),
                               "--ha": ("ha", False)})
        problem = install.gateway_api_problem(mesh.cluster)
        if problem and not opts.get("ignore"):
            return Result(stderr=problem + "\n", code=1)  # 2.20 refuses before rendering anything
        if opts.get("crds"):
            return Result(stdout=dump(install.crd_objects()))
        install.register(mesh.cluster)  # the control plane's in-process parts (webhooks answer once pods run)
        return Result(stdout=dump(install.control_plane_objects(mesh.cluster.seed, overrides)))
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
            from labkit.manifests import InjectError

            options = {k: v for k, v in opts.items() if k in {v2[0] for v2 in flags.values()} and k != "manual"}
            manual = None
            if opts.get("manual"):
                from labkit.sim.linkerd.install import manual_injector

                manual = manual_injector(mesh.cluster)
            try:
                yaml_out, report = inject_yaml(text, manual=manual, **options)
            except InjectError as exc:
                return Result(stderr=str(exc), code=1)  # as the CLI: the errors, no YAML, exit status 1
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
    if cmd == "diagnostics":  # proxy-metrics, the only subcommand
        opts, positional = _opts(rest, {**COMMON, "--obfuscate": ("obfuscate", False)})
        if not positional:
            raise CLIError("Error: please specify a resource, e.g. deploy/web")
        return Result(stdout=mesh.proxy_metrics(positional[0], namespace=opts.get("namespace")))
    if cmd == "viz":
        return _viz(mesh, path[1], rest)
    if cmd == "smi":  # install, the only subcommand
        from labkit.manifests import dump
        from labkit.sim.linkerd import install

        opts, _ = _opts(rest, {**COMMON, "--skip-checks": ("skip_checks", False), "--wait": ("wait", True)})
        if not opts.get("skip_checks"):  # like linkerd-smi: the core control plane must be there first
            report = mesh.check()
            if not report.ok:
                return Result(stderr=report.render(), code=1)
        return Result(stdout=dump(install.smi_objects()))
    raise CLIError(f'Error: unknown command "{cmd}" for "linkerd"')  # unreachable: command_path knows COMMANDS


#: How much mesh time ``linkerd viz top``'s one frame covers (the real view redraws until you quit).
TOP_WINDOW = "10s"


def _viz(mesh, cmd: str, rest: list[str]) -> Result:
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
        flags = {"--to": ("to", True), "--to-namespace": ("to_namespace", True), "--method": ("method", True),
                 "--path": ("path", True), "--authority": ("authority", True), "--max-rps": ("max_rps", True),
                 "--routes": ("routes", False)}
        opts, positional = _opts(rest, {**COMMON, **flags})
        if not positional:
            raise CLIError("Error: please specify a resource to watch, e.g. deploy/web")
        filters = {k: opts[k] for k in ("to", "to_namespace", "method", "path", "authority") if opts.get(k)}
        if opts.get("max_rps"):
            filters["max_rps"] = float(opts["max_rps"])
        # The real view taps until you quit and redraws; the stand-in taps TOP_WINDOW of mesh time (moving the
        # served clock on, as the kube backend's waits do) and prints that one frame.
        table = mesh.top(positional[0], namespace=opts.get("namespace") or "default", window=TOP_WINDOW,
                         routes=bool(opts.get("routes")), **filters)
        from labkit.tables import cli_text

        return Result(stdout=cli_text(table))
    if cmd == "stat":
        opts, positional = _opts(rest, {**COMMON, "--to": ("to", True), "--from": ("from_", True),
                                        "-t": ("window", True), "--time-window": ("window", True)})
        if not positional:
            raise CLIError("Error: please specify a resource type, e.g. deploy")
        table = _stat_table(mesh, positional[0], opts, wide=opts.get("output") in ("wide", "json"))
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
        # with --to, the JSON carries effective and actual figures: the wide table's
        table = mesh.routes(positional[0], namespace=opts.get("namespace"), to=opts.get("to"),
                            wide=opts.get("output") == "wide" or (opts.get("output") == "json" and bool(opts.get("to"))))
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


def _stat_table(mesh, resource: str, opts: dict, wide: bool):
    """The stat table; wide (with READ_BYTES/SEC, WRITE_BYTES/SEC) for ``-o wide`` and ``-o json``."""
    from labkit.metrics import viz

    return viz.stat(mesh, resource, namespace=opts.get("namespace"), to=opts.get("to"), from_=opts.get("from_"),
                    window=opts.get("window") or "1m", wide=wide)


def tap_text(rows: list[dict], output: str, grpc_streams: set) -> str:
    if output == "json":
        return "".join(go_json(tap_event(r, _stream(r) in grpc_streams)) + "\n" for r in rows)
    from labkit.tables import cli_text, new_table

    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return cli_text(new_table("tap", rows, wide=output == "wide")) if rows else ""


def _stream(row: dict) -> tuple:
    return (row.get("src"), row.get("dst"), row.get("id"), row.get("proxy"))


def split_command(text: str) -> list[str]:
    return shlex.split(text)
