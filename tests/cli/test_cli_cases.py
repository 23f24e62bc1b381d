"""``procflow cases``: the case list as separate ``procflow`` processes on a real database."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine

import engine
from tests.conftest import FIXTURES

REPO = Path(__file__).resolve().parent.parent.parent
Factory = so.sessionmaker[so.Session]


@pytest.fixture
def procflow(db_url: str, tmp_path: Path) -> Any:
    """Run ``procflow ARGS...`` in a new process on this test's database; return (exit code, out, err)."""
    beside_python = Path(sys.executable).parent / "procflow"
    executable = str(beside_python) if beside_python.exists() else shutil.which("procflow")
    assert executable, "the procflow console script is not installed (pip install -e .)"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env |= {"PROCFLOW_DATABASE_URL": db_url, "PROCFLOW_INSTANCE_PATH": str(tmp_path / "instance")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )

    return run


@pytest.fixture
def cases(session_factory: Factory, orgs: None) -> dict[str, int]:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "cases")

    def start(title: str, user: str, day: int, org: str = "north") -> int:
        moment = dt.datetime(2026, 5, day, 8, tzinfo=dt.UTC)
        with time_machine.travel(moment, tick=False), session_factory.begin() as s:
            return engine.start_instance(s, "case_purchase", organisation=org, user=user, title=title).id

    found = {
        "chairs": start("Office chairs", "north-req", 1),
        "desks": start("Standing desks", "north-boss", 2),
        "south": start("Chairs", "south-req", 3, org="south"),
    }
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=found["chairs"])
    with session_factory.begin() as s:
        engine.complete_task(
            s, task.id, user="north-req", data={"subject": "Seating", "winner": {"supplier": "Sitwell Oy"}}
        )
    return found


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cases_of_an_organisation_newest_first_in_the_contracts_shape(
    procflow: Any, cases: dict[str, int]
) -> None:
    listed = _json(procflow("cases", "--org", "north", "--json"))
    assert [c["id"] for c in listed["cases"]] == [cases["desks"], cases["chairs"]]
    first = listed["cases"][0]
    assert {"id", "process_id", "title", "status", "started_at"} <= set(first)
    assert (first["process_id"], first["title"], first["status"]) == (
        "case_purchase",
        "Standing desks",
        "running",
    )
    assert dt.datetime.fromisoformat(first["started_at"]) == dt.datetime(2026, 5, 2, 8, tzinfo=dt.UTC)
    assert listed["more"] is False


def test_a_users_cases_and_a_text_search_over_searchable_fields(procflow: Any, cases: dict[str, int]) -> None:
    mine = _json(procflow("cases", "--user", "north-req", "--json"))
    assert [c["id"] for c in mine["cases"]] == [cases["chairs"]]
    # Without --org: every organisation; south's Sitwell case has not reported its supplier yet.
    by_supplier = _json(procflow("cases", "--q", "sitwell", "--json"))
    assert [(c["id"], c["organisation"]) for c in by_supplier["cases"]] == [(cases["chairs"], "north")]
    text = procflow("cases", "--org", "north", "--limit", "1")
    assert text.returncode == 0 and f"#{cases['desks']}\tnorth\trunning" in text.stdout
    assert "more than 1 cases" in text.stdout


def test_unknown_organisation_or_user_is_one_clear_line(procflow: Any, cases: dict[str, int]) -> None:
    missing = procflow("cases", "--org", "nowhere")
    assert missing.returncode == 1 and "No organisation 'nowhere'" in missing.stderr
    assert "Traceback" not in missing.stderr
    stranger = procflow("cases", "--org", "south", "--user", "north-req")
    assert stranger.returncode == 1 and "No user 'north-req' in organisation 'south'" in stranger.stderr
