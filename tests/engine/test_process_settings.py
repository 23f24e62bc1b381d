"""An organisation's own version of a shared process, and going back to the shared one for new cases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine import caches
from engine._specs import read_bundle
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]
APPROVAL = FIXTURES / "approval"


@pytest.fixture
def customised(session_factory: Factory, orgs: None) -> None:
    """``approval`` shared, and north's own version of it."""
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)
        engine.deploy_path(s, APPROVAL, organisation="north")


def _org_id(session_factory: Factory, key: str = "north") -> int:
    with session_factory() as s:
        return engine.get_organisation(s, key).id


def _new_case_owner(session_factory: Factory, org: str = "north") -> int | None:
    """Start a case and return the organisation of the definition it started on (None: shared)."""
    with session_factory.begin() as s:
        instance = engine.start_instance(s, "approval", organisation=org, user=f"{org}-req")
        return instance.definition.organisation_id


def _definitions_version(session_factory: Factory, org_id: int) -> int:
    with session_factory() as s:
        return s.get_one(engine.Organisation, org_id).definitions_version


def test_new_cases_start_on_the_shared_version_again_and_back_on_the_own(
    session_factory: Factory, customised: None
) -> None:
    north = _org_id(session_factory)
    assert _new_case_owner(session_factory) == north
    with session_factory() as s:
        running_own = engine.list_instances(s, organisation_id=north)[0].id

    with session_factory.begin() as s:
        choice = engine.set_use_shared(s, north, "approval", use_shared=True, user="north-admin")
        assert choice.state == "own_using_shared" and choice.new_cases.organisation_id is None
    assert _new_case_owner(session_factory) is None
    # Other organisations and cases already running are not moved.
    assert _new_case_owner(session_factory, "south") is None
    with session_factory() as s:
        assert engine.get_instance(s, running_own).definition.organisation_id == north
        assert engine.resolve_definition(s, "approval", north).organisation_id is None
        assert [d.organisation_id for d in engine.visible_definitions(s, north)] == [None]

    with session_factory.begin() as s:
        engine.set_use_shared(s, north, "approval", use_shared=False, user="north-admin")
    assert _new_case_owner(session_factory) == north
    with session_factory() as s:
        assert [d.organisation_id for d in engine.visible_definitions(s, north)] == [north]


def test_a_change_of_choice_replaces_the_definitions_version_so_every_process_resolves_afresh(
    session_factory: Factory, customised: None
) -> None:
    north = _org_id(session_factory)
    south = _org_id(session_factory, "south")
    with session_factory() as s:
        # Cached under the current version, as any web process or worker would have it.
        assert engine.resolve_definition(s, "approval", north).organisation_id == north
    before, south_before = (
        _definitions_version(session_factory, north),
        _definitions_version(session_factory, south),
    )
    with session_factory.begin() as s:
        engine.set_use_shared(s, north, "approval", use_shared=True, user="north-admin")
    assert _definitions_version(session_factory, north) != before
    assert _definitions_version(session_factory, south) == south_before
    with session_factory() as s:
        assert engine.resolve_definition(s, "approval", north).organisation_id is None

    # Any change of a settings row through the ORM replaces the version (the caches' listener).
    between = _definitions_version(session_factory, north)
    with session_factory.begin() as s:
        s.scalars(sa.select(engine.ProcessSetting)).one().use_shared = False
    assert _definitions_version(session_factory, north) != between
    with session_factory() as s:
        assert engine.resolve_definition(s, "approval", north).organisation_id == north


def test_the_choice_survives_a_fresh_process(session_factory: Factory, customised: None) -> None:
    north = _org_id(session_factory)
    with session_factory.begin() as s:
        engine.set_use_shared(s, north, "approval", use_shared=True, user="north-admin")
    caches.clear()
    engine.SPEC_CACHE.clear()
    assert _new_case_owner(session_factory) is None


def test_the_choice_is_an_audited_admin_action_and_setting_it_twice_records_once(
    session_factory: Factory, customised: None
) -> None:
    north = _org_id(session_factory)
    for _ in range(2):
        with session_factory.begin() as s:
            engine.set_use_shared(s, north, "approval", use_shared=True, user="north-admin")
    with session_factory() as s:
        (event,) = s.scalars(sa.select(engine.AuditEvent).where(engine.AuditEvent.kind.startswith("admin.")))
        assert (event.kind, event.actor, event.element) == (
            "admin.process_uses_shared",
            "north-admin",
            "process approval",
        )
        assert event.detail == {
            "before": {"use_shared": False, "new_cases": "own v1"},
            "after": {"use_shared": True, "new_cases": "shared v1"},
        }
        setting = s.scalar(sa.select(engine.ProcessSetting))
        assert setting is not None and setting.updated_by == "north-admin"


def test_choices_list_shared_own_and_own_using_shared(session_factory: Factory, customised: None) -> None:
    north = _org_id(session_factory)
    south = _org_id(session_factory, "south")
    with session_factory.begin() as s:
        files = [
            engine.BundleFile(
                f.name,
                f.kind,
                f.content.replace(
                    'id="approval" name="Purchase approval"', 'id="own_only" name="An own process"'
                ),
            )
            for f in read_bundle(APPROVAL)
        ]
        engine.deploy_files(
            s,
            files,
            name="own_only",
            organisation="north",
        )
    with session_factory() as s:
        choices = {c.process_id: c for c in engine.process_choices(s, north)}
        assert {k: c.state for k, c in choices.items()} == {"approval": "own", "own_only": "own"}
        assert choices["own_only"].shared is None and choices["approval"].shared is not None
        assert [(c.process_id, c.state) for c in engine.process_choices(s, south)] == [("approval", "shared")]


def test_refusals_name_the_reason(session_factory: Factory, customised: None) -> None:
    south = _org_id(session_factory, "south")
    north = _org_id(session_factory)
    with pytest.raises(engine.InvalidStateError, match="no version of its own"), session_factory.begin() as s:
        engine.set_use_shared(s, south, "approval", use_shared=True, user="south-admin")
    with pytest.raises(engine.InvalidStateError, match="customise it first"), session_factory.begin() as s:
        engine.set_use_shared(s, south, "approval", use_shared=False, user="south-admin")
    with pytest.raises(engine.NotFoundError), session_factory.begin() as s:
        engine.set_use_shared(s, north, "nothing_such", use_shared=True, user="north-admin")
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.ProcessSetting)) == 0
