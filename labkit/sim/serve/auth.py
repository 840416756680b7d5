"""Who may use a served mesh: the bearer token ``serve()`` writes into its kubeconfig.

A served mesh listens on loopback, but on a shared machine (a JupyterHub
node) every local user reaches loopback, so the API is locked like a real API
server's: ``serve()`` makes a random token, writes it only into its
kubeconfig (mode 0600, in a private folder), and every request must carry it
as ``Authorization: Bearer …`` — or is answered 401 as a real server answers
an unauthenticated client. Every HTTP endpoint the served mesh has (the
Kubernetes API, the port-forwarded Prometheus and proxy admin ports, labkit's
extensions, and any server added next to them) calls :func:`authenticate`
first, so there is one place that decides.
"""
from __future__ import annotations

import hmac
import secrets

from labkit.sim.serve.kubeapi import ApiError


def new_token() -> str:
    """A random bearer token (256 bits), as a ServiceAccount token is unguessable."""
    return secrets.token_urlsafe(32)


def authenticate(headers, token: str | None) -> None:
    """Raise a 401 :class:`ApiError` unless ``headers`` carry ``Authorization: Bearer <token>``.

    ``token=None`` means the server was started unlocked on purpose (``serve(token=None)`` is not the
    default; see ``Served``). The comparison takes the same time whatever the guess.
    """
    if token is None:
        return
    given = headers.get("Authorization", "") or ""
    scheme, _, value = given.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return
    raise ApiError(401, "Unauthorized", "Unauthorized")
