"""A direct procurement from start to archived record, every step a separate ``procflow`` process.

The scenario tests restore a case from the database between steps but stay in
one Python process; here nothing but the database carries a case from one step
to the next, as between web workers, job workers and restarts in production.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
TIMER_WAIT_SECONDS = 60
# Far enough ahead that the completing subprocess, on a loaded machine, still finds it in the future
# (the form refuses a past deadline); the worker then waits for it.
QUOTE_DEADLINE_AHEAD = dt.timedelta(seconds=20)

Procflow = Callable[..., Any]

SUPPLIERS = [
    {"name": "Käännöstoimisto Oy", "org_number": "1234567-8", "email": "tarjous@kaannos.example"},
    {"name": "Kielipalvelu Oy", "org_number": "2345678-9", "email": "myynti@kielipalvelu.example"},
    {"name": "Sanasto Oy", "org_number": "3456789-0", "email": "info@sanasto.example"},
]


def _procflow_executable() -> str:
    beside_python = Path(sys.executable).parent / "procflow"
    found = str(beside_python) if beside_python.exists() else shutil.which("procflow")
    assert found, "the procflow console script is not installed (pip install -e .)"
    return found


@pytest.fixture
def procflow(db_url: str, tmp_path: Path) -> Procflow:
    """Run ``procflow ARGS...`` in a new process on this test's database; return its JSON output."""
    executable = _procflow_executable()
    # Only the settings this test chooses: a PROCFLOW_SMTP_HOST from the caller's shell must not send mail.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROCFLOW_")}
    env |= {"PROCFLOW_DATABASE_URL": db_url, "PROCFLOW_INSTANCE_PATH": str(tmp_path / "instance")}

    def run(*args: str, as_json: bool = True) -> Any:
        command = [executable, *args, *(["--json"] if as_json else [])]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr}"
        return json.loads(done.stdout) if as_json else done.stdout

    return run


