"""CEL validation rules of CRDs (``x-kubernetes-validations``), evaluated as kube-apiserver 1.32 evaluates them.

A CRD's structural schema may carry CEL rules at any node; the API server evaluates each rule with ``self`` bound
to that node's value (after defaulting) and, for an update, ``oldSelf`` bound to the old value. The Gateway API's
CRDs rely on them for what their OpenAPI cannot say (an HTTPRoute path match must start with '/', a filter's type
must match the one field it sets, a Service backendRef needs a port). The schema validator calls
:func:`check_rules` at each node that has rules and reports what it returns, worded as the API server words it::

    spec.rules[0].matches[0].path: Invalid value: "object": value must be an absolute path and start with '/' ...

**The CEL library: common-expression-language** (PyPI, Python bindings of the Rust ``cel`` interpreter). Chosen
over the two other maintained ones after running every rule the shipped CRDs carry through each:

* it evaluates all of them, with CEL's standard macros, ``has()``, ``duration()``, RE2-style ``matches`` (the
  rules use ``(?i)``), raw triple-quoted strings, heterogeneous numeric comparison as cel-go does, and optionals
  (``optionalOldSelf``); what it lacks is Kubernetes' own libraries, added below as Python functions (member calls
  ``x.f(a)`` reach them as ``f(x, a)``);
* it is fast: 60-250 µs to compile a Gateway API rule, 3-50 µs to evaluate one (~60 µs for the eleven rules
  of an HTTPRoute path match);
* it ships wheels for Linux (x86-64, arm64), macOS (Intel, Apple) and Windows, CPython 3.11-3.13.
  ``cel-expr-python`` (Google's C++ CEL, with the strings extension built in, type checking like cel-go's and a
  10 ms import) has no Linux arm64 or Intel-macOS wheel, so a learner's laptop or an arm64 container could not
  install labkit; ``cel-python`` (pure Python) is 10-100x slower and fails at run time on comparing an int with
  a double, which cel-go (Kubernetes' CEL) evaluates.

Its costs: importing it takes ~0.3 s (its package also loads a command-line tool), paid once per process at the
first rule evaluated, never by ``import labkit``; and ``size()`` of a string counts UTF-8 bytes where cel-go counts
code points (the shipped rules measure only ASCII label-key prefixes with it).

**Kubernetes' CEL libraries.** The shipped CRDs' rules (Gateway API v1.2.1 standard: 207 rules in 60 distinct
texts; Flagger v1.44.0: one, the backendRef port rule; Linkerd 2.20 and linkerd-smi: none) use, beyond standard
CEL, only the strings extension's ``split``. Modelled here (:data:`K8S_FUNCTIONS`): the strings extension
(``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``, ``upperAscii``, ``replace``, ``split``, ``substring``,
``trim``, ``join``), Kubernetes' lists library (``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``,
``lastIndexOf``) and regex library (``find``, ``findAll``). The URL, quantity, IP/CIDR, format, authz and sets
libraries are not: a rule using them raises :class:`CelUnsupportedError` naming the function, rather than
passing or failing silently.

**Values as the API server sees them.** Given the node's ``schema`` (recommended), a value is converted as
kube-apiserver converts it: property names of objects with ``properties`` are escaped (``namespace`` →
``__namespace__``, ``-`` → ``__dash__``, ...; maps keep their keys), ``type: number`` values are doubles even when
written ``1``, ``format: duration``/``date-time``/``date``/``byte`` strings become durations, timestamps and bytes,
and int-or-string stays dynamic (so ``self > 1`` on a string is a ``no such overload`` error, as on a cluster). A
missing field is ``no such key`` unless the rule guards it with ``has()``. Without a schema, only property names
that are CEL reserved words (``namespace``...) are escaped and numbers stay as written.

Rules are compiled once per distinct text and cached for the process; the interpreter is imported lazily.
Not modelled: the runtime cost budget, and the order-insensitive equality of ``x-kubernetes-list-type: set/map``
lists in ``self == oldSelf``.
"""
from __future__ import annotations

import datetime
import functools
import json
import re

from labkit.errors import LabkitError
from labkit.k8s import json_type

#: ``old`` for a create: there is no old value, so transition rules (those using ``oldSelf``) are skipped.
MISSING = object()

#: kube-apiserver's limit on a messageExpression's result (celconfig.MaxEvaluatedMessageExpressionSizeBytes).
MAX_MESSAGE_EXPRESSION_BYTES = 5 * 1024


class CelError(LabkitError, ValueError):
    """A rule that does not compile."""


class CelUnsupportedError(CelError):
    """A rule using a Kubernetes CEL function the embedded mesh does not model."""


