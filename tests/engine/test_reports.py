"""The management reports: real cases of the shipped processes, driven through the engine, counted.

Every step runs cold (tests.processes.driver.ColdDriver: spec cache cleared, workflow
restored from the database), and the reports read only the projection the engine wrote.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy.orm as so

from engine.reports import (
    CONTACT_CATEGORIES,
    Period,
    contact_report,
    goal_report,
    impact_report,
    register_report,
    to_csv,
)
from tests.processes.driver import Clock, ColdDriver, Run

Factory = so.sessionmaker[so.Session]
CPB = "yhteishankinnat"
START = dt.datetime(2025, 4, 28, 8, 0, tzinfo=dt.UTC)  # a Monday
SCORES_1 = {"sustainability": 2, "innovation": 1, "cost_savings": 2, "quality": 1, "competence": 1}


@pytest.fixture
def clock() -> Iterator[Clock]:
    with Clock(START) as running:
        yield running


@pytest.fixture
def driver(session_factory: Factory, clock: Clock) -> ColdDriver:
    return ColdDriver(session_factory)


def _org_id(driver: ColdDriver, key: str) -> int:
    return driver.organisation_id(key)


def _contact(driver: ColdDriver, ref: str, *, org: str = CPB) -> Run:
    payload = {
        "contact_ref": ref,
        "email": "buyer@customer.example",
        "organisation": "Esimerkkilän kaupunki",
        "message": "A question about the agreement.",
    }
    (run,) = driver.send_message("contact_received", payload, org=org)
    return run


def _triage(run: Run, category: str, agreement: str, *, has_joined: bool = True) -> None:
    run.complete(
        "triage",
        user="cpb-support",
        data={
            "customer_org_number": "0123456-7",
            "has_joined": has_joined,
            "agreement": agreement,
            "lot": "Lot 1",
            "category": category,
            "language": "fi",
            "urgency": "normal",
        },
    )


def _reply_and_close(run: Run, rating: int) -> None:
    run.complete(
        "reply_to_customer",
        user="cpb-support",
        data={"reply_text": "Here is our answer.", "waiting_for_customer": False},
    )
    run.complete("close_case", user="cpb-support", data={"satisfaction_rating": rating})
    assert run.status == "completed"


def test_contact_report_counts_categories_months_agreements_sla_and_satisfaction(
    driver: ColdDriver, clock: Clock, session_factory: Factory
) -> None:
    # April: advice answered the same day (in time), rated 5.
    advice = _contact(driver, "C-1")
    _triage(advice, "advice", "Cleaning DPS")
    advice.complete(
        "give_advice",
        user="cpb-support",
        data={"advice": "Yes, within the agreement's terms.", "needs_legal_review": False},
    )
    _reply_and_close(advice, 5)
    # Not joined: instructions go out at once, no reply task, so no service-level outcome.
    joiner = _contact(driver, "C-2")
    _triage(joiner, "advice", "Cleaning DPS", has_joined=False)
    clock.advance(days=3)  # into May
    # May: comments answered late (five working days passed), rated 2.
    comments = _contact(driver, "C-3")
    _triage(comments, "document_comments", "IT DPS")
    clock.advance(days=9)
    driver.fire_due_timers()
    comments.complete("follow_up_overdue", user="cpb-team-lead", data={"action": "Reassigned."})
    checklist = dict.fromkeys(
        (
            "all_capable_suppliers_invited",
            "criteria_within_framework",
            "weights_stated",
            "deadline_reasonable",
            "terms_within_framework",
            "voluntary_standstill",
            "impact_choices",
        ),
        True,
    )
    comments.complete(
        "comment_documents",
        user="cpb-category-manager",
        data={"checklist": checklist, "comments": "Fine as they are."},
    )
    _reply_and_close(comments, 2)
    # A joint mini-competition: the contact starts one mini-competition run with the customer.
    joint = _contact(driver, "C-4")
    _triage(joint, "mini_competition", "Cleaning DPS")
    joint.complete(
        "plan_mini_competition",
        user="cpb-category-manager",
        data={"kickoff_date": dt.date.today().isoformat(), "plan": "Run it jointly."},
    )
    # One still waiting for triage, one other, and a mini-competition started by hand (not with a customer).
    _contact(driver, "C-5")
    other = _contact(driver, "C-6")
    _triage(other, "other", "IT DPS")
    driver.start("mini_competition", org=CPB, user="cpb-category-manager")

    org = _org_id(driver, CPB)
    with session_factory() as s:
        report = contact_report(s, organisation_id=org, period=Period())
        april = contact_report(
            s, organisation_id=org, period=Period(dt.date(2025, 4, 1), dt.date(2025, 4, 30))
        )
        none_yet = contact_report(
            s, organisation_id=org, period=Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
        )
    assert report.total == 6
    assert report.by_category == {
        "advice": 1,
        "document_comments": 1,
        "mini_competition": 1,
        "other": 2,  # the untriaged contact counts as other
        "not_joined": 1,
    }
    assert [(m.month, m.total) for m in report.by_month] == [("2025-04", 2), ("2025-05", 4)]
    assert report.by_month[0].counts == {**dict.fromkeys(CONTACT_CATEGORIES, 0), "advice": 1, "not_joined": 1}
    agreements = {a.agreement: a.total for a in report.by_agreement}
    assert agreements == {"Cleaning DPS": 3, "IT DPS": 2, "": 1}
    assert (report.sla["advice"].met, report.sla["advice"].total) == (1, 1)
    assert (report.sla["document_comments"].met, report.sla["document_comments"].total) == (0, 1)
    assert report.sla["not_joined"].total == 0 and report.sla["not_joined"].share is None
    assert (report.satisfaction_average, report.satisfaction_count) == (3.5, 2)
    assert report.mini_competitions_run == 1
    assert april.total == 2 and april.mini_competitions_run == 0
    assert none_yet.total == 0 and none_yet.by_month == () and none_yet.satisfaction_average is None
    document = report.as_json()
    assert (document["total"], document["by_category"]["advice"], document["mini_competitions_run"]) == (
        6,
        1,
        1,
    )
    rows = list(csv.reader(io.StringIO(to_csv(report, {"month": "Månad"}))))
    assert rows[0] == ["Månad", *CONTACT_CATEGORIES, "total"]
    assert rows[1] == ["2025-04", "1", "0", "0", "0", "1", "2"]


def test_contacts_of_another_organisation_are_not_counted(
    driver: ColdDriver, session_factory: Factory
) -> None:
    _triage(_contact(driver, "C-1"), "advice", "Cleaning DPS")
    elsewhere_id, here_id = _org_id(driver, "exempelby"), _org_id(driver, CPB)
    with session_factory() as s:
        elsewhere = contact_report(s, organisation_id=elsewhere_id, period=Period())
        here = contact_report(s, organisation_id=here_id, period=Period())
    assert (elsewhere.total, here.total) == (0, 1)


def _direct_procurement(driver: ColdDriver, clock: Clock) -> Run:
    """A Finnish direct procurement above the documentation threshold, ordered, not yet documented."""
    suppliers = [
        {"name": "Käännös Oy", "org_number": "1234567-1", "email": "a@kaannos.example"},
        {"name": "Kielipalvelu Oy", "org_number": "1234567-2", "email": "b@kieli.example"},
    ]
    run = driver.start("direct_procurement", org="esimerkkila", user="fi-requester")
    run.complete(
        "describe_need",
        user="fi-requester",
        data={
            "subject": "Translations",
            "description": "Translations of the annual report.",
            "cpv_code": "79530000-8",
            "category": "services",
            "value_excl_vat": 30000,
            "contract_months": 12,
            "option_months": 0,
            "utility_activity": False,
            "same_kind_spend_outside": 0,
            "framework_agreement_exists": False,
            "requester": "fi-requester",
            "participants": ["fi-requester"],
            "requester_email": "fi-requester@demo.example",
        },
    )
    run.complete("declare_conflict", user="fi-requester", data={"has_conflict": False, "details": ""})
    run.complete(
        "request_quotes",
        user="fi-buyer",
        data={
            "suppliers": suppliers,
            "request_text": "Please quote.",
            "quotes_requested_on": dt.date.today().isoformat(),
            "quote_deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat(timespec="seconds"),
            "fewer_quotes_justification": "Only two translation agencies work with this language pair.",
        },
    )
    clock.advance(days=8)
    driver.fire_due_timers()
    quotes = [
        {"supplier": s["name"], "org_number": s["org_number"], "price": p, "compliant": True, "score": sc}
        for s, p, sc in zip(suppliers, (29000, 27000), (60, 85), strict=True)
    ]
    run.complete("register_quotes", user="fi-buyer", data={"quotes": quotes})
    run.complete(
        "select_supplier",
        user="fi-buyer",
        data={"winner_org_number": "1234567-2", "justification": "Best score."},
    )
    run.complete(
        "approve",
        user="fi-area-head",
        data={"approved": True, "approval_comment": "", "approver_has_conflict": False},
    )
    run.complete(
        "place_order",
        user="fi-buyer",
        data={
            "order_number": "PO-1",
            "order_date": dt.date.today().isoformat(),
            "delivery_or_contract_period": "Within 4 weeks",
        },
    )
    assert run.open_tasks() == ["archive_documentation"]
    return run


def test_register_lists_the_procurement_with_its_documentation_duty(
    driver: ColdDriver, clock: Clock, session_factory: Factory
) -> None:
    run = _direct_procurement(driver, clock)
    ordered_on = dt.date.today()
    org, cpb = _org_id(driver, "esimerkkila"), _org_id(driver, CPB)
    with session_factory() as s:
        report = register_report(
            s, organisation_id=org, period=Period(), today=ordered_on + dt.timedelta(days=10)
        )
        late = register_report(
            s, organisation_id=org, period=Period(), today=ordered_on + dt.timedelta(days=35)
        )
        elsewhere = register_report(s, organisation_id=cpb, period=Period(), today=ordered_on)
    (row,) = report.rows
    assert row.instance_id == run.instance_id
    assert (row.subject, row.cpv_code, row.value, row.currency) == (
        "Translations",
        "79530000-8",
        Decimal(27000),
        "EUR",
    )
    assert (row.supplier, row.supplier_org_number) == ("Kielipalvelu Oy", "1234567-2")
    assert row.approver is not None and row.approver.startswith("fi-area-head")
    assert (row.outcome, row.documentation_required, row.documentation_complete) == ("ordered", True, None)
    assert row.documentation_due == ordered_on + dt.timedelta(days=30)
    assert row.days_left == 20
    assert late.rows[0].days_left == -5 and late.documentation_overdue == 1
    # The minimum record: buyer, how competition was sought, suppliers asked, tenders, winner's reason.
    assert row.buyer_name and row.buyer_org_number
    assert (row.competition_method, row.suppliers_asked, row.tenders_received) == (
        "written_quotation_requests",
        2,
        2,
    )
    assert row.suppliers_asked_names == "Käännös Oy (1234567-1); Kielipalvelu Oy (1234567-2)"
    assert (row.award_reason, row.estimated_value, row.contract_period) == (
        "Best score.",
        Decimal(30000),
        "Within 4 weeks",
    )
    assert (row.quotes_required, row.fewer_quotes) == (3, True)
    assert row.fewer_quotes_justification == "Only two translation agencies work with this language pair."
    assert row.conflict_declared is False
    assert elsewhere.rows == ()
    run.complete(
        "archive_documentation",
        user="fi-buyer",
        data={"documentation_complete": True, "archive_reference": "D 7"},
    )
    with session_factory() as s:
        documented = register_report(s, organisation_id=org, period=Period(), today=ordered_on)
    (done,) = documented.rows
    assert (done.documentation_complete, done.days_left) == (True, None)
    rows = list(csv.DictReader(io.StringIO(to_csv(documented))))
    assert rows[0]["supplier"] == "Kielipalvelu Oy" and rows[0]["value"] == "27000"
    assert rows[0]["documentation_complete"] == "true" and rows[0]["days_left"] == ""


def test_impact_report_per_call_off_and_agreement_with_the_follow_up(
    driver: ColdDriver, clock: Clock, session_factory: Factory
) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    run.complete(
        "define_call_off",
        user="se-requester",
        data={
            "call_off_ref": "MC-1",
            "subject": "Office cleaning",
            "estimated_value": 150000,
            "contract_months": 24,
            "requester_email": "se-requester@demo.example",
            "agreement": "Städtjänster ramavtal 2024",
            "lot": "Område 1 Exempelby",
            "region": "Exempelby",
        },
    )
    run.complete("score_stage_1", user="se-requester", data={"stage_1_scores": SCORES_1})
    run.complete(
        "place_direct_order",
        user="se-requester",
        data={
            "winner": {"name": "Rena Lokaler AB", "org_number": "556100-0001", "email": "a@rena.example"},
            "order_number": "PO-17",
            "order_date": dt.date.today().isoformat(),
            "contract_value": 148000,
        },
    )
    run.complete("record_impact", user="se-requester", data={"end_scores": SCORES_1})
    org = _org_id(driver, "exempelby")
    with session_factory() as s:
        (before,) = impact_report(s, organisation_id=org, period=Period()).rows
    # A direct order has no stage 2: its total is stage 1; the follow-up is not in yet.
    assert (before.stage1, before.stage2, before.total, before.follow_up) == (
        Decimal(15),
        None,
        Decimal(15),
        None,
    )
    clock.advance(days=366)
    driver.fire_due_timers()
    lower = {**SCORES_1, "sustainability": 1}
    run.complete("follow_up_impact", user="se-requester", data={"follow_up_scores": lower})
    assert run.status == "completed"
    with session_factory() as s:
        report = impact_report(s, organisation_id=org, period=Period())
    (row,) = report.rows
    (agreement,) = report.by_agreement
    # Sustainability weighs 3 in stage 1 (ImpactIndex), so one point less there is 12.
    assert row.follow_up == Decimal(12)
    assert (agreement.agreement, agreement.count, agreement.total, agreement.follow_up) == (
        "Städtjänster ramavtal 2024",
        1,
        Decimal(15),
        Decimal(12),
    )
    assert to_csv(report).splitlines()[1].endswith(",15,,15,12")


def test_goal_report_shows_each_quarter_and_the_assignments(
    driver: ColdDriver, clock: Clock, session_factory: Factory
) -> None:
    run = driver.start("goal_review", org="exempelby", user="se-buyer", data={"plan_year": 2025})
    own = {
        "goal_id": "OWN-1",
        "source": "own",
        "theme": 2,
        "title": "Every buyer trained",
        "level": "organisation",
        "indicator": "Share trained (%)",
        "baseline": "0 %",
        "target": "100 %",
        "owner": "se-buyer",
        "period_start": "2025-01-01",
        "period_end": "2025-12-31",
    }
    run.complete("select_goals", user="se-buyer", data={"goals": [own]})
    run.complete("schedule_goals", user="se-buyer", data={"schedule": []})
    run.complete(
        "approve_plan", user="se-director", data={"plan_decision": "approve", "approval_comments": ""}
    )
    assignment = {
        "goal_id": "OWN-1",
        "procurement_id": "DP-1",
        "lifecycle_phase": "planning",
        "task": "Train the buyers",
        "due_date": "2025-06-30",
    }
    run.complete("assign_goals", user="se-buyer", data={"assignments": [assignment]})
    # Approved at the end of April: too little of Q2 is left, so Q3 and Q4 are reported.
    assert run.data["quarter_numbers"] == [3, 4]
    driver.send_message(
        "goal_task_completed",
        {
            "goal_plan_ref": run.data["goal_plan_ref"],
            "goal_id": "OWN-1",
            "procurement_id": "DP-1",
            "source": "direct_procurement",
        },
        org="exempelby",
    )
    for end, (rag, percent) in zip(
        (dt.datetime(2025, 10, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC)),
        (("green", 30), ("amber", 45)),
        strict=True,
    ):
        clock.advance(seconds=(end - dt.datetime.now(dt.UTC)).total_seconds())
        driver.fire_due_timers()
        run.complete(
            "report_goal_status",
            user="se-buyer",
            data={"rag": rag, "percent_fulfilled": percent, "indicator_value": f"{percent} %", "comment": ""},
        )
        if run.open_tasks() == ["corrective_action"]:
            action = {
                "goal_id": "OWN-1",
                "action": "More courses",
                "responsible": "se-buyer",
                "due_date": "2025-12-31",
            }
            run.complete("corrective_action", user="se-director", data={"corrective_actions": [action]})
    org = _org_id(driver, "exempelby")
    with session_factory() as s:
        report = goal_report(
            s, organisation_id=org, period=Period(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        )
        other_year = goal_report(
            s, organisation_id=org, period=Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
        )
    (row,) = report.rows
    assert (row.year, row.theme, row.goal_id, row.goal) == ("2025", "2", "OWN-1", "Every buyer trained")
    assert {q: (s.status, s.fulfilled_percent) for q, s in row.quarters.items()} == {
        "Q3": ("green", Decimal(30)),
        "Q4": ("amber", Decimal(45)),
    }
    assert (row.assigned, row.done) == (1, 1)
    assert report.status_counts()["Q4"] == {"red": 0, "amber": 1, "green": 0}
    (table,) = report.table_rows()
    assert (table["Q3_status"], table["Q4_percent"], table["Q1_status"]) == ("green", Decimal(45), None)
    assert other_year.rows == ()
