"""Studio drafts: edit, validate, deploy (own or shared), customise, and try a draft as a test case."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine import studio
from tests.conftest import FIXTURES, PROCESSES

Factory = so.sessionmaker[so.Session]
APPROVAL = FIXTURES / "approval"
REGISTRATION = FIXTURES / "message_form"


@pytest.fixture
def owners(session_factory: Factory, orgs: None) -> None:
    """North and south with a process owner each, a platform organisation, and approval deployed shared."""
    with session_factory.begin() as s:
        engine.add_organisation(s, "platform", name="Platform").is_platform = True
        for key in ("north", "south", "platform"):
            engine.add_user(
                s, f"{key}-owner", organisation=key, roles=["process_owner"], email=f"{key}-owner@x.example"
            )
        engine.add_user(s, "north-boss", organisation="north", email="boss@north.example")
        engine.deploy_path(s, APPROVAL, user="admin")


def _org_id(s: so.Session, key: str) -> int:
    return engine.get_organisation(s, key).id


def _draft(s: so.Session, org: str = "north", process_id: str = "approval") -> studio.ProcessDraft:
    """Open the organisation's draft, customising the shared process where need be."""
    return studio.open_draft(s, _org_id(s, org), process_id, user=f"{org}-owner", customise=True)


def _edit(s: so.Session, draft: studio.ProcessDraft, change: Callable[[str], str]) -> None:
    text = studio.read_draft_file(s, draft, "approval.bpmn").content
    studio.save_draft_file(s, draft, "approval.bpmn", change(text), user="north-owner")


def _rename_request(text: str) -> str:
    return text.replace("Describe the purchase", "Describe the need")


