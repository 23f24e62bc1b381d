"""Case values as a reader sees them: labelled by their form, formatted in the user's language.

The case page shows the earlier forms' fields ("Case so far") and the
summary a process declares in its ``case.json`` with these helpers: yes/no
translated, choices by their label, dates and times in the organisation's
time zone, objects and rows as nested lists and tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import format_date, format_datetime, format_decimal
from flask_babel import gettext as _
from markupsafe import Markup, escape

import engine
import forms
from forms.model import choices, ordered_properties, schema_text, schema_type

from .i18n import current_language


@dataclass(frozen=True)
class ShownField:
    """One labelled value of a form or summary, ready to show (``value`` is safe HTML)."""

    label: str
    value: Markup
    note: str | None = None


@dataclass(frozen=True)
class ShownForm:
    """An earlier form of the case, or a message it received: title, who and when, and its fields."""

    title: str
    at: dt.datetime
    by: str | None
    fields: list[ShownField]
    is_message: bool = False


def _humanize(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def field_label(name: str, schema: Mapping[str, Any], ui: Mapping[str, Any]) -> str:
    """Return a field's label in the user's language: ``ui:title``, else the schema's title, else its name."""
    locale = current_language()
    title = forms.localized(ui.get("ui:title"), locale) or schema_text(schema, "title", locale)
    return title or _humanize(name)


def _when(value: dt.datetime | dt.date, kind: str) -> Markup:
    text = format_datetime(value, "medium") if kind == "date-time" else format_date(value, "medium")
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), text)


def _date_value(value: Any, kind: str) -> Markup | None:
    if isinstance(value, dt.datetime):
        return _when(value if value.tzinfo else value.replace(tzinfo=dt.UTC), "date-time")
    if isinstance(value, dt.date):
        return _when(value, "date")
    if not isinstance(value, str):
        return None
    try:
        if kind == "date":
            return _when(dt.date.fromisoformat(value), "date")
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return _when(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC), "date-time")


def format_value(
    value: Any,
    schema: Mapping[str, Any] | None = None,
    ui: Mapping[str, Any] | None = None,
    *,
    attachments: Mapping[str, forms.AttachmentLink] | None = None,
) -> Markup:
    """Return *value* as safe HTML for reading, formatted as its *schema* describes.

    Without a schema the value's own type decides (a string that is an ISO date
    or time is shown as one).
    """
    schema = schema or {}
    ui = ui or {}
    attachments = attachments or {}
    if value is None or value == "" or value == [] or value == {}:
        return Markup("\u2013")  # an en dash, as for empty values elsewhere
    if isinstance(value, bool):
        return Markup(escape(_("Yes") if value else _("No")))
    options = choices(schema, current_language())
    if options is not None and not isinstance(value, list | dict):
        label = next((text for option, text in options if option == value), None)
        return Markup(escape(label if label is not None else str(value)))
    if isinstance(value, str):
        link = attachments.get(value) if value.startswith(forms.ATTACHMENT_PREFIX) else None
        if link is not None:
            return Markup('<a href="{}" download>{}</a>').format(link.url, link.filename)
        kind = schema.get("format") or ("date-time" if ui.get("ui:widget") == "datetime" else None)
        kind = kind or ("date" if ui.get("ui:widget") == "date" else None)
        if kind in ("date", "date-time") or (not schema and len(value) >= 10 and value[4:5] == "-"):
            shown = _date_value(value, kind or ("date" if len(value) == 10 else "date-time"))
            if shown is not None:
                return shown
        return Markup(escape(value))
    if isinstance(value, int | float):
        return Markup(escape(format_decimal(value)))
    if isinstance(value, Mapping):
        return _object_html(value, schema, ui, attachments)
    if isinstance(value, list):
        return _array_html(value, schema, ui, attachments)
    return Markup(escape(str(value)))


def _object_html(
    value: Mapping[str, Any],
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    attachments: Mapping[str, forms.AttachmentLink],
) -> Markup:
    properties = schema.get("properties") or {}
    names = [n for n in ordered_properties(schema, ui) if n in value] if properties else []
    names += [n for n in value if n not in names]
    items = [
        Markup("<dt>{}</dt><dd>{}</dd>").format(
            field_label(name, properties.get(name) or {}, ui.get(name) or {}),
            format_value(value[name], properties.get(name), ui.get(name), attachments=attachments),
        )
        for name in names
    ]
    return Markup('<dl class="nested">{}</dl>').format(Markup("").join(items))


