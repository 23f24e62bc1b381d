"""Trying a decision table: the real engine in its sandbox, on inputs read by their declared types."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
import sqlalchemy.orm as so

import engine
from engine._specs import BundleFile, parse_bundle, read_bundle
from engine.decision_try import DecisionTrial, MatchedRule, data_names, find_decision, try_decision
from tests.conftest import PROCESSES
from tests.engine.test_decision_check import KIND, VALUE, bundle, dmn

Factory = so.sessionmaker[so.Session]
DIRECT = read_bundle(PROCESSES / "direct_procurement")


def north(session: so.Session) -> int:
    return engine.get_organisation(session, "north").id


def trial(
    session_factory: Factory,
    files: list[BundleFile],
    decision_id: str,
    inputs: dict[str, object],
    **kwargs: object,
) -> DecisionTrial:
    with session_factory() as s:
        return try_decision(files, decision_id, inputs, session=s, organisation_id=north(s), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("jurisdiction", "value", "rows", "level"),
    [
        ("SE", "2,5", [1, 2, 3, 4], "unit_head"),
        ("SE", "4", [2, 3, 4], "area_head"),
        ("FI", "40", [8], "director"),
        ("FI", "41", [], None),
    ],
)
def test_approver_level_matches_its_rows(
    session_factory: Factory, orgs: None, jurisdiction: str, value: str, rows: list[int], level: str | None
) -> None:
    result = trial(
        session_factory,
        DIRECT,
        "ApproverLevel",
        {"ApproverLevel_in0": jurisdiction, "ApproverLevel_in1": value},
    )
    assert result.error is None and result.input_errors == {}
    assert [rule.row for rule in result.matched_rules] == rows
    if level is None:
        assert result.outputs == {} and result.used_rules == []
    else:
        assert result.outputs["approver_level"] == level
        assert result.used_rules == [result.matched_rules[0].id]  # FIRST: the first match's outputs
    if rows:
        first = result.matched_rules[0]
        assert first == MatchedRule(f"ApproverLevel_r{rows[0] - 1}", rows[0], first.annotation)
        assert first.annotation.startswith("Sweden" if jurisdiction == "SE" else "Finland")


def test_the_organisations_parameters_are_read(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        for key, value in (("three_quotes_threshold", 10_000), ("documentation_threshold", 100_000)):
            engine.set_parameter(s, key, value, organisation_id=north(s), valid_from=dt.date(2020, 1, 1))
    result = trial(session_factory, DIRECT, "QuotesRequired", {"QuotesRequired_in0": "50 000"})
    assert [rule.row for rule in result.matched_rules] == [2, 3]
    assert result.outputs == {"quotes_required": 3, "documentation_required": False}


def test_a_missing_parameter_is_the_engines_error(session_factory: Factory, orgs: None) -> None:
    result = trial(session_factory, DIRECT, "QuotesRequired", {"QuotesRequired_in0": "5"})
    assert result.error is not None
    assert "no parameter 'three_quotes_threshold' is set for this organisation" in result.error


def test_other_data_the_table_reads(session_factory: Factory, orgs: None) -> None:
    _file, table = find_decision(DIRECT, "ProcedureSelection")
    assert data_names(table) == ["currency", "direct_procurement_limit"]
    result = trial(
        session_factory,
        DIRECT,
        "ProcedureSelection",
        {"ProcedureSelection_in0": "false", "ProcedureSelection_in1": "70000"},
        data={"direct_procurement_limit": "60000", "currency": "SEK"},
    )
    assert [rule.row for rule in result.matched_rules] == [2, 3]
    assert result.outputs["procedure"] == "advertised"
    assert "The value 70000 SEK" in result.outputs["procedure_reason"]


def test_the_witness_of_a_refused_overlap_matches_both_rows(session_factory: Factory, orgs: None) -> None:
    content = dmn([KIND, VALUE], [["'goods'", "&lt; 10"], ["'works'", "-"], ["-", "&gt;= 5"]])
    with pytest.raises(engine.DeploymentError, match="both match Kind = 'goods' and Value = 5"):
        parse_bundle(bundle(content))
    result = trial(session_factory, bundle(content), "ProcedureChoice", {"in0": "goods", "in1": "5"})
    assert [rule.id for rule in result.matched_rules] == ["rule0", "rule2"]
    assert result.outputs == {"row": 1}  # SpiffWorkflow takes the first of a UNIQUE table's matches


def test_a_cell_that_runs_forever_is_stopped_by_the_sandbox(session_factory: Factory, orgs: None) -> None:
    content = dmn([VALUE], [["sum(range(10**15)) &gt; 0"], ["-"]], hit_policy="FIRST")
    started = time.monotonic()
    result = trial(session_factory, bundle(content), "ProcedureChoice", {"in0": "1"})
    assert time.monotonic() - started < 10
    assert result.error is not None
    assert result.error.startswith("the evaluation was stopped: script exceeded the time limit of 2s")
    assert "row 1" in result.error
    assert result.matched_rules == [] and result.outputs == {}


def test_a_cell_the_engine_cannot_read_is_the_engines_error(session_factory: Factory, orgs: None) -> None:
    content = dmn([VALUE], [["[1..5]"]], hit_policy="FIRST")
    result = trial(session_factory, bundle(content), "ProcedureChoice", {"in0": "3"})
    assert result.error is not None and "invalid syntax" in result.error and "row 1" in result.error


@pytest.mark.parametrize(
    ("type_ref", "raw", "value"),
    [
        ("number", "1 234,5", Decimal("1234.5")),
        ("integer", "12", 12),
        ("boolean", "ja", True),
        ("boolean", "False", False),
        ("date", "2026-03-01", dt.date(2026, 3, 1)),
        ("string", " SE ", " SE "),
        ("", "7", 7),
        ("", "abc", "abc"),
    ],
)
def test_inputs_are_read_by_their_declared_type(
    session_factory: Factory, orgs: None, type_ref: str, raw: str, value: object
) -> None:
    content = dmn([("Input", "x", type_ref)], [[repr(value) if not isinstance(value, dt.date) else "-"]])
    content = content.replace("<text>1</text></outputEntry>", "<text>x</text></outputEntry>")
    result = trial(session_factory, bundle(content), "ProcedureChoice", {"in0": raw})
    assert result.error is None and result.input_errors == {}
    assert result.outputs == {"row": value}
    assert [rule.row for rule in result.matched_rules] == [1]


@pytest.mark.parametrize(
    ("type_ref", "raw", "kind", "message"),
    [
        ("number", "ten", "number", "'ten' is not a number"),
        ("integer", "2.5", "integer", "'2.5' is not a whole number"),
        ("boolean", "maybe", "boolean", "'maybe' is neither true nor false"),
        ("date", "1.3.2026", "date", "'1.3.2026' is not a date (YYYY-MM-DD)"),
        ("number", " ", "required", "no value for 'Input'; rows 1 compare it"),
    ],
)
def test_input_errors_name_the_input(
    session_factory: Factory, orgs: None, type_ref: str, raw: str, kind: str, message: str
) -> None:
    content = dmn([("Input", "x", type_ref), KIND], [["-1", "'a'"]], hit_policy="FIRST")
    result = trial(session_factory, bundle(content), "ProcedureChoice", {"in0": raw, "in1": "a"})
    assert list(result.input_errors) == ["in0"]
    assert result.input_errors["in0"].kind == kind
    assert result.input_errors["in0"].message == message
    assert result.matched_rules == [] and result.error is None


def test_an_input_no_row_compares_may_stay_empty(session_factory: Factory, orgs: None) -> None:
    content = dmn([VALUE, KIND], [["-", "'a'"]])
    result = trial(session_factory, bundle(content), "ProcedureChoice", {"in0": "", "in1": "a"})
    assert result.input_errors == {} and result.outputs == {"row": 1}


def test_an_unknown_decision_is_not_found(session_factory: Factory, orgs: None) -> None:
    with pytest.raises(engine.NotFoundError, match="No decision 'Nope'"):
        trial(session_factory, DIRECT, "Nope", {})
