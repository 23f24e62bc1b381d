"""``/api/v1/instances``: start cases, list them (the reporting projection), read one, and admin operations.

Suspend, resume, cancel, retry and set-data are admin actions: the engine
refuses them (403) for a token whose user is not an admin of its organisation.
"""

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
    data_body_schema,
    instance_detail_schema,
    instance_page_schema,
    instance_query_schema,
    instance_schema,
    retry_body_schema,
    start_instance_schema,
)

bp = Blueprint("api_v1_instances", __name__, url_prefix="/api/v1/instances", description="Cases (instances).")
bp.before_request(authenticate)
init_blueprint(bp)


@bp.route("", methods=["GET"])
@bp.arguments(instance_query_schema, location="query", as_kwargs=True)
@bp.response(200, instance_page_schema)
def list_instances(**query: Any) -> Any:
    """A page of the organisation's cases, newest first; ``next_cursor`` fetches the next page.

    ``mine=true``: only the cases the token's user started or completed a task in.

    :raises DataError: (400) a cursor that is not one, or a period that ends before it starts.
    """
    where = engine.cases.CaseFilter(
        process_id=query.get("process_id"),
        status=query.get("status"),
        started_from=query.get("started_from"),
        started_to=query.get("started_to"),
        text=query.get("q"),
        participant_id=g.user.id if query["mine"] else None,
    )
    page = engine.cases.case_page(
        db_session(),
        organisation_id=g.organisation.id,
        where=where,
        sort=query["sort"],
        cursor=query.get("cursor"),
        limit=query["limit"],
    )
    return {"items": page.rows, "next_cursor": page.next_cursor}


@bp.route("", methods=["POST"])
@bp.arguments(start_instance_schema, as_kwargs=True)
@bp.response(201, instance_schema)
def start_instance(process_id: str, data: dict[str, Any], **options: Any) -> Any:
    """Start a case of a process with the start form's data (``data``), as the token's user.

    :raises NotFoundError: (404) the organisation runs no such process.
    :raises PermissionDeniedError: (403) the user's roles do not allow starting cases.
    :raises FormValidationError: (422) the data does not satisfy the start form; ``errors`` names each field.
    """
    return engine.start_instance(
        db_session(),
        process_id,
        organisation=g.organisation.key,
        user=g.user.username,
        data=data,
        business_key=options.get("business_key"),
        title=options.get("title"),
    )


@bp.route(f"/<{ID}:instance_id>")
@bp.response(200, instance_detail_schema)
def get_instance(instance_id: int) -> Any:
    """A case with its data and its tasks (open and completed).

    :raises NotFoundError: (404) no such case in the organisation.
    """
    db = db_session()
    found = engine.get_instance(db, instance_id, organisation_id=g.organisation.id)
    tasks = engine.list_tasks(db, organisation_id=g.organisation.id, instance_id=instance_id, state=None)
    return {"instance": found, "data": engine.instance_data(db, found), "tasks": tasks}


def _admin(operation: Any, instance_id: int, **kwargs: Any) -> Any:
    db = db_session()
    engine.get_instance(db, instance_id, organisation_id=g.organisation.id)
    return operation(db, instance_id, user=g.user.username, **kwargs)


@bp.route(f"/<{ID}:instance_id>/suspend", methods=["POST"])
@bp.response(200, instance_schema)
def suspend_instance(instance_id: int) -> Any:
    """Suspend a case: nothing moves it until it is resumed (admins).

    :raises InvalidStateError: (409) the case has ended or is already suspended.
    """
    return _admin(engine.suspend_instance, instance_id)


@bp.route(f"/<{ID}:instance_id>/resume", methods=["POST"])
@bp.response(200, instance_schema)
def resume_instance(instance_id: int) -> Any:
    """Resume a suspended case; timers that fell due meanwhile fire at once (admins).

    :raises InvalidStateError: (409) the case is not suspended.
    """
    return _admin(engine.resume_instance, instance_id)


@bp.route(f"/<{ID}:instance_id>/cancel", methods=["POST"])
@bp.response(200, instance_schema)
def cancel_instance(instance_id: int) -> Any:
    """Cancel a case: its open tasks, timers and subscriptions end (admins).

    :raises InvalidStateError: (409) the case has already ended.
    """
    return _admin(engine.cancel_instance, instance_id)


@bp.route(f"/<{ID}:instance_id>/retry", methods=["POST"])
@bp.arguments(retry_body_schema, as_kwargs=True)
@bp.response(200, instance_schema)
def retry_instance(instance_id: int, data: dict[str, Any]) -> Any:
    """Run a failed case's failed tasks again, optionally with corrected ``data`` (admins).

    :raises InvalidStateError: (409) the case is not in error.
    """
    return _admin(engine.retry_instance, instance_id, data=data or None)


@bp.route(f"/<{ID}:instance_id>/data", methods=["PATCH"])
@bp.arguments(data_body_schema, as_kwargs=True)
@bp.response(200, instance_schema)
def set_instance_data(instance_id: int, data: dict[str, Any]) -> Any:
    """Merge ``data`` into the case's data as an admin correction; nothing runs (admins).

    :raises InvalidStateError: (409) the case has ended.
    :raises FormValidationError: (422) a field name is reserved or not an identifier; names each.
    """
    return _admin(engine.set_instance_data, instance_id, data=data)
