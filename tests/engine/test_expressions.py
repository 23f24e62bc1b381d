"""engine.expressions: what the sandbox would refuse, found by compiling without running anything."""

from __future__ import annotations

import pytest

from engine import DataError, DeploymentError
from engine._sandbox import _compile
from engine._specs import BundleFile, parse_bundle
from engine.expressions import MAX_CODE_CHARS, MAX_CODES, MAX_TOTAL_CHARS, CodeCheck, check_code, check_codes


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("expression", "amount > 1000 and procedure == 'direct'"),
        ("expression", "{'goal_id': goal_link[1], 'completed_on': date.today().isoformat()}"),
        ("script", "total = sum(q['price'] for q in quotes)\ndel quotes"),
        ("expression", "type == 'goods'"),  # task data may be called like a builtin the sandbox forbids
        ("script", "def open(x):\n    return x\ny = open(1)"),  # a function of its own may too
    ],
)
def test_code_the_sandbox_accepts_has_no_error(kind: str, text: str) -> None:
    assert check_code(text, kind) == CodeCheck(kind, text)


@pytest.mark.parametrize(
    ("kind", "text", "error", "line"),
    [
        ("expression", "__import__('os')", "access to '__import__' is not allowed", 1),
        ("script", "x = 1\nimport os", "import is not allowed", 2),
        ("script", "x = 1\ny = x.__class__", "access to '__class__' is not allowed", 2),
        ("script", "total = 1\nclass A: pass", "class definitions are not allowed", 2),
        ("expression", "amount >", "SyntaxError: invalid syntax", 1),
        ("expression", "x = 1", "SyntaxError: invalid syntax", 1),  # a statement is no expression
        ("script", "a = 1\nb = open('/etc/passwd')", "open() is not allowed", 2),
        ("expression", "eval('1')", "Eval calls are not allowed.", 1),  # RestrictedPython's own words
        ("expression", "type(amount) == int", "type() is not allowed", 1),
        ("expression", "   ", "the expression is empty", None),
        ("expression", "-" * 10_000 + "1", "the code is nested too deeply to compile", None),
    ],
)
def test_refused_code_gets_the_sandboxs_message_and_line(
    kind: str, text: str, error: str, line: int | None
) -> None:
    assert check_code(text, kind) == CodeCheck(kind, text, error, line)


def test_checking_runs_nothing_and_leaves_the_compile_cache_alone() -> None:
    before = _compile.cache_info()
    check_code("x = [1] * 10 ** 12", "script")  # would exhaust memory if it ran
    assert _compile.cache_info().currsize == before.currsize


def test_unknown_kinds_and_oversized_texts_are_refused_with_what_was_wrong() -> None:
    with pytest.raises(DataError, match="Unknown kind 'python'"):
        check_code("1", "python")
    with pytest.raises(DataError, match=f"at most {MAX_CODE_CHARS:,}"):
        check_code("1" * (MAX_CODE_CHARS + 1), "expression")


def test_a_batch_is_bounded_in_count_and_size_and_names_the_item() -> None:
    assert [c.error for c in check_codes([("expression", "1"), ("script", "import os")])] == [
        None,
        "import is not allowed",
    ]
    with pytest.raises(DataError, match=f"More than {MAX_CODES:,}"):
        check_codes([("expression", "1")] * (MAX_CODES + 1))
    with pytest.raises(DataError, match=f"more than {MAX_TOTAL_CHARS:,} characters"):
        check_codes([("script", "x = 1\n" * 3000)] * (MAX_TOTAL_CHARS // 18_000 + 1))
    with pytest.raises(DataError, match="Expression 1: Unknown kind"):
        check_codes([("expression", "1"), ("macro", "1")])


# -- at deploy ----------------------------------------------------------------------------------------

_GATEWAY_MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="gate" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check" />
    <bpmn:scriptTask id="check"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>amount = 5
{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="small"><bpmn:incoming>f2</bpmn:incoming></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="big" sourceRef="gw" targetRef="end">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="small" sourceRef="gw" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>big</bpmn:incoming><bpmn:incoming>small</bpmn:incoming>
    </bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _gateway_bundle(condition: str = "amount &gt; 3", script: str = "pass") -> list[BundleFile]:
    return [BundleFile("gate.bpmn", "bpmn", _GATEWAY_MODEL.format(condition=condition, script=script))]


def test_a_condition_the_sandbox_refuses_is_refused_at_deploy_naming_its_flow_and_line() -> None:
    with pytest.raises(DeploymentError) as refused:
        parse_bundle(_gateway_bundle(condition="amount &gt;"))
    assert (refused.value.file, refused.value.element, refused.value.line) == ("gate.bpmn", "big", 12)
    assert "the sandbox refuses this condition" in refused.value.message


def test_a_script_the_sandbox_refuses_is_refused_at_deploy_on_the_line_of_the_error() -> None:
    with pytest.raises(DeploymentError) as refused:
        parse_bundle(_gateway_bundle(script="import os"))
    assert (refused.value.element, refused.value.line) == ("check", 8)
    assert "import is not allowed" in refused.value.message


def test_a_forbidden_call_deploys_with_a_warning_on_its_task() -> None:
    parsed = parse_bundle(_gateway_bundle(script="data = open('x')"))
    (warning,) = [w for w in parsed.warnings if w.element == "check"]
    assert warning.severity == "warning"
    assert "open() is not allowed" in warning.message


def test_a_model_whose_code_compiles_deploys_without_findings() -> None:
    assert parse_bundle(_gateway_bundle()).warnings == []
