"""Decision tables checked at deploy: overlapping rows, gaps, and cells the engine reads otherwise.

A table is checked as the engine evaluates it (SpiffWorkflow's ``DMNEngine`` in
the sandbox), not as FEEL would read it. For an input expression ``E`` a cell

- ``-`` or empty matches anything;
- with a ``?`` is an expression in which ``?`` stands for the input's value
  (``1 <= ? < 5``, ``? in ('a', 'b')``);
- that is a Python expression by itself is compared for equality,
  ``(E) == (cell)`` (``'SE'``, ``3``, ``True``; also ``'a', 'b'``, a tuple
  that never equals one value, and ``not('x')``, which is ``False``);
- otherwise is appended to ``E`` as text (``< 5``, ``>= 10``, ``!= 'other'``),
  so ``in (...)`` after a plain name joins into one unknown name.

Each input column is cut into the pieces its cells distinguish: for a number,
the points the cells name and the open intervals between them (only whole
numbers for ``integer``); for text, each value named and "any other value";
for ``boolean``, true and false. A cell is then the set of pieces it matches,
found by evaluating it on one value of each piece. A cell whose value depends
on the case or on an organisation parameter (``< parameters['limit']``) is not
analysed: it may match anything.

At deploy (:func:`check_decision_tables`) a ``UNIQUE`` table (the default hit
policy) whose rows can both match one input is refused, naming both rules and
an input that matches them; inputs no row matches (gaps), cells the engine
cannot read or reads otherwise, and what the cells not analysed leave open
are warnings. Nothing here evaluates anything: the constants are read with
``ast.literal_eval``.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from ._specs import BundleFile, parse_xml
from .errors import DeploymentError, Problem

#: Input ``typeRef`` values read as numbers, and those of whole numbers only.
NUMBER_TYPES = frozenset({"number", "double", "decimal", "float"})
INTEGER_TYPES = frozenset({"integer", "long", "int"})
#: At most this many gaps, and possible gaps or overlaps, are reported per table.
MAX_FINDINGS = 8
#: The gap search stops after looking at this many pieces of columns (a table of many rows and columns).
MAX_COMBINATIONS = 200_000

# What SpiffWorkflow puts in place of '?' (outside quotes) before it evaluates a cell.
_INPUT_NAME = "dmninputexpr"
#: Longer cells are not analysed (a warning says so): reading them is left to the sandbox at run time.
MAX_CELL_CHARS = 2000
#: Tables with more rules are not analysed: the overlap check compares every two rules in the web process.
MAX_RULES = 500
_FEEL_RANGE = re.compile(r"^\s*([\[\(\]])\s*(.+?)\s*\.\.\s*(.+?)\s*([\]\)\[])\s*$")
_FEEL_WORDS = {"true": "True", "false": "False", "null": "None"}
_COMPARISONS: dict[type, tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Eq: ("==", lambda a, b: a == b),
    ast.NotEq: ("!=", lambda a, b: a != b),
    ast.Lt: ("<", lambda a, b: a < b),
    ast.LtE: ("<=", lambda a, b: a <= b),
    ast.Gt: (">", lambda a, b: a > b),
    ast.GtE: (">=", lambda a, b: a >= b),
    ast.In: ("in", lambda a, b: a in b),
    ast.NotIn: ("not in", lambda a, b: a not in b),
}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_ORDERINGS = frozenset({"<", "<=", ">", ">="})


# -- the table as the file has it ------------------------------------------------------------


@dataclass(frozen=True)
class TableInput:
    """One input column: its id, label, input expression and declared type (``typeRef``)."""

    id: str
    label: str
    expression: str | None
    type_ref: str

    @property
    def title(self) -> str:
        """What people call the column: its label, else its expression, else its id."""
        return self.label or self.expression or self.id


@dataclass(frozen=True)
class TableOutput:
    """One output column: the task data variable ``name`` it sets."""

    id: str
    label: str
    name: str
    type_ref: str

    @property
    def title(self) -> str:
        """Its label, else its variable name."""
        return self.label or self.name or self.id


@dataclass(frozen=True)
class TableRule:
    """One row: cells per input (``None`` matches anything) and output expressions, in column order."""

    id: str
    row: int
    line: int | None
    inputs: tuple[str | None, ...]
    outputs: tuple[str, ...]
    annotation: str
    input_lines: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class DecisionTable:
    """A decision's table as its DMN file states it, with the file's line numbers."""

    file: str
    decision_id: str
    decision_name: str
    id: str
    hit_policy: str
    line: int | None
    inputs: tuple[TableInput, ...]
    outputs: tuple[TableOutput, ...]
    rules: tuple[TableRule, ...]

    @property
    def title(self) -> str:
        """The decision's name, else its id."""
        return self.decision_name or self.decision_id