# -- the interpreter, imported on first use ----------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _cel():
    """The ``cel`` module (common-expression-language), imported at the first rule: ~0.3 s, kept out of
    ``import labkit``. Its logger reports each failing Python function at WARNING; those failures are rule
    outcomes reported here (``index out of range ... evaluating rule``), so the logger is kept quiet."""
    import logging

    import cel

    log = logging.getLogger("cel")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return cel


# -- Kubernetes' CEL libraries ------------------------------------------------------------------------------------

class _RuleError(Exception):
    """An evaluation error with cel-go's wording, raised from a library function."""


def _index_error(i: int) -> _RuleError:
    return _RuleError(f"index out of range: {i}")


def _char_at(s: str, i: int) -> str:
    if not 0 <= i <= len(s):
        raise _index_error(i)
    return s[i:i + 1]


def _index_of(receiver, item, start: int = 0):
    if isinstance(receiver, list):  # lists library: first index of an equal element, -1 if none
        return next((i for i, x in enumerate(receiver) if _equal(x, item)), -1)
    if not 0 <= start <= len(receiver):
        raise _index_error(start)
    return receiver.find(item, start)


def _last_index_of(receiver, item, end: int | None = None):
    if isinstance(receiver, list):
        return next((i for i in range(len(receiver) - 1, -1, -1) if _equal(receiver[i], item)), -1)
    if end is None:
        return receiver.rfind(item)
    if not 0 <= end < max(len(receiver), 1):
        raise _index_error(end)
    return receiver.rfind(item, 0, end + len(item))


def _equal(a, b) -> bool:
    """CEL equality of two converted values (bools are not numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _ascii(s: str, upper: bool) -> str:
    table = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ") if upper else \
        str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    return s.translate(table)


def _replace(s: str, old: str, new: str, n: int = -1) -> str:
    return s.replace(old, new, n if n >= 0 else -1)


def _split(s: str, sep: str, n: int = -1) -> list[str]:
    """Go's strings.SplitN: n == 0 → [], n < 0 → all parts; an empty separator splits into characters."""
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        return chars if n < 0 or n >= len(chars) else chars[:n - 1] + ["".join(chars[n - 1:])]
    return s.split(sep) if n < 0 else s.split(sep, n - 1)


def _substring(s: str, start: int, end: int | None = None) -> str:
    end = len(s) if end is None else end
    if not 0 <= start <= len(s):
        raise _index_error(start)
    if not 0 <= end <= len(s):
        raise _index_error(end)
    if start > end:
        raise _RuleError(f"invalid substring range. start: {start}, end: {end}")
    return s[start:end]


def _trim(s: str) -> str:
    return s.strip()


def _join(items: list, sep: str = "") -> str:
    return sep.join(items)


def _is_sorted(items: list) -> bool:
    return all(a <= b for a, b in zip(items, items[1:]))


def _sum(items: list):
    return sum(items[1:], items[0]) if items else 0


def _min(items: list):
    if not items:
        raise _RuleError("min called on empty list")
    return min(items)


def _max(items: list):
    if not items:
        raise _RuleError("max called on empty list")
    return max(items)


@functools.lru_cache(maxsize=256)
def _regex(pattern: str):
    import re2

    try:
        return re2.compile(pattern)
    except re2.error as err:
        raise _RuleError(f"invalid regular expression {pattern!r}: {err}") from None


def _find(s: str, pattern: str) -> str:
    m = _regex(pattern).search(s)
    return m.group(0) if m else ""


def _find_all(s: str, pattern: str, n: int = -1) -> list[str]:
    if n == 0:
        return []
    found = [m.group(0) for m in _regex(pattern).finditer(s)]
    return found if n < 0 else found[:n]


#: Kubernetes' CEL library functions modelled here, by the name a rule calls (strings ext, lists, regex).
K8S_FUNCTIONS = {
    "charAt": _char_at, "indexOf": _index_of, "lastIndexOf": _last_index_of,
    "lowerAscii": lambda s: _ascii(s, upper=False), "upperAscii": lambda s: _ascii(s, upper=True),
    "replace": _replace, "split": _split, "substring": _substring, "trim": _trim, "join": _join,
    "isSorted": _is_sorted, "sum": _sum, "min": _min, "max": _max,
    "find": _find, "findAll": _find_all,
}

#: Standard CEL functions the interpreter itself provides (operators aside).
STANDARD_FUNCTIONS = frozenset({
    "size", "matches", "contains", "startsWith", "endsWith", "int", "uint", "double", "string", "bytes",
    "duration", "timestamp", "type", "dyn",
    "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours", "getMilliseconds",
    "getMinutes", "getMonth", "getSeconds",
    "of", "none", "ofNonZeroValue", "hasValue", "value", "or", "orValue",  # optionals (optionalOldSelf)
})

