"""Failures inside instances: sandbox escapes, script errors, failing connectors, retry."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine

Factory = so.sessionmaker[so.Session]

SCRIPT_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="scripted" name="Scripted" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="run_script" name="Run script">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:serviceTask id="call" name="Call connector">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="answer">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="value" type="int" value="value" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:userTask id="after" name="After">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="run_script" />
    <bpmn:sequenceFlow id="f2" sourceRef="run_script" targetRef="call" />
    <bpmn:sequenceFlow id="f3" sourceRef="call" targetRef="after" />
    <bpmn:sequenceFlow id="f4" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

ESCAPES = {
    "dunder-import": "__import__('os').system('true')",
    "import": "import os",
    "open": "data = open('/etc/passwd').read()",
    "subclasses": "x = ().__class__.__base__.__subclasses__()",
    "getattr-dunder": "x = getattr(value, '__class__')",
    "format-walk": "x = '{0.__class__}'.format(value)",
    "generator-frame": "g = (i for i in [1])\nx = g.gi_frame.f_globals",
    "type": "x = type(value)",
    "vars": "x = vars()",
    "globals": "x = globals()",
    "endless-loop": "while True:\n    pass",
}


def _deploy(session_factory: Factory, script: str, operation: str = "test.double") -> None:
    text = SCRIPT_PROCESS.format(script=escape(script), operation=operation)
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("scripted.bpmn", "bpmn", text)], name="scripted")


def _start(session_factory: Factory, **data: Any) -> engine.ProcessInstance:
    with session_factory.begin() as s:
        return engine.start_instance(s, "scripted", organisation="north", user="north-req", data=data)


@pytest.fixture
def double_connector() -> Any:
    engine.CONNECTORS.register("test.double", lambda context, value: {"doubled": value * 2})
    yield
    engine.CONNECTORS.unregister("test.double")


@pytest.fixture(autouse=True)
def _fast_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine._workflow, "SCRIPT_TIME_LIMIT", 0.3)


# What the sandbox's compiler refuses, deploy refuses already (engine.expressions.bpmn_code_problems).
REFUSED_AT_DEPLOY = {"dunder-import", "import", "subclasses", "generator-frame"}


@pytest.mark.parametrize("name", sorted(REFUSED_AT_DEPLOY))
def test_an_escape_the_compiler_refuses_is_refused_at_deploy(
    session_factory: Factory, orgs: None, double_connector: None, name: str
) -> None:
    with pytest.raises(engine.DeploymentError) as refused:
        _deploy(session_factory, ESCAPES[name])
    assert refused.value.element == "run_script"
    assert "the sandbox refuses this script" in refused.value.message


@pytest.mark.parametrize("script", ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_attempt_puts_the_instance_in_error(
    session_factory: Factory,
    orgs: None,
    double_connector: None,
    script: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As for a version deployed before deploy checked code: the run-time wall stops it on its own.
    monkeypatch.setattr(engine.expressions, "bpmn_code_problems", lambda root, file_name: [])
    _deploy(session_factory, script)
    instance = _start(session_factory, value=1)
    assert instance.status == "error"
    assert instance.error_message and "run_script" in instance.error_message
    with session_factory() as s:
        events = engine.instance_events(s, instance.id)
        assert events[-1].kind == "error" and events[-1].element == "run_script"
    # The process (and the engine) survive: a harmless instance still runs.
    _deploy(session_factory, "value = value + 1")
    assert _start(session_factory, value=1).status == "running"


def test_script_error_reports_the_line(session_factory: Factory, orgs: None, double_connector: None) -> None:
    _deploy(session_factory, "a = 1\nb = 2\nc = missing + 1")
    instance = _start(session_factory, value=1)
    assert instance.status == "error"
    assert "line 3" in (instance.error_message or "")
    assert "missing" in (instance.error_message or "")


def test_retry_with_corrected_data_continues(
    session_factory: Factory, orgs: None, double_connector: None
) -> None:
    _deploy(session_factory, "result = value * 10")
    instance = _start(session_factory)
    assert instance.status == "error"
    with session_factory.begin() as s:
        retried = engine.retry_instance(s, instance.id, user="north-admin", data={"value": 4})
        assert retried.status == "running"
        assert engine.instance_data(s, retried)["answer"] == {"doubled": 8}
        assert engine.instance_data(s, retried)["result"] == 40


def test_failing_connector_leaves_instance_in_error_and_retryable(
    session_factory: Factory, orgs: None
) -> None:
    state = {"fail": True}

    def flaky(context: engine.ConnectorContext, value: int) -> dict[str, int]:
        if state["fail"]:
            raise ConnectionError("supplier registry unreachable")
        return {"ok": value}

    engine.CONNECTORS.register("test.flaky", flaky)
    try:
        _deploy(session_factory, "value = 5", operation="test.flaky")
        instance = _start(session_factory)
        assert instance.status == "error"
        assert "supplier registry unreachable" in (instance.error_message or "")
        assert "call" in (instance.error_message or "")
        state["fail"] = False
        with session_factory.begin() as s:
            assert engine.retry_instance(s, instance.id, user="north-admin").status == "running"
    finally:
        engine.CONNECTORS.unregister("test.flaky")


def test_unknown_connector_is_named(session_factory: Factory, orgs: None) -> None:
    _deploy(session_factory, "value = 5", operation="no.such.connector")
    instance = _start(session_factory)
    assert instance.status == "error"
    assert "No connector 'no.such.connector'" in (instance.error_message or "")


def test_email_connector_writes_outbox_and_worker_sends(
    session_factory: Factory, orgs: None, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import FIXTURES

    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval")
        iid = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    data = {"subject": "Chairs", "amount": 10, "requester_email": "r@example.org"}
    for user, values in (("north-req", data), ("north-boss", {"approved": True})):
        with session_factory.begin() as s:
            (task,) = engine.list_tasks(s, instance_id=iid)
            engine.complete_task(s, task.id, user=user, data=values)
    with session_factory() as s:
        message = s.scalars(sa.select(engine.OutboxMessage)).one()
        assert message.status == "pending"
    caplog.set_level("INFO", logger="engine.connectors")
    assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        assert s.scalars(sa.select(engine.OutboxMessage)).one().status == "sent"
    assert "Approved: Chairs" in caplog.text
