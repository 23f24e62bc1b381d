"""The documentation record page and its PDF, on direct procurements the engine drove.

The PDF's text is read with pypdf (a dev dependency).
"""

from __future__ import annotations

import html
import io
import re
from typing import Any

import pytest
import sqlalchemy.orm as so
from flask import Flask
from pypdf import PdfReader

import engine
from tests.engine.test_documentation_record import (
    CHOSEN_BECAUSE,
    FEWER_ASKED,
    START,
    earlier_small_purchase,
    ordered_chairs,
    start_case,
)
from tests.processes.driver import Clock, EngineDriver
from tests.web.conftest import PASSWORD, WebClient
from web.records import StaticStylesheetFetcher

SIGNED_IN = ("se-auditor", "se-requester", "fi-auditor")


@pytest.fixture
def cases(session_factory: so.sessionmaker[so.Session], password_hash: str) -> dict[str, int]:
    """Exempelby's direct procurements: an earlier small one, the chairs (archive step open), one
    just started; and a goal review, which is no direct procurement."""
    with Clock(START) as clock:
        driver = EngineDriver(session_factory)
        earlier = earlier_small_purchase(driver, clock)
        chairs = ordered_chairs(driver, clock)
        started = start_case(driver)
        goal = start_case(driver, "goal_review", user="se-admin")
    with session_factory.begin() as s:
        for username in SIGNED_IN:
            engine.get_user(s, username).password_hash = password_hash
    return {
        "earlier": earlier.instance_id,
        "chairs": chairs.instance_id,
        "started": started.instance_id,
        "goal": goal.instance_id,
    }


def _sign_in(client: WebClient, username: str, language: str = "en") -> WebClient:
    client.csrf_token = None
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    client.fetch_csrf_token()
    client.post("/language", data={"lang": language, "next": "/"})
    return client


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_an_auditor_reads_the_record_with_its_seven_fields_spend_deviations_and_declarations(
    client: WebClient, cases: dict[str, int]
) -> None:
    _sign_in(client, "se-auditor")
    case_page = client.get(f"/instances/{cases['chairs']}").get_data(as_text=True)
    assert f'href="/cases/{cases["chairs"]}/record"' in case_page
    assert f'href="/cases/{cases["started"]}/record"' not in client.get(
        f"/instances/{cases['started']}"
    ).get_data(as_text=True), "a case without a record does not link to one"

    response = client.get(f"/cases/{cases['chairs']}/record")
    assert response.status_code == 200
    page = _text(response.get_data(as_text=True))
    for number, label in enumerate(
        [
            "Contracting authority",
            "Object of the procurement",
            "How competition was sought",
            "Suppliers asked and tenders received",
            "Supplier chosen and main reason",
            "Estimated value",
            "Delivery time or contract period",
        ],
        start=1,
    ):
        assert f"{number}. {label}" in page
    for shown in (
        "Exempelby kommun",
        "212000-0001",
        "Ergonomic office chairs",
        "39112000-0",
        "Written requests for quotation",
        "Stolfabriken AB",
        "556000-0001",
        CHOSEN_BECAUSE,
        "150,000 SEK",
        "139,000 SEK",
        "Delivery within 6 weeks",
    ):
        assert shown in page, shown
    assert "Missing" not in page
    # Same-kind spend and its parts: the earlier purchase (linked), the declared outside spend.
    assert f'href="/instances/{cases["earlier"]}"' in response.get_data(as_text=True)
    for shown in ("Footrests", "7,900 SEK", "40,000 SEK", "47,900 SEK", "186,900 SEK", "700,000 SEK"):
        assert shown in page, shown
    assert "Within the limit." in page
    # Deviations and their justifications.
    assert "Fewer suppliers asked than the rules require " + FEWER_ASKED in page
    assert "The chosen quote is not the best-scored compliant one " + CHOSEN_BECAUSE in page
    assert "My spouse owns Kontorsmöbler AB." in page
    assert "No justification was recorded" not in page
    # Declarations and approval.
    assert "Approver" in page and "Unit head" in page and "Decision: Approved" in page
    # The case ran in March 2025 and its archive step is still open: overdue today.
    assert "Overdue: was due" in page
    assert "The documentation was not complete within the time allowed" in page


