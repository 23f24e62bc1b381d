"""``procflow report contacts|register``: the CLI contract, each command a separate process."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
CPB = "yhteishankinnat"

Procflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def procflow(db_url: str, tmp_path: Path) -> Procflow:
    """Run ``procflow ARGS...`` in a new process on this test's database (demo loaded, processes deployed)."""
    beside_python = Path(sys.executable).parent / "procflow"
    executable = str(beside_python) if beside_python.exists() else shutil.which("procflow")
    assert executable, "the procflow console script is not installed (pip install -e .)"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env |= {"PROCFLOW_DATABASE_URL": db_url, "PROCFLOW_INSTANCE_PATH": str(tmp_path / "instance")}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        if ok:
            assert done.returncode == 0, f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr}"
        return done

    run("db", "upgrade")
    run("demo", "load")
    run("deploy", *(str(REPO / "processes" / name) for name in ("customer_contact", "direct_procurement")))
    return run


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def _task(procflow: Procflow, instance_id: int, bpmn_id: str) -> int:
    tasks = _json(procflow("tasks", "--instance", str(instance_id), "--json"))["tasks"]
    (task,) = [t for t in tasks if t["bpmn_id"] == bpmn_id]
    return int(task["id"])


def _contact(procflow: Procflow, ref: str, category: str, *, has_joined: bool = True) -> None:
    payload = {"contact_ref": ref, "email": "buyer@customer.example", "message": "A question."}
    sent = _json(
        procflow("send-message", "contact_received", "--org", CPB, "--data", json.dumps(payload), "--json")
    )
    instance_id = sent["instances"][0]["instance_id"]
    triage = {
        "customer_org_number": "0123456-7",
        "has_joined": has_joined,
        "agreement": "Cleaning services DPS",
        "lot": "Lot 1",
        "category": category,
        "language": "fi",
        "urgency": "normal",
    }
    task_id = _task(procflow, instance_id, "triage")
    procflow("complete", str(task_id), "--user", "cpb-support", "--data", json.dumps(triage), "--json")


def test_contacts_json_follows_the_contract(procflow: Procflow) -> None:
    _contact(procflow, "C-1", "advice")
    _contact(procflow, "C-2", "document_comments")
    _contact(procflow, "C-3", "advice", has_joined=False)
    document = _json(procflow("report", "contacts", "--org", CPB, "--json"))
    assert document["total"] == 3
    assert document["by_category"] == {
        "advice": 1,
        "document_comments": 1,
        "mini_competition": 0,
        "other": 0,
        "not_joined": 1,
    }
    assert document["mini_competitions_run"] == 0
    today = dt.date.today()
    earlier = (today - dt.timedelta(days=400)).isoformat()
    before = (today - dt.timedelta(days=1)).isoformat()
    empty = _json(procflow("report", "contacts", "--org", CPB, "--from", earlier, "--to", before, "--json"))
    assert empty["total"] == 0 and set(empty["by_category"].values()) == {0}
    text = procflow("report", "contacts", "--org", CPB).stdout
    assert "contacts: 3" in text and "not_joined: 1" in text


def test_register_csv_lists_the_direct_procurement(procflow: Procflow) -> None:
    started = _json(
        procflow("start", "direct_procurement", "--org", "esimerkkila", "--user", "fi-requester", "--json")
    )
    instance_id = started["instance_id"]
    need = {
        "subject": "Translations of the annual report",
        "description": "Finnish to Swedish and English.",
        "cpv_code": "79530000-8",
        "category": "services",
        "value_excl_vat": 30000,
        "contract_months": 12,
        "option_months": 0,
        "utility_activity": False,
        "same_kind_spend_outside": 0,
        "framework_agreement_exists": False,
        "requester": "fi-requester",
        "participants": ["fi-requester"],
        "requester_email": "fi-requester@demo.example",
    }
    task_id = _task(procflow, instance_id, "describe_need")
    procflow("complete", str(task_id), "--user", "fi-requester", "--data", json.dumps(need), "--json")
    rows = list(
        csv.DictReader(io.StringIO(procflow("report", "register", "--org", "esimerkkila", "--csv").stdout))
    )
    (row,) = rows
    assert row["instance_id"] == str(instance_id)
    assert (row["subject"], row["cpv_code"], row["value"], row["currency"]) == (
        "Translations of the annual report",
        "79530000-8",
        "30000",
        "EUR",
    )
    assert row["documentation_required"] == "true" and row["days_left"] == ""
    document = _json(procflow("report", "register", "--org", "esimerkkila", "--json"))
    assert [r["subject"] for r in document["register"]] == ["Translations of the annual report"]
    assert document["register"][0]["value"] == 30000
    assert _json(procflow("report", "register", "--org", CPB, "--json")) == {"register": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("report", "contacts", "--org", "nowhere"), "nowhere"),
        (("report", "contacts", "--org", CPB, "--from", "2025-02-01", "--to", "2025-01-01"), "after it ends"),
        (("report", "register", "--org", CPB, "--from", "1.1.2025"), "--from"),
        (("report", "register", "--org", CPB, "--csv", "--json"), "choose one of --csv and --json"),
    ],
)
def test_bad_input_is_one_clear_line(procflow: Procflow, args: tuple[str, ...], message: str) -> None:
    done = procflow(*args, ok=False)
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr
