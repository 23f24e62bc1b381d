"""Single sign-on in real Chromium: "Sign in with Region Norr ID", pick the account there, land in the inbox.

The provider is the one of tests/web/oidc_provider.py on its own port; this time
it asks which of its users signs in, as a real provider's sign-in page would.
Screenshots of the sign-in page in each language go to ``PROCFLOW_SHOTS``
(default /tmp/shots/e).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from flask import Flask
from playwright.sync_api import expect

from tests.web.conftest import PASSWORD, complete
from tests.web.oidc_provider import OIDCTestProvider, ProviderUser, running_provider
from tests.web.test_browser import sign_out
from web import create_app
from web.db import database

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", "/tmp/shots/e"))
MAPPING: dict[str, Any] = {
    "name": {"en": "Region Norr ID", "sv": "Region Norr ID", "fi": "Region Norr ID"},
    "organisation": {"claim": "org", "map": {"Region Norr": "north"}},
    "roles": {"claim": "roles", "map": {"procflow-buyers": "case_handler"}},
    "groups": {"claim": "groups", "map": {"buyers": "handlers"}},
}


@pytest.fixture
def provider() -> Iterator[OIDCTestProvider]:
    users = [
        ProviderUser(
            "u-anna",
            {
                "preferred_username": "anna.lind",
                "name": "Anna Lind",
                "org": "Region Norr",
                "roles": ["procflow-buyers"],
                "groups": ["buyers"],
            },
        ),
        ProviderUser("u-vera", {"preferred_username": "vera", "name": "Vera Väst", "org": "Region Väst"}),
    ]
    with running_provider(users) as running:
        yield running


@pytest.fixture
def app(db_url: str, provider: OIDCTestProvider) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret",
            "OIDC_PROVIDERS": json.dumps([provider.setting(**MAPPING)]),
        }
    )
    yield app
    database(app).dispose()


def test_sign_in_with_the_provider_lands_in_the_inbox_with_the_groups_tasks(
    page: Any, provider: OIDCTestProvider, session_factory: so.sessionmaker[so.Session], start: Any
) -> None:
    # A purchase request whose review waits for the handlers group, which the provider's "buyers" maps to.
    request = {"subject": "Office chairs", "category": "goods", "estimated_value": 4500}
    complete(session_factory, start(), "north-req", needed_by="2027-03-31", **request)

    page.goto("/login")
    page.get_by_role("button", name="Sign in with Region Norr ID").click()
    expect(page.get_by_role("heading", name="Region Norr ID")).to_be_visible()
    page.get_by_label("Anna Lind").check()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()
    expect(page.locator("tr", has_text="Compare quotes")).to_be_visible()
    assert provider.authorization_requests[-1]["code_challenge_method"] == "S256"

    # Signing out and in again with a password still works for local accounts.
    sign_out(page)
    page.get_by_label("Username").fill("north-handler")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()


def test_an_account_the_mapping_does_not_know_gets_a_clear_page(page: Any) -> None:
    page.goto("/login")
    page.get_by_role("button", name="Sign in with Region Norr ID").click()
    page.get_by_label("Vera Väst").check()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Single sign-on did not work")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("does not belong to an organisation that uses Procflow")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "sso-error-en.png"), full_page=True)
    page.get_by_role("button", name="Back to sign-in").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()


@pytest.mark.parametrize(
    ("language", "button"), [("en", "Sign in with"), ("sv", "Logga in med"), ("fi", "Kirjaudu")]
)
def test_the_sign_in_page_offers_the_provider_in_each_language(
    browser: Any, live_server: str, language: str, button: str
) -> None:
    for width, suffix in ((1280, ""), (390, "-narrow")):
        context = browser.new_context(
            base_url=live_server, locale=language, viewport={"width": width, "height": 900}
        )
        try:
            page = context.new_page()
            page.goto("/login")
            expect(page.locator("#sso-norr")).to_contain_text(button)
            expect(page.locator("#sso-norr")).to_contain_text("Region Norr ID")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"login-{language}{suffix}.png"), full_page=True)
        finally:
            context.close()
