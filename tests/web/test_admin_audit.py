"""/admin/audit: the admin actions of the organisation, filtered, paged, and exported as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from tests.web.conftest import LoginAs
from tests.web.test_browser import sign_in

SHOTS = Path(os.environ.get("PROCFLOW_SHOTS", "/tmp/shots/f"))

Factory = so.sessionmaker[so.Session]


def _record(session_factory: Factory, org: str, actor: str, action: str, target: str, *, day: int = 1) -> int:
    with session_factory.begin() as s:
        event = engine.record_admin_action(
            s,
            organisation_id=engine.get_organisation(s, org).id,
            actor=actor,
            action=action,
            target=target,
            before={"roles": ["requester"]} if action == "roles_changed" else None,
            after={"roles": ["requester", "approver"], "note": "=HYPERLINK(1)"},
        )
        event.at = dt.datetime(2026, 3, day, 12, tzinfo=dt.UTC)
        return event.id


def _rows(html: str) -> list[str]:
    return re.findall(r"<tr>\s*<td data-label=.*?</tr>", html, flags=re.S)


def test_lists_this_organisations_admin_actions_with_filters(
    login_as: LoginAs, session_factory: Factory
) -> None:
    _record(session_factory, "north", "north-admin", "roles_changed", "user north-req", day=1)
    _record(session_factory, "north", "other-admin", "group_added", "group buyers", day=5)
    _record(session_factory, "south", "south-admin", "group_added", "group southern secret", day=5)
    client = login_as("admin")
    html = client.get("/admin/audit").get_data(as_text=True)
    assert len(_rows(html)) == 2
    assert "User north-req" in html and "Group buyers" in html and "southern secret" not in html
    assert "&#34;approver&#34;" in html or "&quot;approver&quot;" in html or '"approver"' in html
    only_groups = client.get("/admin/audit?kind=admin.group_added").get_data(as_text=True)
    assert len(_rows(only_groups)) == 1 and "Group buyers" in only_groups
    by_actor = client.get("/admin/audit?actor=north-admin").get_data(as_text=True)
    assert len(_rows(by_actor)) == 1 and "User north-req" in by_actor
    in_period = client.get("/admin/audit?since=2026-03-02&until=2026-03-31").get_data(as_text=True)
    assert len(_rows(in_period)) == 1 and "Group buyers" in in_period


def test_bad_filters_come_back_beside_their_fields(login_as: LoginAs, session_factory: Factory) -> None:
    _record(session_factory, "north", "north-admin", "group_added", "group buyers")
    client = login_as("admin")
    response = client.get("/admin/audit?since=yesterday&kind=started&before=abc")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="since-error"' in html and "“yesterday” is not a date" in html
    assert 'id="kind-error"' in html and "The page link is broken" in html
    # The entries are still shown, without the wrong fields.
    assert len(_rows(html)) == 1
    assert client.get("/admin/audit?since=2026-03-05&until=2026-03-01").status_code == 422
    assert client.get("/admin/audit.csv?since=not-a-date").status_code == 422


def test_pages_through_a_long_log(login_as: LoginAs, session_factory: Factory) -> None:
    made = [_record(session_factory, "north", "north-admin", "group_added", f"group g{n}") for n in range(55)]
    client = login_as("admin")
    first = client.get("/admin/audit").get_data(as_text=True)
    assert len(_rows(first)) == engine.AUDIT_PAGE_SIZE and "Group g54" in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older is not None and 'rel="prev"' not in first
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(_rows(second)) == 5 and "Group g0<" in second and 'rel="next"' not in second
    newer = re.search(r'href="([^"]+)" rel="prev"', second)
    assert newer is not None
    back = client.get(newer.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(_rows(back)) == engine.AUDIT_PAGE_SIZE and f"before={made[5]}" in back


def test_csv_export_of_the_filtered_actions(login_as: LoginAs, session_factory: Factory) -> None:
    _record(session_factory, "north", "north-admin", "roles_changed", "user north-req", day=1)
    _record(session_factory, "north", "other-admin", "group_added", "group buyers", day=5)
    _record(session_factory, "south", "south-admin", "group_added", "group hidden", day=5)
    with session_factory.begin() as s:
        engine.update_settings(
            s, engine.get_organisation(s, "north"), {"time_zone": "Europe/Helsinki"}, actor="x"
        )
    client = login_as("admin")
    response = client.get("/admin/audit.csv?kind=admin.roles_changed")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="audit-north-' in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == ["when", "who", "what", "target", "before", "after"]
    assert len(rows) == 2
    when, who, what, target, before, after = rows[1]
    # 12:00 UTC is 14:00 in Helsinki.
    assert (when, who, what, target) == (
        "2026-03-01T14:00:00+02:00",
        "north-admin",
        "admin.roles_changed",
        "user north-req",
    )
    assert json.loads(before) == {"roles": ["requester"]}
    assert json.loads(after) == {"note": "=HYPERLINK(1)", "roles": ["requester", "approver"]}
    everything = list(csv.reader(io.StringIO(client.get("/admin/audit.csv").get_data(as_text=True))))
    assert len(everything) == 4 and not any("group hidden" in row for row in everything)
    # Cells that a spreadsheet would run as formulas are kept as text.
    _record(session_factory, "north", "@evil", "group_added", "=SUM(A1)", day=2)
    (row,) = list(csv.reader(io.StringIO(client.get("/admin/audit.csv?actor=@evil").get_data(as_text=True))))[
        1:
    ]
    assert row[1:4] == ["'@evil", "admin.group_added", "'=SUM(A1)"]


def test_the_page_in_swedish_and_finnish(login_as: LoginAs, session_factory: Factory) -> None:
    with session_factory.begin() as s:
        engine.update_settings(s, engine.get_organisation(s, "north"), {"country": "SE"}, actor="north-admin")
    client = login_as("admin")
    client.post("/language", data={"lang": "sv"})
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "Granskningslogg" in html and "Organisationens inställningar ändrade" in html
    client.post("/language", data={"lang": "fi"})
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "Tarkastusloki" in html and "Organisaation asetuksia muutettu" in html


@pytest.mark.slow
def test_settings_and_the_audit_log_in_the_browser(page: Any, session_factory: Factory, start: Any) -> None:
    """An admin sets the country and time zone, mistypes the zone, then finds the change in the log."""
    from playwright.sync_api import expect

    instance_id = start()
    with session_factory.begin() as s:
        engine.suspend_instance(s, instance_id, user="north-admin")
    with session_factory.begin() as s:
        engine.resume_instance(s, instance_id, user="north-admin")
    _record(session_factory, "north", "north-admin", "roles_changed", "user north-req", day=1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, "north-admin")
    page.goto("/admin/settings")
    expect(page.get_by_role("heading", name="Organisation settings", level=1)).to_be_visible()
    page.get_by_label("Country").select_option("SE")
    page.get_by_label("Currency").select_option("SEK")
    page.get_by_label("Organisation number").fill("212000-0142")
    page.get_by_label("Time zone").fill("Europe/Stokholm")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#time_zone-error")).to_contain_text("“Europe/Stokholm” is not a time zone name")
    expect(page.get_by_label("Country")).to_have_value("SE")
    page.screenshot(path=str(SHOTS / "settings-error-en.png"), full_page=True)
    page.get_by_label("Time zone").fill("Europe/Stockholm")
    page.get_by_label("Default language").select_option("sv")
    page.get_by_role("button", name="Save").click()
    # The admin chose no language of their own: the organisation's new default (Swedish) is theirs now.
    expect(page.get_by_role("status")).to_have_text("Inställningarna sparades.")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Organisation settings", level=1)).to_be_visible()
    page.screenshot(path=str(SHOTS / "settings-en.png"), full_page=True)
    page.get_by_role("link", name="Earlier changes in the audit log").click()
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Organisation settings changed")
    expect(row).to_contain_text("Europe/Stockholm")
    page.screenshot(path=str(SHOTS / "audit-filtered-en.png"), full_page=True)
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("tbody tr")).to_have_count(4)
    expect(page.get_by_role("link", name=f"Case {instance_id}").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as CSV").click()
    assert download.value.suggested_filename.startswith("audit-north-")
    page.screenshot(path=str(SHOTS / "audit-en.png"), full_page=True)
    for language, button, audit_heading, settings_heading in (
        ("sv", "Svenska", "Granskningslogg", "Organisationens inställningar"),
        ("fi", "Suomi", "Tarkastusloki", "Organisaation asetukset"),
    ):
        page.get_by_role("button", name=button).click()
        expect(page.get_by_role("heading", name=audit_heading, level=1)).to_be_visible()
        page.screenshot(path=str(SHOTS / f"audit-{language}.png"), full_page=True)
        page.goto("/admin/settings")
        expect(page.get_by_role("heading", name=settings_heading, level=1)).to_be_visible()
        page.screenshot(path=str(SHOTS / f"settings-{language}.png"), full_page=True)
        page.goto("/admin/audit")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "audit-fi-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
