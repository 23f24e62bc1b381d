"""Task data and message payloads are plain data: whatever keys they hold, they round-trip."""

from __future__ import annotations

from typing import Any

import sqlalchemy.orm as so

import engine
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]

TWO_STEPS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="two_steps" name="Two steps" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="enter" name="Enter"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="copy" name="Copy">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>copied = x
built = {'typename': 'Task', 'nested': [{'typename': 'Decimal', 'value': 'oops'}]}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:userTask id="check" name="Check"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="enter" />
    <bpmn:sequenceFlow id="f2" sourceRef="enter" targetRef="copy" />
    <bpmn:sequenceFlow id="f3" sourceRef="copy" targetRef="check" />
    <bpmn:sequenceFlow id="f4" sourceRef="check" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

LOOKALIKES: dict[str, Any] = {
    "x": {"typename": "BpmnWorkflow"},
    "typename": "Decimal",
    "value": "not a number",
    "rows": [{"typename": "Task", "id": "nope"}, {"typename": "procflow.data", "value": {"a": 1}}],
    "deep": {"a": {"b": {"typename": "date", "value": "yesterday"}}},
}


def _task(session_factory: Factory, instance_id: int, bpmn_id: str) -> int:
    with session_factory() as s:
        (task,) = [t for t in engine.list_tasks(s, instance_id=instance_id) if t.bpmn_id == bpmn_id]
        return task.id


def test_task_data_that_looks_like_serializer_objects_round_trips(
    session_factory: Factory, orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("two_steps.bpmn", "bpmn", TWO_STEPS)], name="two_steps")
        instance_id = engine.start_instance(s, "two_steps", organisation="north", user="north-req").id
    with session_factory.begin() as s:
        engine.complete_task(
            s, _task(session_factory, instance_id, "enter"), user="north-req", data=LOOKALIKES
        )
    # A fresh process: nothing parsed or restored survives from the step before.
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "running"
        data = engine.instance_data(s, instance)
    for key, value in LOOKALIKES.items():
        assert data[key] == value
    assert data["copied"] == LOOKALIKES["x"]
    assert data["built"] == {"typename": "Task", "nested": [{"typename": "Decimal", "value": "oops"}]}
    with session_factory() as s:
        assert engine.element_states(s, engine.get_instance(s, instance_id))["active"] == ["check"]
    with session_factory.begin() as s:
        engine.suspend_instance(s, instance_id, user="north-admin")
    with session_factory.begin() as s:
        engine.resume_instance(s, instance_id, user="north-admin")
    engine.SPEC_CACHE.clear()
    with session_factory.begin() as s:
        engine.complete_task(s, _task(session_factory, instance_id, "check"), user="north-req")
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "completed"


def test_message_payload_that_looks_like_serializer_objects_round_trips(
    session_factory: Factory, orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "messages")
        order_id = engine.start_instance(s, "order", organisation="north", user="north-req").id
    payload = {"order_id": "A-1", "typename": "BpmnWorkflow", "body": {"typename": "UUID", "value": "x"}}
    with session_factory.begin() as s:
        engine.send_message(s, "customer_reply", payload, organisation="north")
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        instance = engine.get_instance(s, order_id)
        assert instance.status == "running"
        assert engine.instance_data(s, instance)["reply"] == payload