def _local(element: Any) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _children(element: Any, name: str) -> list[Any]:
    return [child for child in element if _local(child) == name]


def _text(element: Any) -> str | None:
    found = _children(element, "text")
    return found[0].text if found else ""


def read_decision_tables(root: Any, file_name: str) -> list[DecisionTable]:
    """Return the decision tables of a parsed DMN document, in file order.

    Cells are read as SpiffWorkflow reads them: ``-`` and an empty ``text`` match anything.
    """
    tables = []
    for decision in _children(root, "decision"):
        for table in _children(decision, "decisionTable"):
            tables.append(_read_table(decision, table, file_name))
    return tables


def _read_table(decision: Any, table: Any, file_name: str) -> DecisionTable:
    inputs = []
    for item in _children(table, "input"):
        expressions = _children(item, "inputExpression")
        expression = _text(expressions[0]) if expressions else None
        inputs.append(
            TableInput(
                id=item.get("id", ""),
                label=item.get("label", ""),
                expression=expression or None,
                type_ref=(expressions[0].get("typeRef", "") if expressions else "").strip(),
            )
        )
    outputs = [
        TableOutput(
            id=item.get("id", ""),
            label=item.get("label", ""),
            name=item.get("name", ""),
            type_ref=item.get("typeRef", ""),
        )
        for item in _children(table, "output")
    ]
    rules = []
    for row, rule in enumerate(_children(table, "rule"), start=1):
        entries = _children(rule, "inputEntry")[: len(inputs)]
        cells = tuple(_cell(_text(entry)) for entry in entries)
        cells += (None,) * (len(inputs) - len(cells))
        descriptions = _children(rule, "description")
        rules.append(
            TableRule(
                id=rule.get("id", ""),
                row=row,
                line=rule.sourceline,
                inputs=cells,
                outputs=tuple(_text(entry) or "" for entry in _children(rule, "outputEntry")),
                annotation=(descriptions[0].text or "").strip() if descriptions else "",
                input_lines=tuple(entry.sourceline for entry in entries),
            )
        )
    return DecisionTable(
        file=file_name,
        decision_id=decision.get("id", ""),
        decision_name=decision.get("name", ""),
        id=table.get("id", ""),
        hit_policy=(table.get("hitPolicy") or "UNIQUE").upper(),
        line=table.sourceline,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        rules=tuple(rules),
    )


def _cell(text: str | None) -> str | None:
    # SpiffWorkflow: no text matches anything, and so does '-'. Other text, even blanks, is a cell.
    return None if text is None or text == "-" else text


# -- reading one cell -------------------------------------------------------------------------


class _NotAnalysed(Exception):
    """A cell whose matches cannot be known before the table runs; the message says why."""


@dataclass
class _Reading:
    """What a cell compares: a test of the input's value, the constants it compares it with."""

    test: Callable[[Any], bool] | None = None  # None: matches anything
    constants: list[Any] = field(default_factory=list)
    orderings: bool = False  # compares with <, <=, >, >=
    not_analysed: str | None = None
    misread: str | None = None  # how the engine reads it differently from what it seems to say


def read_cell(expression: str | None, text: str | None) -> _Reading:
    """Read one cell of the column whose input expression is *expression*, as the engine evaluates it."""
    if text is None:
        return _Reading()
    try:
        return _read(expression, text)
    except _NotAnalysed as exc:
        return _Reading(not_analysed=str(exc))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _Reading(not_analysed="it cannot be read", misread=_unreadable(text))


