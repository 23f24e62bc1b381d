"""Check scripts and expressions against the sandbox without running them (the studio's lint).

The studio's modeler asks, while a process owner edits, whether the sandbox
would accept each gateway condition, script body, timer expression and the
like. :func:`check_code` answers with the compiler the engine itself uses
(:func:`engine._sandbox._compile`: RestrictedPython with the engine's policy),
so what it refuses here is exactly what would fail at run time, with the same
message and the line of the code it names. Nothing is ever evaluated.

Besides what the compiler refuses, a call of a builtin the sandbox forbids
(``open(...)``, ``eval(...)``, ``type(...)``) is reported: it compiles, but
fails whenever it runs.

At deploy, :func:`bpmn_code_problems` does the same for every condition,
script, timer and message payload of a BPMN file: what the compiler refuses is
an error (the deploy is refused, naming the element), a forbidden call a warning.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from ._sandbox import _FORBIDDEN, SCRIPT_FILENAME, _compile
from .errors import DataError, Problem, ScriptError

#: What the studio checks: an ``expression`` is evaluated for a value, a ``script`` is run for its effects.
KINDS: dict[str, str] = {"expression": "eval", "script": "exec"}
#: The longest text one check compiles (the longest shipped script has under 2,000 characters).
MAX_CODE_CHARS = 20_000
#: The most texts one :func:`check_codes` call compiles, and their total length.
MAX_CODES = 1_000
MAX_TOTAL_CHARS = 400_000

_FORBIDDEN_CALLS = frozenset(_FORBIDDEN)


@dataclass(frozen=True)
class CodeCheck:
    """The sandbox's verdict on one text: ``error`` is ``None`` when it would accept it.

    ``line`` is the line of *text* the error is on (1 for a one-line expression), when known.
    """

    kind: str
    text: str
    error: str | None = None
    line: int | None = None


def check_code(text: str, kind: str = "expression") -> CodeCheck:
    """Compile *text* as the sandbox does for *kind* (``"expression"`` or ``"script"``); run nothing.

    Leaves the sandbox's compile cache alone (a lint of a large model must not push
    out what running workflows compiled).

    :raises DataError: *kind* is unknown or *text* is longer than :data:`MAX_CODE_CHARS`.
    """
    mode = KINDS.get(kind)
    if mode is None:
        raise DataError(f"Unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if len(text) > MAX_CODE_CHARS:
        raise DataError(f"The {kind} has {len(text):,} characters; at most {MAX_CODE_CHARS:,} are checked")
    if mode == "eval" and not text.strip():
        return CodeCheck(kind, text, "the expression is empty", None)
    try:
        _compile.__wrapped__(text, mode)
    except ScriptError as err:
        return CodeCheck(kind, text, err.message, err.line or None)
    except (MemoryError, RecursionError):
        return CodeCheck(kind, text, "the code is nested too deeply to compile", None)
    forbidden = _forbidden_call(text, mode)
    if forbidden is not None:
        name, line = forbidden
        return CodeCheck(kind, text, f"{name}() is not allowed", line)
    return CodeCheck(kind, text)


def check_codes(items: Iterable[tuple[str, str]]) -> list[CodeCheck]:
    """Check each ``(kind, text)`` of *items* with :func:`check_code`, in order.

    :raises DataError: more than :data:`MAX_CODES` items or :data:`MAX_TOTAL_CHARS` characters in
        all, or one item refused by :func:`check_code` (the message says which, counting from 0).
    """
    checks: list[CodeCheck] = []
    total = 0
    for index, (kind, text) in enumerate(items):
        if index >= MAX_CODES:
            raise DataError(f"More than {MAX_CODES:,} expressions in one check")
        total += len(text)
        if total > MAX_TOTAL_CHARS:
            raise DataError(f"The expressions have more than {MAX_TOTAL_CHARS:,} characters in all")
        try:
            checks.append(check_code(text, kind))
        except DataError as exc:
            raise DataError(f"Expression {index}: {exc}") from None
    return checks


def _forbidden_call(text: str, mode: str) -> tuple[str, int | None] | None:
    """Return the first call of a forbidden builtin the code does not define itself, and its line."""
    tree = ast.parse(text, SCRIPT_FILENAME, mode)  # compiled above, so it parses
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            defined.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    calls = sorted(
        (node.lineno, node.col_offset, node.func.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FORBIDDEN_CALLS
        and node.func.id not in defined
    )
    return (calls[0][2], calls[0][0]) if calls else None


# -- at deploy ----------------------------------------------------------------------------------------

_BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
#: The elements of a BPMN file whose text the engine compiles, and how: (namespace, local name) → kind.
BPMN_CODE: dict[tuple[str, str], str] = {
    (_BPMN, "conditionExpression"): "expression",
    (_BPMN, "condition"): "expression",  # of a conditional event
    (_BPMN, "script"): "script",
    (_BPMN, "loopCardinality"): "expression",
    (_BPMN, "completionCondition"): "expression",
    (_BPMN, "timeDate"): "expression",
    (_BPMN, "timeDuration"): "expression",
    (_BPMN, "timeCycle"): "expression",
    (_SPIFF, "preScript"): "script",
    (_SPIFF, "postScript"): "script",
    (_SPIFF, "messagePayload"): "expression",
}


def bpmn_code_problems(root: Any, file_name: str) -> list[Problem]:
    """Compile every condition, script, timer and payload of a parsed BPMN file as the sandbox would.

    Returns an error for each text the sandbox's compiler refuses (the case would
    stop there the first time it ran it) and a warning for each call of a builtin
    the sandbox forbids at run time. Each names the file, the line of the code in
    the file and the id of the element it belongs to (the sequence flow of a
    condition, the task of a script). Nothing is run.
    """
    problems: list[Problem] = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        qname = etree.QName(node)
        kind = BPMN_CODE.get((qname.namespace or "", qname.localname))
        text = node.text or ""
        if kind is None or not text.strip():
            continue
        owner = next((n for n in node.iterancestors() if n.get("id")), None)
        element = owner.get("id") if owner is not None else None
        try:
            check = check_code(text, kind)
        except DataError as exc:
            problems.append(Problem(str(exc), file=file_name, line=node.sourceline, element=element))
            continue
        if check.error is None:
            continue
        # The code starts on the element's line, or on the next when the text begins with a newline.
        line = node.sourceline
        if line is not None and check.line:
            line += check.line - 1
        severity = "warning" if check.error.endswith("() is not allowed") else "error"
        what = "condition" if kind == "expression" else "script"
        problems.append(
            Problem(
                f"the sandbox refuses this {what} ({qname.localname}): {check.error}",
                severity=severity,
                file=file_name,
                line=line,
                element=element,
            )
        )
    return problems
