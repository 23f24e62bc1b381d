"""Users and groups as admins manage them: engine.accounts and engine.password_links."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
import time_machine

import engine
from engine import accounts, password_links
from tests.conftest import FIXTURES

APPROVAL = FIXTURES / "approval"
REQUEST = {"subject": "Laptops", "amount": 1000, "requester_email": "req@example.org"}
NEW_PASSWORD = "a long enough secret"


def _org(s: so.Session, key: str = "north") -> int:
    return engine.get_organisation(s, key).id


def _admin_events(s: so.Session, kind: str) -> list[engine.AuditEvent]:
    return list(s.scalars(sa.select(engine.AuditEvent).where(engine.AuditEvent.kind == kind)))


@pytest.fixture
def buyers(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    with session_factory.begin() as s:
        accounts.save_group(
            s,
            _org(s),
            "buyers",
            names={"sv": "Inköpare", "fi": "Ostajat", "en": "Buyers"},
            actor="north-admin",
        )


def test_add_a_user_with_roles_and_groups_audited(
    session_factory: so.sessionmaker[so.Session], buyers: None
) -> None:
    with session_factory.begin() as s:
        accounts.create_member(
            s,
            _org(s),
            username="alice",
            display_name="Alice Andersson",
            email="alice@north.example",
            roles=["case_handler"],
            groups=["buyers"],
            actor="north-admin",
        )
    with session_factory() as s:
        member = accounts.get_member(s, _org(s), "alice")
        assert member.roles == ["case_handler"] and [g.key for g in member.groups] == ["buyers"]
        assert member.user.password_hash is None
        (event,) = _admin_events(s, "admin.user_added")
        assert (event.actor, event.element, event.organisation_id) == ("north-admin", "user alice", _org(s))
        assert event.detail["after"]["groups"] == ["buyers"]
        # Another organisation's admin does not see her.
        with pytest.raises(engine.NotFoundError):
            accounts.get_member(s, _org(s, "south"), "alice")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"username": "no spaces"}, "username"),
        ({"username": "NORTH-REQ"}, "username"),  # taken, whatever the case
        ({"username": "south-req"}, "username"),  # another organisation's user is not taken in
        ({"username": "bob", "email": "not-an-address"}, "email"),
        ({"username": "bob", "roles": ["wizard"]}, "roles"),
        ({"username": "bob", "groups": ["nobody-has-this"]}, "groups"),
    ],
)
def test_bad_new_user_names_the_field(
    session_factory: so.sessionmaker[so.Session], buyers: None, values: dict[str, object], field: str
) -> None:
    with session_factory.begin() as s, pytest.raises(engine.FormValidationError) as caught:
        accounts.create_member(s, _org(s), actor="north-admin", **values)  # type: ignore[arg-type]
    assert list(caught.value.errors) == [field]


def test_list_members_searches_filters_and_pages_in_sql(
    session_factory: so.sessionmaker[so.Session], buyers: None
) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        for n in range(7):
            accounts.create_member(
                s,
                north,
                username=f"user{n}",
                display_name=f"Person {n}",
                groups=["buyers"] if n % 2 else [],
                actor=None,
            )
        accounts.deactivate_member(s, accounts.get_member(s, north, "user3"), actor="north-admin")
    with session_factory() as s:
        north = _org(s)
        everyone = accounts.list_members(s, north)
        assert everyone.total == 10  # the three of the orgs fixture and seven
        assert [r.username for r in everyone.rows][:3] == ["north-admin", "north-boss", "north-req"]
        page = accounts.list_members(s, north, search="PERSON", offset=2, limit=2)
        assert (page.total, [r.username for r in page.rows]) == (7, ["user2", "user3"])
        assert [r.username for r in accounts.list_members(s, north, group="buyers").rows] == [
            "user1",
            "user3",
            "user5",
        ]
        deactivated = accounts.list_members(s, north, status="deactivated")
        assert [(r.username, r.active) for r in deactivated.rows] == [("user3", False)]
        assert accounts.list_members(s, north, status="active").total == 9
        assert accounts.list_members(s, north, search="100%_").total == 0
        assert accounts.list_members(s, _org(s, "south"), search="user").total == 0


@pytest.fixture
def claimed(session_factory: so.sessionmaker[so.Session], orgs: None) -> int:
    """An approval case at its approval step, claimed by north-boss (group approvers)."""
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)
        instance_id = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        engine.complete_task(s, task.id, user="north-req", data=REQUEST)
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        assert task.candidate_group == "approvers"
        engine.claim_task(s, task.id, user="north-boss")
        return task.id


def test_deactivation_returns_claims_to_the_group_and_refuses_sign_in(
    session_factory: so.sessionmaker[so.Session], claimed: int
) -> None:
    with session_factory.begin() as s:
        engine.get_user(s, "north-boss").password_hash = password_links._hasher.hash(NEW_PASSWORD)
        engine.add_user(s, "north-boss2", organisation="north", roles=["case_handler"], groups=["approvers"])
        engine.get_user(s, "north-boss2").email = "boss2@north.example"
    with session_factory() as s:
        version_before = engine.get_instance(s, engine.get_task(s, claimed).instance_id).lock_version
        assert engine.verify_password(s, "north-boss", NEW_PASSWORD) is not None
    with session_factory.begin() as s:
        done = accounts.deactivate_member(
            s, accounts.get_member(s, _org(s), "north-boss"), actor="north-admin"
        )
        assert done == accounts.Deactivated(changed=True, released_task_ids=[claimed])
    with session_factory() as s:
        task = engine.get_task(s, claimed)
        assert task.assignee_id is None and task.state == "ready"
        instance = engine.get_instance(s, task.instance_id)
        assert instance.lock_version == version_before + 1
        released = [e for e in engine.instance_events(s, instance.id) if e.kind == "task_unclaimed"]
        assert [(e.actor, e.detail["from"], e.detail["reason"]) for e in released] == [
            ("north-admin", "north-boss", "user deactivated")
        ]
        (event,) = _admin_events(s, "admin.user_deactivated")
        assert event.detail["after"] == {"active": False, "released_tasks": [claimed]}
        # The rest of the group hears of the task again.
        mailed = s.scalars(sa.select(engine.OutboxMessage.recipient)).all()
        assert "boss2@north.example" in mailed
        # Signed out of the organisation, and no sign-in.
        user = engine.get_user(s, "north-boss")
        assert engine.membership_of(s, user, _org(s)) is None
        assert engine.verify_password(s, "north-boss", NEW_PASSWORD) is None
    # Another member of the group may now take it.
    with session_factory.begin() as s:
        engine.claim_task(s, claimed, user="north-boss2")
    # Deactivating again changes nothing; reactivating lets them in again, without the task.
    with session_factory.begin() as s:
        member = accounts.get_member(s, _org(s), "north-boss")
        assert accounts.deactivate_member(s, member, actor="north-admin").changed is False
        assert accounts.reactivate_member(s, member, actor="north-admin") is True
    with session_factory() as s:
        assert engine.verify_password(s, "north-boss", NEW_PASSWORD) is not None
        assert engine.membership_of(s, engine.get_user(s, "north-boss"), _org(s)) is not None
        assert engine.get_task(s, claimed).assignee.username == "north-boss2"  # type: ignore[union-attr]
        assert len(_admin_events(s, "admin.user_reactivated")) == 1


def test_deactivated_in_one_organisation_only(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.add_user(s, "north-boss", organisation="south", roles=["case_handler"])
        engine.get_user(s, "north-boss").password_hash = password_links._hasher.hash(NEW_PASSWORD)
        accounts.deactivate_member(s, accounts.get_member(s, _org(s), "north-boss"), actor="north-admin")
    with session_factory() as s:
        user = engine.verify_password(s, "north-boss", NEW_PASSWORD)
        assert user is not None
        assert engine.membership_of(s, user, _org(s)) is None
        assert engine.membership_of(s, user, _org(s, "south")) is not None


def test_an_admin_cannot_lock_themselves_out(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        me = accounts.get_member(s, _org(s), "north-admin")
        with pytest.raises(engine.PermissionDeniedError, match="yourself"):
            accounts.deactivate_member(s, me, actor="north-admin")
        with pytest.raises(engine.PermissionDeniedError, match="own admin role"):
            accounts.set_member_roles(s, me, ["case_handler"], actor="north-admin")
        assert me.deactivated_at is None and me.roles == ["admin"]


def test_roles_and_groups_are_set_exactly_and_audited(
    session_factory: so.sessionmaker[so.Session], buyers: None
) -> None:
    with session_factory.begin() as s:
        member = accounts.get_member(s, _org(s), "north-boss")
        accounts.set_member_roles(s, member, ["case_handler", "auditor"], actor="north-admin")
        accounts.set_member_groups(s, member, ["buyers"], actor="north-admin")
        accounts.set_member_groups(s, member, ["buyers"], actor="north-admin")  # no change, no event
        with pytest.raises(engine.FormValidationError):
            accounts.set_member_roles(s, member, ["wizard"], actor="north-admin")
    with session_factory() as s:
        member = accounts.get_member(s, _org(s), "north-boss")
        assert member.roles == ["auditor", "case_handler"] and [g.key for g in member.groups] == ["buyers"]
        (roles,) = _admin_events(s, "admin.roles_changed")
        assert roles.detail == {
            "before": {"roles": ["case_handler"]},
            "after": {"roles": ["auditor", "case_handler"]},
        }
        (groups,) = _admin_events(s, "admin.groups_changed")
        assert groups.detail["before"] == {"groups": ["approvers", "requesters"]}


def test_group_names_by_language_and_members(
    session_factory: so.sessionmaker[so.Session], buyers: None
) -> None:
    with session_factory.begin() as s:
        north = _org(s)
        group = accounts.get_group(s, north, "buyers")
        assert accounts.add_group_member(s, group, "north-req", actor="north-admin") is True
        assert accounts.add_group_member(s, group, "north-req", actor="north-admin") is False
        with pytest.raises(engine.NotFoundError):
            accounts.add_group_member(s, group, "south-req", actor="north-admin")
        accounts.save_group(
            s, north, "buyers", names={"sv": "Beställare", "fi": "", "en": "Buyers"}, actor="x"
        )
        with pytest.raises(engine.FormValidationError) as caught:
            accounts.save_group(s, north, "buyers", names={"en": "B"}, actor="x", create=True)
        assert list(caught.value.errors) == ["key"]
        with pytest.raises(engine.FormValidationError):
            accounts.save_group(s, north, "no spaces", names={}, actor="x")
    with session_factory() as s:
        north = _org(s)
        assert engine.group_names(s, north, "sv")["buyers"] == "Beställare"
        assert engine.group_names(s, north, "fi")["buyers"] == "Buyers"  # none in Finnish: the default
        (row,) = [g for g in accounts.list_groups(s, north) if g.key == "buyers"]
        assert (row.members, row.names) == (1, {"sv": "Beställare", "en": "Buyers"})
        assert [
            m.user.username for m in accounts.group_members(s, accounts.get_group(s, north, "buyers"))
        ] == ["north-req"]
        kinds = [e.kind for e in s.scalars(sa.select(engine.AuditEvent).order_by(engine.AuditEvent.id))]
        assert kinds == ["admin.group_added", "admin.groups_changed", "admin.group_changed"]
        with pytest.raises(engine.NotFoundError):
            accounts.get_group(s, _org(s, "south"), "buyers")


def test_a_group_with_open_tasks_is_not_deleted(
    session_factory: so.sessionmaker[so.Session], claimed: int
) -> None:
    with session_factory.begin() as s:
        with pytest.raises(engine.InvalidStateError, match="1 open task"):
            accounts.delete_group(s, accounts.get_group(s, _org(s), "approvers"), actor="north-admin")
        accounts.delete_group(s, accounts.get_group(s, _org(s), "requesters"), actor="north-admin")
    with session_factory() as s:
        assert [g.key for g in accounts.list_groups(s, _org(s))] == ["approvers"]
        (event,) = _admin_events(s, "admin.group_deleted")
        assert event.detail["before"]["members"] == ["north-boss", "north-req"]


# -- password links ------------------------------------------------------------------------------


def _new_user(session_factory: so.sessionmaker[so.Session], **values: object) -> password_links.IssuedLink:
    with session_factory.begin() as s:
        member = accounts.create_member(
            s,
            _org(s),
            username="alice",
            roles=["case_handler"],
            actor="north-admin",
            **values,  # type: ignore[arg-type]
        )
        member.user.language = "sv"  # the e-mail is in the user's language
        return password_links.issue_password_link(s, member, actor="north-admin", organisation_name="North")


def test_a_link_sets_the_password_once(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    issued = _new_user(session_factory, email="alice@north.example")
    assert len(issued.token) >= 43 and issued.emailed_to == "alice@north.example"
    with session_factory() as s:
        link = s.scalars(sa.select(engine.PasswordLink)).one()
        assert link.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
        assert issued.token not in str([link.token_hash, link.created_by])
        assert dt.timedelta(days=6, hours=23) < link.expires_at - link.created_at <= dt.timedelta(days=7)
        message = s.scalars(sa.select(engine.OutboxMessage)).one()
        assert message.subject == "Välj ditt lösenord till Procflow (North)"
        assert f"/password/{issued.token}" in message.body and "alice" in message.body
        job = s.scalars(sa.select(engine.Job).where(engine.Job.kind == "outbox")).one()
        assert job.payload == {"outbox_message_id": message.id}
        assert password_links.password_link_user(s, issued.token).username == "alice"
    with session_factory.begin() as s, pytest.raises(engine.FormValidationError) as caught:
        password_links.set_password_with_link(s, issued.token, "short", "short")
    assert list(caught.value.errors) == ["password"]
    with session_factory.begin() as s, pytest.raises(engine.FormValidationError) as caught:
        password_links.set_password_with_link(s, issued.token, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert list(caught.value.errors) == ["repeat"]
    with session_factory.begin() as s:
        password_links.set_password_with_link(s, issued.token, NEW_PASSWORD, NEW_PASSWORD)
    with session_factory() as s:
        assert engine.verify_password(s, "alice", NEW_PASSWORD) is not None
        (event,) = _admin_events(s, "admin.password_set")
        assert event.actor == "alice"
        with pytest.raises(engine.NotFoundError, match=password_links.INVALID_LINK):
            password_links.password_link_user(s, issued.token)
    with session_factory.begin() as s, pytest.raises(engine.NotFoundError):
        password_links.set_password_with_link(
            s, issued.token, "another long password", "another long password"
        )


def test_expired_replaced_unknown_and_deactivated_links_fail_alike(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    first = _new_user(session_factory)
    assert first.emailed_to is None
    with session_factory.begin() as s:
        member = accounts.get_member(s, _org(s), "alice")
        second = password_links.issue_password_link(s, member, actor="north-admin", organisation_name="North")
    with session_factory() as s:
        for token in (first.token, "not-a-token"):
            with pytest.raises(engine.NotFoundError, match=f"^{password_links.INVALID_LINK}$"):
                password_links.password_link_user(s, token)
        assert password_links.password_link_user(s, second.token).username == "alice"
    with (
        time_machine.travel(engine.models.utcnow() + dt.timedelta(days=7, minutes=1)),
        session_factory() as s,
        pytest.raises(engine.NotFoundError, match=password_links.INVALID_LINK),
    ):
        password_links.password_link_user(s, second.token)
    with session_factory.begin() as s:
        accounts.deactivate_member(s, accounts.get_member(s, _org(s), "alice"), actor="north-admin")
    with session_factory() as s, pytest.raises(engine.NotFoundError, match=password_links.INVALID_LINK):
        password_links.password_link_user(s, second.token)
