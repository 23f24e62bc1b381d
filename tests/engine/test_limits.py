"""The engine's limits (engine/limits.py): each case here used to hang, crash or write gigabytes.

Every run that could hang goes through :func:`bounded`, so a regression fails
instead of stalling the suite.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
import time_machine

import engine
from engine import limits
from tests.conftest import bounded

Factory = so.sessionmaker[so.Session]

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
"""


def process(process_id: str, nodes: list[str], flows: list[tuple[str, str]]) -> str:
    """A BPMN document of one process: *nodes* as XML, *flows* as (source, target) ids."""
    lines = [f'<bpmn:process id="{process_id}" isExecutable="true">', *nodes]
    lines += [
        f'<bpmn:sequenceFlow id="flow{i}" sourceRef="{a}" targetRef="{b}" />'
        for i, (a, b) in enumerate(flows)
    ]
    return HEAD + "\n".join(lines) + "\n</bpmn:process>\n</bpmn:definitions>\n"


def script(element: str, text: str) -> str:
    return f'<bpmn:scriptTask id="{element}"><bpmn:script>{escape(text)}</bpmn:script></bpmn:scriptTask>'


def user_task(element: str, **properties: str) -> str:
    props = "".join(
        f"<spiffworkflow:property name={quoteattr(k)} value={quoteattr(v)} />" for k, v in properties.items()
    )
    extensions = (
        f"<bpmn:extensionElements><spiffworkflow:properties>{props}</spiffworkflow:properties>"
        "</bpmn:extensionElements>"
        if props
        else ""
    )
    return f'<bpmn:userTask id="{element}">{extensions}</bpmn:userTask>'


def sequence(process_id: str, *middle: str) -> str:
    """start → the given elements in order (their ids are read from the XML) → end."""
    ids = [node.split('id="', 1)[1].split('"', 1)[0] for node in middle]
    chain = ["start", *ids, "end"]
    nodes = ['<bpmn:startEvent id="start" />', *middle, '<bpmn:endEvent id="end" />']
    return process(process_id, nodes, list(itertools.pairwise(chain)))


def chain_of(count: int, process_id: str, *, end_with_user_task: bool = False) -> str:
    tasks = [script(f"t{i}", f"n = {i}") for i in range(count)]
    if end_with_user_task:
        tasks.append(user_task("last"))
    return sequence(process_id, *tasks)


def deploy(session_factory: Factory, text: str, name: str = "model.bpmn") -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile(name, "bpmn", text)], name=name)


def start(session_factory: Factory, process_id: str, **data: Any) -> engine.ProcessInstance:
    with session_factory.begin() as s:
        return engine.start_instance(s, process_id, organisation="north", user="north-req", data=data)


def instance_count(session_factory: Factory) -> int:
    with session_factory() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(engine.ProcessInstance)) or 0


def timer_event(element: str, kind: str, expression: str) -> str:
    return (
        f'<bpmn:intermediateCatchEvent id="{element}"><bpmn:timerEventDefinition>'
        f"<bpmn:{kind}>{escape(expression)}</bpmn:{kind}>"
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )


# -- 1. call depth -----------------------------------------------------------------

RECURSIVE = sequence("again_and_again", '<bpmn:callActivity id="again" calledElement="again_and_again" />')


def test_call_activity_calling_its_own_process_stops_at_the_depth_limit(
    session_factory: Factory, orgs: None
) -> None:
    deploy(session_factory, RECURSIVE)
    instance = bounded(lambda: start(session_factory, "again_and_again"))
    assert instance.status == "error"
    assert "again" in (instance.error_message or "")
    assert f"more than {limits.MAX_CALL_DEPTH} deep" in (instance.error_message or "")
    with session_factory() as s:
        last = engine.instance_events(s, instance.id)[-1]
        assert (last.kind, last.element) == ("error", "again")
    # The write lock was released: another write goes through at once.
    with session_factory.begin() as s:
        engine.add_organisation(s, "east", name="East")


