"""Chromium: an auditor lands on the case list, finds a case by its supplier, pages and opens it.

Done-when piece of issue 13: an auditor finds a case by its supplier's name.
The list is also photographed in English, Swedish and Finnish
(``PROCFLOW_SHOTS``, else ``test-artifacts/cases``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine
from flask import Flask
from playwright.sync_api import expect

import engine
from tests.conftest import FIXTURES
from tests.web.conftest import ARTIFACTS, PASSWORD

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", ARTIFACTS / "cases"))
Factory = so.sessionmaker[so.Session]
SUPPLIERS = ["Sitwell Oy", "Deskland AB", "Lampunen Oy", "Paperi Ab", "Kalusto Oy"]


@pytest.fixture
def cases(session_factory: Factory, deployed: None) -> list[int]:
    """Five purchases of north, entered with a subject and a supplier; the second one approved."""
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "cases")
    found = []
    for number, supplier in enumerate(SUPPLIERS):
        moment = dt.datetime(2026, 3, 1 + number, 9, tzinfo=dt.UTC)
        with time_machine.travel(moment, tick=False), session_factory.begin() as s:
            instance = engine.start_instance(
                s,
                "case_purchase",
                organisation="north",
                user="north-req",
                title=f"Purchase {number + 1}: {supplier.split()[0].lower()} goods",
                business_key=f"DNR-2026-{number + 1:03d}",
            )
            found.append(instance.id)
        with session_factory() as s:
            (task,) = engine.list_tasks(s, instance_id=found[-1])
        with session_factory.begin() as s:
            engine.complete_task(
                s, task.id, user="north-req", data={"subject": "Furniture", "winner": {"supplier": supplier}}
            )
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=found[1])
    with session_factory.begin() as s:
        engine.complete_task(s, task.id, user="north-boss", data={})
    return found


def _sign_in(page: Any, username: str, heading: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()


def test_an_auditor_finds_a_case_by_its_supplier_and_opens_it(
    app: Flask, page: Any, cases: list[int]
) -> None:
    app.config["CASE_PAGE_SIZE"] = 3
    _sign_in(page, "north-auditor", "Cases")
    assert page.url.endswith("/cases"), "an auditor lands on the case list, not an empty inbox"
    expect(page.get_by_role("link", name="All cases")).to_have_attribute("aria-current", "page")
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("tbody tr").first).to_contain_text("Purchase 5")
    page.get_by_role("link", name="Next").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody tr").last).to_contain_text("Purchase 1")

    page.get_by_label("Search").fill("deskland")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    row = page.locator(f"#case-{cases[1]}")
    expect(row).to_contain_text("Purchase 2: deskland goods")
    expect(row).to_contain_text("Completed")
    row.get_by_role("link", name="Purchase 2: deskland goods").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Purchase 2")
    assert page.url.endswith(f"/instances/{cases[1]}")


def test_a_bad_period_is_explained_beside_the_field(page: Any, cases: list[int]) -> None:
    _sign_in(page, "north-auditor", "Cases")
    page.get_by_label("Started from").fill("2026-03-04")
    page.get_by_label("Started until").fill("2026-03-02")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#case-to-error")).to_have_text("The period ends before it starts.")
    page.get_by_label("Started until").fill("2026-03-05")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)


def test_the_case_list_in_three_languages(app: Flask, page: Any, cases: list[int]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    app.config["CASE_PAGE_SIZE"] = 3
    _sign_in(page, "north-auditor", "Cases")
    headings = {"en": "Cases", "sv": "Ärenden", "fi": "Asiat"}
    # A page shows which rows it holds, not a count of all matching cases (engine/cases.py).
    more = {
        "en": "Cases 1\N{EN DASH}3 of more than 3",
        "sv": "Ärenden 1\N{EN DASH}3 av fler än 3",
        "fi": "Asiat 1\N{EN DASH}3, yhteensä yli 3",
    }
    rest = {"en": "Cases 4\N{EN DASH}5", "sv": "Ärenden 4\N{EN DASH}5", "fi": "Asiat 4\N{EN DASH}5"}
    for language in ("en", "sv", "fi"):
        page.goto("/cases")
        page.locator(f"form.language-switch button[value={language}]").click()
        # Each page loads in full before the next navigation (a script cut off mid-download
        # leaves the test server with an unclosed file).
        page.wait_for_load_state()
        expect(page.get_by_role("heading", name=headings[language], level=1)).to_be_visible()
        expect(page.locator(".case-count")).to_have_text(more[language])
        page.screenshot(path=str(SHOTS / f"cases-all-{language}.png"), full_page=True)
        page.locator("a[rel=next]").click()
        page.wait_for_load_state()
        expect(page.locator(".case-count")).to_have_text(rest[language])
        page.screenshot(path=str(SHOTS / f"cases-all-page2-{language}.png"), full_page=True)
        page.goto("/cases?q=oy&status=open")
        page.screenshot(path=str(SHOTS / f"cases-search-{language}.png"), full_page=True)
        page.goto("/cases?from=2026-03-04&to=2026-03-01")
        page.screenshot(path=str(SHOTS / f"cases-bad-period-{language}.png"), full_page=True)
    page.locator("form.language-switch button[value=en]").click()
    page.wait_for_load_state()
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto("/cases")
    page.screenshot(path=str(SHOTS / "cases-narrow-en.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator("nav details.dropdown summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    app.config["CASE_PAGE_SIZE"] = 50
    _sign_in(page, "north-req", "Inbox")
    page.get_by_role("link", name="Cases", exact=True).click()
    expect(page.get_by_role("heading", name="Cases", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="All cases")).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(page.locator(".case-count")).to_have_text("5 cases")
    page.screenshot(path=str(SHOTS / "cases-mine-en.png"), full_page=True)
