"""The report pages (/reports): who may see them, the period filter, the tables and the CSV downloads.

The data are real cases of the shipped processes, driven through the engine on
the dates they happened (time_machine), so the reports read the projection the
engine wrote; every page is rendered from the database by the web app.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine

import engine
from tests.processes.driver import EngineDriver, Run
from tests.web.conftest import PASSWORD, WebClient

CPB = "yhteishankinnat"
CUSTOMER = "hankinnat@esimerkkila.demo.example"
REPORT_PAGES = ("/reports/contacts", "/reports/register", "/reports/impact", "/reports/goals")
NEED = {
    "description": "Adjustable chairs, EN 1335 certified.",
    "cpv_code": "39112000-0",
    "category": "goods",
    "contract_months": 0,
    "option_months": 0,
    "utility_activity": False,
    "same_kind_spend_outside": 0,
    "framework_agreement_exists": False,
    "requester": "se-requester",
    "participants": ["se-requester"],
    "requester_email": "se-requester@demo.example",
}


def at(day: str) -> Any:
    """Move the clock to 09:00 UTC on *day* (ISO date) while the block runs."""
    return time_machine.travel(dt.datetime.fromisoformat(f"{day}T09:00:00+00:00"), tick=False)


def contact(driver: EngineDriver, ref: str, category: str, *, has_joined: bool = True) -> Run:
    """Receive a customer's contact through the intake message and triage it into *category*."""
    (run,) = driver.send_message(
        "contact_received",
        {
            "contact_ref": ref,
            "email": CUSTOMER,
            "name": "Maija Meikäläinen",
            "organisation": "Esimerkkilän kaupunki",
            "message": "May we add an eco-label requirement?",
            "channel": "web",
        },
        org=CPB,
    )
    run.complete(
        "triage",
        user="cpb-support",
        data={
            "customer_org_number": "0123456-7",
            "has_joined": has_joined,
            "agreement": "Cleaning services DPS",
            "lot": "Lot 2 Uusimaa",
            "category": category,
            "language": "fi",
            "urgency": "normal",
        },
    )
    return run


def direct_procurement(driver: EngineDriver, subject: str, value: int) -> Run:
    """Start a direct procurement in exempelby and describe the need: its documentation duty is then known."""
    run = driver.start("direct_procurement", org="exempelby", user="se-requester")
    run.complete(
        "describe_need", user="se-requester", data={**NEED, "subject": subject, "value_excl_vat": value}
    )
    return run


@dataclass(frozen=True)
class ReportData:
    """What the ``report_data`` fixture ran: instance ids by name."""

    ids: dict[str, int]


@pytest.fixture
def report_data(session_factory: so.sessionmaker[so.Session], password_hash: str) -> ReportData:
    """The demo organisations with customer contacts in May and June 2025 and two direct procurements.

    Contacts of yhteishankinnat: two advice (5 and 12 May, the first answered and
    closed with satisfaction 4), one from a customer who has not joined the
    agreement (20 May), comments on a customer's documents (9 June).
    Direct procurements of exempelby: 330 000 (documentation required, 6 May)
    and 8 000 (not required, 10 June). A member of exempelby's ``reports`` group,
    ``se-analyst``, has no role that would show reports.
    """
    driver = EngineDriver(session_factory)
    ids: dict[str, int] = {}
    with at("2025-05-05"):
        first = contact(driver, "C-1", "advice")
        first.complete(
            "give_advice",
            user="cpb-support",
            data={"advice": "See clause 4.2 of the DPS.", "needs_legal_review": False},
        )
        first.complete(
            "reply_to_customer",
            user="cpb-support",
            data={"reply_text": "Here is our answer.", "waiting_for_customer": False},
        )
        first.complete("close_case", user="cpb-support", data={"satisfaction_rating": 4})
    with at("2025-05-12"):
        contact(driver, "C-2", "advice")
    with at("2025-05-20"):
        not_joined = contact(driver, "C-3", "advice", has_joined=False)
        not_joined.complete("close_case", user="cpb-support", data={})
    with at("2025-06-09"):
        contact(driver, "C-4", "document_comments")
    with at("2025-05-06"):
        ids["chairs"] = direct_procurement(driver, "Ergonomic office chairs", 330000).instance_id  # type: ignore[attr-defined]
    with at("2025-06-10"):
        ids["pens"] = direct_procurement(driver, "=SUM(A1) pens", 8000).instance_id  # type: ignore[attr-defined]
    with session_factory.begin() as s:
        engine.add_user(s, "se-analyst", organisation="exempelby", roles=["requester"], groups=["reports"])
        for username in (
            "se-admin",
            "se-auditor",
            "se-buyer",
            "se-analyst",
            "cpb-admin",
            "cpb-auditor",
            "cpb-support",
        ):
            engine.get_user(s, username).password_hash = password_hash
    return ReportData(ids)


