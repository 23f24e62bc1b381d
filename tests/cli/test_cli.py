"""The ``procflow`` command line contract, end to end on a real database."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import FIXTURES, PROCESSES
from web.cli import main


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PROCFLOW_DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, ok: bool = True) -> Result:
        result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.stderr or result.output
        return result

    return run


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


@pytest.fixture
def setup_org(cli: Any) -> None:
    cli("db", "upgrade")
    cli("org", "add", "north", "--name", "North Municipality")
    cli("user", "add", "anna", "--org", "north", "--role", "requester", "--group", "requesters")
    cli(
        "user", "add", "bo", "--org", "north", "--role", "case_handler", "--group", "approvers",
        "--password-stdin", input="s3cret-pass\n",
    )  # fmt: skip


def test_full_cycle_through_the_cli(cli: Any, setup_org: None) -> None:
    deployed = _json(cli("deploy", str(FIXTURES / "approval"), "--json"))
    assert deployed == {
        "deployed": [{"process_id": "approval", "version": 1, "organisation": None, "changed": True}],
        "warnings": [],
    }
    started = _json(cli("start", "approval", "--org", "north", "--user", "anna", "--json"))
    assert started["status"] == "running"
    (task,) = started["tasks"]
    assert {k: task[k] for k in ("bpmn_id", "name", "lane", "form")} == {
        "bpmn_id": "request",
        "name": "Describe the purchase",
        "lane": "requesters",
        "form": "request.schema.json",
    }
    listed = _json(cli("tasks", "--user", "anna", "--json"))["tasks"]
    assert [t["id"] for t in listed] == [task["id"]] and listed[0]["instance_id"] == started["instance_id"]

    data = json.dumps({"subject": "Desks", "amount": 100, "requester_email": "anna@example.org"})
    cli("complete", str(task["id"]), "--user", "anna", "--data", data, "--json")
    (approve,) = _json(cli("tasks", "--instance", str(started["instance_id"]), "--json"))["tasks"]
    cli("complete", str(approve["id"]), "--user", "bo", "--data", '{"approved": true}')

    shown = _json(cli("show", str(started["instance_id"]), "--json"))
    assert shown["id"] == started["instance_id"] and shown["status"] == "completed"
    assert shown["data"]["subject"] == "Desks"
    assert shown["events"][0]["kind"] == "started"
    assert {t["bpmn_id"] for t in shown["tasks"]} == {"request", "approve"}

    worker = cli("worker", "--once")
    assert "ran 1 job(s)" in worker.stdout


def test_redeploy_reports_unchanged(cli: Any, setup_org: None) -> None:
    cli("deploy", str(FIXTURES / "approval"), "--org", "north")
    again = _json(cli("deploy", str(FIXTURES / "approval"), "--org", "north", "--json"))
    assert again["deployed"][0] == {
        "process_id": "approval",
        "version": 1,
        "organisation": "north",
        "changed": False,
    }


def test_send_message_starts_and_correlates(cli: Any, setup_org: None) -> None:
    cli("deploy", str(FIXTURES / "messages"))
    started = _json(cli("send-message", "contact_received", "--org", "north", "--data", '{"a": 1}', "--json"))
    assert len(started["instances"]) == 1
    order = _json(
        cli("start", "order", "--org", "north", "--user", "anna", "--data", '{"order_id": "X"}', "--json")
    )
    reached = _json(
        cli("send-message", "customer_reply", "--org", "north", "--data", '{"order_id": "X"}', "--json")
    )
    assert reached["instances"] == [{"instance_id": order["instance_id"], "status": "running"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("start", "nope", "--org", "north", "--user", "anna"), "No process 'nope'"),
        (("start", "approval", "--org", "south", "--user", "anna"), "No organisation 'south'"),
        (("complete", "999", "--user", "anna"), "No task 999"),
        (("show", "999", "--json"), "No instance 999"),
        (
            ("start", "approval", "--org", "north", "--user", "anna", "--data", "{bad"),
            "--data is not valid JSON",
        ),
        (("send-message", "nobody", "--org", "north"), "No instance waits for message 'nobody'"),
    ],
)
def test_errors_exit_nonzero_with_one_line(
    cli: Any, setup_org: None, args: tuple[str, ...], message: str
) -> None:
    cli("deploy", str(FIXTURES / "approval"))
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_invalid_bundle_names_file_and_line(cli: Any, setup_org: None, tmp_path: Any) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bad.bpmn").write_text('<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="x">\n<oops>\n')
    result = cli("deploy", str(bad), "--json", ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert "bad.bpmn, line" in result.stderr


def test_form_errors_name_the_fields(cli: Any, setup_org: None) -> None:
    cli("deploy", str(FIXTURES / "approval"))
    started = _json(cli("start", "approval", "--org", "north", "--user", "anna", "--json"))
    result = cli(
        "complete", str(started["tasks"][0]["id"]), "--user", "anna", "--data", '{"amount": "x"}', ok=False
    )
    assert "subject" in result.stderr and "amount" in result.stderr and "requester_email" in result.stderr


@pytest.fixture
def failed_instance(cli: Any, setup_org: None) -> int:
    """A ``repair`` instance in error: its script divides by ``parts``, which is 0."""
    cli("user", "add", "ada", "--org", "north", "--role", "admin")
    cli("deploy", str(FIXTURES / "repair"))
    started = _json(
        cli("start", "repair", "--org", "north", "--user", "anna", "--data", '{"parts": 0}', "--json")
    )
    (enter,) = started["tasks"]
    failed = _json(cli("complete", str(enter["id"]), "--user", "bo", "--data", '{"total": 100}', "--json"))
    assert failed["status"] == "error" and failed["tasks"] == []
    instance_id: int = started["instance_id"]
    return instance_id


def test_instances_lists_newest_first_with_filters(cli: Any, failed_instance: int) -> None:
    cli("deploy", str(FIXTURES / "approval"))
    newer = _json(cli("start", "approval", "--org", "north", "--user", "anna", "--json"))["instance_id"]
    listed = _json(cli("instances", "--json"))["instances"]
    assert [i["id"] for i in listed] == [newer, failed_instance]
    assert {k: v for k, v in listed[1].items() if k != "started_at"} == {
        "id": failed_instance,
        "process_id": "repair",
        "version": 1,
        "status": "error",
        "title": "Share a total",
        "business_key": None,
    }
    assert listed[1]["started_at"].startswith("20")
    errors = _json(cli("instances", "--org", "north", "--status", "error", "--json"))["instances"]
    assert [i["id"] for i in errors] == [failed_instance]
    assert _json(cli("instances", "--process", "approval", "--json"))["instances"][0]["id"] == newer
    assert "repair v1\terror" in cli("instances").stdout


def test_set_data_then_retry_repairs_the_instance(cli: Any, failed_instance: int) -> None:
    again = _json(cli("instance", "retry", str(failed_instance), "--user", "ada", "--json"))
    assert again == {"instance_id": failed_instance, "status": "error", "tasks": []}
    changed = _json(
        cli("instance", "set-data", str(failed_instance), "--user", "ada", "--data", '{"parts": 4}', "--json")
    )
    assert changed == {"instance_id": failed_instance, "status": "error", "tasks": []}
    shown = _json(cli("show", str(failed_instance), "--json"))
    assert shown["data"]["parts"] == 4
    (event,) = [e for e in shown["events"] if e["kind"] == "data_changed"]
    assert event["actor"] == "ada" and event["detail"] == {"before": {"parts": 0}, "after": {"parts": 4}}

    retried = _json(cli("instance", "retry", str(failed_instance), "--json"))
    assert retried["status"] == "running" and [t["bpmn_id"] for t in retried["tasks"]] == ["inner"]
    assert _json(cli("show", str(failed_instance), "--json"))["data"]["share"] == 25


def test_reset_moves_the_instance_back(cli: Any, failed_instance: int) -> None:
    moved = _json(cli("instance", "reset", str(failed_instance), "--to", "enter", "--user", "ada", "--json"))
    assert moved["instance_id"] == failed_instance and moved["status"] == "running"
    assert [(t["bpmn_id"], t["state"]) for t in moved["tasks"]] == [("enter", "ready")]
    text = cli("instance", "reset", str(failed_instance), "--to", "start", "--user", "ada").stdout
    assert text.startswith(f"instance {failed_instance} running; open tasks: [")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set-data", "--user", "ada", "--data", "{bad"), "--data is not valid JSON"),
        (("set-data", "--user", "ada", "--data", '{"parameters": 1}'), "parameters"),
        (("set-data", "--user", "ada", "--data", '{"parts": 4}', "--user", "anna"), "not an admin"),
        (("reset", "--to", "nowhere", "--user", "ada"), "Process 'repair' has no element 'nowhere'"),
        (("reset", "--to", "inner", "--user", "ada"), "'inner' (Review the share) has not run"),
        (("retry", "--user", "bo"), "not an admin"),
    ],
)
def test_repair_errors_exit_nonzero_with_one_line(
    cli: Any, failed_instance: int, args: tuple[str, ...], message: str
) -> None:
    command, *options = args
    result = cli("instance", command, str(failed_instance), *options, ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert _json(cli("show", str(failed_instance), "--json"))["data"]["parts"] == 0


@pytest.fixture
def approving(cli: Any, setup_org: None) -> dict[str, Any]:
    """An approval_context case at its approval step, as the CLI shows it."""
    cli("deploy", str(FIXTURES / "approval_context"))
    started = _json(cli("start", "approval_context", "--org", "north", "--user", "anna", "--json"))
    purchase = {"subject": "Laptops", "amount": 5000}
    cli("complete", str(started["tasks"][0]["id"]), "--user", "anna", "--data", json.dumps(purchase))
    (approve,) = _json(cli("tasks", "--instance", str(started["instance_id"]), "--json"))["tasks"]
    return {"instance_id": started["instance_id"], "task_id": approve["id"]}


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            json.dumps(
                {
                    "subject": "Laptops",
                    "amount": 5000,
                    "approved": True,
                    "parameters": {"direct_limit": 10**12},
                }
            ),
            "'parameters' is a reserved name",
        ),
        (
            '{"approved": true, "comment": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested more than 64 levels",
        ),
    ],
)
def test_complete_refuses_data_that_would_not_stay_data(
    cli: Any, approving: dict[str, Any], data: str, message: str
) -> None:
    line = _one_error_line(
        cli("complete", str(approving["task_id"]), "--user", "bo", "--data", data, ok=False)
    )
    assert message in line
    shown = _json(cli("show", str(approving["instance_id"]), "--json"))
    assert "parameters" not in shown["data"] and "approved" not in shown["data"]
    assert [(t["bpmn_id"], t["state"]) for t in shown["tasks"] if t["bpmn_id"] == "approve"] == [
        ("approve", "ready")
    ]
    assert [e["kind"] for e in shown["events"]].count("task_completed") == 1


def test_complete_keeps_read_only_fields(cli: Any, approving: dict[str, Any]) -> None:
    forged = json.dumps({"subject": "Gold bars", "amount": 10**12, "approved": True})
    cli("complete", str(approving["task_id"]), "--user", "bo", "--data", forged)
    data = _json(cli("show", str(approving["instance_id"]), "--json"))["data"]
    assert (data["subject"], data["amount"], data["approved"]) == ("Laptops", 5000, True)


def test_send_message_refuses_a_reserved_payload_key(cli: Any, setup_org: None) -> None:
    cli("deploy", str(FIXTURES / "messages"))
    result = cli("send-message", "contact_received", "--org", "north", "--data", '{"math": 1}', ok=False)
    assert "'math' is a reserved name" in _one_error_line(result)
    assert "No instance 1" in _one_error_line(cli("show", "1", "--json", ok=False))  # nothing started


def test_send_message_names_the_correlation_property_its_payload_lacks(cli: Any, setup_org: None) -> None:
    # The shipped contact process starts on contact_received and correlates replies by contact_ref.
    cli("deploy", str(PROCESSES / "customer_contact"))
    payload = '{"name": "Anna", "message": "Can we join the DPS?"}'
    sent = cli("send-message", "contact_received", "--org", "north", "--data", payload, ok=False)
    line = _one_error_line(sent)
    assert line == (
        "error: Message 'contact_received' was not delivered to process 'customer_contact': its correlation "
        "property 'contact_ref' is read from the payload by 'contact_ref', which failed (line 1: NameError: "
        "name 'contact_ref' is not defined). The payload's keys: 'message', 'name'."
    )
    assert "No instance 1" in _one_error_line(cli("show", "1", "--json", ok=False))  # nothing started


def test_deploy_refuses_a_deeply_nested_form_in_one_line(cli: Any, setup_org: None, tmp_path: Any) -> None:
    bundle = tmp_path / "approval"
    shutil.copytree(FIXTURES / "approval", bundle)
    (bundle / "approve.schema.json").write_text(
        '{"type": "object",\n "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )
    line = _one_error_line(cli("deploy", str(bundle), ok=False))
    assert "approve.schema.json, line 2: JSON is nested more than 64 levels deep" in line


def test_an_unforeseen_failure_is_one_line_too(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A database file without the schema: the engine's query fails below it, in SQLAlchemy.
    monkeypatch.setenv("PROCFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    result = CliRunner().invoke(main, ["show", "1"], catch_exceptions=False)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: unexpected OperationalError: ") and "no such table" in line
    assert "Traceback" not in result.output
