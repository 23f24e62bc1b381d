"""An organisation's settings: its name, number, country, currency, time zone and default language.

An admin edits them on ``/admin/settings``. They live on the organisation's
row (NULL: not set) and scripts and decision tables see the set ones as
parameters of the same meaning (:func:`settings_parameters`, merged over the
dated parameters by ``current_parameters``):

============================  ============================
setting                       parameter
============================  ============================
``name``                      ``organisation_name``
``organisation_number``       ``organisation_number``
``country``                   ``jurisdiction``
``currency``                  ``currency``
``time_zone``                 ``time_zone``
============================  ============================

The default language is not a parameter: it is the language of the pages and
e-mails of the organisation's users who chose none.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from typing import Any

import babel
import babel.numbers
import sqlalchemy.orm as so

from .admin_audit import record_admin_action
from .errors import FormValidationError
from .models import Organisation
from .notifications import LANGUAGES

# Each setting that scripts see, and the parameter key they see it under.
SETTING_PARAMETERS = {
    "name": "organisation_name",
    "organisation_number": "organisation_number",
    "country": "jurisdiction",
    "currency": "currency",
    "time_zone": "time_zone",
}

# The settings an admin edits, in the order of the page.
SETTINGS = ("name", "organisation_number", "country", "currency", "time_zone", "default_language")

MAX_NAME = 200
MAX_ORGANISATION_NUMBER = 40

# Babel's territories that are no ISO 3166-1 country: the EU, the euro area, the UN,
# "outlying Oceania", pseudo-locales, Kosovo's user-assigned code and "unknown region".
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "XK", "ZZ"})


def settings_parameters(org: Organisation) -> dict[str, Any]:
    """Return the organisation's set settings as parameters (``jurisdiction`` for its country...).

    Only the settings that are set (not NULL or empty) are included, so that the
    organisation's dated parameters of the same key apply otherwise.
    """
    found: dict[str, Any] = {}
    for setting, key in SETTING_PARAMETERS.items():
        value = getattr(org, setting)
        if value is not None and value != "":
            found[key] = value
    return found


@functools.cache
def country_codes() -> frozenset[str]:
    """Return the ISO 3166-1 alpha-2 codes babel names (``SE``, ``FI``...)."""
    territories = [str(code) for code in babel.Locale("en").territories]
    return frozenset(
        code for code in territories if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    )


@functools.cache
def currency_codes() -> frozenset[str]:
    """Return the ISO 4217 currency codes babel knows (``SEK``, ``EUR``...)."""
    return frozenset(code for code in babel.numbers.list_currencies() if len(code) == 3 and code.isalpha())


@functools.cache
def time_zone_names() -> frozenset[str]:
    """Return the IANA time zone names this installation knows (``Europe/Stockholm``...)."""
    return frozenset(zoneinfo.available_timezones())


def country_choices(language: str) -> list[tuple[str, str]]:
    """Return (code, name in *language*) of every country, sorted by name in that language."""
    names = babel.Locale.parse(language).territories
    return sorted(((code, names.get(code, code)) for code in country_codes()), key=lambda c: c[1].casefold())


def currency_choices(language: str) -> list[tuple[str, str]]:
    """Return (code, name in *language*) of every currency, sorted by code."""
    locale = babel.Locale.parse(language)
    return [(code, locale.currencies.get(code, code)) for code in sorted(currency_codes())]


@dataclass(frozen=True)
class OrganisationSettings:
    """An organisation's settings as the page shows them (``None``: not set)."""

    name: str
    organisation_number: str | None
    country: str | None
    currency: str | None
    time_zone: str | None
    default_language: str | None

    def as_dict(self) -> dict[str, str | None]:
        """Return the settings by name."""
        return {setting: getattr(self, setting) for setting in SETTINGS}


def get_settings(org: Organisation) -> OrganisationSettings:
    """Return the organisation's settings."""
    return OrganisationSettings(
        name=org.name,
        organisation_number=org.organisation_number,
        country=org.country,
        currency=org.currency,
        time_zone=org.time_zone,
        default_language=org.default_language,
    )


def _clean(values: dict[str, Any]) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    """Return the settings in *values* normalised, and the problems by setting."""
    cleaned: dict[str, str | None] = {}
    errors: dict[str, list[str]] = {}
    for setting, raw in values.items():
        if setting not in SETTINGS:
            errors.setdefault(setting, []).append(f"unknown setting {setting!r}")
            continue
        if raw is not None and not isinstance(raw, str):
            errors.setdefault(setting, []).append("must be text")
            continue
        text = (raw or "").strip()
        value: str | None = text or None
        problem: str | None = None
        if setting == "name":
            if value is None:
                problem = "the organisation's name is required"
            elif len(value) > MAX_NAME:
                problem = f"at most {MAX_NAME} characters"
        elif value is None:
            pass
        elif setting == "organisation_number":
            if len(value) > MAX_ORGANISATION_NUMBER:
                problem = f"at most {MAX_ORGANISATION_NUMBER} characters"
        elif setting == "country":
            value = value.upper()
            if value not in country_codes():
                problem = f"{text!r} is no ISO 3166 country code (two letters, e.g. SE, FI)"
        elif setting == "currency":
            value = value.upper()
            if value not in currency_codes():
                problem = f"{text!r} is no ISO 4217 currency code (three letters, e.g. SEK, EUR)"
        elif setting == "time_zone":
            if value not in time_zone_names():
                problem = f"{text!r} is no IANA time zone (e.g. Europe/Stockholm)"
        elif setting == "default_language":
            value = value.lower()
            if value not in LANGUAGES:
                problem = f"{text!r} is not one of {', '.join(LANGUAGES)}"
        if problem is not None:
            errors.setdefault(setting, []).append(problem)
        else:
            cleaned[setting] = value
    return cleaned, errors


def validate_settings(values: dict[str, Any]) -> dict[str, str | None]:
    """Return *values* (settings by name, text or ``None``) normalised.

    Blank text means "not set" (``None``), except for the name, which is
    required. Codes are upper-cased (country, currency) or lower-cased (language).

    :raises FormValidationError: with the problems by setting name, for an
        unknown setting, a country that is no ISO 3166 alpha-2 code, a currency
        that is no ISO 4217 code, a time zone that is no IANA name, a language
        other than sv, fi and en, a missing name or text too long.
    """
    cleaned, errors = _clean(values)
    if errors:
        raise FormValidationError(errors)
    return cleaned


def update_settings(
    session: so.Session, org: Organisation, values: dict[str, Any], *, actor: str | None
) -> dict[str, tuple[str | None, str | None]]:
    """Change the organisation's settings named in *values* and audit the change.

    Settings not named are left as they are. One audit event
    ``admin.settings_changed`` (target ``organisation <key>``) records the
    values before and after of the settings that changed; nothing changed,
    nothing is recorded. Runs in the caller's transaction.

    :returns: the changes, setting → (before, after).
    :raises FormValidationError: as :func:`validate_settings`; nothing is changed.
    """
    cleaned = validate_settings(values)
    changes: dict[str, tuple[str | None, str | None]] = {}
    for setting, value in cleaned.items():
        before = getattr(org, setting)
        if before != value:
            changes[setting] = (before, value)
            setattr(org, setting, value)
    if changes:
        session.flush()
        record_admin_action(
            session,
            organisation_id=org.id,
            actor=actor,
            action="settings_changed",
            target=f"organisation {org.key}",
            before={setting: before for setting, (before, _) in changes.items()},
            after={setting: after for setting, (_, after) in changes.items()},
        )
    return changes