#: Kubernetes CEL functions that are not modelled, → the library they belong to (for the error).
UNMODELLED = {
    **dict.fromkeys(("url", "isURL", "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath", "getQuery"),
                    "the URL library"),
    **dict.fromkeys(("quantity", "isQuantity", "sign", "isGreaterThan", "isLessThan", "compareTo",
                     "asApproximateFloat", "asInteger", "isInteger", "add", "sub"), "the quantity library"),
    **dict.fromkeys(("ip", "isIP", "cidr", "isCIDR", "family", "isUnspecified", "isLoopback", "isLinkLocalMulticast",
                     "isLinkLocalUnicast", "isGlobalUnicast", "prefixLength", "masked", "containsIP",
                     "containsCIDR", "ip.isCanonical"), "the IP and CIDR libraries"),
    **dict.fromkeys(("format", "named", "validate", "dns1123Label", "dns1123Subdomain", "qualifiedName",
                     "labelValue", "uri", "uuid", "byte", "date", "datetime"), "the format library"),
    **dict.fromkeys(("authorizer", "path", "group", "resource", "check", "allowed", "reason", "errored",
                     "serviceAccount", "subresource", "namespace", "name"), "the authz library"),
    **dict.fromkeys(("sets", "equivalent", "intersects", "quote", "reverse", "bool", "semver", "isSemver"),
                    "a library the embedded mesh does not model"),
}

_OPERATOR = re.compile(r"_.*|@.*|!_|-_")  # _==_, _[_], _?_:_, @in, !_, -_ ...


def _unsupported(name: str, rule: str) -> CelUnsupportedError:
    library = UNMODELLED.get(name)
    where = f"Kubernetes' CEL function {name}() ({library})" if library else f"the CEL function or variable {name!r}"
    return CelUnsupportedError(
        f"the embedded mesh's CEL evaluator does not model {where}, used by the rule {rule!r}; it models standard "
        f"CEL and Kubernetes' {', '.join(sorted(K8S_FUNCTIONS))} (labkit/sim/kube/cel.py). Check this resource "
        "against a real cluster (the kube backend).")


# -- compiling -------------------------------------------------------------------------------------------------

class Compiled:
    """One compiled rule text: the program and whether it is a transition rule (uses ``oldSelf``)."""

    __slots__ = ("source", "program", "uses_old_self")

    def __init__(self, source: str, program, uses_old_self: bool):
        self.source, self.program, self.uses_old_self = source, program, uses_old_self


@functools.lru_cache(maxsize=None)
def compile_rule(source: str) -> Compiled:
    """Compile a rule (or messageExpression) once; raise :class:`CelError` for a syntax error and
    :class:`CelUnsupportedError` for a function outside standard CEL and :data:`K8S_FUNCTIONS`."""
    cel = _cel()
    try:
        program = cel.compile(source)
    except Exception as err:  # the interpreter's parse error: ValueError with the position
        raise CelError(f"compilation failed: {err}") from None
    refs = program.references()
    for name in refs["functions"]:
        if not (_OPERATOR.fullmatch(name) or name in STANDARD_FUNCTIONS or name in K8S_FUNCTIONS):
            raise _unsupported(name, source)
    return Compiled(source, program, "oldSelf" in refs["variables"])


# -- values -------------------------------------------------------------------------------------------------------

#: CEL's reserved words: a property with such a name is ``__<word>__`` in a rule (apiserver/pkg/cel escaping).
RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function",
                      "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"})
_ESCAPABLE = re.compile(r"[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*")
_ESCAPES = re.compile(r"__|[.\-/]")
_ESCAPED = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}


def escape(name: str) -> str | None:
    """A property name as a rule spells it (``namespace`` → ``__namespace__``, ``x-y`` → ``x__dash__y``), or None
    when no CEL identifier can name it (the property is then out of the rules' reach)."""
    if name in RESERVED:
        return f"__{name}__"
    if not _ESCAPABLE.fullmatch(name):
        return None
    return _ESCAPES.sub(lambda m: _ESCAPED[m.group(0)], name)


