"""Validate submitted form data against a task's JSON Schema.

Errors are keyed by the field's path (``quotes/0/price``; ``""`` for the form
as a whole) so a page can show each message beside its field.

``Decimal`` values count as JSON numbers (money typed into a form stays exact
all the way into the workflow), and dates and datetimes are checked as their
ISO strings, the way they travel in JSON.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from jsonschema import Draft7Validator, Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from . import messages

_DRAFT_7 = "draft-07"


def _is_number(checker: Any, instance: Any) -> bool:
    return isinstance(instance, Decimal) or bool(
        Draft202012Validator.TYPE_CHECKER.is_type(instance, "number")
    )


def _is_integer(checker: Any, instance: Any) -> bool:
    if isinstance(instance, Decimal):
        return instance.is_finite() and instance == instance.to_integral_value()
    return bool(Draft202012Validator.TYPE_CHECKER.is_type(instance, "integer"))


def _with_decimals(cls: Any) -> Any:
    checker = cls.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer})
    return validators.extend(cls, type_checker=checker)


_DECIMAL_DRAFT_7 = _with_decimals(Draft7Validator)
_DECIMAL_DRAFT_2020_12 = _with_decimals(Draft202012Validator)


def _validator_for(schema: Mapping[str, Any]) -> Validator:
    declared = str(schema.get("$schema", ""))
    cls = _DECIMAL_DRAFT_7 if _DRAFT_7 in declared else _DECIMAL_DRAFT_2020_12
    validator: Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def _as_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _field_path(error: ValidationError) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        # "required" is reported on the parent object; point at the missing field itself.
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            path.append(str(missing[0]))
    return "/".join(path)


_LIMITS = {
    "minimum": messages.AT_LEAST,
    "exclusiveMinimum": messages.MORE_THAN,
    "maximum": messages.AT_MOST,
    "exclusiveMaximum": messages.LESS_THAN,
    "minLength": messages.MIN_LENGTH,
    "maxLength": messages.MAX_LENGTH,
    "minItems": messages.MIN_ROWS,
    "maxItems": messages.MAX_ROWS,
}
_TYPES = {
    "number": messages.NOT_A_NUMBER,
    "integer": messages.NOT_A_WHOLE_NUMBER,
    "boolean": messages.NOT_YES_OR_NO,
}
_FORMATS = {"date": messages.NOT_A_DATE, "email": messages.NOT_AN_EMAIL}


def _message(error: ValidationError) -> str:
    """Return a message a form user understands (and a translator can translate)."""
    if error.validator == "required":
        return messages.REQUIRED
    if error.validator in _LIMITS:
        return _LIMITS[str(error.validator)] % {"limit": error.validator_value}
    if error.validator == "type" and error.validator_value in _TYPES:
        return _TYPES[str(error.validator_value)]
    if error.validator in ("enum", "const"):
        return messages.NOT_A_CHOICE
    if error.validator == "format":
        return _FORMATS.get(str(error.validator_value), messages.WRONG_FORMAT)
    if error.validator == "pattern":
        return messages.WRONG_FORMAT
    return str(error.message)


def validate_submission(schema: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return validation messages per field path; an empty dict means *data* is valid."""
    errors: dict[str, list[str]] = {}
    for error in sorted(
        _validator_for(schema).iter_errors(_as_json(data)), key=lambda e: list(e.absolute_path)
    ):
        if error.validator == "required" and isinstance(error.instance, Mapping):
            for name in error.validator_value:
                if name not in error.instance:
                    path = "/".join([*(str(p) for p in error.absolute_path), str(name)])
                    # jsonschema reports each missing property as its own error, naming them all.
                    if messages.REQUIRED not in errors.setdefault(path, []):
                        errors[path].append(messages.REQUIRED)
            continue
        errors.setdefault(_field_path(error), []).append(_message(error))
    return errors