def test_recursion_that_ends_by_a_condition_still_runs(session_factory: Factory, orgs: None) -> None:
    text = process(
        "countdown",
        [
            '<bpmn:startEvent id="start" />',
            script("count", "n = n - 1"),
            '<bpmn:exclusiveGateway id="more" default="done" />',
            '<bpmn:callActivity id="again" calledElement="countdown" />',
            '<bpmn:endEvent id="end" />',
        ],
        [("start", "count"), ("count", "more"), ("more", "again"), ("again", "end"), ("more", "end")],
    )
    # Give the flow to the call activity a condition; the other one is the default.
    text = text.replace(
        '<bpmn:sequenceFlow id="flow2" sourceRef="more" targetRef="again" />',
        '<bpmn:sequenceFlow id="flow2" sourceRef="more" targetRef="again">'
        "<bpmn:conditionExpression>n &gt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>",
    ).replace('id="flow4" sourceRef="more"', 'id="done" sourceRef="more"')
    deploy(session_factory, text)
    instance = bounded(lambda: start(session_factory, "countdown", n=5))
    assert (instance.status, instance.error_message) == ("completed", None)


# -- 2. durations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("timeDuration", "P99999999Y", "longer than the limit of 100 years"),
        ("timeDuration", "PT99999999999999S", "longer than the limit of 100 years"),
        ("timeDuration", "-P1D", "not an ISO 8601 duration"),
        ("timeDate", "9999-12-31T23:59:59Z", "more than 100 years from now"),
        ("timeDate", "99999-01-01", "not an ISO 8601 date-time"),
        ("timeCycle", "R3/P99999999Y", "longer than the limit of 100 years"),
        ("timeCycle", "R99999999/PT0S", "zero duration"),
    ],
)
def test_literal_timer_out_of_range_is_refused_at_deploy(
    session_factory: Factory, kind: str, value: str, message: str
) -> None:
    text = sequence("waits", timer_event("wait", kind, repr(value)))
    with pytest.raises(engine.DeploymentError) as caught:
        bounded(lambda: deploy(session_factory, text, "waits.bpmn"))
    error = caught.value
    assert (error.file, error.element) == ("waits.bpmn", "wait")
    assert error.line == 7  # the line of its timeDuration, timeDate or timeCycle
    assert message in str(error)


@pytest.mark.parametrize(
    ("kind", "expression"),
    [
        ("timeDuration", "'P' + str(99999999) + 'Y'"),
        ("timeDate", "str(99999) + '-01-01'"),
        ("timeDuration", "'P' + str(-1) + 'D'"),
    ],
)
def test_computed_timer_out_of_range_puts_the_instance_in_error(
    session_factory: Factory, orgs: None, kind: str, expression: str
) -> None:
    deploy(session_factory, sequence("waits", timer_event("wait", kind, expression)))
    instance = bounded(lambda: start(session_factory, "waits"))
    assert instance.status == "error"
    assert (instance.error_message or "").startswith("wait: timer: ")
    with session_factory() as s:
        assert engine.element_states(s, instance)["failed"] == ["wait"]


def test_computed_cycle_out_of_range_puts_the_instance_in_error(session_factory: Factory, orgs: None) -> None:
    # A cycle belongs on a boundary (or start) event: a reminder every <cycle> while the task is open.
    text = process(
        "reminders",
        [
            '<bpmn:startEvent id="start" />',
            user_task("work"),
            '<bpmn:boundaryEvent id="remind" attachedToRef="work" cancelActivity="false">'
            "<bpmn:timerEventDefinition><bpmn:timeCycle>'R3/P' + every</bpmn:timeCycle>"
            "</bpmn:timerEventDefinition></bpmn:boundaryEvent>",
            '<bpmn:endEvent id="end" />',
            '<bpmn:endEvent id="reminded" />',
        ],
        [("start", "work"), ("work", "end"), ("remind", "reminded")],
    )
    deploy(session_factory, text)
    assert bounded(lambda: start(session_factory, "reminders", every="1D")).status == "running"
    instance = bounded(lambda: start(session_factory, "reminders", every="99999999Y"))
    assert instance.status == "error"
    assert "remind: timer: cycle 'R3/P99999999Y'" in (instance.error_message or "")


