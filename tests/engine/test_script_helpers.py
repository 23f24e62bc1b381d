"""spiff-arena's script helpers: what they answer, and only from the instance's organisation."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy.orm as so

import engine
from engine._sandbox import RESERVED_DATA_NAMES, InlineEnvironment, SandboxedEnvironment
from engine._script_helpers import SPIFF_ARENA_HELPERS, BoundHelper, ScriptHelper

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_helpers" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="helpers" name="Helpers" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="first" name="First">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>starter = get_process_initiator_user()
me = get_current_user()
members = {key: get_group_members(key) for key in group_keys}
info = get_toplevel_process_info()
local = get_localtime("2026-06-01T10:00:00").isoformat()
local_in_stockholm = get_localtime(datetime(2026, 1, 1, 12, 0), "Europe/Stockholm").isoformat()</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:userTask id="check" name="Check">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="second" name="Second">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:script>completer = get_current_user()["username"]
starter_again = get_process_initiator_user()["username"]</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="first" />
    <bpmn:sequenceFlow id="f2" sourceRef="first" targetRef="check" />
    <bpmn:sequenceFlow id="f3" sourceRef="check" targetRef="second" />
    <bpmn:sequenceFlow id="f4" sourceRef="second" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def deployed(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    with session_factory.begin() as s:
        engine.add_user(s, "south-only", organisation="south", roles=["case_handler"], groups=["auditors"])
        helsinki = engine.get_organisation(s, "north")
        engine.set_parameter(
            s, "time_zone", "Europe/Helsinki", organisation_id=helsinki.id, valid_from=dt.date(2020, 1, 1)
        )
        engine.deploy_files(s, [engine.BundleFile("helpers.bpmn", "bpmn", BPMN)], name="helpers")


def _start(session_factory: so.sessionmaker[so.Session], *group_keys: str) -> engine.ProcessInstance:
    with session_factory.begin() as s:
        instance = engine.start_instance(
            s, "helpers", organisation="north", user="north-req", data={"group_keys": list(group_keys)}
        )
    engine.SPEC_CACHE.clear()
    return instance


def _data(session_factory: so.sessionmaker[so.Session], instance_id: int) -> dict[str, object]:
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status != "error", instance.error_message
        return engine.instance_data(s, instance)


def test_the_helpers_answer_from_the_instances_organisation(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance = _start(session_factory, "approvers", "requesters")
    data = _data(session_factory, instance.id)
    assert data["starter"] == data["me"]
    starter = data["starter"]
    assert isinstance(starter, dict) and starter["username"] == "north-req"
    assert set(starter) == {
        "id",
        "username",
        "email",
        "display_name",
        "service",
        "service_id",
        "created_at_in_seconds",
    }
    # The south organisation has groups of the same keys: none of its members show.
    assert data["members"] == {"approvers": ["north-boss"], "requesters": ["north-boss", "north-req"]}
    assert data["info"] == {"process_instance_id": instance.id, "process_model_identifier": "helpers"}
    assert data["local"] == "2026-06-01T13:00:00+03:00"  # naive is UTC; the organisation's zone
    assert data["local_in_stockholm"] == "2026-01-01T13:00:00+01:00"


def test_the_current_user_is_who_completes_the_task(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance = _start(session_factory)
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance.id)
    with session_factory.begin() as s:
        engine.complete_task(s, task.id, user="north-boss", data={})
    data = _data(session_factory, instance.id)
    assert (data["completer"], data["starter_again"]) == ("north-boss", "north-req")


def test_a_group_of_another_organisation_is_not_found(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance = _start(session_factory, "auditors")  # only south has it
    with session_factory() as s:
        failed = engine.get_instance(s, instance.id)
    assert failed.status == "error"
    assert "this organisation has no group 'auditors'" in (failed.error_message or "")
    assert "south-only" not in (failed.error_message or "")


def test_scripts_cannot_reach_into_a_helper() -> None:
    helper = ScriptHelper("get_group_members", lambda: {"approvers": ["a"]})
    environment = InlineEnvironment(extra_globals={"get_group_members": helper})
    for source in (
        "get_group_members._data",
        "get_group_members._load",
        "getattr(get_group_members, '_data')",
    ):
        with pytest.raises(engine.ScriptError, match="not allowed"):
            environment.evaluate(source, {})
    assert environment.evaluate("get_group_members('approvers')", {}) == ["a"]


def test_data_is_loaded_only_when_a_script_names_the_helper() -> None:
    loads: list[str] = []

    def load() -> dict[str, list[str]]:
        loads.append("members")
        return {"approvers": ["a", "b"]}

    environment = SandboxedEnvironment(
        extra_globals={"get_group_members": ScriptHelper("get_group_members", load)}
    )
    assert environment.evaluate("1 + 1", {}) == 2
    assert loads == []
    assert environment.evaluate("len(get_group_members('approvers'))", {}) == 2
    assert environment.evaluate("get_group_members('approvers')[0]", {}) == "a"
    assert loads == ["members"]  # once per operation


def test_answers_are_copies() -> None:
    helper = BoundHelper("get_current_user", {"username": "anna"})
    first = helper()
    first["username"] = "changed"
    assert helper() == {"username": "anna"}


def test_helper_names_are_reserved_in_submitted_data() -> None:
    assert SPIFF_ARENA_HELPERS <= RESERVED_DATA_NAMES and "json" in RESERVED_DATA_NAMES


def test_json_helper_reads_and_writes() -> None:
    environment = InlineEnvironment()
    assert environment.evaluate('json.loads(\'{"a": [1, 2]}\')["a"]', {}) == [1, 2]
    assert environment.evaluate("json.dumps({'b': 1}, sort_keys=True)", {}) == '{"b": 1}'
    with pytest.raises(engine.ScriptError, match="too large"):
        environment.evaluate("json.dumps([1], indent=10**9)", {})
