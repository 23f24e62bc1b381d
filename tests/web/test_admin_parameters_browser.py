"""Done-when (Chromium, as admin): a lower three-quotes threshold from tomorrow applies from tomorrow only.

The admin records the value in the browser. A direct procurement started
today is decided on today's threshold; one started with the clock moved to
tomorrow (time_machine; the live server runs in this process) on the new one.
The decisions are read back from the database.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine
from playwright.sync_api import expect

import engine
from tests.processes.driver import EngineDriver
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

SHOTS = Path("/tmp/shots/b")
LANGUAGES = {"en": "English", "sv": "Svenska", "fi": "Suomi"}
PURCHASE = {
    "subject": "Office chairs",
    "description": "Adjustable chairs for 4 workplaces.",
    "cpv_code": "39112000-0",
    "category": "goods",
    "contract_months": 0,
    "option_months": 0,
    "utility_activity": False,
    "same_kind_spend_outside": 0,
    "framework_agreement_exists": False,
    "requester": "se-requester",
    "participants": ["se-requester"],
    "requester_email": "se-requester@demo.example",
    "value_excl_vat": 8000,
}


def _quotes_required(driver: EngineDriver) -> int:
    run = driver.start("direct_procurement", org="exempelby", user="se-requester")
    run.complete("describe_need", user="se-requester", data=PURCHASE)
    quotes: int = run.data["quotes_required"]
    return quotes


def _screenshot(page: Any, language: str) -> None:
    """Save the list and the threshold's page in *language* (chosen with the header's switch)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_role("button", name=LANGUAGES[language], exact=True).click()
    for path, suffix in [
        ("/admin/parameters", "list"),
        ("/admin/parameters/three_quotes_threshold", "detail"),
    ]:
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", language)
        page.screenshot(
            path=str(SHOTS / f"parameters-{suffix}-{language}.png"), full_page=True, timeout=60_000
        )


def test_a_lower_threshold_from_tomorrow_applies_to_cases_started_tomorrow(
    page: Any,
    session_factory: so.sessionmaker[so.Session],
    password_hash: str,
) -> None:
    driver = EngineDriver(session_factory)
    with session_factory.begin() as s:
        engine.get_user(s, "se-admin").password_hash = password_hash
        assert (
            engine.parameters.parameter_entry(
                s, engine.get_organisation(s, "exempelby").id, "three_quotes_threshold"
            ).value
            == 10000
        )
    today = dt.date.today()
    tomorrow = today + dt.timedelta(days=1)

    sign_in(page, "se-admin")
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Parameters").click()
    expect(page.get_by_role("heading", name="Parameters", level=1)).to_be_visible()
    row = page.locator("#parameter-three_quotes_threshold")
    expect(row).to_contain_text("10,000.00")
    row.get_by_role("link", name="Three-quotes threshold").click()
    page.get_by_role("textbox", name="Value", exact=True).fill("5000")
    page.get_by_label("Valid from", exact=True).fill(tomorrow.isoformat())
    page.locator("#note").fill("Lower threshold from tomorrow")
    page.get_by_role("button", name="Record the value").click()
    expect(page.get_by_role("status")).to_have_text("The value was recorded.")
    history = page.locator(".parameter-history")
    expect(history).to_contain_text("5,000.00")
    expect(history).to_contain_text("Lower threshold from tomorrow")
    expect(page.locator(".parameter-facts")).to_contain_text("10,000.00")  # still in force today

    for language in ("sv", "fi", "en"):
        _screenshot(page, language)

    assert _quotes_required(driver) == 1, "a case started today keeps today's threshold"
    with time_machine.travel(dt.datetime.combine(tomorrow, dt.time(10, 0)).astimezone(), tick=True):
        assert _quotes_required(driver) == 3, "a case started tomorrow has the lower threshold"
        # A day later the sign-in has expired (sessions last 8 hours).
        sign_in(page, "se-admin")
        page.goto("/admin/parameters")
        expect(page.locator("#parameter-three_quotes_threshold")).to_contain_text("5,000.00")
        expect(page.locator("#parameter-three_quotes_threshold")).to_contain_text("Own value")
