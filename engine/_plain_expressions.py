"""Plain expressions, evaluated in the engine's own process without a round trip to an evaluator.

Most gateway conditions are a comparison of task data with a constant:
``route == 'advice'``, ``amount > 100 and not urgent``, ``len(quotes) == 0``.
Sending each of them to an evaluator process (:mod:`engine._evaluator`) costs
more than evaluating it. An expression made only of the constructs below cannot
run code of anyone's, loop, or build a value bigger than the data it reads, so
it needs neither wall of the sandbox and is evaluated here:

- names of task data (or of the external context), and constants;
- comparisons (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``),
  ``and``, ``or``, ``not`` and unary ``-``/``+``;
- ``len(x)``, and ``x['key']`` or ``x[0]`` with a constant index;
- ``+``, ``-``, ``*``, ``/``, ``//`` and ``%`` of two numbers (``int`` or
  ``float``, of at most 63 bits when whole, and so is the result).

A plain script is one or more assignments of plain expressions to names
(``total = amount * 2``); a name assigned is read by the lines after it.

Everything else goes to the evaluator, and so does every plain expression or script that
fails here (an unknown name, a comparison of a text with a number, a missing
key), or whose value is not a scalar: the evaluator then raises the error the
sandbox always raised, and a list or dict comes back as its own copy. A name the
sandbox keeps for itself (``parameters``, ``date``, ``len`` as data...) also
goes there, as the sandbox's own names win over task data, and so does a script
assigning such a name or one starting with ``_``.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

# What the engine's caller is given back from here; anything else is evaluated again there.
SCALARS = (bool, int, float, str, Decimal, dt.date, type(None))
_CONSTANTS = (bool, int, float, str, type(None))
_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
# The largest whole number arithmetic here takes or gives: beyond it, the sandbox checks sizes.
_LARGEST = 2**63
# What a constant index may select from: no object with an __getitem__ of its own.
_INDEXABLE = (dict, list, tuple, str)

_GETITEM: Callable[[Any, Any], Any] = operator.getitem
Lookup = Callable[[str], Any]
Evaluator = Callable[[Lookup], Any]


class NotPlain(Exception):
    """The expression must be evaluated by the sandbox after all."""


@functools.lru_cache(maxsize=4096)
def plain_expression(source: str) -> Evaluator | None:
    """Return a function evaluating *source* given a name look-up, or None if *source* is not plain."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    try:
        return _build(tree.body)
    except NotPlain:
        return None


def evaluate_plain(
    source: str,
    context: Mapping[str, Any],
    external_context: Mapping[str, Any] | None,
    reserved: frozenset[str],
) -> Any:
    """Return the value of plain expression *source*; raise :class:`NotPlain` to leave it to the sandbox.

    *context* is the task data, looked up before *external_context*; a name in
    *reserved* (the sandbox's own names) is never looked up here.
    """
    evaluator = plain_expression(source)
    if evaluator is None:
        raise NotPlain(source)

    def lookup(name: str) -> Any:
        if name in reserved:
            raise NotPlain(name)
        if name in context:
            return context[name]
        if external_context is not None and name in external_context:
            return external_context[name]
        raise NotPlain(name)

    try:
        value = evaluator(lookup)
    except NotPlain:
        raise
    except Exception as exc:  # the sandbox words it as users know it
        raise NotPlain(source) from exc
    if not isinstance(value, SCALARS):
        raise NotPlain(source)
    return value


@functools.lru_cache(maxsize=4096)
def plain_script(source: str) -> tuple[tuple[str, Evaluator], ...] | None:
    """Return plain script *source* as (name, evaluator) pairs, one per assignment; None if not plain."""
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError):
        return None
    assignments = []
    for statement in tree.body:
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and not statement.targets[0].id.startswith("_")
        ):
            return None
        try:
            assignments.append((statement.targets[0].id, _build(statement.value)))
        except NotPlain:
            return None
    return tuple(assignments) if assignments else None


def execute_plain(
    source: str,
    context: Mapping[str, Any],
    external_context: Mapping[str, Any] | None,
    reserved: frozenset[str],
) -> dict[str, Any]:
    """Run plain script *source*; return the variables it assigns, or raise :class:`NotPlain`.

    Nothing is changed: the caller puts the variables into the task data. As
    for :func:`evaluate_plain`, a failure leaves the script to the sandbox.
    """
    assignments = plain_script(source)
    if assignments is None:
        raise NotPlain(source)
    assigned: dict[str, Any] = {}

    def lookup(name: str) -> Any:
        if name in reserved:
            raise NotPlain(name)
        if name in assigned:
            return assigned[name]
        if name in context:
            return context[name]
        if external_context is not None and name in external_context:
            return external_context[name]
        raise NotPlain(name)

    for name, evaluator in assignments:
        if name in reserved:
            raise NotPlain(name)
        try:
            value = evaluator(lookup)
        except NotPlain:
            raise
        except Exception as exc:
            raise NotPlain(source) from exc
        if not isinstance(value, SCALARS):
            raise NotPlain(source)
        assigned[name] = value
    return assigned


