"""Tests of the script sandbox: escapes must fail with the right error, ordinary scripts must work."""

from __future__ import annotations

import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine._sandbox import SandboxedEnvironment, SandboxedScriptEngine
from engine.errors import SandboxViolation, ScriptError, ScriptTimeout


@pytest.fixture
def env() -> SandboxedEnvironment:
    return SandboxedEnvironment(time_limit=0.2)


def run(env: SandboxedEnvironment, script: str, **data: Any) -> dict[str, Any]:
    context = dict(data)
    env.execute(script, context)
    return context


ESCAPES = [
    ("__import__('os')", SandboxViolation),
    ("import os", SandboxViolation),
    ("from os import path", SandboxViolation),
    ("open('/etc/passwd')", SandboxViolation),
    ("().__class__.__base__.__subclasses__()", SandboxViolation),
    ("getattr(x, '__class__')", SandboxViolation),
    ("getattr(x, '__globals__')", SandboxViolation),
    ("def f():\n    pass\ngetattr(f, '__globals__', None)", SandboxViolation),
    ("'{0.__class__}'.format(x)", SandboxViolation),
    ("'{0.__init__.__globals__}'.format(x)", SandboxViolation),
    ("def f():\n    pass\n'{0.__globals__[sys]}'.format(f)", SandboxViolation),
    ("'{.__class__}'.format_map({})", SandboxViolation),
    ("'{.__class__}'.format_map({'': x})", SandboxViolation),
    ("'{v.__class__}'.format_map({'v': x})", SandboxViolation),
    ("'{v.__init__.__globals__}'.format_map({'v': x})", SandboxViolation),
    ("str.format('{0.__class__}', x)", SandboxViolation),
    ("''.format.func", ScriptError),  # AttributeError: guarded methods do not expose the raw method
    ("(i for i in []).gi_frame.f_globals", SandboxViolation),
    ("(i for i in []).gi_frame.f_back", SandboxViolation),
    ("getattr((i for i in []), 'gi_frame')", SandboxViolation),
    ("type(x)", SandboxViolation),
    ("type('X', (), {})", SandboxViolation),
    ("vars()", SandboxViolation),
    ("globals()", SandboxViolation),
    ("locals()", SandboxViolation),
    ("__builtins__", SandboxViolation),
    ("eval('1')", SandboxViolation),
    ("exec('x=1')", SandboxViolation),
    ("e = eval\ne('1')", SandboxViolation),
    ("compile('1', 'x', 'eval')", SandboxViolation),
    ("(lambda: 0).__code__", SandboxViolation),
    ("[].__class__", SandboxViolation),
    ("x.__dict__", SandboxViolation),
    ("int.mro()", SandboxViolation),
    ("class A:\n    pass", SandboxViolation),
    ("10**10**10", SandboxViolation),
    ("pow(10, 10**10)", SandboxViolation),
    ("1 << 10**10", SandboxViolation),
    ("'a' * 10**10", SandboxViolation),
    ("[0] * 10**10", SandboxViolation),
    ("s = 'a' * 10**6\ns = s + s", SandboxViolation),
    ("s = 'a' * 10**5\ns += s * 10", SandboxViolation),
    ("l = [0] * 10**6\nl.extend(l)", SandboxViolation),
    ("('a' * 10**6).replace('a', 'aa')", SandboxViolation),
    ("'-'.join(['a' * 1000] * 10**4)", SandboxViolation),
    ("'x'.ljust(10**10)", SandboxViolation),
    ("f'{1:>10000000000}'", SandboxViolation),
    ("w = 10**10\nf'{1:{w}}'", SandboxViolation),
    ("'{:{}}'.format(1, 10**10)", SandboxViolation),
    ("'%10000000000d' % 1", SandboxViolation),
    ("(1).to_bytes(10**10, 'big')", SandboxViolation),
    ("round(5, -10**9)", SandboxViolation),
    ("math.factorial(10**8)", SandboxViolation),
    ("Decimal('1e999999')", SandboxViolation),
    ("while True: pass", ScriptTimeout),
    ("n = 0\nwhile True:\n    n += 1", ScriptTimeout),
    ("[i for i in range(10**6) for j in range(10**6)]", ScriptTimeout),
    ("sum(i * j for i in range(10**6) for j in range(10**6))", ScriptTimeout),
    ("list(range(10**10))", ScriptTimeout),
    ("max(map(sorted, [list(range(1000))] * 10**6))", ScriptTimeout),
    ("def f(n):\n    return f(n + 1) + f(n + 2)\nf(0)", ScriptError),  # RecursionError, not a hang
    # a swallowed RecursionError switches CPython's trace hook off; the injected ticks still stop it
    ("def f():\n    f()\ntry:\n    f()\nexcept Exception:\n    pass\nwhile True:\n    pass", ScriptTimeout),
    ("try:\n    while True: pass\nexcept:\n    pass\nx = 1", ScriptTimeout),
    ("try:\n    while True: pass\nfinally:\n    while True: pass", ScriptTimeout),
    (
        "g = lambda: g()\nwhile True:\n    try:\n        g()\n    except Exception:\n        pass",
        ScriptTimeout,
    ),
]


