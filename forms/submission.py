"""From a submitted HTML form back to data of the types the JSON Schema asks for.

HTML sends only strings. This module turns them into numbers (``Decimal`` for
decimals and money, accepting a decimal comma and spaces as thousands
separators, as Swedish and Finnish users type them), booleans, dates
(``YYYY-MM-DD``), date-times (RFC 3339 with the offset of the organisation's
time zone, see :mod:`forms.dates`), lists of rows and nested objects, stores
uploaded files through a callback, and keeps what the user typed when a value
cannot be converted, so the form can be shown again with the input intact and
a message beside the field. A field left empty that declares a ``default``
gets it (an optional text left empty stays in the data as ``""``, so scripts
can read it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .dates import as_json_date_time, parse_date, parse_date_time
from .messages import NOT_A_CHOICE, NOT_A_DATE, NOT_A_DATE_TIME, NOT_A_NUMBER, NOT_A_WHOLE_NUMBER
from .model import (
    ATTACHMENT_PREFIX,
    choices,
    declares_nothing,
    is_read_only,
    ordered_properties,
    row_changes_allowed,
    schema_type,
    widget_for,
)

ACTION_FIELD = "_action"
ROWS_SUFFIX = "/__rows"


class FormData(Protocol):
    """What a submitted form offers (a Werkzeug ``MultiDict`` does)."""

    def get(self, key: str) -> str | None: ...

    def getlist(self, key: str) -> list[Any]: ...

    def __iter__(self) -> Iterator[str]: ...


class UploadedFile(Protocol):
    """What an uploaded file offers (a Werkzeug ``FileStorage`` does)."""

    filename: str | None


StoreFile = Callable[[str, Any], str]
"""Store the file uploaded for a field path and return its reference (``attachment:<id>``)."""


@dataclass
class Submission:
    """A parsed form: data for the engine, values to show again, messages, and a row action."""

    data: dict[str, Any]
    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    action: str | None = None


@dataclass
class _Parsed:
    present: bool
    data: Any = None
    value: Any = None
    errors: dict[str, list[str]] = field(default_factory=dict)


_MISSING = _Parsed(present=False)
_SPACES = re.compile(r"[\s\u00a0\u202f']")


def parse_number(raw: str, *, integer: bool = False) -> int | Decimal:
    """Parse a number as people type it: ``1 234,50``, ``1234.5``, ``-7``.

    :raises ValueError: *raw* is not a number (or not a whole number when *integer*).
    """
    text = _SPACES.sub("", raw.strip())
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(raw) from exc
    if not number.is_finite():
        raise ValueError(raw)
    if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
        return int(number)
    if integer:
        raise ValueError(raw)
    return number


def _typed_choice(raw: str, schema: Mapping[str, Any]) -> tuple[bool, Any]:
    for value, _label in choices(schema) or []:
        if str(value) == raw:
            return True, value
    return False, raw


def _scalar(
    path: str,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    form: FormData,
    files: Mapping[str, Any],
    store_file: StoreFile | None,
    *,
    required: bool,
    time_zone: str,
) -> _Parsed:
    widget = widget_for(schema, ui, required=required)
    kind = schema_type(schema)
    if widget == "checkbox":
        checked = form.get(path) in ("on", "true", "1")
        return _Parsed(present=True, data=checked, value=checked)
    if widget == "file":
        upload = files.get(path)
        if upload is not None and getattr(upload, "filename", None) and store_file is not None:
            reference = store_file(path, upload)
            return _Parsed(present=True, data=reference, value=reference)
        kept = form.get(path) or ""
        if kept.startswith(ATTACHMENT_PREFIX):
            return _Parsed(present=True, data=kept, value=kept)
        return _MISSING
    raw = form.get(path)
    if raw is None or str(raw).strip() == "":
        if "default" in schema:
            return _Parsed(present=True, data=schema["default"], value=None)
        return _MISSING
    raw = str(raw)
    if widget == "date":
        day = parse_date(raw)
        if day is None:
            return _Parsed(present=True, value=raw, errors={"": [NOT_A_DATE]})
        return _Parsed(present=True, data=day.isoformat(), value=day.isoformat())
    if widget == "datetime":
        moment = parse_date_time(raw, time_zone)
        if moment is None:
            return _Parsed(present=True, value=raw, errors={"": [NOT_A_DATE_TIME]})
        return _Parsed(present=True, data=as_json_date_time(moment), value=as_json_date_time(moment))
    if widget == "boolean_radio" or kind == "boolean":
        if raw not in ("true", "false"):
            return _Parsed(present=True, value=raw, errors={"": [NOT_A_CHOICE]})
        return _Parsed(present=True, data=raw == "true", value=raw == "true")
    if choices(schema) is not None:
        known, value = _typed_choice(raw, schema)
        if not known:
            return _Parsed(present=True, value=raw, errors={"": [NOT_A_CHOICE]})
        return _Parsed(present=True, data=value, value=value)
    if kind in ("number", "integer"):
        try:
            number = parse_number(raw, integer=kind == "integer")
        except ValueError:
            message = NOT_A_WHOLE_NUMBER if kind == "integer" else NOT_A_NUMBER
            return _Parsed(present=True, value=raw, errors={"": [message]})
        return _Parsed(present=True, data=number, value=number)
    return _Parsed(present=True, data=raw, value=raw)


def _from_json(value: Any, schema: Mapping[str, Any]) -> Any:
    """Turn a context value back into the schema's types, at any depth (JSON carries Decimals as strings)."""
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return value
        return {
            key: _from_json(v, properties[key]) if isinstance(properties.get(key), Mapping) else v
            for key, v in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items")
        return [_from_json(v, items) for v in value] if isinstance(items, Mapping) else value
    if schema_type(schema) in ("number", "integer") and isinstance(value, str):
        try:
            return parse_number(value, integer=schema_type(schema) == "integer")
        except ValueError:
            return value
    return value


def _checkboxes(path: str, schema: Mapping[str, Any], form: FormData) -> _Parsed:
    items = schema.get("items") or {}
    selected = [v for known, v in (_typed_choice(str(raw), items) for raw in form.getlist(path)) if known]
    return _Parsed(present=True, data=selected, value=selected)


def _row_count(path: str, form: FormData) -> int:
    declared = form.get(path + ROWS_SUFFIX)
    if declared is not None and str(declared).isdigit():
        return int(declared)
    prefix = path + "/"
    indexes = {
        int(k[len(prefix) :].split("/")[0])
        for k in form
        if k.startswith(prefix) and k[len(prefix) :].split("/")[0].isdigit()
    }
    return max(indexes) + 1 if indexes else 0


def _rows(
    path: str,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    form: FormData,
    files: Mapping[str, Any],
    store_file: StoreFile | None,
    context: Any,
    *,
    keep_empty: bool,
    time_zone: str,
) -> _Parsed:
    items: Mapping[str, Any] = schema.get("items") or {}
    item_ui: Mapping[str, Any] = ui.get("items") or {}
    context_rows = context if isinstance(context, list) else []
    if is_read_only(items, item_ui) or declares_nothing(schema):
        # Every row is context from earlier steps (as for a read-only field, see _object); rows
        # whose items declare no fields are shown, not edited (forms.build_form), so they are kept too.
        if not isinstance(context, list):
            return _MISSING
        kept = [_from_json(row, items) for row in context]
        return _Parsed(present=True, data=kept, value=list(kept))
    parsed_rows = []
    for index in range(_row_count(path, form)):
        row_path = f"{path}/{index}"
        if schema_type(items) == "object":
            # Read-only cells show the case's row at the same position (forms.keep_read_only matches so too).
            known = context_rows[index] if index < len(context_rows) else None
            row = _object(
                row_path,
                items,
                item_ui,
                form,
                files,
                store_file,
                known,
                keep_empty=keep_empty,
                time_zone=time_zone,
            )
            filled = any(v not in (None, "", False, []) for v in (row.value or {}).values())
        else:
            row = _field(
                row_path,
                items,
                item_ui,
                form,
                files,
                store_file,
                None,
                required=True,
                keep_empty=keep_empty,
                time_zone=time_zone,
            )
            filled = row.present
        if filled or keep_empty:
            parsed_rows.append(row)
    data, values, errors = [], [], {}
    for index, row in enumerate(parsed_rows):
        data.append(row.data if row.data is not None else ({} if schema_type(items) == "object" else None))
        values.append(row.value)
        for relative, messages in row.errors.items():
            errors[f"{index}/{relative}" if relative else str(index)] = messages
    return _Parsed(present=True, data=data, value=values, errors=errors)


def _object(
    path: str,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    form: FormData,
    files: Mapping[str, Any],
    store_file: StoreFile | None,
    context: Any,
    *,
    keep_empty: bool,
    time_zone: str,
) -> _Parsed:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    context = context if isinstance(context, Mapping) else {}
    data: dict[str, Any] = {}
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in ordered_properties(schema, ui):
        child_path = f"{path}/{name}" if path else name
        child_ui: Mapping[str, Any] = ui.get(name) or {}
        child_schema: Mapping[str, Any] = properties[name]
        if is_read_only(child_schema, child_ui):
            # Read-only context is shown from earlier steps, never taken from the browser.
            if name in context:
                data[name] = values[name] = _from_json(context[name], child_schema)
            continue
        parsed = _field(
            child_path,
            child_schema,
            child_ui,
            form,
            files,
            store_file,
            context.get(name),
            required=name in required,
            keep_empty=keep_empty,
            time_zone=time_zone,
        )
        if not parsed.present:
            continue
        values[name] = parsed.value
        if parsed.data is not None:
            data[name] = parsed.data
        for relative, messages in parsed.errors.items():
            errors[f"{name}/{relative}" if relative else name] = messages
    return _Parsed(present=True, data=data, value=values, errors=errors)


def _field(
    path: str,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    form: FormData,
    files: Mapping[str, Any],
    store_file: StoreFile | None,
    context: Any,
    *,
    required: bool,
    keep_empty: bool,
    time_zone: str,
) -> _Parsed:
    widget = widget_for(schema, ui, required=required)
    if widget == "group":
        return _object(
            path, schema, ui, form, files, store_file, context, keep_empty=keep_empty, time_zone=time_zone
        )
    if widget == "rows":
        return _rows(
            path, schema, ui, form, files, store_file, context, keep_empty=keep_empty, time_zone=time_zone
        )
    if widget == "checkboxes":
        return _checkboxes(path, schema, form)
    return _scalar(path, schema, ui, form, files, store_file, required=required, time_zone=time_zone)


def _rows_ui(ui: Mapping[str, Any], parts: list[str]) -> Mapping[str, Any]:
    """Return the UI schema of the repeating field at *parts* (row indexes step into ``items``)."""
    for part in parts:
        step = ui.get("items") if part.isdigit() else ui.get(part)
        ui = step if isinstance(step, Mapping) else {}
    return ui


def _apply_action(values: dict[str, Any], ui: Mapping[str, Any], action: str) -> None:
    verb, _, target = action.partition(":")
    parts = target.split("/")
    if verb == "remove" and len(parts) >= 2 and parts[-1].isdigit():
        if not row_changes_allowed(_rows_ui(ui, parts[:-1]))[1]:
            return  # the form offers no removing here; a forged button changes nothing
        container = _navigate(values, parts[:-1])
        index = int(parts[-1])
        if isinstance(container, list) and index < len(container):
            del container[index]
    elif verb == "add":
        if not row_changes_allowed(_rows_ui(ui, parts))[0]:
            return
        container = _navigate(values, parts)
        if isinstance(container, list):
            container.append(None)


def _navigate(values: Any, parts: list[str]) -> Any:
    current = values
    for part in parts:
        if isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        elif isinstance(current, dict):
            current = current.setdefault(part, [])
        else:
            return None
    return current


def parse_submission(
    schema: Mapping[str, Any],
    ui_schema: Mapping[str, Any] | None,
    form: FormData,
    files: Mapping[str, Any] | None = None,
    *,
    store_file: StoreFile | None = None,
    context: Mapping[str, Any] | None = None,
    time_zone: str = "UTC",
) -> Submission:
    """Turn a submitted form into data of the schema's types.

    Read-only fields take their value from *context* (the data of earlier
    steps). A date-time typed without an offset is read in *time_zone* (an
    IANA name); a date or date-time that cannot be read is a message beside
    its field, with the text kept as typed. Uploaded files are handed to *store_file*, and the reference it
    returns becomes the field's value. When the submit button carried a row
    action (``add:quotes`` or ``remove:quotes/1``), it is applied to
    :attr:`Submission.values` and empty rows are kept so the form can be shown
    again; otherwise empty rows are dropped.
    """
    action = form.get(ACTION_FIELD) or None
    parsed = _object(
        "",
        schema,
        ui_schema or {},
        form,
        files or {},
        store_file,
        context or {},
        keep_empty=action is not None,
        time_zone=time_zone,
    )
    values: dict[str, Any] = parsed.value
    if action:
        _apply_action(values, ui_schema or {}, str(action))
    return Submission(data=parsed.data, values=values, errors=parsed.errors, action=action)
