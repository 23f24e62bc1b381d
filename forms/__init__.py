"""Human-task forms: JSON Schema definitions, validation and rendering.

Beyond JSON Schema and react-jsonschema-form's UI schema keys (see
:mod:`forms.model`), Procflow's forms understand ``x-translations`` (labels in
other languages, beside a field or a ``oneOf`` choice), ``"x-not-before":
"now"`` (no date before today, no date-time before now; :mod:`forms.validation`)
and date-times typed in the organisation's time zone (:mod:`forms.dates`).
"""

from __future__ import annotations

from .messages import translate_message
from .model import ATTACHMENT_PREFIX, Field, Form, build_form, is_read_only, localized
from .read_only import keep_read_only
from .render import AttachmentLink, display_value, render_fields
from .schema_check import FormSchemaError, check_form_schema, check_ui_schema
from .submission import Submission, parse_number, parse_submission
from .validation import validate_submission

__all__ = [
    "ATTACHMENT_PREFIX",
    "AttachmentLink",
    "Field",
    "Form",
    "FormSchemaError",
    "Submission",
    "build_form",
    "check_form_schema",
    "check_ui_schema",
    "display_value",
    "is_read_only",
    "keep_read_only",
    "localized",
    "parse_number",
    "parse_submission",
    "render_fields",
    "translate_message",
    "validate_submission",
]
