"""Validate submitted form data against a task's JSON Schema.

Errors are keyed by the field's path (``quotes/0/price``; ``""`` for the form
as a whole) so a page can show each message beside its field.

``Decimal`` values count as JSON numbers (money typed into a form stays exact
all the way into the workflow), and dates and datetimes are checked as their
ISO strings, the way they travel in JSON.

A schema comes from a stranger's form file (see :mod:`forms.schema_check`):
references are resolved only inside it, never fetched, and ``pattern``,
``patternProperties`` (also where ``additionalProperties`` consults it) and
the ``regex`` format run on RE2, in time linear in the submitted text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import FormatError, ValidationError
from jsonschema.protocols import Validator
from referencing.exceptions import Unresolvable

from . import messages
from .schema_check import NO_RETRIEVAL, FormSchemaError, check_form_safety, compile_pattern, dialect


def _is_number(checker: Any, instance: Any) -> bool:
    return isinstance(instance, Decimal) or bool(
        Draft202012Validator.TYPE_CHECKER.is_type(instance, "number")
    )


def _is_integer(checker: Any, instance: Any) -> bool:
    if isinstance(instance, Decimal):
        return instance.is_finite() and instance == instance.to_integral_value()
    return bool(Draft202012Validator.TYPE_CHECKER.is_type(instance, "integer"))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, pattern_properties: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        regex = compile_pattern(pattern)
        for name, value in instance.items():
            if regex.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    # jsonschema's own keyword matches patternProperties with Python's backtracking re.
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [
        name for name in instance if name not in properties and not any(p.search(name) for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif not additional and extras:
        unexpected = ", ".join(repr(name) for name in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({unexpected} unexpected)")


def _with_safe_keywords(cls: Any) -> Any:
    checker = cls.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer})
    keywords = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    }
    return validators.extend(cls, keywords, type_checker=checker)


def _is_regex(instance: object) -> bool:
    if isinstance(instance, str):
        try:
            compile_pattern(instance)
        except FormSchemaError as exc:
            raise FormatError(exc.message) from None
    return True


def _format_checker(cls: Any) -> FormatChecker:
    # Named formats only, so that a library installed later cannot add a check with a backtracking regex.
    checker = FormatChecker(())
    for name, (check, raises) in cls.FORMAT_CHECKER.checkers.items():
        if name in ("date", "email", "idn-email", "ipv4", "ipv6", "uuid"):
            checker.checks(name, raises)(check)
    checker.checks("regex")(_is_regex)
    return checker


_SAFE_VALIDATORS = {
    Draft7Validator: (_with_safe_keywords(Draft7Validator), _format_checker(Draft7Validator)),
    Draft202012Validator: (
        _with_safe_keywords(Draft202012Validator),
        _format_checker(Draft202012Validator),
    ),
}


def _validator_for(schema: Mapping[str, Any]) -> Validator:
    cls, format_checker = _SAFE_VALIDATORS[dialect(schema)]
    validator: Validator = cls(schema, format_checker=format_checker, registry=NO_RETRIEVAL)
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
    """Return validation messages per field path; an empty dict means *data* is valid.

    :raises FormSchemaError: the schema itself cannot be used safely (a ``$ref``
        out of the form or in a cycle, a pattern RE2 cannot run; see
        :func:`forms.schema_check.check_form_safety`), or it recursed too deeply.
        Deploy refuses such forms, so this guards only against forms stored before.
    """
    check_form_safety(schema)
    try:
        found = sorted(
            _validator_for(schema).iter_errors(_as_json(data)), key=lambda e: list(e.absolute_path)
        )
    except Unresolvable as exc:
        raise FormSchemaError(f"$ref {exc.ref!r} cannot be resolved inside the form") from None
    except RecursionError:
        raise FormSchemaError("the form schema recurses too deeply to validate") from None
    errors: dict[str, list[str]] = {}
    for error in found:
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
