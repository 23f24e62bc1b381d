"""The ``procflow`` command line contract, end to end on a real database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import FIXTURES
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
        "deployed": [{"process_id": "approval", "version": 1, "organisation": None, "changed": True}]
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
