"""Studio views: what the modeler's lint rules ask the server (expressions the sandbox refuses).

bpmnlint rules run in the browser and cannot compile Python; the modeler's
``procflow/expression-refused`` rule sends the model's conditions, scripts
and other expressions here and shows what comes back on their elements
(see ``web/studio-src/lint/``).
"""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from . import bp

#: The longest element id accepted (ids are echoed back, never looked up).
MAX_ELEMENT_CHARS = 500


class _BadRequest(ValueError):
    """The request body is not what the endpoint expects; ``field`` is a JSON pointer into it."""

    def __init__(self, message: str, field: str) -> None:
        self.field = field
        super().__init__(message)


def _items(body: Any) -> list[tuple[str, str, str]]:
    """Return ``(element, kind, text)`` for each entry of the request's ``expressions``.

    :raises _BadRequest: the body is not ``{"expressions": [{"element", "kind", "text"}, ...]}``.
    """
    expressions = body.get("expressions") if isinstance(body, dict) else None
    if not isinstance(expressions, list):
        raise _BadRequest('Expected a JSON object {"expressions": [...]}', "/expressions")
    most = engine.expressions.MAX_CODES
    if len(expressions) > most:
        raise _BadRequest(
            f"{len(expressions):,} expressions sent; at most {most:,} are checked at once",
            "/expressions",
        )
    items = []
    for index, entry in enumerate(expressions):
        where = f"/expressions/{index}"
        if not isinstance(entry, dict):
            raise _BadRequest(f"Expression {index} is not an object", where)
        element, kind, text = entry.get("element", ""), entry.get("kind"), entry.get("text")
        if not isinstance(element, str) or len(element) > MAX_ELEMENT_CHARS:
            raise _BadRequest(
                f"Expression {index}: element must be an id of at most {MAX_ELEMENT_CHARS} characters",
                f"{where}/element",
            )
        if kind not in engine.expressions.KINDS:
            raise _BadRequest(
                f"Expression {index}: kind must be one of {', '.join(engine.expressions.KINDS)}",
                f"{where}/kind",
            )
        if not isinstance(text, str):
            raise _BadRequest(f"Expression {index}: text must be a string", f"{where}/text")
        if len(text) > engine.expressions.MAX_CODE_CHARS:
            raise _BadRequest(
                f"Expression {index} (element {element!r}) has {len(text):,} characters; "
                f"at most {engine.expressions.MAX_CODE_CHARS:,} are checked",
                f"{where}/text",
            )
        items.append((element, kind, text))
    return items


def _refused(message: str, field: str | None = None, *, status: int = 422) -> tuple[Response, int]:
    problem = engine.Problem(message, field=field)
    return jsonify({"message": message, "problems": [problem.as_dict()]}), status


def _in_studio(process_id: str) -> bool:
    """Whether the organisation has a draft of *process_id* or runs a version of it."""
    session, organisation_id = db_session(), g.organisation.id
    if engine.studio.find_draft(session, organisation_id, process_id) is not None:
        return True
    try:
        engine.resolve_definition(session, process_id, organisation_id)
    except engine.NotFoundError:
        return False
    return True


@bp.post("/<process_id>/lint/expressions")
def lint_expressions(process_id: str) -> Response | tuple[Response, int]:
    """Compile each expression or script of the request with the sandbox's compiler; run none.

    Body ``{"expressions": [{"element", "kind": "expression"|"script", "text"}, ...]}``;
    answers ``{"results": [{"element", "kind", "text", "error": str|null, "line": int|null}, ...]}``
    in the same order. A refused text is a result, not an error.

    :raises 404: not a process owner or admin of the organisation (see :mod:`web.studio`); as JSON
        when the organisation has no draft and no version of *process_id*.
    :returns 422: the body is malformed or too large; ``problems`` names the field (JSON pointer).
    """
    if not _in_studio(process_id):
        return _refused(f"No process {process_id!r} in this organisation's studio", status=404)
    try:
        items = _items(request.get_json(silent=True))
        checks = engine.expressions.check_codes((kind, text) for _element, kind, text in items)
    except _BadRequest as exc:
        return _refused(str(exc), exc.field)
    except engine.DataError as exc:
        return _refused(str(exc), "/expressions")
    results = [
        {"element": element, "kind": check.kind, "text": check.text, "error": check.error, "line": check.line}
        for (element, _kind, _text), check in zip(items, checks, strict=True)
    ]
    return jsonify({"results": results})
