"""The second wall: scripts run in evaluator processes with CPU, memory and time limits.

Plain expressions (``1 + 1``) never reach an evaluator (engine/_plain_expressions.py), so the
tests here that need one call a function: ``abs(1 + 1)``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import pickle
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy.orm as so
import time_machine

import engine
from engine import _evaluator
from engine._sandbox import SandboxedEnvironment
from engine.errors import ScriptError, ScriptTimeout

Factory = so.sessionmaker[so.Session]

# One C call each: nothing in Python can interrupt them; only the process limits can.
MODULAR_POWER = "x = pow(3, 2**99999, 2**99999 + 1)"
HASH_COLLISIONS = "x = len({i * (2**61 - 1) for i in range(60000)})"
MEMORY_BOMB = "x = ('{0:>999999}' * 2000).format(1)"


@pytest.fixture
def env() -> SandboxedEnvironment:
    return SandboxedEnvironment(time_limit=1.0)


def _idle_pids() -> list[int]:
    return [e.process.pid for e in _evaluator.pool()._idle]


@pytest.mark.parametrize("script", [MODULAR_POWER, HASH_COLLISIONS], ids=["pow", "hash-collisions"])
def test_a_single_long_c_call_is_stopped_at_the_time_limit(env: SandboxedEnvironment, script: str) -> None:
    started = time.monotonic()
    with pytest.raises(ScriptTimeout, match="time limit of 1s"):
        env.execute(script, {})
    assert time.monotonic() - started < 1.0 + _evaluator.GRACE_SECONDS + 1.0
    # The evaluator that ran it was replaced: the next script runs at once.
    assert env.evaluate("abs(1 + 1)", {}) == 2


def test_a_memory_bomb_fails_in_its_evaluator(env: SandboxedEnvironment) -> None:
    # Usually a MemoryError at the address-space limit; on a loaded machine the time limit may come first.
    with pytest.raises(ScriptError, match=r"MemoryError|time limit"):
        env.execute(MEMORY_BOMB, {})
    assert env.evaluate("abs(2 * 21)", {}) == 42


def test_other_evaluations_go_on_while_one_burns_its_time() -> None:
    slow = SandboxedEnvironment(time_limit=2.0)
    quick = SandboxedEnvironment(time_limit=2.0)
    quick.evaluate("abs(0)", {})
    failures: list[BaseException] = []

    def burn() -> None:
        try:
            slow.execute(MODULAR_POWER, {})
        except ScriptTimeout as exc:
            failures.append(exc)

    burner = threading.Thread(target=burn)
    burner.start()
    time.sleep(0.2)
    started = time.monotonic()
    answers = [quick.evaluate("abs(n * 2)", {"n": n}) for n in range(20)]
    elapsed = time.monotonic() - started
    burner.join(10)
    assert answers == [n * 2 for n in range(20)]
    assert elapsed < 0.5, f"20 quick evaluations took {elapsed:.2f}s while another script ran"
    assert len(failures) == 1


def test_an_evaluator_that_dies_is_replaced(env: SandboxedEnvironment) -> None:
    env.evaluate("abs(1)", {})
    (pid, *_) = _idle_pids()
    os.kill(pid, 9)
    time.sleep(0.1)
    assert env.evaluate("abs(3 + 4)", {}) == 7
    assert pid not in _idle_pids()


def test_scripts_get_data_back_and_decimals_dates_survive(env: SandboxedEnvironment) -> None:
    from decimal import Decimal

    context: dict[str, Any] = {"amount": Decimal("10.50"), "on": dt.date(2026, 1, 31), "rows": [1, 2]}
    env.execute("total = amount * 2\nlater = on + timedelta(days=1)\nrows.append(3)\ndel on", context)
    assert context == {
        "amount": Decimal("10.50"),
        "total": Decimal("21.00"),
        "later": dt.date(2026, 2, 1),
        "rows": [1, 2, 3],
    }
    assert type(context["total"]) is Decimal


def test_the_evaluator_sees_the_callers_clock(env: SandboxedEnvironment) -> None:
    with time_machine.travel(dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)):
        assert env.evaluate("date.today()", {}) == dt.date(2025, 3, 3)
        assert env.evaluate("datetime.now(ZoneInfo('UTC')).year", {}) == 2025
    assert env.evaluate("isinstance(date.today(), date)", {}) is True


class _CountingMapping(Mapping[str, Any]):
    def __init__(self) -> None:
        self.reads = 0

    def __getitem__(self, key: str) -> Any:
        self.reads += 1
        return {"limit": 5}[key]

    def __iter__(self) -> Iterator[str]:
        self.reads += 1
        return iter(["limit"])

    def __len__(self) -> int:
        return 1


def test_parameters_are_sent_only_to_code_that_names_them() -> None:
    parameters = _CountingMapping()
    env = SandboxedEnvironment(extra_globals={"parameters": parameters})
    assert env.evaluate("amount > 3", {"amount": 4}) is True
    assert parameters.reads == 0
    assert env.evaluate("[amount > parameters['limit'] for _ in [1]][0]", {"amount": 6}) is True
    assert parameters.reads > 0
    with pytest.raises(ScriptError, match="no parameter 'missing' is set for this organisation"):
        env.evaluate("parameters['missing']", {})


def test_the_evaluator_gets_no_secrets_from_the_environment(
    env: SandboxedEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFLOW_SECRET_KEY", "s3cret")
    _evaluator.pool().close()
    fresh = _evaluator.Evaluator()
    try:
        with open(f"/proc/{fresh.process.pid}/environ", "rb") as environ:
            assert b"s3cret" not in environ.read()
    finally:
        fresh.kill()


def test_answers_are_read_as_plain_data_only() -> None:
    forged = pickle.dumps(("ok", os.system))
    with pytest.raises(pickle.UnpicklingError, match=r"may not answer with posix\.system"):
        _evaluator._PlainDataUnpickler(io.BytesIO(forged)).load()
    plain = pickle.dumps(("ok", {"a": [dt.date(2026, 1, 1), {1, 2}]}))
    assert _evaluator._PlainDataUnpickler(io.BytesIO(plain)).load() == (
        "ok",
        {"a": [dt.date(2026, 1, 1), {1, 2}]},
    )


QUADRATIC_CELL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="D" namespace="x">
  <decision id="Heavy" name="Heavy">
    <decisionTable id="t" hitPolicy="UNIQUE">
      <input id="i1" label="Value">
        <inputExpression id="e1" typeRef="number"><text>value</text></inputExpression>
      </input>
      <output id="o1" name="result" typeRef="string" />
      <rule id="r1">
        <inputEntry id="c1"><text>{cell}</text></inputEntry>
        <outputEntry id="c2"><text>"x"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""

DECIDING = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="deciding" name="Deciding" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:businessRuleTask id="decide" name="Decide">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>Heavy</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:userTask id="after" name="After"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide" />
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="after" />
    <bpmn:sequenceFlow id="f3" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_decision_table_cell_that_is_quadratic_to_read_costs_only_its_time_limit(
    session_factory: Factory, orgs: None
) -> None:
    files = [
        engine.BundleFile("deciding.bpmn", "bpmn", DECIDING),
        engine.BundleFile("Heavy.dmn", "dmn", QUADRATIC_CELL.format(cell="?" * 60000)),
    ]
    with session_factory.begin() as s:
        engine.deploy_files(s, files, name="deciding")
    started = time.monotonic()
    with session_factory.begin() as s:
        instance = engine.start_instance(
            s, "deciding", organisation="north", user="north-req", data={"value": 1}
        )
        assert instance.status == "error"
        assert "decide" in (instance.error_message or "") and "time limit" in (instance.error_message or "")
    assert time.monotonic() - started < 10


def test_a_decision_table_is_evaluated_whole_in_one_evaluation(session_factory: Factory, orgs: None) -> None:
    files = [
        engine.BundleFile("deciding.bpmn", "bpmn", DECIDING),
        engine.BundleFile("Heavy.dmn", "dmn", QUADRATIC_CELL.format(cell="&gt; 0")),
    ]
    with session_factory.begin() as s:
        engine.deploy_files(s, files, name="deciding")
    sent: list[str] = []
    original = _evaluator.EvaluatorPool.run

    def counting(self: _evaluator.EvaluatorPool, request: _evaluator.Request) -> Any:
        sent.append(request.kind)
        return original(self, request)

    _evaluator.EvaluatorPool.run = counting  # type: ignore[method-assign]
    try:
        with session_factory.begin() as s:
            instance = engine.start_instance(
                s, "deciding", organisation="north", user="north-req", data={"value": 1}
            )
            assert instance.status == "running", instance.error_message
            assert engine.instance_data(s, instance)["result"] == "x"
    finally:
        _evaluator.EvaluatorPool.run = original  # type: ignore[method-assign]
    assert sent.count("decide") == 1
