"""Instance pages: the diagram with its state, status, data, audit trail, attachments, admin actions."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from .auth import require_login, require_role, roles
from .db import db_session
from .security import SANDBOX_CSP, download

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
    return _render_instance(_instance(instance_id))


# Statuses in which admins may correct the data and move the case back (a
# suspended case is resumed first; an ended one is history).
REPAIRABLE_STATUSES = ("running", "waiting", "error")


def _render_instance(
    current: engine.ProcessInstance, *, data_input: str | None = None, data_errors: list[str] | None = None
) -> str:
    db = db_session()
    instance_id = current.id
    tasks = engine.list_tasks(db, organisation_id=g.organisation.id, instance_id=instance_id, state=None)
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
    data = engine.instance_data(db, current)
    repairable = is_admin and current.status in REPAIRABLE_STATUSES
    if data_input is None:
        data_input = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
    return render_template(
        "instances/instance.html",
        instance=current,
        tasks=tasks,
        events=events,
        element_names=names,
        data=data,
        attachments=engine.list_attachments(db, instance_id),
        diagram=engine.element_states(db, current),
        is_admin=is_admin,
        incidents=incidents,
        repairable=repairable,
        data_input=data_input,
        data_errors=data_errors or [],
        reset_targets=engine.reset_targets(db, current) if repairable else [],
    )


@bp.route("/<int:instance_id>/diagram.bpmn")
def diagram(instance_id: int) -> Response:
    """Return the BPMN XML of the instance's process version, for the diagram viewer (as plain text).

    :raises NotFound: (404) no such instance in the user's organisation.
    """
    bundle_file = _diagram_file(_instance(instance_id))
    # Not application/xml: a browser renders XML with XHTML elements in it and runs
    # their scripts. As plain text (with nosniff) it is only ever data for the viewer.
    response = Response(bundle_file.content, content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = SANDBOX_CSP
    return response


@bp.route("/<int:instance_id>/attachments/<int:attachment_id>")
def attachment(instance_id: int, attachment_id: int) -> Response:
    """Download an attachment of the instance: always saved, never shown inline or run.

    The content type comes from the allow-list :func:`engine.download_content_type`,
    never from the uploader.

    :raises NotFound: (404) no such attachment on an instance of the user's organisation.
    """
    _instance(instance_id)
    found = engine.get_attachment(db_session(), attachment_id, organisation_id=g.organisation.id)
    if found.instance_id != instance_id:
        abort(404)
    content_type = engine.download_content_type(found.filename)
    return download(found.content, filename=found.filename, content_type=content_type)


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


@bp.route("/<int:instance_id>/data", methods=["POST"])
@require_role("admin")
def set_data(instance_id: int) -> Response | tuple[str, int]:
    """Correct the data of an instance (admins): the fields that differ from the current data are merged in.

    Input that is not a JSON object, or fields the engine refuses, come back on
    the page beside the text, which is kept.

    :raises NotFound: (404) no such instance in the user's organisation.
    :raises Forbidden: (403) the user is not an admin.
    :raises Conflict: (409) the instance has ended.
    """
    current = _instance(instance_id)
    raw = request.form.get("data", "")
    try:
        submitted = engine.load_json(raw)
    except json.JSONDecodeError as exc:
        message = _(
            "This is not valid JSON: %(error)s (line %(line)s, column %(column)s).",
            error=exc.msg,
            line=exc.lineno,
            column=exc.colno,
        )
        return _render_instance(current, data_input=raw, data_errors=[message]), 422
    except engine.DataError as exc:
        return _render_instance(current, data_input=raw, data_errors=[str(exc)]), 422
    if not isinstance(submitted, dict):
        message = _("The data must be a JSON object of field names and values.")
        return _render_instance(current, data_input=raw, data_errors=[message]), 422
    db = db_session()
    before = engine.instance_data(db, current)
    missing = object()
    changed = {key: value for key, value in submitted.items() if before.get(key, missing) != value}
    if not changed:
        flash(_("Nothing was changed."), "info")
        return redirect(url_for("instances.instance", instance_id=instance_id), code=303)
    g.rerender_form = lambda errors: _render_instance(
        current,
        data_input=raw,
        data_errors=[
            f"{field}: {message}" if field else message for field, ms in errors.items() for message in ms
        ],
    )
    engine.set_instance_data(db, instance_id, user=g.user.username, data=changed)
    flash(_("The case data is saved: %(fields)s.", fields=", ".join(sorted(changed))), "success")
    return redirect(url_for("instances.instance", instance_id=instance_id), code=303)


@bp.route("/<int:instance_id>/reset", methods=["POST"])
@require_role("admin")
def reset(instance_id: int) -> Response:
    """Move an instance back to an earlier step, which is done again from there (admins).

    :raises NotFound: (404) no such instance in the user's organisation, or no such element.
    :raises Forbidden: (403) the user is not an admin.
    :raises BadRequest: (400) no step was chosen.
    :raises Conflict: (409) the instance is suspended or has ended, or the step has not run.
    """
    current = _instance(instance_id)
    to = request.form.get("to", "")
    if not to:
        abort(400)
    db = db_session()
    names = {t.bpmn_id: t.name for t in engine.reset_targets(db, current)}
    engine.reset_instance(db, instance_id, to=to, user=g.user.username)
    flash(_("The case was moved back to “%(name)s”.", name=names.get(to, to)), "success")
    return redirect(url_for("instances.instance", instance_id=instance_id), code=303)
