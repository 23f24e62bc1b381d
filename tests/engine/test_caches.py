"""Process-wide caches see at once what another process changed (engine/caches.py).

Users, roles, groups and resolved definitions are cached in each process under
the organisation's versions; these tests make the change in a separate
``procflow`` process, as another web node or worker would, and check that the
very next operation here acts on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine import caches
from tests.conftest import FIXTURES

APPROVAL = FIXTURES / "approval"
REPO = Path(__file__).resolve().parent.parent.parent
REQUEST = {"subject": "Laptops", "amount": 1000, "requester_email": "req@example.org"}
Factory = so.sessionmaker[so.Session]


@pytest.fixture
def procflow(db_url: str, tmp_path: Path) -> Callable[..., str]:
    """Run ``procflow ARGS...`` in another process on this test's database."""
    beside_python = Path(sys.executable).parent / "procflow"
    executable = str(beside_python) if beside_python.exists() else shutil.which("procflow")
    assert executable, "the procflow console script is not installed"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env |= {"PROCFLOW_DATABASE_URL": db_url, "PROCFLOW_INSTANCE_PATH": str(tmp_path / "instance")}

    def run(*args: str) -> str:
        done = subprocess.run(
            [executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"procflow {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return done.stdout

    return run


@pytest.fixture
def deployed(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)


def _waiting_for_approval(session_factory: Factory) -> int:
    """Start an approval as north-req and submit the request: the approval task's id."""
    with session_factory.begin() as s:
        instance_id = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        engine.complete_task(s, task.id, user="north-req", data=REQUEST)
    with session_factory() as s:
        (approve,) = engine.list_tasks(s, instance_id=instance_id)
        return approve.id


def test_a_group_given_in_another_process_counts_at_once(
    session_factory: Factory, deployed: None, procflow: Callable[..., str]
) -> None:
    with session_factory.begin() as s:
        engine.add_user(s, "north-new", organisation="north", roles=["case_handler"])
    task_id = _waiting_for_approval(session_factory)
    refused = pytest.raises(engine.PermissionDeniedError, match="not in group 'approvers'")
    with refused, session_factory.begin() as s:
        engine.claim_task(s, task_id, user="north-new")  # this process now caches north-new's groups
    procflow("user", "add", "north-new", "--org", "north", "--group", "approvers")
    with session_factory.begin() as s:
        assert engine.claim_task(s, task_id, user="north-new").assignee_id is not None


def test_a_role_taken_away_in_another_process_counts_at_once(
    session_factory: Factory, deployed: None, db_url: str
) -> None:
    task_id = _waiting_for_approval(session_factory)
    with session_factory.begin() as s:
        engine.claim_task(s, task_id, user="north-boss")
        engine.unclaim_task(s, task_id, user="north-boss")
    # Another process turns north-boss into an auditor, through the models as an admin page would.
    script = (
        "import sqlalchemy as sa, engine\n"
        f"factory = engine.create_session_factory(engine.create_db_engine({db_url!r}))\n"
        "with factory.begin() as s:\n"
        "    m = s.scalars(sa.select(engine.Membership).join(engine.User)"
        ".where(engine.User.username == 'north-boss')).one()\n"
        "    m.roles = ['auditor']\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
    with pytest.raises(engine.PermissionDeniedError, match="only reads cases"), session_factory.begin() as s:
        engine.claim_task(s, task_id, user="north-boss")


def test_a_version_deployed_in_another_process_is_started_at_once(
    session_factory: Factory, deployed: None, procflow: Callable[..., str], tmp_path: Path
) -> None:
    with session_factory.begin() as s:
        first = engine.start_instance(s, "approval", organisation="north", user="north-req")
        assert first.definition.organisation_id is None  # this process now caches the shared one for north
    changed = tmp_path / "approval"
    shutil.copytree(APPROVAL, changed)
    bpmn = changed / "approval.bpmn"
    bpmn.write_text(bpmn.read_text().replace('name="Purchase approval"', 'name="Purchase approval v2"'))
    procflow("deploy", str(changed), "--org", "north")
    with session_factory.begin() as s:
        second = engine.start_instance(s, "approval", organisation="north", user="north-req")
        north = engine.get_organisation(s, "north").id
        assert (second.definition.organisation_id, second.title) == (north, "Purchase approval v2")
    # South still runs the shared version 1: north's own deployment is north's alone.
    with session_factory.begin() as s:
        south = engine.start_instance(s, "approval", organisation="south", user="south-req")
        assert (south.definition.version, south.definition.organisation_id) == (1, None)


def test_two_databases_in_one_process_never_share_entries(
    session_factory: Factory, orgs: None, tmp_path: Path
) -> None:
    # Same organisation ids and usernames in both; only the versions (random per database) tell them apart.
    other_db = engine.create_db_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    engine.upgrade_database(other_db)
    other = engine.create_session_factory(other_db)
    with other.begin() as s:
        for key in ("north", "south"):
            engine.add_organisation(s, key, name=key)
            engine.add_user(s, f"{key}-req", organisation=key, roles=["auditor"])
    for factory in (session_factory, other):
        with factory.begin() as s:
            engine.deploy_path(s, APPROVAL)
    with session_factory.begin() as s:
        engine.start_instance(s, "approval", organisation="north", user="north-req")
    with pytest.raises(engine.PermissionDeniedError, match="may not start"), other.begin() as s:
        engine.start_instance(s, "approval", organisation="north", user="north-req")
    other_db.dispose()


def test_every_change_to_identity_or_definitions_replaces_a_version(
    session_factory: Factory, orgs: None
) -> None:
    def versions() -> dict[str, tuple[int, int]]:
        with session_factory() as s:
            rows = s.execute(
                sa.select(
                    engine.Organisation.key,
                    engine.Organisation.identity_version,
                    engine.Organisation.definitions_version,
                )
            )
            return {key: (identity, definitions) for key, identity, definitions in rows}

    def changed(action: Callable[[so.Session], Any]) -> set[str]:
        before = versions()
        with session_factory.begin() as s:
            action(s)
        after = versions()
        return {
            f"{key}.{kind}"
            for key in before
            for index, kind in enumerate(("identity", "definitions"))
            if before[key][index] != after[key][index]
        }

    assert changed(lambda s: engine.add_user(s, "north-x", organisation="north", roles=["requester"])) == {
        "north.identity"
    }
    assert changed(lambda s: engine.add_user(s, "north-x", organisation="north", groups=["g"])) == {
        "north.identity"
    }
    # A user belongs to no organisation alone: changing one changes every organisation they are in.
    with session_factory.begin() as s:
        engine.add_user(s, "north-x", organisation="south", roles=["requester"])
    assert changed(
        lambda s: setattr(
            s.scalars(sa.select(engine.User).filter_by(username="north-x")).one(), "is_active", False
        )
    ) == {"north.identity", "south.identity"}
    assert changed(lambda s: engine.deploy_path(s, APPROVAL, organisation="south")) == {"south.definitions"}
    assert changed(lambda s: engine.deploy_path(s, APPROVAL)) == {"north.definitions", "south.definitions"}
    assert changed(lambda s: engine.list_tasks(s)) == set()


def test_clearing_the_caches_changes_nothing_but_speed(session_factory: Factory, deployed: None) -> None:
    task_id = _waiting_for_approval(session_factory)
    caches.clear()
    with session_factory.begin() as s:
        engine.complete_task(s, task_id, user="north-boss", data={"approved": True})
        assert engine.get_instance(s, engine.get_task(s, task_id).instance_id).status == "completed"
