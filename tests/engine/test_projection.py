"""The reporting projection: declared at deploy, written with the instance, read per organisation."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine.connectors import ConnectorContext
from engine.projection import ReportedSumConnector, sum_reported

Factory = so.sessionmaker[so.Session]

# A purchase: entered, then approved by someone who is neither the requester nor a conflicted participant.
PURCHASE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="purchase" name="Purchase" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="enter" name="Enter">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="approve" name="Approve">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="candidateGroup" value="approvers"/>
          <spiffworkflow:property name="excludeUsersFrom" value="%s"/>
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="enter" />
    <bpmn:sequenceFlow id="f2" sourceRef="enter" targetRef="approve" />
    <bpmn:sequenceFlow id="f3" sourceRef="approve" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
REPORTING = {
    "fields": {
        "group": {"type": "string", "key": "cpv_group", "indexed": True},
        "year": {"type": "integer", "key": "fiscal_year", "indexed": True},
        "value": {"type": "number", "key": "order.value"},
        "urgent": {"type": "boolean", "indexed": True},
        "due": {"type": "date"},
        "lines": {"type": "json", "key": "order.lines"},
    }
}


def _bundle(reporting: Any = REPORTING, exclude: str = "[requester] + conflicted") -> list[engine.BundleFile]:
    files = [engine.BundleFile("purchase.bpmn", "bpmn", PURCHASE % exclude)]
    if reporting is not None:
        text = reporting if isinstance(reporting, str) else json.dumps(reporting)
        files.append(engine.BundleFile("reporting.json", "form", text))
    return files


@pytest.fixture
def deployed(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.add_user(s, "north-boss2", organisation="north", roles=["case_handler"], groups=["approvers"])
        engine.deploy_files(s, _bundle(), name="purchase")


def _enter(session_factory: Factory, org: str, data: dict[str, Any], *, user: str | None = None) -> int:
    user = user or f"{org}-req"
    with session_factory.begin() as s:
        instance = engine.start_instance(s, "purchase", organisation=org, user=user)
        instance_id = instance.id
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
    with session_factory.begin() as s:
        engine.complete_task(s, task.id, user=user, data=data)
    return instance_id


def _report(session_factory: Factory, instance_id: int) -> engine.models.CaseReport:
    with session_factory() as s:
        return s.get_one(engine.models.CaseReport, instance_id)


def _values(session_factory: Factory, instance_id: int) -> dict[str, tuple[Any, ...]]:
    with session_factory() as s:
        rows = s.scalars(
            sa.select(engine.models.CaseReportValue).where(
                engine.models.CaseReportValue.instance_id == instance_id
            )
        )
        return {r.name: (r.text_value, r.number_value, r.date_value) for r in rows}


PURCHASE_DATA = {
    "cpv_group": "391",
    "fiscal_year": 2025,
    "order": {"value": 1200.5, "lines": [{"item": "paper", "count": 3, "on": "2025-04-01"}]},
    "urgent": True,
    "due": "2025-04-01",
    "requester": "north-boss",
    "conflicted": [],
}


def test_every_instance_has_a_row_with_its_declared_fields_written_with_each_step(
    session_factory: Factory, deployed: None
) -> None:
    with session_factory.begin() as s:
        started = engine.start_instance(s, "purchase", organisation="north", user="north-req", title="Chairs")
        instance_id = started.id
    report = _report(session_factory, instance_id)
    assert (report.process_id, report.status, report.title) == ("purchase", "running", "Chairs")
    assert report.fields == {
        "group": None,
        "year": None,
        "value": None,
        "urgent": None,
        "due": None,
        "lines": None,
    }
    assert report.completed_at is None

    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
    with session_factory.begin() as s:
        engine.complete_task(s, task.id, user="north-req", data=PURCHASE_DATA)
    report = _report(session_factory, instance_id)
    assert report.fields == {
        "group": "391",
        "year": 2025,
        "value": 1200.5,
        "urgent": True,
        "due": "2025-04-01",
        "lines": [{"item": "paper", "count": 3, "on": "2025-04-01"}],
    }
    assert _values(session_factory, instance_id) == {
        "group": ("391", None, None),
        "year": (None, Decimal(2025), None),
        "urgent": ("true", None, None),
    }

    with session_factory() as s:
        (approve,) = engine.list_tasks(s, instance_id=instance_id)
    with session_factory.begin() as s:
        engine.complete_task(s, approve.id, user="north-boss2", data={})
    report = _report(session_factory, instance_id)
    assert report.status == "completed" and report.completed_at is not None


def test_a_value_of_the_wrong_type_is_stored_as_null_not_a_failed_step(
    session_factory: Factory, deployed: None
) -> None:
    instance_id = _enter(
        session_factory,
        "north",
        {**PURCHASE_DATA, "fiscal_year": "next year", "order": "none", "urgent": "yes", "due": "soon"},
    )
    assert _report(session_factory, instance_id).fields == {
        "group": "391",
        "year": None,
        "value": None,
        "urgent": None,
        "due": None,
        "lines": None,
    }


def test_the_projection_rolls_back_with_the_instance(session_factory: Factory, deployed: None) -> None:
    with pytest.raises(RuntimeError), session_factory.begin() as s:
        instance_id = engine.start_instance(s, "purchase", organisation="north", user="north-req").id
        raise RuntimeError("the request failed after the start")
    with session_factory() as s:
        assert s.get(engine.models.CaseReport, instance_id) is None


def test_sum_reads_only_the_own_organisations_matching_cases(
    session_factory: Factory, deployed: None
) -> None:
    first = _enter(session_factory, "north", PURCHASE_DATA)
    second = _enter(session_factory, "north", {**PURCHASE_DATA, "order": {"value": 99.5}})
    _enter(session_factory, "north", {**PURCHASE_DATA, "cpv_group": "302"})  # another kind
    _enter(session_factory, "north", {**PURCHASE_DATA, "fiscal_year": 2024})  # another year
    _enter(session_factory, "north", {**PURCHASE_DATA, "order": {}})  # nothing to sum
    _enter(session_factory, "south", PURCHASE_DATA)  # another organisation
    with session_factory() as s:
        north = engine.get_organisation(s, "north").id
        found = sum_reported(
            s,
            organisation_id=north,
            process_id="purchase",
            where={"group": "391", "year": 2025, "urgent": True},
            field="value",
        )
        assert found.total == Decimal("1300.0")
        assert [c["instance_id"] for c in found.cases] == [first, second]
        assert found.cases[0]["value"] == 1200.5 and found.cases[0]["status"] == "running"

        # Through the connector, the calling case never counts itself.
        context = ConnectorContext(
            session=s, organisation_id=north, instance_id=first, element="x", actor=None
        )
        result = ReportedSumConnector()(
            context, process_id="purchase", where={"group": "391", "year": 2025}, field="value"
        )
        assert (result["total"], result["count"]) == (99.5, 1)
        with pytest.raises(engine.ConnectorError, match="'where' must be a mapping"):
            ReportedSumConnector()(context, process_id="purchase", where="391", field="value")
        with pytest.raises(engine.ConnectorError, match="the value of 'group'"):
            ReportedSumConnector()(context, process_id="purchase", where={"group": ["391"]}, field="value")


def test_the_connector_is_registered() -> None:
    assert isinstance(engine.CONNECTORS.get("reporting.sum"), ReportedSumConnector)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "invalid JSON"),
        (["fields"], 'one key, "fields"'),
        ({"fields": [], "extra": 1}, 'one key, "fields"'),
        ({"fields": {"value": {"type": "money"}}}, "field 'value': type 'money' is not one of"),
        (
            {"fields": {"value": {"type": "number", "key": "order..value"}}},
            "field 'value': key 'order..value'",
        ),
        ({"fields": {"value": {"type": "number", "indexed": "yes"}}}, "field 'value': indexed must be"),
        (
            {"fields": {"value": {"type": "number", "label": "Value"}}},
            "field 'value': unknown setting(s) label",
        ),
        ({"fields": {"1value": {"type": "number"}}}, "field '1value': a name is"),
        (
            {"fields": {"goals": {"type": "json", "indexed": True}}},
            "field 'goals': a json field cannot be indexed",
        ),
        ({"fields": {"value": {"type": "string", "search": "yes"}}}, "field 'value': search must be"),
        (
            {"fields": {"value": {"type": "number", "indexed": True, "search": True}}},
            "field 'value': only an indexed string field can be searched",
        ),
        ({"fields": {"value": "number"}}, "field 'value' must be an object"),
    ],
)
def test_a_bad_reporting_file_is_a_deployment_error_naming_file_and_field(
    session_factory: Factory, orgs: None, content: Any, message: str
) -> None:
    with pytest.raises(engine.DeploymentError) as info, session_factory.begin() as s:
        engine.deploy_files(s, _bundle(content), name="purchase")
    assert info.value.file == "reporting.json"
    assert message in str(info.value)


def test_a_bundle_without_a_reporting_file_still_gets_rows(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, _bundle(None), name="purchase")
        instance_id = engine.start_instance(s, "purchase", organisation="north", user="north-req").id
    assert _report(session_factory, instance_id).fields == {}


# -- excludeUsersFrom -----------------------------------------------------------------------


def _approve_task(session_factory: Factory, instance_id: int) -> engine.HumanTask:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        _ = task.exclusions
        return task


def test_exclude_users_from_keeps_the_named_requester_and_the_conflicted_off_the_task(
    session_factory: Factory, deployed: None
) -> None:
    instance_id = _enter(
        session_factory,
        "north",
        {**PURCHASE_DATA, "requester": "north-boss", "conflicted": ["north-boss2", "south-boss", "nobody"]},
    )
    task = _approve_task(session_factory, instance_id)
    with session_factory() as s:
        ids = {u: engine.get_user(s, u).id for u in ("north-boss", "north-boss2")}
    # Only users of the organisation are looked up; unknown names are simply nobody.
    assert task.excluded_user_ids == sorted(ids.values())
    for user in ("north-boss", "north-boss2"):
        with (
            pytest.raises(engine.PermissionDeniedError, match="separation of duties"),
            session_factory.begin() as s,
        ):
            engine.complete_task(s, task.id, user=user, data={})
        with session_factory() as s:
            assert task.id not in [t.id for t in engine.list_tasks(s, user=user)]


def test_exclude_users_from_giving_no_usernames_is_an_incident(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, _bundle(exclude="{'who': requester}"), name="purchase")
    instance_id = _enter(session_factory, "north", PURCHASE_DATA)
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "error"
        assert "excludeUsersFrom gave {'who': 'north-boss'}" in (instance.error_message or "")


def test_rows_keep_their_dates(session_factory: Factory, deployed: None) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    instance_id = _enter(session_factory, "north", PURCHASE_DATA)
    report = _report(session_factory, instance_id)
    assert before <= report.started_at <= report.updated_at
