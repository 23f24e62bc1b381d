"""The engine's limits: what one model or one instance may ask of the server.

A model is user content: a process owner can deploy a call activity that
calls its own process, a timer of a hundred million years, ten thousand
parallel branches or a script that keeps a gigabyte of data. Each of these
used to hang or crash the operation that ran it, holding the database's write
lock meanwhile. The limits below stop them with an error that names the
element and the limit instead.

What happens when a limit is reached:

- at deploy (:data:`MAX_FLOW_NODES_PER_PROCESS`, timers and ``dueIn`` written
  as literals): :class:`~engine.errors.DeploymentError` with file, line and
  element;
- nesting (:data:`MAX_CALL_DEPTH`) and computed timer values: the instance
  goes to ``error`` naming the element, like a failing script; nothing spins;
- tasks per instance (:data:`MAX_TASKS_PER_INSTANCE`), the state size
  (:func:`max_state_bytes`) and computed ``dueIn`` values: the operation is
  refused with :class:`~engine.errors.LimitError` and nothing of it is stored.
  These are reached while SpiffWorkflow is half way through creating tasks, or
  when saving, where there is no consistent state to record an error in: the
  caller's transaction rolls back, a task being completed stays open and the
  previous state stays intact. A step the worker runs (a timer) becomes an
  incident at once and its instance goes to ``error`` with its previous state
  (:func:`engine.jobs.run_due_jobs`); an admin retries it once the model or
  the limit has changed.
"""

from __future__ import annotations

import ast
import contextvars
import datetime as dt
import math
import os
import pickle
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, SpiffProcessParser

from .errors import DeploymentError, LimitError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"

#: Nested subprocesses and call activities, counted from the instance's process.
MAX_CALL_DEPTH = 20
#: Tasks alive in one instance's task trees (SpiffWorkflow creates one per element
#: it has reached or predicts, plus one per parallel branch or multi-instance child).
MAX_TASKS_PER_INSTANCE = 10_000
#: Activities, events and gateways in one process, its embedded subprocesses included.
MAX_FLOW_NODES_PER_PROCESS = 5_000
#: Sequence flows leaving one element: SpiffWorkflow's parallel join costs grow with the
#: square of the branches (200 script branches take about a second, 1 000 a minute).
MAX_OUTGOING_FLOWS = 200
#: The longest timer duration, ``dueIn`` or distance of a timer date from now.
MAX_DURATION_YEARS = 100
#: Default for ``PROCFLOW_MAX_STATE_BYTES``: the serialized state of one instance.
DEFAULT_MAX_STATE_BYTES = 5 * 1024 * 1024
STATE_BYTES_VARIABLE = "PROCFLOW_MAX_STATE_BYTES"

_DAYS_PER_UNIT = {
    "years": 365.25,
    "months": 30.44,
    "weeks": 7.0,
    "days": 1.0,
    "hours": 1 / 24,
    "minutes": 1 / 1440,
    "seconds": 1 / 86_400,
}
_MAX_DURATION_DAYS = MAX_DURATION_YEARS * 365.25
# Keys of a serialized task that map variable names to values (its data, and the change a step made).
_DATA_KEYS = ("data", "updates")
_FLOW_NODES = frozenset(
    f"{{{BPMN_NS}}}{tag}"
    for tag in (
        "task",
        "userTask",
        "manualTask",
        "scriptTask",
        "serviceTask",
        "sendTask",
        "receiveTask",
        "businessRuleTask",
        "callActivity",
        "subProcess",
        "transaction",
        "adHocSubProcess",
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
        "exclusiveGateway",
        "inclusiveGateway",
        "parallelGateway",
        "eventBasedGateway",
        "complexGateway",
    )
)


