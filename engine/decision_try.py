"""Try a decision table of a bundle (deployed or a draft) on inputs typed into the studio.

The table is evaluated as a business rule task evaluates it: parsed by
SpiffWorkflow's DMN parser, evaluated as a whole in an evaluator process
(:meth:`engine._sandbox.SandboxedEnvironment.decide`, the sandbox's two walls,
with the time limit of a case's scripts) against the organisation's current
parameters.

What is typed is each input column's *value* (what its cells compare), read
by the column's declared ``typeRef``. An input whose expression is a plain
variable name (``contract_value``) is that variable of the data, so outputs
that name it see it too; any other input expression
(``contract_value / parameters['approval_base_amount']``) is replaced, in a
copy of the table, by the value typed. Other variables the cells or outputs
name (``direct_procurement_limit``) are given as extra data.

Which rows match is found in a second evaluation of a copy of the table with
hit policy COLLECT whose only output is each row's id; the outputs come from
the table itself, as a case gets them.
"""

from __future__ import annotations

import ast
import builtins
import copy
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy.orm as so
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.dmn.specs.model import DecisionTable as SpiffDecisionTable
from SpiffWorkflow.dmn.specs.model import Output, OutputEntry
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from forms import parse_number

from ._evaluator import EvaluatorCrashed
from ._sandbox import RESERVED_DATA_NAMES, SandboxedEnvironment
from ._specs import BundleFile, parse_xml
from ._workflow import SCRIPT_TIME_LIMIT, OrganisationParameters
from .decision_check import DecisionTable, TableInput, read_decision_file
from .errors import DeploymentError, NotFoundError, ScriptError, ScriptTimeout
from .limits import DeepBpmnParser

#: The variable a tried input's value is given as, when its expression is not a plain name.
TRIED_INPUT = "tried_input_{index}"
_RULE_OUTPUT = "procflow_matched_rule"
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TRUE = frozenset({"true", "yes", "1", "ja", "kyllä", "on"})
_FALSE = frozenset({"false", "no", "0", "nej", "ei", "off"})
_NOT_DATA = RESERVED_DATA_NAMES | frozenset(dir(builtins)) | {"dmninputexpr"}


class MatchedRule(NamedTuple):
    """A row of the table that matched: rule id, row number (from 1) and annotation."""

    id: str
    row: int
    annotation: str


@dataclass(frozen=True)
class InputError:
    """Why a typed value was refused: ``kind`` (``required``, ``number``, ``integer``, ``boolean``,
    ``date``, ``datetime``) and a message in English."""

    kind: str
    message: str


@dataclass(frozen=True)
class DecisionTrial:
    """The outcome of trying a table.

    ``matched_rules`` in row order; ``used_rules`` the ids whose outputs
    ``outputs`` holds (the first match, or every match for COLLECT).
    ``input_errors`` are by input id (or ``data:<name>`` for extra data): then
    nothing was evaluated. ``error`` is the evaluation's failure, as a case would
    record it.
    """

    decision_id: str
    matched_rules: list[MatchedRule] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    input_errors: dict[str, InputError] = field(default_factory=dict)
    used_rules: list[str] = field(default_factory=list)


def find_decision(files: Iterable[BundleFile], decision_id: str) -> tuple[BundleFile, DecisionTable]:
    """Return the DMN file holding decision *decision_id* and its table.

    :raises NotFoundError: no DMN file of *files* has that decision.
    :raises DeploymentError: a DMN file is not well-formed XML.
    """
    for item in files:
        if item.kind != "dmn":
            continue
        for table in read_decision_file(item):
            if table.decision_id == decision_id:
                return item, table
    raise NotFoundError(f"No decision {decision_id!r} in the bundle")


def data_names(table: DecisionTable) -> list[str]:
    """Return the variables of the case the table's cells and outputs read besides its inputs, sorted."""
    names: set[str] = set()
    for rule in table.rules:
        for text in [*rule.inputs, *rule.outputs]:
            names |= _names(text)
    return sorted(names - {name for item in table.inputs if (name := _plain_name(item))} - _NOT_DATA)


