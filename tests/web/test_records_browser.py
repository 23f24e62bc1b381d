"""In real Chromium: an auditor opens a direct procurement's documentation record and downloads its PDF.

The downloaded PDF's text is read with pypdf. Screenshots of failing tests are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.engine.test_documentation_record import CHOSEN_BECAUSE
from tests.web.conftest import PASSWORD
from tests.web.test_records import cases  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow


def _sign_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def test_an_auditor_opens_the_record_from_the_case_and_downloads_it_as_pdf(
    page: Any,
    cases: dict[str, int],  # noqa: F811
) -> None:
    _sign_in(page, "se-auditor")
    page.goto(f"/instances/{cases['chairs']}")
    page.get_by_role("link", name="Documentation record", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/cases/{cases['chairs']}/record$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ergonomic office chairs")
    fields = page.locator(".minimum-field h3")
    expect(fields).to_have_count(7)
    expect(fields.nth(4)).to_have_text("5. Supplier chosen and main reason")
    expect(page.locator("#field-winner")).to_contain_text("Stolfabriken AB")
    expect(page.locator("#deviation-not_best_scored")).to_contain_text(CHOSEN_BECAUSE)
    expect(page.locator("table.spend tfoot")).to_contain_text("186,900 SEK")

    # Printed, the record stands alone: no menus, no buttons.
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator(".record-actions")).to_be_hidden()
    expect(page.locator(".record")).to_be_visible()
    page.emulate_media(media="screen")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"documentation-record-{cases['chairs']}.pdf"
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(content))
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in reader.pages))
    assert "Stolfabriken AB" in text and "Supplier chosen and main reason" in text
