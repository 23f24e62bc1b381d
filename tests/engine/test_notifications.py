"""E-mail to whoever may work on a new (or released) task: who, in which language, with what link."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zoneinfo
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]

NAMES = {
    "approval": {"sv": "Inköpsgodkännande", "fi": "Hankinnan hyväksyntä"},
    "approve": {"sv": "Godkänn inköpet", "fi": "Hyväksy hankinta"},
    "request": {"sv": "Beskriv inköpet", "fi": "Kuvaile hankinta"},
}


@pytest.fixture
def people(session_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """North's users, each a case of the rule; the approval bundle with names.json."""
    monkeypatch.setenv("PROCFLOW_BASE_URL", "https://procflow.example/")
    bundle = tmp_path / "approval"
    shutil.copytree(FIXTURES / "approval", bundle)
    (bundle / "names.json").write_text(json.dumps(NAMES), encoding="utf-8")
    with session_factory.begin() as s:
        for key in ("north", "south"):
            engine.add_organisation(s, key, name=key.title())
        users = [
            ("req", "requester", ["requesters", "approvers"], None),
            ("boss", "case_handler", ["approvers", "requesters"], "sv"),
            ("fin", "case_handler", ["approvers"], "fi"),
            ("eng", "case_handler", ["approvers"], None),
            ("quiet", "case_handler", ["approvers"], None),
            ("gone", "case_handler", ["approvers"], None),
            ("reader", "auditor", ["approvers"], None),
            ("lawyer", "case_handler", ["lawyers"], None),
            ("admin", "admin", [], None),
        ]
        for username, role, groups, language in users:
            user = engine.add_user(
                s,
                username,
                organisation="north",
                roles=[role],
                groups=groups,
                email=f"{username}@north.example",
                display_name=username.title(),
            )
            user.language = language
        engine.add_user(s, "noemail", organisation="north", roles=["case_handler"], groups=["approvers"])
        engine.add_user(
            s,
            "south-boss",
            organisation="south",
            roles=["case_handler"],
            groups=["approvers"],
            email="s@x.example",
        )
        engine.set_user_preferences(s, engine.get_user(s, "quiet"), language=None, notify_by_email=False)
        engine.get_user(s, "gone").is_active = False
        engine.deploy_path(s, bundle, user="admin")


def _mails(session_factory: Factory) -> list[engine.OutboxMessage]:
    with session_factory() as s:
        return list(s.scalars(sa.select(engine.OutboxMessage).order_by(engine.OutboxMessage.id)))


def _start(session_factory: Factory, **data: object) -> int:
    with session_factory.begin() as s:
        return engine.start_instance(
            s, "approval", organisation="north", user="req", data=dict(data), title="Laptops"
        ).id


def _task(session_factory: Factory, instance_id: int) -> engine.HumanTask:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        return task


def _to_approval(session_factory: Factory) -> engine.HumanTask:
    """Start as req, and let boss describe the purchase: the approval task is ready."""
    instance_id = _start(session_factory)
    with session_factory.begin() as s:
        engine.complete_task(
            s,
            _task(session_factory, instance_id).id,
            user="boss",
            data={"subject": "Laptops", "amount": 1000, "requester_email": "req@north.example"},
        )
    return _task(session_factory, instance_id)


def test_a_new_task_mails_its_group_but_not_who_created_it(session_factory: Factory, people: None) -> None:
    instance_id = _start(session_factory)
    task = _task(session_factory, instance_id)
    # The requesters' task: req started the case (and so made the task), boss is the other requester.
    (mail,) = _mails(session_factory)
    assert mail.recipient == "boss@north.example"
    assert mail.instance_id == instance_id
    assert mail.subject == "Ny uppgift: Beskriv inköpet (Laptops)"
    assert f"https://procflow.example/tasks/{task.id}\n" in mail.body
    assert "Hej Boss!" in mail.body and "Ärende: Laptops" in mail.body
    assert "Process: Inköpsgodkännande" in mail.body
    assert task.due_at is not None
    assert f"Förfaller: {task.due_at:%Y-%m-%d %H:%M} (UTC)" in mail.body  # north has no time zone


def test_a_due_date_is_in_the_organisations_time_zone(session_factory: Factory, people: None) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north").id
        engine.set_parameter(s, "jurisdiction", "FI", organisation_id=north, valid_from=dt.date(2000, 1, 1))
    task = _task(session_factory, _start(session_factory))
    (mail,) = _mails(session_factory)
    assert task.due_at is not None
    local = task.due_at.astimezone(zoneinfo.ZoneInfo("Europe/Helsinki"))
    assert f"Förfaller: {local:%Y-%m-%d %H:%M} (Europe/Helsinki)" in mail.body  # boss chose Swedish


