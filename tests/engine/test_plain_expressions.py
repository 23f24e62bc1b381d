"""Plain expressions and scripts run in the engine's process and mean what they meant in the sandbox."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from engine import _evaluator
from engine._plain_expressions import plain_expression, plain_script
from engine._sandbox import InlineEnvironment, SandboxedEnvironment
from engine.errors import ScriptError

DATA: dict[str, Any] = {
    "route": "advice",
    "amount": 1500,
    "price": 12.5,
    "urgent": False,
    "suppliers": ["a", "b"],
    "justification": "",
    "form": {"decision": "approve", "rows": [1, 2, 3]},
    "on": dt.date(2026, 3, 1),
    "total": Decimal("10.50"),
    "nothing": None,
}

PLAIN = [
    "route == 'advice'",
    "route != 'advice'",
    "amount > 1000 and not urgent",
    "amount >= 1500 or urgent",
    "urgent or route",
    "urgent and route",
    "len(suppliers) < 3 and len(justification) == 0",
    "form['decision'] == 'approve'",
    "form['rows'][0] == 1",
    "suppliers[-1] == 'b'",
    "'a' in suppliers",
    "'x' not in suppliers",
    "0 < amount < 2000",
    "2000 < amount < 1",
    "-amount < 0",
    "amount * 2 + price / 2 - amount // 7 % 5",
    "on == on",
    "total > 10",
    "nothing == None",
    "(amount > 1 and (route == 'advice' or urgent))",
    "True",
    "'text'",
]


@pytest.fixture
def no_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: Any) -> Any:
        raise AssertionError(f"{request.source!r} went to an evaluator")

    monkeypatch.setattr(_evaluator, "evaluate", refuse)


@pytest.mark.parametrize("expression", PLAIN)
def test_a_plain_expression_is_evaluated_here_to_what_the_sandbox_gives(
    expression: str, no_evaluator: None
) -> None:
    assert plain_expression(expression) is not None
    expected = InlineEnvironment().evaluate(expression, dict(DATA))
    got = SandboxedEnvironment().evaluate(expression, dict(DATA))
    assert got == expected
    assert type(got) is type(expected)


NOT_PLAIN = [
    "abs(amount)",
    "justification.strip() == ''",
    "amount ** 2",
    "[x for x in suppliers]",
    "date.today() > on",
    "route if urgent else 'x'",
    "form[route]",
    "form[True]",
    "suppliers is None",
    "route @ route",
    "lambda: 1",
]


@pytest.mark.parametrize("expression", NOT_PLAIN)
def test_anything_else_is_not_plain(expression: str) -> None:
    assert plain_expression(expression) is None


def test_what_is_not_plain_still_goes_to_an_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    real = _evaluator.evaluate

    def counting(request: Any) -> Any:
        sent.append(request.source)
        return real(request)

    monkeypatch.setattr(_evaluator, "evaluate", counting)
    env = SandboxedEnvironment(extra_globals={"parameters": {"limit": 1000}})
    assert env.evaluate("abs(amount) > 1000", dict(DATA)) is True
    assert env.evaluate("route == 'advice'", dict(DATA)) is True
    # The sandbox's own names are the sandbox's, even in a plain expression or script.
    assert env.evaluate("parameters['limit'] < amount", dict(DATA)) is True
    context = dict(DATA)
    env.execute("parameters = 1\nx = 2", context)
    assert "parameters" not in context
    assert context["x"] == 2
    assert sent == ["abs(amount) > 1000", "parameters['limit'] < amount", "parameters = 1\nx = 2"]


@pytest.mark.parametrize(
    ("expression", "data", "message"),
    [
        ("amount > 'x'", {"amount": 1}, "TypeError: '>' not supported between instances of 'int' and 'str'"),
        ("missing == 1", {}, "name 'missing' is not defined"),
        ("form['nope'] == 1", {"form": {}}, "KeyError"),
        ("amount / 0 > 1", {"amount": 1}, "ZeroDivisionError"),
        ("-route", {"route": "x"}, "TypeError: bad operand type for unary -"),
    ],
)
def test_a_plain_expression_that_fails_fails_as_it_did_in_the_sandbox(
    expression: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScriptError) as inline:
        InlineEnvironment().evaluate(expression, dict(data))
    with pytest.raises(ScriptError) as here:
        SandboxedEnvironment().evaluate(expression, dict(data))
    assert message in str(here.value)
    assert str(here.value) == str(inline.value)


def test_a_name_the_sandbox_keeps_is_not_read_from_the_data() -> None:
    # As in the sandbox, the helper `date` wins over a data key of that name.
    env = SandboxedEnvironment()
    assert env.evaluate("date == 1", {"date": 1}) is False


def test_a_list_or_dict_value_comes_back_as_a_copy() -> None:
    data = {"suppliers": ["a"], "form": {"rows": [1]}}
    value = SandboxedEnvironment().evaluate("suppliers", data)
    assert value == ["a"]
    assert value is not data["suppliers"]


def test_whole_numbers_beyond_63_bits_go_to_the_sandbox_and_give_the_same_value() -> None:
    big = 2**70
    assert SandboxedEnvironment().evaluate("x * x", {"x": big}) == big * big
    assert SandboxedEnvironment().evaluate("x * 2 > x", {"x": 2**62}) is True


def test_a_plain_script_sets_its_variables_here(no_evaluator: None) -> None:
    context: dict[str, Any] = {"amount": 60}
    SandboxedEnvironment().execute("total = amount * 2\nlarge = total > 100\nlabel = 'big'", context)
    assert context == {"amount": 60, "total": 120, "large": True, "label": "big"}


def test_a_plain_script_that_fails_changes_nothing_and_fails_as_in_the_sandbox() -> None:
    context: dict[str, Any] = {"amount": 60}
    with pytest.raises(ScriptError, match="name 'missing' is not defined") as here:
        SandboxedEnvironment().execute("first = 1\nsecond = missing + 1", context)
    assert context == {"amount": 60}
    with pytest.raises(ScriptError) as inline:
        InlineEnvironment().execute("first = 1\nsecond = missing + 1", {"amount": 60})
    assert str(here.value) == str(inline.value)


@pytest.mark.parametrize(
    "script",
    [
        "_hidden = 1",
        "a, b = 1, 2",
        "a = b = 1",
        "x += 1",
        "rows = [1, 2]",
        "if amount: x = 1",
        "x = 1\nprint(x)",
    ],
)
def test_other_scripts_are_not_plain(script: str) -> None:
    assert plain_script(script) is None


def test_a_script_assigning_a_name_the_sandbox_keeps_behaves_as_before() -> None:
    context: dict[str, Any] = {"amount": 1}
    SandboxedEnvironment().execute("len = 5\ny = len", context)
    # `len` stays the sandbox's own: never task data; `y` took the value the script gave it.
    assert context == {"amount": 1, "y": 5}
