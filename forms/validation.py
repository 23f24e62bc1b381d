"""Validate submitted form data against a task's JSON Schema.

Errors are keyed by the field's path (``quotes/0/price``; ``""`` for the form
as a whole) so a page can show each message beside its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

_DRAFT_7 = "draft-07"


def _validator_for(schema: Mapping[str, Any]) -> Validator:
    declared = str(schema.get("$schema", ""))
    cls = Draft7Validator if _DRAFT_7 in declared else Draft202012Validator
    validator: Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def _field_path(error: ValidationError) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        # "required" is reported on the parent object; point at the missing field itself.
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            path.append(str(missing[0]))
    return "/".join(path)


def _message(error: ValidationError) -> str:
    if error.validator == "required":
        return "This field is required."
    return str(error.message)


def validate_submission(schema: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return validation messages per field path; an empty dict means *data* is valid."""
    errors: dict[str, list[str]] = {}
    for error in sorted(_validator_for(schema).iter_errors(data), key=lambda e: list(e.absolute_path)):
        if error.validator == "required" and isinstance(error.instance, Mapping):
            for name in error.validator_value:
                if name not in error.instance:
                    path = "/".join([*(str(p) for p in error.absolute_path), str(name)])
                    errors.setdefault(path, []).append("This field is required.")
            continue
        errors.setdefault(_field_path(error), []).append(_message(error))
    return errors
