"""The inbox and the task pages: list, claim, release, fill in and complete human tasks.

The inbox reads only the engine's task index, through its one inbox query
(:func:`engine.inbox_page`, :func:`engine.inbox_counts`);
a task page renders the task's JSON Schema form on the server (:mod:`forms`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response

import engine
import forms

from . import case_values
from .auth import require_login, roles, safe_next
from .db import db_session
from .i18n import current_language, time_zone

bp = Blueprint("tasks", __name__)
bp.before_request(require_login)

# What a file field holds while its upload waits for the submission to be accepted
# (never an attachment reference, so a form shown again offers no stale link).
PENDING_UPLOAD = "pending-upload"


def process_names() -> dict[str, str]:
    """Return the name, in the user's language, of every process the organisation runs, by process id."""
    if "process_names" not in g:
        g.process_names = {d.process_id: process_name(d) for d in _definitions()}
    names: dict[str, str] = g.process_names
    return names


def process_name(definition: engine.ProcessDefinition) -> str:
    """Return the process's name in the user's language (its names.json), else its BPMN name."""
    default = definition.name or definition.process_id
    return engine.translated(definition.translated_names, definition.process_id, current_language(), default)


def task_name(task: engine.HumanTask) -> str:
    """Return the task's name in the user's language, from the names of the version its process runs now.

    The organisation's current version names the task (one list of definitions
    per request, no query per task); a task it no longer has keeps its BPMN name.
    """
    if "definitions_by_process" not in g:
        g.definitions_by_process = {d.process_id: d for d in _definitions()}
    definition = g.definitions_by_process.get(task.process_id)
    names = definition.translated_names if definition is not None else None
    return engine.translated(names, task.bpmn_id, current_language(), task.name)


def element_name(instance: engine.ProcessInstance, element: str, default: str) -> str:
    """Return the name of a BPMN element of *instance*'s version in the user's language, else *default*."""
    return engine.translated(instance.definition.translated_names, element, current_language(), default)


def group_name(key: str | None) -> str:
    """Return the display name of the organisation's group *key* in the user's language (a dash for none)."""
    if not key:
        return "\N{EN DASH}"
    if "group_names" not in g:
        g.group_names = engine.group_names(db_session(), g.organisation.id, current_language())
    names: dict[str, str] = g.group_names
    return names.get(key, key)


def _definitions() -> list[engine.ProcessDefinition]:
    if "visible_definitions" not in g:
        g.visible_definitions = engine.visible_definitions(db_session(), g.organisation.id)
    found: list[engine.ProcessDefinition] = g.visible_definitions
    return found


def inbox_counts() -> engine.InboxCounts:
    """Return how many open tasks the signed-in user may work on, by view (memoised per request)."""
    if "inbox_counts" not in g:
        g.inbox_counts = engine.inbox_counts(
            db_session(), user_id=g.user.id, where=engine.TaskFilter(organisation_id=g.organisation.id)
        )
    counts: engine.InboxCounts = g.inbox_counts
    return counts


def is_overdue(task: engine.HumanTask, now: dt.datetime | None = None) -> bool:
    """Tell whether an open task is past its due date."""
    return task.due_at is not None and task.state == "ready" and task.due_at < (now or engine.models.utcnow())


@bp.app_context_processor
def _inbox_context() -> dict[str, Any]:
    if g.get("user") is None or g.get("organisation") is None:
        return {}
    return {
        "inbox_counts": inbox_counts,
        "is_overdue": is_overdue,
        "process_names": process_names,
        "process_name": process_name,
        "task_name": task_name,
        "element_name": element_name,
        "group_name": group_name,
        "works_on_tasks": works_on_tasks(),
    }


def works_on_tasks() -> bool:
    """Tell whether the signed-in member's roles get tasks to work on (an auditor's do not)."""
    return bool(roles() & engine.TASK_ROLES)


