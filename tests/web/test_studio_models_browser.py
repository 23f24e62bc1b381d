"""In Chromium: the studio's process models list and versions page in English, Swedish and Finnish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from tests.conftest import FIXTURES
from tests.web.conftest import APPROVAL
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

SHOTS = Path("/tmp/shots/a")
LANGUAGES = (
    ("en", None, "Process models", "Versions of"),
    ("sv", "Svenska", "Processmodeller", "Versioner av"),
    ("fi", "Suomi", "Prosessimallit", "versiot"),
)


@pytest.fixture
def models(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    """North runs an own approval (v1, two cases) over the shared one, and has a draft of it."""
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL, organisation="north", user="north-owner")
        engine.deploy_path(s, FIXTURES / "message_form", organisation="north", user="north-admin")
        for _ in range(2):
            engine.start_instance(s, "approval", organisation="north", user="north-req")
        north = engine.get_organisation(s, "north").id
        draft = engine.studio.open_draft(s, north, "approval", user="north-owner")
        engine.studio.save_draft_file(s, draft, "notes.json", "{}", user="north-owner")


def test_the_models_list_and_versions_page_in_three_languages(page: Any, models: None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, "north-owner")
    for code, button, heading, versions_heading in LANGUAGES:
        page.goto("/studio/")
        if button:
            page.get_by_role("button", name=button).click()
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        approval = page.locator("#model-approval")
        expect(approval.locator("tbody tr")).to_have_count(2)
        expect(approval.locator("tbody tr").first).to_contain_text("north-owner")
        expect(page.locator("#model-web_purchase form[action$='/customise'] button")).to_be_visible()
        expect(page.locator("input[type=file][webkitdirectory]")).to_have_count(1)
        page.screenshot(path=str(SHOTS / f"list-{code}.png"), full_page=True)
        page.locator("#model-approval").get_by_role("link", name="(2)").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(versions_heading)
        expect(page.locator("table.studio-versions tbody tr")).to_have_count(2)
        page.screenshot(path=str(SHOTS / f"versions-{code}.png"), full_page=True)


def test_a_test_case_is_marked_on_its_page(
    page: Any, models: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, "north-owner")
    page.goto("/studio/approval/try")
    page.get_by_role("button", name="Start a test case").click()
    # The first task is the tester's, whatever its lane.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Describe the purchase")
    with session_factory() as s:
        (instance,) = s.scalars(sa.select(engine.ProcessInstance).where(engine.ProcessInstance.is_test)).all()
    for code, button, badge in (
        ("en", None, "Test case"),
        ("sv", "Svenska", "Testärende"),
        ("fi", "Suomi", "Testitapaus"),
    ):
        page.goto(f"/instances/{instance.id}")
        if button:
            page.get_by_role("button", name=button).click()
        expect(page.locator(".status-test")).to_have_text(badge)
        page.screenshot(path=str(SHOTS / f"test-case-{code}.png"), full_page=True)