def test_literal_due_in_out_of_range_is_refused_at_deploy(session_factory: Factory) -> None:
    text = sequence("due", user_task("decide", dueIn="P99999999Y"))
    with pytest.raises(engine.DeploymentError, match="longer than the limit of 100 years") as caught:
        bounded(lambda: deploy(session_factory, text, "due.bpmn"))
    assert (caught.value.file, caught.value.element) == ("due.bpmn", "decide")


@pytest.mark.parametrize(
    ("due_in", "too_far", "near"),
    [("'P' + str(years) + 'Y'", {"years": 99999999}, {"years": 1}), ("days", {"days": 10**8}, {"days": 3})],
)
def test_computed_due_in_out_of_range_refuses_the_operation(
    session_factory: Factory, orgs: None, due_in: str, too_far: dict[str, int], near: dict[str, int]
) -> None:
    deploy(session_factory, sequence("due", user_task("decide", dueIn=due_in)))
    with pytest.raises(engine.LimitError, match="decide: ") as caught:
        bounded(lambda: start(session_factory, "due", **too_far))
    assert caught.value.element == "decide"
    assert instance_count(session_factory) == 0
    assert bounded(lambda: start(session_factory, "due", **near)).status == "running"


# -- 3. model size -------------------------------------------------------------------


@pytest.mark.parametrize("count", [500, 2000])
def test_long_chain_deploys(session_factory: Factory, count: int) -> None:
    bounded(lambda: deploy(session_factory, chain_of(count, "chain")), 10)


def test_long_chain_deploys_in_a_thread_with_a_small_stack(session_factory: Factory) -> None:
    # Web servers parse in request threads; no deep recursion may need the main thread's stack.
    text = chain_of(2000, "chain")
    old = threading.stack_size(1024 * 1024)
    try:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                deploy(session_factory, text)
                outcome["ok"] = True
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
    finally:
        threading.stack_size(old)
    thread.join(10)
    assert not thread.is_alive()
    assert outcome == {"ok": True}


def test_2000_task_chain_runs_to_its_end(session_factory: Factory, orgs: None) -> None:
    deploy(session_factory, chain_of(2000, "chain"))
    # SpiffWorkflow re-walks the predicted rest of the chain on every step: seconds, not minutes.
    instance = bounded(lambda: start(session_factory, "chain"), 30)
    assert (instance.status, instance.error_message) == ("completed", None)


def test_2000_task_chain_is_saved_and_restored(session_factory: Factory, orgs: None) -> None:
    deploy(session_factory, chain_of(2000, "chain", end_with_user_task=True))
    instance = bounded(lambda: start(session_factory, "chain"), 30)
    assert instance.status == "running"
    engine.SPEC_CACHE.clear()  # restored with a freshly parsed spec, as in another process

    def complete() -> str:
        with session_factory.begin() as s:
            (task,) = engine.list_tasks(s, instance_id=instance.id)
            assert task.bpmn_id == "last"
            assert engine.instance_data(s, engine.get_instance(s, instance.id))["n"] == 1999
            return engine.complete_task(s, task.id, user="north-req").status

    assert bounded(complete, 30) == "completed"