def _names(text: str | None) -> set[str]:
    if not text:
        return set()
    for candidate in (text.replace("?", " dmninputexpr "), f"v {text}"):
        try:
            tree = ast.parse(candidate, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - {"v"}
    return set()


def _plain_name(item: TableInput) -> str | None:
    expression = (item.expression or "").strip()
    if _IDENTIFIER.match(expression) and expression not in _NOT_DATA:
        return expression
    return None


def parse_input(item: TableInput, raw: str) -> Any:
    """Return *raw* (text typed for the input column *item*) as a value of its ``typeRef``.

    :raises ValueError: with an :class:`InputError` as its only argument.
    """
    kind = item.type_ref.lower()
    text = raw.strip()
    try:
        if kind in ("number", "double", "decimal", "float"):
            return parse_number(text)
        if kind in ("integer", "long", "int"):
            return parse_number(text, integer=True)
    except ValueError:
        whole = kind in ("integer", "long", "int")
        what = "a whole number" if whole else "a number"
        raise ValueError(InputError("integer" if whole else "number", f"{raw!r} is not {what}")) from None
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(InputError("boolean", f"{raw!r} is neither true nor false"))
    if kind == "date":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(InputError("date", f"{raw!r} is not a date (YYYY-MM-DD)")) from None
    if kind == "datetime":
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(InputError("datetime", f"{raw!r} is not a date and time")) from None
    if kind == "string":
        return raw
    return _loose(raw)


def _loose(raw: str) -> Any:
    """A value of no declared type: a number if it reads as one, true/false, else the text."""
    try:
        return parse_number(raw)
    except ValueError:
        pass
    if raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return raw


def try_decision(
    files: Iterable[BundleFile],
    decision_id: str,
    inputs: Mapping[str, Any],
    *,
    session: so.Session,
    organisation_id: int,
    data: Mapping[str, Any] | None = None,
) -> DecisionTrial:
    """Evaluate decision *decision_id* of *files* on *inputs* (by input id) in the sandbox.

    A text value is read by its column's ``typeRef`` (:func:`parse_input`);
    other values are used as they are. An input left empty is refused unless
    no row compares it. *data* gives the other variables the table reads
    (:func:`data_names`), text read as numbers where they are numbers. The
    organisation's current parameters are read from *session* when the table
    names ``parameters``.

    :raises NotFoundError: the bundle has no decision *decision_id*.
    :raises DeploymentError: its DMN file is not well-formed XML.
    """
    item, table = find_decision(files, decision_id)
    context: dict[str, Any] = {}
    errors: dict[str, InputError] = {}
    for name, value in (data or {}).items():
        if isinstance(value, str):
            if value.strip():
                context[name] = _loose(value)
        else:
            context[name] = value
    values: list[Any] = []
    for index, column in enumerate(table.inputs):
        value = inputs.get(column.id)
        if value is None or (isinstance(value, str) and not value.strip()):
            rows = [str(rule.row) for rule in table.rules if rule.inputs[index] is not None]
            if rows:
                errors[column.id] = InputError(
                    "required", f"no value for {column.title!r}; rows {', '.join(rows)} compare it"
                )
            values.append(None)
            continue
        if isinstance(value, str):
            try:
                value = parse_input(column, value)
            except ValueError as exc:
                errors[column.id] = exc.args[0]
        values.append(value)
    if errors:
        return DecisionTrial(decision_id, input_errors=errors)
    try:
        spiff_table = _spiff_table(item, decision_id)
    except DeploymentError as exc:
        return DecisionTrial(decision_id, error=str(exc))
    tried = _with_inputs(spiff_table, table, values, context)
    environment = SandboxedEnvironment(
        time_limit=SCRIPT_TIME_LIMIT,
        extra_globals={"parameters": OrganisationParameters(session, organisation_id)},
    )
    try:
        outputs = environment.decide(tried, dict(context), element=decision_id)
        found = environment.decide(_rule_ids(tried), dict(context), element=decision_id)
    except ScriptError as exc:
        return DecisionTrial(decision_id, error=_failure(exc))
    by_id = {rule.id: rule for rule in table.rules}
    matched = [
        MatchedRule(rule_id, by_id[rule_id].row, by_id[rule_id].annotation)
        for rule_id in found.get(_RULE_OUTPUT, [])
        if rule_id in by_id
    ]
    used = [rule.id for rule in matched] if table.hit_policy == "COLLECT" else [r.id for r in matched[:1]]
    return DecisionTrial(decision_id, matched_rules=matched, outputs=dict(outputs), used_rules=used)


def _failure(exc: ScriptError) -> str:
    # A decision's errors come back from the evaluator as ScriptError, a timeout by its message.
    if isinstance(exc, ScriptTimeout | EvaluatorCrashed) or "time limit" in exc.message:
        return f"the evaluation was stopped: {exc.message}"
    return exc.message


def _spiff_table(item: BundleFile, decision_id: str) -> SpiffDecisionTable:
    """The table of *decision_id* as SpiffWorkflow parses it (what a business rule task evaluates)."""
    parser = DeepBpmnParser(validator=VALIDATOR)
    try:
        parser.add_dmn_xml(parse_xml(item.content, item.name), filename=item.name)
        dmn = parser.dmn_parsers[decision_id]
        dmn.parse()
    except ValidationException as exc:
        raise DeploymentError(str(exc.args[0]) if exc.args else str(exc), file=item.name) from exc
    except KeyError as exc:
        raise DeploymentError(f"the decision table lacks {exc}", file=item.name, element=decision_id) from exc
    tables = dmn.decision.decisionTables
    if not tables:
        raise DeploymentError("the decision has no decision table", file=item.name, element=decision_id)
    table: SpiffDecisionTable = tables[0]
    return table


def _with_inputs(
    spiff_table: SpiffDecisionTable, table: DecisionTable, values: list[Any], context: dict[str, Any]
) -> SpiffDecisionTable:
    """A copy of the table whose inputs read *values* (put into *context*); see the module documentation."""
    tried = copy.deepcopy(spiff_table)
    for index, (spiff_input, column) in enumerate(zip(tried.inputs, table.inputs, strict=False)):
        name = _plain_name(column)
        if name is None:
            name = TRIED_INPUT.format(index=index)
            # In parentheses: SpiffWorkflow appends cells such as "in (...)" to the expression's text.
            spiff_input.expression = f"({name})"
        context[name] = values[index]
    return tried


def _rule_ids(table: SpiffDecisionTable) -> SpiffDecisionTable:
    """A copy of *table* that collects the id of every matching row (and evaluates no output)."""
    marker = copy.deepcopy(table)
    marker.hit_policy = "COLLECT"
    output = Output(_RULE_OUTPUT, "", _RULE_OUTPUT, "string")
    marker.outputs = [output]
    for rule in marker.rules:
        entry = OutputEntry(f"{rule.id}_{_RULE_OUTPUT}", output)
        entry.text = repr(rule.id)
        rule.outputEntries = [entry]
    return marker
