"""Scenario tests of processes/mini_competition: call-off method, impact index, tenders, award, standstill."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import engine
from tests.processes.driver import Clock, Driver, EngineRun, MemoryRun, Run, ScenarioError

CPB = "yhteishankinnat"
CUSTOMER = "hankinnat@esimerkkila.demo.example"
SCORES_1 = {"sustainability": 2, "innovation": 1, "cost_savings": 2, "quality": 1, "competence": 1}
SCORES_2 = {"sustainability": 2, "innovation": 2, "cost_savings": 0, "quality": 1, "competence": 1}
SE_AGREEMENT = {"agreement": "Städtjänster ramavtal 2024", "lot": "Område 1 Exempelby", "region": "Exempelby"}
FI_AGREEMENT = {"agreement": "Siivouspalvelut DPS", "lot": "Osa-alue 2 Uusimaa", "region": "Uusimaa"}


def _form_data(run: Run, bpmn_id: str) -> list[dict[str, Any]]:
    """The data each open *bpmn_id* task holds itself: what its form starts from."""
    if isinstance(run, MemoryRun):
        return [dict(t.data) for t in run._ready(bpmn_id)]
    assert isinstance(run, EngineRun)
    with run.driver.session_factory() as s:
        rows = [t for t in engine.list_tasks(s, instance_id=run.instance_id) if t.bpmn_id == bpmn_id]
        return [engine.task_data(s, t) for t in rows]


def _days(n: int) -> str:
    return (dt.date.today() + dt.timedelta(days=n)).isoformat()


def _define(run: Run, user: str, **changes: Any) -> None:
    run.complete(
        "define_call_off",
        user=user,
        data={
            "call_off_ref": "MC-2025-001",
            "subject": "Office cleaning",
            "estimated_value": 900000,
            "contract_months": 24,
            "requester_email": f"{user}@demo.example",
            **SE_AGREEMENT,
            **changes,
        },
    )
    assert run.open_tasks() == ["score_stage_1"]
    run.complete(
        "score_stage_1", user=user, data={"stage_1_scores": SCORES_1, "stage_1_note": "DPS criteria"}
    )


def _invite(run: Run, user: str, team: list[str], **changes: Any) -> None:
    run.complete(
        "prepare_invitation",
        user=user,
        data={
            "criteria": [{"criterion": "Price", "weight": 60}, {"criterion": "Quality", "weight": 40}],
            "question_deadline": _days(7),
            "tender_deadline": _days(14),
            "invitation_text": "Please tender for office cleaning as described in the attached documents.",
            "stage_2_scores": SCORES_2,
            "impact_choices": "Eco-labelled detergents; apprenticeships.",
            "voluntary_standstill": False,
            "document_review": False,
            "evaluation_team": team,
            **changes,
        },
    )


def _declare_none(run: Run, task: str, *users: str) -> None:
    for user in users:
        run.complete(task, user=user, data={"has_conflict": False, "details": ""})


def _confirm(run: Run, user: str) -> None:
    choices = run.data["invitee_choices"]
    assert all(c["invite"] for c in choices), (
        "every capable supplier is invited unless left out with a reason"
    )
    run.complete("confirm_invitees", user=user, data={"invitee_choices": choices})
    assert run.open_tasks() == [] and run.status == "waiting"
    assert run.data["invitees"] == run.data["capable_suppliers"] and run.data["not_invited"] == []


def _tender(supplier: dict[str, str], price: float, valid: bool = True) -> dict[str, Any]:
    return {
        "supplier": supplier["name"],
        "org_number": supplier["org_number"],
        "email": supplier["email"],
        "price": price,
        "valid": valid,
        "invalid_reason": "" if valid else "References missing",
    }


def _open(driver: Driver, clock: Clock, run: Run, user: str, tenders: list[dict[str, Any]]) -> None:
    closes = dt.datetime.fromisoformat(run.data["tender_closes_at"])
    clock.advance(seconds=(closes - dt.datetime.now(dt.UTC)).total_seconds() - 3600)
    driver.fire_due_timers()
    assert run.open_tasks() == [], "tenders stay sealed until the deadline"
    clock.advance(hours=2)
    driver.fire_due_timers()
    assert run.open_tasks() == ["open_tenders"]
    run.complete(
        "open_tenders", user=user, data={"opened_on": dt.date.today().isoformat(), "tenders": tenders}
    )


def _award(
    run: Run,
    evaluator: str,
    decision_maker: str,
    scores: dict[str, float],
    winner: str,
    channel: str = "electronic",
) -> None:
    run.complete(
        "evaluate_tenders",
        user=evaluator,
        data={"evaluation": [{"org_number": k, "score": v} for k, v in scores.items()]},
    )
    run.complete(
        "award_decision",
        user=decision_maker,
        data={
            "winner_org_number": winner,
            "award_reasoning": "Best weighted score on price and quality.",
            "award_notice_channel": channel,
        },
    )


def _subjects(driver: Driver, prefix: str) -> list[str]:
    return sorted(e["to"] for e in driver.emails if e["subject"].startswith(prefix))


def _contract_and_impact(run: Run, user: str) -> None:
    assert run.open_tasks() == ["sign_contract"]
    run.complete(
        "sign_contract",
        user=user,
        data={"contract_number": "AV-2025-17", "signed_on": dt.date.today().isoformat()},
    )
    run.complete("record_impact", user=user, data={"end_scores": SCORES_2, "impact_note": "As tendered."})
    assert run.open_tasks() == [] and run.status == "waiting"


def _mini_competitions(driver: Driver) -> list[Run]:
    return driver.runs_of("mini_competition")


def test_joint_dps_call_off_requested_by_customer_contact(driver: Driver, clock: Clock) -> None:
    contact = {
        "contact_ref": "C-2025-010",
        "email": CUSTOMER,
        "organisation": "Esimerkkilän kaupunki",
        "message": "Please run our cleaning mini-competition with us.",
    }
    (case,) = driver.send_message("contact_received", contact, org=CPB)
    case.complete(
        "triage",
        user="cpb-support",
        data={
            "customer_org_number": "0123456-7",
            "has_joined": True,
            "agreement": "Cleaning services DPS",
            "lot": "Lot 2 Uusimaa",
            "category": "mini_competition",
            "language": "fi",
            "urgency": "normal",
        },
    )
    assert _mini_competitions(driver) == []
    case.complete(
        "plan_mini_competition",
        user="cpb-category-manager",
        data={"kickoff_date": "2025-03-10", "plan": "Run it jointly."},
    )
    (run,) = _mini_competitions(driver)
    assert run.open_tasks() == ["define_call_off"]
    started = run.data
    assert (started["origin"], started["contact_ref"], started["agreement"], started["lot"]) == (
        "customer_contact",
        "C-2025-010",
        "Cleaning services DPS",
        "Lot 2 Uusimaa",
    )
    assert started["requester_email"] == CUSTOMER

    buyer = "cpb-customer-buyer"
    _define(
        run,
        buyer,
        call_off_ref="MC-2025-010",
        agreement="Cleaning services DPS",
        lot="Lot 2 Uusimaa",
        region="Uusimaa",
        estimated_value=250000,
        requester_email=CUSTOMER,
    )
    data = run.data
    assert (data["jurisdiction"], data["currency"], data["call_off_method"]) == (
        "FI",
        "EUR",
        "mini_competition",
    )
    assert "DPS" in data["call_off_reason"]
    assert data["impact_stage_1"]["index"] == 15 and data["impact_stage_1"]["max"] == 20
    assert data["impact_stage_1"]["weights"] == {
        "sustainability": 3,
        "innovation": 1,
        "cost_savings": 2,
        "quality": 2,
        "competence": 2,
    }

    _invite(
        run,
        buyer,
        ["cpb-category-manager", "cpb-support"],
        question_deadline=_days(3),
        tender_deadline=_days(5),
        document_review=True,
    )
    data = run.data
    assert (data["impact_stage_2"]["index"], data["impact_total"]) == (14, {"index": 29, "max": 40})
    # A DPS tender period is at least ten days: the deadline given (five days) is moved.
    assert (data["tender_period_min_days"], data["tender_deadline_extended"]) == (10, True)
    assert data["tender_deadline"] == "2025-03-13"
    # The end of the deadline day in Helsinki (EET in March), not in UTC.
    assert data["tender_closes_at"] == "2025-03-13T23:59:59+02:00"
    assert run.open_tasks() == ["review_documents"]
    run.complete(
        "review_documents",
        user="cpb-category-manager",
        data={
            "review_checklist": {
                "all_capable_suppliers_invited": True,
                "criteria_within_framework": True,
                "weights_stated": True,
                "deadline_reasonable": True,
                "terms_within_framework": True,
                "voluntary_standstill": True,
                "impact_choices": True,
            },
            "review_comments": "Fine.",
        },
    )
    assert [s["name"] for s in run.data["capable_suppliers"]] == [
        "Puhdas Oy",
        "Kiilto Siivous Oy",
        "Siisti Koti ja Toimisto Oy",
    ]
    assert run.open_tasks() == ["declare_conflict", "declare_conflict"]
    _declare_none(run, "declare_conflict", "cpb-category-manager")
    run.complete(
        "declare_conflict",
        user="cpb-support",
        data={"has_conflict": True, "details": "I used to work at Puhdas Oy."},
    )
    assert run.open_tasks() == ["replace_members"]
    run.complete("replace_members", user=buyer, data={"replacements": ["cpb-team-lead"]})
    _declare_none(run, "declare_replacements", "cpb-team-lead")
    data = run.data
    assert data["evaluation_team"] == ["cpb-category-manager", "cpb-team-lead"]
    assert [(d["participant"], d["has_conflict"]) for d in data["coi_declarations"]] == [
        ("cpb-category-manager", False),
        ("cpb-support", True),
        ("cpb-team-lead", False),
    ]

    _confirm(run, "cpb-category-manager")
    invitees = run.data["invitees"]
    assert _subjects(driver, "Invitation to tender: Office cleaning (MC-2025-010)") == sorted(
        s["email"] for s in invitees
    )

    question = {"call_off_ref": "MC-2025-010", "email": invitees[0]["email"], "question": "Windows included?"}
    driver.send_message("supplier_question", question, org=CPB)
    assert run.open_tasks() == ["answer_question"]
    (asked,) = _form_data(run, "answer_question")
    assert asked["question"]["question"] == "Windows included?", "the answer form shows the question"
    with pytest.raises((ScenarioError, engine.NotFoundError)):
        driver.send_message("supplier_question", {**question, "call_off_ref": "MC-OTHER"}, org=CPB)
    run.complete("answer_question", user="cpb-category-manager", data={"answer": "Yes, twice a year."})
    assert _subjects(driver, "Questions and answers: Office cleaning") == sorted(s["email"] for s in invitees)
    assert run.open_tasks() == []
    driver.send_message("supplier_question", {**question, "question": "Weekends too?"}, org=CPB)
    assert run.open_tasks() == ["answer_question"], "a second question gets its own answer"
    (asked,) = _form_data(run, "answer_question")
    assert asked["question"]["question"] == "Weekends too?"
    assert "answer" not in asked, "the second answer form does not arrive with the first answer"
    run.complete("answer_question", user="cpb-category-manager", data={"answer": "No."})

    clock.advance(days=4)
    driver.send_message("supplier_question", {**question, "question": "Parking?"}, org=CPB)
    assert run.open_tasks() == [], "a question after the question deadline is not answered"
    assert _subjects(driver, "Question not answered: MC-2025-010") == [invitees[0]["email"]]

    _open(
        driver,
        clock,
        run,
        "cpb-category-manager",
        [
            _tender(invitees[0], 240000),
            _tender(invitees[1], 230000),
            _tender(invitees[2], 200000, valid=False),
        ],
    )
    _award(run, "cpb-category-manager", buyer, {"1234567-1": 82, "1234567-2": 88}, "1234567-2")
    data = run.data
    assert [t["org_number"] for t in data["ranking"]] == ["1234567-2", "1234567-1"]
    assert (data["winner"]["supplier"], data["contract_value"], data["outcome"]) == (
        "Kiilto Siivous Oy",
        230000,
        "awarded",
    )
    assert (data["standstill_days"], data["standstill_basis"]) == (14, "Hankintalaki 129 §")
    assert _subjects(driver, "Award decision: Office cleaning") == sorted(s["email"] for s in invitees)

    driver.send_message(
        "review_requested",
        {"call_off_ref": "MC-2025-010", "applicant": "Puhdas Oy", "grounds": "Quality scored wrongly."},
        org=CPB,
    )
    assert run.open_tasks() == ["handle_review_request"]
    run.complete(
        "handle_review_request",
        user="cpb-lawyer",
        data={"legal_assessment": "The evaluation follows the criteria.", "review_outcome": "proceed"},
    )
    _contract_and_impact(run, buyer)
    clock.advance(days=364)
    driver.fire_due_timers()
    assert run.open_tasks() == []
    clock.advance(days=2)
    driver.fire_due_timers()
    assert run.open_tasks() == ["follow_up_impact"]
    run.complete(
        "follow_up_impact", user=buyer, data={"follow_up_scores": SCORES_2, "follow_up_note": "Kept."}
    )
    assert run.status == "completed"


def test_framework_direct_order_by_ranking(driver: Driver, clock: Clock) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    assert run.open_tasks() == ["define_call_off"]
    # A limit typed into the form counts for nothing: the agreement's call-off terms set it.
    _define(run, "se-requester", estimated_value=150000, direct_order_limit=1)
    data = run.data
    assert (data["origin"], data["contact_ref"], data["call_off_method"]) == ("manual", None, "direct_order")
    assert (data["agreement_type"], data["direct_order_limit"]) == ("framework", 500000)
    assert run.open_tasks() == ["place_direct_order"]
    run.complete(
        "place_direct_order",
        user="se-requester",
        data={
            "winner": {
                "name": "Rena Lokaler AB",
                "org_number": "556100-0001",
                "email": "anbud@renalokaler.example",
            },
            "order_number": "PO-17",
            "order_date": dt.date.today().isoformat(),
            "contract_value": 148000,
        },
    )
    assert run.open_tasks() == ["record_impact"]
    data = run.data
    assert data["outcome"] == "direct_order" and data["impact_stage_1"]["index"] == 15
    assert "impact_stage_2" not in data
    run.complete("record_impact", user="se-requester", data={"end_scores": SCORES_1})
    clock.advance(days=366)
    driver.fire_due_timers()
    run.complete("follow_up_impact", user="se-requester", data={"follow_up_scores": SCORES_1})
    assert run.status == "completed"


def _se_competition(driver: Driver, clock: Clock, **invitation: Any) -> Run:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    _define(run, "se-requester")
    assert run.data["call_off_method"] == "mini_competition"
    _invite(run, "se-requester", ["se-buyer"], **invitation)
    data = run.data
    assert data["tender_deadline_extended"] is False and data["tender_deadline"] == _days(14)
    _declare_none(run, "declare_conflict", "se-buyer")
    assert run.open_tasks() == ["confirm_invitees"], "no review asked for, no conflict declared"
    _confirm(run, "se-buyer")
    return run


def test_voluntary_standstill_runs_out_before_the_contract(driver: Driver, clock: Clock) -> None:
    run = _se_competition(driver, clock, voluntary_standstill=True)
    suppliers = run.data["invitees"]
    _open(driver, clock, run, "se-buyer", [_tender(s, 800000 + i) for i, s in enumerate(suppliers)])
    _award(
        run,
        "se-buyer",
        "se-unit-head",
        {"556100-0001": 70, "556100-0002": 75, "556100-0003": 60},
        "556100-0002",
    )
    assert (run.data["standstill_days"], run.data["standstill_basis"]) == (10, "Voluntary standstill")
    clock.advance(days=10)
    driver.fire_due_timers()
    assert run.open_tasks() == [], "the last standstill day is not over"
    clock.advance(days=1)
    driver.fire_due_timers()
    _contract_and_impact(run, "se-requester")


def test_re_run_after_no_valid_tender_then_award_without_standstill(driver: Driver, clock: Clock) -> None:
    run = _se_competition(driver, clock)
    suppliers = run.data["invitees"]
    _open(driver, clock, run, "se-buyer", [_tender(suppliers[0], 990000, valid=False)])
    assert run.open_tasks() == ["no_valid_tenders"]
    run.complete(
        "no_valid_tenders", user="se-requester", data={"next_step": "rerun", "next_step_reason": "Wider."}
    )
    assert run.open_tasks() == ["prepare_invitation"]
    assert run.data["tender_round"] == 2
    _invite(run, "se-requester", ["se-buyer"], question_deadline=_days(5), tender_deadline=_days(12))
    _declare_none(run, "declare_conflict", "se-buyer")
    _confirm(run, "se-buyer")
    assert len(_subjects(driver, "Invitation to tender: Office cleaning")) == 2 * len(suppliers)
    _open(driver, clock, run, "se-buyer", [_tender(suppliers[1], 850000)])
    _award(run, "se-buyer", "se-unit-head", {"556100-0002": 80}, "556100-0002")
    assert (run.data["standstill_days"], run.data["tender_round"]) == (0, 2)
    _contract_and_impact(run, "se-requester")
    assert [d["tender_round"] for d in run.data["coi_declarations"]] == [1, 2]


def _fi_dps(driver: Driver, clock: Clock) -> Run:
    run = driver.start("mini_competition", org="esimerkkila", user="fi-requester")
    _define(run, "fi-requester", **FI_AGREEMENT)
    _invite(run, "fi-requester", ["fi-buyer"])
    _declare_none(run, "declare_conflict", "fi-buyer")
    _confirm(run, "fi-buyer")
    return run


def test_a_re_run_is_bounded_by_the_round_limit(driver: Driver, clock: Clock) -> None:
    run = _fi_dps(driver, clock)
    for round_ in (1, 2):
        _open(driver, clock, run, "fi-buyer", [])
        assert run.data["tender_round"] == round_
        assert "next_step" not in run.data, "the decision form does not arrive with last round's choice"
        run.complete(
            "no_valid_tenders", user="fi-requester", data={"next_step": "rerun", "next_step_reason": "Again"}
        )
        if round_ == 1:
            _invite(run, "fi-requester", ["fi-buyer"])
            _declare_none(run, "declare_conflict", "fi-buyer")
            _confirm(run, "fi-buyer")
    assert run.status == "completed", "the second round was the last one allowed"
    assert _subjects(driver, "Cancelled: Office cleaning") == sorted(s["email"] for s in run.data["invitees"])


def test_cancelled_when_no_valid_tender(driver: Driver, clock: Clock) -> None:
    run = _fi_dps(driver, clock)
    _open(driver, clock, run, "fi-buyer", [])
    run.complete(
        "no_valid_tenders", user="fi-requester", data={"next_step": "cancel", "next_step_reason": "No need."}
    )
    assert run.status == "completed" and run.data["outcome"] == "cancelled"
    assert len(_subjects(driver, "Cancelled: Office cleaning")) == 2


def test_review_request_upheld_cancels_the_award(driver: Driver, clock: Clock) -> None:
    run = _fi_dps(driver, clock)
    suppliers = run.data["invitees"]
    _open(driver, clock, run, "fi-buyer", [_tender(s, 100000 + i) for i, s in enumerate(suppliers)])
    _award(run, "fi-buyer", "fi-unit-head", {"1234567-1": 90, "1234567-2": 70}, "1234567-1")
    assert run.data["standstill_days"] == 14
    driver.send_message(
        "review_requested",
        {"call_off_ref": "MC-2025-001", "applicant": "Kiilto Siivous Oy", "grounds": "Price wrongly scored."},
        org="esimerkkila",
    )
    run.complete(
        "handle_review_request",
        user="fi-lawyer",
        data={"legal_assessment": "The evaluation breached the criteria.", "review_outcome": "cancel"},
    )
    assert run.status == "completed" and run.data["outcome"] == "cancelled"
    assert len(_subjects(driver, "Cancelled: Office cleaning")) == 2
    clock.advance(days=15)
    driver.fire_due_timers()
    assert run.open_tasks() == [] and run.status == "completed"


def test_a_limit_typed_into_the_form_does_not_allow_a_direct_order(driver: Driver, clock: Clock) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    _define(run, "se-requester", estimated_value=600000, direct_order_limit=10**9, agreement_type="framework")
    data = run.data
    assert (data["direct_order_limit"], data["call_off_method"]) == (500000, "mini_competition")
    assert run.open_tasks() == ["prepare_invitation"]


def test_an_agreement_without_call_off_terms_stops_the_case(driver: Driver, clock: Clock) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    with pytest.raises(Exception, match="Okänt ramavtal has no call-off terms in the parameter"):
        _define(run, "se-requester", agreement="Okänt ramavtal")
    assert run.open_tasks() == []


def test_a_capable_supplier_is_left_out_only_with_a_reason(driver: Driver, clock: Clock) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    _define(run, "se-requester")
    _invite(run, "se-requester", ["se-buyer"])
    _declare_none(run, "declare_conflict", "se-buyer")
    choices = run.data["invitee_choices"]
    assert [(c["name"], c["invite"]) for c in choices] == [
        ("Rena Lokaler AB", True),
        ("Städkompaniet AB", True),
        ("Glans Service AB", True),
    ]
    dropped = [dict(c, invite=index != 1) for index, c in enumerate(choices)]
    with pytest.raises(engine.FormValidationError) as refused:
        run.complete("confirm_invitees", user="se-buyer", data={"invitee_choices": dropped})
    assert refused.value.errors == {"invitee_choices/1/reason_not_invited": ["This field is required."]}
    nobody = [dict(c, invite=False, reason_not_invited="Cannot perform in this region.") for c in choices]
    with pytest.raises(engine.FormValidationError) as refused:
        run.complete("confirm_invitees", user="se-buyer", data={"invitee_choices": nobody})
    assert refused.value.errors == {"invitee_choices": ["None of the rows is chosen."]}
    assert run.open_tasks() == ["confirm_invitees"]

    reason = "Its framework agreement is suspended since 1 March 2025."
    dropped[1]["reason_not_invited"] = reason
    # A row the submission lost (the last one here) is no reason to leave a supplier out: it is invited.
    run.complete("confirm_invitees", user="se-buyer", data={"invitee_choices": dropped[:2]})
    data = run.data
    assert [s["name"] for s in data["invitees"]] == ["Rena Lokaler AB", "Glans Service AB"]
    assert data["not_invited"] == [
        {
            "name": "Städkompaniet AB",
            "org_number": "556100-0002",
            "email": "offert@stadkompaniet.example",
            "reason": reason,
        }
    ]
    assert _subjects(driver, "Invitation to tender") == [
        "anbud@glansservice.example",
        "anbud@renalokaler.example",
    ]


def test_criteria_weights_must_add_up_to_100(driver: Driver, clock: Clock) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    _define(run, "se-requester")
    too_much = [{"criterion": "Price", "weight": 60}, {"criterion": "Quality", "weight": 60}]
    with pytest.raises(engine.FormValidationError) as refused:
        _invite(run, "se-requester", ["se-buyer"], criteria=too_much)
    assert refused.value.errors == {"criteria": ["The rows must add up to 100; they add up to 120."]}
    assert run.open_tasks() == ["prepare_invitation"]
    _invite(
        run,
        "se-requester",
        ["se-buyer"],
        criteria=[{"criterion": "Price", "weight": 70.5}, {"criterion": "Quality", "weight": 29.5}],
    )
    assert run.open_tasks() == ["declare_conflict"]


def test_a_voluntary_standstill_is_15_days_when_the_decision_is_not_sent_electronically(
    driver: Driver, clock: Clock
) -> None:
    run = _se_competition(driver, clock, voluntary_standstill=True)
    suppliers = run.data["invitees"]
    _open(driver, clock, run, "se-buyer", [_tender(s, 800000 + i) for i, s in enumerate(suppliers)])
    _award(run, "se-buyer", "se-unit-head", {"556100-0001": 70, "556100-0002": 75}, "556100-0002", "other")
    data = run.data
    assert (data["award_notice_channel"], data["standstill_days"]) == ("other", 15)
    assert data["standstill_basis"] == "Voluntary standstill"
    # The last standstill day ends at midnight in Stockholm, summer time by then.
    assert data["standstill_ends_at"] == f"{data['standstill_ends_on']}T23:59:59+02:00"
    clock.advance(days=15)
    driver.fire_due_timers()
    assert run.open_tasks() == [], "the last standstill day is not over"
    clock.advance(days=1)
    driver.fire_due_timers()
    _contract_and_impact(run, "se-requester")


def test_a_finnish_dps_award_sent_by_letter_waits_for_its_deemed_receipt(
    driver: Driver, clock: Clock
) -> None:
    run = _fi_dps(driver, clock)
    suppliers = run.data["invitees"]
    _open(driver, clock, run, "fi-buyer", [_tender(s, 100000 + i) for i, s in enumerate(suppliers)])
    _award(run, "fi-buyer", "fi-unit-head", {"1234567-1": 90, "1234567-2": 70}, "1234567-1", "other")
    data = run.data
    assert (data["standstill_days"], data["standstill_basis"]) == (21, "Hankintalaki 129 §")
    clock.advance(days=21)
    driver.fire_due_timers()
    assert run.open_tasks() == []
    clock.advance(days=1)
    driver.fire_due_timers()
    assert run.open_tasks() == ["sign_contract"]


def test_the_tender_deadline_is_the_end_of_the_day_in_the_organisations_time_zone(
    driver: Driver, clock: Clock
) -> None:
    run = _se_competition(driver, clock)
    deadline = dt.date.fromisoformat(_days(14))
    assert run.data["time_zone"] == "Europe/Stockholm"
    assert run.data["tender_closes_at"] == f"{deadline.isoformat()}T23:59:59+01:00"
    # 22:30 UTC on the deadline day is 23:30 in Stockholm: tenders still arrive.
    at = dt.datetime.combine(deadline, dt.time(22, 30), dt.UTC)
    clock.advance(seconds=(at - dt.datetime.now(dt.UTC)).total_seconds())
    driver.fire_due_timers()
    assert run.open_tasks() == []
    # 23:01 UTC, still the deadline day in UTC, is past midnight in Stockholm: the tender period is over.
    clock.advance(minutes=31)
    driver.fire_due_timers()
    assert run.open_tasks() == ["open_tenders"]


def test_a_deadline_after_the_change_to_summer_time_closes_at_summer_time(
    driver: Driver, clock: Clock
) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    _define(run, "se-requester")
    _invite(run, "se-requester", ["se-buyer"], question_deadline="2025-03-25", tender_deadline="2025-04-01")
    assert run.data["tender_closes_at"] == "2025-04-01T23:59:59+02:00"


def test_a_tender_deadline_in_the_past_is_refused(driver: Driver, clock: Clock) -> None:
    run = driver.start("mini_competition", org="exempelby", user="se-requester")
    _define(run, "se-requester")
    with pytest.raises(engine.FormValidationError) as refused:
        _invite(run, "se-requester", ["se-buyer"], question_deadline=_days(-2), tender_deadline=_days(-1))
    assert refused.value.errors == {
        "question_deadline": ["Must not be in the past."],
        "tender_deadline": ["Must not be in the past."],
    }
    assert run.open_tasks() == ["prepare_invitation"]
