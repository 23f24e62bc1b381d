"""``procflow user deactivate``, ``user reactivate`` and ``group add`` end to end on a real database."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from click.testing import CliRunner, Result

import engine
from tests.conftest import FIXTURES
from web.cli import main

REQUEST = {"subject": "Laptops", "amount": 1000, "requester_email": "req@example.org"}


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PROCFLOW_DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.stderr or result.output
        return result

    return run


def test_group_add_with_names_then_change_one(
    cli: Any, session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    made = cli(
        "group", "add", "buyers", "--org", "north", "--name-sv", "Inköpare", "--name-en", "Buyers", "--json"
    )
    assert json.loads(made.stdout) == {
        "key": "buyers",
        "organisation": "north",
        "names": {"sv": "Inköpare", "en": "Buyers"},
        "created": True,
    }
    changed = cli("group", "add", "buyers", "--org", "north", "--name-fi", "Ostajat")
    assert changed.stdout.strip() == "group buyers saved in north"
    bad = cli("group", "add", "no spaces", "--org", "north", ok=False)
    assert bad.exit_code == 1 and "key" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("group", "add", "x", "--org", "nowhere", ok=False)
    assert missing.exit_code == 1 and "No organisation 'nowhere'" in missing.stderr
    with session_factory() as s:
        north = engine.get_organisation(s, "north").id
        assert engine.group_names(s, north, "fi")["buyers"] == "Ostajat"
        assert engine.group_names(s, north, "sv")["buyers"] == "Inköpare"
        kinds = [e.kind for e in s.scalars(sa.select(engine.AuditEvent).order_by(engine.AuditEvent.id))]
        assert kinds == ["admin.group_added", "admin.group_changed"]


def test_user_deactivate_releases_claims_and_reactivate(
    cli: Any, session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval")
        instance_id = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        engine.complete_task(s, task.id, user="north-req", data=REQUEST)
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        engine.claim_task(s, task.id, user="north-boss")
        task_id = task.id
    done = cli("user", "deactivate", "north-boss", "--json")
    assert json.loads(done.stdout) == {
        "username": "north-boss",
        "deactivated": [{"organisation": "north", "changed": True, "released_tasks": [task_id]}],
    }
    again = cli("user", "deactivate", "north-boss")
    assert again.stdout.strip() == "user north-boss was already deactivated in north"
    with session_factory() as s:
        assert engine.get_task(s, task_id).assignee_id is None
        (event,) = s.scalars(
            sa.select(engine.AuditEvent).where(engine.AuditEvent.kind == "admin.user_deactivated")
        )
        assert event.actor is None and event.element == "user north-boss"
    assert cli("user", "deactivate", "nobody", ok=False).stderr.strip() == "error: No user 'nobody'"
    wrong = cli("user", "deactivate", "north-boss", "--org", "south", ok=False)
    assert "No user 'north-boss' in organisation 'south'" in wrong.stderr
    back = cli("user", "reactivate", "north-boss", "--org", "north", "--json")
    assert json.loads(back.stdout) == {"username": "north-boss", "organisation": "north", "changed": True}
    with session_factory() as s:
        user = engine.get_user(s, "north-boss")
        assert engine.membership_of(s, user, engine.get_organisation(s, "north").id) is not None