def max_state_bytes() -> int:
    """Return the largest serialized state an instance may store, in bytes.

    Read from ``PROCFLOW_MAX_STATE_BYTES`` at each use (so a changed setting
    applies without a restart), else :data:`DEFAULT_MAX_STATE_BYTES`.

    :raises LimitError: the variable is set but is not a positive whole number.
    """
    raw = os.environ.get(STATE_BYTES_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_STATE_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise LimitError(
            f"{STATE_BYTES_VARIABLE}={raw!r} is not a positive number of bytes", limit="state", refused=True
        )
    return value


# -- deploy --------------------------------------------------------------------


def check_model_size(root: etree._Element, file_name: str) -> None:
    """Refuse a process of more than :data:`MAX_FLOW_NODES_PER_PROCESS` elements, or an element with
    more than :data:`MAX_OUTGOING_FLOWS` outgoing sequence flows.

    :raises DeploymentError: naming the file, the process and its line.
    """
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        count = sum(1 for node in process.iter() if node.tag in _FLOW_NODES)
        if count > MAX_FLOW_NODES_PER_PROCESS:
            raise DeploymentError(
                f"the process has {count} activities, events and gateways; "
                f"at most {MAX_FLOW_NODES_PER_PROCESS} are allowed (split it with call activities)",
                file=file_name,
                line=process.sourceline,
                element=process.get("id"),
            )
        outgoing = Counter(flow.get("sourceRef") for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow"))
        for source, flows in outgoing.items():
            if flows > MAX_OUTGOING_FLOWS:
                node = next((n for n in process.iter() if n.get("id") == source), process)
                raise DeploymentError(
                    f"{flows} sequence flows leave this element; at most {MAX_OUTGOING_FLOWS} are allowed "
                    "(use a multi-instance activity for many similar branches)",
                    file=file_name,
                    line=node.sourceline,
                    element=source,
                )


def check_literal_durations(root: etree._Element, file_name: str) -> None:
    """Refuse timers and ``dueIn`` properties whose value, written as a literal, is out of range.

    Values computed by an expression are checked when they are computed
    (:func:`check_timer_value`, :func:`due_in_days`).

    :raises DeploymentError: naming the file, the element and its line.
    """
    kinds = {"timeDuration": "duration", "timeDate": "date", "timeCycle": "cycle"}
    for definition in root.iter(f"{{{BPMN_NS}}}timerEventDefinition"):
        for child in definition:
            kind = kinds.get(etree.QName(child).localname)
            value = _literal((child.text or "").strip())
            if kind is None or not isinstance(value, str):
                continue
            problem = timer_value_problem(kind, value)
            if problem:
                event = definition.getparent()
                raise DeploymentError(
                    problem,
                    file=file_name,
                    line=child.sourceline,
                    element=event.get("id") if event is not None else None,
                )
    for prop in root.iter("{*}property"):
        if prop.get("name") != "dueIn" or not prop.get("value"):
            continue
        raw = str(prop.get("value"))
        value = _literal(raw)
        if value is None and is_iso_duration(raw):
            value = raw.strip()
        problem = due_in_problem(value) if isinstance(value, str | int | float) else None
        if problem:
            owner = next((a for a in prop.iterancestors() if a.get("id")), None)
            raise DeploymentError(
                problem,
                file=file_name,
                line=prop.sourceline,
                element=owner.get("id") if owner is not None else None,
            )


_ISO_DURATION = re.compile(
    r"P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?", re.IGNORECASE
)


def is_iso_duration(text: str) -> bool:
    """Tell whether *text* is an ISO 8601 duration written as it is (``P5D``, ``PT2H``), not an expression."""
    return _ISO_DURATION.fullmatch(text.strip()) is not None


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


# -- durations -----------------------------------------------------------------


def duration_days(value: str) -> float:
    """Return the length of ISO 8601 duration *value* in days (months and years on average).

    SpiffWorkflow adds a duration month by month, so a duration of a hundred
    million years takes hours to add; this estimate costs nothing.

    :raises ValueError: *value* is not an ISO 8601 duration.
    """
    parsed = TimerEventDefinition.parse_iso_duration(value) if value.upper().startswith("P") else None
    if not parsed:
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as 'P5D' or 'PT2H'")
    return sum(float(amount) * _DAYS_PER_UNIT[unit] for unit, amount in parsed.items())


def _duration_problem(value: str) -> str | None:
    try:
        days = duration_days(value)
    except Exception as exc:
        return str(exc) if isinstance(exc, ValueError) else f"{value!r} is not an ISO 8601 duration"
    if not math.isfinite(days) or days > _MAX_DURATION_DAYS:
        return f"duration {value!r} is longer than the limit of {MAX_DURATION_YEARS} years"
    return None


def timer_value_problem(kind: str, value: Any) -> str | None:
    """Return what is wrong with a timer's value, or ``None`` when it is in range.

    *kind* is ``"duration"``, ``"date"`` or ``"cycle"``. A duration must be an
    ISO 8601 duration of at most :data:`MAX_DURATION_YEARS` years; a date must
    be an ISO 8601 date-time at most that far from now; a cycle
    (``R[n]/[start/]duration``) must repeat a positive duration within the same
    range.
    """
    if not isinstance(value, str):
        return f"the timer's value must be ISO 8601 text, not {type(value).__name__} {value!r:.60}"
    if kind == "duration":
        return _duration_problem(value)
    if kind == "date":
        return _date_problem(value)
    parts = value.upper().replace("--", "/").split("/")
    if not parts[0].startswith("R") or not 2 <= len(parts) <= 3:
        return f"cycle {value!r} is not an ISO 8601 repeating interval such as 'R3/P1D'"
    count = parts[0][1:]
    if count and not count.isdigit():
        return f"cycle {value!r} has an invalid repeat count {count!r}"
    durations = [p for p in parts[1:] if p.startswith("P")]
    if len(durations) != 1:
        return f"cycle {value!r} must have exactly one duration"
    for part in parts[1:]:
        problem = _duration_problem(part) if part.startswith("P") else _date_problem(part)
        if problem:
            return f"cycle {value!r}: {problem}"
    if duration_days(durations[0]) <= 0:
        return f"cycle {value!r} repeats a zero duration"
    return None


def _date_problem(value: str) -> str | None:
    try:
        when = TimerEventDefinition.parse_time_or_duration(value)
    except Exception:
        return f"{value!r} is not an ISO 8601 date-time such as '2030-01-31T12:00:00Z'"
    if not isinstance(when, dt.datetime):
        return f"{value!r} is not an ISO 8601 date-time"
    if abs((when - dt.datetime.now(dt.UTC)).days) > _MAX_DURATION_DAYS:
        return f"date {value!r} is more than {MAX_DURATION_YEARS} years from now"
    return None


def check_timer_value(task: Any, expression: str, value: Any) -> None:
    """Check the value SpiffWorkflow computed for a timer of *task*, if *expression* is that timer's.

    Called by the engine's script engine for every evaluation: timer
    expressions are evaluated through it just before SpiffWorkflow does date
    arithmetic with the result.

    :raises LimitError: the value is invalid or out of range; names the element.
    """
    definition = getattr(task.task_spec, "event_definition", None)
    candidates = getattr(definition, "event_definitions", None) or [definition]
    for candidate in candidates:
        if not isinstance(candidate, TimerEventDefinition) or candidate.expression != expression:
            continue
        if isinstance(candidate, CycleTimerEventDefinition):
            kind = "cycle"
        elif isinstance(candidate, TimeDateEventDefinition):
            kind = "date"
        else:
            kind = "duration"
        problem = timer_value_problem(kind, value)
        if problem:
            element = task.task_spec.bpmn_id
            raise LimitError(f"{element}: timer: {problem}", limit="duration", element=element)


def due_in_problem(value: str | int | float | None) -> str | None:
    """Return what is wrong with a user task's ``dueIn`` value (days, or an ISO 8601 duration)."""
    if isinstance(value, str):
        return _duration_problem(value) if value.upper().startswith("P") else None
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (math.isfinite(value) and 0 <= value <= _MAX_DURATION_DAYS)
    ):
        return f"dueIn of {value!r} days is outside 0 to {MAX_DURATION_YEARS} years"
    return None


def check_due_in(element: str, value: str | int | float) -> None:
    """Check a user task's evaluated ``dueIn``.

    :raises LimitError: out of range; names the element.
    """
    problem = due_in_problem(value)
    if problem:
        raise LimitError(f"{element}: {problem}", limit="duration", element=element, refused=True)


# -- task trees ----------------------------------------------------------------


class _TaskBudget:
    """Counts the tasks alive in one instance's trees while an operation runs."""

    def __init__(self, top: Any) -> None:
        self.top = top
        self.live = 0

    def add(self, count: int) -> None:
        if self.live + count > MAX_TASKS_PER_INSTANCE:
            element = _element_creating_tasks()
            where = f"{element}: " if element else ""
            raise LimitError(
                f"{where}the instance would have more than {MAX_TASKS_PER_INSTANCE} tasks "
                "(too many parallel branches or multi-instance children)",
                limit="tasks",
                element=element,
                refused=True,
            )
        self.live += count


def _element_creating_tasks() -> str | None:
    # The innermost SpiffWorkflow frame working on a task (``my_task``) is the
    # gateway or multi-instance task whose children are being created.
    frame = sys._getframe(1)
    while frame is not None:
        task = frame.f_locals.get("my_task")
        bpmn_id = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
        if isinstance(bpmn_id, str):
            return bpmn_id
        frame = frame.f_back  # type: ignore[assignment]
    return None


class _GuardedTasks(dict[Any, Any]):
    """A workflow's ``tasks`` mapping that refuses to grow past the instance's budget.

    ``Task.__init__`` registers each new task here before linking it anywhere,
    so a refused task leaves no trace in the tree.
    """

    __slots__ = ("_budget",)

    def __init__(self, budget: _TaskBudget, tasks: dict[Any, Any]) -> None:
        super().__init__(tasks)
        self._budget = budget

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self:
            self._budget.add(1)
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._budget.live -= 1

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self._budget.live -= 1
        return super().pop(key, *default)


class _GuardedSubprocesses(dict[Any, Any]):
    """The top workflow's ``subprocesses``: limits nesting and guards each new subprocess's tasks."""

    __slots__ = ("_budget",)

    def __init__(self, budget: _TaskBudget, subprocesses: dict[Any, Any]) -> None:
        super().__init__(subprocesses)
        self._budget = budget
        for subprocess in subprocesses.values():
            budget.live += len(subprocess.tasks)
            subprocess.tasks = _GuardedTasks(budget, subprocess.tasks)

    def __setitem__(self, key: Any, subprocess: Any) -> None:
        depth = getattr(subprocess, "depth", 0)
        if depth > MAX_CALL_DEPTH:
            caller = self._budget.top.get_task_from_id(key)
            element = caller.task_spec.bpmn_id if caller is not None else None
            raise LimitError(
                f"{element}: subprocesses and call activities are nested more than {MAX_CALL_DEPTH} "
                "deep (does a call activity call its own process without a condition that ends it?)",
                limit="call depth",
                element=element,
            )
        if not isinstance(subprocess.tasks, _GuardedTasks):
            self._budget.add(len(subprocess.tasks))
            subprocess.tasks = _GuardedTasks(self._budget, subprocess.tasks)
        super().__setitem__(key, subprocess)

    def __delitem__(self, key: Any) -> None:
        self._budget.live -= len(self[key].tasks)
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self._budget.live -= len(self[key].tasks)
        return super().pop(key, *default)


def guard_workflow(workflow: Any, *, new: bool) -> None:
    """Make *workflow* enforce :data:`MAX_CALL_DEPTH` and :data:`MAX_TASKS_PER_INSTANCE` as it runs.

    Checked where SpiffWorkflow registers a new task or subprocess, so a
    multi-instance task of a million children stops at the limit instead of
    first creating them all.

    A restored workflow already past a limit (the limit was lowered) can still
    be opened, cancelled or shrink; it cannot grow.

    :raises LimitError: a *new* workflow already has too many tasks.
    """
    budget = _TaskBudget(workflow)
    if new:
        # SpiffWorkflow predicts every task it can see ahead when it creates a workflow.
        budget.add(len(workflow.tasks))
    else:
        budget.live = len(workflow.tasks)
    workflow.tasks = _GuardedTasks(budget, workflow.tasks)
    workflow.subprocesses = _GuardedSubprocesses(budget, workflow.subprocesses)


def limit_in(exc: BaseException) -> LimitError | None:
    """Return the :class:`LimitError` behind *exc*, when SpiffWorkflow wrapped one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, LimitError):
            return current
        seen.add(id(current))
        inner = getattr(current, "exception", None)
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    return None


# -- state size ----------------------------------------------------------------


class _Overflow(Exception):
    """Raised by :class:`_CountingSink` once more than its limit was written."""


class _CountingSink:
    """A file that keeps no bytes, only counts them, and stops the writer past *limit*."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit

    def write(self, data: bytes) -> int:
        self.remaining -= len(data)
        if self.remaining < 0:
            raise _Overflow
        return len(data)


def may_exceed_state_size(state: Any, limit: int) -> bool:
    """Tell, fast, whether a workflow state (the serializer's dict) might not fit in *limit* bytes.

    The exact estimate (:func:`check_state_size`) walks the state in Python; this
    pickles it in C with the memo off, so that data shared by reference is
    written once per reference as JSON would, into a sink that stops at *limit*
    bytes. JSON is at most about six times the pickle (a control character is
    one byte pickled and six as JSON), so a state that passes here is still
    bounded, and its JSON text is checked exactly once built. ``True`` for what
    cannot be pickled this way (a cycle, an unexpected type): the caller then
    takes the exact walk.
    """
    pickler = pickle.Pickler(_CountingSink(limit), protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: every reference is written out again
    try:
        pickler.dump(state)
    except (_Overflow, RecursionError, pickle.PicklingError, TypeError, ValueError, AttributeError):
        return True
    return False


def check_state_size(state: Any, limit: int) -> None:
    """Refuse a workflow state (the serializer's dict) whose JSON text would pass *limit* bytes.

    Adds up the length the JSON text would have at least, without building it:
    data shared by reference (one string kept in 200 variables) is written once
    per reference, so the text can be far larger than the memory it came from.
    Stops as soon as the sum passes *limit*, so a cyclic structure stops too.
    Also refuses integers too long to write as JSON (Python's limit on int to
    text conversion, 4300 digits by default).

    :raises LimitError: too large; names the task data variable when it is one.
    """
    max_digits = sys.get_int_max_str_digits()
    total = 0
    # (value, the task data variable it is part of, whether it is a task's data mapping)
    stack: list[tuple[Any, str | None, bool]] = [(state, None, False)]
    while stack:
        value, variable, is_data = stack.pop()
        if isinstance(value, str):
            total += len(value) + 2
        elif isinstance(value, bool) or value is None:
            total += 5
        elif isinstance(value, int):
            if max_digits and _too_many_digits(value, max_digits):
                raise LimitError(
                    f"{_where(variable)}an integer of more than {max_digits} digits cannot be stored",
                    limit="state",
                    element=variable,
                    refused=True,
                )
            total += 1 + value.bit_length() // 3
        elif isinstance(value, dict):
            total += 2 + 4 * len(value)
            for key, item in value.items():
                total += len(key) if isinstance(key, str) else 8
                inner = str(key) if is_data else variable
                stack.append((item, inner, variable is None and key in _DATA_KEYS and isinstance(item, dict)))
        elif isinstance(value, list | tuple | set | frozenset):
            total += 2 + 2 * len(value)
            stack.extend((item, variable, False) for item in value)
        else:
            total += 8
        if total > limit:
            raise LimitError(
                f"{_where(variable)}the instance's state would be larger than {limit} bytes "
                f"(the limit, set with {STATE_BYTES_VARIABLE})",
                limit="state",
                element=variable,
                refused=True,
            )


def _too_many_digits(value: int, max_digits: int) -> bool:
    # bit_length * log10(2) estimates the digits; compare exactly only near the limit.
    estimate = value.bit_length() * 0.30103
    if estimate < max_digits - 2:
        return False
    return bool(abs(value) >= 10**max_digits)


def _where(variable: str | None) -> str:
    return f"variable {variable!r}: " if variable else ""


# -- deep models -----------------------------------------------------------------

_T = TypeVar("_T")
# SpiffWorkflow's parser recurses once per element along a sequence flow, and
# its task prediction once per task ahead: a chain of n tasks nests 2n frames
# or more. Past this many nested levels the rest runs in a fresh thread, which
# has its own stack and its own recursion count, while the caller waits.
# Raising sys.setrecursionlimit instead would be process-wide (every other
# thread would lose its RecursionError protection meanwhile) and could
# overflow the C stack of a thread with a small one.
_LEVELS_PER_THREAD = 100
_nesting = threading.local()


def in_fresh_thread(function: Callable[[], _T]) -> _T:
    """Run *function* in a new thread (with this context's variables) and wait for it.

    :raises BaseException: whatever *function* raised, re-raised here.
    """
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["value"] = context.run(function)
        except BaseException as exc:  # re-raised in the calling thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="procflow-deep-model")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result: _T = outcome["value"]
    return result


def _nested(method: Callable[..., _T]) -> Callable[..., _T]:
    """Wrap a method that recurses into itself so that deep recursion hops to fresh threads."""

    def call(*args: Any, **kwargs: Any) -> _T:
        depth = getattr(_nesting, "depth", 0)
        if depth >= _LEVELS_PER_THREAD:
            return in_fresh_thread(lambda: call(*args, **kwargs))
        _nesting.depth = depth + 1
        try:
            return method(*args, **kwargs)
        finally:
            _nesting.depth = depth

    call.procflow_nested = True  # type: ignore[attr-defined]
    return call


def allow_long_chains(spec: Any) -> None:
    """Let SpiffWorkflow predict the tasks of *spec* however long its chains are.

    ``TaskSpec._predict`` calls itself for each task ahead; each task spec of
    *spec* gets a wrapped ``_predict`` (an instance attribute, so the library's
    classes are left alone).
    """
    for task_spec in spec.task_specs.values():
        if not getattr(task_spec._predict, "procflow_nested", False):
            task_spec._predict = _nested(task_spec._predict)


class DeepProcessParser(SpiffProcessParser):
    """SpiffWorkflow's process parser, able to parse chains of thousands of elements."""

    def parse_node(self, node: Any) -> Any:
        return _nested(super().parse_node)(node)


class DeepBpmnParser(SpiffBpmnParser):
    """The Spiff BPMN parser with :class:`DeepProcessParser`."""

    PROCESS_PARSER_CLASS = DeepProcessParser