def _parse_duration(text: str) -> datetime.timedelta:
    """A Go duration string (``1h30m``, ``250ms``), as ``format: duration`` strings are read."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    sign, rest = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", rest)
    if not parts or "".join(n + u for n, u in parts) != rest:
        raise _RuleError(f"invalid duration {text!r}")
    return datetime.timedelta(seconds=sign * sum(float(n) * units[u] for n, u in parts))


def _parse_time(text: str, date_only: bool) -> datetime.datetime:
    if date_only:
        return datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def to_cel(value, schema: dict | None):
    """``value`` as kube-apiserver hands it to a rule at a node of ``schema`` (see the module docstring); below a
    node without a schema (preserved unknown fields), values go as written."""
    if schema is None or value is None:
        return value
    kind = schema.get("type")
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            out = {}
            for key, item in value.items():
                name = escape(key)
                if name is not None:
                    out[name] = to_cel(item, props.get(key) or _additional(schema))
            return out
        sub = _additional(schema)
        return {key: to_cel(item, sub) for key, item in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [to_cel(item, items if isinstance(items, dict) else None) for item in value]
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "string" and isinstance(value, str):
        fmt = schema.get("format")
        try:
            if fmt == "duration":
                return _parse_duration(value)
            if fmt in ("date-time", "date"):
                return _parse_time(value, fmt == "date")
            if fmt == "byte":
                import base64

                return base64.b64decode(value)
        except (ValueError, _RuleError):
            return value  # the schema validator reports the malformed value
    return value


def _additional(schema: dict) -> dict | None:
    sub = schema.get("additionalProperties")
    return sub if isinstance(sub, dict) else None


def _plain(value):
    """Without a schema: reserved-word property names escaped, everything else as written."""
    if isinstance(value, dict):
        return {(f"__{k}__" if k in RESERVED else k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def type_name(value, schema: dict | None) -> str:
    """The node's type as the API server names it in ``Invalid value: "<type>"``: the schema's ``type``
    (empty for int-or-string and untyped nodes), else the JSON type of the value (empty for none)."""
    if schema is not None:
        return str(schema.get("type", ""))
    return "" if value is None else json_type(value)


# -- evaluating ----------------------------------------------------------------------------------------------

_PY_FAILURE = re.compile(r"Python function call failed: (\w+): (.*)\. Check function arguments", re.S)
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")


def _error_text(err: Exception) -> str:
    """The interpreter's error in cel-go's words, as kube-apiserver quotes it."""
    text = str(err)
    if isinstance(err, KeyError):
        return f"no such key: {err.args[0] if err.args else text}"
    if isinstance(err, IndexError):
        m = re.search(r"(-?\d+)", text)
        return f"index out of range: {m.group(1)}" if m else "index out of range"
    if isinstance(err, ZeroDivisionError):
        return "modulus by zero" if "modulus" in text or "remainder" in text else "division by zero"
    if isinstance(err, OverflowError):
        return "integer overflow"
    if isinstance(err, TypeError) and text.lower().startswith(("no such overload", "unsupported operation",
                                                               "unexpected type")):
        return "no such overload"
    m = _PY_FAILURE.search(text)
    if m:  # a library function: its own error, or arguments of the wrong type (no overload in cel-go)
        return m.group(2) if m.group(1) == "_RuleError" else "no such overload"
    return text.splitlines()[0]


def _evaluate(compiled: Compiled, context):
    """The rule's result, or raise: CelUnsupportedError for an unknown name, else the error text as ``_RuleError``."""
    try:
        return compiled.program.execute(context)
    except Exception as err:
        m = _UNDEFINED.search(str(err))
        if m and m.group(1) not in ("self", "oldSelf"):
            raise _unsupported(m.group(1), compiled.source) from None
        raise _RuleError(_error_text(err)) from None


def _rule_text(rule: dict) -> str:
    """kube-apiserver's ruleErrorString: the message if any, else the rule."""
    return (rule.get("message") or "").strip() or str(rule.get("rule", "")).strip()


def _message(rule: dict, context) -> str:
    """The failure detail: messageExpression's result when it yields a usable string, else the message, else
    ``failed rule: <rule>``."""
    expression = rule.get("messageExpression")
    if expression:
        try:
            result = _evaluate(compile_rule(expression), context)
        except (CelError, _RuleError):
            result = None
        if isinstance(result, str):
            text = result.strip()
            if text and "\n" not in text and len(text.encode()) <= MAX_MESSAGE_EXPRESSION_BYTES:
                return text
    message = (rule.get("message") or "").strip()
    return message or f"failed rule: {str(rule.get('rule', '')).strip()}"


def _field_error(reason: str | None, value_type: str, detail: str) -> str:
    """field.Error's body for the rule's ``reason`` (FieldValueInvalid when unset)."""
    quoted = json.dumps(value_type)
    if reason == "FieldValueForbidden":
        return f"Forbidden: {detail}"
    if reason == "FieldValueRequired":
        return f"Required value: {detail}"
    if reason == "FieldValueDuplicate":
        return f"Duplicate value: {quoted}"
    return f"Invalid value: {quoted}: {detail}"


