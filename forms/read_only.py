"""Read-only fields keep the value the case holds, whatever a submitter sends.

A form shows context from earlier steps in fields marked ``"readOnly": true``
in the JSON Schema or ``"ui:readonly": true`` in the UI schema: the subject an
approver decides on, the supplier chosen, the estimated value. The web form
never sends them back (:func:`forms.parse_submission` takes them from the
case), but a caller of the JSON API or the command line can send anything, so
the engine puts the case's values back with :func:`keep_read_only` before it
validates and stores a submission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import is_read_only

_ABSENT: Any = object()


def keep_read_only(
    schema: Mapping[str, Any],
    ui_schema: Mapping[str, Any] | None,
    submitted: Mapping[str, Any],
    current: Mapping[str, Any],
) -> dict[str, Any]:
    """Return *submitted* with every read-only field's value replaced by its value in *current*.

    A read-only field that *current* does not hold is left out. Read-only
    fields count at any depth: properties of nested objects, and properties
    of array rows, whose rows are matched to the current ones by position
    (a row beyond the current ones gets no read-only values). A read-only
    object or array is kept whole, as is every property of a form whose root
    is read-only. Fields the schema does not declare pass unchanged.

    The result is the data the task will get, so validate the result, not
    *submitted*: a required read-only field is satisfied by the case's value.
    Neither argument is changed.
    """
    ui = ui_schema or {}
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return dict(submitted)
    if is_read_only(schema, ui):
        return {name: current[name] for name in properties if name in current}
    return _merge_object(properties, ui, submitted, current)


def _merge_object(
    properties: Mapping[str, Any], ui: Mapping[str, Any], submitted: Mapping[str, Any], current: Any
) -> dict[str, Any]:
    previous = current if isinstance(current, Mapping) else {}
    result = dict(submitted)
    for name, child in properties.items():
        if not isinstance(child, Mapping):
            continue
        child_ui = ui.get(name)
        value = _merge(
            child,
            child_ui if isinstance(child_ui, Mapping) else {},
            submitted.get(name, _ABSENT),
            previous.get(name, _ABSENT),
        )
        if value is _ABSENT:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def _merge(schema: Mapping[str, Any], ui: Mapping[str, Any], submitted: Any, current: Any) -> Any:
    """Return the value one field gets (``_ABSENT``: none)."""
    if is_read_only(schema, ui):
        return current
    properties = schema.get("properties")
    if isinstance(submitted, Mapping) and isinstance(properties, Mapping):
        return _merge_object(properties, ui, submitted, current)
    items = schema.get("items")
    if isinstance(submitted, list) and isinstance(items, Mapping):
        item_ui = ui.get("items")
        item_ui = item_ui if isinstance(item_ui, Mapping) else {}
        if is_read_only(items, item_ui):
            return current  # every row is context: the rows themselves are not the submitter's
        rows = current if isinstance(current, list) else []
        return [
            _merge(items, item_ui, row, rows[index] if index < len(rows) else _ABSENT)
            for index, row in enumerate(submitted)
        ]
    return submitted
