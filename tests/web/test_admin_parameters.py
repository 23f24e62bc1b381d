"""The admin console's parameters page: catalogue, history, add a value, back to shared, errors, 404s."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine._workflow import current_parameters
from tests.conftest import PROCESSES
from tests.web.conftest import LoginAs


def _setup(session_factory: so.sessionmaker[so.Session]) -> int:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
        north = engine.get_organisation(s, "north").id
        engine.set_parameter(
            s, "three_quotes_threshold", 10000, organisation_id=None, valid_from=dt.date(2020, 1, 1)
        )
        engine.set_parameter(s, "south_secret", 1, organisation_id=engine.get_organisation(s, "south").id,
                             valid_from=dt.date(2020, 1, 1))  # fmt: skip
        return north


def test_the_list_shows_what_the_processes_read(
    session_factory: so.sessionmaker[so.Session], login_as: LoginAs
) -> None:
    _setup(session_factory)
    client = login_as("admin")
    page = client.get("/admin/parameters")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "three_quotes_threshold" in html and "Three-quotes threshold" in html
    assert "10,000.00" in html and "Shared value" in html
    assert "approval_ladder" in html and "No value" in html
    assert "/admin/settings" in html  # organisation_name comes from the settings
    assert "south_secret" not in html


def test_add_a_value_from_tomorrow_overrides_the_shared_one(
    session_factory: so.sessionmaker[so.Session], login_as: LoginAs
) -> None:
    north = _setup(session_factory)
    client = login_as("admin")
    # Read at the test's run, not at import: a suite that runs past midnight must not see "tomorrow" as today.
    today = dt.date.today()
    tomorrow = today + dt.timedelta(days=1)
    sent = client.post(
        "/admin/parameters/three_quotes_threshold",
        data={"value": "5 000", "valid_from": tomorrow.isoformat(), "valid_to": "", "note": "Board decision"},
    )
    assert sent.status_code == 303 and sent.headers["Location"].endswith("?done=added")
    page = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "The value was recorded." in page and "Board decision" in page and "north-admin" in page
    with session_factory() as s:
        assert current_parameters(s, north, today)["three_quotes_threshold"] == 10000
        assert current_parameters(s, north, tomorrow)["three_quotes_threshold"] == 5000
        event = s.scalars(
            sa.select(engine.AuditEvent).where(engine.AuditEvent.kind == "admin.parameter_set")
        ).one()
        assert event.actor == "north-admin" and event.organisation_id == north

    back = client.post(
        "/admin/parameters/three_quotes_threshold/shared",
        data={"shared_from": (tomorrow + dt.timedelta(days=1)).isoformat(), "shared_note": ""},
    )
    assert back.status_code == 303
    with session_factory() as s:
        assert (
            current_parameters(s, north, tomorrow + dt.timedelta(days=1))["three_quotes_threshold"] == 10000
        )
        rows = s.scalars(
            sa.select(engine.Parameter).where(engine.Parameter.key == "three_quotes_threshold")
        ).all()
        assert len(rows) == 3


def test_bad_input_is_shown_beside_the_field_and_nothing_stored(
    session_factory: so.sessionmaker[so.Session], login_as: LoginAs
) -> None:
    _setup(session_factory)
    client = login_as("admin")
    for data, message in [
        ({"value": "-1", "valid_from": "2030-01-01"}, "Enter an amount of 0 or more."),
        ({"value": "12.345", "valid_from": "2030-01-01"}, "Enter an amount with at most 2 decimals."),
        ({"value": "lots", "valid_from": "2030-01-01"}, "Enter a number."),
        ({"value": "1", "valid_from": ""}, "Enter a date."),
        ({"value": "1", "valid_from": "1.1.2030"}, "Enter a date as YYYY-MM-DD."),
        (
            {"value": "1", "valid_from": "2030-01-01", "valid_to": "2029-01-01"},
            "The end date must be on or after",
        ),
    ]:
        refused = client.post("/admin/parameters/three_quotes_threshold", data=data)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422, data
        assert message in html and 'class="field-error"' in html and 'aria-invalid="true"' in html, data
        assert f'value="{data["value"]}"' in html, "what was typed is kept"
    list_refused = client.post(
        "/admin/parameters/approval_ladder", data={"value": '{"a": 1}', "valid_from": "2030-01-01"}
    )
    assert list_refused.status_code == 422 and "Enter a JSON list" in list_refused.get_data(as_text=True)
    no_own = client.post(
        "/admin/parameters/three_quotes_threshold/shared", data={"shared_from": "2030-01-01"}
    )
    assert no_own.status_code == 422 and "uses the shared value already" in no_own.get_data(as_text=True)
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.Parameter)) == 2


def test_settings_keys_are_read_only(session_factory: so.sessionmaker[so.Session], login_as: LoginAs) -> None:
    _setup(session_factory)
    client = login_as("admin")
    page = client.get("/admin/parameters/organisation_name").get_data(as_text=True)
    assert "Open the organisation settings" in page and 'name="value"' not in page
    refused = client.post(
        "/admin/parameters/organisation_name", data={"value": "X", "valid_from": "2030-01-01"}
    )
    assert refused.status_code == 422


def test_other_organisations_keys_and_non_admins_get_404(
    session_factory: so.sessionmaker[so.Session], login_as: LoginAs
) -> None:
    _setup(session_factory)
    client = login_as("admin")
    assert client.get("/admin/parameters/south_secret").status_code == 404
    assert (
        client.post(
            "/admin/parameters/south_secret", data={"value": "2", "valid_from": "2030-01-01"}
        ).status_code
        == 404
    )
    assert (
        client.post("/admin/parameters/no_such_key/shared", data={"shared_from": "2030-01-01"}).status_code
        == 404
    )
    handler = login_as("case_handler")
    assert handler.get("/admin/parameters").status_code == 404
    assert handler.get("/admin/parameters/three_quotes_threshold").status_code == 404
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.Parameter)) == 2


def test_the_page_in_swedish(session_factory: so.sessionmaker[so.Session], login_as: LoginAs) -> None:
    _setup(session_factory)
    client = login_as("admin")
    with client.session_transaction() as browser_session:
        browser_session["lang"] = "sv"
    html = client.get("/admin/parameters").get_data(as_text=True)
    assert "Gräns för tre skriftliga anbud" in html and "Delat värde" in html
