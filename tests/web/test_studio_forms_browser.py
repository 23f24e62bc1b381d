"""In Chromium: a process owner adds a field with English, Swedish and Finnish labels to a form of
direct_procurement, sees it in the live preview in Swedish, saves, and finds it there again."""

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

URL = "/studio/direct_procurement/forms/forms/approve.schema.json"
SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", "/tmp/shots/c"))


@pytest.fixture
def own_procurement(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    """North's own version of the shipped direct procurement."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement", organisation="north")


def _shot(page: Any, name: str, at: Any = None) -> None:
    """Save what the user sees (the preview is sticky: a full-page shot shows it where it scrolled to)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if at is not None:
        at.scroll_into_view_if_needed()
    else:
        page.evaluate("window.scrollTo(0, 0)")
    # caret="initial": no style injected by Playwright, which htmx would then copy while settling a swap.
    page.screenshot(path=str(SHOTS / f"{name}.png"), caret="initial")


def test_a_process_owner_adds_a_field_in_three_languages_and_sees_it_in_the_preview(
    page: Any, own_procurement: None
) -> None:
    sign_in(page, "north-owner")
    page.goto(URL)
    expect(page.get_by_role("heading", name="Form editor", level=1)).to_be_visible()
    preview = page.locator("#form-preview")
    expect(preview).to_contain_text("Approve the purchase")
    cards = page.locator("#editor-form > article.form-field")
    before = cards.count()

    page.get_by_role("button", name="Add field", exact=True).click()
    expect(cards).to_have_count(before + 1)
    added = cards.last
    added.get_by_label("Key").fill("delivery_address")
    added.get_by_label("Label (English)").fill("Delivery address")
    added.get_by_label("Label (Svenska)").fill("Leveransadress")
    added.get_by_label("Label (Suomi)").fill("Toimitusosoite")
    added.get_by_label("Help text (Svenska)").fill("Gata och ort")
    added.get_by_label("Type").select_option("textarea")
    expect(cards.last.get_by_label("Type")).to_have_value("textarea")

    page.locator("#preview-language").get_by_label("Svenska").check()
    expect(preview.get_by_label("Leveransadress")).to_be_visible()
    expect(preview).to_contain_text("Gata och ort")
    expect(preview).to_contain_text("Godkänn inköpet")
    _shot(page, "editor-preview-sv", added)

    page.locator("#preview-language").get_by_label("Suomi").check()
    expect(preview.get_by_label("Toimitusosoite")).to_be_visible()
    _shot(page, "editor-preview-fi", added)

    page.locator(".form-studio-actions").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Form saved in the draft.")).to_be_visible()
    page.reload()
    saved = page.locator("#editor-form > article.form-field").last
    expect(saved.get_by_label("Key")).to_have_value("delivery_address")
    expect(saved.get_by_label("Label (Suomi)")).to_have_value("Toimitusosoite")
    expect(saved.get_by_label("Type")).to_have_value("textarea")
    page.locator("#preview-language").get_by_label("English").check()
    expect(preview.get_by_label("Delivery address")).to_be_visible()
    _shot(page, "editor-preview-en")
    _shot(page, "editor-saved-field-en", saved)

    for language, heading in (("Svenska", "Formulärredigerare"), ("Suomi", "Lomake-editori")):
        page.get_by_role("button", name=language).click()
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        expect(preview.locator("h3")).to_be_visible()
        _shot(page, f"editor-ui-{language.lower()}")


def test_choices_and_rows_are_edited_in_place(page: Any, own_procurement: None) -> None:
    sign_in(page, "north-owner")
    page.goto("/studio/direct_procurement/forms/forms/register_quotes.schema.json")
    quotes = page.locator("article.form-field", has=page.get_by_role("heading", name="Quotes received"))
    expect(quotes.locator("section.nested-fields > article.form-field")).to_have_count(5)
    quotes.get_by_role("button", name="Add field to quotes").click()
    quotes = page.locator("article.form-field", has=page.get_by_role("heading", name="Quotes received"))
    columns = quotes.locator("section.nested-fields > article.form-field")
    expect(columns).to_have_count(6)
    columns.last.get_by_label("Type").select_option("select")
    expect(page.get_by_role("button", name="Add choice to field_6")).to_be_visible()
    columns = page.locator(
        "article.form-field", has=page.get_by_role("heading", name="Quotes received")
    ).locator("section.nested-fields > article.form-field")
    columns.last.get_by_role("button", name="Add choice to field_6").click()
    column = (
        page.locator("article.form-field", has=page.get_by_role("heading", name="Quotes received"))
        .locator("section.nested-fields > article.form-field")
        .last
    )
    expect(column.get_by_label("Value of choice 1")).to_be_visible()  # the button's swap is done
    column.get_by_label("Label (Svenska)").fill("Leveranssätt")
    column.get_by_label("Value of choice 1").fill("truck")
    column.get_by_label("Label of choice 1 (Svenska)").fill("Lastbil")
    page.locator("#preview-language").get_by_label("Svenska").check()
    preview = page.locator("#form-preview")
    expect(preview).to_contain_text("Leveranssätt")
    _shot(page, "rows-choices-sv", column)
