"""Decision tables at deploy: a UNIQUE table with overlapping rows is refused, gaps are warnings.

The tables are read as the engine evaluates them (SpiffWorkflow's cells are
Python), which the cell-form tests pin down case by case.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import engine
from engine._specs import BundleFile, parse_bundle, read_bundle
from engine.decision_check import MAX_RULES, decision_file_problems
from tests.conftest import FIXTURES, PROCESSES

DECISION_BPMN = (FIXTURES / "decision" / "decision.bpmn").read_text()
Column = tuple[str, str, str]  # label, input expression, typeRef


def dmn(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    hit_policy: str | None = "UNIQUE",
    decision_id: str = "ProcedureChoice",
) -> str:
    """A DMN file with one table: *rows* of input cells, each row's output its row number."""
    inputs = "".join(
        f'<input id="in{i}" label="{label}"><inputExpression id="in{i}_e" typeRef="{type_ref}">'
        f"<text>{expression}</text></inputExpression></input>"
        for i, (label, expression, type_ref) in enumerate(columns)
    )
    rules = "".join(
        f'\n      <rule id="rule{r}"><description>row {r + 1}</description>'
        + "".join(f'<inputEntry id="r{r}i{i}"><text>{cell}</text></inputEntry>' for i, cell in enumerate(row))
        + f'<outputEntry id="r{r}o"><text>{r + 1}</text></outputEntry></rule>'
        for r, row in enumerate(rows)
    )
    policy = f' hitPolicy="{hit_policy}"' if hit_policy else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"'
        ' id="defs" name="d" namespace="x">\n'
        f'  <decision id="{decision_id}" name="Procedure choice">\n'
        f'    <decisionTable id="table"{policy}>{inputs}'
        '<output id="out" label="Row" name="row" typeRef="integer"/>'
        f"{rules}\n    </decisionTable>\n  </decision>\n</definitions>\n"
    )


def bundle(content: str) -> list[BundleFile]:
    return [
        BundleFile("decision.bpmn", "bpmn", DECISION_BPMN),
        BundleFile("ProcedureChoice.dmn", "dmn", content),
    ]


def findings(content: str) -> list[engine.Problem]:
    return decision_file_problems(BundleFile("t.dmn", "dmn", content))


def messages(content: str, severity: str = "warning") -> list[str]:
    return [p.message for p in findings(content) if p.severity == severity]


VALUE: Column = ("Value", "value", "number")
KIND: Column = ("Kind", "kind", "string")


def test_overlapping_rows_of_a_unique_table_are_refused_with_both_rules_and_a_witness() -> None:
    content = dmn([KIND, VALUE], [["'goods'", "&lt; 10"], ["'works'", "-"], ["-", "&gt;= 5"]])
    with pytest.raises(engine.DeploymentError) as caught:
        parse_bundle(bundle(content))
    error = caught.value
    assert error.file == "ProcedureChoice.dmn"
    assert error.element == "rule2"
    # The line of the second rule in the file.
    assert (
        error.line
        == content.splitlines().index(
            next(line for line in content.splitlines() if 'rule id="rule2"' in line)
        )
        + 1
    )
    assert "'ProcedureChoice'" in error.message
    assert "'rule0' (row 1) and 'rule2' (row 3)" in error.message
    assert "both match Kind = 'goods' and Value = 5" in error.message


def test_the_default_hit_policy_is_unique() -> None:
    with pytest.raises(engine.DeploymentError, match=r"'rule0' \(row 1\) and 'rule1' \(row 2\)"):
        parse_bundle(bundle(dmn([VALUE], [["&lt;= 5"], ["&gt;= 5"]], hit_policy=None)))


def test_first_and_collect_tables_may_overlap() -> None:
    for policy in ("FIRST", "COLLECT", "RULE ORDER"):
        parsed = parse_bundle(bundle(dmn([VALUE], [["&lt;= 5"], ["&gt;= 5"]], hit_policy=policy)))
        assert parsed.warnings == []


def test_gaps_are_warnings_at_deploy() -> None:
    content = dmn(
        [KIND, VALUE], [["'goods'", "&lt; 100000"], ["'goods'", "&gt;= 100000"], ["'works'", "&gt;= 0"]]
    )
    parsed = parse_bundle(bundle(content))
    gaps = [(p.severity, p.file, p.element, p.message) for p in parsed.warnings]
    assert gaps == [
        ("warning", "ProcedureChoice.dmn", "ProcedureChoice",
         "decision 'ProcedureChoice': no rule matches when Kind = 'works' and Value < 0"),
        ("warning", "ProcedureChoice.dmn", "ProcedureChoice",
         "decision 'ProcedureChoice': no rule matches when Kind is none of 'goods', 'works'"),
    ]  # fmt: skip


