"""Instance pages: the diagram with its state, status, data, audit trail, attachments, admin actions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response

import engine
import forms

from . import case_values
from .auth import require_login, require_role, roles
from .db import db_session
from .i18n import current_language, time_zone
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


@dataclass(frozen=True)
class MessageRegistration:
    """A message the case waits for that the user may register by hand, with its payload form."""

    wait: engine.CaseWait
    label: str
    action: str
    form_html: Markup | None
    payload_input: str
    errors: list[str]
    open: bool


def _message_entry(case: dict[str, Any], message: str) -> dict[str, Any]:
    entry: dict[str, Any] = (case.get("messages") or {}).get(message) or {}
    return entry


def _registrations(
    current: engine.ProcessInstance,
    waits: list[engine.CaseWait],
    case: dict[str, Any],
    submitted: SubmittedMessage | None,
) -> list[MessageRegistration]:
    db = db_session()
    locale = current_language()
    found = []
    for wait in waits:
        if wait.kind != "message" or wait.message is None:
            continue
        if current.status not in ("running", "waiting"):
            continue
        if not engine.may_register(db, wait, current, g.user.username):
            continue
        entry = _message_entry(case, wait.message)
        label = forms.localized(entry.get("label"), locale) or wait.name
        action = forms.localized(entry.get("action"), locale) or _("Register “%(name)s”", name=label)
        mine = submitted is not None and submitted.message == wait.message
        form = engine.message_form(db, current.definition, wait.message)
        form_html = None
        if form is not None:
            built = forms.build_form(
                form[0],
                form[1],
                values=submitted.values if mine and submitted else {},
                errors=submitted.errors if mine and submitted else {},
                locale=locale,
                time_zone=time_zone(),
            )
            form_html = Markup(forms.render_fields(built, gettext=_))
        found.append(
            MessageRegistration(
                wait=wait,
                label=label,
                action=action,
                form_html=form_html,
                payload_input=submitted.raw if mine and submitted else "{}",
                errors=submitted.messages if mine and submitted else [],
                open=mine,
            )
        )
    return found


@dataclass(frozen=True)
class SubmittedMessage:
    """A message registration the engine or the form refused, shown again with its input."""

    message: str
    values: dict[str, Any]
    errors: dict[str, list[str]]
    raw: str = "{}"
    messages: list[str] = field(default_factory=list)


def _render_instance(
    current: engine.ProcessInstance,
    *,
    data_input: str | None = None,
    data_errors: list[str] | None = None,
    submitted: SubmittedMessage | None = None,
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
    names = engine.element_names(db, current.definition) | {t.bpmn_id: t.name for t in tasks}
    data = engine.instance_data(db, current)
    repairable = is_admin and current.status in REPAIRABLE_STATUSES
    if data_input is None:
        data_input = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
    case = engine.case_file(db, current.definition)
    waits = engine.case_waits(db, current)
    attachments = _attachment_links(current)
    messages = {
        w.message: forms.localized(_message_entry(case, w.message).get("label"), current_language()) or w.name
        for w in waits
        if w.message
    }
    return render_template(
        "instances/instance.html",
        instance=current,
        waits=waits,
        message_labels=messages,
        registrations=_registrations(current, waits, case, submitted),
        summary=case_values.case_summary(case, data),
        completed_forms=case_values.completed_forms(current, attachments=attachments),
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


def _attachment_links(instance: engine.ProcessInstance) -> dict[str, forms.AttachmentLink]:
    return {
        f"{forms.ATTACHMENT_PREFIX}{a.id}": forms.AttachmentLink(
            url=url_for("instances.attachment", instance_id=instance.id, attachment_id=a.id),
            filename=a.filename,
        )
        for a in engine.list_attachments(db_session(), instance.id)
    }


@bp.route("/<int:instance_id>/messages/<message>", methods=["POST"])
def register_message(instance_id: int, message: str) -> Response | tuple[str, int]:
    """Register a message from an outside party (a customer's reply, a supplier's question) on the case.

    Offered for each message the case waits for, to admins and to members of
    the lane or group of the waiting element. The payload comes from the
    message's form in the process's ``case.json`` (else a JSON object); the
    engine adds the correlation the case expects, delivers it and records it.
    A payload the form refuses comes back with its messages beside the fields.

    :raises NotFound: (404) no such instance in the user's organisation.
    :raises Forbidden: (403) the user is not in the group that registers the message.
    :raises Conflict: (409) the case does not (or no longer) wait for the message.
    """
    current = _instance(instance_id)
    db = db_session()
    engine.check_may_register(db, engine.awaited_message(db, current, message), current, g.user.username)
    form = engine.message_form(db, current.definition, message)
    if form is not None:
        submission = forms.parse_submission(
            form[0], form[1], request.form, {}, context={}, time_zone=time_zone()
        )
        errors = forms.validate_submission(form[0], submission.data, time_zone=time_zone())
        if submission.errors or errors:
            errors.update(submission.errors)
            held = SubmittedMessage(message=message, values=submission.values, errors=errors)
            return _render_instance(current, submitted=held), 422
        payload = submission.data
        values = submission.values
        raw = "{}"
    else:
        raw = request.form.get("payload", "{}")
        values = {}
        try:
            loaded = engine.load_json(raw or "{}")
        except (json.JSONDecodeError, engine.DataError) as exc:
            text = _("This is not valid JSON: %(error)s.", error=getattr(exc, "msg", str(exc)))
            held = SubmittedMessage(message=message, values={}, errors={}, raw=raw, messages=[text])
            return _render_instance(current, submitted=held), 422
        if not isinstance(loaded, dict):
            text = _("The message must be a JSON object of field names and values.")
            held = SubmittedMessage(message=message, values={}, errors={}, raw=raw, messages=[text])
            return _render_instance(current, submitted=held), 422
        payload = loaded
    g.rerender_form = lambda errors: _render_instance(
        current,
        submitted=SubmittedMessage(
            message=message,
            values=values,
            errors=errors,
            raw=raw,
            messages=[f"{k}: {m}" for k, ms in errors.items() for m in ms] if form is None else [],
        ),
    )
    engine.register_message(
        db, instance_id, message, payload, user=g.user.username, organisation_id=g.organisation.id
    )
    label = _message_entry(engine.case_file(db, current.definition), message).get("label")
    name = forms.localized(label, current_language()) or message
    flash(_("“%(name)s” is registered on the case.", name=name), "success")
    return redirect(url_for("instances.instance", instance_id=instance_id), code=303)


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
    db = db_session()
    changed, problem = data_correction(raw, engine.instance_data(db, current))
    if problem is not None:
        return _render_instance(current, data_input=raw, data_errors=[problem]), 422
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


def data_correction(raw: str, before: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Read an admin's correction of a case's data: the fields of the JSON object *raw* whose values
    differ from *before*, or a message saying why *raw* is not such an object (in the user's language).
    """
    try:
        submitted = engine.load_json(raw)
    except json.JSONDecodeError as exc:
        return {}, _(
            "This is not valid JSON: %(error)s (line %(line)s, column %(column)s).",
            error=exc.msg,
            line=exc.lineno,
            column=exc.colno,
        )
    except engine.DataError as exc:
        return {}, str(exc)
    if not isinstance(submitted, dict):
        return {}, _("The data must be a JSON object of field names and values.")
    missing = object()
    return {key: value for key, value in submitted.items() if before.get(key, missing) != value}, None


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
