"""Every error of ``/api/v1`` as an RFC 9457 problem details object (``application/problem+json``).

``type`` is ``about:blank`` for a plain HTTP error (the status says it all) and
``urn:procflow:problem:<code>`` for Procflow's own (a form that is not valid,
a conflict, a token that is refused); ``code`` repeats that last part for
clients that switch on it. Invalid input names each field in ``errors``: one
entry per message, with the field's path (``quotes/0/price``) and a JSON
pointer into the request (``/data/quotes/0/price`` for a task's form data,
``/limit`` for a query parameter).

The handlers are registered on every API blueprint (:func:`init_blueprint`);
:func:`routing_problem` answers the paths and methods no API route matches,
which never reach a blueprint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, json, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, NotFound

import engine
from forms import FormSchemaError

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:procflow:problem:"
API_PREFIX = "/api/v1/"


class FieldErrorSchema(Schema):
    field = fields.String(required=True, metadata={"description": "The field's path, '' for the whole."})
    pointer = fields.String(required=True, metadata={"description": "JSON pointer into the request."})
    detail = fields.String(required=True)


class ProblemSchema(Schema):
    type = fields.String(required=True, metadata={"example": "urn:procflow:problem:invalid-form"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String(metadata={"description": "The path of the request."})
    code = fields.String(metadata={"description": "Procflow's name of the problem."})
    errors = fields.List(fields.Nested(FieldErrorSchema), metadata={"description": "Invalid fields."})
    retry_after = fields.Integer(metadata={"description": "Seconds to wait, for 429."})


problem_schema = ProblemSchema()

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Return a problem details response; *code* makes its type ``urn:procflow:problem:<code>``."""
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{code}" if code else "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if code:
        body["code"] = code
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=CONTENT_TYPE)
    response.headers.update(dict(headers or {}))
    return response


def field_errors(messages: Mapping[str, Any], *, pointer_prefix: str = "") -> list[dict[str, str]]:
    """Return one entry per message of *messages* (field path → messages, nested mappings allowed)."""
    return [
        {
            "field": path,
            "pointer": f"{pointer_prefix}/{path}" if path else pointer_prefix or "/",
            "detail": text,
        }
        for path, text in _flatten(messages, "")
    ]


def _flatten(messages: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            key = str(key)
            if key == "_schema":
                key = ""
            yield from _flatten(value, f"{path}/{key}" if path and key else path or key)
    elif isinstance(messages, list | tuple):
        for value in messages:
            yield from _flatten(value, path)
    else:
        yield path, str(messages)


def _form_pointer_prefix() -> str:
    # A task's and a start's form data travel in the body's "data" member; a message's in "payload".
    endpoint = request.endpoint or ""
    if endpoint.endswith(("complete_task", "start_instance", "set_instance_data", "retry_instance")):
        return "/data"
    if endpoint.endswith("send_message"):
        return "/payload"
    return ""


def _engine_problem(exc: engine.ProcflowError) -> Response:
    if isinstance(exc, engine.api_tokens.TokenRejectedError):
        return problem(
            401,
            "The token is not valid (unknown, revoked or expired).",
            code="invalid-token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if isinstance(exc, engine.NotFoundError):
        return problem(404, str(exc), code="not-found")
    if isinstance(exc, engine.PermissionDeniedError):
        return problem(403, str(exc), code="permission-denied")
    if isinstance(exc, engine.ConflictError):
        return problem(409, str(exc), code="conflict")
    if isinstance(exc, engine.InvalidStateError):
        return problem(409, str(exc), code="invalid-state")
    if isinstance(exc, engine.FormValidationError):
        errors = [
            {"field": field, "pointer": f"{_form_pointer_prefix()}/{field}" if field else "/", "detail": text}
            for field, texts in exc.errors.items()
            for text in texts
        ]
        return problem(422, "The data does not satisfy the form.", code="invalid-form", errors=errors)
    if isinstance(exc, engine.DeploymentError):
        where = exc.problem()
        return problem(
            422,
            str(exc),
            code="invalid-bundle",
            errors=[{"field": where.file or "", "pointer": "/file", "detail": exc.message}],
        )
    return problem(400, str(exc), code="bad-request")


def _http_problem(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    messages = data.get("messages")
    if status == 422 and isinstance(messages, Mapping):
        # webargs: {"json": {...}, "query": {...}}; the pointer says where the field was.
        errors: list[dict[str, str]] = []
        for location, fields_ in messages.items():
            prefix = "" if location in ("json", "form", "files") else f"/{location}"
            errors.extend(field_errors(fields_, pointer_prefix=prefix))
        return problem(
            422, "The request is not valid.", code="invalid-request", errors=errors, headers=headers
        )
    if status >= 500:
        return problem(status, "The error has been logged. Please try again later.", headers=headers)
    detail = data.get("message") or exc.description or _TITLES.get(status, "Error")
    return problem(status, str(detail), headers=headers)


def _broken_form(exc: FormSchemaError) -> Response:
    # The model's form, not the caller's input, is at fault.
    return problem(
        500, f"This task's form is broken; ask the process owner to fix it: {exc}", code="broken-form"
    )


def _internal_error(exc: InternalServerError) -> Response:
    return problem(500, "The error has been logged. Please try again later.")


def init_blueprint(bp: Blueprint) -> None:
    """Answer every error raised in *bp*'s views and hooks as a problem."""
    bp.register_error_handler(engine.ProcflowError, _engine_problem)
    bp.register_error_handler(FormSchemaError, _broken_form)
    bp.register_error_handler(HTTPException, _http_problem)
    bp.register_error_handler(InternalServerError, _internal_error)


def routing_problem() -> Response | None:
    """Answer a request under ``/api/v1/`` that matches no route (or not its method) with a problem.

    An app ``before_request`` hook: such requests belong to no blueprint, so the
    blueprints' handlers never see them.
    """
    exc = request.routing_exception
    if not request.path.startswith(API_PREFIX) or not isinstance(exc, NotFound | MethodNotAllowed):
        return None
    current_app.logger.debug("no API route for %s %s", request.method, request.path)
    if isinstance(exc, MethodNotAllowed):
        return _http_problem(exc)
    return problem(404, "There is no such API resource.")
