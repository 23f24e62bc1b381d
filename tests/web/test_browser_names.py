"""In Chromium: the inbox shows process, task and group names in Swedish and Finnish, and its counts
refresh without a reload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from tests.web.conftest import PURCHASE
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

NAMES = {
    "web_purchase": {"sv": "Litet inköp", "fi": "Pieni hankinta"},
    "request": {"sv": "Beskriv inköpet", "fi": "Kuvaile hankinta"},
}


@pytest.fixture
def translated(session_factory: so.sessionmaker[so.Session], tmp_path: Path, deployed: None) -> None:
    """The purchase process with its names.json, and the requesters' group names."""
    bundle = tmp_path / "purchase"
    shutil.copytree(PURCHASE, bundle)
    (bundle / "names.json").write_text(json.dumps(NAMES), encoding="utf-8")
    with session_factory.begin() as s:
        engine.deploy_path(s, bundle)
        engine.seed.set_group(
            s,
            engine.get_organisation(s, "north").id,
            "requesters",
            name="Requesters",
            names={"sv": "Beställare", "fi": "Tilaajat"},
        )


def test_the_inbox_names_processes_tasks_and_groups_in_swedish_and_finnish(
    page: Any, start: Any, translated: None
) -> None:
    start()
    sign_in(page, "north-req")
    row = page.locator("#inbox-results tbody tr").first
    expect(row).to_contain_text("Describe the purchase")
    for language, heading, task, process, group in (
        ("Suomi", "Saapuneet", "Kuvaile hankinta", "Pieni hankinta", "Tilaajat"),
        ("Svenska", "Inkorg", "Beskriv inköpet", "Litet inköp", "Beställare"),
    ):
        page.get_by_role("button", name=language).click()
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        expect(row.get_by_role("link", name=task)).to_be_visible()
        expect(row).to_contain_text(process)
        expect(row).to_contain_text(group)
        expect(page.locator("select[name=process]")).to_contain_text(process)
        row.get_by_role("link", name=task).click()
        expect(page.get_by_role("heading", name=task, level=1)).to_be_visible()
        page.go_back()


def _poll_until(page: Any, selector: str, text: str) -> None:
    """Let the page's clock run 31 s at a time (each a poll) until *selector* shows *text*."""
    for _ in range(4):
        page.clock.fast_forward("00:31")
        try:
            expect(page.locator(selector)).to_have_text(text, timeout=2_000)
            return
        except AssertionError:
            continue
    expect(page.locator(selector)).to_have_text(text, timeout=1)


def test_the_inbox_counts_refresh_without_a_reload(page: Any, start: Any) -> None:
    page.clock.install()
    start()
    sign_in(page, "north-req")
    expect(page.locator("#inbox-count")).to_have_text("1")
    expect(page.locator("#inbox-count-group")).to_have_text("1")
    page.clock.fast_forward("00:10")
    start()  # a new task arrives while the page is open: not shown before the next poll
    expect(page.locator("#inbox-count")).to_have_text("1")
    _poll_until(page, "#inbox-count", "2")
    expect(page.locator("#inbox-count-group")).to_have_text("2")
    expect(page.locator("#inbox-count-mine")).to_have_text("0")
    start()  # and it keeps polling
    _poll_until(page, "#inbox-count", "3")
    expect(page.locator("#inbox-count-group")).to_have_text("3")
