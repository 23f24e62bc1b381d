"""``procflow demo history``: a year of cases through the engine, in subprocesses on a fresh database.

The central purchasing body's year must reproduce the published contact
breakdown in the contact report; a buying organisation's year has direct
procurements, mini-competitions and a goal review with quarterly updates; the
same seed gives the same year; a second run for the same year is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import engine
from engine.demo_history import CONTACTS, JOINT_MINI_COMPETITIONS

REPO = Path(__file__).resolve().parent.parent.parent
# The central body's year is some 11 000 engine transactions (see the report in the module docstring).
HISTORY_TIMEOUT = 3600

Procflow = Callable[..., subprocess.CompletedProcess[str]]


def _procflow_executable() -> str:
    beside_python = Path(sys.executable).parent / "procflow"
    found = str(beside_python) if beside_python.exists() else shutil.which("procflow")
    assert found, "the procflow console script is not installed (pip install -e .)"
    return found


@pytest.fixture
def procflow(db_url: str, tmp_path: Path) -> Procflow:
    """Run ``procflow ARGS...`` in a new process on this test's database (no SMTP: nothing is mailed)."""
    executable = _procflow_executable()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env |= {"PROCFLOW_DATABASE_URL": db_url, "PROCFLOW_INSTANCE_PATH": str(tmp_path / "instance")}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=HISTORY_TIMEOUT
        )
        if check:
            assert done.returncode == 0, (
                f"{' '.join(args[:3])} exited {done.returncode}: {done.stderr[-2000:]}"
            )
        return done

    run("db", "upgrade")
    run("demo", "load")
    return run


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def _cases(db_url: str, organisation: str) -> list[dict[str, Any]]:
    """The organisation's cases as the projection holds them, without ids (which depend on the database)."""
    db = engine.create_db_engine(db_url)
    try:
        with engine.create_session_factory(db)() as s:
            org = engine.get_organisation(s, organisation)
            rows = s.scalars(
                sa.select(engine.CaseReport)
                .where(engine.CaseReport.organisation_id == org.id)
                .order_by(engine.CaseReport.started_at, engine.CaseReport.instance_id)
            ).all()
            return [
                {
                    "process_id": r.process_id,
                    "status": r.status,
                    "title": r.title,
                    "started_at": r.started_at.isoformat(),
                    "completed_at": r.completed_at.isoformat() if r.completed_at else None,
                    "fields": {k: v for k, v in (r.fields or {}).items() if "instance_id" not in k},
                }
                for r in rows
            ]
    finally:
        db.dispose()


@pytest.mark.slow
def test_the_central_bodys_year_reproduces_the_published_contact_breakdown(
    procflow: Procflow, db_url: str
) -> None:
    done = procflow("demo", "history", "--org", "yhteishankinnat", "--year", "2025", "--json")
    summary = _json(done)
    assert summary["errors"] == [] and summary["jobs_failed"] == 0 and summary["incidents"] == 0
    contacts = sum(CONTACTS.values())
    assert summary["started"] == {"customer_contact": contacts, "mini_competition": JOINT_MINI_COMPETITIONS}
    assert "yhteishankinnat 2025" in done.stderr, "the progress bar goes to stderr"

    # Straight from the projection: each contact's route, and when contacts arrived.
    cases = _cases(db_url, "yhteishankinnat")
    routes: dict[str, int] = {}
    for case in cases:
        if case["process_id"] == "customer_contact":
            routes[case["fields"]["category"]] = routes.get(case["fields"]["category"], 0) + 1
    assert routes == CONTACTS
    first_contact = min(c["started_at"] for c in cases if c["process_id"] == "customer_contact")
    assert first_contact.startswith("2025-04-2"), "contacts arrive from the end of April"
    assert (
        800 < contacts < 850
        and 560 <= CONTACTS["advice"] <= 580
        and 200 < CONTACTS["document_comments"] < 210
    )
    # Real outcomes, not one path: most contacts are closed, service levels are mostly met, some rated.
    closed = [c for c in cases if c["process_id"] == "customer_contact" and c["status"] == "completed"]
    assert len(closed) > 0.95 * contacts
    replied = [c for c in closed if c["fields"].get("sla_met") is not None]
    met = sum(1 for c in replied if c["fields"]["sla_met"])
    assert 0.75 < met / len(replied) < 0.97
    ratings = [c["fields"]["satisfaction"] for c in closed if c["fields"].get("satisfaction") is not None]
    assert 0.5 * len(closed) < len(ratings) < 0.75 * len(closed) and set(ratings) == {1, 2, 3, 4, 5}
    joint = [c for c in cases if c["process_id"] == "mini_competition"]
    assert (
        sum(1 for c in joint if c["fields"]["origin"] == "customer_contact") == CONTACTS["mini_competition"]
    )
    assert all(c["fields"]["customer_organisation"] for c in joint), "each is run with a named customer"
    assert sum(1 for c in joint if c["fields"]["outcome"] == "awarded") > 0.8 * len(joint)

    report = _json(
        procflow(
            "report",
            "contacts",
            "--org",
            "yhteishankinnat",
            "--from",
            "2025-01-01",
            "--to",
            "2025-12-31",
            "--json",
        )
    )
    assert report["total"] == contacts
    assert report["by_category"] == CONTACTS
    assert report["mini_competitions_run"] == JOINT_MINI_COMPETITIONS

    again = procflow("demo", "history", "--org", "yhteishankinnat", "--year", "2025", check=False)
    assert again.returncode == 1
    assert "yhteishankinnat already has 934 case(s) started in 2025" in again.stderr


