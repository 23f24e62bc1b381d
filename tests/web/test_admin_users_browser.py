"""Chromium: an admin adds a user to a group, the user sets a password through the link and works.

Done-when of issue 12 (users): add a user, give them a group, set their password
through the link, sign in as them and see a task of that group in their inbox.
Deactivated, their claim returns to the group and they cannot sign in. The
pages are also photographed in English, Swedish and Finnish (``/tmp/shots/a``
when that folder can be made, else ``test-artifacts/``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from playwright.sync_api import expect

import engine
from engine import accounts
from tests.web.conftest import ARTIFACTS
from tests.web.test_browser import sign_in, sign_out

pytestmark = pytest.mark.slow

NEW_PASSWORD = "four unrelated words here"
REQUEST = {"subject": "Laptops", "amount": 1000, "requester_email": "req@example.org"}
SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", ARTIFACTS / "admin-users"))


def _waiting_for_approvers(session_factory: so.sessionmaker[so.Session]) -> int:
    """Start an approval case and complete its request: its approval task waits for the approvers."""
    with session_factory.begin() as s:
        instance_id = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        engine.complete_task(s, task.id, user="north-req", data=REQUEST)
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        assert task.candidate_group == "approvers"
        return task.id


def test_admin_adds_a_user_who_sets_a_password_and_sees_the_groups_task(
    page: Any, session_factory: so.sessionmaker[so.Session]
) -> None:
    task_id = _waiting_for_approvers(session_factory)
    # 1. The admin adds alice as a case handler in the approvers group.
    sign_in(page, "north-admin")
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    page.get_by_role("button", name="Add a user").click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Name", exact=True).fill("Alice Andersson")
    page.get_by_label("E-mail address").fill("alice@north.example")
    expect(page.get_by_label("Case handler")).to_be_checked()
    page.get_by_label("Approvers").check()
    page.get_by_role("button", name="Add the user").click()
    expect(page.get_by_role("heading", name="alice was added")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("e-mailed to alice@north.example")
    link = page.get_by_label("Link to set a password").input_value()
    assert "/password/" in link
    sign_out(page)

    # 2. Alice opens the link, chooses a password (too short first), and signs in.
    page.goto(link)
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("The new password again").fill("short")
    page.get_by_role("button", name="Set the password").click()
    expect(page.locator("#password-error")).to_have_text("Use at least 12 characters.")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("The new password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Approve the purchase")).to_be_visible()
    # The link worked once.
    page.goto(link)
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()

    # 3. Alice claims the task; the admin deactivates her; it goes back to the group.
    with session_factory.begin() as s:
        engine.claim_task(s, task_id, user="alice")
    page.goto("/")
    sign_out(page)
    sign_in(page, "north-admin")
    page.goto("/admin/users/alice")
    expect(page.locator("#claimed-tasks")).to_contain_text("Approve the purchase")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("The user was deactivated.")
    with session_factory() as s:
        task = engine.get_task(s, task_id)
        assert task.assignee_id is None and task.state == "ready"
        assert accounts.get_member(s, engine.get_organisation(s, "north").id, "alice").deactivated_at
    sign_out(page)
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")


def test_the_pages_in_three_languages(page: Any, session_factory: so.sessionmaker[so.Session]) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north").id
        accounts.save_group(
            s,
            north,
            "approvers",
            names={"sv": "Godkännare", "fi": "Hyväksyjät", "en": "Approvers"},
            actor=None,
        )
        membership = accounts.create_member(
            s,
            north,
            username="bertil",
            display_name="Bertil Berg",
            roles=["case_handler"],
            groups=["approvers"],
            actor="north-admin",
        )
        issued = engine.password_links.issue_password_link(
            s, membership, actor="north-admin", organisation_name="North"
        )
    _waiting_for_approvers(session_factory)
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, "north-admin")
    pages = {
        "users": "/admin/users",
        "user": "/admin/users/north-boss",
        "new-user": "/admin/users/new",
        "groups": "/admin/groups",
        "group": "/admin/groups/approvers",
    }
    headings = {"en": "Users", "sv": "Användare", "fi": "Käyttäjät"}
    for language in ("en", "sv", "fi"):
        page.goto("/settings")
        page.locator("#language").select_option(language)
        page.locator("#language").locator("xpath=ancestor::form").locator("button[type=submit]").click()
        page.goto("/admin/users")
        expect(page.get_by_role("heading", name=headings[language], level=1)).to_be_visible()
        if language != "en":
            expect(page.get_by_text("Approvers", exact=True)).to_have_count(0)
        for name, path in pages.items():
            page.goto(path)
            page.screenshot(path=str(SHOTS / f"{name}-{language}.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto("/admin/users")
        page.screenshot(path=str(SHOTS / f"users-narrow-{language}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
    for language in ("en", "sv", "fi"):
        page.context.clear_cookies()
        page.context.set_extra_http_headers({"Accept-Language": language})
        page.goto(f"/password/{issued.token}")
        page.screenshot(path=str(SHOTS / f"password-{language}.png"), full_page=True)
        page.goto("/password/not-a-token")
        page.screenshot(path=str(SHOTS / f"password-invalid-{language}.png"), full_page=True)
