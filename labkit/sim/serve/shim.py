"""The ``linkerd`` stand-in a served embedded mesh provides: ``python -m labkit.sim.serve.shim ARGS``.

It reads the kubeconfig like the real CLI (``--kubeconfig``, else
``KUBECONFIG``, else ``~/.kube/config``; ``--context``, else the current
context), finds the labkit-served mesh behind that context, sends it the
argv (plus stdin and the files the arguments name, e.g. ``inject FILE`` or
``profile --open-api FILE``) and prints the answer: stdout, stderr and exit
code as the real CLI would. A context that is not a labkit-served mesh gets a
clear error saying how to install the real CLI. Standard library + PyYAML
(and the stand-in's own argv splitting, ``cli.command_path``) only, so it
starts fast.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request

EXTENSION = "labkit.dev/embedded-mesh"
INSTALL_HINT = ("install the real linkerd CLI: curl --proto '=https' --tlsv1.2 -sSfL https://run.linkerd.io/install-edge "
                "| sh  (then add $HOME/.linkerd2/bin to PATH), or see https://linkerd.io/2/getting-started/")
#: Flags whose value names a local file the server must be sent.
FILE_FLAGS = ("--open-api", "--proto", "-f", "--filename")


def _global(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def find_server(argv: list[str]) -> tuple[str, str | None]:
    """(server URL, bearer token) of the labkit-served mesh the kubeconfig context names."""
    import yaml

    path = _global(argv, "--kubeconfig") or (os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None) \
        or os.path.expanduser("~/.kube/config")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise SystemExit(f"Error: cannot read kubeconfig {path}: {exc.strerror}") from None
    name = _global(argv, "--context") or doc.get("current-context")
    ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == name), None)
    if ctx is None:
        raise SystemExit(f"Error: context {name!r} not found in {path}")
    cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {})
    user = next((u.get("user") or {} for u in doc.get("users") or [] if u.get("name") == ctx.get("user")), {})
    if not any(e.get("name") == EXTENSION for e in cluster.get("extensions") or []):
        raise SystemExit(f"Error: this `linkerd` is labkit's stand-in for the embedded mesh, and context {name!r} is "
                         f"a real cluster; {INSTALL_HINT}")
    global _CA
    _CA = cluster.get("certificate-authority-data")
    return cluster["server"].rstrip("/"), user.get("token")


_CA = None  # the served mesh's certificate (base64 PEM) from the kubeconfig, trusted for https:// servers


def _tls_context():
    """Trust exactly the served mesh's own certificate, as kubectl does with certificate-authority-data."""
    if not _CA:
        return None
    import base64
    import ssl

    return ssl.create_default_context(cadata=base64.b64decode(_CA).decode("ascii"))


def _files(argv: list[str]) -> dict:
    out = {}
    for i, a in enumerate(argv):
        value = None
        for flag in FILE_FLAGS:
            if a == flag and i + 1 < len(argv):
                value = argv[i + 1]
            elif a.startswith(flag + "="):
                value = a.split("=", 1)[1]
        if value and value != "-" and os.path.isfile(value):
            with open(value, encoding="utf-8") as fh:
                out[value] = fh.read()
    # `linkerd inject FILE` / `uninject FILE`: positional files (flags may come first: `linkerd -n x inject f.yml`)
    from labkit.sim.serve.cli import command_path

    path, rest = command_path(argv)
    if path[:1] in (["inject"], ["uninject"]):
        for a in rest:
            if not a.startswith("-") and os.path.isfile(a):
                with open(a, encoding="utf-8") as fh:
                    out[a] = fh.read()
    return out


def _strip_globals(argv: list[str]) -> list[str]:
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a in ("--kubeconfig", "--context"):
            skip = True
            continue
        if a.startswith("--kubeconfig=") or a.startswith("--context="):
            continue
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))  # Ctrl-C ends `viz tap` quietly, like the CLI
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server, token = find_server(argv)
    args = _strip_globals(argv)
    stdin = sys.stdin.read() if "-" in args and not sys.stdin.isatty() else None
    body = json.dumps({"argv": args, "stdin": stdin, "files": _files(args)}).encode("utf-8")
    request = urllib.request.Request(server + "/labkit/v1/linkerd", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    code = 0
    try:
        with urllib.request.urlopen(request, timeout=600, context=_tls_context()) as resp:
            for line in resp:
                if not line.strip():
                    continue
                msg = json.loads(line)
                if "stdout" in msg:
                    sys.stdout.write(msg["stdout"])
                    sys.stdout.flush()
                if "stderr" in msg:
                    sys.stderr.write(msg["stderr"])
                    sys.stderr.flush()
                if "exit" in msg:
                    code = int(msg["exit"])
    except urllib.error.HTTPError as exc:
        sys.stderr.write(f"Error: the embedded mesh at {server} answered HTTP {exc.code}: {exc.read().decode(errors='replace')}\n")
        return 1
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"Error: cannot reach the embedded mesh at {server}: {exc}\n")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
