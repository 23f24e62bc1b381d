"""The one place where errors become HTTP responses: HTML pages, or JSON under ``/api``.

Engine errors map to status codes (not found 404, permission denied 403, a
lost race or a wrong state 409, too many failed sign-ins 429 with the sign-in
form and when to try again); a form the engine refused is sent back to the
user with each message beside its field, by the view that registered itself in
``g.rerender_form`` before calling the engine.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

import engine
from forms import FormSchemaError

from .auth import safe_next

RerenderForm = Callable[[dict[str, list[str]]], Any]


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _json(status: int, error: str, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": error, "message": message, **extra}), status


def _page(status: int, title: str, message: str, **extra: Any) -> tuple[str, int]:
    return render_template("errors/error.html", status=status, title=title, message=message, **extra), status


def _not_found(exc: Exception) -> Any:
    if _is_api():
        return _json(404, "not_found", str(exc) if isinstance(exc, engine.NotFoundError) else "Not found")
    return _page(404, _("Not found"), _("There is nothing here, or it is not visible to you."))


def _permission_denied(exc: engine.PermissionDeniedError) -> Any:
    if _is_api():
        return _json(403, "permission_denied", str(exc))
    return _page(403, _("Not allowed"), _("You may not do this."), detail=str(exc))


def _conflict(exc: engine.ConflictError) -> Any:
    if _is_api():
        return _json(409, "conflict", str(exc))
    return (
        render_template(
            "errors/conflict.html",
            detail=str(exc),
            task=g.get("conflict_task"),
            submitted=g.get("submitted_values") or {},
        ),
        409,
    )


def _invalid_state(exc: engine.InvalidStateError) -> Any:
    if _is_api():
        return _json(409, "invalid_state", str(exc))
    return _page(
        409, _("Not possible right now"), _("The case is not in a state that allows this."), detail=str(exc)
    )


def _form_invalid(exc: engine.FormValidationError) -> Any:
    if _is_api():
        return _json(422, "invalid_form", str(exc), errors=exc.errors)
    rerender: RerenderForm | None = g.get("rerender_form")
    if rerender is None:
        return _page(422, _("The form is not valid"), str(exc))
    return rerender(exc.errors), 422


def _sign_in_throttled(exc: engine.SignInThrottledError) -> Any:
    wait = max(1, math.ceil((exc.retry_at - engine.models.utcnow()).total_seconds()))
    if wait > 60:
        # Rounded up to whole minutes, so "try again in 2 minutes" is never too early.
        wait = math.ceil(wait / 60) * 60
    headers = {"Retry-After": str(wait)}
    if _is_api():
        return jsonify({"error": "too_many_attempts", "message": str(exc), "retry_after": wait}), 429, headers
    when = format_timedelta(dt.timedelta(seconds=wait), threshold=1, add_direction=True)
    message = _("Too many failed sign-ins. Try again %(when)s.", when=when)
    page = render_template(
        "auth/login.html",
        next_url=safe_next(request.values.get("next"), url_for("tasks.inbox")),
        username=request.form.get("username", "").strip(),
        error=message,
    )
    return page, 429, headers


def _engine_error(exc: engine.ProcflowError) -> Any:
    if _is_api():
        return _json(400, "bad_request", str(exc))
    return _page(400, _("That did not work"), str(exc))


def _broken_form(exc: FormSchemaError) -> Any:
    # The model's form, not the user's input, is at fault: say so, and what is wrong with it.
    message = _("This task's form is broken; ask the process owner to fix it: %(problem)s", problem=str(exc))
    if _is_api():
        return _json(500, "broken_form", message)
    return _page(500, _("The form cannot be shown"), message)


def _csrf_failed(exc: CSRFError) -> Any:
    if _is_api():
        return _json(400, "csrf", exc.description or "CSRF check failed")
    return _page(
        400,
        _("The form has expired"),
        _("The form was too old or did not come from this site. Go back, reload the page and try again."),
    )


_HTTP_TITLES: dict[int, Callable[[], str]] = {
    400: lambda: _("Bad request"),
    401: lambda: _("Please sign in"),
    403: lambda: _("Not allowed"),
    404: lambda: _("Not found"),
    405: lambda: _("Not allowed"),
    413: lambda: _("The file is too large"),
    429: lambda: _("Too many attempts"),
}


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if status == 404:
        return _not_found(exc)
    if _is_api():
        return _json(status, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
    if status >= 500:
        return _page(
            status, _("Something went wrong"), _("The error has been logged. Please try again later.")
        )
    if status == 429:
        message = _("Too many attempts. Wait a minute and try again.")
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        message = _(
            "The upload is larger than this server accepts (at most %(size)s MB).",
            size=max(1, limit // (1024 * 1024)),
        )
    else:
        message = _("The request could not be handled.")
    return _page(status, _HTTP_TITLES.get(status, lambda: exc.name or "")(), message)


def _internal_error(exc: InternalServerError) -> Any:
    return _http_error(exc)


def init_app(app: Flask) -> None:
    """Register every error handler on *app*."""
    app.register_error_handler(engine.NotFoundError, _not_found)
    app.register_error_handler(engine.PermissionDeniedError, _permission_denied)
    app.register_error_handler(engine.ConflictError, _conflict)
    app.register_error_handler(engine.InvalidStateError, _invalid_state)
    app.register_error_handler(engine.FormValidationError, _form_invalid)
    app.register_error_handler(engine.SignInThrottledError, _sign_in_throttled)
    app.register_error_handler(engine.ProcflowError, _engine_error)
    app.register_error_handler(FormSchemaError, _broken_form)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _internal_error)
