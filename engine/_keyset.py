"""Keyset-paging cursors shared by the inbox (engine/inbox.py) and the case list (engine/cases.py).

A cursor is URL-safe base64 of a compact JSON list: what it was made for, and the
last row's sort key (times as ISO strings). Reading one back checks each key
value against the type of the column it pages on, so a cursor tampered with
fails as :class:`ValueError` or :class:`TypeError` (each caller turns that into
its own :class:`~engine.errors.DataError`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from .models import UTCDateTime


def encode_cursor(parts: Sequence[Any]) -> str:
    """Return *parts* (JSON values, datetimes) as a cursor."""
    values = [
        [v.isoformat() if isinstance(v, dt.datetime) else v for v in part]
        if isinstance(part, list | tuple)
        else part
        for part in parts
    ]
    text = json.dumps(values, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> Any:
    """Return the JSON of *cursor*.

    :raises ValueError: it is not a cursor.
    """
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc


def key_values(columns: Sequence[Any], values: Any) -> tuple[Any, ...]:
    """Return the cursor's key *values* typed as the *columns* they page on.

    :raises ValueError, TypeError: a value is not of its column's type, or the counts differ.
    """
    if not isinstance(values, list) or len(values) != len(columns):
        raise ValueError("the cursor's key does not fit the sort")
    return tuple(_key_value(column, value) for column, value in zip(columns, values, strict=True))


def _key_value(column: Any, value: Any) -> Any:
    if isinstance(column.type, UTCDateTime):
        if not isinstance(value, str):
            raise TypeError(f"cursor value {value!r} is not a time")
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive time in cursor")
        return parsed
    python_type = column.type.python_type
    if not isinstance(value, python_type) or isinstance(value, bool):
        raise TypeError(f"cursor value {value!r} is not a {python_type.__name__}")
    return value
