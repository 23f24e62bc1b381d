"""The start page: the processes the user may start in their organisation, and starting one."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

import engine

from .auth import require_login, require_role, roles
from .db import db_session

bp = Blueprint("processes", __name__, url_prefix="/processes")
bp.before_request(require_login)

# Mirrors the engine's rule (engine.runtime.STARTER_ROLES); the engine enforces it.
STARTER_ROLES = ("admin", "process_owner", "case_handler", "requester")


def may_start() -> bool:
    """Tell whether the signed-in user's roles allow starting processes."""
    return bool(roles() & set(STARTER_ROLES))


@bp.route("/")
def catalogue() -> str:
    """List the processes the user's organisation runs (its own versions over shared ones), to start one."""
    definitions = engine.visible_definitions(db_session(), g.organisation.id) if may_start() else []
    return render_template("processes/catalogue.html", definitions=definitions, may_start=may_start())


@bp.route("/<process_id>/start", methods=["POST"])
@require_role(*STARTER_ROLES)
def start(process_id: str) -> Response:
    """Start a process with an optional title, then open its first task if the user may work on it.

    :raises NotFound: (404) the organisation runs no such process.
    :raises Forbidden: (403) the user's roles do not allow starting processes.
    """
    db = db_session()
    title = request.form.get("title", "").strip()[:300] or None
    instance = engine.start_instance(
        db, process_id, organisation=g.organisation.key, user=g.user.username, title=title
    )
    first = next(iter(engine.list_tasks(db, instance_id=instance.id, user=g.user.username)), None)
    if first is not None:
        return redirect(url_for("tasks.task", task_id=first.id), code=303)
    return redirect(url_for("instances.instance", instance_id=instance.id), code=303)
