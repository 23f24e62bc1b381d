"""Chromium: a user makes an API token on the settings page and calls the API with it; the admin's page;
Swagger UI at /api/v1/docs from our own files. Pages photographed in en, sv and fi
(``PROCFLOW_SHOTS``, else ``test-artifacts/api-tokens``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from playwright.sync_api import expect

from engine import api_tokens
from tests.web.conftest import ARTIFACTS
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", ARTIFACTS / "api-tokens"))
LANGUAGES = {"en": "English", "sv": "Svenska", "fi": "Suomi"}
HEADINGS = {"en": "API tokens", "sv": "API-nycklar", "fi": "API-avaimet"}


def _language(page: Any, code: str) -> None:
    page.get_by_role("button", name=LANGUAGES[code]).click()
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_a_token_made_on_the_page_calls_the_api(
    page: Any, live_server: str, session_factory: so.sessionmaker[so.Session]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with session_factory.begin() as s:
        api_tokens.create_service_account(s, organisation="north", name="Web form", actor="north-admin")
    sign_in(page, "north-admin")
    page.goto("/settings/tokens")
    page.get_by_label("Name", exact=True).fill("CRM integration")
    page.get_by_label("Read and write: also start cases and complete tasks").check()
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert token.startswith("pf_")
    answer = page.request.get(f"{live_server}/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 200 and answer.json()["items"] == []
    page.screenshot(path=str(SHOTS / "settings-tokens-new-en.png"), full_page=True)
    for code in ("en", "sv", "fi"):
        page.goto("/settings/tokens")
        _language(page, code)
        page.goto("/settings/tokens")
        expect(page.get_by_role("heading", name=HEADINGS[code], level=1)).to_be_visible()
        page.screenshot(path=str(SHOTS / f"settings-tokens-{code}.png"), full_page=True)
        page.goto("/admin/tokens")
        expect(page.get_by_role("heading", name=HEADINGS[code], level=1)).to_be_visible()
        page.locator(".service-account details summary").click()
        page.screenshot(path=str(SHOTS / f"admin-tokens-{code}.png"), full_page=True)
    page.goto("/admin/tokens")
    _language(page, "en")
    page.goto("/admin/tokens")
    page.get_by_role("button", name="Revoke").first.click()
    expect(page.get_by_text("The token was revoked: it no longer works.")).to_be_visible()
    answer = page.request.get(f"{live_server}/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 401 and answer.headers["content-type"] == "application/problem+json"


def test_swagger_ui_shows_the_document(page: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Procflow")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/contact-intake")).to_be_visible()
    page.screenshot(path=str(SHOTS / "swagger-ui.png"), full_page=False)
