"""Render a :class:`~forms.model.Form` to accessible HTML (Pico CSS conventions).

The HTML is built by Jinja templates in ``forms/templates`` with autoescaping
on: a label or value containing ``<script>`` is shown as text. Each input
carries ``aria-invalid`` and ``aria-describedby`` pointing at its messages and
help text. Interface words ("Add row", "Yes") go through the *gettext*
callable the caller passes, so the web app's translations apply.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .dates import parse_date, parse_date_time
from .messages import translate_message
from .model import ATTACHMENT_PREFIX, Field, Form
from .submission import ACTION_FIELD, ROWS_SUFFIX

NOTHING = "\N{EN DASH}"
"""What a read-only field shows when the case holds no value for it."""

# Values the schema does not describe are shown as dates when they are written as ISO dates.
_LOOKS_LIKE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOOKS_LIKE_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class AttachmentLink:
    """Where to download an attachment a field refers to, and its file name."""

    url: str
    filename: str


_ENV = Environment(
    loader=PackageLoader("forms", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def display_value(value: Any) -> str:
    """Return *value* as the text an input shows."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def input_value(f: Field) -> tuple[str, str]:
    """Return the ``type`` and ``value`` of a date or date-time field's input.

    A value that is not a date (or date-time) comes back as typed in a text
    input, so the user sees and corrects it; a browser would drop it from a
    date picker.
    """
    text = display_value(f.value)
    if f.widget == "date":
        return ("date", text) if text == "" or parse_date(text) is not None else ("text", text)
    moment = parse_date_time(text, f.time_zone) if text else None
    if text == "" or moment is None:
        return ("datetime-local", "") if text == "" else ("text", text)
    return "datetime-local", moment.astimezone(ZoneInfo(f.time_zone)).strftime("%Y-%m-%dT%H:%M")


def readonly_text(f: Field, value: Any, *, locale: str, gettext: Callable[[str], str]) -> str:
    """Return a read-only field's *value* as the text a reader sees, in *locale*.

    Yes/no in words, choices by their labels, numbers and dates as *locale*
    writes them, date-times in the field's time zone, lists joined by commas.
    """
    if value is None or value == "" or value == []:
        return NOTHING
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list):
        return ", ".join(readonly_text(f, item, locale=locale, gettext=gettext) for item in value)
    if isinstance(value, Mapping):
        parts = (f"{key}: {readonly_text(f, v, locale=locale, gettext=gettext)}" for key, v in value.items())
        return ", ".join(parts)
    for option, label in f.options:
        if option == display_value(value):
            return label
    if isinstance(value, str) and f.widget in ("number", "money"):
        # Exact amounts travel as text (a Decimal in JSON); show them as the numbers they are.
        with contextlib.suppress(InvalidOperation):
            value = Decimal(value)
    if isinstance(value, int | float | Decimal):
        # Years and other numbers of up to four digits read better ungrouped (2026, not 2 026).
        grouped = not -10000 < value < 10000
        text = format_decimal(value, locale=locale, group_separator=grouped)
        return f"{text} {f.currency}" if f.currency else text
    if isinstance(value, dt.datetime):
        return format_datetime(value, "medium", tzinfo=ZoneInfo(f.time_zone), locale=locale)
    if isinstance(value, dt.date):
        return format_date(value, "medium", locale=locale)
    text = str(value)
    if f.widget == "datetime" or _LOOKS_LIKE_DATE_TIME.match(text):
        moment = parse_date_time(text, f.time_zone)
        if moment is not None:
            return format_datetime(moment, "medium", tzinfo=ZoneInfo(f.time_zone), locale=locale)
    if f.widget == "date" or _LOOKS_LIKE_DATE.match(text):
        day = parse_date(text)
        if day is not None:
            return format_date(day, "medium", locale=locale)
    return text


def render_fields(
    form: Form,
    *,
    gettext: Callable[[str], str] = str,
    attachments: Mapping[str, AttachmentLink] | None = None,
) -> Markup:
    """Return the HTML of the form's fields and form-level messages (without the ``<form>`` element)."""
    template = _ENV.get_template("forms/fields.html")
    return Markup(
        template.render(
            form=form,
            _=gettext,
            msg=lambda message: translate_message(message, gettext),
            attachments=attachments or {},
            display=display_value,
            input_value=input_value,
            shown=lambda f, value: readonly_text(f, value, locale=form.locale, gettext=gettext),
            nothing=NOTHING,
            action_field=ACTION_FIELD,
            rows_suffix=ROWS_SUFFIX,
            attachment_prefix=ATTACHMENT_PREFIX,
        )
    )
