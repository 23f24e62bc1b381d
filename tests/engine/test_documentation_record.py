"""The documentation record of a direct procurement, read from real cases the engine drove.

The cases run the shipped ``processes/direct_procurement`` through the engine
with the ``cold`` driver (each step restored from the database onto a spec
parsed afresh), and the record is read in a fresh session with the spec cache
empty, as another web process would read it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from engine.documentation_record import (
    LABELS,
    LANGUAGES,
    DocumentationRecord,
    NoRecordYetError,
    NotADirectProcurementError,
    documentation_record,
    label_text,
)
from tests.processes.driver import Clock, ColdDriver, EngineDriver, EngineRun

# A Monday morning in the 2025 fiscal year (the approval base amount is dated).
START = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
CHAIRS = "Ergonomic office chairs"
WINNER = {"name": "Stolfabriken AB", "org_number": "556000-0001", "email": "offert@stolfabriken.example"}
RUNNER_UP = {"name": "Kontorsmöbler AB", "org_number": "556000-0002", "email": "sales@kontorsmobler.example"}
FEWER_ASKED = "Only two suppliers in the region deliver EN 1335 chairs with on-site service."
CHOSEN_BECAUSE = "Lowest price; the service offered is as good as the better-scored quote's."


@pytest.fixture
def clock() -> Iterator[Clock]:
    with Clock(START) as running:
        yield running


@pytest.fixture
def driver(session_factory: so.sessionmaker[so.Session], clock: Clock) -> ColdDriver:
    return ColdDriver(session_factory)


def _need(subject: str, cpv_code: str, value: int, **changes: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "description": "Requirements as attached.",
        "cpv_code": cpv_code,
        "category": "goods",
        "value_excl_vat": value,
        "contract_months": 0,
        "option_months": 0,
        "utility_activity": False,
        "same_kind_spend_outside": 0,
        "framework_agreement_exists": False,
        "requester": "se-requester",
        "participants": ["se-requester"],
        "requester_email": "se-requester@demo.example",
        **changes,
    }


def _quote(supplier: dict[str, str], price: int, score: int) -> dict[str, Any]:
    return {
        "supplier": supplier["name"],
        "org_number": supplier["org_number"],
        "price": price,
        "compliant": True,
        "score": score,
    }


def _approver(run: EngineRun) -> str:
    """The demo user of the approval group the case asks for (``approvers_unit_head`` → ``se-unit-head``)."""
    return "se-" + str(run.data["approver_group"]).removeprefix("approvers_").replace("_", "-")


def _approve_and_order(run: EngineRun, delivery: str) -> None:
    run.complete(
        "approve",
        user=_approver(run),
        data={"approved": True, "approval_comment": "", "approver_has_conflict": False},
    )
    if run.open_tasks() == ["quality_review"]:
        run.complete(
            "quality_review",
            user="se-quality",
            data={"quality_ok": True, "quality_remarks": "", "reviewer_has_conflict": False},
        )
    run.complete(
        "place_order",
        user="se-buyer",
        data={
            "order_number": "PO-2025-0042",
            "order_date": dt.date.today().isoformat(),
            "delivery_or_contract_period": delivery,
        },
    )


def _request_quotes(run: EngineRun, clock: Clock, suppliers: list[dict[str, str]], **extra: Any) -> None:
    run.complete(
        "request_quotes",
        user="se-buyer",
        data={
            "suppliers": suppliers,
            "request_text": "Please quote for the attached requirements.",
            "quotes_requested_on": dt.date.today().isoformat(),
            "quote_deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat(timespec="seconds"),
            **extra,
        },
    )
    clock.advance(days=8)
    run.driver.fire_due_timers()
    assert run.open_tasks() == ["register_quotes"]


def start_case(
    driver: ColdDriver, process_id: str = "direct_procurement", user: str = "se-requester"
) -> EngineRun:
    run = driver.start(process_id, org="exempelby", user=user)
    assert isinstance(run, EngineRun)
    return run


def earlier_small_purchase(driver: EngineDriver, clock: Clock) -> EngineRun:
    """Drive a small ordered purchase of the same kind (CPV group 391), below the documentation duty."""
    run = start_case(driver)
    run.complete("describe_need", user="se-requester", data=_need("Footrests", "39113000-7", 8000))
    run.complete("declare_conflict", user="se-requester", data={"has_conflict": False, "details": ""})
    _request_quotes(run, clock, [RUNNER_UP])
    run.complete("register_quotes", user="se-buyer", data={"quotes": [_quote(RUNNER_UP, 7900, 70)]})
    run.complete(
        "select_supplier",
        user="se-buyer",
        data={"winner_org_number": RUNNER_UP["org_number"], "justification": "The only quote."},
    )
    _approve_and_order(run, "Delivery within 2 weeks")
    assert run.status == "completed"
    return run


def ordered_chairs(driver: EngineDriver, clock: Clock) -> EngineRun:
    """Drive the chairs purchase to its record, with every deviation it can have and the archive step open.

    A participant declares a conflict and is replaced, two suppliers are asked
    where three quotes are required (justified), and the chosen quote is not
    the best-scored one (justified).
    """
    run = start_case(driver)
    run.complete(
        "describe_need",
        user="se-requester",
        data=_need(
            CHAIRS,
            "39112000-0",
            150000,
            same_kind_spend_outside=40000,
            participants=["se-requester", "se-colleague"],
        ),
    )
    run.complete("declare_conflict", user="se-requester", data={"has_conflict": False, "details": ""})
    run.complete(
        "declare_conflict",
        user="se-colleague",
        data={"has_conflict": True, "details": "My spouse owns Kontorsmöbler AB."},
    )
    run.complete("replace_participants", user="se-requester", data={"replacements": ["se-buyer"]})
    run.complete("declare_conflict", user="se-buyer", data={"has_conflict": False, "details": ""})
    _request_quotes(run, clock, [WINNER, RUNNER_UP], fewer_quotes_justification=FEWER_ASKED)
    run.complete(
        "register_quotes",
        user="se-buyer",
        data={"quotes": [_quote(WINNER, 139000, 80), _quote(RUNNER_UP, 145000, 90)]},
    )
    run.complete(
        "select_supplier",
        user="se-buyer",
        data={"winner_org_number": WINNER["org_number"], "justification": CHOSEN_BECAUSE},
    )
    _approve_and_order(run, "Delivery within 6 weeks")
    assert run.open_tasks() == ["archive_documentation"]
    return run


def _read(
    session_factory: so.sessionmaker[so.Session],
    instance_id: int,
    org: str = "exempelby",
    today: dt.date | None = None,
) -> DocumentationRecord:
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        organisation_id = engine.get_organisation(s, org).id
        return documentation_record(
            s, instance_id, organisation_id=organisation_id, today=today or dt.date.today()
        )


def test_the_record_of_a_real_direct_procurement_has_the_seven_fields_spend_deviations_and_declarations(
    driver: ColdDriver, clock: Clock, session_factory: so.sessionmaker[so.Session]
) -> None:
    earlier = earlier_small_purchase(driver, clock)
    run = ordered_chairs(driver, clock)
    record = _read(session_factory, run.instance_id)

    assert [f.key for f in record.minimum_fields] == [
        "buyer",
        "object",
        "competition",
        "suppliers_and_tenders",
        "winner",
        "value",
        "period",
    ]
    assert [f.number for f in record.minimum_fields] == [1, 2, 3, 4, 5, 6, 7]
    assert record.complete and all(f.complete for f in record.minimum_fields)
    values = {v.key: v.value for f in record.minimum_fields for v in f.values}
    assert (values["buyer_name"], values["buyer_org_number"]) == ("Exempelby kommun", "212000-0001")
    assert (values["object"], values["cpv_code"]) == (CHAIRS, "39112000-0")
    assert values["how_competition_was_sought"] == "written_quotation_requests"
    # The earlier purchase waited out its quote deadline (8 days) first.
    assert values["quotes_requested_on"] == "2025-03-11"
    assert values["quote_deadline"].startswith("2025-03-18T")
    assert (values["suppliers_asked_count"], values["tenders_received"], values["quotes_required"]) == (
        2,
        2,
        3,
    )
    assert (values["winner_name"], values["winner_org_number"]) == ("Stolfabriken AB", "556000-0001")
    assert values["main_reason"] == CHOSEN_BECAUSE
    assert (values["estimated_value"], values["contract_value"]) == (Decimal(150000), Decimal(139000))
    assert values["delivery_or_contract_period"] == "Delivery within 6 weeks"
    assert record.supplier_name == "Stolfabriken AB" and record.currency == "SEK"
    assert record.title == CHAIRS, "the subject, not the process's name"
    assert (record.outcome, record.status) == ("ordered", "running")

    assert [(s.name, s.price, s.score, s.chosen) for s in record.suppliers] == [
        ("Stolfabriken AB", Decimal(139000), Decimal(80), True),
        ("Kontorsmöbler AB", Decimal(145000), Decimal(90), False),
    ]

    spend = record.same_kind_spend
    assert spend is not None
    assert (spend.cpv_group, spend.fiscal_year) == ("391", 2025)
    assert [(p.instance_id, p.subject, p.supplier, p.value) for p in spend.cases] == [
        (earlier.instance_id, "Footrests", "Kontorsmöbler AB", Decimal(7900))
    ]
    assert (spend.in_procflow, spend.declared_outside, spend.total) == (
        Decimal(7900),
        Decimal(40000),
        Decimal(47900),
    )
    # At the winning price: 139 000 + 47 900, under the 700 000 limit.
    assert (spend.aggregated_value, spend.limit, spend.within_limit) == (
        Decimal(186900),
        Decimal(700000),
        True,
    )

    deviations = {d.key: d for d in record.deviations}
    assert set(deviations) == {
        "fewer_suppliers_asked",
        "fewer_tenders",
        "not_best_scored",
        "participant_conflict",
    }
    assert deviations["fewer_suppliers_asked"].justification == FEWER_ASKED
    assert deviations["not_best_scored"].justification == CHOSEN_BECAUSE
    assert "My spouse owns Kontorsmöbler AB." in (deviations["participant_conflict"].justification or "")
    assert not any(d.unjustified for d in record.deviations)

    assert [(d.user, d.has_conflict) for d in record.declarations] == [
        ("se-requester", False),
        ("se-colleague", True),
        ("se-buyer", False),
    ]
    approvers = [(d.role, d.user, d.level, d.has_conflict) for d in record.approvals]
    assert approvers[0] == ("approver", "se-unit-head", "unit_head", False)
    assert all(d.decided_at is not None for d in record.approvals)
    assert record.approved is True

    assert record.documentation_required and not record.documentation_complete
    assert record.documentation_due == dt.date.today() + dt.timedelta(days=30)
    assert record.days_left(dt.date.today()) == 30
    late = _read(session_factory, run.instance_id, today=dt.date.today() + dt.timedelta(days=31))
    assert "documentation_overdue" in {d.key for d in late.deviations}
    assert late.days_left(dt.date.today() + dt.timedelta(days=31)) == -1

    run.complete(
        "archive_documentation",
        user="se-buyer",
        data={"documentation_complete": True, "archive_reference": "KS 2025/117"},
    )
    archived = _read(session_factory, run.instance_id)
    assert (archived.status, archived.documentation_complete, archived.archive_reference) == (
        "completed",
        True,
        "KS 2025/117",
    )
    assert archived.days_left(dt.date.today()) is None

    small = _read(session_factory, earlier.instance_id)
    assert not small.documentation_required and small.deviations == ()
    assert small.complete and small.supplier_name == "Kontorsmöbler AB"


def test_a_case_stopped_before_quotes_has_no_record_and_says_why(
    driver: ColdDriver, session_factory: so.sessionmaker[so.Session]
) -> None:
    stopped = start_case(driver)
    stopped.complete("describe_need", user="se-requester", data=_need("A new school", "45214200-2", 9000000))
    assert stopped.status == "completed"
    with pytest.raises(NoRecordYetError) as raised:
        _read(session_factory, stopped.instance_id)
    assert raised.value.stopped is True

    started = start_case(driver)
    with pytest.raises(NoRecordYetError) as raised:
        _read(session_factory, started.instance_id)
    assert raised.value.stopped is False


def test_other_processes_and_other_organisations_have_no_record_here(
    driver: ColdDriver, session_factory: so.sessionmaker[so.Session]
) -> None:
    run = start_case(driver)
    with pytest.raises(engine.NotFoundError) as raised:
        _read(session_factory, run.instance_id, org="esimerkkila")
    assert not isinstance(raised.value, NoRecordYetError)
    goal = start_case(driver, "goal_review", user="se-admin")
    with pytest.raises(NotADirectProcurementError):
        _read(session_factory, goal.instance_id)


def test_every_label_has_english_swedish_and_finnish() -> None:
    for key, label in LABELS.items():
        assert set(label) == set(LANGUAGES), key
        assert len({label_text(label, language) for language in LANGUAGES}) > 1 or key == "cpv_code", key
