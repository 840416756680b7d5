"""The real command each contract call stands for, so what a learner does here works on a cluster.

``mesh.apply("emojivoto")`` is ``kubectl apply -f manifests/emojivoto``;
``mesh.check(pre=True)`` is ``linkerd check --pre``. The cluster records the
command of every call in ``Cluster.last_command``; :func:`command_for`
answers without running anything.
"""
from __future__ import annotations

import json
from typing import Any

_KIND_FLAG = {"deploy": "deploy", "deployment": "deploy", "deployments": "deploy"}


def _ns_flag(namespace: str | None) -> str:
    return f" -n {namespace}" if namespace and namespace != "default" else ""


def kubectl(verb: str, args: str = "", namespace: str | None = None) -> str:
    """``kubectl [-n NS] VERB ARGS`` (the labs' word order, e.g. ``kubectl -n emojivoto get pods``)."""
    return f"kubectl{_ns_flag(namespace)} {verb}{(' ' + args) if args else ''}"


def kubectl_apply(arg: str, namespace: str | None = None) -> str:
    return f"kubectl apply -f {arg}{_ns_flag(namespace)}"


def linkerd_check(pre: bool = False, proxy: bool = False, namespace: str | None = None) -> str:
    if pre:
        return "linkerd check --pre"
    if proxy:
        return f"linkerd{_ns_flag(namespace)} check --proxy"
    return "linkerd check"


def _inject_flags(options: dict) -> str:
    flags = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag}={value}")
    return (" " + " ".join(flags)) if flags else ""


def round_trip(kind: str, namespace: str | None, name: str | None, verb: str, options: dict) -> str:
    """``kubectl get … -o yaml | linkerd inject - | kubectl apply -f -``."""
    target = f"{kind}/{name}" if name else kind
    return f"kubectl get{_ns_flag(namespace)} {target} -o yaml | linkerd {verb}{_inject_flags(options)} - | kubectl apply -f -"


def _source_arg(source: Any) -> str:
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith(("{", "apiVersion", "---"))):
        return "-"
    if isinstance(source, (list, tuple, dict)):
        return "-"
    from pathlib import Path

    from labkit.manifests import MANIFESTS, display_path

    path = Path(str(source))
    if not path.is_absolute() and (MANIFESTS / path).exists():
        return display_path(MANIFESTS / path)
    return str(source)


def command_for(method: str, *args: Any, **kwargs: Any) -> str:
    """The command a contract call would run, e.g. ``command_for("apply", "emojivoto")``."""
    ns = kwargs.get("namespace")

    def arg(i: int, key: str, default=None):
        return args[i] if len(args) > i else kwargs.get(key, default)

    if method == "apply":
        return kubectl_apply(_source_arg(arg(0, "source")), ns)
    if method == "delete":
        source = arg(0, "source")
        if isinstance(source, str) and "/" in source and "\n" not in source and not source.endswith((".yml", ".yaml", ".json")):
            return kubectl("delete", source, ns)
        return kubectl("delete", f"-f {_source_arg(source)}", ns)
    if method == "get":
        return kubectl("get", f"{arg(0, 'kind')} {arg(1, 'name') or ''}".strip() + " -o yaml", ns)
    if method in ("pods", "events", "nodes", "deployments"):
        what = {"pods": "pods", "events": "events", "nodes": "nodes", "deployments": "deploy"}[method]
        return kubectl("get", what, None if method == "nodes" else arg(0, "namespace"))
    if method == "set_image":
        container = kwargs.get("container")
        image = arg(1, "image")
        pair = image if "=" in str(image) or container is None else f"{container}={image}"
        return kubectl("set image", f"deployment/{str(arg(0, 'deployment')).split('/')[-1]} {pair}", ns)
    if method == "patch":
        patch = arg(2, "patch")
        return kubectl("patch", f"{arg(0, 'kind')} {arg(1, 'name')} --type {'json' if isinstance(patch, list) else 'merge'} "
                                f"-p '{json.dumps(patch)}'", ns)
    if method == "rollout_status":
        return kubectl("rollout status", f"deployment/{str(arg(0, 'deployment')).split('/')[-1]}", ns)
    if method == "rollout_restart":
        return kubectl("rollout restart", str(arg(0, "deployment")), ns)
    if method == "check":
        return linkerd_check(kwargs.get("pre", False), kwargs.get("proxy", False), ns)
    if method == "install_linkerd":
        from labkit.sim.linkerd.install import INSTALL_COMMAND, VIZ_COMMAND

        return INSTALL_COMMAND + (" && " + VIZ_COMMAND if kwargs.get("viz", True) else "")
    if method in ("inject", "uninject"):
        options = {k: v for k, v in kwargs.items() if k not in ("namespace", "name", "kind")}
        return round_trip(arg(0, "kind"), ns, kwargs.get("name"), method, options)
    if method == "wait":
        return f"sleep {arg(0, 'duration')}"
    raise ValueError(f"no equivalent command known for {method!r}")
