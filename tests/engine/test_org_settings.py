"""Organisation settings: checked against babel and zoneinfo, audited, seen by scripts as parameters."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine.notifications import _organisation_locale


def _org(session: so.Session, key: str = "north") -> engine.Organisation:
    return engine.get_organisation(session, key)


def test_settings_parameters_only_the_set_ones(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        org = _org(s)
        assert engine.settings_parameters(org) == {"organisation_name": "North"}
        engine.update_settings(
            s,
            org,
            {
                "country": "fi",
                "currency": "eur",
                "time_zone": "Europe/Helsinki",
                "organisation_number": "0245437-2",
            },
            actor="north-admin",
        )
    with session_factory() as s:
        assert engine.settings_parameters(_org(s)) == {
            "organisation_name": "North",
            "organisation_number": "0245437-2",
            "jurisdiction": "FI",
            "currency": "EUR",
            "time_zone": "Europe/Helsinki",
        }


def test_update_is_audited_with_before_and_after(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        changes = engine.update_settings(
            s,
            _org(s),
            {"name": "North Municipality", "country": "SE", "default_language": "sv"},
            actor="north-admin",
        )
        assert changes == {
            "name": ("North", "North Municipality"),
            "country": (None, "SE"),
            "default_language": (None, "sv"),
        }
    with session_factory.begin() as s:
        # Unchanged values and a blank currency that was not set: nothing to record.
        assert (
            engine.update_settings(s, _org(s), {"country": "se", "currency": ""}, actor="north-admin") == {}
        )
        engine.update_settings(s, _org(s), {"country": ""}, actor="north-admin")
    with session_factory() as s:
        events = s.scalars(
            sa.select(engine.AuditEvent)
            .where(engine.AuditEvent.kind == "admin.settings_changed")
            .order_by(engine.AuditEvent.id)
        ).all()
        assert [(e.organisation_id, e.actor, e.element, e.detail) for e in events] == [
            (
                _org(s).id,
                "north-admin",
                "organisation north",
                {
                    "before": {"name": "North", "country": None, "default_language": None},
                    "after": {"name": "North Municipality", "country": "SE", "default_language": "sv"},
                },
            ),
            (
                _org(s).id,
                "north-admin",
                "organisation north",
                {"before": {"country": "SE"}, "after": {"country": None}},
            ),
        ]
        assert _org(s).country is None and _org(s).name == "North Municipality"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("country", "XX"),
        ("country", "EU"),
        ("country", "SWE"),
        ("currency", "ABC"),
        ("currency", "kr"),
        ("time_zone", "Europe/Stokholm"),
        ("time_zone", "../etc/passwd"),
        ("default_language", "de"),
        ("name", "   "),
        ("name", "x" * 201),
        ("organisation_number", "1" * 41),
        ("colour", "blue"),
    ],
)
def test_bad_values_are_refused_by_field_and_nothing_changes(
    session_factory: so.sessionmaker[so.Session], orgs: None, setting: str, value: str
) -> None:
    with session_factory.begin() as s:
        with pytest.raises(engine.FormValidationError) as refused:
            engine.update_settings(s, _org(s), {"currency": "SEK", setting: value}, actor="north-admin")
        assert list(refused.value.errors) == [setting]
        assert _org(s).currency is None
    with session_factory() as s:
        assert _org(s).currency is None
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.AuditEvent)) == 0


def test_valid_codes_from_babel_and_zoneinfo() -> None:
    assert engine.validate_settings(
        {
            "country": " ax ",
            "currency": "sek",
            "time_zone": "America/Argentina/Buenos_Aires",
            "default_language": "FI",
        }
    ) == {
        "country": "AX",
        "currency": "SEK",
        "time_zone": "America/Argentina/Buenos_Aires",
        "default_language": "fi",
    }


def test_time_zone_and_language_take_effect(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    with session_factory() as s:
        north = _org(s).id
        assert _organisation_locale(s, north) == ("en", "UTC")
    with session_factory.begin() as s:
        engine.update_settings(s, _org(s), {"country": "FI"}, actor="north-admin")
    with session_factory() as s:
        # The country is the jurisdiction: Finnish e-mails, Helsinki time.
        assert _organisation_locale(s, north) == ("fi", "Europe/Helsinki")
    with session_factory.begin() as s:
        engine.update_settings(
            s, _org(s), {"time_zone": "Europe/Stockholm", "default_language": "sv"}, actor="north-admin"
        )
    with session_factory() as s:
        assert _organisation_locale(s, north) == ("sv", "Europe/Stockholm")
        assert engine.organisation_time_zone(s, north) == "Europe/Stockholm"
