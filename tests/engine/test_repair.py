"""Repairing cases: correcting an instance's data, moving it back to an earlier step, listing instances."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine._sandbox import RESERVED_DATA_NAMES, SandboxedEnvironment
from tests.conftest import FIXTURES
from tests.processes.driver import Clock, EngineDriver, ScenarioError

Factory = so.sessionmaker[so.Session]
REPAIR = FIXTURES / "repair"


@pytest.fixture
def deployed(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, REPAIR)


def _start(session_factory: Factory, **data: Any) -> int:
    with session_factory.begin() as s:
        return engine.start_instance(s, "repair", organisation="north", user="north-req", data=data).id


def _open(session_factory: Factory, instance_id: int) -> list[tuple[str, str]]:
    with session_factory() as s:
        return [(t.bpmn_id, t.task_uuid) for t in engine.list_tasks(s, instance_id=instance_id)]


def _complete(session_factory: Factory, instance_id: int, bpmn_id: str, **data: Any) -> None:
    with session_factory() as s:
        (task,) = [t for t in engine.list_tasks(s, instance_id=instance_id) if t.bpmn_id == bpmn_id]
    with session_factory.begin() as s:
        engine.complete_task(s, task.id, user="north-boss", data=data)


def _instance(session_factory: Factory, instance_id: int) -> tuple[str, dict[str, Any]]:
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        return instance.status, engine.instance_data(s, instance)


def _events(session_factory: Factory, instance_id: int, kind: str) -> list[engine.AuditEvent]:
    with session_factory() as s:
        return [e for e in engine.instance_events(s, instance_id) if e.kind == kind]


def _failed_on_compute(session_factory: Factory) -> int:
    instance_id = _start(session_factory, parts=0)
    _complete(session_factory, instance_id, "enter", total=100)
    assert _instance(session_factory, instance_id)[0] == "error"
    return instance_id


def _set_data(session_factory: Factory, instance_id: int, user: str = "north-admin", **data: Any) -> None:
    with session_factory.begin() as s:
        engine.set_instance_data(s, instance_id, user=user, data=data)


def _reset(session_factory: Factory, instance_id: int, to: str, user: str = "north-admin") -> str:
    with session_factory.begin() as s:
        return engine.reset_instance(s, instance_id, to=to, user=user).status


# -- set data ------------------------------------------------------------------------------------


def test_reserved_names_cover_every_global_scripts_see() -> None:
    environment = SandboxedEnvironment(extra_globals={"parameters": {}})
    assert set(environment.globals) <= RESERVED_DATA_NAMES


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([1, 2], ""),
        ({}, ""),
        ({"class": 1}, "class"),
        ({"1st": 1}, "1st"),
        ({"with space": 1}, "with space"),
        ({"_hidden": 1}, "_hidden"),
        ({"parameters": {}}, "parameters"),
        ({"date": "2025-01-01"}, "date"),
        ({"Decimal": 1}, "Decimal"),
        ({"math": 1}, "math"),
        ({"parts": float("nan")}, "parts"),
        ({"parts": {1, 2}}, "parts"),
        ({"parts": dt.date(2025, 1, 1)}, "parts"),
        ({"rows": [{"ok": 1}, {2: "key not text"}]}, "rows"),
        ({"deep": functools.reduce(lambda inner, _: [inner], range(100), 0)}, ""),
    ],
)
def test_set_data_refuses_what_is_not_plain_json_under_a_usable_name(
    session_factory: Factory, deployed: None, data: Any, field: str
) -> None:
    instance_id = _failed_on_compute(session_factory)
    with session_factory.begin() as s, pytest.raises(engine.FormValidationError) as info:
        engine.set_instance_data(s, instance_id, user="north-admin", data=data)
    assert list(info.value.errors) == [field]
    assert _instance(session_factory, instance_id)[1]["parts"] == 0
    assert _events(session_factory, instance_id, "data_changed") == []


def test_set_data_then_retry_repairs_a_failed_script(session_factory: Factory, deployed: None) -> None:
    instance_id = _failed_on_compute(session_factory)
    with session_factory.begin() as s:
        engine.retry_instance(s, instance_id, user="north-admin")
    assert _instance(session_factory, instance_id)[0] == "error", "the same data fails again"

    _set_data(session_factory, instance_id, parts=4, note="corrected by phone")
    status, data = _instance(session_factory, instance_id)
    assert status == "error", "correcting data does not run anything"
    assert (data["parts"], data["note"], data["total"]) == (4, "corrected by phone", 100)
    (event,) = _events(session_factory, instance_id, "data_changed")
    assert event.actor == "north-admin"
    assert event.detail == {
        "before": {"parts": 0, "note": None},
        "after": {"parts": 4, "note": "corrected by phone"},
    }

    with session_factory.begin() as s:
        engine.retry_instance(s, instance_id, user="north-admin")
    status, data = _instance(session_factory, instance_id)
    assert status == "running" and data["share"] == 25
    assert [bpmn_id for bpmn_id, _ in _open(session_factory, instance_id)] == ["inner"]


def test_set_data_on_a_running_case_reaches_the_next_steps(session_factory: Factory, deployed: None) -> None:
    instance_id = _start(session_factory, parts=0)
    _set_data(session_factory, instance_id, parts=5, total=50)
    assert _instance(session_factory, instance_id)[1]["parts"] == 5
    _complete(session_factory, instance_id, "enter")
    status, data = _instance(session_factory, instance_id)
    assert status == "running" and data["share"] == 10


def test_set_data_is_an_admin_action_of_the_instances_organisation(
    session_factory: Factory, deployed: None
) -> None:
    instance_id = _failed_on_compute(session_factory)
    with pytest.raises(engine.PermissionDeniedError):
        _set_data(session_factory, instance_id, user="north-boss", parts=4)
    with pytest.raises(engine.NotFoundError, match=f"No instance {instance_id}"):
        _set_data(session_factory, instance_id, user="south-admin", parts=4)
    assert _instance(session_factory, instance_id)[1]["parts"] == 0


def test_ended_instances_cannot_be_changed_or_moved(session_factory: Factory, deployed: None) -> None:
    instance_id = _start(session_factory, parts=2)
    for bpmn_id in ("enter", "inner", "check"):
        _complete(session_factory, instance_id, bpmn_id, total=10)
    assert _instance(session_factory, instance_id)[0] == "completed"
    with pytest.raises(engine.InvalidStateError, match="completed"):
        _set_data(session_factory, instance_id, parts=3)
    with pytest.raises(engine.InvalidStateError, match="completed"):
        _reset(session_factory, instance_id, "enter")
    cancelled = _start(session_factory, parts=2)
    with session_factory.begin() as s:
        engine.cancel_instance(s, cancelled, user="north-admin")
    with pytest.raises(engine.InvalidStateError, match="cancelled"):
        _set_data(session_factory, cancelled, parts=3)


# -- reset ---------------------------------------------------------------------------------------


def test_reset_to_an_earlier_user_task_reopens_it(session_factory: Factory, deployed: None) -> None:
    instance_id = _start(session_factory, parts=4)
    _complete(session_factory, instance_id, "enter", total=100)
    _complete(session_factory, instance_id, "inner")
    ((_, check_uuid),) = _open(session_factory, instance_id)
    with session_factory() as s:
        (old_enter,) = [
            t for t in engine.list_tasks(s, instance_id=instance_id, state=None) if t.bpmn_id == "enter"
        ]

    assert _reset(session_factory, instance_id, "enter") == "running"
    ((bpmn_id, enter_uuid),) = _open(session_factory, instance_id)
    assert bpmn_id == "enter" and enter_uuid != old_enter.task_uuid
    with session_factory() as s:
        rows = {(t.bpmn_id, t.state) for t in engine.list_tasks(s, instance_id=instance_id, state=None)}
        assert s.get(engine.HumanTask, old_enter.id).state == "completed", "history is kept"
    assert rows == {
        ("enter", "completed"),
        ("inner", "completed"),
        ("check", "cancelled"),
        ("enter", "ready"),
    }
    assert check_uuid not in {uuid for _, uuid in _open(session_factory, instance_id)}
    (event,) = _events(session_factory, instance_id, "reset")
    assert (event.element, event.detail, event.actor) == ("enter", {"to": "enter"}, "north-admin")

    _complete(session_factory, instance_id, "enter", total=8)
    assert _instance(session_factory, instance_id)[1]["share"] == 2
    assert [b for b, _ in _open(session_factory, instance_id)] == ["inner"]


def test_reset_into_a_finished_subprocess(session_factory: Factory, deployed: None) -> None:
    instance_id = _start(session_factory, parts=4)
    _complete(session_factory, instance_id, "enter", total=100)
    _complete(session_factory, instance_id, "inner")
    assert [b for b, _ in _open(session_factory, instance_id)] == ["check"]
    _reset(session_factory, instance_id, "inner")
    assert [b for b, _ in _open(session_factory, instance_id)] == ["inner"]
    _complete(session_factory, instance_id, "inner")
    assert [b for b, _ in _open(session_factory, instance_id)] == ["check"]
    _complete(session_factory, instance_id, "check")
    assert _instance(session_factory, instance_id)[0] == "completed"


def test_reset_moves_a_failed_case_back_to_where_the_data_was_entered(
    session_factory: Factory, deployed: None
) -> None:
    instance_id = _failed_on_compute(session_factory)
    assert _reset(session_factory, instance_id, "start") == "running"
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.error_message is None
    assert [b for b, _ in _open(session_factory, instance_id)] == ["enter"]
    _set_data(session_factory, instance_id, parts=5)
    _complete(session_factory, instance_id, "enter", total=100)
    assert _instance(session_factory, instance_id)[1]["share"] == 20


def test_reset_targets_are_the_elements_that_ran_latest_first(
    session_factory: Factory, deployed: None
) -> None:
    instance_id = _failed_on_compute(session_factory)
    with session_factory() as s:
        targets = engine.reset_targets(s, engine.get_instance(s, instance_id))
    assert [(t.bpmn_id, t.name) for t in targets] == [
        ("compute", "Compute the share"),
        ("enter", "Enter the total"),
    ]


def test_reset_refusals_name_the_element(session_factory: Factory, deployed: None) -> None:
    instance_id = _start(session_factory, parts=4)
    with pytest.raises(engine.NotFoundError, match="Process 'repair' has no element 'nowhere'"):
        _reset(session_factory, instance_id, "nowhere")
    with pytest.raises(engine.InvalidStateError, match=r"'check' \(Check the result\) has not run"):
        _reset(session_factory, instance_id, "check")
    with pytest.raises(engine.PermissionDeniedError):
        _reset(session_factory, instance_id, "start", user="north-boss")
    with pytest.raises(engine.NotFoundError, match=f"No instance {instance_id}"):
        _reset(session_factory, instance_id, "start", user="south-admin")
    with session_factory.begin() as s:
        engine.suspend_instance(s, instance_id, user="north-admin")
    with pytest.raises(engine.InvalidStateError, match="suspended; resume it"):
        _reset(session_factory, instance_id, "start")
    assert _events(session_factory, instance_id, "reset") == []


def test_reset_to_history_compacted_away_says_so(
    session_factory: Factory, deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compact after a few steps instead of 60, so the case's start is dropped from the tree.
    monkeypatch.setattr("engine._workflow.COMPACT_DEPTH", 3)
    instance_id = _start(session_factory, parts=4)
    _complete(session_factory, instance_id, "enter", total=100)
    _complete(session_factory, instance_id, "inner")
    with pytest.raises(engine.InvalidStateError, match=r"'enter' .* ran too long ago"):
        _reset(session_factory, instance_id, "enter")


# -- the shipped process -------------------------------------------------------------------------


SUPPLIER = {"name": "Stolfabriken AB", "org_number": "556000-0001", "email": "offert@stolfabriken.example"}


def _request_quotes(run: Any) -> None:
    run.complete(
        "request_quotes",
        user="se-buyer",
        data={
            "suppliers": [SUPPLIER],
            "request_text": "Please quote.",
            "fewer_quotes_justification": "Only one supplier makes these chairs.",
            "quotes_requested_on": dt.date.today().isoformat(),
            "quote_deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat(timespec="seconds"),
        },
    )


def _waiting_for_quotes(driver: EngineDriver) -> Any:
    need = {
        "subject": "Ergonomic office chairs",
        "description": "Adjustable chairs for 40 workplaces, EN 1335 certified.",
        "cpv_code": "39112000-0",
        "category": "goods",
        "value_excl_vat": 50000,
        "contract_months": 0,
        "option_months": 0,
        "utility_activity": False,
        "same_kind_spend_outside": 0,
        "requester": "se-requester",
        "framework_agreement_exists": False,
        "participants": ["se-requester"],
        "requester_email": "se-requester@demo.example",
    }
    run = driver.start("direct_procurement", org="exempelby", user="se-requester")
    run.complete("describe_need", user="se-requester", data=need)
    run.complete("declare_conflict", user="se-requester", data={"has_conflict": False, "details": ""})
    _request_quotes(run)
    assert run.status == "waiting"
    return run


def _timer_jobs(session_factory: Factory, instance_id: int) -> list[str]:
    with session_factory() as s:
        return list(
            s.scalars(
                sa.select(engine.Job.status).where(
                    engine.Job.instance_id == instance_id, engine.Job.kind == "timer"
                )
            )
        )


@pytest.fixture
def clock() -> Any:
    with Clock(dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)) as running:
        yield running


@pytest.fixture
def procurement(session_factory: Factory, clock: Clock) -> Any:
    """A direct procurement in error: the buyer selected a supplier that sent no compliant quote."""
    driver = EngineDriver(session_factory)
    run = _waiting_for_quotes(driver)
    clock.advance(days=8)
    driver.fire_due_timers()
    quote = {"supplier": SUPPLIER["name"], "org_number": "556000-0001", "price": 48000, "compliant": True}
    run.complete("register_quotes", user="se-buyer", data={"quotes": [{**quote, "score": 70}]})
    assert run.open_tasks() == ["select_supplier"]
    with pytest.raises(ScenarioError, match="556000-0009 has no compliant quote"):
        run.complete(
            "select_supplier",
            user="se-buyer",
            data={"winner_org_number": "556000-0009", "justification": "Typo in the number."},
        )
    assert run.status == "error"
    return driver, run


def test_reset_while_waiting_for_a_timer_removes_the_timer(session_factory: Factory, clock: Clock) -> None:
    driver = EngineDriver(session_factory)
    run = _waiting_for_quotes(driver)
    assert _timer_jobs(session_factory, run.instance_id) == ["pending"]
    assert _reset(session_factory, run.instance_id, "request_quotes", user="se-admin") == "running"
    assert run.open_tasks() == ["request_quotes"] and _timer_jobs(session_factory, run.instance_id) == []
    clock.advance(days=8)
    driver.fire_due_timers()
    assert run.open_tasks() == ["request_quotes"], "the old deadline no longer fires"
    _request_quotes(run)
    assert _timer_jobs(session_factory, run.instance_id) == ["pending"]


def test_direct_procurement_wrong_winner_repaired_with_set_data_and_retry(
    session_factory: Factory, procurement: Any
) -> None:
    _driver, run = procurement
    with session_factory.begin() as s:
        engine.retry_instance(s, run.instance_id, user="se-admin")
    assert run.status == "error", "retrying with the same data fails again"
    with session_factory.begin() as s:
        engine.set_instance_data(
            s, run.instance_id, user="se-admin", data={"winner_org_number": "556000-0001"}
        )
        engine.retry_instance(s, run.instance_id, user="se-admin")
    assert run.status == "running" and run.open_tasks() == ["approve"]
    assert run.data["contract_value"] == 48000 and run.data["winner"]["supplier"] == "Stolfabriken AB"


def test_direct_procurement_wrong_winner_repaired_by_moving_back(
    session_factory: Factory, procurement: Any
) -> None:
    _driver, run = procurement
    _reset(session_factory, run.instance_id, "select_supplier", user="se-admin")
    assert run.status == "running" and run.open_tasks() == ["select_supplier"]
    run.complete(
        "select_supplier",
        user="se-buyer",
        data={"winner_org_number": "556000-0001", "justification": "Only quote."},
    )
    assert run.open_tasks() == ["approve"] and run.data["contract_value"] == 48000


# -- listing -------------------------------------------------------------------------------------


def test_list_instances_newest_first_filtered_without_restoring_workflows(
    session_factory: Factory, deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _start(session_factory, parts=4)
    failed = _failed_on_compute(session_factory)
    with session_factory.begin() as s:
        south = engine.start_instance(s, "repair", organisation="south", user="south-req", data={}).id
        north_id = engine.get_organisation(s, "north").id

    def no_restoring(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("list_instances restored a workflow")

    monkeypatch.setattr("engine._workflow.SERIALIZER.loads", no_restoring)
    with session_factory() as s:
        assert [i.id for i in engine.list_instances(s)] == [south, failed, first]
        listed = engine.list_instances(s, organisation_id=north_id)
        assert [i.id for i in listed] == [failed, first]
        assert "state" in sa.inspect(listed[0]).unloaded and listed[0].definition.version == 1
        assert [i.id for i in engine.list_instances(s, status="error")] == [failed]
        assert engine.list_instances(s, process_id="nope") == []
        assert [i.id for i in engine.list_instances(s, limit=1)] == [south]
