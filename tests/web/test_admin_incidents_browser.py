"""In Chromium, as an admin: a job that failed is fixed, retried from /admin/incidents, and the case moves on.

Also saves screenshots of the incidents, repair and processes pages in English, Swedish
and Finnish under ``/tmp/shots/c/`` (``PROCFLOW_SHOTS`` overrides the folder).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine
from playwright.sync_api import expect

import engine
from tests.engine.test_admin_incidents import DIVIDE, WAIT_THEN_CHECK, fail_timer_until_incident
from tests.web.conftest import APPROVAL, PASSWORD
from tests.web.test_browser import sign_in

pytestmark = pytest.mark.slow

Factory = so.sessionmaker[so.Session]
LANGUAGES = {"en": "English", "sv": "Svenska", "fi": "Suomi"}
SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", "/tmp/shots/c"))


def _deploy(session_factory: Factory) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("delivery.bpmn", "bpmn", WAIT_THEN_CHECK)], name="delivery")
        engine.deploy_files(s, [engine.BundleFile("divide.bpmn", "bpmn", DIVIDE)], name="divide")


def _start(session_factory: Factory, process_id: str, **data: Any) -> int:
    with session_factory.begin() as s:
        return engine.start_instance(s, process_id, organisation="north", user="north-req", data=data).id


def test_retry_an_incident_and_the_case_moves_on(
    page: Any, live_server: str, session_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(session_factory)
    iid = _start(session_factory, "delivery")
    # The archive server is down: the timer's job fails until it is an incident; then it is fixed.
    fail_timer_until_incident(session_factory, monkeypatch, iid)

    sign_in(page, "north-admin")
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Incidents").click()
    expect(page.get_by_role("heading", name="Incidents", level=1)).to_be_visible()
    row = page.locator(f"#incident-instance-{iid}")
    expect(row).to_contain_text("Delivery")
    expect(row).to_contain_text("OSError: the archive server did not answer")
    expect(row).to_contain_text(str(engine.jobs.MAX_ATTEMPTS))
    row.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("1 incident was retried.")
    expect(page.get_by_text("No incidents. Everything runs.")).to_be_visible()

    # An hour later the worker fires the timer, whose job is armed again.
    # (No request of the browser may run in the travelled time: its session would look idle too long.)
    page.wait_for_load_state("networkidle")
    with time_machine.travel(engine.models.utcnow() + dt.timedelta(hours=2), tick=True):
        assert engine.run_due_jobs(session_factory).ran == 1
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=iid)] == ["check"]
    page.goto(f"/instances/{iid}")
    expect(page.get_by_text("Check the delivery").first).to_be_visible()


def _shoot(browser: Any, live_server: str, language: str, pages: dict[str, str]) -> None:
    context = browser.new_context(
        base_url=live_server, locale=language, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto("/login")
    page.get_by_role("button", name=LANGUAGES[language[:2]]).click()
    page.locator("#username").fill("north-admin")
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page.locator("nav.admin-nav, main h1").first).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, url in pages.items():
        page.goto(url)
        page.locator("details.incident-trace").evaluate_all("(all) => all.forEach((d) => { d.open = true; })")
        page.screenshot(path=str(SHOTS / f"{name}-{language[:2]}.png"), full_page=True)
    narrow = context.new_page()
    narrow.set_viewport_size({"width": 390, "height": 800})
    narrow.goto(pages["incidents"])
    narrow.screenshot(path=str(SHOTS / f"incidents-narrow-{language[:2]}.png"), full_page=True)
    context.close()


def test_screenshots_of_the_pages(
    browser: Any, live_server: str, session_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(session_factory)
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL, organisation="north")
    waiting = _start(session_factory, "delivery")
    fail_timer_until_incident(session_factory, monkeypatch, waiting)
    divided = _start(session_factory, "divide", parts=0)
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north").id
        engine.set_use_shared(s, north, "approval", use_shared=True, user="north-admin")
    for language in ("en-GB", "sv-SE", "fi-FI"):
        _shoot(
            browser,
            live_server,
            language,
            {
                "incidents": "/admin/incidents",
                "repair": f"/admin/incidents/instances/{divided}",
                "processes": "/admin/processes",
            },
        )
    assert all(
        (SHOTS / f"{n}-{lang}.png").exists() for n in ("incidents", "repair") for lang in ("en", "sv", "fi")
    )