@bp.route("/")
def inbox() -> str | Response:
    """Show the signed-in user's inbox: their tasks and their groups' tasks.

    A member whose roles get no tasks (an auditor) is sent to the case list instead.

    Query parameters: ``view`` (all, mine, group), ``process``, ``q`` (text),
    ``sort`` (due, created, name), and ``after`` or ``before``: the cursor of
    the page's neighbour (a page holds ``INBOX_PAGE_SIZE`` tasks). An htmx
    request gets only the table, so filtering and paging update in place.

    :raises BadRequest: (400) a cursor that is not one, or not for this sort.
    """
    if not works_on_tasks():
        return redirect(url_for("cases.case_list"))
    view = request.args.get("view", "all")
    view = view if view in engine.INBOX_VIEWS else "all"
    sort = request.args.get("sort", "due")
    sort = sort if sort in engine.INBOX_SORTS else "due"
    process = request.args.get("process", "")
    query = request.args.get("q", "").strip()
    where = engine.TaskFilter(organisation_id=g.organisation.id, view=view, process_id=process, text=query)
    db = db_session()
    page = engine.inbox_page(
        db,
        user_id=g.user.id,
        where=where,
        sort=sort,
        limit=current_app.config["INBOX_PAGE_SIZE"],
        after=request.args.get("after") or None,
        before=request.args.get("before") or None,
    )
    # Unfiltered, the view's total is its count in the navigation; filtered, one more count.
    counts = engine.inbox_counts(db, user_id=g.user.id, where=where) if process or query else inbox_counts()
    context = {
        "page": page,
        "total": getattr(counts, view),
        "view": view,
        "sort": sort,
        "process": process,
        "query": query,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "inbox-results":
        return render_template("tasks/_inbox_results.html", **context)
    return render_template("tasks/inbox.html", **context)


@bp.route("/inbox/counts")
def counts() -> Response:
    """Return the navigation's count of open tasks as an HTML fragment, for htmx to poll.

    With ``tabs=1`` (the inbox page) the fragment also replaces the counts of
    the inbox's views (out of band). A GET that changes nothing: no CSRF token.
    Anonymous htmx requests get 401 (see :func:`web.auth.require_login`).
    """
    tabs = request.args.get("tabs") == "1"
    response = current_app.make_response(
        render_template("tasks/_inbox_counts.html", poll_tabs=tabs, oob=tabs)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _task_in_organisation(task_id: int) -> engine.HumanTask:
    return engine.get_task(db_session(), task_id, organisation_id=g.organisation.id)


def _attachment_links(instance_id: int) -> dict[str, forms.AttachmentLink]:
    return {
        f"{forms.ATTACHMENT_PREFIX}{a.id}": forms.AttachmentLink(
            url=url_for("instances.attachment", instance_id=instance_id, attachment_id=a.id),
            filename=a.filename,
        )
        for a in engine.list_attachments(db_session(), instance_id)
    }


def _refusal(task: engine.HumanTask) -> str | None:
    """Return why the user may not work on *task*, or ``None`` if they may."""
    if task.state != "ready":
        return None
    try:
        engine.check_may_work_on(db_session(), task, g.user)
    except engine.PermissionDeniedError as refusal:
        return str(refusal)
    return None


def render_task(
    task: engine.HumanTask,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> str:
    """Render a task page: its form (with *values* and *errors*), or what happened to it."""
    db = db_session()
    attachments = _attachment_links(task.instance_id)
    schema = engine.task_form_schema(db, task)
    context_data = engine.instance_data(db, task.instance)
    form_html = None
    if schema is not None:
        if values is None:
            # The task's own data: a branch's task (an answer to one supplier question) shows its branch.
            own = engine.task_data(db, task)
            properties = schema.get("properties") or {}
            values = {name: own[name] for name in properties if name in own}
        form = forms.build_form(
            schema,
            engine.task_ui_schema(db, task),
            values=values,
            errors=errors,
            locale=current_language(),
            time_zone=time_zone(),
        )
        form_html = Markup(forms.render_fields(form, gettext=_, attachments=attachments))
    return render_template(
        "tasks/task.html",
        task=task,
        form_html=form_html,
        has_errors=bool(errors),
        refusal=_refusal(task),
        context_data=context_data,
        attachments=attachments,
        completed_forms=case_values.completed_forms(task.instance, attachments=attachments),
        is_admin="admin" in roles(),
    )


@bp.route("/tasks/<int:task_id>", methods=["GET"])
def task(task_id: int) -> str:
    """Show a task's form, or, once it is done, who completed it and when.

    :raises NotFound: (404) no such task in the user's organisation.
    """
    return render_task(_task_in_organisation(task_id))


def _choose_again(errors: dict[str, list[str]], held: dict[str, Any]) -> dict[str, list[str]]:
    """Add, beside each file field whose upload was not kept, that the file must be chosen again."""
    if not held:
        return errors
    merged = {path: list(messages) for path, messages in errors.items()}
    for path in held:
        merged.setdefault(path, []).append(
            _("Choose the file again: files are saved only when the task is completed.")
        )
    return merged


@bp.route("/tasks/<int:task_id>", methods=["POST"])
def complete(task_id: int) -> Response | tuple[str, int] | str:
    """Complete a task with the submitted form, or apply a row action (add/remove row) and show it again.

    Uploaded files belong to the submission: they are stored only when the task
    is completed, in the same transaction. A form shown again (row action,
    invalid input, refused by the engine) stores nothing and says beside each
    file field that the file must be chosen again (browsers cannot refill a file
    input). On success, go to the next task of the case, or the instance page.

    :raises NotFound: (404) no such task in the user's organisation.
    :raises Forbidden: (403) lane group, assignee, role or separation of duties refuses the user.
    :raises Conflict: (409) someone else completed the task meanwhile, or the instance is suspended.
    :raises RequestEntityTooLarge: (413) the request is larger than ``MAX_CONTENT_LENGTH``.
    """
    db = db_session()
    task = _task_in_organisation(task_id)
    schema = engine.task_form_schema(db, task)
    ui_schema = engine.task_ui_schema(db, task)
    context = engine.task_data(db, task)
    g.conflict_task = task
    held: dict[str, Any] = {}

    def hold_file(path: str, upload: Any) -> str:
        # First pass: note the upload, store nothing until the submission is accepted.
        held[path] = upload
        return PENDING_UPLOAD

    def store_file(path: str, upload: Any) -> str:
        attachment = engine.add_attachment(
            db,
            task.id,
            user=g.user.username,
            filename=upload.filename or "attachment",
            content=upload.read(),
            content_type=upload.mimetype,
            field=path,
        )
        return f"{forms.ATTACHMENT_PREFIX}{attachment.id}"

    def parse(store: Callable[[str, Any], str]) -> forms.Submission:
        if schema is None:
            return forms.Submission(data={}, values={})
        return forms.parse_submission(
            schema,
            ui_schema,
            request.form,
            request.files,
            store_file=store,
            context=context,
            time_zone=time_zone(),
        )

    submission = parse(hold_file)
    g.submitted_values = submission.values
    if submission.action:
        return render_task(task, values=submission.values, errors=_choose_again({}, held))
    errors: dict[str, list[str]] = {}
    if schema is not None and task.state == "ready" and _refusal(task) is None:
        # Validated here too (the engine validates again) so that dates count in the organisation's
        # time zone; one who may not work on the task gets the engine's refusal, not messages.
        errors = forms.validate_submission(schema, submission.data, time_zone=time_zone())
    if submission.errors or errors:
        assert schema is not None
        errors.update(submission.errors)
        return render_task(task, values=submission.values, errors=_choose_again(errors, held)), 422
    g.rerender_form = lambda errors: render_task(
        task, values=submission.values, errors=_choose_again(errors, held)
    )
    with db.begin_nested():
        # Files and completion in one savepoint: a refused completion leaves no file behind.
        stored = parse(store_file) if held else submission
        instance = engine.complete_task(db, task.id, user=g.user.username, data=stored.data)
    flash(_("Task “%(name)s” completed.", name=task_name(task)), "success")
    next_task = next(iter(engine.list_tasks(db, instance_id=instance.id, user=g.user.username)), None)
    if next_task is not None:
        return redirect(url_for("tasks.task", task_id=next_task.id), code=303)
    return redirect(url_for("instances.instance", instance_id=instance.id), code=303)


def _after_claim(task: engine.HumanTask) -> Response | str:
    if request.headers.get("HX-Request"):
        return render_template("tasks/_inbox_row.html", task=task)
    return redirect(safe_next(request.form.get("next"), url_for("tasks.task", task_id=task.id)), code=303)


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
def claim(task_id: int) -> Response | str:
    """Assign the task to the signed-in user.

    :raises NotFound: (404) no such task in the user's organisation.
    :raises Forbidden: (403) the user may not work on it.
    :raises Conflict: (409) someone else claimed or completed it first.
    """
    task = _task_in_organisation(task_id)
    engine.claim_task(db_session(), task.id, user=g.user.username)
    return _after_claim(task)


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
def unclaim(task_id: int) -> Response | str:
    """Release the task back to its group.

    :raises NotFound: (404) no such task in the user's organisation.
    :raises Forbidden: (403) the user is neither the assignee nor an admin.
    :raises Conflict: (409) the task was completed meanwhile.
    """
    task = _task_in_organisation(task_id)
    engine.unclaim_task(db_session(), task.id, user=g.user.username)
    return _after_claim(task)
