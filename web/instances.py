"""Instance pages: the diagram with its state, status, data, audit trail, attachments, admin actions."""

from __future__ import annotations

import io
import re
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from .auth import require_login, require_role, roles
from .db import db_session

bp = Blueprint("instances", __name__, url_prefix="/instances")
bp.before_request(require_login)


def _instance(instance_id: int) -> engine.ProcessInstance:
    return engine.get_instance(db_session(), instance_id, organisation_id=g.organisation.id)


def _diagram_file(instance: engine.ProcessInstance) -> engine.BundleFile:
    """Return the BPMN file of the instance's bundle that holds its process."""
    declares = re.compile(r"<(?:\w+:)?process\b[^>]*\bid=\"" + re.escape(instance.process_id) + '"')
    names = [f.name for f in instance.definition.deployment.files if f.kind == "bpmn"]
    for name in names:
        bundle_file = engine.bundle_file(db_session(), instance.definition, name)
        if declares.search(bundle_file.content):
            return bundle_file
    raise engine.NotFoundError(f"No diagram for instance {instance.id}")


@bp.route("/<int:instance_id>")
def instance(instance_id: int) -> str:
    """Show an instance: diagram, status, business key, data, tasks, audit trail and attachments.

    :raises NotFound: (404) no such instance in the user's organisation.
    """
    db = db_session()
    current = _instance(instance_id)
    tasks = engine.list_tasks(db, instance_id=instance_id, state=None)
    events = engine.instance_events(db, instance_id)
    is_admin = "admin" in roles()
    incidents = (
        [
            job
            for job in engine.incidents(db, organisation_id=g.organisation.id)
            if job.instance_id == instance_id
        ]
        if is_admin
        else []
    )
    names = {t.bpmn_id: t.name for t in tasks}
    return render_template(
        "instances/instance.html",
        instance=current,
        tasks=tasks,
        events=events,
        element_names=names,
        data=engine.instance_data(db, current),
        attachments=engine.list_attachments(db, instance_id),
        diagram=engine.element_states(db, current),
        is_admin=is_admin,
        incidents=incidents,
    )


@bp.route("/<int:instance_id>/diagram.bpmn")
def diagram(instance_id: int) -> Response:
    """Return the BPMN XML of the instance's process version, for the diagram viewer.

    :raises NotFound: (404) no such instance in the user's organisation.
    """
    bundle_file = _diagram_file(_instance(instance_id))
    return Response(bundle_file.content, mimetype="application/xml")


@bp.route("/<int:instance_id>/attachments/<int:attachment_id>")
def attachment(instance_id: int, attachment_id: int) -> Response:
    """Download an attachment of the instance (always as a download, never shown inline).

    :raises NotFound: (404) no such attachment on an instance of the user's organisation.
    """
    _instance(instance_id)
    found = engine.get_attachment(db_session(), attachment_id, organisation_id=g.organisation.id)
    if found.instance_id != instance_id:
        abort(404)
    return send_file(
        io.BytesIO(found.content),
        mimetype=found.content_type or "application/octet-stream",
        as_attachment=True,
        download_name=found.filename,
        max_age=0,
    )


def _admin_action(instance_id: int, action: Any, message: str) -> Response:
    _instance(instance_id)
    action(db_session(), instance_id, user=g.user.username)
    flash(message, "success")
    return redirect(url_for("instances.instance", instance_id=instance_id), code=303)


@bp.route("/<int:instance_id>/suspend", methods=["POST"])
@require_role("admin")
def suspend(instance_id: int) -> Response:
    """Suspend an active instance (admins).

    :raises NotFound: (404) no such instance in the user's organisation.
    :raises Forbidden: (403) the user is not an admin.
    :raises Conflict: (409) the instance cannot be suspended in its state.
    """
    return _admin_action(instance_id, engine.suspend_instance, _("The case is suspended."))


@bp.route("/<int:instance_id>/resume", methods=["POST"])
@require_role("admin")
def resume(instance_id: int) -> Response:
    """Resume a suspended instance (admins).

    :raises NotFound: (404) no such instance in the user's organisation.
    :raises Forbidden: (403) the user is not an admin.
    :raises Conflict: (409) the instance is not suspended.
    """
    return _admin_action(instance_id, engine.resume_instance, _("The case is running again."))


@bp.route("/<int:instance_id>/cancel", methods=["POST"])
@require_role("admin")
def cancel(instance_id: int) -> Response:
    """Cancel an instance (admins).

    :raises NotFound: (404) no such instance in the user's organisation.
    :raises Forbidden: (403) the user is not an admin.
    :raises Conflict: (409) the instance has already ended.
    """
    return _admin_action(instance_id, engine.cancel_instance, _("The case is cancelled."))


@bp.route("/<int:instance_id>/retry", methods=["POST"])
@require_role("admin")
def retry(instance_id: int) -> Response:
    """Run the failed step of an instance in error again (admins).

    :raises NotFound: (404) no such instance in the user's organisation.
    :raises Forbidden: (403) the user is not an admin.
    :raises Conflict: (409) the instance is not in error.
    """
    return _admin_action(instance_id, engine.retry_instance, _("The failed step was run again."))


@bp.route("/<int:instance_id>/incidents/<int:job_id>/retry", methods=["POST"])
@require_role("admin")
def retry_incident(instance_id: int, job_id: int) -> Response:
    """Re-arm a job of the instance that became an incident (admins).

    :raises NotFound: (404) no such incident on an instance of the user's organisation.
    :raises Forbidden: (403) the user is not an admin.
    """
    _instance(instance_id)
    db = db_session()
    if not any(j.id == job_id and j.instance_id == instance_id for j in engine.incidents(db)):
        abort(404)
    engine.retry_job(db, job_id, user=g.user.username)
    flash(_("The job will run again shortly."), "success")
    return redirect(url_for("instances.instance", instance_id=instance_id), code=303)
