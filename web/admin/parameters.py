"""Admin console: dated parameters — what the processes read, the value in force, the history.

``/admin/parameters`` lists every parameter the organisation's processes
read (and every one it or the shared rows have a value for), with the value
in force today, where it comes from (the organisation's own, the shared
value, or the organisation's settings) and which processes read it.
``/admin/parameters/<key>`` shows its full history (who recorded what, when,
with which note), adds a value from a date (checked by the type its bundle
declares; a correction is a new row with the same start date) and goes back
to the shared value from a date. Keys the organisation's settings give are
read-only here, with a link to ``/admin/settings``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from ..i18n import current_language
from . import bp


def N_(text: str) -> str:
    """Mark *text* for translation where it is defined; it is translated where it is shown."""
    return text


# What engine.parameters says about a refused value, date or note, translated where it is shown.
MESSAGES = {
    "enter a value": N_("Enter a value."),
    "must be a number": N_("Enter a number."),
    "must be an amount of 0 or more": N_("Enter an amount of 0 or more."),
    "must have at most 2 decimals": N_("Enter an amount with at most 2 decimals."),
    "must be a percentage from 0 to 100": N_("Enter a percentage from 0 to 100."),
    "must be a whole number": N_("Enter a whole number."),
    "must be a whole number of days, 0 or more": N_("Enter a whole number of days, 0 or more."),
    "must be a text": N_("Enter a text."),
    "is too long (at most 2000 characters)": N_("Too long: at most 2000 characters."),
    'must be a JSON list, such as ["a", "b"]': N_('Enter a JSON list, such as ["a", "b"].'),
    'must be a JSON object, such as {"goods": 100}': N_('Enter a JSON object, such as {"goods": 100}.'),
    "must be a JSON value": N_("Enter a JSON value."),
    "is not valid JSON": N_("This is not valid JSON."),
    "has a type that is not known": N_("This parameter's type is not known."),
    "must be on or after the start date": N_("The end date must be on or after the start date."),
    "comes from the organisation's settings: change it there": N_(
        "This parameter comes from the organisation settings: change it there."
    ),
    "has no value of the organisation's own: it uses the shared one already": N_(
        "The organisation has no value of its own: it uses the shared value already."
    ),
    "has no shared value to go back to": N_("There is no shared value to go back to."),
}
# What each type's value field expects, shown beside it.
TYPE_HINTS = {
    "money": N_("An amount of 0 or more, at most 2 decimals, such as 100000 or 2500.50."),
    "days": N_("A whole number of calendar days."),
    "working_days": N_("A whole number of working days."),
    "percentage": N_("A number from 0 to 100."),
    "integer": N_("A whole number."),
    "text": N_("A text."),
    "list": N_('A JSON list, such as ["unit_head", "director"].'),
    "object": N_('A JSON object, such as {"goods": 700000, "services": 700000}.'),
}
TYPE_NAMES = {
    "money": N_("Amount"),
    "days": N_("Days"),
    "working_days": N_("Working days"),
    "percentage": N_("Percentage"),
    "integer": N_("Whole number"),
    "text": N_("Text"),
    "list": N_("List"),
    "object": N_("Object"),
}


def _message(text: str) -> str:
    return _(MESSAGES[text]) if text in MESSAGES else text


def show_value(kind: str | None, value: Any) -> str:
    """Return *value* as the page shows it: numbers in the user's format, lists and objects as JSON."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float) and kind in ("money", "percentage", "days", "working_days", "integer"):
        shown = format_decimal(value, format="#,##0.##" if kind != "money" else "#,##0.00")
        return f"{shown} %" if kind == "percentage" else str(shown)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _input_value(kind: str | None, value: Any) -> str:
    """Return *value* as the value field takes it back (so the form can start from the value in force)."""
    if value is None:
        return ""
    if isinstance(value, str) and kind == "text":
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False, indent=2 if isinstance(value, dict | list) else None)


def _today() -> dt.date:
    return dt.date.today()


def _entry(key: str) -> engine.parameters.ParameterEntry:
    try:
        return engine.parameters.parameter_entry(db_session(), g.organisation.id, key)
    except engine.NotFoundError:
        abort(404)


def _render_detail(
    entry: engine.parameters.ParameterEntry,
    form: dict[str, str],
    errors: dict[str, str],
    *,
    status: int = 200,
) -> tuple[str, int]:
    history: list[engine.parameters.HistoryRow] = engine.parameters.parameter_history(
        db_session(), g.organisation.id, entry.key
    )
    has_own = any(not item.shared for item in history)
    has_shared = any(item.shared for item in history)
    return (
        render_template(
            "admin/parameters_detail.html",
            entry=entry,
            history=history,
            has_own=has_own,
            has_shared=has_shared,
            form=form,
            errors=errors,
            done=request.args.get("done", ""),
            type_hint=_(TYPE_HINTS[entry.type]) if entry.type else _("Any JSON value."),
            type_name=_(TYPE_NAMES[entry.type]) if entry.type else _("Not declared"),
            multiline=entry.type in (None, "list", "object"),
            show_value=show_value,
            language=current_language(),
        ),
        status,
    )


