"""The case page in real Chromium: registering an awaited message, and a header that fits the screen.

Screenshots of failing tests are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from tests.conftest import FIXTURES
from tests.web.conftest import PASSWORD, complete

pytestmark = pytest.mark.slow

ASKED = {"ref": "R-7", "question": "Deliver on Monday?", "urgent": False, "channel": "email"}


def _sign_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()


def _waiting_case(session_factory: so.sessionmaker[so.Session]) -> int:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "case_page")
        north = engine.get_organisation(s, "north")
        engine.set_parameter(
            s, "jurisdiction", "SE", organisation_id=north.id, valid_from=dt.date(2000, 1, 1)
        )
        instance_id = engine.start_instance(s, "follow_up", organisation="north", user="north-req").id
    complete(session_factory, instance_id, "north-handler", **ASKED)
    return instance_id


def test_a_case_handler_registers_the_customers_reply_and_the_case_moves_on(
    page: Any, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    _sign_in(page, "north-handler")
    page.goto(f"/instances/{instance_id}")
    waits = page.locator(".case-waits")
    expect(waits.locator(".wait-timer")).to_contain_text("No reply in time · at Jan 15, 2030, 1:00:00 PM")
    expect(waits.locator(".wait-message")).to_contain_text("Customer's reply")
    page.get_by_text("Register the customer's reply").first.click()
    page.get_by_label("What the customer wrote").fill("OK")
    page.get_by_role("button", name="Register", exact=True).click()
    field = page.get_by_label("What the customer wrote")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("OK")
    field.fill("Monday suits us.")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("“Customer's reply” is registered on the case.")
    expect(waits.locator(".wait-task")).to_contain_text("Read the reply")
    expect(waits.locator(".wait-message")).to_have_count(0)
    expect(page.locator(".timeline")).to_contain_text("Message received")


# Whether an element's text runs onto a second line: a line box starts lower than the first ends.
_WRAPS = """el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
  const first = Math.min(...rects.map(r => r.bottom));
  return rects.some(r => r.top >= first - 2);
}"""


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return dict(box)


@pytest.mark.parametrize("language", ["English", "Svenska", "Suomi"])
def test_the_header_is_one_line_at_1280_px(page: Any, session_factory: Any, language: str) -> None:
    _sign_in(page, "north-handler")
    page.get_by_role("button", name=language).click()
    items = [
        ".site-nav .brand",
        "#site-menu > li:nth-child(1) > a",
        "#site-menu > li:nth-child(2) > a",
        "#site-menu details.dropdown > summary",
        "#site-menu .language-switch",
    ]
    boxes = [_box(page, selector) for selector in items]
    middles = [b["y"] + b["height"] / 2 for b in boxes]
    assert max(middles) - min(middles) < 8, f"the header items are not on one line: {middles}"
    for selector in items:
        assert page.locator(selector).first.evaluate(_WRAPS) is False, f"{selector} wraps onto two lines"
    for left, right in itertools.pairwise(boxes):
        assert left["x"] + left["width"] <= right["x"] + 1, "header items overlap"
    assert boxes[-1]["x"] + boxes[-1]["width"] <= 1280
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_the_header_collapses_into_a_menu_on_a_390_px_screen(page: Any, session_factory: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _sign_in(page, "north-handler")
    menu = page.locator("#site-menu")
    toggle = page.get_by_role("button", name="Menu")
    expect(menu).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page is wider than the screen"
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(menu).to_be_visible()
    for selector in (
        "#site-menu > li:nth-child(1) > a",
        "#site-menu details.dropdown > summary",
        "#site-menu .language-switch",
    ):
        box = _box(page, selector)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{selector} runs off the screen: {box}"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("button", name="Suomi").click()
    page.get_by_role("button", name="Valikko").click()
    expect(page.get_by_role("link", name="Saapuneet")).to_be_visible()
