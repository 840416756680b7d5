"""Field errors as the API server words them (apimachinery's ``field.Error``), and the Go formatting they use.

Every refusal of an object by the API server is a list of field errors, each
``<field>: <type>[: <value>][: <detail>]`` — ``spec.replicas: Invalid value: -1:
must be greater than or equal to 0`` — and the same list becomes the causes of
the 422 ``Status`` (``reason`` FieldValueInvalid, ``field``, ``message``). The
value is printed the way Go's ``fmt`` prints it (``%q`` for strings, ``%v``
for numbers, ``%#v`` for maps), which is why this module renders Go values.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: An error whose value is not shown (``Too many``, a Required value...).
OMIT = object()

#: field.ErrorType → the words ``ErrorBody`` starts with.
WORDS = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
#: Types whose body never shows the value.
_NO_VALUE = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}


def go_float(value: float) -> str:
    """A float as Go's ``%v`` prints it: shortest digits; exponent form (``1e+06``) from 1e6 up and below 1e-4."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    sign, digit_tuple, exp = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent = len(digit_tuple) - 1 + exp  # of the leading digit
    digits = digits.lstrip("0") or "0"
    minus = "-" if value < 0 else ""
    if exponent < -4 or exponent >= 6:
        rest = digits[1:]
        return f"{minus}{digits[0]}{'.' + rest if rest else ''}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if exponent >= 0:
        whole, frac = digits[:exponent + 1].ljust(exponent + 1, "0"), digits[exponent + 1:]
        return f"{minus}{whole}{'.' + frac if frac else ''}"
    return f"{minus}0.{'0' * (-exponent - 1)}{digits}"


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``): double quotes, printable Unicode kept, escapes for the rest."""
    return json.dumps(text, ensure_ascii=False)


def go_scalar(value: Any) -> str:
    """A JSON scalar as ``%v`` prints it inside composite values."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def go_syntax(value: Any, typed: str | None = None) -> str:
    """Go's ``%#v`` of decoded JSON: ``map[string]interface {}{"a":"b"}``, ``[]interface {}{1, "x"}``.

    ``typed`` names a concrete Go type instead (``map[string]string`` for labels).
    """
    if isinstance(value, dict):
        kind = typed or "map[string]interface {}"
        inner = ", ".join(f"{go_quote(str(k))}:{go_syntax(v)}" for k, v in sorted(value.items()))
        return f"{kind}{{{inner}}}"
    if isinstance(value, list):
        kind = typed or "[]interface {}"
        return f"{kind}{{{', '.join(go_syntax(v) for v in value)}}}"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if value is None:
        return "interface {}(nil)"
    return str(value)


def go_value(value: Any) -> str:
    """The value part of an error body: ``%v`` for numbers and booleans, ``%q`` for strings, ``%#v`` otherwise
    (a nil value is shown as the string ``"null"``, as ``ErrorBody`` does)."""
    if value is None:
        return '"null"'
    if isinstance(value, GoText):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return go_float(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_syntax(value)


class GoText(str):
    """A value already rendered as Go prints it (``map[string]string{"app":"web"}``): shown as is."""


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: its type (the Status cause's ``reason``), field path, bad value and detail."""

    reason: str
    field: str
    value: Any = OMIT
    detail: str = ""

    @property
    def body(self) -> str:
        """``ErrorBody()``: the message without the field (the Status cause's ``message``)."""
        words = WORDS.get(self.reason, self.reason)
        text = words if self.reason in _NO_VALUE or self.value is OMIT else f"{words}: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body}"

    def cause(self) -> dict:
        return {"reason": self.reason, "message": self.body, "field": self.field}


# -- constructors, named after apimachinery's -------------------------------------------------------------

def required(field: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field, "", detail)


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueInvalid", field, value, detail)


def type_invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueTypeInvalid", field, value, detail)


def not_supported(field: str, value: Any, supported: list) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(str(v)) for v in supported) if supported else ""
    return FieldError("FieldValueNotSupported", field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", field, value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, "", detail)


def too_long(field: str, limit: int) -> FieldError:
    """``field.TooLong`` as of Kubernetes 1.32: ``Too long: may not be more than N bytes``."""
    unit = "byte" if limit == 1 else "bytes"
    detail = f"may not be more than {limit} {unit}" if limit >= 0 else "value is too long"
    return FieldError("FieldValueTooLong", field, OMIT, detail)


def too_many(field: str, actual: int, limit: int) -> FieldError:
    unit = "item" if limit == 1 else "items"
    detail = f"must have at most {limit} {unit}" if limit >= 0 else "has too many items"
    return FieldError("FieldValueTooMany", field, actual if actual >= 0 else OMIT, detail)


def from_pair(field: str, message: str) -> FieldError:
    """A ``(field, "Invalid value: ...")`` pair (as the CEL evaluator returns) as a FieldError with its reason."""
    for reason, words in WORDS.items():
        if reason != "FieldValueTypeInvalid" and (message == words or message.startswith(words + ":")):
            return _Rendered(reason, field, OMIT, message)
    return _Rendered("FieldValueInvalid", field, OMIT, message)


@dataclass(frozen=True)
class _Rendered(FieldError):
    """A field error whose body arrived already written."""

    @property
    def body(self) -> str:
        return self.detail
