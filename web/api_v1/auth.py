"""Who calls ``/api/v1``: the bearer token of every request, never the session cookie.

:func:`authenticate` runs before every API view: it puts the token's user,
organisation and membership in ``g.user``, ``g.organisation`` and
``g.membership`` (what a signed-in session would have put there is dropped),
and refuses a write with a read-only token. Since no cookie is accepted, a
request cannot be forged from another site: the API needs no CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

import engine

from ..db import db_session
from .problems import problem

F = TypeVar("F", bound=Callable[..., Any])
READING_METHODS = ("GET", "HEAD", "OPTIONS")


def authenticate() -> Any:
    """Identify the caller by ``Authorization: Bearer <token>`` (a ``before_request`` hook).

    Answers 401 without a token or with one that is unknown, revoked or expired,
    and 403 for a write with a token without the ``write`` scope.
    """
    g.user = g.organisation = g.membership = g.api_token = None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return problem(
            401,
            "Send an API token: Authorization: Bearer <token>.",
            code="token-required",
            headers={"WWW-Authenticate": 'Bearer realm="procflow"'},
        )
    try:
        record, membership = engine.api_tokens.authenticate_token(db_session(), token)
    except engine.api_tokens.TokenRejectedError as exc:
        return problem(
            401,
            f"The token is not valid: {exc}.",
            code="invalid-token",
            headers={"WWW-Authenticate": 'Bearer realm="procflow", error="invalid_token"'},
        )
    needed = "read" if request.method in READING_METHODS else "write"
    if needed not in record.scopes:
        return problem(
            403,
            f"This token may only {', '.join(record.scopes)}; this request needs the {needed!r} scope.",
            code="insufficient-scope",
            headers={
                "WWW-Authenticate": f'Bearer realm="procflow", error="insufficient_scope", scope="{needed}"'
            },
        )
    g.user, g.organisation, g.membership, g.api_token = (
        record.user,
        membership.organisation,
        membership,
        record,
    )
    return None


def roles() -> set[str]:
    """Return the token user's roles in the token's organisation."""
    return set(g.membership.roles) if g.get("membership") else set()


def groups() -> set[str]:
    """Return the keys of the token user's groups in the token's organisation."""
    return {group.key for group in g.membership.groups} if g.get("membership") else set()


def require_roles(*allowed: str, group: str | None = None) -> Callable[[F], F]:
    """Let only members with one of *allowed* roles (or in *group*) use the decorated view.

    :raises PermissionDeniedError: (403) for everyone else.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not (roles() & set(allowed) or (group is not None and group in groups())):
                also = f" or the group {group!r}" if group else ""
                raise engine.PermissionDeniedError(f"This needs one of the roles {', '.join(allowed)}{also}")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
