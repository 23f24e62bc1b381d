"""Scenario tests of processes/direct_procurement: every gateway path, the timers and the record."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from tests.processes.driver import Clock, Driver, EngineDriver, Run

NEED = {
    "subject": "Ergonomic office chairs",
    "description": "Adjustable chairs for 40 workplaces, EN 1335 certified.",
    "cpv_code": "39112000-0",
    "category": "goods",
    "contract_months": 0,
    "option_months": 0,
    "same_kind_spend_12m": 0,
    "framework_agreement_exists": False,
}
SUPPLIERS = [
    {"name": "Stolfabriken AB", "org_number": "556000-0001", "email": "offert@stolfabriken.example"},
    {"name": "Kontorsmöbler AB", "org_number": "556000-0002", "email": "sales@kontorsmobler.example"},
    {"name": "Sittbra AB", "org_number": "556000-0003", "email": "info@sittbra.example"},
]


def _need(prefix: str, **changes: Any) -> dict[str, Any]:
    return {
        **NEED,
        "participants": [f"{prefix}-requester"],
        "requester_email": f"{prefix}-requester@demo.example",
        **changes,
    }


def _request_quotes(run: Run, prefix: str, suppliers: list[dict[str, str]] = SUPPLIERS) -> None:
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    run.complete(
        "request_quotes",
        user=f"{prefix}-buyer",
        data={
            "suppliers": suppliers,
            "request_text": "Please quote for the attached requirements.",
            "quotes_requested_on": dt.date.today().isoformat(),
            "quote_deadline": deadline.isoformat(timespec="seconds"),
        },
    )


def _declare_none(run: Run, *users: str) -> None:
    for user in users:
        run.complete("declare_conflict", user=user, data={"has_conflict": False, "details": ""})


def _through_deadline(driver: Driver, clock: Clock, run: Run) -> None:
    assert run.open_tasks() == [] and run.status == "waiting"
    clock.advance(days=6)
    driver.fire_due_timers()
    assert run.open_tasks() == [], "the quote deadline must not fire early"
    clock.advance(days=2)
    driver.fire_due_timers()
    assert run.open_tasks() == ["register_quotes"]


def _quote(supplier: dict[str, str], price: float, score: float, compliant: bool = True) -> dict[str, Any]:
    return {
        "supplier": supplier["name"],
        "org_number": supplier["org_number"],
        "price": price,
        "compliant": compliant,
        "score": score,
    }


def _order(run: Run, prefix: str) -> None:
    run.complete(
        "place_order",
        user=f"{prefix}-buyer",
        data={
            "order_number": "PO-2025-0042",
            "order_date": dt.date.today().isoformat(),
            "delivery_or_contract_period": "Delivery within 6 weeks",
        },
    )


def test_full_path_with_conflict_quality_review_and_documentation_reminder(
    driver: Driver, clock: Clock
) -> None:
    run = driver.start("direct_procurement", org="exempelby", user="se-requester")
    assert run.open_tasks() == ["describe_need"]
    run.complete(
        "describe_need",
        user="se-requester",
        data=_need(
            "se",
            value_excl_vat=330000,
            same_kind_spend_12m=40000,
            participants=["se-requester", "se-colleague"],
        ),
    )
    data = run.data
    assert (data["procedure"], data["quotes_required"], data["documentation_required"]) == ("direct", 3, True)
    assert data["aggregated_value"] == 370000 and data["direct_procurement_limit"] == 700000

    assert run.open_tasks() == ["declare_conflict", "declare_conflict"]
    run.complete("declare_conflict", user="se-requester", data={"has_conflict": False, "details": ""})
    run.complete(
        "declare_conflict",
        user="se-colleague",
        data={"has_conflict": True, "details": "My spouse owns Sittbra AB."},
    )
    assert run.open_tasks() == ["replace_participants"]
    assert run.data["conflicted"] == ["se-colleague"]
    run.complete("replace_participants", user="se-requester", data={"replacements": ["se-buyer"]})
    assert run.open_tasks() == ["declare_conflict"]
    _declare_none(run, "se-buyer")
    assert run.data["participants"] == ["se-requester", "se-buyer"]
    assert [d["participant"] for d in run.data["coi_declarations"]] == [
        "se-requester",
        "se-colleague",
        "se-buyer",
    ]

    _request_quotes(run, "se")
    sent = [e for e in driver.emails if e["subject"] == "Request for quotation: Ergonomic office chairs"]
    assert sorted(e["to"] for e in sent) == sorted(s["email"] for s in SUPPLIERS)
    _through_deadline(driver, clock, run)

    run.complete(
        "register_quotes",
        user="se-buyer",
        data={
            "quotes": [
                _quote(SUPPLIERS[0], 310000, 80),
                _quote(SUPPLIERS[1], 320000, 90),
                _quote(SUPPLIERS[2], 200000, 0, compliant=False),
            ]
        },
    )
    assert [q["org_number"] for q in run.data["compliant_quotes"]] == ["556000-0002", "556000-0001"]
    run.complete(
        "select_supplier",
        user="se-buyer",
        data={"winner_org_number": "556000-0002", "justification": "Best score on ergonomics and service."},
    )
    assert (run.data["approver_level"], run.data["approver_group"]) == (
        "finance_head",
        "approvers_finance_head",
    )
    run.complete("approve", user="se-finance-head", data={"approved": True, "approval_comment": ""})
    assert run.data["quality_review_required"] is True
    run.complete("quality_review", user="se-quality", data={"quality_ok": True, "quality_remarks": ""})
    _order(run, "se")

    assert run.open_tasks() == ["archive_documentation"]
    record = run.data["documentation_record"]
    assert record["buyer_name"] == "Exempelby kommun" and record["buyer_org_number"] == "212000-0001"
    assert (record["winner_name"], record["winner_org_number"]) == ("Kontorsmöbler AB", "556000-0002")
    assert record["main_reason"] == "Best score on ergonomics and service."
    assert (record["suppliers_asked_count"], record["tenders_received"]) == (3, 3)
    assert (record["estimated_value"], record["currency"], record["outcome"]) == (330000, "SEK", "ordered")
    assert record["delivery_or_contract_period"] == "Delivery within 6 weeks"
    assert str(run.data["documentation_due"]) == (dt.date.today() + dt.timedelta(days=30)).isoformat()

    reminders_before = len([e for e in driver.emails if e["subject"].startswith("Documentation due")])
    clock.advance(days=24)
    driver.fire_due_timers()
    assert len([e for e in driver.emails if e["subject"].startswith("Documentation due")]) == reminders_before
    clock.advance(days=2)
    driver.fire_due_timers()
    reminders = [e for e in driver.emails if e["subject"].startswith("Documentation due")]
    assert len(reminders) == 1 and reminders[0]["to"] == "upphandling@exempelby.demo.example"
    assert run.open_tasks() == ["archive_documentation"], "the reminder does not cancel the task"
    run.complete(
        "archive_documentation",
        user="se-buyer",
        data={"documentation_complete": True, "archive_reference": "KS 2025/117"},
    )
    assert run.status == "completed"


@pytest.mark.parametrize(
    ("org", "prefix", "changes", "procedure"),
    [
        ("exempelby", "se", {"value_excl_vat": 50000, "framework_agreement_exists": True}, "use_framework"),
        # 65 000 EUR of services: over Finland's national threshold, a direct purchase in Sweden.
        ("esimerkkila", "fi", {"value_excl_vat": 65000, "category": "services"}, "advertised"),
        ("exempelby", "se", {"value_excl_vat": 600000, "same_kind_spend_12m": 150000}, "advertised"),
    ],
)
def test_stopped_when_another_procedure_is_required(
    driver: Driver, org: str, prefix: str, changes: dict[str, Any], procedure: str
) -> None:
    run = driver.start("direct_procurement", org=org, user=f"{prefix}-requester")
    run.complete("describe_need", user=f"{prefix}-requester", data=_need(prefix, **changes))
    assert run.status == "completed"
    assert run.data["procedure"] == procedure
    (mail,) = [e for e in driver.emails if e["subject"].startswith("Direct procurement stopped")]
    assert mail["to"] == f"{prefix}-requester@demo.example"
    assert mail["body"] == run.data["procedure_reason"]
    if procedure == "advertised":
        assert "over the direct-procurement limit" in mail["body"]


def test_no_compliant_quote_cancels_with_a_record(driver: Driver, clock: Clock) -> None:
    run = driver.start("direct_procurement", org="esimerkkila", user="fi-requester")
    run.complete("describe_need", user="fi-requester", data=_need("fi", value_excl_vat=15000))
    assert (run.data["quotes_required"], run.data["documentation_required"]) == (1, False)
    _declare_none(run, "fi-requester")
    _request_quotes(run, "fi", SUPPLIERS[:1])
    _through_deadline(driver, clock, run)
    run.complete("register_quotes", user="fi-buyer", data={"quotes": [_quote(SUPPLIERS[0], 14000, 0, False)]})
    assert run.status == "completed"
    record = run.data["documentation_record"]
    assert (record["outcome"], record["winner_name"], record["tenders_received"]) == ("cancelled", None, 1)
    assert record["main_reason"] == "No compliant quote was received."
    assert record["currency"] == "EUR" and record["buyer_name"] == "Esimerkkilän kaupunki"


def test_not_approved(driver: Driver, clock: Clock) -> None:
    run = driver.start("direct_procurement", org="exempelby", user="se-requester")
    run.complete("describe_need", user="se-requester", data=_need("se", value_excl_vat=50000))
    _declare_none(run, "se-requester")
    _request_quotes(run, "se")
    _through_deadline(driver, clock, run)
    run.complete("register_quotes", user="se-buyer", data={"quotes": [_quote(SUPPLIERS[0], 48000, 70)]})
    run.complete(
        "select_supplier",
        user="se-buyer",
        data={"winner_org_number": "556000-0001", "justification": "Only quote."},
    )
    assert run.data["approver_group"] == "approvers_unit_head"
    run.complete(
        "approve", user="se-unit-head", data={"approved": False, "approval_comment": "No budget this year."}
    )
    assert run.status == "completed"
    record = run.data["documentation_record"]
    assert (record["outcome"], record["outcome_reason"]) == ("not_approved", "No budget this year.")


def test_quality_review_stops_a_works_contract(driver: Driver, clock: Clock) -> None:
    run = driver.start("direct_procurement", org="exempelby", user="se-requester")
    run.complete(
        "describe_need",
        user="se-requester",
        data=_need("se", value_excl_vat=120000, category="works", cpv_code="45421000-4", subject="New doors"),
    )
    _declare_none(run, "se-requester")
    _request_quotes(run, "se")
    _through_deadline(driver, clock, run)
    run.complete("register_quotes", user="se-buyer", data={"quotes": [_quote(SUPPLIERS[0], 118000, 75)]})
    run.complete(
        "select_supplier",
        user="se-buyer",
        data={"winner_org_number": "556000-0001", "justification": "Only quote."},
    )
    run.complete("approve", user="se-unit-head", data={"approved": True, "approval_comment": ""})
    assert run.data["quality_review_required"] is True
    run.complete(
        "quality_review", user="se-quality", data={"quality_ok": False, "quality_remarks": "No fire rating."}
    )
    assert run.open_tasks() == ["archive_documentation"]
    assert run.data["documentation_record"]["outcome"] == "cancelled"
    run.complete(
        "archive_documentation",
        user="se-buyer",
        data={"documentation_complete": True, "archive_reference": "KS 1"},
    )
    assert run.status == "completed"


def test_ordered_without_quality_review_in_finland(driver: Driver, clock: Clock) -> None:
    run = driver.start("direct_procurement", org="esimerkkila", user="fi-requester")
    run.complete(
        "describe_need",
        user="fi-requester",
        data=_need(
            "fi", value_excl_vat=30000, category="services", cpv_code="79530000-8", subject="Translations"
        ),
    )
    assert (run.data["quotes_required"], run.data["documentation_required"]) == (3, True)
    _declare_none(run, "fi-requester")
    _request_quotes(run, "fi")
    _through_deadline(driver, clock, run)
    run.complete(
        "register_quotes",
        user="fi-buyer",
        data={"quotes": [_quote(SUPPLIERS[0], 29000, 60), _quote(SUPPLIERS[1], 27000, 85)]},
    )
    run.complete(
        "select_supplier",
        user="fi-buyer",
        data={"winner_org_number": "556000-0002", "justification": "Best score."},
    )
    assert run.data["approver_group"] == "approvers_area_head"
    run.complete("approve", user="fi-area-head", data={"approved": True, "approval_comment": ""})
    assert run.data["quality_review_required"] is False
    _order(run, "fi")
    run.complete(
        "archive_documentation",
        user="fi-buyer",
        data={"documentation_complete": True, "archive_reference": "D 7"},
    )
    assert run.status == "completed"
    assert run.data["documentation_record"]["outcome"] == "ordered"


# -- what only the engine enforces (save/restore driver) --------------------------------------


@pytest.fixture
def engine_driver(session_factory: so.sessionmaker[so.Session], clock: Clock) -> EngineDriver:
    return EngineDriver(session_factory)


def test_requester_can_never_approve_and_declarations_are_personal(
    engine_driver: EngineDriver, clock: Clock, session_factory: so.sessionmaker[so.Session]
) -> None:
    # The finance head buys something himself: he is in the approving group, yet may not approve.
    run = engine_driver.start("direct_procurement", org="exempelby", user="se-finance-head")
    need = _need("se", value_excl_vat=400000, participants=["se-finance-head", "se-colleague"])
    run.complete("describe_need", user="se-finance-head", data=need)
    (colleague_task,) = [
        t for t in run.task_rows("declare_conflict") if t.assignee.username == "se-colleague"
    ]
    assert colleague_task.candidate_group is None
    with (
        pytest.raises(engine.PermissionDeniedError, match="claimed by se-colleague"),
        session_factory.begin() as s,
    ):
        engine.complete_task(
            s, colleague_task.id, user="se-finance-head", data={"has_conflict": False, "details": ""}
        )
    with pytest.raises(engine.FormValidationError) as info, session_factory.begin() as s:
        engine.complete_task(
            s, colleague_task.id, user="se-colleague", data={"has_conflict": True, "details": ""}
        )
    assert list(info.value.errors) == ["details"]
    _declare_none(run, "se-finance-head", "se-colleague")
    _request_quotes(run, "se")
    _through_deadline(engine_driver, clock, run)
    run.complete("register_quotes", user="se-buyer", data={"quotes": [_quote(SUPPLIERS[0], 390000, 70)]})
    run.complete(
        "select_supplier",
        user="se-buyer",
        data={"winner_org_number": "556000-0001", "justification": "Only quote."},
    )
    (approve,) = run.task_rows("approve")
    assert approve.candidate_group == "approvers_finance_head"
    with (
        pytest.raises(engine.PermissionDeniedError, match="separation of duties"),
        session_factory.begin() as s,
    ):
        engine.complete_task(
            s, approve.id, user="se-finance-head", data={"approved": True, "approval_comment": ""}
        )
    with pytest.raises(engine.PermissionDeniedError, match="not in group"), session_factory.begin() as s:
        engine.complete_task(
            s, approve.id, user="se-unit-head", data={"approved": True, "approval_comment": ""}
        )
    with session_factory() as s:
        assert approve.id not in [t.id for t in engine.list_tasks(s, user="se-finance-head")]
