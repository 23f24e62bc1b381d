"""Attachments: a case's files, one file's bytes, and uploading a file to a task's form."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint

import engine

from ..db import db_session
from ..security import download
from .auth import authenticate
from .problems import init_blueprint
from .schemas import (
    ID,
    attachment_field_schema,
    attachment_list_schema,
    attachment_schema,
    attachment_upload_schema,
)

bp = Blueprint("api_v1_attachments", __name__, url_prefix="/api/v1", description="Attachments.")
bp.before_request(authenticate)
init_blueprint(bp)


@bp.route(f"/instances/<{ID}:instance_id>/attachments")
@bp.response(200, attachment_list_schema)
def list_attachments(instance_id: int) -> Any:
    """The files attached to a case, oldest first.

    :raises NotFoundError: (404) no such case in the organisation.
    """
    db = db_session()
    engine.get_instance(db, instance_id, organisation_id=g.organisation.id)
    return {"items": engine.list_attachments(db, instance_id)}


@bp.route(f"/attachments/<{ID}:attachment_id>")
@bp.response(200, content_type="application/octet-stream", description="The file, as a download.")
def download_attachment(attachment_id: int) -> Any:
    """The bytes of an attachment (``Content-Disposition: attachment``; the type comes from its name).

    :raises NotFoundError: (404) no such attachment in the organisation.
    """
    found = engine.get_attachment(db_session(), attachment_id, organisation_id=g.organisation.id)
    return download(found.content, filename=found.filename, content_type=found.content_type)


@bp.route(f"/tasks/<{ID}:task_id>/attachments", methods=["POST"])
@bp.arguments(attachment_upload_schema, location="files", as_kwargs=True)
@bp.arguments(attachment_field_schema, location="form", as_kwargs=True)
@bp.response(201, attachment_schema)
def upload_attachment(task_id: int, file: Any, field: str | None = None) -> Any:
    """Attach ``file`` to the task's case, for the form field ``field``.

    :raises PermissionDeniedError: (403) the user may not work on the task.
    :raises ConflictError: (409) the task is no longer open.
    :raises FormValidationError: (422) the file is empty or too large.
    """
    db = db_session()
    task = engine.get_task(db, task_id, organisation_id=g.organisation.id)
    return engine.add_attachment(
        db,
        task.id,
        user=g.user.username,
        filename=file.filename or "attachment",
        content=file.read(),
        content_type=file.mimetype,
        field=field,
    )
