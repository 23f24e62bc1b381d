"""The audit page's query: an organisation's admin actions, filtered, paged in SQL, exported."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]


def _org_id(session_factory: Factory, key: str) -> int:
    with session_factory() as s:
        return engine.get_organisation(s, key).id


def _record(session_factory: Factory, org: str, actor: str, action: str, target: str, **at: int) -> int:
    with session_factory.begin() as s:
        event = engine.record_admin_action(
            s,
            organisation_id=engine.get_organisation(s, org).id,
            actor=actor,
            action=action,
            target=target,
            before={"value": 1},
            after={"value": 2},
        )
        if at:
            event.at = dt.datetime(2026, 3, at["day"], at.get("hour", 12), tzinfo=dt.UTC)
        return event.id


@pytest.fixture
def instance_actions(session_factory: Factory, orgs: None) -> int:
    """An approval instance of north that was suspended, resumed, its data corrected, then cancelled."""
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval")
        instance_id = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    for action in (
        lambda s: engine.suspend_instance(s, instance_id, user="north-admin"),
        lambda s: engine.resume_instance(s, instance_id, user="north-admin"),
        lambda s: engine.set_instance_data(s, instance_id, user="north-admin", data={"amount": 5}),
        lambda s: engine.cancel_instance(s, instance_id, user="north-admin"),
    ):
        with session_factory.begin() as s:
            action(s)
    return instance_id


def test_lists_admin_and_instance_actions_of_the_organisation_only(
    session_factory: Factory, instance_actions: int
) -> None:
    added = _record(session_factory, "north", "north-admin", "user_added", "user alice")
    _record(session_factory, "south", "south-admin", "user_added", "user bob")
    with session_factory() as s:
        page = engine.admin_audit_page(s, _org_id(session_factory, "north"))
    kinds = [entry.kind for entry in page.entries]
    # Newest first; "started" (no admin action) is not listed; south's event is not either.
    assert kinds == ["admin.user_added", "cancelled", "data_changed", "resumed", "suspended"]
    first = page.entries[0]
    assert (first.id, first.actor, first.target, first.before, first.after) == (
        added,
        "north-admin",
        "user alice",
        {"value": 1},
        {"value": 2},
    )
    changed = page.entries[2]
    assert changed.target == f"instance {instance_actions}" and changed.instance_id == instance_actions
    assert changed.before == {"amount": None} and changed.after == {"amount": 5}
    assert page.entries[3].before is None and page.entries[3].after is None
    assert page.older is None and page.newer is None
    with session_factory() as s:
        assert engine.admin_audit_kinds(s, _org_id(session_factory, "north")) == [
            "admin.user_added",
            "cancelled",
            "data_changed",
            "resumed",
            "suspended",
        ]


def test_filters_by_actor_kind_and_days_in_the_time_zone(session_factory: Factory, orgs: None) -> None:
    north = _org_id(session_factory, "north")
    early = _record(session_factory, "north", "North-Admin", "user_added", "user a", day=1, hour=22)
    _record(session_factory, "north", "other-admin", "user_added", "user b", day=2, hour=10)
    late = _record(session_factory, "north", "north-admin", "group_added", "group g", day=3, hour=10)

    def ids(where: engine.AuditFilter, zone: str = "UTC") -> list[int]:
        with session_factory() as s:
            return [e.id for e in engine.admin_audit_page(s, north, where, time_zone=zone).entries]

    assert ids(engine.AuditFilter(actor=" north-admin ")) == [late, early]
    assert ids(engine.AuditFilter(kind="admin.group_added")) == [late]
    assert ids(engine.AuditFilter(since=dt.date(2026, 3, 2))) == [late, early + 1]
    assert ids(engine.AuditFilter(until=dt.date(2026, 3, 1))) == [early]
    # 22:00 UTC on 1 March is already 2 March in Helsinki (UTC+2).
    assert ids(engine.AuditFilter(until=dt.date(2026, 3, 1)), "Europe/Helsinki") == []
    assert ids(
        engine.AuditFilter(since=dt.date(2026, 3, 2), until=dt.date(2026, 3, 2)), "Europe/Helsinki"
    ) == [
        early + 1,
        early,
    ]
    with pytest.raises(engine.DataError):
        engine.AuditFilter(since=dt.date(2026, 3, 2), until=dt.date(2026, 3, 1))
    with pytest.raises(engine.DataError):
        engine.AuditFilter(kind="started")


def test_pages_by_keyset_both_ways(session_factory: Factory, orgs: None) -> None:
    north = _org_id(session_factory, "north")
    made = [_record(session_factory, "north", "north-admin", "user_added", f"user u{n}") for n in range(7)]
    _record(session_factory, "south", "south-admin", "user_added", "user x")
    newest_first = list(reversed(made))
    with session_factory() as s:
        first = engine.admin_audit_page(s, north, limit=3)
        assert [e.id for e in first.entries] == newest_first[:3] and first.newer is None
        second = engine.admin_audit_page(s, north, before=first.older, limit=3)
        assert [e.id for e in second.entries] == newest_first[3:6]
        third = engine.admin_audit_page(s, north, before=second.older, limit=3)
        assert [e.id for e in third.entries] == newest_first[6:] and third.older is None
        back = engine.admin_audit_page(s, north, after=third.newer, limit=3)
        assert [e.id for e in back.entries] == newest_first[3:6]
        assert back.older == second.older and back.newer == second.newer
        top = engine.admin_audit_page(s, north, after=back.newer, limit=3)
        assert [e.id for e in top.entries] == newest_first[:3] and top.newer is None
        with pytest.raises(engine.DataError):
            engine.admin_audit_page(s, north, before=1, after=2)
        with pytest.raises(engine.DataError):
            engine.admin_audit_page(s, north, limit=0)


def test_all_entries_in_batches_for_the_export(session_factory: Factory, orgs: None) -> None:
    north = _org_id(session_factory, "north")
    made = [_record(session_factory, "north", "north-admin", "user_added", f"user u{n}") for n in range(5)]
    with session_factory() as s:
        assert [e.id for e in engine.admin_audit_entries(s, north, batch=2)] == list(reversed(made))
        kinds = engine.AuditFilter(kind="admin.user_added", actor="nobody")
        assert list(engine.admin_audit_entries(s, north, kinds)) == []
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.AuditEvent)) == 5