def test_process_with_too_many_elements_is_refused_at_deploy(
    session_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_FLOW_NODES_PER_PROCESS", 100)
    deploy(session_factory, chain_of(98, "fits"))  # start + 98 + end
    with pytest.raises(engine.DeploymentError, match="101 activities, events and gateways") as caught:
        deploy(session_factory, chain_of(99, "too_long"), "too_long.bpmn")
    assert (caught.value.file, caught.value.element, caught.value.line) == ("too_long.bpmn", "too_long", 5)


def test_default_element_limit_refuses_ten_thousand_parallel_tasks(session_factory: Factory) -> None:
    nodes = ['<bpmn:startEvent id="start" />', '<bpmn:parallelGateway id="split" />']
    nodes += [user_task(f"t{i}") for i in range(10_000)]
    flows = [("start", "split")] + [("split", f"t{i}") for i in range(10_000)]
    with pytest.raises(engine.DeploymentError, match="at most 5000 are allowed"):
        bounded(lambda: deploy(session_factory, process("wide", nodes, flows)))


# -- 4. tasks per instance ---------------------------------------------------------------


def parallel(count: int) -> str:
    nodes = [
        '<bpmn:startEvent id="start" />',
        '<bpmn:parallelGateway id="split" />',
        '<bpmn:parallelGateway id="join" />',
        '<bpmn:endEvent id="end" />',
    ]
    nodes += [script(f"t{i}", "x = 1") for i in range(count)]
    flows = [("start", "split"), ("join", "end")]
    flows += [pair for i in range(count) for pair in (("split", f"t{i}"), (f"t{i}", "join"))]
    return process("wide", nodes, flows)


def test_too_many_parallel_branches_are_refused_at_deploy(session_factory: Factory) -> None:
    # SpiffWorkflow's join costs grow with the square of the branches: 1 000 took a minute.
    deploy(session_factory, parallel(limits.MAX_OUTGOING_FLOWS))
    with pytest.raises(engine.DeploymentError, match="201 sequence flows leave this element") as caught:
        bounded(lambda: deploy(session_factory, parallel(limits.MAX_OUTGOING_FLOWS + 1), "wide.bpmn"))
    assert (caught.value.file, caught.value.element, caught.value.line) == ("wide.bpmn", "split", 7)


def test_a_start_that_would_create_too_many_tasks_is_refused(
    session_factory: Factory, orgs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(session_factory, parallel(100))
    assert bounded(lambda: start(session_factory, "wide")).status == "completed"
    monkeypatch.setattr(limits, "MAX_TASKS_PER_INSTANCE", 250)  # 100 branches predict about 300 tasks
    with pytest.raises(engine.LimitError, match="would have more than 250 tasks"):
        bounded(lambda: start(session_factory, "wide"))
    assert instance_count(session_factory) == 1


def multi_instance(cardinality: str) -> str:
    return sequence(
        "per_item",
        user_task("choose"),
        '<bpmn:scriptTask id="each"><bpmn:multiInstanceLoopCharacteristics>'
        f"<bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>"
        "</bpmn:multiInstanceLoopCharacteristics><bpmn:script>y = 1</bpmn:script></bpmn:scriptTask>",
        user_task("after"),
    )


def test_parallel_multi_instance_of_a_million_is_refused_and_the_task_stays_open(
    session_factory: Factory, orgs: None
) -> None:
    deploy(session_factory, multi_instance("count"))
    instance = start(session_factory, "per_item")
    with session_factory() as s:
        before = engine.get_instance(s, instance.id).state
        (task,) = engine.list_tasks(s, instance_id=instance.id)

    def complete(count: int) -> engine.ProcessInstance:
        with session_factory.begin() as s:
            return engine.complete_task(s, task.id, user="north-req", data={"count": count})

    with pytest.raises(engine.LimitError, match="each: the instance would have more than") as caught:
        bounded(lambda: complete(1_000_000))
    assert (caught.value.limit, caught.value.element) == ("tasks", "each")
    with session_factory() as s:
        assert engine.get_instance(s, instance.id).state == before
        assert [(t.bpmn_id, t.state) for t in engine.list_tasks(s, instance_id=instance.id)] == [
            ("choose", "ready")
        ]
    # The same task, with a sensible count, goes on.
    assert bounded(lambda: complete(50)).status == "running"


# -- 5. state size -----------------------------------------------------------------------

BIG = "s = 'x' * 1000000\ncopies = [s] * {n}"


def test_state_of_gigabytes_is_refused_before_it_is_built(session_factory: Factory, orgs: None) -> None:
    # 2 000 references to one 1 MB string: 2 GB of JSON.
    deploy(session_factory, sequence("big", script("fill", BIG.format(n=2000)), user_task("after")))
    with pytest.raises(engine.LimitError, match="variable 'copies': the instance's state would be larger"):
        bounded(lambda: start(session_factory, "big"))
    assert instance_count(session_factory) == 0


def test_integer_too_long_for_json_is_a_clear_error(session_factory: Factory, orgs: None) -> None:
    deploy(session_factory, sequence("huge", script("grow", "x = 2**20000"), user_task("after")))
    with pytest.raises(engine.LimitError, match="variable 'x': an integer of more than 4300 digits"):
        bounded(lambda: start(session_factory, "huge"))


def test_state_limit_is_read_from_the_environment_at_use(
    session_factory: Factory, orgs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(session_factory, sequence("big", script("fill", BIG.format(n=3)), user_task("after")))
    assert bounded(lambda: start(session_factory, "big")).status == "running"  # 3 MB < 5 MB
    monkeypatch.setenv("PROCFLOW_MAX_STATE_BYTES", "2000000")
    with pytest.raises(engine.LimitError, match="larger than 2000000 bytes"):
        bounded(lambda: start(session_factory, "big"))
    monkeypatch.setenv("PROCFLOW_MAX_STATE_BYTES", "lots")
    with pytest.raises(engine.LimitError, match="is not a positive number of bytes"):
        bounded(lambda: start(session_factory, "big"))


def test_completing_a_task_that_would_store_too_much_keeps_the_task_open(
    session_factory: Factory, orgs: None
) -> None:
    text = sequence("big", user_task("ask"), script("fill", BIG.format(n="n")), user_task("after"))
    deploy(session_factory, text)
    instance = start(session_factory, "big")
    with session_factory() as s:
        before = engine.get_instance(s, instance.id).state
        (task,) = engine.list_tasks(s, instance_id=instance.id)
    with pytest.raises(engine.LimitError), session_factory.begin() as s:
        bounded(lambda: engine.complete_task(s, task.id, user="north-req", data={"n": 200}))
    with session_factory() as s:
        reloaded = engine.get_instance(s, instance.id)
        assert (reloaded.status, reloaded.state) == ("running", before)
        assert [t.state for t in engine.list_tasks(s, instance_id=instance.id, state=None)] == ["ready"]


def test_timer_step_that_would_store_too_much_puts_the_instance_in_error(
    session_factory: Factory, orgs: None
) -> None:
    wait = timer_event("wait", "timeDuration", "'PT1H'")
    text = sequence("later", wait, script("fill", BIG.format(n=200)), user_task("x"))
    deploy(session_factory, text)
    instance = start(session_factory, "later")
    with session_factory() as s:
        before = engine.get_instance(s, instance.id).state
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2), tick=True):
        summary = bounded(lambda: engine.run_due_jobs(session_factory))
    assert (summary.failed, summary.incidents) == (1, 1)  # at once: the same step would fail again
    with session_factory() as s:
        reloaded = engine.get_instance(s, instance.id)
        assert reloaded.status == "error"
        assert "variable 'copies'" in (reloaded.error_message or "")
        assert reloaded.state == before
        last = engine.instance_events(s, instance.id)[-1]
        assert last.kind == "error" and last.detail["limit"] == "state"
        (job,) = s.scalars(sa.select(engine.Job).where(engine.Job.instance_id == instance.id))
        assert job.status == "incident"