def _array_html(
    value: list[Any],
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    attachments: Mapping[str, forms.AttachmentLink],
) -> Markup:
    items_schema = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
    items_ui = ui.get("items") if isinstance(ui.get("items"), Mapping) else {}
    assert isinstance(items_schema, Mapping) and isinstance(items_ui, Mapping)
    if value and all(isinstance(v, Mapping) for v in value):
        properties = items_schema.get("properties") or {}
        columns = [n for n in ordered_properties(items_schema, items_ui) if any(n in row for row in value)]
        columns += [n for row in value for n in row if n not in columns]
        columns = list(dict.fromkeys(columns))
        head = Markup("").join(
            Markup('<th scope="col">{}</th>').format(
                field_label(n, properties.get(n) or {}, items_ui.get(n) or {})
            )
            for n in columns
        )
        body = Markup("").join(
            Markup("<tr>{}</tr>").format(
                Markup("").join(
                    Markup("<td>{}</td>").format(
                        format_value(row.get(n), properties.get(n), items_ui.get(n), attachments=attachments)
                    )
                    for n in columns
                )
            )
            for row in value
        )
        return Markup(
            '<div class="table-scroll"><table class="striped"><thead><tr>{}</tr></thead>'
            "<tbody>{}</tbody></table></div>"
        ).format(head, body)
    shown = [format_value(v, items_schema, items_ui, attachments=attachments) for v in value]
    if all(schema_type(items_schema) != "object" and not isinstance(v, list | dict) for v in value):
        return Markup(", ").join(shown)
    return Markup('<ol class="nested">{}</ol>').format(
        Markup("").join(Markup("<li>{}</li>").format(s) for s in shown)
    )


def form_fields(
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    attachments: Mapping[str, forms.AttachmentLink] | None = None,
) -> list[ShownField]:
    """Return the fields a form's submitter filled in (not its read-only context), labelled and formatted."""
    properties = schema.get("properties") or {}
    # Without a form (a message with none) every value is shown, by its humanised name.
    names = ordered_properties(schema, ui) if properties else list(data)
    shown = []
    for name in names:
        prop = properties.get(name) or {}
        prop_ui = ui.get(name) or {}
        if name not in data or forms.is_read_only(prop, prop_ui) or prop_ui.get("ui:widget") == "hidden":
            continue
        shown.append(
            ShownField(
                label=field_label(name, prop, prop_ui),
                value=format_value(data[name], prop, prop_ui, attachments=attachments),
            )
        )
    return shown


def completed_forms(
    instance: engine.ProcessInstance, *, attachments: Mapping[str, forms.AttachmentLink] | None = None
) -> list[ShownForm]:
    """Return the forms completed on *instance*, in the order completed, with the fields each filled in."""
    from .db import db_session

    db = db_session()
    locale = current_language()
    case = engine.case_file(db, instance.definition)
    users: dict[str, str] = {}
    shown = []
    for completed in engine.completed_forms(db, instance):
        fields = form_fields(completed.schema, completed.ui_schema, completed.data, attachments=attachments)
        if completed.message is not None:
            entry = (case.get("messages") or {}).get(completed.message) or {}
            title = forms.localized(entry.get("label"), locale) or _humanize(completed.message)
        else:
            assert completed.task is not None
            title = schema_text(completed.schema, "title", locale) or completed.task.name
        by = None
        if completed.actor:
            if completed.actor not in users:
                user = db.scalar(sa.select(engine.User).where(engine.User.username == completed.actor))
                users[completed.actor] = (user.display_name or user.username) if user else completed.actor
            by = users[completed.actor]
        shown.append(
            ShownForm(
                title=title, at=completed.at, by=by, fields=fields, is_message=completed.message is not None
            )
        )
    return shown


_SUMMARY_SCHEMAS: dict[str, dict[str, Any]] = {
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
}


def case_summary(case: Mapping[str, Any], data: Mapping[str, Any]) -> list[ShownField]:
    """Return the summary fields a process declares in ``case.json`` that the case's data has."""
    locale = current_language()
    shown = []
    for item in case.get("summary") or []:
        key = item["key"]
        if data.get(key) in (None, ""):
            continue
        kind = item.get("format", "text")
        value = format_value(data[key], _SUMMARY_SCHEMAS.get(kind))
        note = None
        if item.get("note") and data.get(item["note"]["when"]) is True:
            text = forms.localized(item["note"]["text"], locale) or ""
            note = text.format_map(_Placeholders(data))
        label = forms.localized(item.get("label"), locale) or _humanize(key)
        shown.append(ShownField(label=label, value=value, note=note))
    return shown


class _Placeholders(dict[str, str]):
    """``{key}`` in a note becomes the case's value of *key* (as text); unknown keys stay as written."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__()
        self._data = data

    def __missing__(self, key: str) -> str:
        value = self._data.get(key)
        if value is None:
            return "{" + key + "}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(format_decimal(value))
        return str(value)