@pytest.mark.slow
def test_a_buying_organisations_year_is_the_same_for_the_same_seed(
    procflow: Procflow, db_url: str, tmp_path: Path
) -> None:
    summary = _json(
        procflow("demo", "history", "--org", "exempelby", "--year", "2025", "--seed", "7", "--json")
    )
    assert summary["errors"] == [] and summary["jobs_failed"] == 0
    assert summary["started"] == {"direct_procurement": 36, "goal_review": 1, "mini_competition": 6}
    first = _cases(db_url, "exempelby")
    purchases = [c for c in first if c["process_id"] == "direct_procurement"]
    outcomes = {c["fields"]["outcome"] for c in purchases}
    assert {"ordered", "not_approved"} <= outcomes or {"ordered", "cancelled"} <= outcomes
    assert {c["status"] for c in purchases} >= {"completed", "cancelled"}
    required = [c for c in purchases if c["fields"]["documentation_required"]]
    assert 0 < len(required) < len(purchases), "some above the documentation threshold, some below"
    assert any(c["fields"]["documentation_complete"] for c in required)
    assert all(c["started_at"] < "2026" for c in first)
    (review,) = [c for c in first if c["process_id"] == "goal_review"]
    assert review["status"] == "waiting", "the year's review waits for its fourth quarter"

    # The same seed on another fresh database: the same cases, with the same data, on the same dates.
    other_url = f"sqlite:///{tmp_path / 'again.sqlite3'}"
    if db_url.startswith("postgresql"):
        other_url = db_url  # one PostgreSQL database per helper: compare after emptying it
        db = engine.create_db_engine(db_url)
        with db.begin() as conn:
            tables = ", ".join(t.name for t in engine.models.Base.metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        db.dispose()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env |= {"PROCFLOW_DATABASE_URL": other_url, "PROCFLOW_INSTANCE_PATH": str(tmp_path / "instance")}
    for args in (
        ("db", "upgrade"),
        ("demo", "load"),
        ("demo", "history", "--org", "exempelby", "--year", "2025", "--seed", "7"),
    ):
        done = subprocess.run(
            [_procflow_executable(), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=HISTORY_TIMEOUT,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert _cases(other_url, "exempelby") == first


def test_only_demo_organisations_and_begun_years(procflow: Procflow) -> None:
    unknown = procflow("demo", "history", "--org", "north", "--year", "2025", check=False)
    assert unknown.returncode == 1
    assert (
        "demo history knows the demo organisations esimerkkila, exempelby, yhteishankinnat" in unknown.stderr
    )
    future = procflow("demo", "history", "--org", "exempelby", "--year", "2999", check=False)
    assert future.returncode == 1 and "The year 2999 has not begun" in future.stderr
