"""End-to-end tests in real Chromium: sign in, a purchase from request to approval, diagram, language.

Screenshots of failing tests are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.slow


def sign_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()


def sign_out(page: Any) -> None:
    page.locator("nav details.dropdown summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_sign_in_with_a_wrong_password_then_the_right_one(page: Any) -> None:
    page.goto("/")
    page.get_by_label("Username").fill("north-req")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()
    expect(page.get_by_text("No tasks here. Well done!")).to_be_visible()


def test_purchase_from_request_to_approval_by_three_users(page: Any) -> None:
    # 1. The requester starts a purchase and makes a mistake in the form.
    sign_in(page, "north-req")
    page.get_by_role("link", name="Start a case").click()
    purchase = page.locator("#process-web_purchase")
    purchase.get_by_label("Title (optional)").fill("Chairs for room 4")
    purchase.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", name="Describe the purchase", level=1)).to_be_visible()
    page.get_by_label("Subject").fill("Ch")
    page.get_by_label("Estimated value excl. VAT").fill("4 500,00")
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("#f-subject-error")).to_have_text("Must be at least 3 characters long.")
    expect(page.locator("#f-needed_by-error")).to_have_text("This field is required.")
    expect(page.locator("#f-category-error")).to_have_text("This field is required.")
    expect(page.get_by_label("Estimated value excl. VAT")).to_have_value("4500.00")

    # ... and corrects it.
    page.get_by_label("Subject").fill("Office chairs")
    page.get_by_label("Goods").check()
    page.get_by_label("Needed by").fill("2027-03-31")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_text("Task “Describe the purchase” completed.")).to_be_visible()
    expect(page.locator("#diagram[data-rendered=true]")).to_be_attached()
    expect(page.locator('.djs-element.marker-active[data-element-id="review"]')).to_be_attached()
    expect(page.locator('.djs-element.marker-completed[data-element-id="request"]')).to_be_attached()
    sign_out(page)

    # 2. A case handler claims the review from the inbox and compares two quotes.
    sign_in(page, "north-handler")
    row = page.locator("tr", has_text="Compare quotes")
    row.get_by_role("button", name="Claim").click()
    expect(row.get_by_text("You")).to_be_visible()
    expect(page.locator("#inbox-count")).to_have_text("1")
    row.get_by_role("link", name="Compare quotes").click()
    expect(page.locator("#f-subject")).to_have_text("Office chairs")
    page.get_by_label("Supplier (row 1)").fill("Acme Oy")
    page.get_by_label("Price excl. VAT (row 1)").fill("4 200")
    page.get_by_role("button", name="Add row").click()
    page.get_by_label("Supplier (row 2)").fill("Bolt AB")
    page.get_by_label("Price excl. VAT (row 2)").fill("4 350,50")
    page.get_by_label("Chosen supplier").fill("Acme Oy")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_text("Task “Compare quotes” completed.")).to_be_visible()
    expect(page.locator('.djs-element.marker-active[data-element-id="approve"]')).to_be_attached()
    sign_out(page)

    # 3. The approver approves; the case is completed.
    sign_in(page, "north-boss")
    page.get_by_role("link", name="Approve the purchase").click()
    expect(page.locator("#f-chosen_supplier")).to_have_text("Acme Oy")
    page.get_by_label("Yes").check()
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("hgroup .status")).to_have_text("Completed")
    expect(page.get_by_text("Chairs for room 4")).to_be_visible()
    history = page.locator(".timeline")
    expect(history.locator(".event-task_completed")).to_have_count(3)
    expect(history).to_contain_text("north-handler")


def test_instance_page_marks_the_active_task_on_the_diagram(page: Any, start: Any) -> None:
    instance_id = start()
    sign_in(page, "north-req")
    page.goto(f"/instances/{instance_id}")
    active = page.locator('.djs-element.marker-active[data-element-id="request"]')
    expect(active).to_be_visible()
    stroke = active.locator(".djs-visual > :first-child").evaluate("e => getComputedStyle(e).stroke")
    assert stroke == "rgb(29, 111, 216)"
    # Only the start event has run so far.
    expect(page.locator(".djs-element.marker-completed")).to_have_count(1)
    expect(page.locator('.djs-element.marker-completed[data-element-id="start"]')).to_be_attached()


def test_language_switch_to_swedish(page: Any, start: Any) -> None:
    start()
    sign_in(page, "north-req")
    page.get_by_role("button", name="Svenska").click()
    expect(page.get_by_role("heading", name="Inkorg", level=1)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    page.get_by_role("link", name="Describe the purchase").click()
    expect(page.get_by_text("Ämne")).to_be_visible()
    expect(page.get_by_role("button", name="Slutför uppgiften")).to_be_visible()
    page.get_by_role("button", name="Slutför uppgiften").click()
    expect(page.locator("#f-needed_by-error")).to_have_text("Fältet är obligatoriskt.")
    assert re.search(r"/tasks/\d+$", page.url)


def test_main_pages_run_under_the_content_security_policy_without_violations(page: Any, start: Any) -> None:
    instance_id = start()
    sign_in(page, "north-req")
    row = page.locator("tr", has_text="Describe the purchase")
    row.get_by_role("button", name="Claim").click()  # htmx swaps the row in place
    expect(row.get_by_text("You")).to_be_visible()
    row.get_by_role("link", name="Describe the purchase").click()
    expect(page.get_by_role("button", name="Complete task")).to_be_visible()
    page.goto(f"/instances/{instance_id}")
    expect(page.locator("#diagram[data-rendered=true]")).to_be_attached()
    page.goto("/processes/")
    page.goto("/instances/9999")
    page.evaluate("() => new Promise((done) => setTimeout(done, 200))")
    assert page.csp_violations == []
    # The policy is really in force: an inline script injected now is refused and reported.
    page.evaluate("""() => {
      const script = document.createElement("script");
      script.textContent = "window.ranInline = true";
      document.body.append(script);
    }""")
    expect(page.locator("body")).to_be_attached()
    page.evaluate("() => new Promise((done) => setTimeout(done, 200))")
    assert page.evaluate("() => window.ranInline === undefined")
    assert any("script-src" in v for v in page.csp_violations)
    page.csp_violations.clear()