def _replace_question_marks(text: str) -> str:
    """Put the input's name in place of each '?' outside quotes, as SpiffWorkflow does, in linear time.

    SpiffWorkflow's pattern replaces a '?' when the quotes after it pair up
    (an even number of ``'`` and ``"`` follow it); this counts them from the end
    instead of matching the lookahead again at every '?' (quadratic on a long cell).
    """
    parts: list[str] = []
    quotes_after = 0
    for char in reversed(text):
        if char == "?" and quotes_after % 2 == 0:
            parts.append(_INPUT_NAME)
            continue
        if char in "'\"":
            quotes_after += 1
        parts.append(char)
    return "".join(reversed(parts))


def _read(expression: str | None, text: str) -> _Reading:
    if len(text) > MAX_CELL_CHARS:
        raise _NotAnalysed(f"it is longer than {MAX_CELL_CHARS} characters")
    if "?" in text:
        replaced = _replace_question_marks(text)
        if _INPUT_NAME in replaced:
            reading = _Reading()
            reading.test = _predicate(ast.parse(replaced, mode="eval").body, reading)
            return reading
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return _appended(expression, text)
    return _equality(node, text)


def _equality(node: ast.expr, text: str) -> _Reading:
    if isinstance(node, ast.Name) and node.id in _FEEL_WORDS:
        word = node.id
        message = f"{word!r} is not a value here (Python is): the engine looks for a variable {word!r}"
        return _Reading(not_analysed="it names a variable", misread=f"{message}; write {_FEEL_WORDS[word]}")
    value = _constant(node)
    reading = _Reading(test=lambda x: x == value)
    if isinstance(value, tuple | list | set | frozenset):
        reading.misread = (
            f"the engine compares the input with the whole list {text.strip()}, so this cell matches "
            f"no single value; to match any of them write ? in ({text.strip().strip('[]()')})"
        )
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        reading.misread = (
            f"the engine reads {text.strip()} as Python's not, so this cell compares the input with "
            f"{value!r}; to exclude values write != 'x' or ? not in ('x', 'y')"
        )
        reading.constants.append(value)
    else:
        reading.constants.append(value)
    return reading


def _appended(expression: str | None, text: str) -> _Reading:
    ast.parse(f"v {text}", mode="eval")  # what SpiffWorkflow tries; SyntaxError: the cell is unreadable
    if not expression:
        raise _NotAnalysed("its input has no expression")
    joined = expression + text
    try:
        node = ast.parse(joined, mode="eval").body
        own = ast.dump(ast.parse(expression, mode="eval").body)
    except SyntaxError:
        return _Reading(
            not_analysed="it cannot be read", misread=f"the engine evaluates {joined!r}, which is not Python"
        )
    if not isinstance(node, ast.Compare) or ast.dump(node.left) != own:
        if re.search(r"\w$", expression) and re.match(r"\w", text):
            return _Reading(
                not_analysed="it does not compare the input",
                misread=(
                    f"the engine joins the input expression and the cell into {joined!r}, which does not "
                    f"compare {expression!r}; write ? {text.strip()}"
                ),
            )
        raise _NotAnalysed(f"the engine evaluates {joined!r}, which compares more than the input")
    reading = _Reading()
    compare = ast.Compare(left=ast.Name(_INPUT_NAME, ast.Load()), ops=node.ops, comparators=node.comparators)
    reading.test = _predicate(compare, reading)
    return reading


