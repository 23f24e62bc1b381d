"""/admin/settings: an admin edits the organisation's settings; bad values come back beside their field."""

from __future__ import annotations

import re

import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine._workflow import current_parameters
from tests.web.conftest import LoginAs

Factory = so.sessionmaker[so.Session]

FORM = {
    "name": "North Municipality",
    "organisation_number": "212000-0142",
    "country": "SE",
    "currency": "SEK",
    "time_zone": "Europe/Stockholm",
    "default_language": "sv",
}


def _north(session_factory: Factory) -> engine.OrganisationSettings:
    with session_factory() as s:
        return engine.get_settings(engine.get_organisation(s, "north"))


def test_admin_saves_the_settings_and_they_are_audited(login_as: LoginAs, session_factory: Factory) -> None:
    client = login_as("admin")
    page = client.get("/admin/settings")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'value="North"' in html and "jurisdiction" in html
    response = client.post("/admin/settings", data=FORM)
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/settings?done=1")
    assert _north(session_factory).as_dict() == FORM
    shown = client.get("/admin/settings?done=1").get_data(as_text=True)
    assert 'option value="SE" selected' in shown and 'value="Europe/Stockholm"' in shown
    with session_factory() as s:
        (event,) = s.scalars(
            sa.select(engine.AuditEvent).where(engine.AuditEvent.kind == "admin.settings_changed")
        )
        assert event.actor == "north-admin" and event.detail["after"]["time_zone"] == "Europe/Stockholm"
        assert event.detail["before"]["name"] == "North"
    # Scripts see the settings as parameters; and the pages use the time zone.
    with session_factory() as s:
        north = engine.get_organisation(s, "north").id
        parameters = current_parameters(s, north)
        assert parameters["jurisdiction"] == "SE" and parameters["organisation_name"] == "North Municipality"
        assert engine.organisation_time_zone(s, north) == "Europe/Stockholm"


def test_bad_values_are_shown_beside_their_fields_and_nothing_is_stored(
    login_as: LoginAs, session_factory: Factory
) -> None:
    client = login_as("admin")
    response = client.post(
        "/admin/settings",
        data={**FORM, "name": " ", "country": "XX", "currency": "KRONA", "time_zone": "Europe/Stokholm"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    for field in ("name", "country", "currency", "time_zone"):
        assert re.search(rf'id="{field}-error" class="field-error">[^<]+<', html), field
    assert "Europe/Stokholm" in html and "“XX” is not a country code" in html
    assert 'id="organisation_number-error"' not in html
    assert _north(session_factory).as_dict()["name"] == "North"
    assert _north(session_factory).country is None
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.AuditEvent)) == 0


def test_the_page_in_swedish_and_finnish(login_as: LoginAs) -> None:
    client = login_as("admin")
    client.post("/language", data={"lang": "sv"})
    html = client.get("/admin/settings").get_data(as_text=True)
    assert "Organisationens inställningar" in html and "Finland (FI)" in html and "Sverige (SE)" in html
    client.post("/language", data={"lang": "fi"})
    html = client.get("/admin/settings").get_data(as_text=True)
    assert "Organisaation asetukset" in html and "Ruotsi (SE)" in html


def test_clearing_a_setting_stores_null(login_as: LoginAs, session_factory: Factory) -> None:
    client = login_as("admin")
    client.post("/admin/settings", data=FORM)
    client.post("/admin/settings", data={**FORM, "currency": "", "default_language": ""})
    settings = _north(session_factory)
    assert settings.currency is None and settings.default_language is None and settings.country == "SE"


def test_the_default_language_is_used_by_users_who_chose_none(
    login_as: LoginAs, session_factory: Factory
) -> None:
    with session_factory.begin() as s:
        engine.update_settings(
            s, engine.get_organisation(s, "north"), {"default_language": "fi"}, actor="north-admin"
        )
        engine.get_user(s, "north-boss").language = "sv"
    client = login_as("requester")
    html = client.get("/", headers={"Accept-Language": "en"}, follow_redirects=True).get_data(as_text=True)
    assert '<html lang="fi">' in html
    client = login_as("approver")
    html = client.get("/", headers={"Accept-Language": "en"}, follow_redirects=True).get_data(as_text=True)
    assert '<html lang="sv">' in html
    # South has no default language: the browser's decides.
    client = login_as("requester", "south")
    html = client.get("/", headers={"Accept-Language": "en"}, follow_redirects=True).get_data(as_text=True)
    assert '<html lang="en">' in html
