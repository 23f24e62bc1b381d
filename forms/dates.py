"""Dates and date-times as people type them and as JSON carries them.

A ``"format": "date"`` field holds ``YYYY-MM-DD``; a ``"format": "date-time"``
field holds RFC 3339 with its offset (``2026-12-01T10:00:00+01:00``), so a
timer or a deadline means the same instant wherever it is read. People type
a date-time without an offset (a ``datetime-local`` picker sends
``2026-12-01T10:00``), so it is read in the organisation's time zone. Besides
ISO dates, the Finnish ``1.12.2026`` is understood, with ``10:00`` or
``10.00`` for the time.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_ISO_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$")
_DOTTED_DATE_TIME = re.compile(
    r"^(\d{1,2})\.(\d{1,2})\.(\d{4})\s+(?:klo\s+)?(\d{1,2})[:.](\d{2})$", re.IGNORECASE
)


def zone_info(name: str | None) -> dt.tzinfo:
    """Return the time zone named *name* (an IANA name), or UTC when it is empty or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC


def parse_date(text: str) -> dt.date | None:
    """Return the date *text* writes (``2026-12-01`` or ``1.12.2026``), or ``None`` if it writes none."""
    text = text.strip()
    try:
        if match := _ISO_DATE.match(text):
            year, month, day = (int(part) for part in match.groups())
            return dt.date(year, month, day)
        if match := _DOTTED_DATE.match(text):
            day, month, year = (int(part) for part in match.groups())
            return dt.date(year, month, day)
    except ValueError:
        return None
    return None


def parse_date_time(text: str, zone: str | None = None) -> dt.datetime | None:
    """Return the instant *text* writes, or ``None`` if it writes none.

    A time without an offset is read in the time zone *zone* (UTC when unset).
    """
    text = text.strip()
    offset: str | None = None
    try:
        if match := _ISO_DATE_TIME.match(text):
            year, month, day, hour, minute = (int(part) for part in match.groups()[:5])
            second = int(match.group(6) or 0)
            offset = match.group(7)
        elif match := _DOTTED_DATE_TIME.match(text):
            day, month, year, hour, minute = (int(part) for part in match.groups())
            second = 0
        else:
            return None
        naive = dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    if offset is None:
        return naive.replace(tzinfo=zone_info(zone))
    if offset.upper() == "Z":
        return naive.replace(tzinfo=dt.UTC)
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        return None
    return naive.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes)))


def is_rfc3339(text: str) -> bool:
    """Tell whether *text* is a date-time as JSON Schema's ``date-time`` format means it: with an offset."""
    return bool(_RFC3339.match(text)) and parse_date_time(text) is not None


def as_json_date_time(moment: dt.datetime) -> str:
    """Return *moment* (aware) as RFC 3339 text, to the second."""
    return moment.isoformat(timespec="seconds")
