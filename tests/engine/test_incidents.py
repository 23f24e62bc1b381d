"""Failures of a model or its data become incidents an admin can repair, never tracebacks or dead cases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy.orm as so

import engine

Factory = so.sessionmaker[so.Session]

# A spiff-arena style model: a post-script on a user task, then a parallel
# multi-instance review over a collection the data may not hold.
POST_SCRIPT_AND_REVIEW = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="post" name="Post" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="enter" name="Enter">
      <bpmn:extensionElements>
        <spiffworkflow:postScript>total = amount * rate</spiffworkflow:postScript>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="review" name="Review">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:loopDataInputRef>reviewers</bpmn:loopDataInputRef>
        <bpmn:inputDataItem id="reviewer" name="reviewer"/>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="enter" />
    <bpmn:sequenceFlow id="f2" sourceRef="enter" targetRef="review" />
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def instance_id(session_factory: Factory, orgs: None) -> int:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("post.bpmn", "bpmn", POST_SCRIPT_AND_REVIEW)], name="post")
        return engine.start_instance(s, "post", organisation="north", user="north-req").id


def _tasks(session_factory: Factory, instance_id: int) -> list[tuple[str, str]]:
    with session_factory() as s:
        return [(t.bpmn_id, t.state) for t in engine.list_tasks(s, instance_id=instance_id, state=None)]


def _error_events(session_factory: Factory, instance_id: int) -> list[engine.AuditEvent]:
    with session_factory() as s:
        return [e for e in engine.instance_events(s, instance_id) if e.kind == "error"]


def test_failing_post_script_puts_the_case_in_error_and_retry_completes_the_submission(
    session_factory: Factory, instance_id: int
) -> None:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
    with session_factory.begin() as s:
        instance = engine.complete_task(s, task.id, user="north-req", data={"amount": 3})
        assert instance.status == "error"
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "error"
        assert "enter" in (instance.error_message or "")
        assert "NameError: name 'rate' is not defined" in (instance.error_message or "")
        assert "line 1" in (instance.error_message or "")
    (event,) = _error_events(session_factory, instance_id)
    assert event.element == "enter" and event.detail["line"] == 1 and event.detail["file"] == "post.bpmn"
    assert _tasks(session_factory, instance_id) == [("enter", "error")]

    # The task cannot be submitted again while the case waits for repair.
    with session_factory.begin() as s, pytest.raises(engine.InvalidStateError, match="repair and retry"):
        engine.complete_task(s, task.id, user="north-req", data={"amount": 3})

    # Another process repairs it: the submission is kept and the post-script runs again.
    engine.SPEC_CACHE.clear()
    with session_factory.begin() as s:
        engine.retry_instance(s, instance_id, user="north-admin", data={"rate": 2, "reviewers": ["a", "b"]})
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "running" and instance.error_message is None
        assert engine.instance_data(s, instance)["total"] == 6
    assert _tasks(session_factory, instance_id) == [("enter", "completed")] + [("review", "ready")] * 2


def test_multi_instance_without_its_collection_is_an_incident_not_a_dead_case(
    session_factory: Factory, instance_id: int
) -> None:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
    with session_factory.begin() as s:
        engine.complete_task(s, task.id, user="north-req", data={"amount": 3, "rate": 2})
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "error"
        assert instance.error_message == "review: TypeError: 'NoneType' object is not iterable"
        assert engine.element_states(s, instance)["failed"] == ["review"]
    (event,) = _error_events(session_factory, instance_id)
    assert event.element == "review"

    # A retry without the missing data fails the same way, and says so.
    with session_factory.begin() as s:
        assert engine.retry_instance(s, instance_id, user="north-admin").status == "error"
    engine.SPEC_CACHE.clear()
    with session_factory.begin() as s:
        engine.retry_instance(s, instance_id, user="north-admin", data={"reviewers": ["ann", "bo", "cy"]})
    assert _tasks(session_factory, instance_id) == [("enter", "completed")] + [("review", "ready")] * 3
    with session_factory() as s:
        for review in engine.list_tasks(s, instance_id=instance_id):
            engine.complete_task(s, review.id, user="north-req")
        s.commit()
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "completed"


DUE_BY_EXPRESSION = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="due" name="Due" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="Work">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="dueIn" value="{due_in}" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_due_date_expression_that_fails_is_an_incident_not_a_task_without_a_deadline(
    session_factory: Factory, orgs: None
) -> None:
    # An expression that begins with "p" is an expression, not an unquoted ISO duration.
    bpmn = DUE_BY_EXPRESSION.format(due_in="parameters['sla_days']")
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("due.bpmn", "bpmn", bpmn)], name="due")
        instance = engine.start_instance(s, "due", organisation="north", user="north-req")
        assert instance.status == "error"
        assert "work" in (instance.error_message or "") and "sla_days" in (instance.error_message or "")
        instance_id = instance.id
    assert _tasks(session_factory, instance_id) == []
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north").id
        engine.set_parameter(s, "sla_days", 3, organisation_id=north, valid_from=dt.date(2020, 1, 1))
    with session_factory.begin() as s:
        assert engine.retry_instance(s, instance_id, user="north-admin").status == "running"
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        assert task.due_at is not None


def test_an_unquoted_iso_duration_is_still_a_duration(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        bpmn = DUE_BY_EXPRESSION.format(due_in="P2D")
        engine.deploy_files(s, [engine.BundleFile("due.bpmn", "bpmn", bpmn)], name="due")
        instance_id = engine.start_instance(s, "due", organisation="north", user="north-req").id
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        assert task.due_at is not None and task.due_at - task.created_at == dt.timedelta(days=2)
