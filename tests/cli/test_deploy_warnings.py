"""``procflow deploy`` prints what deploys but should be looked at."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES
from web.cli import main

MODEL = FIXTURES / "spiff_arena" / "vendor-check"


@pytest.fixture
def runner(db_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PROCFLOW_DATABASE_URL", db_url)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    return runner


def test_deploy_prints_the_schema_warnings_once(runner: CliRunner) -> None:
    result = runner.invoke(main, ["deploy", str(MODEL)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Process_vendor_check_7d1x3qk v1 for all organisations"
    (warning,) = lines[1:]
    assert warning.startswith("warning: vendor_check.bpmn20.xml, line 6, element 'Flow_registry_lookup': ")
    assert "[object Object]" in warning


def test_deploy_json_lists_the_warnings(runner: CliRunner) -> None:
    result = runner.invoke(main, ["deploy", str(MODEL), "--json"], catch_exceptions=False)
    payload = json.loads(result.stdout)
    assert [w["element"] for w in payload["warnings"]] == ["Flow_registry_lookup"]
    assert payload["warnings"][0]["severity"] == "warning"