def _predicate(node: ast.expr, reading: _Reading) -> Callable[[Any], bool]:
    """A test of the input's value equivalent to *node*, where the input is called ``dmninputexpr``."""
    if isinstance(node, ast.BoolOp):
        parts = [_predicate(value, reading) for value in node.values]
        if isinstance(node.op, ast.And):
            return lambda x: all(part(x) for part in parts)
        return lambda x: any(part(x) for part in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _predicate(node.operand, reading)
        return lambda x: not inner(x)
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        pairs = [_comparison(operands[i], op, operands[i + 1], reading) for i, op in enumerate(node.ops)]
        if len(pairs) == 1:
            return pairs[0]
        return lambda x: all(pair(x) for pair in pairs)
    raise _NotAnalysed(_why_not(node))


def _comparison(left: ast.expr, op: ast.cmpop, right: ast.expr, reading: _Reading) -> Callable[[Any], bool]:
    if type(op) not in _COMPARISONS:
        raise _NotAnalysed(f"it compares with {type(op).__name__.lower()}")
    symbol, compare = _COMPARISONS[type(op)]
    left_is_input, right_is_input = _is_input(left), _is_input(right)
    if left_is_input and right_is_input:
        raise _NotAnalysed("it compares the input with itself")
    if not left_is_input and not right_is_input:
        outcome = bool(compare(_constant(left), _constant(right)))
        return lambda x: outcome
    constant = _constant(right if left_is_input else left)
    if right_is_input and symbol in ("in", "not in"):
        raise _NotAnalysed("it looks for a value in the input")
    if symbol in ("in", "not in"):
        if not isinstance(constant, tuple | list | set | frozenset):
            raise _NotAnalysed(f"it looks for the input in {constant!r}")
        reading.constants.extend(constant)
    else:
        reading.constants.append(constant)
        reading.orderings |= symbol in _ORDERINGS
    if left_is_input:
        return lambda x: bool(compare(x, constant))
    flipped = _COMPARISONS[next(k for k, v in _COMPARISONS.items() if v[0] == _FLIPPED[symbol])][1]
    return lambda x: bool(flipped(x, constant))


def _is_input(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == _INPUT_NAME


def _constant(node: ast.expr) -> Any:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _constant(node.operand)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise _NotAnalysed(_why_not(node)) from None


def _why_not(node: ast.expr) -> str:
    names = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id != _INPUT_NAME})
    source = ast.unparse(node)
    if "parameters" in names:
        return f"it depends on {source}, an organisation parameter known only when the table runs"
    if names:
        return f"it depends on {', '.join(names)} of the case, known only when the table runs"
    return f"{source} is not a constant"


def _unreadable(text: str) -> str:
    feel = _FEEL_RANGE.match(text)
    if feel:
        opening, low, high, closing = feel.groups()
        low_op = "<=" if opening == "[" else "<"
        high_op = "<=" if closing == "]" else "<"
        return (
            f"the engine cannot read {text.strip()} (a FEEL range; cells here are Python): "
            f"write {low} {low_op} ? {high_op} {high}"
        )
    return f"the engine cannot read {text.strip() or 'a blank cell'}: a cell is '-', a value, or a comparison"


# -- pieces of a column -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """Part of a column's values that every cell treats alike, with one value to test it on."""

    value: Any
    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False
    other: bool = False  # "any other value" of a text column


class _OtherText(str):
    """A text different from every value the column names."""

    __slots__ = ()


@dataclass
class _Column:
    """One input column cut into pieces, with the set of pieces each row's cell matches.

    A set of pieces is a bit mask: bit *i* stands for ``pieces[i]``.
    """

    input: TableInput
    kind: str  # "number", "integer", "text", "boolean", or "" (not analysed)
    pieces: list[_Piece]
    cells: list[int | None]  # per rule; None: not analysed
    readings: list[_Reading]

    @property
    def everything(self) -> int:
        return (1 << len(self.pieces)) - 1


def _bits(mask: int) -> list[int]:
    """The pieces of a bit mask, in order."""
    found = []
    while mask:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


def _column(item: TableInput, cells: Sequence[str | None]) -> _Column:
    readings = [read_cell(item.expression, text) for text in cells]
    kind = _kind(item.type_ref, readings)
    for reading in readings:
        if reading.test is not None and reading.not_analysed is None:
            reading.not_analysed = _kind_mismatch(kind, item.type_ref, reading)
    usable = [r for r in readings if r.test is not None and r.not_analysed is None]
    pieces = _pieces(kind, [c for r in usable for c in r.constants]) if kind else [_Piece(value=None)]
    sets: list[int | None] = []
    seen: dict[str | None, int | None] = {}  # cells of the same text match the same pieces
    for text, reading in zip(cells, readings, strict=True):
        if text not in seen:
            seen[text] = _matches(reading, pieces)
        elif seen[text] is None:
            reading.not_analysed = reading.not_analysed or "it cannot be compared"
        sets.append(seen[text])
    return _Column(input=item, kind=kind, pieces=pieces, cells=sets, readings=readings)


