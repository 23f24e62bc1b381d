"""Scenario tests of processes/customer_contact: every route, service-level timers, waiting and re-opening."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.processes.driver import Clock, Driver, EngineRun, Run

ORG = "yhteishankinnat"
CUSTOMER = "hankinnat@esimerkkila.demo.example"


def _contact(driver: Driver, ref: str = "C-2025-001") -> Run:
    payload = {
        "contact_ref": ref,
        "email": CUSTOMER,
        "name": "Maija Meikäläinen",
        "organisation": "Esimerkkilän kaupunki",
        "message": "May we add a requirement on eco-labelled detergents in our mini-competition?",
        "channel": "web",
    }
    (run,) = driver.send_message("contact_received", payload, org=ORG)
    assert run.open_tasks() == ["triage"]
    return run


def _triage(run: Run, category: str, *, has_joined: bool = True) -> None:
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


def _reply(run: Run, *, waiting: bool) -> None:
    run.complete(
        "reply_to_customer",
        user="cpb-support",
        data={"reply_text": "Here is our answer.", "waiting_for_customer": waiting},
    )


def _close(run: Run, **data: Any) -> None:
    run.complete("close_case", user="cpb-support", data=data)
    assert run.status == "completed"


def _due(run: Run, bpmn_id: str) -> dt.datetime | None:
    """The due date of the open task *bpmn_id* as the inbox shows it (None in memory, where no inbox is)."""
    if not isinstance(run, EngineRun):
        return None
    (row,) = run.task_rows(bpmn_id)
    assert row.due_at is not None, f"{bpmn_id} has no due date"
    return row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=dt.UTC)


def _mails_to(driver: Driver, to: str) -> list[str]:
    return [e["subject"] for e in driver.emails if e["to"] == to]


def test_advice_with_legal_review_escalates_when_overdue(driver: Driver, clock: Clock) -> None:
    run = _contact(driver)
    assert _mails_to(driver, CUSTOMER) == ["We have received your contact C-2025-001"]
    assert run.data["description"].startswith("May we add")
    _triage(run, "advice")
    # Two working days from Monday 3 March: due at the end of Wednesday, Helsinki time.
    assert (run.data["route"], run.data["sla_days"], run.data["sla_due"]) == (
        "advice",
        2,
        "2025-03-06T00:00:00+02:00",
    )
    assert _due(run, "give_advice") in (None, dt.datetime(2025, 3, 5, 22, 0, tzinfo=dt.UTC))
    assert run.open_tasks() == ["give_advice"]
    clock.advance(days=2, hours=12)
    driver.fire_due_timers()
    assert run.open_tasks() == ["give_advice"]
    clock.advance(hours=12)
    driver.fire_due_timers()
    assert run.open_tasks() == ["follow_up_overdue", "give_advice"]
    run.complete("follow_up_overdue", user="cpb-team-lead", data={"action": "Asked Anna to answer today."})
    run.complete(
        "give_advice",
        user="cpb-support",
        data={"advice": "Yes, within the DPS's environmental criteria.", "needs_legal_review": True},
    )
    run.complete("legal_review", user="cpb-lawyer", data={"legal_comment": "Agreed; cite the criteria."})
    _reply(run, waiting=False)
    assert "Re: your contact C-2025-001" in _mails_to(driver, CUSTOMER)
    _close(run, satisfaction_rating=5, closing_note="")
    assert run.data["satisfaction_rating"] == 5


def test_document_comments_wait_for_the_customer_who_reopens(driver: Driver, clock: Clock) -> None:
    run = _contact(driver, "C-2025-002")
    _triage(run, "document_comments")
    assert run.data["sla_due"] == "2025-03-11T00:00:00+02:00", "five working days skip the weekend"
    clock.advance(days=8)
    driver.fire_due_timers()
    run.complete("follow_up_overdue", user="cpb-team-lead", data={"action": "Reassigned."})
    checklist = {
        "all_capable_suppliers_invited": True,
        "criteria_within_framework": True,
        "weights_stated": True,
        "deadline_reasonable": False,
        "terms_within_framework": True,
        "voluntary_standstill": True,
        "impact_choices": False,
    }
    run.complete(
        "comment_documents",
        user="cpb-category-manager",
        data={"checklist": checklist, "comments": "Extend the tender period to at least 10 days."},
    )
    _reply(run, waiting=True)
    assert run.open_tasks() == ["await_customer"]
    (reopened,) = driver.send_message(
        "customer_reply", {"contact_ref": "C-2025-002", "message": "Thanks! One more question."}, org=ORG
    )
    assert reopened.open_tasks() == ["triage"] and run.open_tasks() == ["triage"]
    assert run.data["replies"] == ["Thanks! One more question."]
    _triage(run, "other")
    run.complete("handle_other", user="cpb-category-manager", data={"resolution": "Answered by phone."})
    _reply(run, waiting=False)
    _close(run, satisfaction_rating=4)


def test_waiting_for_the_customer_auto_closes(driver: Driver, clock: Clock) -> None:
    run = _contact(driver, "C-2025-003")
    other = _contact(driver, "C-2025-004")
    _triage(run, "advice")
    run.complete(
        "give_advice",
        user="cpb-support",
        data={"advice": "See clause 4.2 of the DPS.", "needs_legal_review": False},
    )
    _reply(run, waiting=True)
    # Ten working days from Monday 3 March end on Monday 17 March.
    assert run.data["auto_close_at"] == "2025-03-18T00:00:00+02:00"
    clock.advance(days=14)
    driver.fire_due_timers()
    assert run.open_tasks() == ["await_customer"], "still waiting on the tenth working day"
    clock.advance(days=1)
    driver.fire_due_timers()
    assert run.open_tasks() == ["close_case"]
    assert run.data["closed_without_reply"] is True
    _close(run)
    assert other.open_tasks() == ["triage"], "another contact is not touched"


def test_answer_recorded_by_the_support_specialist_reopens(driver: Driver, clock: Clock) -> None:
    run = _contact(driver, "C-2025-007")
    _triage(run, "advice")
    run.complete(
        "give_advice",
        user="cpb-support",
        data={"advice": "Use the DPS's lot 2.", "needs_legal_review": False},
    )
    _reply(run, waiting=True)
    run.complete(
        "await_customer", user="cpb-support", data={"customer_reply": {"message": "Called: lot 3 instead?"}}
    )
    assert run.open_tasks() == ["triage"]
    assert run.data["replies"] == ["Called: lot 3 instead?"]
    _triage(run, "advice", has_joined=False)
    _close(run, satisfaction_rating=2)


def test_joint_mini_competition_kick_off(driver: Driver, clock: Clock) -> None:
    run = _contact(driver, "C-2025-005")
    _triage(run, "mini_competition")
    assert run.data["sla_days"] == 10
    clock.advance(days=15)
    driver.fire_due_timers()
    assert run.open_tasks() == ["follow_up_overdue", "plan_mini_competition"]
    run.complete("follow_up_overdue", user="cpb-team-lead", data={"action": "Kick-off booked."})
    run.complete(
        "plan_mini_competition",
        user="cpb-category-manager",
        data={
            "kickoff_date": "2025-03-20",
            "plan": "We draft the invitation, the customer sets the weights.",
        },
    )
    assert run.open_tasks() == ["reply_to_customer"]
    _reply(run, waiting=False)
    _close(run, satisfaction_rating=3)


def test_not_joined_gets_instructions(driver: Driver, clock: Clock) -> None:
    run = _contact(driver, "C-2025-006")
    _triage(run, "advice", has_joined=False)
    assert run.data["route"] == "not_joined"
    assert "How to join the agreement Cleaning services DPS" in _mails_to(driver, CUSTOMER)
    assert run.open_tasks() == ["close_case"]
    _close(run)


def test_contact_taken_by_phone_is_registered_by_hand(driver: Driver) -> None:
    contact = {
        "email": CUSTOMER,
        "name": "Maija Meikäläinen",
        "message": "Which lot covers Espoo?",
        "channel": "phone",
    }
    run = driver.start("customer_contact", org=ORG, user="cpb-support", data={"contact": contact})
    assert run.open_tasks() == ["triage"]
    assert run.data["contact_ref"].startswith("TEL-") and run.data["channel"] == "phone"
    assert _mails_to(driver, CUSTOMER) == [f"We have received your contact {run.data['contact_ref']}"]


def test_service_levels_skip_public_holidays_and_count_from_receipt(driver: Driver, clock: Clock) -> None:
    # Received on Maundy Thursday, 17 April 2025; Good Friday and Easter Monday are not worked in Finland.
    clock.advance(days=45)
    run = _contact(driver, "C-2025-010")
    assert run.data["received_on"] == "2025-04-17"
    assert run.data["triage_due"] == "2025-04-23T00:00:00+03:00", "triage: one working day, Tuesday 22 April"
    assert _due(run, "triage") in (None, dt.datetime(2025, 4, 22, 21, 0, tzinfo=dt.UTC))
    # Triaged only after Easter: the service level still counts from the day of receipt.
    clock.advance(days=5)
    _triage(run, "advice")
    assert run.data["sla_due"] == "2025-04-24T00:00:00+03:00", "two working days: Tuesday and Wednesday"
    assert _due(run, "give_advice") in (None, dt.datetime(2025, 4, 23, 21, 0, tzinfo=dt.UTC))
    clock.advance(days=1)  # Wednesday 23 April, 08:00 UTC
    driver.fire_due_timers()
    assert run.open_tasks() == ["give_advice"]
    clock.advance(days=1)
    driver.fire_due_timers()
    assert run.open_tasks() == ["follow_up_overdue", "give_advice"]


def test_other_questions_and_legal_review_have_service_levels(driver: Driver, clock: Clock) -> None:
    other = _contact(driver, "C-2025-011")
    _triage(other, "other")
    # Five working days from Monday 3 March.
    assert other.data["sla_due"] == "2025-03-11T00:00:00+02:00"
    assert _due(other, "handle_other") in (None, dt.datetime(2025, 3, 10, 22, 0, tzinfo=dt.UTC))
    advised = _contact(driver, "C-2025-012")
    _triage(advised, "advice")
    advised.complete(
        "give_advice",
        user="cpb-support",
        data={"advice": "The DPS allows it within its criteria.", "needs_legal_review": True},
    )
    # Advice with a lawyer's review: five working days in all from receipt.
    assert advised.data["legal_review_due"] == "2025-03-11T00:00:00+02:00"
    assert _due(advised, "legal_review") in (None, dt.datetime(2025, 3, 10, 22, 0, tzinfo=dt.UTC))
    clock.advance(days=7)  # Monday 10 March, 08:00 UTC: both still in time
    driver.fire_due_timers()
    assert other.open_tasks() == ["handle_other"] and advised.open_tasks() == ["legal_review"]
    clock.advance(days=1)
    driver.fire_due_timers()
    assert other.open_tasks() == ["follow_up_overdue", "handle_other"]
    assert advised.open_tasks() == ["follow_up_overdue", "legal_review"]
    advised.complete("legal_review", user="cpb-lawyer", data={"legal_comment": "Agreed, with a caveat."})
    assert _due(advised, "reply_to_customer") in (None, dt.datetime(2025, 3, 10, 22, 0, tzinfo=dt.UTC))
    other.complete(
        "handle_other", user="cpb-category-manager", data={"resolution": "Forwarded to the DPS team."}
    )
    assert _due(other, "reply_to_customer") in (None, dt.datetime(2025, 3, 10, 22, 0, tzinfo=dt.UTC))


def test_a_reopened_case_starts_its_round_afresh(driver: Driver, clock: Clock) -> None:
    run = _contact(driver, "C-2025-013")
    _triage(run, "advice")
    run.complete(
        "give_advice", user="cpb-support", data={"advice": "Use lot 2.", "needs_legal_review": False}
    )
    _reply(run, waiting=True)
    clock.advance(days=4)  # Friday 7 March
    driver.send_message("customer_reply", {"contact_ref": "C-2025-013", "message": "And lot 3?"}, org=ORG)
    assert run.open_tasks() == ["triage"]
    data = run.data
    # The second reply form must not arrive with the first round's answer ticked or filled in.
    assert [data[k] for k in ("waiting_for_customer", "reply_text", "advice", "needs_legal_review")] == [
        None,
        None,
        None,
        None,
    ]
    assert data["received_on"] == "2025-03-07"
    _triage(run, "advice")
    # Two working days from the reply on Friday: Monday and Tuesday.
    assert run.data["sla_due"] == "2025-03-12T00:00:00+02:00"
    run.complete(
        "give_advice", user="cpb-support", data={"advice": "Lot 3 too.", "needs_legal_review": False}
    )
    _reply(run, waiting=False)
    _close(run, satisfaction_rating=5)
