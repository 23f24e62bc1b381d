"""A small JSON API for the signed-in user: their tasks, a task's form, completing it, an instance.

Authentication is the web session (token authentication is a separate
issue); state-changing calls need the ``X-CSRFToken`` header. Errors come back
as JSON from :mod:`web.errors`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, request
from marshmallow import Schema, fields

import engine

from .auth import require_login
from .db import db_session

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(require_login)


class TaskSchema(Schema):
    id = fields.Integer()
    instance_id = fields.Integer()
    process_id = fields.String()
    bpmn_id = fields.String()
    name = fields.String()
    lane = fields.String(allow_none=True)
    candidate_group = fields.String(allow_none=True)
    state = fields.String()
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None)
    due_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)


class InstanceSchema(Schema):
    id = fields.Integer()
    process_id = fields.String()
    version = fields.Function(lambda i: i.definition.version)
    status = fields.String()
    business_key = fields.String(allow_none=True)
    title = fields.String()
    error_message = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)


task_schema = TaskSchema()
instance_schema = InstanceSchema()


def _json_body() -> Any:
    """Return the request's JSON body, or ``None`` when it is not JSON.

    Parsed through :func:`engine.load_json`, which measures nesting first:
    ``json`` itself would fail with a ``RecursionError`` on a deeply nested body.

    :raises BadRequest: (400) the body nests deeper than ``engine.MAX_DATA_DEPTH`` levels.
    """
    if not request.is_json:
        return None
    try:
        return engine.load_json(request.get_data(as_text=True))
    except engine.DataError as exc:
        abort(400, description=str(exc))
    except ValueError:  # not JSON (or not UTF-8): the caller answers with what it expects
        return None


# How many tasks one call of the task list returns at most, and without ``limit``.
MAX_TASKS_PER_PAGE = 200
DEFAULT_TASKS_PER_PAGE = 50


@bp.route("/tasks")
def tasks() -> dict[str, Any]:
    """Return a page of the open tasks the user may work on in their organisation, as the inbox shows them.

    Query parameters as the inbox's: ``view`` (all, mine, group), ``process``,
    ``q``, ``sort`` (due, created, name), ``limit`` (at most
    ``MAX_TASKS_PER_PAGE``) and ``after`` or ``before`` a cursor. ``next`` and
    ``previous`` are the cursors of the neighbouring pages (``null``: none).

    :raises BadRequest: (400) an unknown view or sort, a bad limit, or a cursor that is not one.
    """
    limit = request.args.get("limit", str(DEFAULT_TASKS_PER_PAGE))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_TASKS_PER_PAGE:
        abort(400, description=f"limit must be a whole number from 1 to {MAX_TASKS_PER_PAGE}")
    where = engine.TaskFilter(
        organisation_id=g.organisation.id,
        view=request.args.get("view", "all"),
        process_id=request.args.get("process") or None,
        text=request.args.get("q") or None,
    )
    page = engine.inbox_page(
        db_session(),
        user_id=g.user.id,
        where=where,
        sort=request.args.get("sort", "due"),
        limit=int(limit),
        after=request.args.get("after") or None,
        before=request.args.get("before") or None,
    )
    return {
        "tasks": task_schema.dump(page.tasks, many=True),
        "next": page.next_cursor,
        "previous": page.previous_cursor,
    }


@bp.route("/tasks/<int:task_id>")
def task(task_id: int) -> dict[str, Any]:
    """Return a task with its form's JSON Schema and UI schema.

    :raises NotFound: (404) no such task in the user's organisation.
    """
    db = db_session()
    found = engine.get_task(db, task_id, organisation_id=g.organisation.id)
    return {
        "task": task_schema.dump(found),
        "schema": engine.task_form_schema(db, found),
        "ui_schema": engine.task_ui_schema(db, found),
    }


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
def complete(task_id: int) -> dict[str, Any]:
    """Complete a task with the JSON body's ``data`` object.

    :raises BadRequest: (400) the body is not a JSON object with an object ``data``, or it nests too deep.
    :raises NotFound: (404) no such task in the user's organisation.
    :raises Forbidden: (403) the user may not work on the task.
    :raises Conflict: (409) the task was completed meanwhile, or the instance is not active.
    :raises UnprocessableEntity: (422) the data does not satisfy the form, with ``errors`` per field.
    """
    body = _json_body()
    data = body.get("data", {}) if isinstance(body, dict) else None
    if not isinstance(data, dict):
        abort(400, description="Send a JSON object with a 'data' object")
    db = db_session()
    found = engine.get_task(db, task_id, organisation_id=g.organisation.id)
    instance = engine.complete_task(db, found.id, user=g.user.username, data=data)
    return {"instance": instance_schema.dump(instance)}


@bp.route("/instances/<int:instance_id>")
def instance(instance_id: int) -> dict[str, Any]:
    """Return an instance with its data and tasks.

    :raises NotFound: (404) no such instance in the user's organisation.
    """
    db = db_session()
    found = engine.get_instance(db, instance_id, organisation_id=g.organisation.id)
    return {
        "instance": instance_schema.dump(found),
        "data": engine.instance_data(db, found),
        "tasks": task_schema.dump(
            engine.list_tasks(db, organisation_id=g.organisation.id, instance_id=instance_id, state=None),
            many=True,
        ),
    }