def _matches(reading: _Reading, pieces: Sequence[_Piece]) -> int | None:
    """The pieces *reading* matches, as a bit mask; ``None`` if not analysed (with the reason)."""
    if reading.not_analysed is not None:
        return None
    test = reading.test
    if test is None:
        return (1 << len(pieces)) - 1
    try:
        # As a binary numeral, highest piece first: setting bits one by one is quadratic in big masks.
        mask = int("0" + "".join("1" if test(piece.value) else "0" for piece in reversed(pieces)), 2)
    except Exception as exc:  # a comparison Python refuses for these values
        reading.not_analysed = f"comparing it fails ({type(exc).__name__}: {exc})"
        return None
    return mask


def _kind(type_ref: str, readings: Iterable[_Reading]) -> str:
    declared = type_ref.lower()
    if declared in NUMBER_TYPES:
        return "number"
    if declared in INTEGER_TYPES:
        return "integer"
    if declared == "string":
        return "text"
    if declared == "boolean":
        return "boolean"
    if declared:
        return ""  # dates, durations...: not analysed
    constants = [c for r in readings if r.test is not None and r.not_analysed is None for c in r.constants]
    if constants and all(isinstance(c, bool) for c in constants):
        return "boolean"
    if constants and all(isinstance(c, int | float) and not isinstance(c, bool) for c in constants):
        return "number"
    if constants and all(isinstance(c, str) for c in constants):
        return "text"
    return ""


def _kind_mismatch(kind: str, type_ref: str, reading: _Reading) -> str | None:
    if not kind:
        declared = f"of type {type_ref}" if type_ref else "without a declared type"
        return f"inputs {declared} are not analysed"
    wanted: dict[str, Callable[[Any], bool]] = {
        "number": lambda c: isinstance(c, int | float) and not isinstance(c, bool),
        "integer": lambda c: isinstance(c, int | float) and not isinstance(c, bool),
        "text": lambda c: isinstance(c, str),
        "boolean": lambda c: isinstance(c, bool),
    }
    odd = [c for c in reading.constants if not wanted[kind](c)]
    if odd:
        return f"it compares the {type_ref or kind} input with {odd[0]!r}"
    if reading.orderings and kind in ("text", "boolean"):
        return f"it orders {kind} values"
    return None


def _pieces(kind: str, constants: list[Any]) -> list[_Piece]:
    if kind == "boolean":
        return [_Piece(value=True), _Piece(value=False)]
    if kind == "text":
        named = sorted({c for c in constants if isinstance(c, str)})
        other = "other"
        while other in named:
            other += "*"
        return [*(_Piece(value=v) for v in named), _Piece(value=_OtherText(other), other=True)]
    points = sorted({c for c in constants if isinstance(c, int | float) and math.isfinite(c)})
    whole = kind == "integer"
    pieces = []
    bounds = [-math.inf, *points, math.inf]
    for low, high in itertools.pairwise(bounds):
        between = _between(low, high, whole=whole)
        if between is not None:
            pieces.append(_Piece(value=between, low=low, high=high))
        if high != math.inf and (not whole or float(high).is_integer()):
            pieces.append(_Piece(value=high, low=high, high=high, low_closed=True, high_closed=True))
    return pieces


def _between(low: float, high: float, *, whole: bool) -> float | int | None:
    """A value strictly between *low* and *high* (a whole one if *whole*), preferring whole numbers."""
    if low == -math.inf and high == math.inf:
        return 0
    if low == -math.inf:
        return math.ceil(high) - 1
    if high == math.inf:
        return math.floor(low) + 1
    candidate = math.floor(low) + 1
    if candidate < high:
        return candidate
    return None if whole else (low + high) / 2


# -- describing pieces ------------------------------------------------------------------------


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def describe(column: _Column, chosen: int) -> str | None:
    """Say which values the *chosen* pieces (a bit mask) of *column* hold (``None``: any value)."""
    if chosen == column.everything:
        return None
    name = column.input.title
    indexes = _bits(chosen)
    if column.kind in ("text", "boolean"):
        named = [column.pieces[i].value for i in indexes if not column.pieces[i].other]
        if column.kind == "text" and any(column.pieces[i].other for i in indexes):
            left_out = [p.value for i, p in enumerate(column.pieces) if not chosen >> i & 1 and not p.other]
            return f"{name} is none of {', '.join(map(repr, left_out))}"
        if len(named) == 1:
            return f"{name} = {named[0]!r}"
        return f"{name} is one of {', '.join(map(repr, named))}"
    parts = [_interval(name, *run, whole=column.kind == "integer") for run in _runs(column, indexes)]
    if len(parts) > MAX_FINDINGS:
        parts = [*parts[:MAX_FINDINGS], f"{len(parts) - MAX_FINDINGS} more ranges"]
    return " or ".join(parts)


