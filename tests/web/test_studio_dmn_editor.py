"""In Chromium: the studio's dmn-js decision table editor (web/studio-src/dmn-editor.js) on its page.

It loads the draft's DMN file, is edited in the table, saves with Ctrl+S (the draft file changes), says
when the draft changed meanwhile, and is read-only where the organisation may not edit; all under the
page's Content-Security-Policy (the ``page`` fixture fails the test on any violation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from tests.conftest import FIXTURES, PROCESSES
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

Factory = so.sessionmaker[so.Session]
PAGE = "/studio/direct_procurement/decisions/ApproverLevel.dmn"
SHOTS = Path("/tmp/shots/c")
CELL = 'td[data-element-id="ApproverLevel_r0_o0"]'


@pytest.fixture
def direct(session_factory: Factory, deployed: None) -> None:
    """direct_procurement shared, and north's draft of it."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
        north = engine.get_organisation(s, "north")
        engine.studio.open_draft(s, north.id, "direct_procurement", user="north-owner", customise=True)


def _draft_file(session_factory: Factory) -> str:
    with session_factory() as s:
        north = engine.get_organisation(s, "north")
        draft = engine.studio.find_draft(s, north.id, "direct_procurement")
        assert draft is not None
        return engine.studio.read_draft_file(s, draft, "ApproverLevel.dmn").content


def _open(page: Any) -> Any:
    page.goto(PAGE)
    editor = page.locator("#dmn-editor")
    expect(editor).to_have_attribute("data-loaded", "true")
    return editor


def _retype(page: Any, editor: Any, text: str) -> None:
    """Replace the text of the first row's first output cell, as a user types it."""
    editor.locator(CELL).click()
    page.keyboard.press("Control+a")
    page.keyboard.type(text)


def test_a_cell_edited_in_the_table_is_saved_to_the_draft_with_ctrl_s(
    page: Any, session_factory: Factory, direct: None
) -> None:
    sign_in(page, "north-owner")
    editor = _open(page)
    expect(editor.locator(".tjs-table")).to_be_visible()
    expect(editor.locator(CELL)).to_contain_text("'unit_head'")
    page.evaluate(
        """() => document.getElementById("dmn-editor").addEventListener("procflow:dmn-saved",
             (event) => { window.savedDetail = event.detail; })"""
    )
    _retype(page, editor, "'unit_lead'")
    expect(editor.locator("[data-dmn-status]")).to_have_text("Unsaved changes")
    expect(editor.locator("[data-dmn-save]")).to_be_enabled()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dmn-en.png"), full_page=True)

    page.keyboard.press("Control+s")
    expect(editor.locator("[data-dmn-status]")).to_have_text("Saved")
    expect(editor.locator("[data-dmn-save]")).to_be_disabled()
    detail = page.evaluate("() => window.savedDetail")
    assert detail["response"]["saved"] == "ApproverLevel.dmn"
    assert "'unit_lead'" in detail["xml"]
    assert "'unit_lead'" in page.evaluate("() => window.procflowDmn.getXML()")
    saved = _draft_file(session_factory)
    assert "<text>'unit_lead'</text>" in saved
    assert 'id="ApproverLevel_r1"' in saved  # the rest of the table is still there

    # Saved again after another edit: the draft version the first save answered is the one sent.
    _retype(page, editor, "'unit_leads'")
    editor.locator("[data-dmn-save]").click()
    expect(editor.locator("[data-dmn-status]")).to_have_text("Saved")
    assert "<text>'unit_leads'</text>" in _draft_file(session_factory)


def test_a_draft_changed_meanwhile_is_not_overwritten_and_the_page_is_told(
    page: Any, session_factory: Factory, direct: None
) -> None:
    sign_in(page, "north-owner")
    editor = _open(page)
    page.evaluate(
        """() => document.getElementById("dmn-editor").addEventListener("procflow:dmn-error",
             (event) => { window.errorDetail = event.detail; })"""
    )
    with session_factory.begin() as s:  # someone else saves the file after the page loaded it
        north = engine.get_organisation(s, "north")
        draft = engine.studio.find_draft(s, north.id, "direct_procurement")
        assert draft is not None
        content = engine.studio.read_draft_file(s, draft, "ApproverLevel.dmn").content
        engine.studio.save_draft_file(
            s, draft, "ApproverLevel.dmn", content.replace("'unit_head'", "'elsewhere'"), user="south-owner"
        )
    _retype(page, editor, "'mine'")
    page.keyboard.press("Control+s")
    expect(editor.locator("[data-dmn-status]")).to_contain_text("Could not save")
    detail = page.evaluate("() => window.errorDetail")
    assert detail["status"] == 409
    assert "'elsewhere'" in _draft_file(session_factory)
    assert "'mine'" not in _draft_file(session_factory)


@pytest.mark.parametrize(
    ("language", "button", "label"),
    [("Svenska", "Spara", "Osparade ändringar"), ("Suomi", "Tallenna", "Tallentamattomia muutoksia")],
)
def test_the_editors_own_texts_follow_the_language(
    page: Any, direct: None, language: str, button: str, label: str
) -> None:
    sign_in(page, "north-owner")
    page.get_by_role("button", name=language).click()
    editor = _open(page)
    expect(editor.locator("[data-dmn-save]")).to_have_text(button)
    _retype(page, editor, "'x'")
    expect(editor.locator("[data-dmn-status]")).to_have_text(label)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"dmn-{language[:2].lower()}.png"), full_page=True)


def test_a_shared_process_without_a_draft_is_shown_read_only(
    page: Any, session_factory: Factory, deployed: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
    sign_in(page, "north-owner")
    editor = _open(page)
    expect(editor.locator(CELL)).to_contain_text("'unit_head'")
    expect(editor.locator("[data-dmn-save]")).to_have_count(0)
    expect(editor.locator(".tjs-table [contenteditable='true']")).to_have_count(0)


def test_a_file_with_several_decisions_lists_them_and_the_drd(
    page: Any, session_factory: Factory, direct: None
) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north")
        draft = engine.studio.find_draft(s, north.id, "direct_procurement")
        assert draft is not None
        content = (FIXTURES / "studio_dmn" / "TwoDecisions.dmn").read_text(encoding="utf-8")
        engine.studio.save_draft_file(s, draft, "TwoDecisions.dmn", content, user="north-owner")
    sign_in(page, "north-owner")
    page.goto("/studio/direct_procurement/decisions/TwoDecisions.dmn")
    editor = page.locator("#dmn-editor")
    expect(editor).to_have_attribute("data-loaded", "true")
    views = editor.locator("[data-dmn-views] button")
    expect(views).to_have_text(["Decision requirements diagram", "Size", "Route"])
    expect(editor.locator('[data-dmn-views] button[data-view="Size"]')).to_have_attribute(
        "aria-current", "true"
    )
    expect(editor.locator('td[data-element-id="Size_r0_o"]')).to_contain_text("'small'")
    editor.locator('[data-dmn-views] button[data-view="Route"]').click()
    expect(editor.locator('td[data-element-id="Route_r0_o"]')).to_contain_text("'direct'")
    editor.locator('[data-dmn-views] button[data-view="Definitions_two"]').click()
    expect(editor.locator('.djs-element[data-element-id="Size"]')).to_be_visible()
    expect(editor.locator('.djs-element[data-element-id="Route"]')).to_be_visible()
    page.screenshot(path=str(SHOTS / "dmn-drd-en.png"), full_page=True)