def _build(node: ast.expr) -> Evaluator:
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, _CONSTANTS):
            raise NotPlain(type(node.value).__name__)
        constant = node.value
        return lambda lookup: constant
    if isinstance(node, ast.Name):
        name = node.id
        return lambda lookup: lookup(name)
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.BoolOp):
        operands = [_build(value) for value in node.values]
        if isinstance(node.op, ast.And):
            return lambda lookup: _all(operands, lookup)
        return lambda lookup: _any(operands, lookup)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        unary = _UNARY[type(node.op)]
        operand = _build(node.operand)
        return lambda lookup: unary(_number_or_any(unary, operand(lookup)))
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _arithmetic(_ARITHMETIC[type(node.op)], _build(node.left), _build(node.right))
    if isinstance(node, ast.Call):
        return _length(node)
    if isinstance(node, ast.Subscript):
        return _index(node)
    raise NotPlain(type(node).__name__)


def _compare(node: ast.Compare) -> Evaluator:
    if not all(type(op) in _COMPARISONS for op in node.ops):
        raise NotPlain("comparison")
    left = _build(node.left)
    pairs = zip(node.ops, node.comparators, strict=True)
    steps = [(_COMPARISONS[type(op)], _build(right)) for op, right in pairs]

    def compare(lookup: Lookup) -> Any:
        current = left(lookup)
        result: Any = True
        for compare_with, right in steps:  # a < b < c: each pair, stopping at the first false one
            value = right(lookup)
            result = compare_with(current, value)
            if not result:
                return result
            current = value
        return result

    return compare


def _all(operands: list[Evaluator], lookup: Lookup) -> Any:
    value: Any = True
    for operand in operands:
        value = operand(lookup)
        if not value:
            return value
    return value


def _any(operands: list[Evaluator], lookup: Lookup) -> Any:
    value: Any = False
    for operand in operands:
        value = operand(lookup)
        if value:
            return value
    return value


def _number_or_any(unary: Callable[[Any], Any], value: Any) -> Any:
    # -x of a list or dict raises in the sandbox too; here it goes back to it to say so.
    if unary is not operator.not_ and not isinstance(value, int | float | Decimal):
        raise NotPlain("unary")
    return value


def _arithmetic(apply: Callable[[Any, Any], Any], left: Evaluator, right: Evaluator) -> Evaluator:
    def arithmetic(lookup: Lookup) -> Any:
        a, b = left(lookup), right(lookup)
        if not (_small_number(a) and _small_number(b)):
            raise NotPlain("arithmetic")
        value = apply(a, b)
        if not _small_number(value):
            raise NotPlain("arithmetic")
        return value

    return arithmetic


def _small_number(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, int) and -_LARGEST <= value <= _LARGEST


def _length(node: ast.Call) -> Evaluator:
    if not (
        isinstance(node.func, ast.Name)
        and node.func.id == "len"
        and len(node.args) == 1
        and not node.keywords
        and not isinstance(node.args[0], ast.Starred)
    ):
        raise NotPlain("call")
    argument = _build(node.args[0])

    def length(lookup: Lookup) -> int:
        value = argument(lookup)
        if not isinstance(value, dict | list | tuple | str):
            raise NotPlain("len")
        return len(value)

    return length


def _constant_index(node: ast.expr) -> str | int:
    """Return the key of ``x['key']``, ``x[1]`` or ``x[-1]``."""
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        return -node.operand.value
    if isinstance(node, ast.Constant) and type(node.value) in (str, int):
        key: str | int = node.value  # type: ignore[assignment]  # checked on the line above
        return key
    raise NotPlain("subscript")


def _index(node: ast.Subscript) -> Evaluator:
    key = _constant_index(node.slice)
    container = _build(node.value)

    def index(lookup: Lookup) -> Any:
        value: Any = container(lookup)
        if not isinstance(value, _INDEXABLE):
            raise NotPlain("subscript")
        return _GETITEM(value, key)

    return index
