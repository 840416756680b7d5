"""A scripted editor for ``kubectl edit`` in tests: the learner's edit, made by a program.

    KUBE_EDITOR="python tests/kube_editor.py 'HEAD /authors/{id}.json' isRetryable true" kubectl edit sp/...
    KUBE_EDITOR="python tests/kube_editor.py --spec retryBudget '{retryRatio: 0.1, ...}'" kubectl edit sp/...
    KUBE_EDITOR="python tests/kube_editor.py --append analysis.metrics '{name: errors, ...}'" kubectl edit canary/...

kubectl writes the object as YAML to a temporary file, runs the editor on it
and sends the difference as a patch, exactly as after a human's edit. This
sets FIELD to VALUE (parsed as YAML: ``true``, ``25ms``) on the route named
ROUTE, and refuses (exit 1, kubectl then cancels) when there is no such route;
``--spec`` sets a field of the spec itself, ``--append`` adds an item to the
list at a dotted path under the spec.
"""
import sys

import yaml


def main(route: str, field: str, value: str, path: str) -> int:
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]  # kubectl's instructions header
    doc = yaml.safe_load("".join(lines))
    if route in ("--spec", "--append"):
        target = doc.setdefault("spec", {})
        *parents, last = field.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        if route == "--spec":
            target[last] = yaml.safe_load(value)
        else:
            target.setdefault(last, []).append(yaml.safe_load(value))
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(doc, fh, sort_keys=False)
        return 0
    routes = [r for r in (doc.get("spec") or {}).get("routes") or [] if r.get("name") == route]
    if not routes:
        print(f"kube_editor: no route {route!r} in {doc['metadata']['name']}", file=sys.stderr)
        return 1
    routes[0][field] = yaml.safe_load(value)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