@pytest.mark.parametrize(("script", "error"), ESCAPES, ids=[s for s, _ in ESCAPES])
def test_escape_is_refused(env: SandboxedEnvironment, script: str, error: type[Exception]) -> None:
    started = time.monotonic()
    with pytest.raises(ScriptError) as info:
        env.execute(script, {"x": 1})
    assert type(info.value) is error, info.value
    assert info.value.message
    assert time.monotonic() - started < 2


def test_violation_messages(env: SandboxedEnvironment) -> None:
    with pytest.raises(SandboxViolation, match="import is not allowed"):
        env.execute("x = 1\nimport os", {})
    with pytest.raises(SandboxViolation, match="access to '__class__' is not allowed") as info:
        env.evaluate("[].__class__", {})
    assert info.value.line == 1
    with pytest.raises(SandboxViolation, match="access to '__class__' is not allowed") as info:
        env.execute("a = 1\nb = 2\nc = getattr(a, '__class__')", {})
    assert info.value.line == 3
    with pytest.raises(ScriptTimeout, match=r"time limit of 0\.2s"):
        env.execute("while True: pass", {})


def test_evaluate_expressions(env: SandboxedEnvironment) -> None:
    data = {"amount": 1500, "kind": "goods", "items": [3, 1, 2]}
    assert env.evaluate("amount > 1000 and kind == 'goods'", data) is True
    assert env.evaluate("(amount + 500) * 2 - 1 / 4", data) == 3999.75
    assert env.evaluate("amount // 7, amount % 7, 2 ** 10", data) == (214, 2, 1024)
    assert env.evaluate("1 < 2 <= 2 != 3", data) is True
    assert env.evaluate("sorted(items)", data) == [1, 2, 3]
    assert env.evaluate("[i * 2 for i in items if i > 1]", data) == [6, 4]
    assert env.evaluate("kind.upper() + '!'", data) == "GOODS!"
    assert env.evaluate("f'{kind}: {amount:,}'", data) == "goods: 1,500"
    assert env.evaluate("'{} {:>5}'.format(kind, amount)", data) == "goods  1500"
    assert env.evaluate("'%s=%d' % (kind, amount)", data) == "goods=1500"
    assert env.evaluate("math.ceil(amount / 1000)", data) == 2
    assert env.evaluate("dmninputexpr == 5", data, external_context={"dmninputexpr": 5}) is True
    assert env.evaluate("list(zip(items, range(3)))", data) == [(3, 0), (1, 1), (2, 2)]
    assert env.evaluate("dict(enumerate(reversed(items)))", data) == {0: 2, 1: 1, 2: 3}
    assert env.evaluate("sum(map(abs, filter(None, items)))", data) == 6
    assert env.evaluate("sum([Decimal('0.1')] * 3)", data) == Decimal("0.3")


def test_decimal_and_dates(env: SandboxedEnvironment) -> None:
    ctx = run(
        env,
        "total = Decimal('10.10') * 3\n"
        "due = date(2024, 1, 31) + timedelta(days=1)\n"
        "now = datetime.now()\n"
        "later = now + timedelta(hours=2)\n"
        "ok = isinstance(total, Decimal)\n",
    )
    assert ctx["total"] == Decimal("30.30")
    assert ctx["due"] == date(2024, 2, 1)
    assert ctx["later"] - ctx["now"] == timedelta(hours=2)
    assert isinstance(ctx["now"], datetime)
    assert ctx["ok"] is True


