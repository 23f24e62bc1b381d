"""``procflow param set`` and ``procflow param list``: the contract's options and JSON output."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

import engine
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

    run("db", "upgrade")
    run("org", "add", "north", "--name", "North Municipality")
    return run


def test_set_and_list(cli: Any, db_url: str) -> None:
    shared = json.loads(cli("param", "set", "limit", "100", "--from", "2020-01-01", "--json").stdout)
    assert shared == {
        "key": "limit",
        "value": 100,
        "valid_from": "2020-01-01",
        "valid_to": None,
        "organisation": None,
    }
    cli("param", "set", "limit", "50", "--from", "2024-01-01", "--to", "2024-12-31", "--org", "north")
    listed = json.loads(cli("param", "list", "--org", "north", "--on", "2024-06-01", "--json").stdout)
    by_key = {p["key"]: p for p in listed["parameters"]}
    assert by_key["limit"] == {
        "key": "limit",
        "value": 50,
        "valid_from": "2024-01-01",
        "valid_to": "2024-12-31",
        "organisation": "north",
    }
    assert by_key["organisation_name"]["value"] == "North Municipality"
    later = json.loads(cli("param", "list", "--org", "north", "--on", "2025-01-01", "--json").stdout)
    assert {p["key"]: p["organisation"] for p in later["parameters"]}["limit"] is None
    assert json.loads(cli("param", "list", "--json").stdout)["parameters"] == [shared]
    assert "limit = 100 (shared, from 2020-01-01)" in cli("param", "list").stdout
    db = engine.create_db_engine(db_url)
    with engine.create_session_factory(db)() as s:
        kinds = s.scalars(sa.select(engine.AuditEvent.kind)).all()
    db.dispose()
    assert kinds == ["admin.parameter_set", "admin.parameter_set"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("param", "set", "limit", "{oops", "--from", "2020-01-01"), "VALUE_JSON is not valid JSON"),
        (("param", "set", "limit", "1", "--from", "1.1.2020"), "--from must be a date as YYYY-MM-DD"),
        (("param", "set", "limit", "1", "--from", "2020-01-01", "--to", "2019-01-01"), "valid_to"),
        (
            ("param", "set", "limit", "1", "--from", "2020-01-01", "--org", "nowhere"),
            "No organisation 'nowhere'",
        ),
        (("param", "set", "currency", '"EUR"', "--from", "2020-01-01", "--org", "north"), "key"),
        (("param", "list", "--on", "tomorrow"), "--on must be a date"),
    ],
)
def test_bad_input_is_one_line_naming_it(cli: Any, args: tuple[str, ...], message: str) -> None:
    result = cli(*args, ok=False)
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
