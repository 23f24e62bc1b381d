"""The start page: the processes the user may start in their organisation, and starting one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response

import engine
import forms

from .auth import require_login, require_role, roles
from .db import db_session
from .i18n import current_language, time_zone

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
    db = db_session()
    definitions = engine.visible_definitions(db, g.organisation.id) if may_start() else []
    with_form = {d.process_id for d in definitions if engine.start_form(db, d) is not None}
    return render_template(
        "processes/catalogue.html", definitions=definitions, with_form=with_form, may_start=may_start()
    )


def _definition(process_id: str) -> engine.ProcessDefinition:
    return engine.resolve_definition(db_session(), process_id, g.organisation.id)


def _render_start(
    definition: engine.ProcessDefinition,
    start_form: tuple[dict[str, Any], dict[str, Any] | None],
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    title: str = "",
) -> str:
    schema, ui_schema = start_form
    form = forms.build_form(
        schema, ui_schema, values=values, errors=errors, locale=current_language(), time_zone=time_zone()
    )
    return render_template(
        "processes/start.html",
        definition=definition,
        form_html=Markup(forms.render_fields(form, gettext=_, attachments={})),
        has_errors=bool(errors),
        title=title,
    )


@bp.route("/<process_id>/start", methods=["GET"])
@require_role(*STARTER_ROLES)
def start_page(process_id: str) -> str:
    """Show the start form of a process that has one.

    :raises NotFound: (404) the organisation runs no such process, or it has no start form.
    :raises Forbidden: (403) the user's roles do not allow starting processes.
    """
    definition = _definition(process_id)
    start_form = engine.start_form(db_session(), definition)
    if start_form is None:
        abort(404)
    return _render_start(definition, start_form)


@bp.route("/<process_id>/start", methods=["POST"])
@require_role(*STARTER_ROLES)
def start(process_id: str) -> Response | tuple[str, int] | str:
    """Start a process with an optional title and its start form, then open its first task if the user may.

    :raises NotFound: (404) the organisation runs no such process.
    :raises Forbidden: (403) the user's roles do not allow starting processes.
    """
    db = db_session()
    title = request.form.get("title", "").strip()[:300] or None
    definition = _definition(process_id)
    start_form = engine.start_form(db, definition)
    data, response = read_start_submission(
        start_form, lambda **page: _render_start(definition, start_form, title=title or "", **page)
    )
    if response is not None:
        return response
    instance = engine.start_instance(
        db, process_id, organisation=g.organisation.key, user=g.user.username, title=title, data=data
    )
    return open_first_task(db, instance)


def read_start_submission(
    start_form: tuple[dict[str, Any], dict[str, Any]] | None, render: Callable[..., Any]
) -> tuple[dict[str, Any], Any]:
    """Read and check the start form's fields from the request: ``(data, None)``, or ``({}, page)``.

    *render(values=..., errors=...)* draws the start page again: after a row
    button (with the values), or with the messages beside their fields (422).
    Files are refused: there is no case yet to keep them with. Errors the engine
    finds later come back through ``g.rerender_form`` (see :mod:`web.errors`).
    """
    if start_form is None:
        return {}, None

    def refuse_file(path: str, upload: Any) -> str:
        raise engine.FormValidationError({path: [_("Attach files in the case's first task.")]})

    submission = forms.parse_submission(
        start_form[0],
        start_form[1],
        request.form,
        request.files,
        store_file=refuse_file,
        time_zone=time_zone(),
    )
    if submission.action:
        return {}, render(values=submission.values)
    errors = forms.validate_submission(start_form[0], submission.data, time_zone=time_zone())
    if submission.errors or errors:
        errors.update(submission.errors)
        return {}, (render(values=submission.values, errors=errors), 422)
    g.rerender_form = lambda errors: render(values=submission.values, errors=errors)
    return submission.data, None


def open_first_task(db: Any, instance: engine.ProcessInstance) -> Response:
    """Send the starter to the case's first task that is theirs, else to the case page."""
    first = next(iter(engine.list_tasks(db, instance_id=instance.id, user=g.user.username)), None)
    if first is not None:
        return redirect(url_for("tasks.task", task_id=first.id), code=303)
    return redirect(url_for("instances.instance", instance_id=instance.id), code=303)