def _runs(column: _Column, indexes: list[int]) -> list[tuple[float, bool, float, bool]]:
    runs: list[tuple[float, bool, float, bool]] = []
    previous = -2
    for index in indexes:
        piece = column.pieces[index]
        if runs and index == previous + 1:
            low, low_closed, _, _ = runs[-1]
            runs[-1] = (low, low_closed, piece.high, piece.high_closed)
        else:
            runs.append((piece.low, piece.low_closed, piece.high, piece.high_closed))
        previous = index
    return runs


def _interval(name: str, low: float, low_closed: bool, high: float, high_closed: bool, *, whole: bool) -> str:
    if whole:  # 1 < x < 4 of whole numbers is 2 <= x <= 3
        if math.isfinite(low) and not low_closed:
            low, low_closed = math.floor(low) + 1, True
        if math.isfinite(high) and not high_closed:
            high, high_closed = math.ceil(high) - 1, True
    if low == high:
        return f"{name} = {_number(low)}"
    low_op = "<=" if low_closed else "<"
    high_op = "<=" if high_closed else "<"
    if low == -math.inf:
        return f"{name} {high_op} {_number(high)}"
    if high == math.inf:
        return f"{name} {'>=' if low_closed else '>'} {_number(low)}"
    return f"{_number(low)} {low_op} {name} {high_op} {_number(high)}"


def _example(column: _Column, chosen: int) -> str | None:
    """One value of the *chosen* pieces (a bit mask), to show (``None`` when any value will do)."""
    if chosen == column.everything:
        return None
    piece = column.pieces[(chosen & -chosen).bit_length() - 1]
    if piece.other:
        named = [p.value for p in column.pieces if not p.other]
        return f"{column.input.title} = a value other than {', '.join(map(repr, named))}"
    value = piece.value
    shown = _number(value) if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)
    return f"{column.input.title} = {shown}"


def _combination(columns: Sequence[_Column], chosen: Sequence[int], *, say: Callable[..., str | None]) -> str:
    parts = [part for column, c in zip(columns, chosen, strict=True) if (part := say(column, c)) is not None]
    if len(parts) > 1:
        parts = [f"({part})" if " or " in part else part for part in parts]
    return " and ".join(parts) if parts else "any input"


# -- the checks -------------------------------------------------------------------------------


def decision_problems(table: DecisionTable) -> list[Problem]:
    """Return what is wrong with *table* (errors: overlapping rows of a UNIQUE table) and what to look at."""
    if len(table.rules) > MAX_RULES:
        return [
            Problem(
                f"{_where(table)} has {len(table.rules)} rules, more than the {MAX_RULES} analysed: "
                "overlaps and gaps are unknown",
                severity="warning",
                file=table.file,
                line=table.line,
                element=table.decision_id,
            )
        ]
    try:
        columns = [
            _column(item, [rule.inputs[i] for rule in table.rules]) for i, item in enumerate(table.inputs)
        ]
    except (OverflowError, MemoryError, RecursionError) as exc:  # numbers or cells beyond analysis
        return [
            Problem(
                f"{_where(table)} was not analysed ({type(exc).__name__}): overlaps and gaps are unknown",
                severity="warning",
                file=table.file,
                line=table.line,
                element=table.decision_id,
            )
        ]
    problems = _misreadings(table, columns)
    if table.hit_policy == "UNIQUE":
        problems += _overlaps(table, columns)
    problems += _gaps(table, columns)
    return problems


def _where(table: DecisionTable) -> str:
    return f"decision {table.decision_id!r}"