def test_only_members_who_may_work_on_it_are_mailed_each_in_their_language(
    session_factory: Factory, people: None
) -> None:
    task = _to_approval(session_factory)
    approval_mails = [m for m in _mails(session_factory) if f"/tasks/{task.id}\n" in m.body]
    # req: excluded (started the case); boss: made the task; quiet: opted out; gone: deactivated;
    # reader: an auditor; noemail: no address; lawyer: another group; south-boss: another organisation.
    assert sorted(m.recipient for m in approval_mails) == ["eng@north.example", "fin@north.example"]
    by_recipient = {m.recipient: m for m in approval_mails}
    finnish = by_recipient["fin@north.example"]
    assert finnish.subject == "Uusi tehtävä: Hyväksy hankinta (Laptops)"
    assert "Hei Fin," in finnish.body and "Määräaika" not in finnish.body
    assert "https://procflow.example/settings" in finnish.body
    english = by_recipient["eng@north.example"]
    assert english.subject == "New task: Approve the purchase (Laptops)"
    assert "Group: approvers" in english.body
    # Each e-mail is sent by its own outbox job, after commit.
    with session_factory() as s:
        jobs = s.scalars(sa.select(engine.Job).where(engine.Job.kind == "outbox")).all()
        queued = sorted(j.payload["outbox_message_id"] for j in jobs)
    assert queued == [m.id for m in _mails(session_factory)]
    assert engine.run_due_jobs(session_factory).ran == len(jobs)
    assert {m.status for m in _mails(session_factory)} == {"sent"}


def test_a_released_task_mails_its_group_once_per_user(session_factory: Factory, people: None) -> None:
    task = _to_approval(session_factory)
    before = len(_mails(session_factory))
    with session_factory.begin() as s:
        engine.claim_task(s, task.id, user="fin")
    assert len(_mails(session_factory)) == before  # claiming tells no one
    with session_factory.begin() as s:
        engine.unclaim_task(s, task.id, user="fin")
    released = _mails(session_factory)[before:]
    # Not fin, who released it; boss now too, who made the task (and so was not told then).
    assert sorted(m.recipient for m in released) == ["boss@north.example", "eng@north.example"]
    with session_factory.begin() as s:
        engine.claim_task(s, task.id, user="eng")
    with session_factory.begin() as s:
        engine.unclaim_task(s, task.id, user="admin")  # an admin takes it off eng
    by_admin = _mails(session_factory)[before + 2 :]
    assert sorted(m.recipient for m in by_admin) == [
        "boss@north.example",
        "eng@north.example",
        "fin@north.example",
    ]


def test_an_assigned_task_mails_only_its_assignee(session_factory: Factory, people: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "personal")
        engine.start_instance(s, "personal", organisation="north", user="req", data={"declarant": "fin"})
    (mail,) = _mails(session_factory)
    assert mail.recipient == "fin@north.example"
    assert mail.subject.startswith("Uusi tehtävä: Declare conflicts of interest")  # no names.json: English
    assert "Ryhmä" not in mail.body  # a personal task has no group


def test_mails_are_written_with_the_task_or_not_at_all(session_factory: Factory, people: None) -> None:
    with session_factory() as s:
        s.begin()
        engine.start_instance(s, "approval", organisation="north", user="req")
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.OutboxMessage)) == 1
        s.rollback()
    assert _mails(session_factory) == []


def test_preferences_refuse_an_unknown_language(session_factory: Factory, people: None) -> None:
    with session_factory.begin() as s, pytest.raises(engine.DataError, match="'de'"):
        engine.set_user_preferences(s, engine.get_user(s, "fin"), language="de", notify_by_email=True)


UNGROUPED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="open_task" name="Open task" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="anyone" name="Anyone may do this"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="anyone" />
    <bpmn:sequenceFlow id="f2" sourceRef="anyone" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_task_without_group_mails_every_member_who_works_on_tasks_once(
    session_factory: Factory, people: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("open_task.bpmn", "bpmn", UNGROUPED)], name="open_task")
        engine.start_instance(s, "open_task", organisation="north", user="req")
    # boss is in two groups and gets one e-mail; admin has no group but may work on ungrouped tasks.
    recipients = [m.recipient for m in _mails(session_factory)]
    assert sorted(recipients) == [f"{u}@north.example" for u in ("admin", "boss", "eng", "fin", "lawyer")]


@pytest.mark.parametrize(
    ("parameters", "subject"),
    [
        ({"jurisdiction": "FI"}, "Uusi tehtävä: Hyväksy hankinta (Laptops)"),
        ({"jurisdiction": "FI", "language": "sv"}, "Ny uppgift: Godkänn inköpet (Laptops)"),
        ({"jurisdiction": "DE"}, "New task: Approve the purchase (Laptops)"),
    ],
)
def test_who_chose_no_language_gets_the_organisations(
    session_factory: Factory, people: None, parameters: dict[str, str], subject: str
) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north").id
        for key, value in parameters.items():
            engine.set_parameter(s, key, value, organisation_id=north, valid_from=dt.date(2000, 1, 1))
    task = _to_approval(session_factory)
    mails = {m.recipient: m for m in _mails(session_factory) if f"/tasks/{task.id}\n" in m.body}
    assert mails["eng@north.example"].subject == subject
    assert mails["fin@north.example"].subject.startswith("Uusi tehtävä")  # fin chose Finnish


def test_who_is_mailed_follows_a_change_made_after_the_first_mail(
    session_factory: Factory, people: None
) -> None:
    _start(session_factory)  # the candidates of the requesters' task are now cached
    with session_factory.begin() as s:  # as another process would: a committed change
        engine.set_user_preferences(s, engine.get_user(s, "boss"), language="sv", notify_by_email=False)
    _start(session_factory)
    with session_factory.begin() as s:
        engine.set_user_preferences(s, engine.get_user(s, "boss"), language="sv", notify_by_email=True)
        s.get(engine.User, engine.get_user(s, "boss").id).email = "boss@new.example"  # type: ignore[union-attr]
    _start(session_factory)

    assert [m.recipient for m in _mails(session_factory)] == ["boss@north.example", "boss@new.example"]
