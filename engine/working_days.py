"""Working days by jurisdiction: weekends and public holidays (the ``holidays`` package) are not worked.

Service levels in the shipped processes count working days from the day a
contact was received (that day itself is day 0). Which days are not worked
follows each country's rule for computing statutory time limits:

- Sweden (*lag (1930:173) om beräkning av lagstadgad tid*): Saturdays, Sundays,
  public holidays, and midsummer eve, Christmas eve and New Year's eve (the
  ``de_facto`` category of the ``holidays`` package);
- Finland (*laki säädettyjen määräaikain laskemisesta 150/1930*): Saturdays,
  Sundays and public holidays, midsummer eve and Christmas eve included (the
  package lists both as public holidays of Finland).

Any other country the ``holidays`` package knows counts its public holidays.
Scripts reach :func:`add_working_days` through the sandbox.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import holidays

#: The most working days one call may add (about four years): bounds the work a script can ask for.
MAX_WORKING_DAYS = 1000

# Categories of the holidays package that are not worked, beyond the public holidays.
_EXTRA_CATEGORIES: dict[str, tuple[str, ...]] = {"SE": ("de_facto",)}


class WorkingDaysError(ValueError):
    """A working-day computation was asked with a bad start, count or jurisdiction."""


@functools.lru_cache(maxsize=256)
def _closed_days(jurisdiction: str, year: int) -> frozenset[dt.date]:
    categories = ("public", *_EXTRA_CATEGORIES.get(jurisdiction, ()))
    calendar = holidays.country_holidays(jurisdiction, years=year, categories=categories)
    return frozenset(calendar)


def _jurisdiction(value: Any) -> str:
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in holidays.list_supported_countries():
        raise WorkingDaysError(f"no public-holiday calendar for jurisdiction {value!r} (e.g. 'SE', 'FI')")
    return code


def _start_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise WorkingDaysError(f"the start must be a date or an ISO date text, got {value!r}")


def is_working_day(day: Any, jurisdiction: str) -> bool:
    """Tell whether *day* (a date, datetime or ISO date text) is worked in *jurisdiction*.

    :raises WorkingDaysError: *day* is no date, or the jurisdiction has no calendar.
    """
    date = _start_date(day)
    return date.weekday() < 5 and date not in _closed_days(_jurisdiction(jurisdiction), date.year)


def add_working_days(start: Any, days: int, jurisdiction: str) -> dt.date:
    """Return the date *days* working days after *start* in *jurisdiction* (``'SE'``, ``'FI'``...).

    *start* (a date, datetime or ISO date text: the day something was
    received) is day 0 and is not counted, whether or not it is worked; 0 days
    gives *start* itself.

    :raises WorkingDaysError: *start* is no date, *days* is not a whole number
        from 0 to :data:`MAX_WORKING_DAYS`, or the jurisdiction has no calendar.
    """
    day = _start_date(start)
    code = _jurisdiction(jurisdiction)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_WORKING_DAYS:
        raise WorkingDaysError(f"the number of working days must be a whole number 0-{MAX_WORKING_DAYS}")
    remaining = days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in _closed_days(code, day.year):
            remaining -= 1
    return day