def sign_in(client: WebClient, username: str) -> WebClient:
    """Sign *client* in as *username* (password ``PASSWORD``)."""
    client.post("/logout")
    client.csrf_token = None
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    client.fetch_csrf_token()
    return client


def csv_rows(response: Any) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff"), "the byte order mark tells spreadsheets the file is UTF-8"
    return list(csv.reader(io.StringIO(text[1:])))


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["se-admin", "se-auditor", "se-analyst"])
def test_admins_auditors_and_the_reports_group_see_every_report(
    client: WebClient, report_data: ReportData, username: str
) -> None:
    sign_in(client, username)
    index = client.get("/reports/")
    assert index.status_code == 200
    page = index.get_data(as_text=True)
    for path in REPORT_PAGES:
        assert f'href="{path}"' in page
        assert client.get(path).status_code == 200, path
        assert client.get(f"{path}?format=csv").status_code == 200, path
    assert 'href="/reports/"' in client.get("/settings").get_data(as_text=True), "the nav links the reports"


def test_the_nav_links_reports_only_for_those_who_may_see_them(
    client: WebClient, report_data: ReportData
) -> None:
    sign_in(client, "se-analyst")
    assert 'href="/reports/"' in client.get("/settings", follow_redirects=True).get_data(as_text=True)
    sign_in(client, "se-buyer")
    assert 'href="/reports/"' not in client.get("/settings", follow_redirects=True).get_data(as_text=True)


def test_others_get_not_found_and_anonymous_visitors_are_sent_to_sign_in(
    client: WebClient, report_data: ReportData
) -> None:
    response = client.get("/reports/contacts?from=2025-01-01")
    assert response.status_code == 302
    assert "/login?next=/reports/contacts" in response.headers["Location"]
    sign_in(client, "se-buyer")
    for path in ["/reports/", *REPORT_PAGES, "/reports/contacts?format=csv"]:
        assert client.get(path).status_code == 404, path
    sign_in(client, "se-auditor")
    assert client.get("/reports/register?format=xlsx").status_code == 404, "an unknown format"


# --- customer contacts ----------------------------------------------------------------------------


def test_the_contact_report_counts_the_organisations_contacts_by_category(
    client: WebClient, report_data: ReportData
) -> None:
    sign_in(client, "cpb-auditor")
    rows = csv_rows(client.get("/reports/contacts?format=csv"))
    header, body = rows[0], rows[1:]
    assert header == [
        "Month",
        "Advice",
        "Comments on the customer's documents",
        "Joint mini-competition",
        "Other",
        "Not joined the agreement",
        "Total",
    ]
    assert body == [["2025-05", "2", "0", "0", "0", "1", "3"], ["2025-06", "0", "1", "0", "0", "0", "1"]]
    page = client.get("/reports/contacts").get_data(as_text=True)
    assert 'id="report-chart"' in page and 'type="application/json" id="report-chart-data"' in page
    assert "Cleaning services DPS" in page


def test_another_organisations_contacts_are_not_counted(client: WebClient, report_data: ReportData) -> None:
    sign_in(client, "se-auditor")
    rows = csv_rows(client.get("/reports/contacts?format=csv"))
    assert rows[1:] == []


