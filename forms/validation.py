"""Validate submitted form data against a task's JSON Schema.

Errors are keyed by the field's path (``quotes/0/price``; ``""`` for the form
as a whole) so a page can show each message beside its field.

``Decimal`` values count as JSON numbers (money typed into a form stays exact
all the way into the workflow), and dates and datetimes are checked as their
ISO strings, the way they travel in JSON: ``"format": "date"`` is
``YYYY-MM-DD``, ``"format": "date-time"`` RFC 3339 with an offset (what a
timer can be set from).

``"x-not-before": "now"`` on a date or date-time field refuses one in the
past: a date before today (in the organisation's time zone), a date-time
before the moment of validation.

A schema comes from a stranger's form file (see :mod:`forms.schema_check`):
references are resolved only inside it, never fetched, and ``pattern``,
``patternProperties`` (also where ``additionalProperties`` consults it) and
the ``regex`` format run on RE2, in time linear in the submitted text.

One keyword of Procflow's own checks across the rows of a table:
``"x-total": {"of": "weight", "equals": 100}`` on an array of objects says
that the rows' ``weight`` values must add up to 100 (award criteria weights);
its message is keyed by the array's own path.
"""

from __future__ import annotations

import contextvars
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
from .dates import is_rfc3339, parse_date, parse_date_time, zone_info
from .model import NOT_BEFORE
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


def _total(validator: Any, total: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not (validator.is_type(instance, "array") and isinstance(total, Mapping)):
        return
    values = [row.get(total.get("of")) for row in instance if isinstance(row, Mapping)]
    numbers = [v for v in values if validator.is_type(v, "number") and not isinstance(v, bool)]
    if len(numbers) < len(values):
        return  # rows with a missing or non-numeric value get their own message; the total waits for them
    # Summed as typed (33.4 + 33.3 + 33.3 is 100), not in binary floating point.
    summed = sum((Decimal(str(n)) for n in numbers), Decimal(0))
    if summed != Decimal(str(total.get("equals"))):
        yield ValidationError(messages.TOTAL % {"limit": total.get("equals"), "total": _plain(summed)})


def _plain(value: Decimal) -> str:
    return str(value.to_integral_value()) if value == value.to_integral_value() else str(value.normalize())


# The moment and time zone "x-not-before": "now" compares with, set for one validate_submission call.
_NOW: contextvars.ContextVar[tuple[dt.datetime, str]] = contextvars.ContextVar("forms_now")


def _not_before(validator: Any, bound: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if bound != "now" or not isinstance(instance, str):
        return
    now, zone = _NOW.get()
    if schema.get("format") == "date-time":
        moment = parse_date_time(instance, zone) if is_rfc3339(instance) else None
        if moment is not None and moment < now:
            yield ValidationError(f"{instance!r} is in the past")
        return
    day = parse_date(instance)
    if day is not None and day < now.astimezone(zone_info(zone)).date():
        yield ValidationError(f"{instance!r} is in the past")


def _with_safe_keywords(cls: Any) -> Any:
    checker = cls.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer})
    keywords = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        NOT_BEFORE: _not_before,
        "x-total": _total,
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
    checker.checks("date-time")(lambda instance: not isinstance(instance, str) or is_rfc3339(instance))
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
_FORMATS = {
    "date": messages.NOT_A_DATE,
    "date-time": messages.NOT_A_DATE_TIME,
    "email": messages.NOT_AN_EMAIL,
}


def _message(error: ValidationError) -> str:
    """Return a message a form user understands (and a translator can translate)."""
    if error.validator == "required":
        return messages.REQUIRED
    if error.validator in _LIMITS:
        return _LIMITS[str(error.validator)] % {"limit": error.validator_value}
    if error.validator == "type" and error.validator_value in _TYPES:
        return _TYPES[str(error.validator_value)]
    if error.validator == "const" and error.validator_value is True:
        return messages.REQUIRED  # a box to tick to confirm, left unticked
    if error.validator in ("enum", "const"):
        return messages.NOT_A_CHOICE
    if error.validator == "contains":
        return messages.NONE_CHOSEN
    if error.validator == "format":
        return _FORMATS.get(str(error.validator_value), messages.WRONG_FORMAT)
    if error.validator == "pattern":
        return messages.WRONG_FORMAT
    if error.validator == NOT_BEFORE:
        return messages.NOT_IN_THE_PAST
    return str(error.message)


def validate_submission(
    schema: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
    time_zone: str = "UTC",
) -> dict[str, list[str]]:
    """Return validation messages per field path; an empty dict means *data* is valid.

    ``"x-not-before": "now"`` compares a date-time with *now* (the current
    time), and a date with today in *time_zone* (an IANA name).

    :raises FormSchemaError: the schema itself cannot be used safely (a ``$ref``
        out of the form or in a cycle, a pattern RE2 cannot run; see
        :func:`forms.schema_check.check_form_safety`), or it recursed too deeply.
        Deploy refuses such forms, so this guards only against forms stored before.
    """
    check_form_safety(schema)
    token = _NOW.set((now or dt.datetime.now(dt.UTC), time_zone))
    try:
        found = sorted(
            _validator_for(schema).iter_errors(_as_json(data)), key=lambda e: list(e.absolute_path)
        )
    except Unresolvable as exc:
        raise FormSchemaError(f"$ref {exc.ref!r} cannot be resolved inside the form") from None
    except RecursionError:
        raise FormSchemaError("the form schema recurses too deeply to validate") from None
    finally:
        _NOW.reset(token)
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