def test_execute_updates_task_data(env: SandboxedEnvironment) -> None:
    ctx = run(
        env,
        "def double(v):\n"
        "    return v * 2\n"
        "total = 0\n"
        "for line in order['lines']:\n"
        "    total += line['qty'] * line['price']\n"
        "order['lines'].append({'qty': 1, 'price': 1})\n"
        "order['count'] += 1\n"
        "order['total'] = double(total)\n"
        "names = sorted(order['names'], key=lambda n: n.lower())\n"
        "a, (b, c) = 1, (2, 3)\n"
        "m = math\n"
        "del obsolete\n",
        order={"lines": [{"qty": 2, "price": 5}, {"qty": 1, "price": 3}], "count": 1, "names": ["b", "A"]},
        obsolete=True,
    )
    assert ctx["total"] == 13
    assert ctx["order"]["total"] == 26
    assert ctx["order"]["count"] == 2
    assert len(ctx["order"]["lines"]) == 3
    assert ctx["names"] == ["A", "b"]
    assert (ctx["a"], ctx["b"], ctx["c"]) == (1, 2, 3)
    assert "obsolete" not in ctx
    # helpers, functions, modules and the sandbox's own names stay out of the task data
    for leaked in ("double", "m", "math", "date", "Decimal", "__builtins__", "_getattr_", "_print"):
        assert leaked not in ctx


def test_sandbox_names_win_over_task_data() -> None:
    # Data that got in under a sandbox name (older cases, a lax caller) must not
    # replace the organisation's parameters, a helper or a builtin for scripts.
    env = SandboxedEnvironment(extra_globals={"parameters": {"limit": 10_000}})
    forged = {"parameters": {"limit": 10**12}, "date": "2024-05-01", "len": "7", "sum": 0}
    assert env.evaluate("parameters['limit']", dict(forged)) == 10_000
    assert env.evaluate("date(2024, 5, 1).year + len('ab') + sum([1, 2])", dict(forged)) == 2029
    ctx = run(env, "over = 20_000 > parameters['limit']\nlabel = str(len([1]))", **forged)
    assert ctx == {**forged, "over": True, "label": "1"}  # the forged keys are left alone, not read


def test_script_assigning_a_sandbox_name_keeps_it_local(env: SandboxedEnvironment) -> None:
    ctx = run(env, "max = 3\ndate = 'today'\nlabel = date + str(max)")
    assert ctx == {"label": "today3"}
    assert env.evaluate("max([1, 2])", ctx) == 2


def test_extra_globals_and_external_context() -> None:
    env = SandboxedEnvironment(extra_globals={"LIMIT": 1000, "rates": {"vat": 0.2}})
    ctx = {"amount": 2000}
    script = "over = amount > LIMIT\ntax = amount * rates['vat'] + bonus"
    env.execute(script, ctx, external_context={"bonus": 1})
    assert ctx == {"amount": 2000, "over": True, "tax": 401.0}


def test_what_cannot_reach_an_evaluator_is_a_clear_error() -> None:
    # Evaluation happens in another process: only data crosses, never the server's functions.
    env = SandboxedEnvironment(extra_globals={"vat": lambda v: v * 0.2})
    with pytest.raises(ScriptError, match="cannot be sent to the script's evaluator"):
        env.evaluate("vat(10)", {})


def test_failed_script_leaves_top_level_data_alone(env: SandboxedEnvironment) -> None:
    ctx = {"a": 1}
    with pytest.raises(ScriptError):
        env.execute("a = 2\nb = 1 / 0", ctx)
    assert ctx == {"a": 1}


def test_runtime_error_has_line_number(env: SandboxedEnvironment) -> None:
    with pytest.raises(ScriptError) as info:
        env.execute("x = 1\ny = x + 1\nz = missing + y", {})
    assert info.value.line == 3
    assert "NameError: name 'missing' is not defined" in str(info.value)
    assert "line 3" in str(info.value)
    with pytest.raises(ScriptError) as info:
        env.execute("def f(v):\n    return v / 0\n\nf(1)", {})
    assert info.value.line == 2
    assert "ZeroDivisionError" in info.value.message


def test_syntax_error(env: SandboxedEnvironment) -> None:
    with pytest.raises(ScriptError, match="SyntaxError") as info:
        env.execute("x = 1\ny = (", {})
    assert info.value.line == 2
    assert not isinstance(info.value, SandboxViolation)


def test_validate() -> None:
    engine = SandboxedScriptEngine()
    engine.validate("5")
    engine.validate("amount > 5 and kind in ('a', 'b')")
    for text in ("> 5", "x = 5", "import os"):
        with pytest.raises(SyntaxError):
            engine.validate(text)


