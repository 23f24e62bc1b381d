"""Instance migration: dry run with precise refusals, one transaction per move, restored from the db."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine.instance_migration import (
    MigrationRefusal,
    find_migration_version,
    form_changes,
    migrate_instance,
    migrate_instances,
    plan_migration,
)
from tests.conftest import FIXTURES

APPROVAL = FIXTURES / "approval"
DATA = {"subject": "Chairs", "amount": 100, "requester_email": "req@example.org"}


def _copy(tmp_path: Path, name: str, change: Callable[[Path], None]) -> Path:
    folder = tmp_path / name / "approval"
    shutil.copytree(APPROVAL, folder)
    change(folder)
    return folder


def _edit(path: Path, old: str, new: str, *, regex: bool = False) -> None:
    text = path.read_text()
    changed = re.sub(old, new, text, flags=re.S) if regex else text.replace(old, new)
    assert changed != text, f"{old!r} not found in {path.name}"
    path.write_text(changed)


def _rename_approve(folder: Path) -> None:
    _edit(folder / "approval.bpmn", 'name="Approve the purchase"', 'name="Approve the purchase (v2)"')


def _without_approve(folder: Path) -> None:
    bpmn = folder / "approval.bpmn"
    _edit(bpmn, r'<bpmn:userTask id="approve".*?</bpmn:userTask>', "", regex=True)
    _edit(bpmn, 'sourceRef="compute" targetRef="approve"', 'sourceRef="compute" targetRef="decided"')
    _edit(bpmn, r'<bpmn:sequenceFlow id="f4"[^>]*/>', "", regex=True)
    _edit(bpmn, "<bpmn:incoming>f4</bpmn:incoming>", "<bpmn:incoming>f3</bpmn:incoming>")
    _edit(bpmn, "<bpmn:flowNodeRef>approve</bpmn:flowNodeRef>", "")


def _without_request(folder: Path) -> None:
    bpmn = folder / "approval.bpmn"
    _edit(bpmn, r'<bpmn:userTask id="request".*?</bpmn:userTask>', "", regex=True)
    _edit(bpmn, 'sourceRef="start" targetRef="request"', 'sourceRef="start" targetRef="compute"')
    _edit(bpmn, r'<bpmn:sequenceFlow id="f2"[^>]*/>', "", regex=True)
    _edit(bpmn, "<bpmn:incoming>f2</bpmn:incoming>", "<bpmn:incoming>f1</bpmn:incoming>")
    _edit(bpmn, "<bpmn:flowNodeRef>request</bpmn:flowNodeRef>", "")


def _form(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "approve.schema.json"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def _deploy(session_factory: so.sessionmaker[so.Session], folder: Path) -> int:
    with session_factory.begin() as s:
        (deployed,) = engine.deploy_path(s, folder, organisation="north")
        return deployed.version


def _start(session_factory: so.sessionmaker[so.Session], *, to_approve: bool) -> int:
    with session_factory.begin() as s:
        instance = engine.start_instance(s, "approval", organisation="north", user="north-req")
        instance_id = instance.id
    if to_approve:
        with session_factory.begin() as s:
            (task,) = engine.list_tasks(s, instance_id=instance_id)
            engine.complete_task(s, task.id, user="north-req", data=dict(DATA))
    return instance_id


def _versions(
    s: so.Session, source: int, target: int
) -> tuple[engine.ProcessDefinition, engine.ProcessDefinition]:
    org = s.scalar(sa.select(engine.Organisation).where(engine.Organisation.key == "north"))
    assert org is not None
    return (
        find_migration_version(s, "approval", source, org.id, field_name="from_version"),
        find_migration_version(s, "approval", target, org.id, field_name="to_version"),
    )


def _org_id(s: so.Session) -> int:
    return s.scalar(sa.select(engine.Organisation.id).where(engine.Organisation.key == "north"))  # type: ignore[return-value]


def _row(s: so.Session, instance_id: int) -> tuple[int, int, str]:
    instance = s.get(engine.ProcessInstance, instance_id)
    assert instance is not None
    return instance.definition_id, instance.lock_version, instance.state


def _migrate(
    session_factory: so.sessionmaker[so.Session], source: int = 1, target: int = 2, **kwargs: object
) -> engine.instance_migration.MigrationResult:
    with session_factory() as s:
        src, dst = _versions(s, source, target)
        ids = (src.id, dst.id, _org_id(s))
    engine.SPEC_CACHE.clear()
    return migrate_instances(
        session_factory,
        source_id=ids[0],
        target_id=ids[1],
        organisation_id=ids[2],
        actor="north-admin",
        **kwargs,
    )


def test_an_open_task_moves_keeps_its_id_and_continues_on_the_new_version(
    session_factory: so.sessionmaker[so.Session], orgs: None, tmp_path: Path
) -> None:
    assert _deploy(session_factory, APPROVAL) == 1
    at_request = _start(session_factory, to_approve=False)
    at_approve = _start(session_factory, to_approve=True)
    assert _deploy(session_factory, _copy(tmp_path, "v2", _rename_approve)) == 2

    with session_factory() as s:
        before = {t.instance_id: (t.id, t.task_uuid) for t in engine.list_tasks(s, instance_id=at_approve)}
        plan = plan_migration(s, *_versions(s, 1, 2), organisation_id=_org_id(s))
        assert [(c.instance_id, c.movable, c.elements) for c in plan.candidates] == [
            (at_request, True, ("request",)),
            (at_approve, True, ("approve",)),
        ]
        assert s.get(engine.ProcessInstance, at_approve).definition.version == 1  # type: ignore[union-attr]

    result = _migrate(session_factory)
    assert result.as_json() == {"migrated": [at_request, at_approve], "refused": []}

    engine.SPEC_CACHE.clear()  # restored from the database onto a spec parsed afresh
    with session_factory() as s:
        instance = s.get(engine.ProcessInstance, at_approve)
        assert instance is not None and instance.definition.version == 2
        (task,) = engine.list_tasks(s, instance_id=at_approve)
        assert (task.id, task.task_uuid) == before[at_approve]
        assert task.name == "Approve the purchase (v2)"
        events = [e for e in engine.instance_events(s, at_approve) if e.kind == "migrated"]
        assert [(e.actor, e.detail["from_version"], e.detail["to_version"]) for e in events] == [
            ("north-admin", 1, 2)
        ]
        admin = s.scalars(
            sa.select(engine.AuditEvent).where(
                engine.AuditEvent.kind == "admin.instance_migrated",
                engine.AuditEvent.instance_id == at_approve,
            )
        ).all()
        assert [(a.element, a.detail["after"]["version"]) for a in admin] == [(f"instance {at_approve}", 2)]
        task_id = task.id
    engine.SPEC_CACHE.clear()
    with session_factory.begin() as s:
        engine.complete_task(s, task_id, user="north-boss", data={"approved": False})
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        instance = s.get(engine.ProcessInstance, at_approve)
        assert instance is not None and instance.status == "completed" and instance.definition.version == 2


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [
        (_without_approve, "element_removed", "its open element approve does not exist in version 2"),
        (
            lambda f: _form(f, lambda s: s["properties"]["approved"].update(type="string")),
            "form_type_changed",
            "the field approved of its open task approve is of type boolean, in version 2 of type string",
        ),
        (
            lambda f: _form(
                f,
                lambda s: (s["required"].append("reason"), s["properties"].update(reason={"type": "string"})),
            ),
            "form_required_added",
            "the field reason of its open task approve is required in version 2, has no default there "
            "and the case has no value for it",
        ),
    ],
    ids=["removed", "type", "required"],
)
def test_what_cannot_move_is_refused_with_its_reason_and_left_untouched(
    session_factory: so.sessionmaker[so.Session],
    orgs: None,
    tmp_path: Path,
    change: Callable[[Path], None],
    code: str,
    reason: str,
) -> None:
    _deploy(session_factory, APPROVAL)
    at_request = _start(session_factory, to_approve=False)
    at_approve = _start(session_factory, to_approve=True)
    _deploy(session_factory, _copy(tmp_path, "v2", change))
    with session_factory() as s:
        untouched = _row(s, at_approve)
        plan = plan_migration(s, *_versions(s, 1, 2), organisation_id=_org_id(s))
        refused = {c.instance_id: c.refusal for c in plan.refused}
        assert refused == {at_approve: MigrationRefusal(code, refused[at_approve].params)}  # type: ignore[union-attr]
        assert refused[at_approve].message == reason  # type: ignore[union-attr]
        assert [c.instance_id for c in plan.movable] == [at_request]

    result = _migrate(session_factory)
    assert result.as_json() == {"migrated": [at_request], "refused": [{"id": at_approve, "reason": reason}]}
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        assert _row(s, at_approve) == untouched
        assert not [e for e in engine.instance_events(s, at_approve) if e.kind == "migrated"]
        assert s.get(engine.ProcessInstance, at_request).definition.version == 2  # type: ignore[union-attr]


def test_a_passed_element_missing_from_the_new_version_is_refused(
    session_factory: so.sessionmaker[so.Session], orgs: None, tmp_path: Path
) -> None:
    _deploy(session_factory, APPROVAL)
    at_approve = _start(session_factory, to_approve=True)
    done = _start(session_factory, to_approve=True)
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=done)
        engine.complete_task(s, task.id, user="north-boss", data={"approved": False})
    _deploy(session_factory, _copy(tmp_path, "v2", _without_request))
    with session_factory() as s:
        plan = plan_migration(s, *_versions(s, 1, 2), organisation_id=_org_id(s))
        assert [c.instance_id for c in plan.candidates] == [at_approve]  # a completed case is not considered
        (refused,) = plan.refused
        assert refused.refusal is not None
        assert refused.refusal.message == "it has passed element request, which version 2 does not have"


def test_suspended_and_changed_instances_are_refused(
    session_factory: so.sessionmaker[so.Session], orgs: None, tmp_path: Path
) -> None:
    _deploy(session_factory, APPROVAL)
    suspended = _start(session_factory, to_approve=True)
    changed = _start(session_factory, to_approve=False)
    with session_factory.begin() as s:
        engine.suspend_instance(s, suspended, user="north-admin")
    _deploy(session_factory, _copy(tmp_path, "v2", _rename_approve))
    with session_factory() as s:
        plan = plan_migration(s, *_versions(s, 1, 2), organisation_id=_org_id(s))
        seen = {c.instance_id: c for c in plan.candidates}
        assert seen[suspended].refusal == MigrationRefusal("status", {"status": "suspended"})
        assert seen[suspended].elements == ("approve",)
        versions = {c.instance_id: c.lock_version for c in plan.candidates}
    with session_factory.begin() as s:  # someone works on it after the dry run
        (task,) = engine.list_tasks(s, instance_id=changed)
        engine.complete_task(s, task.id, user="north-req", data=dict(DATA))
    result = _migrate(session_factory, instance_ids=[suspended, changed], expected_versions=versions)
    assert result.migrated == []
    assert [(i, r.code) for i, r in result.refused] == [(suspended, "status"), (changed, "changed")]
    result = _migrate(session_factory, instance_ids=[suspended, changed])
    assert result.migrated == [changed]
    assert result.as_json()["refused"] == [
        {
            "id": suspended,
            "reason": "it is suspended: only running or waiting instances move (resume or repair it first)",
        }
    ]


def test_another_organisations_instances_are_not_found(
    session_factory: so.sessionmaker[so.Session], orgs: None, tmp_path: Path
) -> None:
    _deploy(session_factory, APPROVAL)
    ours = _start(session_factory, to_approve=True)
    _deploy(session_factory, _copy(tmp_path, "v2", _rename_approve))
    with session_factory() as s:
        source, target = _versions(s, 1, 2)
        south = s.scalar(sa.select(engine.Organisation.id).where(engine.Organisation.key == "south"))
        ids = (source.id, target.id)
        assert plan_migration(s, source, target, organisation_id=south).candidates == ()
    with pytest.raises(engine.NotFoundError):
        migrate_instances(
            session_factory, source_id=ids[0], target_id=ids[1], organisation_id=south, actor="south-admin"
        )
    with session_factory.begin() as s, pytest.raises(engine.NotFoundError):
        migrate_instance(s, ours, s.get(engine.ProcessDefinition, ids[1]), actor="x", organisation_id=south)  # type: ignore[arg-type]


def test_same_version_and_other_process_are_data_errors(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    _deploy(session_factory, APPROVAL)
    with session_factory() as s:
        source, _ = _versions(s, 1, 1)
        with pytest.raises(engine.DataError, match="to_version"):
            plan_migration(s, source, source, organisation_id=_org_id(s))
        with pytest.raises(engine.NotFoundError, match="to_version: 'approval' has no version 7"):
            find_migration_version(s, "approval", 7, _org_id(s), field_name="to_version")


def test_form_changes_are_compatible_unless_a_type_changes_or_a_required_field_is_added() -> None:
    old = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "number"},
            "rows": {
                "type": "array",
                "items": {"type": "object", "properties": {"price": {"type": "number"}}},
            },
        },
    }
    compatible = json.loads(json.dumps(old))
    compatible["properties"]["a"]["title"] = "New label"
    compatible["properties"]["c"] = {"type": "string"}  # optional
    compatible["properties"]["d"] = {"type": "string", "default": "x"}
    compatible["required"] += ["d"]  # required, with a default
    del compatible["properties"]["b"]
    assert form_changes(old, compatible) == []

    incompatible = json.loads(json.dumps(old))
    incompatible["properties"]["rows"]["items"]["properties"]["price"]["type"] = "string"
    incompatible["properties"]["e"] = {"type": "string"}
    incompatible["required"] += ["b", "e"]
    assert form_changes(old, incompatible) == [
        MigrationRefusal("form_required_added", {"field": "b"}),
        MigrationRefusal("form_type_changed", {"field": "rows[].price", "old": "number", "new": "string"}),
        MigrationRefusal("form_required_added", {"field": "e"}),
    ]
    # A newly required field the case already holds a value for asks nothing new.
    assert form_changes(old, incompatible, {"b": 3, "e": "given"}) == [
        MigrationRefusal("form_type_changed", {"field": "rows[].price", "old": "number", "new": "string"})
    ]


PROCUREMENT = Path(__file__).resolve().parent.parent.parent / "processes" / "direct_procurement"


def test_direct_procurements_move_with_their_multi_instance_tasks_and_timers(
    session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    """Open multi-instance declarations keep their participant; a waiting deadline keeps its due time."""
    from tests.processes.conftest import SCENARIO_START
    from tests.processes.driver import Clock, ColdDriver
    from tests.processes.test_direct_procurement import _need, _request_quotes

    with Clock(SCENARIO_START):
        driver = ColdDriver(session_factory)
        with session_factory.begin() as s:
            engine.deploy_path(s, PROCUREMENT, organisation="exempelby")  # the organisation's own v1
        need = _need("se", value_excl_vat=330000, participants=["se-requester", "se-colleague"])
        describing = driver.start("direct_procurement", org="exempelby", user="se-requester")
        declaring = driver.start("direct_procurement", org="exempelby", user="se-requester")
        declaring.complete("describe_need", user="se-requester", data=need)
        waiting = driver.start("direct_procurement", org="exempelby", user="se-requester")
        waiting.complete("describe_need", user="se-requester", data=_need("se", value_excl_vat=330000))
        waiting.complete("declare_conflict", user="se-requester", data={"has_conflict": False, "details": ""})
        _request_quotes(waiting, "se")
        assert waiting.open_tasks() == [] and waiting.status == "waiting"

        folder = tmp_path / "v2" / "direct_procurement"
        shutil.copytree(PROCUREMENT, folder)
        _edit(
            folder / "direct_procurement.bpmn",
            'name="Declare conflicts of interest"',
            'name="Declare conflicts (v2)"',
        )
        with session_factory.begin() as s:
            (deployed,) = engine.deploy_path(s, folder, organisation="exempelby")
            assert deployed.version == 2
            org_id = s.scalar(sa.select(engine.Organisation.id).where(engine.Organisation.key == "exempelby"))
            source = find_migration_version(s, "direct_procurement", 1, org_id, field_name="from_version")
            target = find_migration_version(s, "direct_procurement", 2, org_id, field_name="to_version")
            ids = (source.id, target.id)
            jobs_before = {
                (j.task_uuid, j.due_at)
                for j in s.scalars(sa.select(engine.Job).where(engine.Job.kind == "timer"))
            }
            assert jobs_before
            declarations_before = sorted(
                (t.id, t.task_uuid) for t in engine.list_tasks(s, instance_id=declaring.instance_id)
            )  # type: ignore[attr-defined]

        engine.SPEC_CACHE.clear()
        result = migrate_instances(
            session_factory, source_id=ids[0], target_id=ids[1], organisation_id=org_id, actor="se-admin"
        )
        ours = [describing, declaring, waiting]
        assert result.as_json() == {"migrated": [r.instance_id for r in ours], "refused": []}  # type: ignore[attr-defined]

        engine.SPEC_CACHE.clear()
        with session_factory() as s:
            jobs_after = {
                (j.task_uuid, j.due_at)
                for j in s.scalars(sa.select(engine.Job).where(engine.Job.kind == "timer"))
            }
            assert jobs_after == jobs_before, "the quote deadline keeps its due time"
            rows = engine.list_tasks(s, instance_id=declaring.instance_id)  # type: ignore[attr-defined]
            assert sorted((t.id, t.task_uuid) for t in rows) == declarations_before
            assert {t.name for t in rows} == {"Declare conflicts (v2)"}
        declaring.complete(
            "declare_conflict", user="se-requester", data={"has_conflict": False, "details": ""}
        )
        declaring.complete(
            "declare_conflict", user="se-colleague", data={"has_conflict": False, "details": ""}
        )
        assert [d["participant"] for d in declaring.data["coi_declarations"]] == [
            "se-requester",
            "se-colleague",
        ]
        assert declaring.open_tasks() == ["request_quotes"]
        describing.complete("describe_need", user="se-requester", data=_need("se", value_excl_vat=330000))
        assert describing.open_tasks() == ["declare_conflict"]
        with session_factory() as s:
            assert {
                s.get(engine.ProcessInstance, r.instance_id).definition.version
                for r in ours  # type: ignore[attr-defined,union-attr]
            } == {2}
