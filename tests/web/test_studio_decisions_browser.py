"""In Chromium: the decision table page, its "try it" panel, and a cell changed in the dmn-js editor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from tests.conftest import PROCESSES
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

PAGE = "/studio/direct_procurement/decisions/ApproverLevel.dmn"
SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", "/tmp/shots/d"))


@pytest.fixture
def direct(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    """direct_procurement shared, and north's own draft of it."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
        north = engine.get_organisation(s, "north")
        engine.studio.open_draft(s, north.id, "direct_procurement", user="north-owner", customise=True)


def open_page(page: Any) -> None:
    sign_in(page, "north-owner")
    page.goto(PAGE)
    expect(page.locator("#dmn-editor[data-loaded=true]")).to_be_attached()


def try_it(page: Any, jurisdiction: str, value: str) -> Any:
    panel = page.locator("#try-ApproverLevel")
    panel.locator("#try-ApproverLevel-ApproverLevel_in0").fill(jurisdiction)
    panel.locator("#try-ApproverLevel-ApproverLevel_in1").fill(value)
    panel.locator("button[type=submit]").click()
    return page.locator("#try-ApproverLevel")


def test_trying_a_table_shows_the_matching_rows_and_outputs(page: Any, direct: None) -> None:
    open_page(page)
    expect(page.get_by_role("heading", name="Checks at deploy")).to_be_visible()
    expect(page.locator("#decision-findings")).to_contain_text("no rule matches when Jurisdiction is none of")
    panel = try_it(page, "SE", "4")
    expect(panel.locator("tr.decision-row-used")).to_have_attribute("data-rule", "ApproverLevel_r1")
    expect(panel.locator("tr.decision-row-matched")).to_have_count(3)
    expect(panel.locator(".decision-outputs")).to_contain_text("area_head")
    expect(panel.locator("#try-ApproverLevel-ApproverLevel_in1")).to_have_value("4")
    panel = try_it(page, "SE", "four")
    expect(panel.locator("#try-ApproverLevel-ApproverLevel_in1-error")).to_have_text(
        "Enter a number, such as 1 234,50."
    )
    expect(panel.locator("#try-ApproverLevel-ApproverLevel_in1")).to_have_attribute("aria-invalid", "true")
    try_it(page, "SE", "4")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for language in ("English", "Svenska", "Suomi"):
        if language != "English":
            page.get_by_role("button", name=language).click()
            expect(page.locator("#dmn-editor[data-loaded=true]")).to_be_attached()
            try_it(page, "SE", "4")
        expect(page.locator("#try-ApproverLevel tr.decision-row-used")).to_be_visible()
        page.screenshot(path=str(SHOTS / f"decision-{language.lower()}.png"), full_page=True)
    expect(page.get_by_role("heading", name="Tarkistukset käyttöönotossa")).to_be_visible()


def test_a_cell_changed_and_saved_in_the_editor_changes_the_try_result(page: Any, direct: None) -> None:
    open_page(page)
    panel = try_it(page, "SE", "4")
    expect(panel.locator(".decision-outputs dd").first).to_have_text("area_head")
    cell = page.locator('#dmn-editor td[data-element-id="ApproverLevel_r1_o0"]')
    cell.locator("[contenteditable]:visible").click()
    page.keyboard.press("Control+A")
    page.keyboard.type("'deputy_head'")
    expect(cell).to_contain_text("'deputy_head'")
    page.locator("#dmn-editor [data-dmn-save]").click()
    expect(page.locator("#dmn-editor [data-dmn-status]")).to_have_attribute("data-kind", "ok")
    # Saving tries the table again, on the saved draft.
    expect(page.locator("#try-ApproverLevel .decision-outputs dd").first).to_have_text("deputy_head")


def test_an_overlap_made_in_the_editor_is_shown_at_once(page: Any, direct: None) -> None:
    open_page(page)
    page.locator("#dmn-editor .hit-policy .dms-input-select").click()
    page.locator("#dmn-editor .dms-select-options .option", has_text="Unique").click()
    page.locator("#dmn-editor [data-dmn-save]").click()
    expect(page.locator("#dmn-editor [data-dmn-status]")).to_have_attribute("data-kind", "ok")
    findings = page.locator("#decision-findings")
    expect(findings.locator(".decision-problem-error")).to_contain_text(
        "rules 'ApproverLevel_r0' (row 1) and 'ApproverLevel_r1' (row 2) overlap"
    )