def test_trace_function_is_left_alone(env: SandboxedEnvironment) -> None:
    def tracer(frame: Any, event: str, arg: Any) -> None:
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        env.evaluate("1 + 1", {})
        assert sys.gettrace() is tracer
        with pytest.raises(ScriptTimeout):
            env.execute("while True: pass", {})
        assert sys.gettrace() is tracer
        with pytest.raises(SandboxViolation):
            env.execute("import os", {})
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)


def test_time_limit_is_per_evaluation() -> None:
    env = SandboxedEnvironment(time_limit=0.2)
    for _ in range(3):
        env.execute("total = 0\nfor i in range(1000):\n    total += i", {})
    assert env.evaluate("1", {}) == 1


def fake_task(data: dict[str, Any]) -> Any:
    workflow = SimpleNamespace(spec=SimpleNamespace(file="order.bpmn"))
    workflow.top_workflow = workflow
    spec = SimpleNamespace(bpmn_id="Calc_Total", bpmn_name="Calculate total")
    return SimpleNamespace(data=data, task_spec=spec, workflow=workflow)


def test_script_engine_wraps_errors() -> None:
    engine = SandboxedScriptEngine(time_limit=0.2)
    task = fake_task({"amount": 5})
    engine.execute(task, "doubled = amount * 2")
    assert task.data == {"amount": 5, "doubled": 10}
    assert engine.evaluate(task, "doubled > amount") is True

    with pytest.raises(WorkflowTaskException) as info:
        engine.execute(task, "a = 1\nb = amout + 1")
    original = info.value.exception
    assert isinstance(original, ScriptError)
    assert original.element == "Calc_Total"
    assert original.line == 2
    assert info.value.line_number == 2
    assert info.value.error_line == "b = amout + 1"
    assert "Did you mean" in str(info.value) and "'amount'" in str(info.value)

    with pytest.raises(WorkflowTaskException) as info:
        engine.evaluate(task, "amount.__class__")
    assert isinstance(info.value.exception, SandboxViolation)

    with pytest.raises(WorkflowTaskException) as info:
        engine.execute(task, "while True: pass")
    assert isinstance(info.value.exception, ScriptTimeout)


BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="order" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="calc" name="Calculate">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>SCRIPT</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="gw" default="f4">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="big"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="small"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="calc"/>
    <bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="gw"/>
    <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="big">
      <bpmn:conditionExpression>total &gt; 100</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="small"/>
  </bpmn:process>
