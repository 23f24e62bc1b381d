"""Done-when (Chromium): each report opens with its chart drawn, and its CSV downloads.

The data are real cases driven through the engine (see ``report_data`` in
test_reports_pages.py), plus a mini-competition scored for impact and a goal review
reported for its second quarter, so that every chart has something to draw.
The screenshots (en, sv, fi) go to /tmp/shots/c/.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
from playwright.sync_api import expect

from tests.processes.driver import Clock, EngineDriver, Run
from tests.processes.test_goal_review import _decide, _national, _plan, _quarter_end, _report, _until
from tests.processes.test_mini_competition import _define, _invite
from tests.web.conftest import PASSWORD
from tests.web.test_reports_pages import report_data  # noqa: F401 (the fixture these tests use)

pytestmark = pytest.mark.slow

SHOTS = Path("/tmp/shots/c")
LANGUAGES = {"en": "English", "sv": "Svenska", "fi": "Suomi"}
# The reports, their page headings in English, and the organisation whose auditor reads them.
REPORTS = [
    ("/reports/contacts", "Customer contacts", "cpb-auditor"),
    ("/reports/register", "Direct-procurement register", "se-auditor"),
    ("/reports/impact", "Impact index", "se-auditor"),
    ("/reports/goals", "Goal fulfilment", "se-auditor"),
]
DRAWN_PIXELS = """() => {
  const canvas = document.getElementById("report-chart");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) drawn += 1; }
  return drawn;
}"""


@pytest.fixture
def impact_and_goals(session_factory: so.sessionmaker[so.Session], request: pytest.FixtureRequest) -> None:
    """A mini-competition of exempelby scored for stage 1 and 2, and its 2025 goal review reported for Q2."""
    request.getfixturevalue("report_data")
    driver = EngineDriver(session_factory)
    with Clock(dt.datetime(2025, 3, 3, 8, tzinfo=dt.UTC)) as clock:
        competition = driver.start("mini_competition", org="exempelby", user="se-requester")
        _define(competition, "se-requester")
        _invite(competition, "se-requester", ["se-buyer"])
        review = driver.start("goal_review", org="exempelby", user="se-buyer", data={"plan_year": 2025})
        own = {
            "goal_id": "OWN-1",
            "source": "own",
            "theme": 2,
            "title": "Every buyer trained in the new procurement guidelines",
            "level": "organisation",
            "indicator": "Share of buyers trained (%)",
            "baseline": "0 %",
            "target": "100 %",
            "owner": "se-buyer",
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
        }
        _plan(review, "se-buyer", [_national("T8.1", "se-quality"), own], [])
        _decide(review, "se-director", "approve", "Good plan.")
        review.complete(
            "assign_goals",
            user="se-buyer",
            data={
                "assignments": [
                    {
                        "goal_id": "T8.1",
                        "procurement_id": "DP-2025-017",
                        "lifecycle_phase": "tendering",
                        "task": "Require eco-labelled products in the quote request",
                        "due_date": "2025-06-30",
                    }
                ]
            },
        )
        _until(driver, clock, _quarter_end(1))
        _until(driver, clock, _quarter_end(2))
        _report(review, "se-quality", "green", 50, "12 %")
        _report(review, "se-buyer", "red", 5, "5 %", comment="Trainer on leave.")
        _correct(review)
        _until(driver, clock, _quarter_end(3))
        _report(review, "se-quality", "green", 75, "20 %")
        _report(review, "se-buyer", "amber", 45, "45 %", comment="Course booked.")
        _correct(review)


def _correct(review: Run) -> None:
    """Record the corrective action management decides on for a goal off track, if one is asked for."""
    if review.open_tasks() == ["corrective_action"]:
        action = {
            "goal_id": "OWN-1",
            "action": "Buy the course",
            "responsible": "se-buyer",
            "due_date": "2025-09-30",
        }
        review.complete("corrective_action", user="se-director", data={"corrective_actions": [action]})
    assert review.open_tasks() == [], "the quarter is closed"


def _sign_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def _sign_out(page: Any) -> None:
    page.locator("nav details.dropdown summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def _chart_drawn(page: Any) -> None:
    canvas = page.locator("#report-chart")
    expect(canvas).to_have_attribute("data-drawn", "true")
    assert page.evaluate(DRAWN_PIXELS) > 1000, "the chart's canvas stays blank"


def _download_csv(page: Any) -> list[list[str]]:
    with page.expect_download() as info:
        page.get_by_role("button", name="Download as CSV").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_each_report_draws_its_chart_and_downloads_its_csv(page: Any, impact_and_goals: None) -> None:
    signed_in = None
    for path, heading, username in REPORTS:
        if username != signed_in:
            if signed_in:
                _sign_out(page)
            _sign_in(page, username)
            signed_in = username
        page.goto("/reports/")
        page.get_by_role("link", name=heading, exact=True).first.click()
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        assert page.url.endswith(path)
        _chart_drawn(page)
        rows = _download_csv(page)
        assert len(rows) > 1, f"{path}: the CSV has only its header"
        if path == "/reports/contacts":
            assert rows[0][0] == "Month" and ["2025-05", "2", "0", "0", "0", "1", "3"] in rows
        if path == "/reports/register":
            assert "Ergonomic office chairs" in rows[1]
        if path == "/reports/impact":
            assert (
                rows[0][:3] == ["Case number", "Case", "Agreement"]
                and "Städtjänster ramavtal 2024" in rows[1]
            )
        if path == "/reports/goals":
            assert {row[rows[0].index("Goal ID")] for row in rows[1:]} == {"T8.1", "OWN-1"}
    assert page.csp_violations == []


@pytest.mark.usefixtures("report_data")
def test_the_period_filter_in_the_browser(page: Any) -> None:
    _sign_in(page, "cpb-auditor")
    page.goto("/reports/contacts")
    page.get_by_label("Started from").fill("2025-06-01")
    page.get_by_label("Started until").fill("2025-06-30")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page).to_have_url(re.compile(r"from=2025-06-01&to=2025-06-30"))
    _chart_drawn(page)
    rows = _download_csv(page)
    assert rows[1:] == [["2025-06", "0", "1", "0", "0", "0", "1"]]


def test_screenshots_in_each_language(page: Any, impact_and_goals: None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for username, paths in [
        ("cpb-auditor", ["/reports/", "/reports/contacts"]),
        ("se-auditor", ["/reports/register", "/reports/impact", "/reports/goals"]),
    ]:
        _sign_in(page, username)
        for language, name in LANGUAGES.items():
            page.get_by_role("button", name=name, exact=True).click()
            for path in paths:
                page.goto(path)
                expect(page.locator("html")).to_have_attribute("lang", language)
                if path != "/reports/":
                    _chart_drawn(page)
                slug = path.strip("/").replace("/", "-") or "reports"
                page.screenshot(path=str(SHOTS / f"{slug}-{language}.png"), full_page=True, timeout=60_000)
        page.get_by_role("button", name="English", exact=True).click()
        _sign_out(page)