def test_a_draft_starts_as_a_copy_of_the_running_version(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        running = engine.resolve_definition(s, "approval", _org_id(s, "north"))
        assert draft.base_definition_id == running.id
        assert studio.draft_files(s, draft) == studio.files_of_version(s, running)
        assert [f.name for f in studio.draft_files(s, draft)] == [
            "approval.bpmn",
            "approve.schema.json",
            "request.schema.json",
        ]
        # Opening it again finds the same draft.
        assert _draft(s).id == draft.id
        assert studio.find_draft(s, _org_id(s, "south"), "approval") is None


def test_a_shared_process_is_read_only_until_customised(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        north = _org_id(s, "north")
        with pytest.raises(engine.PermissionDeniedError, match="customise"):
            studio.open_draft(s, north, "approval", user="north-owner")
        # The platform organisation's process owners edit the shared version as it is.
        assert studio.open_draft(
            s, _org_id(s, "platform"), "approval", user="platform-owner"
        ).base_definition_id
        draft = studio.open_draft(s, north, "approval", user="north-owner", customise=True)
        assert studio.open_draft(s, north, "approval", user="north-owner").id == draft.id


def test_a_process_not_visible_to_the_organisation_has_no_draft(
    session_factory: Factory, owners: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, REGISTRATION, organisation="south")
    with session_factory.begin() as s, pytest.raises(engine.NotFoundError, match="registration"):
        _draft(s, "north", "registration")


def test_drafts_keep_broken_models_but_refuse_bad_names(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        version = draft.lock_version
        studio.save_draft_file(s, draft, "approval.bpmn", "<not xml", user="north-owner")
        assert studio.read_draft_file(s, draft, "approval.bpmn").content == "<not xml"
        assert draft.lock_version == version + 1
        assert draft.updated_by == "north-owner"
        for name in ("../escape.bpmn", "/abs.bpmn", "a//b.json", "notes.txt", ".hidden.json", "a\\b.dmn"):
            with pytest.raises(engine.DeploymentError) as refused:
                studio.save_draft_file(s, draft, name, "{}", user="north-owner")
            assert refused.value.file == name
        with pytest.raises(engine.DeploymentError, match="larger than"):
            studio.save_draft_file(s, draft, "big.json", "x" * (6 * 1024 * 1024), user="north-owner")
        studio.save_draft_file(s, draft, "forms/extra.json", "{}", user="north-owner")
        assert studio.read_draft_file(s, draft, "forms/extra.json").kind == "form"
        studio.delete_draft_file(s, draft, "forms/extra.json", user="north-owner")
        with pytest.raises(engine.NotFoundError):
            studio.read_draft_file(s, draft, "forms/extra.json")


def test_a_stale_draft_version_is_a_conflict(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        loaded = draft.lock_version
        studio.save_draft_file(s, draft, "a.json", "{}", user="north-owner", draft_version=loaded)
        with pytest.raises(engine.ConflictError, match="saved meanwhile by north-owner"):
            studio.save_draft_file(s, draft, "a.json", "[]", user="south-owner", draft_version=loaded)
        assert studio.read_draft_file(s, draft, "a.json").content == "{}"


def test_validate_pins_an_error_to_file_line_and_element(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        assert studio.validate_draft(s, draft) == []
        _edit(s, draft, lambda t: t.replace('value="approve.schema.json"', 'value="missing.schema.json"'))
        (problem,) = studio.validate_draft(s, draft)
        text = studio.read_draft_file(s, draft, "approval.bpmn").content
        assert (problem.severity, problem.file, problem.element) == ("error", "approval.bpmn", "approve")
        assert problem.line == text[: text.index('id="approve"')].count("\n") + 1
        assert "missing.schema.json" in problem.message
        _edit(s, draft, lambda t: t.replace("</bpmn:process>", "</bpmn:proces>"))
        (problem,) = studio.validate_draft(s, draft)
        assert problem.file == "approval.bpmn" and problem.line and "malformed XML" in problem.message


def test_validate_checks_form_schemas_as_deploy_does(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        studio.save_draft_file(
            s, draft, "approve.schema.json", '{"type": "object", "properties": {"a": {"type": 7}}}', user=None
        )
        (problem,) = studio.validate_draft(s, draft)
        assert problem.file == "approve.schema.json" and "/properties/a" in problem.message
        with pytest.raises(engine.DeploymentError) as refused:
            engine.deploy_files(s, studio.draft_files(s, draft), name="approval", organisation="north")
        assert refused.value.problem() == problem


def test_deploy_makes_version_two_for_the_organisation_and_deletes_the_draft(
    session_factory: Factory, owners: None
) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        _edit(s, draft, _rename_request)
        (deployed,) = studio.deploy_draft(s, draft, user="north-owner")
        assert (deployed.process_id, deployed.version, deployed.organisation, deployed.changed) == (
            "approval",
            1,
            "north",
            True,
        )
        assert studio.find_draft(s, _org_id(s, "north"), "approval") is None
        event = s.scalars(
            sa.select(engine.AuditEvent)
            .where(engine.AuditEvent.kind == "deployed")
            .order_by(engine.AuditEvent.id)
        ).all()[-1]
        assert (event.actor, event.organisation_id, event.element) == (
            "north-owner",
            _org_id(s, "north"),
            "approval",
        )
    with session_factory.begin() as s:
        north = engine.start_instance(s, "approval", organisation="north", user="north-req")
        south = engine.start_instance(s, "approval", organisation="south", user="south-req")
        assert [t.name for t in engine.list_tasks(s, instance_id=north.id)] == ["Describe the need"]
        assert [t.name for t in engine.list_tasks(s, instance_id=south.id)] == ["Describe the purchase"]
        # A second change is version 2 of north's own process.
        draft = _draft(s)
        _edit(s, draft, lambda t: t.replace("Describe the need", "Describe it"))
        assert [d.version for d in studio.deploy_draft(s, draft, user="north-owner")] == [2]


def test_deploying_an_unchanged_draft_is_a_no_op(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s, "platform")
        (deployed,) = studio.deploy_draft(s, draft, user="platform-owner")
        assert (deployed.version, deployed.changed, deployed.organisation) == (1, False, None)
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.ProcessDefinition)) == 1


def test_a_broken_draft_is_refused_and_kept(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        _edit(s, draft, lambda t: t.replace('value="request.schema.json"', 'value="gone.json"'))
        with pytest.raises(engine.DeploymentError):
            studio.deploy_draft(s, draft, user="north-owner")
        assert studio.find_draft(s, _org_id(s, "north"), "approval") is not None


def test_the_platform_organisations_drafts_deploy_shared_versions(
    session_factory: Factory, owners: None
) -> None:
    with session_factory.begin() as s:
        draft = _draft(s, "platform")
        assert studio.deploy_target(s, draft) == studio.DeployTarget(shared=True, organisation_key=None)
        _edit(s, draft, _rename_request)
        (deployed,) = studio.deploy_draft(s, draft, user="platform-owner")
        assert (deployed.version, deployed.organisation) == (2, None)
    with session_factory.begin() as s:
        for org in ("north", "south"):
            definition = engine.resolve_definition(s, "approval", _org_id(s, org))
            assert (definition.organisation_id, definition.version) == (None, 2)


def test_customising_a_shared_process_makes_an_own_version(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s, "south")
        assert studio.deploy_target(s, draft) == studio.DeployTarget(shared=False, organisation_key="south")
        (deployed,) = studio.deploy_draft(s, draft, user="south-owner")
        # The same files, but now south's own: a new version of its own, not a no-op.
        assert (deployed.version, deployed.organisation, deployed.changed) == (1, "south", True)
    with session_factory.begin() as s:
        assert engine.resolve_definition(s, "approval", _org_id(s, "south")).organisation_id == _org_id(
            s, "south"
        )
        assert engine.resolve_definition(s, "approval", _org_id(s, "north")).organisation_id is None


def test_deploying_needs_a_process_owner(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        with pytest.raises(engine.PermissionDeniedError):
            studio.deploy_draft(s, draft, user="north-req")
        with pytest.raises(engine.NotFoundError):
            studio.deploy_draft(s, draft, user="south-owner")


def _test_instance(s: so.Session, org: str = "north") -> engine.ProcessInstance:
    draft = _draft(s, org)
    _edit(s, draft, _rename_request)
    return studio.start_test_instance(s, draft, user=f"{org}-owner")


def test_test_definitions_are_never_resolved(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        instance = _test_instance(s)
        definition = instance.definition
        assert (definition.is_test, definition.version, definition.organisation_id) == (
            True,
            -1,
            _org_id(s, "north"),
        )
        north = _org_id(s, "north")
        assert engine.resolve_definition(s, "approval", north).version == 1
        assert [(d.process_id, d.is_test) for d in engine.visible_definitions(s, north)] == [
            ("approval", False)
        ]
        # Trying unchanged files again reuses the test definition; changed ones count down.
        draft = _draft(s)
        assert studio.start_test_instance(s, draft, user="north-owner").definition_id == definition.id
        _edit(s, draft, lambda t: t.replace("Describe the need", "Describe it"))
        assert studio.start_test_instance(s, draft, user="north-owner").definition.version == -2
        # A real deploy after tests is version 1 of north's own, not -1 + 1.
        assert [d.version for d in studio.deploy_draft(s, draft, user="north-owner")] == [1]
    with session_factory.begin() as s:
        regular = engine.start_instance(s, "approval", organisation="north", user="north-req")
        assert (regular.is_test, regular.definition.is_test) == (False, False)


def test_a_test_definition_with_a_message_start_is_not_started_by_messages(
    session_factory: Factory, owners: None
) -> None:
    with session_factory.begin() as s:
        bundle = [
            engine.BundleFile(
                name=p.name, kind="bpmn" if p.suffix == ".bpmn" else "form", content=p.read_text()
            )
            for p in sorted(REGISTRATION.iterdir())
        ]
        draft = studio.create_draft(s, _org_id(s, "north"), "registration", bundle, user="north-owner")
        instance = studio.start_test_instance(
            s, draft, user="north-owner", data={"name": "Acme", "org_number": "556677-8899"}
        )
        assert instance.is_test
        with pytest.raises(engine.NotFoundError, match="no process starts on it"):
            engine.send_message(
                s, "supplier_registered", {"name": "Bolag", "org_number": "556677-0000"}, organisation="north"
            )
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.ProcessInstance)) == 1


def test_a_test_instance_is_the_testers_not_mailed_and_not_reported(
    session_factory: Factory, owners: None
) -> None:
    with session_factory.begin() as s:
        instance = _test_instance(s)
        owner = engine.get_user(s, "north-owner")
        (task,) = engine.list_tasks(s, instance_id=instance.id)
        assert (task.name, task.assignee_id, task.candidate_group) == ("Describe the need", owner.id, None)
        engine.complete_task(
            s,
            task.id,
            user="north-owner",
            data={"subject": "Pens", "amount": 10, "requester_email": "r@x.example"},
        )
        # The approval task excludes the starter and belongs to approvers: in a test, still the tester's.
        (approve,) = engine.list_tasks(s, instance_id=instance.id, state="ready")
        assert (approve.bpmn_id, approve.assignee_id, approve.excluded_user_ids) == ("approve", owner.id, [])
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.OutboxMessage)) == 0
        # The e-mail its service task writes is kept as a test's, never sent.
        engine.complete_task(s, approve.id, user="north-owner", data={"approved": True})
        (mail,) = s.scalars(sa.select(engine.OutboxMessage)).all()
        assert (mail.recipient, mail.status) == ("r@x.example", "test")
        assert s.scalars(sa.select(engine.Job).where(engine.Job.kind == "outbox")).all() == []
        assert engine.get_instance(s, instance.id).status == "completed"
        assert s.get(engine.CaseReport, instance.id) is None
        # A regular case of the same process is reported and its approvers are mailed.
        regular = engine.start_instance(s, "approval", organisation="north", user="north-req")
        (request,) = engine.list_tasks(s, instance_id=regular.id)
        engine.complete_task(
            s,
            request.id,
            user="north-req",
            data={"subject": "Pens", "amount": 10, "requester_email": "r@x.example"},
        )
        assert s.get(engine.CaseReport, regular.id) is not None
        assert (s.scalar(sa.select(sa.func.count()).select_from(engine.OutboxMessage)) or 0) >= 1


def test_a_test_instance_runs_cold_restored_in_new_sessions(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        instance_id = _test_instance(s).id
    steps: list[tuple[str, dict[str, object]]] = [
        ("request", {"subject": "Pens", "amount": 10, "requester_email": "r@x.example"}),
        ("approve", {"approved": False}),
    ]
    for bpmn_id, data in steps:
        engine.caches.clear()
        engine.SPEC_CACHE.clear()
        with session_factory.begin() as s:
            (task,) = engine.list_tasks(s, instance_id=instance_id, state="ready")
            assert task.bpmn_id == bpmn_id
            engine.complete_task(s, task.id, user="north-owner", data=data)
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert (instance.status, instance.is_test, instance.definition.is_test) == ("completed", True, True)
        assert s.get(engine.CaseReport, instance_id) is None


def test_a_test_instance_needs_a_member_who_may_start(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        draft = _draft(s)
        with pytest.raises(engine.NotFoundError):
            studio.start_test_instance(s, draft, user="south-owner")
        engine.add_user(s, "north-reader", organisation="north", roles=["auditor"])
        with pytest.raises(engine.PermissionDeniedError):
            studio.start_test_instance(s, draft, user="north-reader")


def test_the_demo_has_one_platform_organisation_and_a_process_owner_everywhere(
    session_factory: Factory,
) -> None:
    data = engine.read_seed_file(PROCESSES / "demo.json")
    for user in data["users"]:
        user.pop("password", None)  # argon2 is slow on purpose; roles are what is checked here
    with session_factory.begin() as s:
        engine.load_seed(s, data)
        platforms = s.scalars(sa.select(engine.Organisation.key).where(engine.Organisation.is_platform)).all()
        assert platforms == ["yhteishankinnat"]
        for organisation in s.scalars(sa.select(engine.Organisation)):
            roles = s.scalars(
                sa.select(engine.Membership.roles).where(engine.Membership.organisation_id == organisation.id)
            ).all()
            assert any("process_owner" in r for r in roles), organisation.key


ASKED = {"ref": "R-7", "question": "Deliver on Monday?", "urgent": False, "channel": "email"}


def _waiting_for_a_reply(s: so.Session, instance: engine.ProcessInstance, user: str) -> None:
    (task,) = [t for t in engine.list_tasks(s, instance_id=instance.id) if t.bpmn_id == "ask"]
    engine.complete_task(s, task.id, user=user, data=ASKED)


def test_test_cases_and_real_cases_never_exchange_messages(session_factory: Factory, owners: None) -> None:
    with session_factory.begin() as s:
        engine.add_user(s, "north-handler", organisation="north", roles=["case_handler"], groups=["handlers"])
        engine.deploy_path(s, FIXTURES / "case_page", organisation="north")
        engine.set_parameter(
            s, "jurisdiction", "SE", organisation_id=_org_id(s, "north"), valid_from=dt.date(2000, 1, 1)
        )
        real = engine.start_instance(s, "follow_up", organisation="north", user="north-req")
        _waiting_for_a_reply(s, real, "north-handler")
        draft = studio.open_draft(s, _org_id(s, "north"), "follow_up", user="north-owner")
        test = studio.start_test_instance(s, draft, user="north-owner")
        _waiting_for_a_reply(s, test, "north-owner")
        real_id, test_id = real.id, test.id

    # A reply from outside with the reference both wait for reaches the real case only.
    with session_factory.begin() as s:
        reached = engine.send_message(
            s, "customer_reply", {"ref": "R-7"}, organisation="north", user="north-req"
        )
        assert [i.id for i in reached] == [real_id]
    # Registered on the test case's page, it reaches the test case only.
    with session_factory.begin() as s:
        engine.add_user(s, "north-owner", organisation="north", groups=["handlers"])
        reached = engine.register_message(
            s,
            test_id,
            "customer_reply",
            {"message": "Monday suits us."},
            user="north-owner",
            organisation_id=_org_id(s, "north"),
        )
        assert [i.id for i in reached] == [test_id]
    with session_factory() as s:
        names = {
            i: [t.bpmn_id for t in engine.list_tasks(s, instance_id=i) if t.state == "ready"]
            for i in (real_id, test_id)
        }
    assert names == {real_id: ["read_reply"], test_id: ["read_reply"]}