def test_cells_depending_on_parameters_are_not_analysed_and_never_refused() -> None:
    content = dmn([VALUE], [["&lt; parameters['limit']"], ["&gt;= 5"]])
    parsed = parse_bundle(bundle(content))  # no DeploymentError: whether they overlap depends on the limit
    (warning,) = [p for p in parsed.warnings if "may both match" in p.message]
    assert warning.severity == "warning"
    assert warning.element == "rule1"
    assert "'rule0' (row 1) and 'rule1' (row 2) may both match Value = 5" in warning.message
    assert "not analysed: row 1 \"< parameters['limit']\"" in warning.message
    assert "organisation parameter known only when the table runs" in warning.message
    (possible_gap,) = [p for p in parsed.warnings if "may match" in p.message]
    assert (
        "no rule may match when Value < 5, unless a cell not analysed matches: row 1" in possible_gap.message
    )


def test_a_catch_all_row_makes_cells_not_analysed_irrelevant_to_gaps() -> None:
    assert findings(dmn([VALUE], [["&lt; parameters['limit']"], ["-"]], hit_policy="FIRST")) == []


@pytest.mark.parametrize(
    ("column", "rows", "overlap"),
    [
        (VALUE, ["&lt; 5", "&gt;= 5"], None),
        (VALUE, ["&lt;= 5", "&gt;= 5"], "Value = 5"),
        (VALUE, ["1 &lt;= ? &lt;= 5", "? &gt; 5"], None),
        (VALUE, ["1 &lt; ? &lt; 5", "? &gt;= 4.5"], "Value = 4.5"),
        (VALUE, ["3", "? in (1, 2, 3)"], "Value = 3"),
        (VALUE, ["!= 3", "3"], None),
        (VALUE, ["-", "-7"], "Value = -7"),
        (VALUE, ["? &lt; 0 or ? &gt; 10", "5"], None),
        (VALUE, ["not (? &lt; 0)", "-1"], None),
        (("Stage", "stage", "integer"), ["&lt; 2", "&gt; 1"], None),  # no whole number between 1 and 2
        (("Stage", "stage", "integer"), ["&lt; 2.5", "&gt; 1.5"], "Stage = 2"),
        (KIND, ["'a'", '"a"'], "Kind = 'a'"),
        (KIND, ["'a'", "'b'"], None),
        (KIND, ["!= 'a'", "'b'"], "Kind = 'b'"),
        (KIND, ["!= 'a'", "!= 'b'"], "Kind = a value other than 'a', 'b'"),
        (KIND, ["? not in ('a', 'b')", "'a'"], None),
        (KIND, ["? in ('a', 'b')", "'b'"], "Kind = 'b'"),
        (("Report", "report['rag']", "string"), ["in ('red', 'amber')", "'red'"], "Report = 'red'"),
        (("Joined", "has_joined", "boolean"), ["True", "False"], None),
        (("Joined", "has_joined", "boolean"), ["True", "!= False"], "Joined = True"),
    ],
)
def test_cell_forms(column: Column, rows: list[str], overlap: str | None) -> None:
    problems = findings(dmn([column], [[cell] for cell in rows]))
    errors = [p.message for p in problems if p.severity == "error"]
    if overlap is None:
        assert errors == []
    else:
        (error,) = errors
        assert f"both match {overlap}." in error


def test_a_tuple_cell_never_matches_and_is_explained() -> None:
    # SpiffWorkflow compares the input with the whole tuple: the rows cannot overlap, and nothing matches 'a'.
    content = dmn([KIND], [["'a', 'b'"], ["'b'"]])
    (misread,) = [m for m in messages(content) if "whole list" in m]
    assert "rule 'rule0' (row 1), input 'Kind'" in misread
    assert "write ? in ('a', 'b')" in misread
    assert "decision 'ProcedureChoice': no rule matches when Kind is none of 'b'" in messages(content)


def test_in_after_a_plain_name_is_explained() -> None:
    (misread,) = messages(dmn([KIND], [["in ('a', 'b')"]], hit_policy="FIRST"))[:1]
    assert "joins the input expression and the cell into \"kindin ('a', 'b')\"" in misread
    assert "write ? in ('a', 'b')" in misread


