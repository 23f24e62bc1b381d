"""The case list page (/cases): my cases, all cases for admins and auditors, filters, paging."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine
from flask import Flask

import engine
from tests.conftest import FIXTURES
from tests.web.conftest import LoginAs, WebClient

Factory = so.sessionmaker[so.Session]


@pytest.fixture
def cases(session_factory: Factory, deployed: None) -> dict[str, int]:
    """Cases of north (and one of south) with reported subjects and suppliers.

    ``chairs``: started by north-req, entered, waiting for approval. ``desks``:
    started by north-handler, approved by north-boss (completed). ``lamps``:
    started by north-handler, untouched. ``south``: the same supplier in south.
    """
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "cases")

    def start(title: str, user: str, when: dt.datetime, org: str = "north", **kwargs: Any) -> int:
        with time_machine.travel(when, tick=False), session_factory.begin() as s:
            return engine.start_instance(
                s, "case_purchase", organisation=org, user=user, title=title, **kwargs
            ).id

    def complete(instance_id: int, user: str, **data: Any) -> None:
        with session_factory() as s:
            (task,) = engine.list_tasks(s, instance_id=instance_id)
        with session_factory.begin() as s:
            engine.complete_task(s, task.id, user=user, data=data)

    found = {
        "chairs": start(
            "Office chairs", "north-req", dt.datetime(2026, 2, 10, 9, tzinfo=dt.UTC), business_key="PO-CH"
        ),
        "desks": start("Standing desks", "north-handler", dt.datetime(2026, 3, 5, 9, tzinfo=dt.UTC)),
        "lamps": start("Desk lamps", "north-handler", dt.datetime(2026, 4, 20, 9, tzinfo=dt.UTC)),
        "south": start("Chairs", "south-req", dt.datetime(2026, 3, 1, tzinfo=dt.UTC), org="south"),
    }
    complete(found["chairs"], "north-req", subject="Seating", winner={"supplier": "Sitwell Oy"})
    complete(found["desks"], "north-handler", subject="Desks", winner={"supplier": "Deskland AB"})
    complete(found["desks"], "north-boss")
    complete(found["south"], "south-req", subject="Seating", winner={"supplier": "Sitwell Oy"})
    return found


def _listed(page: str) -> list[int]:
    return [int(number) for number in re.findall(r'<tr id="case-(\d+)">', page)]


def _get(client: WebClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_a_requester_sees_the_cases_they_started_or_took_part_in(
    login_as: LoginAs, cases: dict[str, int]
) -> None:
    client = login_as("requester")
    page = _get(client, "/cases")
    assert _listed(page) == [cases["chairs"]]
    assert "Office chairs" in page and "PO-CH" in page and "north-req" in page
    assert "All cases" not in page, "only admins and auditors get the organisation's list"
    assert _listed(_get(client, "/cases?view=all")) == [cases["chairs"]]


def test_my_cases_include_those_where_i_completed_a_task(login_as: LoginAs, cases: dict[str, int]) -> None:
    assert _listed(_get(login_as("approver"), "/cases")) == [cases["desks"]]
    assert _listed(_get(login_as("case_handler"), "/cases")) == [cases["lamps"], cases["desks"]]


def test_an_auditor_lands_on_all_cases_and_finds_one_by_its_supplier(
    login_as: LoginAs, cases: dict[str, int]
) -> None:
    client = login_as("auditor")
    landing = client.get("/")
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/cases")
    page = _get(client, "/cases")
    assert _listed(page) == [cases["lamps"], cases["desks"], cases["chairs"]]
    assert 'href="/cases"' in page and ">Inbox" not in page, "an auditor has no inbox in the menu"
    found = _get(client, "/cases?q=sitwell")
    assert _listed(found) == [cases["chairs"]], "the other organisation's Sitwell case is not listed"
    assert f'href="/instances/{cases["chairs"]}"' in found
    assert _get(client, f"/instances/{cases['chairs']}").count("Office chairs") >= 1


def test_an_admin_switches_between_my_cases_and_all(login_as: LoginAs, cases: dict[str, int]) -> None:
    client = login_as("admin")
    assert _listed(_get(client, "/cases")) == []
    mine = _get(client, "/cases")
    assert "You have not started or taken part in any case yet." in mine and "All cases" in mine
    assert len(_listed(_get(client, "/cases?view=all"))) == 3


def test_filters_by_process_status_period_and_text(login_as: LoginAs, cases: dict[str, int]) -> None:
    client = login_as("auditor")
    assert _listed(_get(client, "/cases?status=completed")) == [cases["desks"]]
    assert _listed(_get(client, "/cases?status=open")) == [cases["lamps"], cases["chairs"]]
    assert _listed(_get(client, "/cases?from=2026-03-01&to=2026-03-31")) == [cases["desks"]]
    assert _listed(_get(client, "/cases?process=approval")) == []
    assert _listed(_get(client, "/cases?process=case_purchase&q=desk")) == [cases["lamps"], cases["desks"]]
    assert _listed(_get(client, "/cases?q=deskland")) == [cases["desks"]]
    assert _listed(_get(client, "/cases?q=po-ch")) == [cases["chairs"]]
    assert _listed(_get(client, "/cases?sort=title")) == [cases["lamps"], cases["chairs"], cases["desks"]]
    empty = _get(client, "/cases?q=nothing-like-this")
    assert "No cases match the filter." in empty and "Clear the filter" in empty


def test_a_bad_date_or_period_is_explained_beside_the_field(login_as: LoginAs, cases: dict[str, int]) -> None:
    client = login_as("auditor")
    page = _get(client, "/cases?from=2026-13-01", status=400)
    assert "Started from: 2026-13-01 is not a date (YYYY-MM-DD)." in page and 'aria-invalid="true"' in page
    reversed_period = _get(client, "/cases?from=2026-04-01&to=2026-03-01", status=400)
    assert "The period ends before it starts." in reversed_period and _listed(reversed_period) == []
    bad_cursor = _get(client, "/cases?after=garbage", status=400)
    assert "Invalid case list cursor" in bad_cursor and "Traceback" not in bad_cursor


def test_next_page_links_carry_the_filter_and_cover_every_case_once(
    app: Flask, login_as: LoginAs, cases: dict[str, int]
) -> None:
    app.config["CASE_PAGE_SIZE"] = 2
    client = login_as("auditor")
    first = _get(client, "/cases?q=s&sort=started")
    assert _listed(first) == [cases["chairs"], cases["desks"]]
    # No count of all matching cases per page: the page says which rows it shows, and that there are more.
    assert "Cases 1\N{EN DASH}2 of more than 2" in first and "3 cases" not in first
    link = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert link
    url = html.unescape(link.group(1))
    assert "q=s" in url and "sort=started" in url and "view=all" in url
    second = _get(client, url)
    assert _listed(second) == [cases["lamps"]] and 'rel="next"' not in second and 'rel="first"' in second
    assert "Cases 3\N{EN DASH}3" in second and "more than" not in second
    app.config["CASE_PAGE_SIZE"] = 3
    assert "3 cases" in _get(client, "/cases?q=s&sort=started"), "one page: the exact number"


def test_the_inbox_shows_each_tasks_case_title(login_as: LoginAs, cases: dict[str, int]) -> None:
    page = _get(login_as("approver"), "/")
    assert f"#{cases['chairs']}</a> · Office chairs" in page


def test_the_menu_has_cases_and_anonymous_visitors_sign_in_first(
    client: WebClient, login_as: LoginAs, cases: dict[str, int]
) -> None:
    assert client.get("/cases").status_code == 302
    page = _get(login_as("requester"), "/")
    assert '<a href="/cases"' in page and ">Cases<" in page


@pytest.mark.parametrize("language", ["sv", "fi"])
def test_the_page_is_translated(app: Flask, login_as: LoginAs, cases: dict[str, int], language: str) -> None:
    client = login_as("auditor")
    client.post("/language", data={"lang": language, "next": "/cases"})
    page = _get(client, "/cases")
    expected = {"sv": ("Ärenden", "Alla ärenden", "Sök"), "fi": ("Asiat", "Kaikki asiat", "Haku")}[language]
    for text in expected:
        assert text in page, text
    assert {"sv": "3 ärenden", "fi": "3 asiaa"}[language] in page
    app.config["CASE_PAGE_SIZE"] = 2
    more = _get(client, "/cases")
    assert {"sv": "Ärenden 1\N{EN DASH}2 av fler än 2", "fi": "Asiat 1\N{EN DASH}2, yhteensä yli 2"}[
        language
    ] in more
    for english in ("My cases", "All statuses", "Started from", "Newest first", "Last change"):
        assert english not in page, english