@bp.route("/parameters")
def parameters() -> str:
    """List every parameter the organisation's processes read, with the value in force today."""
    entries = engine.parameters.parameter_catalogue(db_session(), g.organisation.id)
    return render_template(
        "admin/parameters.html",
        entries=entries,
        show_value=show_value,
        type_names={kind: _(name) for kind, name in TYPE_NAMES.items()},
        language=current_language(),
    )


def _default_form(entry: engine.parameters.ParameterEntry) -> dict[str, str]:
    return {
        "value": _input_value(entry.type, entry.value if entry.source in ("own", "shared") else None),
        "valid_from": (_today() + dt.timedelta(days=1)).isoformat(),
        "valid_to": "",
        "note": "",
    }


@bp.route("/parameters/<key>", methods=["GET"])
def parameters_detail(key: str) -> tuple[str, int]:
    """Show one parameter: the value in force, its history and the form to add a value from a date.

    :raises NotFound: (404) the organisation's processes do not read *key* and no value of it
        is recorded for the organisation or shared.
    """
    entry = _entry(key)
    return _render_detail(entry, _default_form(entry), {})


def _date(text: str, field: str, errors: dict[str, str], *, required: bool) -> dt.date | None:
    text = text.strip()
    if not text:
        if required:
            errors[field] = _("Enter a date.")
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors[field] = _("Enter a date as YYYY-MM-DD.")
        return None


@bp.route("/parameters/<key>", methods=["POST"])
def parameters_add(key: str) -> Response | tuple[str, int]:
    """Record a new value of *key* for the organisation from a date (an override of a shared value,
    or a correction when a value from that date exists: the older row stays in the history).

    Form fields: ``value`` (as the parameter's type takes it: a number, a text, or JSON),
    ``valid_from`` and optionally ``valid_to`` (``YYYY-MM-DD``), ``note``.

    :raises NotFound: (404) as :func:`parameters_detail`.
    :returns: a redirect to the parameter's page with ``?done=added``; 422 and the form with a
        message beside each refused field, nothing stored.
    """
    entry = _entry(key)
    form = {name: request.form.get(name, "") for name in ("value", "valid_from", "valid_to", "note")}
    errors: dict[str, str] = {}
    if entry.from_settings:
        errors["value"] = _message("comes from the organisation's settings: change it there")
        return _render_detail(entry, form, errors, status=422)
    valid_from = _date(form["valid_from"], "valid_from", errors, required=True)
    valid_to = _date(form["valid_to"], "valid_to", errors, required=False)
    value: Any = None
    try:
        value = engine.parameters.parse_value(entry.type, form["value"])
    except engine.FormValidationError as exc:
        errors.update({field: _message(messages[0]) for field, messages in exc.errors.items()})
    if not errors and valid_from is not None:
        try:
            engine.parameters.record_parameter_value(
                db_session(),
                g.organisation.id,
                key,
                value,
                valid_from=valid_from,
                valid_to=valid_to,
                note=form["note"],
                actor=g.user.username,
            )
        except engine.FormValidationError as exc:
            errors.update({field: _message(messages[0]) for field, messages in exc.errors.items()})
    if errors:
        return _render_detail(entry, form, errors, status=422)
    return redirect(url_for("admin.parameters_detail", key=key, done="added"), code=303)


@bp.route("/parameters/<key>/shared", methods=["POST"])
def parameters_use_shared(key: str) -> Response | tuple[str, int]:
    """From a date, use the shared value of *key* again instead of the organisation's own.

    Form fields: ``shared_from`` (``YYYY-MM-DD``), ``shared_note``.

    :raises NotFound: (404) as :func:`parameters_detail`.
    :returns: a redirect to the parameter's page with ``?done=shared``; 422 with the message.
    """
    entry = _entry(key)
    errors: dict[str, str] = {}
    shared_from = _date(request.form.get("shared_from", ""), "shared_from", errors, required=True)
    note = request.form.get("shared_note", "")
    if shared_from is not None:
        try:
            engine.parameters.use_shared_parameter(
                db_session(), g.organisation.id, key, valid_from=shared_from, note=note, actor=g.user.username
            )
        except engine.FormValidationError as exc:
            for field, messages in exc.errors.items():
                errors["shared_note" if field == "note" else "shared_from"] = _message(messages[0])
    if errors:
        form = {
            **_default_form(entry),
            "shared_from": request.form.get("shared_from", ""),
            "shared_note": note,
        }
        return _render_detail(entry, form, errors, status=422)
    return redirect(url_for("admin.parameters_detail", key=key, done="shared"), code=303)
