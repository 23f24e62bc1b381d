"""Render a :class:`~forms.model.Form` to accessible HTML (Pico CSS conventions).

The HTML is built by Jinja templates in ``forms/templates`` with autoescaping
on: a label or value containing ``<script>`` is shown as text. Each input
carries ``aria-invalid`` and ``aria-describedby`` pointing at its messages and
help text. Interface words ("Add row", "Yes") go through the *gettext*
callable the caller passes, so the web app's translations apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .messages import translate_message
from .model import ATTACHMENT_PREFIX, Form
from .submission import ACTION_FIELD, ROWS_SUFFIX


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
            action_field=ACTION_FIELD,
            rows_suffix=ROWS_SUFFIX,
            attachment_prefix=ATTACHMENT_PREFIX,
        )
    )