def test_feel_ranges_lists_and_words_are_explained() -> None:
    content = dmn([VALUE, KIND], [["[1..5]", "not('a')"], ["(5..10]", "true"]], hit_policy="FIRST")
    found = messages(content)
    assert any("cannot read [1..5] (a FEEL range" in m and "write 1 <= ? <= 5" in m for m in found)
    assert any("write 5 < ? <= 10" in m for m in found)
    assert any("reads not('a') as Python's not" in m and "with False" in m for m in found)
    assert any("'true' is not a value here" in m and "write True" in m for m in found)


def test_gaps_of_whole_numbers_and_of_text() -> None:
    stage: Column = ("Stage", "stage", "integer")
    assert messages(dmn([stage], [["1"], ["2"]])) == [
        "decision 'ProcedureChoice': no rule matches when Stage <= 0 or Stage >= 3"
    ]
    assert messages(dmn([stage], [["1"], ["3"]]))[0].endswith("Stage <= 0 or Stage = 2 or Stage >= 4")
    assert messages(dmn([("Joined", "joined", "boolean")], [["True"]])) == [
        "decision 'ProcedureChoice': no rule matches when Joined = False"
    ]


def test_a_table_without_rules_has_one_gap() -> None:
    assert messages(dmn([VALUE], [])) == ["decision 'ProcedureChoice': no rule matches when any input"]


def test_many_gaps_are_summed_up() -> None:
    found = messages(dmn([KIND, VALUE], [[f"'k{n}'", f"&lt; {n}"] for n in range(20)]))
    assert len(found) == 9
    assert found[0] == "decision 'ProcedureChoice': no rule matches when Kind = 'k0' and Value >= 0"
    assert found[-1] == "decision 'ProcedureChoice': 13 more gaps not listed"
    (many,) = messages(dmn([("Stage", "stage", "integer")], [[str(n * 2)] for n in range(20)]))
    assert many.endswith("Stage = 11 or Stage = 13 or 13 more ranges")


def test_a_malformed_file_is_one_problem_naming_its_line() -> None:
    (problem,) = findings("<definitions>\n<decision>")
    assert problem.severity == "error" and problem.file == "t.dmn" and problem.line == 2


def shipped_bundles() -> list[Path]:
    return sorted({path.parent for path in PROCESSES.glob("*/*.dmn")} | {FIXTURES / "decision"})


@pytest.mark.parametrize("folder", shipped_bundles(), ids=lambda p: p.name)
def test_every_shipped_decision_table_deploys(folder: Path) -> None:
    parse_bundle(read_bundle(folder))


def test_the_shipped_tables_report_the_gaps_they_have() -> None:
    found = sorted(
        p.message
        for folder in shipped_bundles()
        for p in parse_bundle(read_bundle(folder)).warnings
        if p.file and p.file.endswith(".dmn")
    )
    approver = "decision 'ApproverLevel': no rule matches when Jurisdiction"
    assert found == [
        f"{approver} = 'FI' and Contract value in base amounts > 40",
        f"{approver} = 'SE' and Contract value in base amounts > 50",
        f"{approver} is none of 'FI', 'SE'",
        "decision 'ImpactIndex': no rule matches when Stage <= 0 or Stage >= 3",
    ]


def test_numbers_beyond_analysis_are_a_warning_not_a_failure() -> None:
    huge = "1" + "0" * 400
    content = dmn([VALUE], [[huge], [huge + "1"]])
    (problem,) = findings(content)
    assert problem.severity == "warning"
    assert (
        problem.message
        == "decision 'ProcedureChoice' was not analysed (OverflowError): overlaps and gaps are unknown"
    )


def test_a_long_cell_is_not_analysed_and_reading_it_stays_linear() -> None:
    # SpiffWorkflow's '?' pattern is quadratic: 60 000 of them took minutes when read with it.
    content = dmn([VALUE], [["?" * 60_000], ["&gt; 5"]])
    found = messages(content)
    assert found, "the long cell is not mentioned"
    assert all("longer than 2000 characters" in m for m in found)
    assert all(len(m) < 600 for m in found), "a message quotes the whole cell"


def test_a_table_of_more_rules_than_analysed_is_a_warning_not_a_slow_deploy() -> None:
    rows = [[f"{n}"] for n in range(MAX_RULES + 1)]
    (problem,) = findings(dmn([VALUE], rows))
    assert problem.severity == "warning"
    assert f"{MAX_RULES + 1} rules, more than the {MAX_RULES} analysed" in problem.message
    parse_bundle(bundle(dmn([VALUE], rows)))  # deploys
