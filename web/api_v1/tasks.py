"""``/api/v1/tasks``: the inbox of the token's user, one task with its form, claim, unclaim, complete."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint

import engine

from ..db import db_session
from .auth import authenticate
from .problems import init_blueprint
from .schemas import (
    ID,
    complete_task_schema,
    instance_schema,
    task_detail_schema,
    task_page_schema,
    task_query_schema,
    task_schema,
)

bp = Blueprint("api_v1_tasks", __name__, url_prefix="/api/v1/tasks", description="Human tasks.")
bp.before_request(authenticate)
init_blueprint(bp)


@bp.route("")
@bp.arguments(task_query_schema, location="query", as_kwargs=True)
@bp.response(200, task_page_schema)
def list_tasks(**query: Any) -> Any:
    """A page of the open tasks the user may work on, filtered and sorted as the inbox does.

    ``view``: all, mine (assigned to the user) or group (unassigned). Pass a
    page's ``next_cursor`` as ``after`` (or ``previous_cursor`` as ``before``).

    :raises DataError: (400) both cursors, or a cursor that is not one.
    """
    where = engine.TaskFilter(
        organisation_id=g.organisation.id,
        view=query["view"],
        process_id=query.get("process_id"),
        text=query.get("q"),
    )
    page = engine.inbox_page(
        db_session(),
        user_id=g.user.id,
        where=where,
        sort=query["sort"],
        limit=query["limit"],
        after=query.get("after"),
        before=query.get("before"),
    )
    return {"items": page.tasks, "next_cursor": page.next_cursor, "previous_cursor": page.previous_cursor}


def _task(task_id: int) -> engine.HumanTask:
    return engine.get_task(db_session(), task_id, organisation_id=g.organisation.id)


@bp.route(f"/<{ID}:task_id>")
@bp.response(200, task_detail_schema)
def get_task(task_id: int) -> Any:
    """A task with its form's JSON Schema and UI schema (null: no form) and the data it sees.

    :raises NotFoundError: (404) no such task in the organisation.
    """
    db = db_session()
    found = _task(task_id)
    data = engine.task_data(db, found) if found.state == "ready" else {}
    return {
        "task": found,
        "schema": engine.task_form_schema(db, found),
        "ui_schema": engine.task_ui_schema(db, found),
        "data": data,
    }


@bp.route(f"/<{ID}:task_id>/claim", methods=["POST"])
@bp.response(200, task_schema)
def claim_task(task_id: int) -> Any:
    """Assign the task to the token's user.

    :raises PermissionDeniedError: (403) the user may not work on it.
    :raises ConflictError: (409) someone else has claimed or completed it.
    """
    return engine.claim_task(db_session(), _task(task_id).id, user=g.user.username)


@bp.route(f"/<{ID}:task_id>/unclaim", methods=["POST"])
@bp.response(200, task_schema)
def unclaim_task(task_id: int) -> Any:
    """Give the task back to its group (its assignee, or an admin).

    :raises PermissionDeniedError: (403) neither, or the process assigned it to one person.
    """
    return engine.unclaim_task(db_session(), _task(task_id).id, user=g.user.username)


@bp.route(f"/<{ID}:task_id>/complete", methods=["POST"])
@bp.arguments(complete_task_schema, as_kwargs=True)
@bp.response(200, instance_schema)
def complete_task(task_id: int, data: dict[str, Any]) -> Any:
    """Complete the task with the form's fields in ``data``; the case runs on to its next wait.

    :raises PermissionDeniedError: (403) lane, assignee or separation of duties refuses the user.
    :raises FormValidationError: (422) the data does not satisfy the form; ``errors`` names each field.
    :raises ConflictError: (409) the task was completed meanwhile.
    :raises InvalidStateError: (409) the case is suspended or has ended.
    """
    return engine.complete_task(db_session(), _task(task_id).id, user=g.user.username, data=data)
