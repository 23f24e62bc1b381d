"""procflow instance migrate: dry run and move, with the JSON the admin scripts read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import FIXTURES
from web.cli import main


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


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


def _version_2(tmp_path: Path, *, required_field: bool) -> Path:
    folder = tmp_path / "v2" / "approval"
    shutil.copytree(FIXTURES / "approval", folder)
    bpmn = folder / "approval.bpmn"
    bpmn.write_text(bpmn.read_text().replace('name="Approve the purchase"', 'name="Approve (v2)"'))
    if required_field:
        schema = json.loads((folder / "approve.schema.json").read_text())
        schema["required"].append("cost_centre")
        schema["properties"]["cost_centre"] = {"type": "string"}
        (folder / "approve.schema.json").write_text(json.dumps(schema))
    return folder


def _start(cli: Any, *, to_approve: bool) -> int:
    started = _json(cli("start", "approval", "--org", "north", "--user", "anna", "--json"))
    if to_approve:
        (task,) = started["tasks"]
        data = json.dumps({"subject": "Chairs", "amount": 10, "requester_email": "a@example.org"})
        cli("complete", str(task["id"]), "--user", "anna", "--data", data)
    return int(started["instance_id"])


@pytest.fixture
def two_cases(cli: Any, tmp_path: Path) -> tuple[int, int]:
    cli("db", "upgrade")
    cli("org", "add", "north", "--name", "North")
    cli("user", "add", "anna", "--org", "north", "--role", "requester", "--group", "requesters")
    cli("deploy", str(FIXTURES / "approval"), "--org", "north")
    at_request, at_approve = _start(cli, to_approve=False), _start(cli, to_approve=True)
    cli("deploy", str(_version_2(tmp_path, required_field=True)), "--org", "north")
    return at_request, at_approve


def test_dry_run_then_move_prints_the_migrated_and_the_refused(cli: Any, two_cases: tuple[int, int]) -> None:
    at_request, at_approve = two_cases
    reason = (
        "the field cost_centre of its open task approve is required in version 2, "
        "has no default there and the case has no value for it"
    )
    expected = {"migrated": [at_request], "refused": [{"id": at_approve, "reason": reason}]}
    args = ("instance", "migrate", "approval", "--to-version", "2", "--org", "north")
    assert _json(cli(*args, "--from-version", "1", "--dry-run", "--json")) == expected
    assert _json(cli("show", str(at_request), "--json"))["version"] == 1, "a dry run changes nothing"

    assert _json(cli(*args, "--json")) == expected
    assert _json(cli("show", str(at_request), "--json"))["version"] == 2
    assert _json(cli("show", str(at_approve), "--json"))["version"] == 1
    assert _json(cli(*args, "--json")) == {"migrated": [], "refused": [{"id": at_approve, "reason": reason}]}

    text = cli(*args, "--dry-run").stdout
    assert "would move to version 2: none" in text and f"refused {at_approve}: {reason}" in text


def test_unknown_versions_and_organisations_are_one_line_errors(cli: Any, two_cases: tuple[int, int]) -> None:
    result = cli("instance", "migrate", "approval", "--to-version", "9", "--org", "north", ok=False)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "error: --to-version: 'approval' has no version 9 among the organisation's own versions"
    )
    result = cli("instance", "migrate", "approval", "--to-version", "2", "--org", "nowhere", ok=False)
    assert result.exit_code == 1 and "nowhere" in result.stderr
    result = cli(
        "instance",
        "migrate",
        "approval",
        "--to-version",
        "2",
        "--from-version",
        "2",
        "--org",
        "north",
        ok=False,
    )
    assert "to_version: the instances are on that version already" in result.stderr
    result = cli("instance", "migrate", "approval", "--to-version", "1", ok=False)
    assert "among shared versions" in result.stderr