</bpmn:definitions>
"""


def make_workflow(script: str) -> BpmnWorkflow:
    parser = BpmnParser()
    parser.add_bpmn_str(BPMN.replace(b"SCRIPT", script.encode()), "order.bpmn")
    return BpmnWorkflow(parser.get_spec("order"), script_engine=SandboxedScriptEngine(time_limit=0.2))


def test_real_workflow_runs_scripts_and_conditions_in_sandbox() -> None:
    workflow = make_workflow("total = sum([60, 70])")
    workflow.do_engine_steps()
    assert workflow.is_completed()
    assert workflow.data["total"] == 130
    assert [
        t.task_spec.name
        for t in workflow.get_tasks(state=TaskState.COMPLETED)
        if t.task_spec.name in ("big", "small")
    ] == ["big"]


def test_real_workflow_script_violation_puts_task_in_error() -> None:
    workflow = make_workflow("import os")
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert isinstance(info.value.exception, SandboxViolation)
    assert info.value.exception.element == "calc"
    assert workflow.get_tasks(spec_name="calc")[0].state == TaskState.ERROR


def test_helpers_whose_c_code_imports_modules_work(env: SandboxedEnvironment) -> None:
    """date.today() and strptime import time/_strptime inside C; that must not break them."""
    data = run(env, "today = date.today()\nparsed = datetime.strptime('2027-03-31', '%Y-%m-%d').date()")
    assert data["today"] == date.today()
    assert data["parsed"] == date(2027, 3, 31)


@pytest.mark.parametrize("name", ["os", "sys", "subprocess"])
def test_internal_import_hook_refuses_other_modules(env: SandboxedEnvironment, name: str) -> None:
    hook = env.globals["__builtins__"]["__import__"] if "__builtins__" in env.globals else None
    from engine._sandbox import _internal_import

    for candidate in filter(None, (hook, _internal_import)):
        with pytest.raises(SandboxViolation, match=f"import of {name!r} is not allowed"):
            candidate(name)


# -- working days -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "jurisdiction", "expected"),
    [
        # A Friday: the weekend is skipped.
        ("2025-03-07", 1, "FI", date(2025, 3, 10)),
        # Maundy Thursday 2025: Good Friday and Easter Monday are holidays in both countries.
        ("2025-04-17", 1, "SE", date(2025, 4, 22)),
        ("2025-04-17", 1, "FI", date(2025, 4, 22)),
        # Finland's Independence Day (Saturday 6 Dec 2025 is a weekend anyway) and Christmas:
        # 24, 25 and 26 December are not worked in Finland.
        ("2025-12-23", 1, "FI", date(2025, 12, 29)),
        # Sweden's National Day, Friday 6 June 2025, is a holiday; not in Finland.
        ("2025-06-05", 1, "SE", date(2025, 6, 9)),
        ("2025-06-05", 1, "FI", date(2025, 6, 6)),
        # Midsummer eve (Friday 20 June 2025) is not worked in either country.
        ("2025-06-19", 1, "SE", date(2025, 6, 23)),
        ("2025-06-19", 1, "FI", date(2025, 6, 23)),
        # New Year's eve counts as a holiday for Swedish time limits, not for Finnish ones.
        ("2025-12-30", 1, "SE", date(2026, 1, 2)),
        ("2025-12-30", 1, "FI", date(2025, 12, 31)),
        # Epiphany (Tuesday 6 January 2026) in both.
        ("2026-01-05", 1, "SE", date(2026, 1, 7)),
        # Received on a Saturday: the first working day is Monday.
        ("2025-03-08", 1, "SE", date(2025, 3, 10)),
        ("2025-03-08", 0, "SE", date(2025, 3, 8)),
        # Dates and datetimes as well as ISO text.
        (date(2025, 3, 3), 2, "FI", date(2025, 3, 5)),
        (datetime(2025, 3, 3, 16, 30), 5, "se", date(2025, 3, 10)),
    ],
)
def test_add_working_days_skips_weekends_and_public_holidays(
    env: SandboxedEnvironment, start: Any, days: int, jurisdiction: str, expected: date
) -> None:
    result = env.evaluate(
        "add_working_days(start, days, jurisdiction)",
        {"start": start, "days": days, "jurisdiction": jurisdiction},
    )
    assert result == expected


def test_is_working_day(env: SandboxedEnvironment) -> None:
    assert env.evaluate("is_working_day('2025-12-06', 'FI')", {}) is False
    assert env.evaluate("is_working_day('2025-12-05', 'FI')", {}) is True
    assert env.evaluate("is_working_day(date(2025, 6, 6), 'SE')", {}) is False


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("add_working_days('2025-03-03', 2, 'XX')", "no public-holiday calendar for jurisdiction 'XX'"),
        ("add_working_days('2025-03-03', 2, None)", "no public-holiday calendar for jurisdiction None"),
        ("add_working_days('3 March', 2, 'FI')", "the start must be a date or an ISO date text"),
        ("add_working_days('2025-03-03', -1, 'FI')", "whole number 0-1000"),
        ("add_working_days('2025-03-03', 10**9, 'FI')", "whole number 0-1000"),
        ("add_working_days('2025-03-03', 2.5, 'FI')", "whole number 0-1000"),
        ("add_working_days('2025-03-03', True, 'FI')", "whole number 0-1000"),
    ],
)
def test_add_working_days_bad_input_is_a_clear_script_error(
    env: SandboxedEnvironment, expression: str, message: str
) -> None:
    with pytest.raises(ScriptError, match="WorkingDaysError") as caught:
        env.evaluate(expression, {})
    assert message in str(caught.value)


def test_working_day_helpers_expose_nothing_else(env: SandboxedEnvironment) -> None:
    for attribute in ("__globals__", "__module__", "__wrapped__"):
        with pytest.raises(SandboxViolation):
            env.evaluate(f"getattr(add_working_days, '{attribute}')", {})
    with pytest.raises(SandboxViolation):
        env.evaluate("add_working_days.__globals__", {})


def test_a_script_computes_a_due_date_in_working_days(env: SandboxedEnvironment) -> None:
    result = run(env, "due = add_working_days(received, 2, 'SE')", received="2025-06-05")
    assert result == {"received": "2025-06-05", "due": date(2025, 6, 10)}
