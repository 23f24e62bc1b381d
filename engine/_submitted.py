"""What users and other systems submit stays data: the checks every submission passes first.

Task completions, start data and message payloads become SpiffWorkflow task
data, whose top-level keys scripts see as variables beside the sandbox's own
names. So:

- A top-level key may not be one of :data:`RESERVED_DATA_NAMES` (``parameters``,
  the helpers such as ``date`` and ``Decimal``, the builtins scripts call), nor
  start with ``_`` (the sandbox refuses such names in scripts, and its guards
  use them), nor be anything but text. Nested keys are free: scripts reach them
  as ``row["date"]``, which shadows nothing. Keys that are text but no Python
  identifier (``"unit price"``) are accepted: forms and decisions may use them,
  scripts just cannot name them as variables.
- A number with a fraction becomes a ``Decimal`` (:func:`exact_numbers`), as
  a web form's amounts are: JSON from the API, the CLI or a message carries
  it as a float, and ``Decimal`` and ``float`` do not mix in a script's
  arithmetic (``price / parameters['base']`` would fail for one of the two).
- Data may nest at most :data:`MAX_DATA_DEPTH` levels. Validation, the
  serializer and ``json`` itself recurse once per level, and a payload nested
  100 000 levels deep would otherwise end in a ``RecursionError`` somewhere
  down the line. JSON text is measured before it is parsed
  (:func:`load_json`), without recursion.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._sandbox import RESERVED_DATA_NAMES
from .errors import DataError

MAX_DATA_DEPTH = 64
"""Most levels of objects and arrays submitted data may nest (``{"a": [1]}`` is two)."""

# A JSON string (escapes included, closing quote optional so a broken one
# cannot desynchronise the scan) or a bracket; everything else is skipped.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def json_too_deep_at(text: str, limit: int) -> tuple[int, int] | None:
    """Return the line and column where JSON *text* first nests deeper than *limit*, or ``None``.

    Brackets inside strings do not count. The text need not be valid JSON;
    a scan of invalid text just answers for the brackets it holds.
    """
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        first = match.group()[0]
        if first in "[{":
            depth += 1
            if depth > limit:
                position = match.start()
                line = text.count("\n", 0, position) + 1
                return line, position - text.rfind("\n", 0, position)
        elif first in "]}":
            depth -= 1
    return None


def load_json(text: str, *, max_depth: int = MAX_DATA_DEPTH) -> Any:
    """Parse JSON *text* that came from outside, refusing it when it nests deeper than *max_depth*.

    :raises DataError: the text nests too deep (the message gives line and column).
    :raises json.JSONDecodeError: the text is not JSON.
    """
    where = json_too_deep_at(text, max_depth)
    if where is not None:
        line, column = where
        raise DataError(f"JSON is nested more than {max_depth} levels deep (line {line}, column {column})")
    return json.loads(text)


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Tell whether *value* holds dicts and lists nested more than *limit* levels deep.

    Iterative, so any depth can be measured. A container met again no deeper
    than before is not walked again, so containers that Python callers share
    cost little; a cycle counts as too deep.
    """
    seen: dict[int, int] = {}
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        if seen.get(id(item), 0) >= depth:
            continue
        seen[id(item)] = depth
        stack.extend((child, depth + 1) for child in children)
    return False


def submitted_data_errors(data: Mapping[Any, Any]) -> dict[str, list[str]]:
    """Return what is wrong with submitted *data*, per top-level key (``""``: the data as a whole).

    An empty dict means the data may become task data. Callers raise the
    error that suits them (:class:`FormValidationError` for forms).
    """
    errors: dict[str, list[str]] = {}
    for key in data:
        if not isinstance(key, str):
            errors[str(key)] = [f"{key!r} is not a valid name: keys must be text"]
        elif key.startswith("_"):
            errors[key] = [f"{key!r} is a reserved name: names starting with '_' belong to the sandbox"]
        elif key == "parameters":
            errors[key] = [f"{key!r} is a reserved name: scripts read the organisation's parameters under it"]
        elif key in RESERVED_DATA_NAMES:
            errors[key] = [f"{key!r} is a reserved name: scripts use it for a built-in helper"]
    if nests_deeper_than(data, MAX_DATA_DEPTH):
        errors.setdefault("", []).append(f"The data is nested more than {MAX_DATA_DEPTH} levels deep.")
    return errors


def exact_numbers(value: Any) -> Any:
    """Return *value* with every finite float, at any depth, as the ``Decimal`` of its shortest text.

    ``0.1`` becomes ``Decimal("0.1")``, not the binary fraction's 55 digits, so
    an amount sent as JSON is the amount a web form would have given. Dicts,
    lists and tuples are copied; other values are returned as they are.
    Callers check the nesting first (:func:`submitted_data_errors`).
    """
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: exact_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [exact_numbers(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value