def _misreadings(table: DecisionTable, columns: Sequence[_Column]) -> list[Problem]:
    problems = []
    for c, column in enumerate(columns):
        for r, reading in enumerate(column.readings):
            if reading.misread:
                rule = table.rules[r]
                line = rule.input_lines[c] if c < len(rule.input_lines) else rule.line
                problems.append(
                    Problem(
                        f"{_where(table)}, rule {rule.id!r} (row {rule.row}), input {column.input.title!r}: "
                        f"{reading.misread}",
                        severity="warning",
                        file=table.file,
                        line=line or rule.line,
                        element=rule.id,
                    )
                )
    return problems


def _cell_sets(columns: Sequence[_Column], rule: int, unknown: str) -> list[int]:
    """The row's cells as piece sets; a cell not analysed counts as ``unknown`` ("all" or "none")."""
    return [
        cells if (cells := column.cells[rule]) is not None else (column.everything if unknown == "all" else 0)
        for column in columns
    ]


def _shortened(text: str, limit: int = 60) -> str:
    """Return *text* as a message quotes it: at most *limit* characters, an ellipsis where cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unanalysed(table: DecisionTable, columns: Sequence[_Column], rules: Iterable[int]) -> str:
    parts = []
    for r in rules:
        for c, column in enumerate(columns):
            reading = column.readings[r]
            if column.cells[r] is None and reading.not_analysed:
                cell = _shortened(table.rules[r].inputs[c] or "")
                parts.append(
                    f"row {table.rules[r].row} {cell!r} ({column.input.title}: {reading.not_analysed})"
                )
    return "; ".join(parts[:MAX_FINDINGS])


def _shared(column: _Column, a: int | None, b: int | None) -> int:
    """The pieces two cells both match, counting a cell not analysed as matching anything."""
    if a is None:
        return column.everything if b is None else b
    return a if b is None else a & b


def _overlaps(table: DecisionTable, columns: Sequence[_Column]) -> list[Problem]:
    problems: list[Problem] = []
    possible = 0
    sets = [[column.cells[r] for column in columns] for r in range(len(table.rules))]
    for j in range(len(table.rules)):
        for i in range(j):
            shared: list[int] = []
            unknown = False
            for column, a, b in zip(columns, sets[i], sets[j], strict=True):
                unknown |= a is None or b is None
                both = _shared(column, a, b)
                if not both:
                    break
                shared.append(both)
            if len(shared) < len(columns):
                continue
            first, second = table.rules[i], table.rules[j]
            example = _combination(columns, shared, say=_example)
            if not unknown:
                problems.append(
                    Problem(
                        f"{_where(table)} has hit policy UNIQUE, but rules {first.id!r} (row {first.row}) "
                        f"and {second.id!r} (row {second.row}) overlap: both match {example}. Make the rows "
                        "exclusive, or choose hit policy FIRST if the first matching row is to win.",
                        file=table.file,
                        line=second.line,
                        element=second.id,
                    )
                )
                return problems  # one refusal says enough; the table is edited and deployed again
            possible += 1
            if possible <= MAX_FINDINGS:
                problems.append(
                    Problem(
                        f"{_where(table)} has hit policy UNIQUE; rules {first.id!r} (row {first.row}) and "
                        f"{second.id!r} (row {second.row}) may both match {example}: not analysed: "
                        f"{_unanalysed(table, columns, (i, j))}",
                        severity="warning",
                        file=table.file,
                        line=second.line,
                        element=second.id,
                    )
                )
    return problems


def _gaps(table: DecisionTable, columns: Sequence[_Column]) -> list[Problem]:
    rules = range(len(table.rules))
    definite, complete = _uncovered(columns, [_cell_sets(columns, r, "all") for r in rules])
    problems = [
        Problem(
            f"{_where(table)}: no rule matches when {_combination(columns, gap, say=describe)}",
            severity="warning",
            file=table.file,
            line=table.line,
            element=table.decision_id,
        )
        for gap in definite[:MAX_FINDINGS]
    ]
    if len(definite) > MAX_FINDINGS:
        problems.append(_more(table, len(definite) - MAX_FINDINGS, "gaps"))
    if not complete:
        problems.append(_too_large(table))
    if all(cells is not None for column in columns for cells in column.cells):
        return problems
    possible, complete = _uncovered(columns, [_cell_sets(columns, r, "none") for r in rules])
    extra = [gap for gap in possible if not any(_within(gap, known) for known in definite)]
    for gap in extra[:MAX_FINDINGS]:
        candidates = [
            r
            for r in rules
            if all(
                cells is None or cells & g
                for cells, g in zip((c.cells[r] for c in columns), gap, strict=True)
            )
        ]
        problems.append(
            Problem(
                f"{_where(table)}: no rule may match when {_combination(columns, gap, say=describe)}, "
                f"unless a cell not analysed matches: {_unanalysed(table, columns, candidates)}",
                severity="warning",
                file=table.file,
                line=table.line,
                element=table.decision_id,
            )
        )
    if len(extra) > MAX_FINDINGS:
        problems.append(_more(table, len(extra) - MAX_FINDINGS, "possible gaps"))
    return problems


def _more(table: DecisionTable, count: int, what: str) -> Problem:
    return Problem(
        f"{_where(table)}: {count} more {what} not listed",
        severity="warning",
        file=table.file,
        line=table.line,
        element=table.decision_id,
    )


def _too_large(table: DecisionTable) -> Problem:
    return Problem(
        f"{_where(table)}: the search for gaps stopped early (too many combinations of inputs); "
        "more gaps than those listed may exist",
        severity="warning",
        file=table.file,
        line=table.line,
        element=table.decision_id,
    )


def _within(inner: Sequence[int], outer: Sequence[int]) -> bool:
    return all(a & ~b == 0 for a, b in zip(inner, outer, strict=True))


def _uncovered(columns: Sequence[_Column], rules: Sequence[Sequence[int]]) -> tuple[list[list[int]], bool]:
    """Return the combinations of pieces no rule matches, and whether the search finished.

    Column by column, the pieces are grouped by the rules still matching them
    (a bit mask of rules); a group no rule matches is a gap (any value of the
    columns after it).
    """
    # Per column and piece: the rules whose cell matches the piece.
    by_piece = [
        [
            sum(1 << r for r, cells in enumerate(rules) if cells[c] >> piece & 1)
            for piece in range(len(column.pieces))
        ]
        for c, column in enumerate(columns)
    ]
    gaps: list[list[int]] = []
    budget = [MAX_COMBINATIONS]

    def walk(index: int, matching: int, chosen: list[int]) -> None:
        if not matching:
            gaps.append(chosen + [column.everything for column in columns[index:]])
            return
        if index == len(columns) or budget[0] <= 0:
            return
        groups: dict[int, int] = {}
        for piece, matched in enumerate(by_piece[index]):
            still = matched & matching
            groups[still] = groups.get(still, 0) | 1 << piece
        budget[0] -= len(by_piece[index])
        for still, pieces in groups.items():
            walk(index + 1, still, [*chosen, pieces])

    walk(0, (1 << len(rules)) - 1, [])
    return gaps, budget[0] > 0


# -- at deploy and in the studio ---------------------------------------------------------------


def check_decision_tables(files: Iterable[BundleFile], roots: Mapping[str, Any]) -> list[Problem]:
    """Check every decision table of the bundle's DMN files; return the warnings.

    *roots* are the parsed documents by file name (as ``parse_bundle`` has them).

    :raises DeploymentError: a UNIQUE table with overlapping rows (file, line and id of the
        second rule; the message names both rules and an input both match).
    """
    warnings = []
    for item in files:
        if item.kind != "dmn" or item.name not in roots:
            continue
        for table in read_decision_tables(roots[item.name], item.name):
            for problem in decision_problems(table):
                if problem.severity == "error":
                    raise DeploymentError(
                        problem.message, file=problem.file, line=problem.line, element=problem.element
                    )
                warnings.append(problem)
    return warnings


def read_decision_file(item: BundleFile) -> list[DecisionTable]:
    """Parse one DMN file of a bundle and return its decision tables.

    :raises DeploymentError: the file is not well-formed XML (or carries a DOCTYPE).
    """
    return read_decision_tables(parse_xml(item.content, item.name), item.name)


def decision_file_problems(item: BundleFile) -> list[Problem]:
    """Return the deploy-time findings for one DMN file: errors (refusals) and warnings, in table order."""
    try:
        tables = read_decision_file(item)
    except DeploymentError as exc:
        return [exc.problem()]
    return [problem for table in tables for problem in decision_problems(table)]