@pytest.mark.parametrize(
    ("language", "labels"),
    [
        (
            "sv",
            ["1. Upphandlande myndighet", "Hur konkurrensen togs till vara", "Minimiuppgifter", "150 000 kr"],
        ),
        ("fi", ["1. Hankintayksikkö", "Miten kilpailu järjestettiin", "Vähimmäistiedot", "150 000 SEK"]),
    ],
)
def test_the_record_speaks_swedish_and_finnish(
    client: WebClient, cases: dict[str, int], language: str, labels: list[str]
) -> None:
    _sign_in(client, "se-auditor", language)
    page = _text(client.get(f"/cases/{cases['chairs']}/record").get_data(as_text=True))
    for label in labels:
        assert label in page, label


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(page.extract_text() or "" for page in reader.pages)


def test_the_record_downloads_as_a_pdf_with_the_suppliers_name(
    client: WebClient, cases: dict[str, int]
) -> None:
    _sign_in(client, "se-auditor", "sv")
    response = client.get(f"/cases/{cases['chairs']}/record.pdf")
    assert response.status_code == 200
    assert response.content_type == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"{cases['chairs']}.pdf" in disposition
    assert response.data.startswith(b"%PDF-")
    text = re.sub(r"\s+", " ", _pdf_text(response.data))
    assert "Stolfabriken AB" in text
    assert "Upphandlande myndighet" in text and "Ergonomic office chairs" in text
    assert FEWER_ASKED[:40] in text


def test_members_of_another_organisation_get_not_found(client: WebClient, cases: dict[str, int]) -> None:
    _sign_in(client, "fi-auditor")
    for path in (f"/cases/{cases['chairs']}/record", f"/cases/{cases['chairs']}/record.pdf"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Ergonomic office chairs" not in response.get_data(as_text=True)
        assert "Stolfabriken" not in response.get_data(as_text=True)


def test_a_case_without_a_record_gets_a_page_that_says_why(client: WebClient, cases: dict[str, int]) -> None:
    _sign_in(client, "se-requester")
    for suffix in ("record", "record.pdf"):
        response = client.get(f"/cases/{cases['started']}/{suffix}")
        assert response.status_code == 404 and response.content_type.startswith("text/html")
        assert "this case has not got there yet" in _text(response.get_data(as_text=True))
        response = client.get(f"/cases/{cases['goal']}/{suffix}")
        assert response.status_code == 404
        assert "Only direct procurements have a documentation record" in _text(
            response.get_data(as_text=True)
        )
    assert client.get("/cases/999999/record").status_code == 404
    client.post("/logout")
    response = client.get(f"/cases/{cases['chairs']}/record")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_the_pdf_fetcher_serves_only_the_apps_stylesheets(app: Flask) -> None:
    fetcher = StaticStylesheetFetcher("http://localhost/static/", str(app.static_folder))
    served = fetcher.fetch("http://localhost/static/records.css")
    assert b".minimum-field" in served.read()
    refused: list[str] = [
        "http://example.org/static/records.css",
        "https://localhost/static/records.css",
        "http://localhost/static/records.css?x=1",
        "http://localhost/static/../templates/base.html",
        "http://localhost/static/%2e%2e/records.css",
        "http://localhost/static/js/app.js",
        "http://localhost/static/nothing.css",
        "http://localhost/records.css",
        "file:///etc/passwd",
        "data:text/css,body{}",
    ]
    for url in refused:
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert fetcher.refused == refused


def test_the_pdf_asks_for_nothing_but_its_stylesheet(
    client: WebClient, cases: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []
    original = StaticStylesheetFetcher.fetch

    def recording(self: StaticStylesheetFetcher, url: str, headers: Any = None) -> Any:
        fetched.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(StaticStylesheetFetcher, "fetch", recording)
    _sign_in(client, "se-auditor")
    assert client.get(f"/cases/{cases['chairs']}/record.pdf").status_code == 200
    assert fetched == ["http://localhost/static/records.css"]