@functools.lru_cache(maxsize=None)
def _normalized_field_path(field_path: str) -> tuple[tuple[str, bool], ...]:
    """A rule's ``fieldPath`` (``.spec.x['a.b']``) as (name, bracketed) steps."""
    steps = []
    for m in re.finditer(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]", field_path):
        if m.group(1) is not None:
            steps.append((m.group(1), False))
        else:
            steps.append((re.sub(r"\\(.)", r"\1", m.group(2)), True))
    return tuple(steps)


def _join_path(path: str, field_path: str | None, schema: dict | None) -> str:
    """The reported field: the node's path plus the rule's ``fieldPath``. As kube-apiserver resolves it against
    the schema, a step into an object's properties is a child (``.name``) and a step into a map a key
    (``[name]``), whichever notation the rule used; without a schema, ``['name']`` is taken for a map key."""
    if not field_path:
        return path or "<nil>"
    node, out = schema, path
    for name, bracketed in _normalized_field_path(field_path):
        if isinstance(node, dict):
            props = node.get("properties")
            is_key = props is None and _additional(node) is not None
            node = _additional(node) if is_key else (props or {}).get(name)
        else:
            is_key = bracketed
        out = f"{out}[{name}]" if is_key else (f"{out}.{name}" if out else name)
    return out


def check_rules(rules: list[dict], value, path: str, *, old=MISSING, schema: dict | None = None) -> list[tuple[str, str]]:
    """Evaluate a schema node's ``x-kubernetes-validations`` against its value (``self``); the failures as
    (field path, message) pairs, e.g. ``("spec.rules[0].matches[0].path", 'Invalid value: "object": value must
    be an absolute path and start with \\'/\\' ...')``.

    ``path`` is the node's field path (``""`` at the resource's root, reported as ``<nil>`` as the API server
    does). ``old`` is the node's old value on an update; transition rules (using ``oldSelf``) run only then, or
    always when marked ``optionalOldSelf`` (``oldSelf`` then being an optional). ``schema`` is the node's schema:
    pass it so values are typed and property names escaped as on a cluster (see the module docstring).
    ``message``, ``messageExpression``, ``reason`` and ``fieldPath`` shape the report as kube-apiserver 1.32 does.
    A rule using a Kubernetes function that is not modelled raises :class:`CelUnsupportedError`.
    """
    if value is None or not rules:
        return []
    has_old = old is not MISSING and old is not None
    value_type = type_name(value, schema)
    cel = _cel()
    convert = _plain if schema is None else functools.partial(to_cel, schema=schema)
    self_val = convert(value)
    old_val = convert(old) if has_old else None
    plain, optional = None, None
    errors: list[tuple[str, str]] = []
    for rule in rules:
        source = str(rule.get("rule") or "").strip()
        if not source:
            continue  # an empty rule, which the API server skips
        try:
            compiled = compile_rule(source)
        except CelUnsupportedError:
            raise
        except CelError as err:
            errors.append((path or "<nil>", f"Invalid value: {json.dumps(value_type)}: rule compile error: {err}"))
            continue
        optional_old = bool(rule.get("optionalOldSelf")) and compiled.uses_old_self
        if compiled.uses_old_self and not has_old and not optional_old:
            continue  # a transition rule, on a create
        if plain is None:
            variables = {"self": self_val, **({"oldSelf": old_val} if has_old else {})}
            plain = cel.Context(variables, K8S_FUNCTIONS)
        context = plain
        if optional_old:
            if optional is None:
                wrapped = cel.OptionalValue.of(old_val) if has_old else cel.OptionalValue.none()
                optional = cel.Context({"self": self_val, "oldSelf": wrapped}, K8S_FUNCTIONS)
            context = optional
        try:
            result = _evaluate(compiled, context)
        except _RuleError as err:
            text = str(err)
            if text == "no such overload":
                detail = (f"'{text}': call arguments did not match a supported operator, function or macro "
                          f"signature for rule: {_rule_text(rule)}")
            else:
                detail = f"{text} evaluating rule: {_rule_text(rule)}"
            errors.append((path or "<nil>", f"Invalid value: {json.dumps(value_type)}: {detail}"))
            continue
        if result is True:
            continue
        where = _join_path(path, rule.get("fieldPath"), schema)
        errors.append((where, _field_error(rule.get("reason"), value_type, _message(rule, plain))))
    return errors
