"""``/api/v1/processes``: the processes the organisation runs, and the form a start fills in."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint

import engine

from ..db import db_session
from .auth import authenticate
from .problems import init_blueprint
from .schemas import process_schema, start_form_schema

bp = Blueprint(
    "api_v1_processes",
    __name__,
    url_prefix="/api/v1/processes",
    description="Processes and their start forms.",
)
bp.before_request(authenticate)
init_blueprint(bp)


@bp.route("")
@bp.response(200, process_schema.__class__(many=True))
def list_processes() -> Any:
    """The processes the organisation runs: its own versions, else the shared ones (latest each)."""
    return engine.visible_definitions(db_session(), g.organisation.id)


@bp.route("/<string:process_id>/start-form")
@bp.response(200, start_form_schema)
def get_start_form(process_id: str) -> Any:
    """The JSON Schema and UI schema a start of the process fills in (both null: it has no form).

    :raises NotFoundError: (404) the organisation runs no such process.
    """
    db = db_session()
    definition = engine.resolve_definition(db, process_id, g.organisation.id)
    form = engine.start_form(db, definition)
    schema, ui_schema = form if form is not None else (None, None)
    return {"process_id": process_id, "version": definition.version, "schema": schema, "ui_schema": ui_schema}
