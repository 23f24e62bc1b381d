"""The time zone an organisation lives in: for showing times and for end-of-day deadlines.

An organisation's own ``time_zone`` parameter (an IANA name such as
``Europe/Helsinki``) wins; without one its ``jurisdiction`` parameter decides;
with neither, times are UTC.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import sqlalchemy.orm as so

from ._workflow import current_parameters

# The zone of each jurisdiction the shipped processes know (ISO 3166 codes).
JURISDICTION_TIME_ZONES = {"SE": "Europe/Stockholm", "FI": "Europe/Helsinki"}

DEFAULT_TIME_ZONE = "UTC"


def time_zone_for(parameters: dict[str, object]) -> str:
    """Return the IANA time zone named by a set of organisation *parameters*.

    A ``time_zone`` that is not a known IANA name is ignored (the jurisdiction's
    zone, else UTC, is used), so a typo never stops a page from showing.
    """
    named = parameters.get("time_zone")
    if isinstance(named, str) and named:
        try:
            zoneinfo.ZoneInfo(named)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return named
    jurisdiction = parameters.get("jurisdiction")
    if isinstance(jurisdiction, str):
        return JURISDICTION_TIME_ZONES.get(jurisdiction.upper(), DEFAULT_TIME_ZONE)
    return DEFAULT_TIME_ZONE


def organisation_time_zone(session: so.Session, organisation_id: int, on: dt.date | None = None) -> str:
    """Return the IANA time zone of organisation *organisation_id* on *on* (today).

    From its ``time_zone`` parameter, else from its ``jurisdiction`` (SE →
    Europe/Stockholm, FI → Europe/Helsinki), else ``UTC``. Reads the
    parameters in the caller's transaction.
    """
    return time_zone_for(current_parameters(session, organisation_id, on))