def test_the_period_filter_keeps_the_cases_started_in_it(client: WebClient, report_data: ReportData) -> None:
    sign_in(client, "cpb-admin")
    june = csv_rows(client.get("/reports/contacts?format=csv&from=2025-06-01&to=2025-06-30"))
    assert june[1:] == [["2025-06", "0", "1", "0", "0", "0", "1"]]
    # Both ends are inclusive: 20 May is the last day of this period.
    may = csv_rows(client.get("/reports/contacts?format=csv&from=2025-05-12&to=2025-05-20"))
    assert may[1:] == [["2025-05", "1", "0", "0", "0", "1", "2"]]
    page = client.get("/reports/contacts?from=2025-06-01&to=2025-06-30").get_data(as_text=True)
    assert 'value="2025-06-01"' in page and 'value="2025-06-30"' in page
    assert "format=csv&amp;from=2025-06-01&amp;to=2025-06-30" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2025-13-01", "Enter a date as YYYY-MM-DD"),
        ("from=2025-06-30&to=2025-06-01", "The end of the period is before its start."),
    ],
)
def test_a_wrong_period_is_answered_with_a_message_beside_the_field(
    client: WebClient, report_data: ReportData, query: str, message: str
) -> None:
    sign_in(client, "cpb-admin")
    for suffix in ("", "&format=csv"):
        response = client.get(f"/reports/contacts?{query}{suffix}")
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert message in page and 'aria-invalid="true"' in page
        assert "report-chart-data" not in page


def test_csv_headers_are_in_the_users_language(client: WebClient, report_data: ReportData) -> None:
    sign_in(client, "cpb-admin")
    client.post("/language", data={"lang": "fi", "next": "/reports/"})
    header = csv_rows(client.get("/reports/contacts?format=csv"))[0]
    assert header[0] == "Kuukausi" and header[-1] == "Yhteensä"
    client.post("/language", data={"lang": "sv", "next": "/reports/"})
    header = csv_rows(client.get("/reports/contacts?format=csv"))[0]
    assert header[0] == "Månad" and header[1] == "Rådgivning"


def test_the_csv_is_a_download_named_for_the_report_organisation_and_period(
    client: WebClient, report_data: ReportData
) -> None:
    sign_in(client, "cpb-admin")
    response = client.get("/reports/contacts?format=csv&from=2025-05-01&to=2025-05-31")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="contacts-yhteishankinnat-2025-05-01-2025-05-31.csv"'
    )


# --- direct-procurement register ------------------------------------------------------------------


def test_the_register_lists_direct_procurements_with_their_documentation_duty(
    client: WebClient, report_data: ReportData
) -> None:
    sign_in(client, "se-auditor")
    rows = csv_rows(client.get("/reports/register?format=csv"))
    header = rows[0]
    body = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert [row["Subject"] for row in body] == ["Ergonomic office chairs", "'=SUM(A1) pens"]
    chairs, pens = body
    assert chairs["Case number"] == str(report_data.ids["chairs"])
    assert chairs["CPV code"] == "39112000-0"
    assert chairs["Documentation required"] == "true" and pens["Documentation required"] == "false"
    page = client.get("/reports/register").get_data(as_text=True)
    assert f'href="/instances/{report_data.ids["chairs"]}"' in page
    assert "Ergonomic office chairs" in page


def test_the_register_period_filter(client: WebClient, report_data: ReportData) -> None:
    sign_in(client, "se-analyst")
    rows = csv_rows(client.get("/reports/register?format=csv&to=2025-05-31"))
    subjects = [row[rows[0].index("Subject")] for row in rows[1:]]
    assert subjects == ["Ergonomic office chairs"]


# --- impact index and goal fulfilment -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "first_headers"),
    [
        ("/reports/impact", ["Case number", "Case", "Agreement", "Status", "Stage 1", "Stage 2", "Total"]),
        ("/reports/goals", ["Year", "Theme", "Goal ID", "Goal"]),
    ],
)
def test_empty_reports_still_have_translated_headers(
    client: WebClient, report_data: ReportData, path: str, first_headers: list[str]
) -> None:
    sign_in(client, "se-admin")
    rows = csv_rows(client.get(f"{path}?format=csv"))
    assert rows[0][: len(first_headers)] == first_headers
    assert rows[1:] == []


def test_every_column_of_every_report_has_a_label_in_each_language(app: Any) -> None:
    from engine import reports
    from web.reports import column_label

    empty = reports.Period()
    tables = [
        reports.CONTACT_COLUMNS,
        reports.ContactReport.agreement_columns,
        reports.ContactReport.sla_columns,
        reports.REGISTER_COLUMNS,
        reports.IMPACT_COLUMNS,
        reports.ImpactReport.agreement_columns,
        reports.GoalReport(empty, ("Q1", "Q2", "Q3", "Q4"), ()).columns,
    ]
    for language in ("en", "sv", "fi"):
        with app.test_request_context(headers={"Accept-Language": language}):
            for columns in tables:
                for column in columns:
                    assert column_label(column) != column, f"{column} has no label ({language})"
