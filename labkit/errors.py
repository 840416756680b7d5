"""The errors labkit raises on purpose: each names the input and the fix."""
from __future__ import annotations


class LabkitError(Exception):
    """Base class: an error labkit raises on purpose, with a message meant for a learner.

    In a notebook it shows as what it is, the refusal (``ApplyError: The Deployment "web" is invalid: ...``),
    not a traceback through labkit's internals: IPython prints ``_render_traceback_`` in place of the traceback.
    A learner whose YAML has a typo reads kubectl's words, not the apply pipeline's call stack.
    """

    def _render_traceback_(self) -> list[str]:
        text = str(self)
        lines = text.splitlines() or [""]
        return [f"{type(self).__name__}: {lines[0]}", *lines[1:]]


class BackendError(LabkitError, ValueError):
    """A backend that cannot be used as asked (unknown name, missing context...)."""


class ApplyError(LabkitError, ValueError):
    """A manifest the cluster refuses; nothing from the same apply call was applied.

    The message is what kubectl prints for the refusal. When the API server refused it, ``status`` is its
    ``metav1.Status`` (``code``, ``reason``, ``details.causes`` with each ``field`` and ``message``), the same on both
    backends; otherwise None.
    """

    status: dict | None = None


class NotFoundError(LabkitError, KeyError):
    """An object that does not exist, phrased like the API server's NotFound."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class QueryError(LabkitError, ValueError):
    """PromQL that is malformed or outside the subset the embedded evaluator supports."""