def _complete(
    procflow: Procflow, instance_id: int, bpmn_id: str, user: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Complete the first task *bpmn_id* of the instance that *user*'s inbox offers."""
    inbox = procflow("tasks", "--user", user)["tasks"]
    ids = [t["id"] for t in inbox if t["instance_id"] == instance_id and t["bpmn_id"] == bpmn_id]
    assert ids, f"{user} has no task {bpmn_id!r}; inbox: {[t['bpmn_id'] for t in inbox]}"
    result: dict[str, Any] = procflow("complete", str(ids[0]), "--user", user, "--data", json.dumps(data))
    assert result["instance_id"] == instance_id
    return result


def _open(result: dict[str, Any]) -> list[str]:
    return sorted(t["bpmn_id"] for t in result["tasks"])


@pytest.mark.slow
def test_direct_procurement_to_its_archived_record_one_process_per_step(procflow: Procflow) -> None:
    deployed = procflow("deploy", "processes/direct_procurement")["deployed"]
    assert [(d["process_id"], d["version"]) for d in deployed] == [("direct_procurement", 1)]
    users = procflow("demo", "load", "processes/demo.json")["users"]
    fi_users = {u["username"]: u for u in users if u["organisation"] == "esimerkkila"}
    assert "approvers_area_head" in fi_users["fi-area-head"]["groups"]
    assert {"fi-requester", "fi-colleague", "fi-buyer"} <= set(fi_users)

    started = procflow("start", "direct_procurement", "--org", "esimerkkila", "--user", "fi-requester")
    instance_id = started["instance_id"]
    assert (started["status"], _open(started)) == ("running", ["describe_need"])

    need = {
        "subject": "Translations",
        "description": "Finnish-Swedish translation of council documents for two years.",
        "cpv_code": "79530000-8",
        "category": "services",
        "value_excl_vat": 30000,
        "contract_months": 0,
        "option_months": 0,
        "utility_activity": False,
        "same_kind_spend_outside": 0,
        "requester": "fi-requester",
        "framework_agreement_exists": False,
        "participants": ["fi-requester", "fi-colleague"],
        "requester_email": "fi-requester@demo.example",
    }
    after = _complete(procflow, instance_id, "describe_need", "fi-requester", need)
    # Two personal declarations: a multi-instance task whose children complete in two more processes.
    assert _open(after) == ["declare_conflict", "declare_conflict"]
    no_conflict = {"has_conflict": False, "details": ""}
    after = _complete(procflow, instance_id, "declare_conflict", "fi-requester", no_conflict)
    assert _open(after) == ["declare_conflict"]
    after = _complete(procflow, instance_id, "declare_conflict", "fi-colleague", no_conflict)
    assert _open(after) == ["request_quotes"], "the declarations were never merged"

    # A deadline already passed would fire inside the completing process; a few seconds ahead, it is
    # the worker, yet another process, that restores the case and fires the timer.
    quote_deadline = dt.datetime.now(dt.UTC).replace(microsecond=0) + QUOTE_DEADLINE_AHEAD
    request = {
        "suppliers": SUPPLIERS,
        "request_text": "Please quote for the attached requirements.",
        "quotes_requested_on": quote_deadline.date().isoformat(),
        "quote_deadline": quote_deadline.isoformat(),
    }
    after = _complete(procflow, instance_id, "request_quotes", "fi-buyer", request)
    fired_by_worker = dt.datetime.now(dt.UTC) < quote_deadline
    if fired_by_worker:
        assert (after["status"], _open(after)) == ("waiting", [])
    give_up = time.monotonic() + TIMER_WAIT_SECONDS
    while not _open(procflow("tasks", "--instance", str(instance_id))):
        assert time.monotonic() < give_up, f"the quote deadline did not fire within {TIMER_WAIT_SECONDS} s"
        procflow("worker", "--once", as_json=False)
        time.sleep(0.2)

    quotes = [
        {
            "supplier": s["name"],
            "org_number": s["org_number"],
            "price": price,
            "compliant": True,
            "score": score,
        }
        for s, price, score in [(SUPPLIERS[0], 29000, 60), (SUPPLIERS[1], 27000, 85)]
    ]
    _complete(procflow, instance_id, "register_quotes", "fi-buyer", {"quotes": quotes})
    selection = {"winner_org_number": SUPPLIERS[1]["org_number"], "justification": "Best score."}
    _complete(procflow, instance_id, "select_supplier", "fi-buyer", selection)
    after = _complete(
        procflow,
        instance_id,
        "approve",
        "fi-area-head",
        {"approved": True, "approval_comment": "", "approver_has_conflict": False},
    )
    assert _open(after) == ["place_order"], "no quality review for services in Finland"
    order = {
        "order_number": "PO-2025-0099",
        "order_date": dt.date.today().isoformat(),
        "delivery_or_contract_period": "Two years from signing",
    }
    _complete(procflow, instance_id, "place_order", "fi-buyer", order)
    archived = {"documentation_complete": True, "archive_reference": "D 2025/12"}
    after = _complete(procflow, instance_id, "archive_documentation", "fi-buyer", archived)
    assert (after["status"], after["tasks"]) == ("completed", [])

    shown = procflow("show", str(instance_id))
    assert shown["status"] == "completed" and shown["error"] is None
    record = shown["data"]["documentation_record"]
    assert (record["winner_name"], record["winner_org_number"]) == ("Kielipalvelu Oy", "2345678-9")
    assert (record["outcome"], record["currency"], record["suppliers_asked_count"]) == ("ordered", "EUR", 3)
    assert record["tenders_received"] == 2 and record["buyer_name"] == "Esimerkkilän kaupunki"
    assert shown["data"]["archive_reference"] == "D 2025/12"

    events = shown["events"]
    completions = [(e["element"], e["actor"]) for e in events if e["kind"] == "task_completed"]
    assert completions == [
        ("describe_need", "fi-requester"),
        ("declare_conflict", "fi-requester"),
        ("declare_conflict", "fi-colleague"),
        ("request_quotes", "fi-buyer"),
        ("register_quotes", "fi-buyer"),
        ("select_supplier", "fi-buyer"),
        ("approve", "fi-area-head"),
        ("place_order", "fi-buyer"),
        ("archive_documentation", "fi-buyer"),
    ]
    completed_by = {e["element"]: e["detail"]["data"] for e in events if e["kind"] == "task_completed"}
    assert completed_by["approve"]["approved"] is True
    assert completed_by["archive_documentation"]["archive_reference"] == "D 2025/12"
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    if fired_by_worker:
        assert [e["element"] for e in events if e["kind"] == "timer_fired"] == ["quote_deadline_passed"]
