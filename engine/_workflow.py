"""One operation on one instance: lock, restore, advance, write back.

Every public runtime call (start, complete, message, timer, retry) runs through
:class:`InstanceOperation` inside the caller's transaction, so the instance row,
its task index, jobs, subscriptions and audit events change together or not at
all.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
import sqlalchemy.orm as so
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from ._driver_sql import DriverStatement, Entity
from ._sandbox import SandboxedScriptEngine
from ._serializer import SERIALIZER
from ._submitted import exact_numbers
from .caches import OrganisationRef, definition_by_id, organisation_by_id
from .connectors import CONNECTORS, ConnectorContext, audited_params
from .db import is_postgresql
from .definitions import load_parsed
from .errors import ConflictError, NotFoundError, ProcflowError, ScriptError
from .limits import check_due_in, check_timer_value, guard_workflow, is_iso_duration, limit_in
from .models import (
    Base,
    HumanTask,
    HumanTaskExclusion,
    Job,
    Membership,
    Organisation,
    Parameter,
    ProcessDefinition,
    ProcessInstance,
    User,
    utcnow,
)
from .notifications import TaskToNotify, queue_task_emails
from .projection import (
    REPORT_TABLE_NAME,
    VALUE_TABLE_NAME,
    CaseReportRows,
    case_report_rows,
    upsert_from_rows,
    write_case_report_rows,
)
from .script_context import spiff_arena_helpers

# SpiffWorkflow's task iterator stops at depth 1000 and re-walks the whole tree
# on every step; sequence-flow loops add a level per pass. Compacting finished
# history keeps both the depth and the cost of a step bounded.
COMPACT_DEPTH = 60
COMPACT_EVERY_STEPS = 50
MAX_ENGINE_STEPS = 100_000
MAX_EVENT_ROUTING_DEPTH = 8
SCRIPT_TIME_LIMIT = 2.0

ACTIVE_STATUSES = ("running", "waiting")
# Internal data key of a task in ERROR: "run" (it failed while running) or "update" (while being readied).
FAILED_IN = "procflow_failed_in"

_routing_depth: contextvars.ContextVar[int] = contextvars.ContextVar("procflow_routing_depth", default=0)
# Operations of this transaction that are routing the messages they threw, by instance id. Their
# workflows live in memory, ahead of the database: a message thrown back to one of them (a reply
# within the same conversation) must be delivered to that workflow, not to a stale copy.
_in_flight: contextvars.ContextVar[Mapping[int, InstanceOperation] | None] = contextvars.ContextVar(
    "procflow_in_flight", default=None
)


def operations_in_flight() -> Mapping[int, InstanceOperation]:
    """Return the operations, by instance id, that are routing their thrown messages in this context."""
    return _in_flight.get() or {}


def json_safe(value: Any) -> Any:
    """Turn task data into plain JSON values (Decimal and dates become strings)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items() if not callable(v)}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def canonical_key(values: dict[str, Any]) -> str:
    """Return the stable string used to index correlation values."""
    return json.dumps(json_safe(values), sort_keys=True, separators=(",", ":"))


def parameter_rows_in_force(
    session: so.Session, organisation_id: int | None, on: dt.date
) -> dict[str, Parameter]:
    """Return, by key, the parameter row whose value is in force on *on* (settings aside).

    For each key: the organisation's own row in force, unless it says
    ``uses_shared`` ("from this date, the shared value again"); else the shared
    row in force. A row is in force when it is the newest recorded of its
    owner, key and start date (history is append-only: a correction supersedes
    what it corrects, its end date too) and, of those, has the greatest
    ``valid_from`` on or before *on* with ``valid_to`` open or on or after *on*.
    ``organisation_id=None`` gives the shared rows only. Reads in the caller's transaction.
    """
    owners: list[sa.ColumnElement[bool]] = [Parameter.organisation_id.is_(None)]
    if organisation_id is not None:
        owners.append(Parameter.organisation_id == organisation_id)
    rows = session.scalars(sa.select(Parameter).where(sa.or_(*owners), Parameter.valid_from <= on))
    newest: dict[tuple[int | None, str, dt.date], Parameter] = {}
    for row in rows:
        slot = (row.organisation_id, row.key, row.valid_from)
        current = newest.get(slot)
        if current is None or (row.created_at, row.id) > (current.created_at, current.id):
            newest[slot] = row
    in_force: dict[tuple[int | None, str], Parameter] = {}
    for row in newest.values():
        if row.valid_to is not None and row.valid_to < on:
            continue
        owner = (row.organisation_id, row.key)
        if owner not in in_force or row.valid_from > in_force[owner].valid_from:
            in_force[owner] = row
    chosen: dict[str, Parameter] = {}
    for key in sorted({key for _, key in in_force}):
        own = in_force.get((organisation_id, key)) if organisation_id is not None else None
        shared = in_force.get((None, key))
        if own is not None and not own.uses_shared:
            chosen[key] = own
        elif shared is not None and not shared.uses_shared:
            chosen[key] = shared
    return chosen


def current_parameters(
    session: so.Session, organisation_id: int, on: dt.date | None = None
) -> dict[str, Any]:
    """Return the parameter values in force on *on* (today) for the organisation.

    The dated rows decide (:func:`parameter_rows_in_force`: the organisation's
    own over the shared ones); the organisation's settings that are set
    (``jurisdiction`` from its country, ``currency``, ``time_zone``...,
    :func:`engine.org_settings.settings_parameters`) win over them. Reads in
    the caller's transaction. A number with a fraction is a ``Decimal``
    (``58800.5`` stored in JSON is ``Decimal("58800.5")``), as in task data
    (:func:`engine._submitted.exact_numbers`), so a script can do arithmetic
    with both.
    """
    # org_settings builds on the audit log, which builds on this module: imported when used.
    from .org_settings import settings_parameters

    rows = parameter_rows_in_force(session, organisation_id, on or dt.date.today())
    values: dict[str, Any] = {key: exact_numbers(row.value) for key, row in rows.items()}
    organisation = session.get(Organisation, organisation_id)
    if organisation is not None:
        values.update(settings_parameters(organisation))
    return values


class OrganisationParameters(Mapping[str, Any]):
    """The ``parameters`` scripts see: loaded from the database on first use only.

    Most steps never read a parameter; not querying for them keeps a step cheap.
    """

    def __init__(self, session: so.Session, organisation_id: int) -> None:
        self._session = session
        self._organisation_id = organisation_id
        self._values: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._values is None:
            self._values = current_parameters(self._session, self._organisation_id)
        return self._values

    def __getitem__(self, key: str) -> Any:
        try:
            return self._load()[key]
        except KeyError:
            raise KeyError(f"no parameter {key!r} is set for this organisation") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class ProcflowScriptEngine(SandboxedScriptEngine):
    """The sandboxed engine plus connector calls bound to one operation."""

    def __init__(self, operation: InstanceOperation, *, parameters: Mapping[str, Any]) -> None:
        super().__init__(
            time_limit=SCRIPT_TIME_LIMIT,
            extra_globals={"parameters": parameters, **spiff_arena_helpers(operation)},
        )
        self._operation = operation

    def evaluate(self, task: Task, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        value = super().evaluate(task, expression, external_context)
        # SpiffWorkflow does date arithmetic with a timer's value right after this; a
        # duration of a hundred million years would take it hours.
        check_timer_value(task, expression, value)
        return value

    def call_service(self, task: Task, **kwargs: Any) -> str:
        # Replaces the library's version, which refers to an undefined name when a service fails.
        from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

        name = kwargs["operation_name"]
        params = {key: spec["value"] for key, spec in kwargs.get("operation_params", {}).items()}
        op = self._operation
        op.flush_writes()  # a connector may read what this operation wrote
        context = ConnectorContext(
            session=op.session,
            organisation_id=op.instance.organisation_id,
            instance_id=op.ensure_inserted(),
            element=task.task_spec.bpmn_id,
            actor=op.actor,
        )
        try:
            result = CONNECTORS.get(name)(context, **params)
        except Exception as exc:
            raise WorkflowTaskException(
                f"Connector {name!r} failed: {exc}", task=task, exception=exc
            ) from exc
        op.audit(
            "service_called",
            element=task.task_spec.bpmn_id,
            detail={"operation": name, "params": audited_params(params)},
        )
        return json.dumps(json_safe(result))


class InstanceOperation:
    """A locked instance with its restored workflow, ready to change and save."""

    def __init__(
        self,
        session: so.Session,
        instance: ProcessInstance,
        *,
        actor: str | None,
        organisation: OrganisationRef | None = None,
    ) -> None:
        self.session = session
        self.instance = instance
        self.actor = actor
        # The organisation's cache versions as this operation read them (looked up when not given).
        self._organisation = organisation
        self._audits: list[dict[str, Any]] = []
        # On PostgreSQL save() sends its writes as one statement (see _write_pending): the
        # versioned UPDATE of the instance waits here for the task-index rows and audit events.
        self._combine_writes = is_postgresql(session)
        self._pending_update: dict[str, Any] | None = None
        self._pending_task_update: tuple[int, dict[str, Any]] | None = None
        self._pending_insert: tuple[dict[str, Any], list[str]] | None = None
        # The instance's reporting projection (engine/projection.py), written with the instance.
        self._pending_report: CaseReportRows | None = None
        self.definition: ProcessDefinition = instance.definition
        parsed = load_parsed(session, self.definition)
        # Messages that start an event subprocess: waited for while the instance runs.
        self.event_subprocess_messages = parsed.event_subprocess_messages(instance.process_id)
        self.spec = parsed.specs[instance.process_id]
        self.subprocess_specs = parsed.subprocess_specs[instance.process_id]
        self.script_engine = ProcflowScriptEngine(
            self, parameters=OrganisationParameters(session, instance.organisation_id)
        )
        if instance.state:
            self.workflow = SERIALIZER.loads(
                instance.state, instance.serializer_version, self.spec, self.subprocess_specs
            )
            self.workflow.script_engine = self.script_engine
        else:
            self.workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=self.script_engine)
        guard_workflow(self.workflow, new=not instance.state)
        self._new = instance.id is None
        self.errored: BaseException | None = None
        # What the index tables hold for this instance right now; save() writes only the difference.
        self._ready_before = set(self._ready_human_task_ids())
        # Due date, group and assignee of human tasks that became ready, by task id (see save()).
        self._evaluated: dict[str, tuple[dt.datetime | None, str | None, str | None]] = {}
        # Usernames an excludeUsersFrom expression gave for those tasks, by task id.
        self._excluded_names: dict[str, list[str]] = {}
        self._timers_before = bool(self._timer_tasks())
        self._messages_before = bool(self._waiting_of_kind(MessageEventDefinition)) or bool(
            self.event_subprocess_messages
        )

    @classmethod
    def lock(cls, session: so.Session, instance_id: int, *, actor: str | None) -> InstanceOperation:
        """Lock instance *instance_id* for this transaction and restore its workflow.

        One statement reads the instance and its organisation's cache versions
        (see :mod:`engine.caches`); the definition comes from the cache.

        :raises NotFoundError: no such instance.
        """
        stmt = _LOCK_PG if is_postgresql(session) else _LOCK
        row = session.execute(stmt, {"instance_id": instance_id}).one_or_none()
        if row is None:
            raise NotFoundError(f"No instance {instance_id}")
        instance, *organisation = row
        return cls._restored(session, instance, organisation, actor)

    @classmethod
    def lock_task(
        cls, session: so.Session, task_id: int, *, actor: str
    ) -> tuple[InstanceOperation, HumanTask, bool]:
        """Lock the instance of human task *task_id* for user *actor*.

        Returns the operation, the task's current row, and whether separation of
        duties excludes *actor* from the task: one statement reads them all.

        :raises NotFoundError: no such task.
        """
        postgresql = is_postgresql(session)
        statement = _LOCK_TASK_PG if postgresql else _LOCK_TASK
        rows = statement.read(session, {"task_id": task_id, "username": actor})
        if not rows:
            raise NotFoundError(f"No task {task_id}")
        (row,) = rows
        task = _TASK.load(session, row[:_TASK_END], refresh=True)
        instance = _INSTANCE.load(session, row[_TASK_END:_INSTANCE_END], refresh=True)
        org_id, key, identity_version, definitions_version, excluded = row[_INSTANCE_END : _INSTANCE_END + 5]
        # On SQLite the write lock was taken at BEGIN: everything the statement read is current.
        if postgresql and row[-1] != instance.lock_version:
            # The instance changed while the statement waited for its lock: the task row it read
            # (not locked, as of the statement's start) may be stale; read it again. Every change
            # to a task row comes with a new lock version of its instance (see touch()).
            session.refresh(task)
        operation = cls._restored(
            session, instance, (org_id, key, identity_version, definitions_version), actor
        )
        return operation, task, bool(excluded)

    @classmethod
    def _restored(
        cls, session: so.Session, instance: ProcessInstance, organisation: Sequence[Any], actor: str | None
    ) -> InstanceOperation:
        """Restore the locked *instance*; *organisation* is its row of ``_ORGANISATION_VERSIONS``."""
        ref = OrganisationRef(*organisation)
        definition = definition_by_id(session, ref, instance.definition_id)
        if definition is not None:
            # Set as loaded, so instance.definition needs no query. Being in the session's
            # identity map is not enough: the map holds objects weakly, so a merged copy that
            # nothing else refers to is gone again before the relationship is read.
            so.attributes.set_committed_value(instance, "definition", definition)
        return cls(session, instance, actor=actor, organisation=ref)

    # -- audit -----------------------------------------------------------------

    def audit(self, kind: str, *, element: str | None = None, detail: dict[str, Any] | None = None) -> None:
        """Record an audit event for this instance; :meth:`save` (or :meth:`write_audits`) writes it."""
        self._audits.append(
            {
                "organisation_id": self.instance.organisation_id,
                "at": utcnow(),
                "actor": self.actor,
                "kind": kind,
                "element": element,
                "detail": json_safe(detail or {}),
            }
        )

    def write_audits(self) -> None:
        """Write the audit events recorded so far and any deferred UPDATE (see :meth:`flush_writes`)."""
        self.flush_writes()

    def flush_writes(self) -> None:
        """Write what this operation deferred: UPDATEs of the instance and of a completed task, audit events.

        On PostgreSQL a save sends its writes as one statement at its end (see
        :meth:`_write_pending`); call this before reading rows they change.
        """
        if (
            self._audits
            or self._pending_update is not None
            or self._pending_task_update is not None
            or self._pending_insert is not None
            or self._pending_report is not None
        ):
            self._write_pending()

    def write_task_row(self, task: HumanTask, **values: Any) -> None:
        """UPDATE *task*'s row with *values* and keep the object in step; touches no other row.

        On PostgreSQL the statement is deferred to the next :meth:`flush_writes`
        or save of this operation, which sends it with the instance's UPDATE.
        """
        for key, value in values.items():
            so.attributes.set_committed_value(task, key, value)
        if self._pending_task_update is not None:
            self._execute_task_update(*self._pending_task_update)
        self._pending_task_update = (task.id, values)
        if not self._combine_writes:
            self._execute_task_update(*self._pending_task_update)
            self._pending_task_update = None

    def _execute_task_update(self, task_id: int, values: dict[str, Any]) -> None:
        _driver_task_update(frozenset(values)).run(
            self.session.connection(),
            {"done_task_id": task_id, **{f"done_{key}": value for key, value in values.items()}},
        )

    def _write_pending(self, new_tasks: Sequence[dict[str, Any]] = ()) -> list[int]:
        """Write the deferred UPDATEs, the task-index rows *new_tasks* and the audit events so far.

        Returns the ids of the new task rows, in the order given. On PostgreSQL
        it is one statement (see :func:`_combined_write`), one round trip where
        there were up to four; elsewhere one statement for each kind of row.

        :raises ConflictError: the deferred UPDATE found the instance changed meanwhile.
        """
        insert, self._pending_insert = self._pending_insert, None
        pending, self._pending_update = self._pending_update, None
        task_update, self._pending_task_update = self._pending_task_update, None
        report, self._pending_report = self._pending_report, None
        audits: list[dict[str, Any]] = []
        if self._audits:
            # A deferred INSERT of the instance gives its id to the rows in the same statement.
            instance_id = self.instance.id if insert is not None else self.ensure_inserted()
            audits = [{**event, "instance_id": instance_id} for event in self._audits]
            self._audits = []
        connection = self.session.connection()
        task_keys = tuple(new_tasks[0]) if new_tasks else ()
        audit_keys = tuple(audits[0]) if audits else ()
        if (
            not self._combine_writes
            or (insert is None and pending is None and not new_tasks)
            or any(tuple(row) != task_keys for row in new_tasks)
            or any(tuple(row) != audit_keys for row in audits)
        ):
            if insert is not None:
                self._execute_insert(*insert)
                for row in [*new_tasks, *audits]:
                    row["instance_id"] = self.instance.id
            if task_update is not None:
                self._execute_task_update(*task_update)
            if pending is not None:
                self._execute_update(pending)
            ids: list[int] = []
            if new_tasks:
                ids = [_INSERT_HUMAN_TASK.rows(connection, row)[0][0] for row in new_tasks]
            _INSERT_AUDIT.run_many(connection, audits)
            if report is not None:
                write_case_report_rows(self.session, report.for_instance(self.instance.id))
            return ids
        statement = _combined_write(
            frozenset(insert[0]) if insert is not None else None,
            pending["columns"] if pending is not None else None,
            frozenset(task_update[1]) if task_update is not None else None,
            audit_keys,
            task_keys,
            tuple(report.report) if report is not None else (),
            tuple(report.values[0]) if report is not None and report.values else (),
        )
        params: dict[str, Any] = {}
        if insert is not None:
            params.update({f"n_{key}": value for key, value in insert[0].items()})
        if pending is not None:
            params.update({f"i_{key}": value for key, value in pending["params"].items()})
        if task_update is not None:
            params["done_task_id"] = task_update[0]
            params.update({f"done_{key}": value for key, value in task_update[1].items()})
        if audits:
            params["audit_rows"] = _json_rows(audits)
        if new_tasks:
            params["task_rows"] = _json_rows(new_tasks)
        if report is not None:
            params["report_rows"] = _json_rows([report.report])
            if report.values:
                params["value_rows"] = _json_rows(report.values)
        found = statement.rows(connection, params)
        if pending is not None and not found:
            raise _changed_meanwhile(self.instance)
        if insert is not None:
            self._attach_inserted(found[0][0], *insert)
            for row in new_tasks:
                row["instance_id"] = self.instance.id
        if not new_tasks:
            return []
        by_uuid = {uuid: task_id for *_, task_id, uuid in found}
        return [by_uuid[row["task_uuid"]] for row in new_tasks]

    def ensure_inserted(self) -> int:
        """Return the instance's id, inserting its row first if it is new (see :meth:`save`)."""
        if self.instance.id is None:
            if self._pending_insert is not None:
                self._write_pending()  # the INSERT save() deferred, with what else waits
            else:
                self._insert_instance()
        return self.instance.id

    def touch(self) -> None:
        """Give the instance a new lock version without other changes (a task row changed).

        Every change to a task row comes with one: :meth:`lock_task` relies on it.
        """
        self._update_instance({})

    @property
    def organisation(self) -> OrganisationRef:
        """Return the instance's organisation with the cache versions this operation read."""
        if self._organisation is None:
            found = organisation_by_id(self.session, self.instance.organisation_id)
            if found is None:
                raise NotFoundError(f"No organisation {self.instance.organisation_id}")
            self._organisation = found
        return self._organisation

    # -- running ---------------------------------------------------------------

    def advance(self) -> None:
        """Run the workflow to its next wait states, then route the events it threw.

        A failure of the model or its data does not raise: the failing task is
        left in ERROR, the instance goes to ``error`` and the failure is audited
        (see :meth:`guard`).
        """
        steps = 0
        running: list[Task] = []

        def will_complete(task: Task) -> None:
            running[:] = [task]

        def did_complete(task: Task) -> None:
            nonlocal steps
            steps += 1
            self._audit_engine_task(task)
            if steps % COMPACT_EVERY_STEPS == 0:
                compact(self.workflow)
            if steps > MAX_ENGINE_STEPS:
                raise ProcflowError(
                    f"More than {MAX_ENGINE_STEPS} engine steps without reaching a wait state "
                    f"(last element {task.task_spec.bpmn_id!r}); "
                    "is there a loop without a user task or timer?"
                )

        with self.guard(running):
            self.workflow.do_engine_steps(will_complete_task=will_complete, did_complete_task=did_complete)
        compact(self.workflow)
        self._route_thrown_events()

    @contextlib.contextmanager
    def guard(self, running: Task | list[Task] | None = None) -> Iterator[None]:
        """Turn any failure of the model or its data inside the block into an incident.

        The task that failed goes to ERROR (SpiffWorkflow leaves some failures,
        such as a multi-instance task whose input is missing, in no state at
        all, which left cases waiting for nothing), the instance to ``error``,
        and the failure is audited with element and line. *running* is the task
        the block runs: a failure in another task happened while that task was
        being readied (a pre-script, a multi-instance's input), which
        :func:`engine.retry_instance` repeats differently from a failed run.
        Database errors are not the model's and propagate.
        """
        try:
            yield
        except SQLAlchemyError:
            raise
        except Exception as exc:
            refused = limit_in(exc)
            if refused is not None and refused.refused:
                raise refused from None  # no consistent tree to record the failure in: store nothing
            current = running[-1] if isinstance(running, list) and running else running
            self.fail(exc, running=current if isinstance(current, Task) else None)

    def fail(self, exc: BaseException, *, running: Task | None = None) -> None:
        """Record *exc* as this operation's failure: the failed task in ERROR, the instance in ``error``."""
        task = failed_task(exc) or running
        if task is not None and task.workflow.top_workflow is self.workflow:
            if task.state != TaskState.ERROR:
                task._set_state(TaskState.ERROR)
            task.internal_data[FAILED_IN] = "run" if running is None or task is running else "update"
        self._record_error(exc, task)

    def _audit_engine_task(self, task: Task) -> None:
        spec = task.task_spec
        if hasattr(spec, "dmnEngine"):
            table = spec.dmnEngine.decision_table
            inputs = {}
            for item in table.inputs:
                try:
                    inputs[item.expression or item.label] = self.script_engine.evaluate(task, item.expression)
                except Exception:
                    inputs[item.expression or item.label] = None
            outputs = {o.name: task.data.get(o.name) for o in table.outputs if o.name}
            self.audit(
                "decision_made",
                element=spec.bpmn_id,
                detail={"decision": table.name or table.id, "inputs": inputs, "outputs": outputs},
            )

    def _record_error(self, exc: BaseException, task: Task | None) -> None:
        self.errored = exc
        cause = getattr(exc, "exception", None) or exc.__cause__
        element = task.task_spec.bpmn_id if task is not None else None
        line = getattr(exc, "line_number", None) or None
        if isinstance(cause, ScriptError) or isinstance(exc, ScriptError):
            line = line or getattr(cause, "line", None) or getattr(exc, "line", None)
        if isinstance(exc, SpiffWorkflowException | ProcflowError):
            message = str(exc)
        else:
            # Not one of ours: name the kind of failure, as a user cannot read a bare "not iterable".
            message = f"{type(exc).__name__}: {exc}"
        message = " ".join(message.split())
        if element and element not in message:
            message = f"{element}: {message}"
        if line and f"line {line}" not in message:
            message = f"{message} (line {line})"
        file_name = getattr(task.task_spec, "file", None) if task is not None else None
        if file_name is None and task is not None:
            file_name = getattr(task.workflow.spec, "file", None)
        self.instance.error_message = message
        detail: dict[str, Any] = {"message": message, "line": line, "file": file_name}
        # SpiffWorkflow's task trace: the failing task, then each call activity it was called from.
        trace = [str(step) for step in getattr(exc, "task_trace", None) or []]
        if trace:
            detail["trace"] = trace
        self.audit("error", element=element, detail=detail)

    def _route_thrown_events(self) -> None:
        from .messages import deliver_thrown_message

        events = self.workflow.get_events()
        if not events:
            return
        self.ensure_inserted()  # receivers and replies refer to this instance by its id
        self.flush_writes()  # and may read its rows
        depth = _routing_depth.get()
        if depth >= MAX_EVENT_ROUTING_DEPTH:
            raise ProcflowError(f"Messages bounced between instances more than {depth} times; stopping")
        token = _routing_depth.set(depth + 1)
        flight = _in_flight.set({**operations_in_flight(), self.instance.id: self})
        try:
            for event in events:
                if isinstance(event.event_definition, MessageEventDefinition):
                    deliver_thrown_message(
                        self.session,
                        organisation_id=self.instance.organisation_id,
                        name=event.event_definition.name,
                        payload=event.payload,
                        source_instance_id=self.instance.id,
                        actor=self.actor,
                        is_test=bool(self.instance.is_test),
                    )
        finally:
            _in_flight.reset(flight)
            _routing_depth.reset(token)

    # -- saving ----------------------------------------------------------------

    def save(self, *, completed_task_uuid: str | None = None) -> None:
        """Write state, status, task index, jobs, subscriptions and audit events.

        The instance row is written by one statement: an INSERT for a new
        instance, else ``UPDATE ... WHERE id = :id AND lock_version = :v``.

        :raises ConflictError: someone else changed the instance meanwhile.
        """
        now = utcnow()
        instance = self.instance
        # Written by one statement below, then set on the object as committed: assigning them
        # first would leave the object "modified", for the session to check again at every flush.
        values: dict[str, Any] = {}
        status = instance.status
        if status not in ("suspended", "cancelled"):
            self._evaluate_new_human_tasks(now)
            status = self._status()
            if status != instance.status:
                values["status"] = status
        if status == "completed" and instance.completed_at is None:
            values["completed_at"] = now
            self.audit("completed")
        if status != "error" and instance.error_message is not None:
            values["error_message"] = None
        values["state"] = SERIALIZER.dumps(self.workflow)
        values["serializer_version"] = SERIALIZER.version
        values["updated_at"] = now
        try:
            if instance.id is None:
                for key, value in values.items():
                    setattr(instance, key, value)
                self._insert_instance(defer=True)  # sent with the rows below
            else:
                self._update_instance(values, defer=True)  # sent with the rows below
            # The reporting projection, in this transaction (engine/projection.py): sent with the
            # instance's row, in the same statement on PostgreSQL.
            self._pending_report = case_report_rows(self.session, instance, self.definition, self.data)
            self._sync_human_tasks(now, completed_task_uuid)
            self.ensure_inserted()  # what follows needs the instance's id
            if self._timers_before or self._timer_tasks():
                self._sync_timer_jobs()
            if (
                self._messages_before
                or self.event_subprocess_messages
                or self._waiting_of_kind(MessageEventDefinition)
            ):
                self._sync_subscriptions()
            self.write_audits()
            self.session.flush()
        except StaleDataError as exc:
            raise _changed_meanwhile(instance) from exc

    def _insert_instance(self, *, defer: bool = False) -> None:
        """INSERT the new instance's row and attach the object to the session as that row.

        With *defer*, on PostgreSQL, the INSERT waits for the next
        :meth:`_write_pending` (in the same save), which sends it with the
        task-index rows and audit events; until then the instance has no id.
        """
        instance = self.instance
        values = {key: getattr(instance, key) for key in _INSTANCE_COLUMNS if key != "id"}
        unset = [key for key in _INSTANCE_DEFAULTED if values[key] is None]
        for key in unset:
            del values[key]  # left to the column's default
        if defer and self._combine_writes and not unset:  # defaults are filled in by a plain INSERT only
            self._pending_insert = (values, unset)
        else:
            self._execute_insert(values, unset)

    def _execute_insert(self, values: dict[str, Any], unset: list[str]) -> None:
        ((instance_id,),) = _INSERT_INSTANCE.rows(self.session.connection(), values)
        self._attach_inserted(instance_id, values, unset)

    def _attach_inserted(self, instance_id: int, values: dict[str, Any], unset: list[str]) -> None:
        """Make the instance object the row just inserted with *values* (*unset* got their defaults)."""
        instance = self.instance
        instance.id = instance_id
        for key, value in values.items():
            if key not in instance.__dict__:
                setattr(instance, key, value)  # known, not to be loaded again (NULL columns)
        so.make_transient_to_detached(instance)
        self.session.add(instance)
        if unset:
            self.session.expire(instance, unset)  # the database filled in their defaults

    def _update_instance(self, values: dict[str, Any], *, defer: bool = False) -> None:
        """UPDATE the instance's row with *values* and what callers changed on the object.

        Checks and bumps the lock version. With *defer*, on PostgreSQL, the
        statement waits for the next :meth:`_write_pending` (in the same save),
        which sends it together with the task-index rows and audit events; the
        object already holds the new values, so no flush writes them again.
        """
        instance = self.instance
        state = sa.inspect(instance)
        changes = {}
        if state.modified:  # a caller changed it (suspend, cancel, repair)
            for key in _INSTANCE_COLUMNS:
                added = state.attrs[key].history.added
                if added:
                    changes[key] = added[0]
        changes.update(values)
        version = instance.lock_version
        update = {
            "columns": frozenset(changes),
            "params": {
                **changes,
                "lock_version": version + 1,
                "instance_id": instance.id,
                "old_lock_version": version,
            },
        }
        if self._pending_update is not None:  # an earlier one waits: it goes first
            self._execute_update(self._pending_update)
            self._pending_update = None
        if defer and self._combine_writes:
            self._pending_update = update
        else:
            self._execute_update(update)
        for key, value in changes.items():
            so.attributes.set_committed_value(instance, key, value)
        so.attributes.set_committed_value(instance, "lock_version", version + 1)

    def _execute_update(self, update: dict[str, Any]) -> None:
        """Run a versioned UPDATE prepared by :meth:`_update_instance`."""
        changed = _driver_update_instance(update["columns"]).run(self.session.connection(), update["params"])
        if changed != 1:
            raise _changed_meanwhile(self.instance)

    def _status(self) -> str:
        if self.workflow.is_completed():
            return "completed"
        if self.errored is not None:
            return "error"
        running = False
        for task in self._all_tasks():
            if task.state == TaskState.ERROR:
                return "error"
            running = running or (task.state == TaskState.READY and task.task_spec.manual)
        return "running" if running else "waiting"

    def _all_tasks(self) -> Iterator[Task]:
        """Yield every task of the workflow and its subprocesses (in no particular order).

        One pass over the task tables, where ``get_tasks`` walks the tree.
        """
        for workflow in (self.workflow, *self.workflow.subprocesses.values()):
            yield from workflow.tasks.values()

    def _ready_human_tasks(self) -> list[Task]:
        if self.instance.status == "cancelled":
            return []
        return [t for t in self._all_tasks() if t.state == TaskState.READY and t.task_spec.manual]

    def _ready_human_task_ids(self) -> list[str]:
        return [str(t.id) for t in self._ready_human_tasks()] if self.instance.state else []

    def _sync_human_tasks(self, now: dt.datetime, completed_task_uuid: str | None) -> None:
        ready = {str(t.id): t for t in self._ready_human_tasks()}
        # The completed task's row was already updated by complete_task.
        gone = self._ready_before - set(ready) - {completed_task_uuid}
        connection = self.session.connection()
        if gone:
            completed = [
                uuid for uuid in gone if (t := self.task(uuid)) is not None and t.state == TaskState.COMPLETED
            ]
            cancelled = [uuid for uuid in gone if uuid not in completed]
            for uuids, state in ((completed, "completed"), (cancelled, "cancelled")):
                if uuids:
                    connection.execute(
                        _CLOSE_HUMAN_TASKS,
                        {"b_instance_id": self.instance.id, "uuids": uuids, "b_state": state, "b_now": now},
                    )
        new = [
            self._new_human_task(task, now) for uuid, task in ready.items() if uuid not in self._ready_before
        ]
        if new:
            ids = self._write_pending([row for row, _ in new])
            exclusions = [
                {"human_task_id": task_id, "user_id": user_id}
                for task_id, (_, excluded) in zip(ids, new, strict=True)
                for user_id in excluded
            ]
            if exclusions:
                connection.execute(_INSERT_EXCLUSION, exclusions)
            # Tell whoever may work on the new tasks, in this transaction (engine/notifications.py).
            queue_task_emails(
                self.session,
                self.instance,
                self.definition,
                [
                    TaskToNotify.from_row(task_id, row, excluded)
                    for task_id, (row, excluded) in zip(ids, new, strict=True)
                ],
                actor=self.actor,
                organisation=self.organisation,
            )
        self._ready_before = set(ready)

    def _new_human_task(self, task: Task, now: dt.datetime) -> tuple[dict[str, Any], list[int]]:
        """Return the task index row of a human task that became ready, and the users it excludes."""
        spec = task.task_spec
        properties: dict[str, str] = (getattr(spec, "extensions", None) or {}).get("properties", {})
        excluded: list[int] = []
        if properties.get("excludeStarter", "").lower() == "true" and self.instance.started_by_id:
            excluded.append(self.instance.started_by_id)
        for bpmn_id in filter(
            None, (s.strip() for s in properties.get("excludeCompletersOf", "").split(","))
        ):
            if self._new:
                break  # a new instance has no completed tasks
            if self._pending_task_update is not None:
                self.flush_writes()  # the task just completed is one of them
            excluded.extend(
                uid
                for uid in self.session.scalars(
                    sa.select(HumanTask.completed_by_id).where(
                        HumanTask.instance_id == self.instance.id,
                        HumanTask.bpmn_id == bpmn_id,
                        HumanTask.completed_by_id.is_not(None),
                    )
                )
                if uid is not None
            )
        names = self._excluded_names.pop(str(task.id), None)
        names = self._usernames_excluded_by_data(task) if names is None else names
        if names:
            excluded.extend(
                self.session.scalars(
                    sa.select(User.id)
                    .join(Membership, Membership.user_id == User.id)
                    .where(
                        User.username.in_(names), Membership.organisation_id == self.instance.organisation_id
                    )
                )
            )
        evaluated = self._evaluated.pop(str(task.id), None)
        due_at, group, username = evaluated or self._evaluate_properties(task, now)
        candidate_group = group or properties.get("candidateGroup") or spec.lane or None  # "" is no group
        assignee_id = None
        if properties.get("assignee"):
            # Only a member of the instance's organisation can be given the task.
            assignee_id = (
                self.session.scalar(
                    sa.select(User.id)
                    .join(Membership, Membership.user_id == User.id)
                    .where(
                        User.username == username, Membership.organisation_id == self.instance.organisation_id
                    )
                )
                if username
                else None
            )
            if assignee_id is not None:
                # A personal task (each participant's own declaration): no group may take it over.
                candidate_group = None
        if self.instance.is_test and self.instance.started_by_id is not None:
            # A studio test case: its tester steps through every task, whatever the lanes and
            # separation of duties would say (engine/studio.py).
            assignee_id, candidate_group, excluded = self.instance.started_by_id, None, []
        row = {
            "instance_id": self.instance.id,
            "organisation_id": self.instance.organisation_id,
            "process_id": self.instance.process_id,
            "task_uuid": str(task.id),
            "bpmn_id": spec.bpmn_id,
            "name": spec.bpmn_name or spec.bpmn_id,
            "lane": spec.lane,
            "candidate_group": candidate_group,
            "assignee_id": assignee_id,
            "form": properties.get("formJsonSchemaFilename") if isinstance(spec, UserTask) else None,
            "form_ui": properties.get("formUiSchemaFilename") if isinstance(spec, UserTask) else None,
            "instructions": (getattr(spec, "extensions", None) or {}).get("instructionsForEndUser")
            or spec.documentation,
            "state": "ready",
            "due_at": due_at,
            "created_at": now,
            "completed_at": None,
            "completed_by_id": None,
        }
        return row, sorted(set(excluded))

    def _evaluate_new_human_tasks(self, now: dt.datetime) -> None:
        """Evaluate the expressions of the human tasks that just became ready (due date, group, assignee).

        Before anything is written: a failing expression is a failure of the
        model like any other, so the task goes to ERROR and the instance to
        ``error`` (see :meth:`guard`) instead of the task silently getting no
        due date or the wrong group.
        """
        for task in self._ready_human_tasks():
            uuid = str(task.id)
            if uuid in self._ready_before or uuid in self._evaluated:
                continue
            with self.guard(running=task):
                self._evaluated[uuid] = self._evaluate_properties(task, now)
                self._excluded_names[uuid] = self._usernames_excluded_by_data(task)

    def _evaluate_properties(
        self, task: Task, now: dt.datetime
    ) -> tuple[dt.datetime | None, str | None, str | None]:
        properties: dict[str, str] = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {})
        due_in = properties.get("dueIn")
        due_at = self._due_at(task, due_in, now) if due_in else None
        group = properties.get("candidateGroupExpression")
        assignee = properties.get("assignee")
        return (
            due_at,
            self._evaluated_text(task, group) if group else None,
            self._evaluated_text(task, assignee) if assignee else None,
        )

    def _usernames_excluded_by_data(self, task: Task) -> list[str]:
        """Return the usernames the task's ``excludeUsersFrom`` expression gives (one, or a list).

        Separation of duties by the case's data: the requester named in a form,
        whoever declared a conflict of interest. Empty values are skipped.

        :raises ScriptError: the expression gives something else than text or a list of texts.
        """
        properties: dict[str, str] = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {})
        expression = properties.get("excludeUsersFrom")
        if not expression:
            return []
        value = self.script_engine.evaluate(task, expression)
        names = [value] if isinstance(value, str) or value is None else value
        if not isinstance(names, list | tuple | set) or not all(isinstance(n, str | None) for n in names):
            raise ScriptError(
                f"excludeUsersFrom gave {value!r}: expected a username or a list of usernames",
                element=task.task_spec.bpmn_id,
            )
        return sorted({n for n in names if n})

    def _evaluated_text(self, task: Task, expression: str) -> str | None:
        value = self.script_engine.evaluate(task, expression)
        return str(value) if value else None

    def _due_at(self, task: Task, expression: str, now: dt.datetime) -> dt.datetime | None:
        # 'P5D' written without quotes is meant as the duration, not as an expression.
        literal = is_iso_duration(expression)
        value: Any = expression.strip() if literal else self.script_engine.evaluate(task, expression)
        element = task.task_spec.bpmn_id
        if value is None:
            return None
        is_duration = isinstance(value, str) and value.upper().startswith("P")
        if isinstance(value, str) and not is_duration:
            # A date or time as text ('2025-03-06T00:00:00+00:00'), as a decision table gives it.
            with contextlib.suppress(ValueError):
                value = dt.datetime.fromisoformat(value)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            check_due_in(element, float(value))
            return now + dt.timedelta(days=float(value))
        if isinstance(value, str) and is_duration:
            check_due_in(element, value)
            parsed = TimerEventDefinition.parse_iso_duration(value)
            delta: dt.timedelta = TimerEventDefinition.get_timedelta_from_start(parsed, now)
            return now + delta
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(23, 59), dt.UTC)
        raise ScriptError(f"dueIn gave {value!r}: {_DUE_IN_EXPECTED}", element=element)

    def _waiting_event_tasks(self) -> Iterable[Task]:
        if self.instance.status in ("cancelled", "completed"):
            return []
        return [t for t in self.workflow.event_manager.tasks.values() if t.state == TaskState.WAITING]

    def _waiting_of_kind(self, kind: type) -> list[Task]:
        return [
            t for t in self._waiting_event_tasks() if any(isinstance(d, kind) for d in event_definitions(t))
        ]

    def _timer_tasks(self) -> list[Task]:
        """The timer events still to fire: waiting, or made READY by the last refresh of the timers.

        ``do_engine_steps`` refreshes the timers after its last step, so a timer whose time has
        passed already (it fell due while its job was failing, or its date lies in the past) is
        READY with nothing left to run it: its job must stay, due at once, for a worker to fire it.
        """
        if self.instance.status in ("cancelled", "completed"):
            return []
        # SpiffWorkflow's event manager forgets an event task once it is READY. The tasks'
        # dictionaries are read directly: a filtered walk of the task tree costs several times more.
        ready = [
            t
            for wf in (self.workflow, *self.workflow.subprocesses.values())
            for t in wf.tasks.values()
            if t.state == TaskState.READY
            and not t.task_spec.manual
            and hasattr(t.task_spec, "event_definition")
        ]
        return [
            t
            for t in [*self.workflow.event_manager.tasks.values(), *ready]
            if t.state in (TaskState.WAITING, TaskState.READY)
            and any(isinstance(d, TimerEventDefinition) for d in event_definitions(t))
        ]

    def _sync_timer_jobs(self) -> None:
        due: dict[str, dt.datetime] = {}
        for task in self._timer_tasks():
            for definition in event_definitions(task):
                if isinstance(definition, TimerEventDefinition):
                    when = timer_due(task, definition)
                    if when is not None:
                        due[str(task.id)] = when
        jobs = (
            {}
            if self._new
            else {
                job.task_uuid: job
                for job in self.session.scalars(
                    sa.select(Job).where(Job.instance_id == self.instance.id, Job.kind == "timer")
                )
            }
        )
        suspended = self.instance.status == "suspended"
        for uuid, job in jobs.items():
            if uuid not in due:
                self.session.delete(job)
            else:
                if job.due_at != due[uuid] and job.status != "incident":
                    job.due_at = due[uuid]
                    job.attempts = 0
                job.status = (
                    "suspended" if suspended else ("incident" if job.status == "incident" else "pending")
                )
        for uuid, when in due.items():
            if uuid not in jobs:
                self.session.add(
                    Job(
                        kind="timer",
                        status="suspended" if suspended else "pending",
                        organisation_id=self.instance.organisation_id,
                        instance_id=self.instance.id,
                        task_uuid=uuid,
                        due_at=when,
                    )
                )

    def _sync_subscriptions(self) -> None:
        connection = self.session.connection()
        if not self._new:
            connection.execute(_DELETE_SUBSCRIPTIONS, {"instance_id": self.instance.id})
        correlations = self.definition.message_correlations or {}
        rows = []
        for task in self._waiting_event_tasks():
            for definition in event_definitions(task):
                if not isinstance(definition, MessageEventDefinition):
                    continue
                values = self.expected_correlation(task, correlations.get(definition.name, []))
                rows.append((str(task.id), definition.name, canonical_key(values)))
        if self.instance.status in ACTIVE_STATUSES and not self.workflow.is_completed():
            data = self.data()
            for name in self.event_subprocess_messages:
                values = self.expected_correlation_from(data, correlations.get(name, []))
                rows.append((str(self.workflow.task_tree.id), name, canonical_key(values)))
        if rows:
            connection.execute(
                _INSERT_SUBSCRIPTION,
                [
                    {
                        "organisation_id": self.instance.organisation_id,
                        "instance_id": self.instance.id,
                        "task_uuid": uuid,
                        "message_name": name,
                        "correlation_key": key,
                        "created_at": utcnow(),
                    }
                    for uuid, name, key in rows
                ],
            )

    def expected_correlation(self, task: Task, properties: list[dict[str, str]]) -> dict[str, Any]:
        """Return the correlation values a waiting task expects, from the instance's data."""
        return self.expected_correlation_from(dict(task.data), properties)

    def expected_correlation_from(
        self, data: dict[str, Any], properties: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Return the correlation values expected by an instance holding *data*."""
        known: dict[str, Any] = {}
        for per_key in self.workflow.correlations.values():
            if isinstance(per_key, dict):
                known.update(per_key)
        values: dict[str, Any] = {}
        for prop in properties:
            if prop["name"] in known:
                values[prop["name"]] = known[prop["name"]]
                continue
            try:
                values[prop["name"]] = self.script_engine.environment.evaluate(prop["expression"], dict(data))
            except Exception:
                continue
        return values

    # -- helpers for callers -----------------------------------------------------

    def task(self, task_uuid: str) -> Task | None:
        """Return the workflow task with *task_uuid*, if it still exists."""
        try:
            task: Task | None = self.workflow.get_task_from_id(UUID(task_uuid))
        except TaskNotFoundException:
            return None
        return task

    def data(self) -> dict[str, Any]:
        """Return the current data: an open task's, else the last completed task's, else the workflow's."""
        source = (
            self.workflow.get_next_task(state=TaskState.READY | TaskState.WAITING) or self.workflow.last_task
        )
        if source is None:
            return dict(self.workflow.data)
        return {k: v for k, v in source.data.items() if not callable(v)}


_ORGANISATION_VERSIONS = (
    Organisation.id,
    Organisation.key,
    Organisation.identity_version,
    Organisation.definitions_version,
)
# Statements of the hot path, built once. HumanTask.instance and ProcessInstance.definition
# come from the identity map: the lock loads the instance, the definition cache its definition.
_LOCK = (
    sa.select(ProcessInstance, *_ORGANISATION_VERSIONS)
    .join(Organisation, Organisation.id == ProcessInstance.organisation_id)
    .where(ProcessInstance.id == sa.bindparam("instance_id"))
    .execution_options(populate_existing=True)
)
# PostgreSQL locks only the instance row (SQLite took its write lock at BEGIN).
_LOCK_PG = _LOCK.with_for_update(of=ProcessInstance)
_EXCLUDED = (
    sa.exists()
    .where(
        HumanTaskExclusion.human_task_id == HumanTask.id,
        HumanTaskExclusion.user_id
        == sa.select(User.id).where(User.username == sa.bindparam("username")).scalar_subquery(),
    )
    .label("excluded")
)
# Run on the driver (engine/_driver_sql.py), the task and the instance loaded as the ORM's
# populate_existing would: every step of a case takes this lock.
_TASK = Entity(HumanTask)
_INSTANCE = Entity(ProcessInstance)
# Where the task's and the instance's columns end in the lock's row.
_TASK_END = len(_TASK.columns)
_INSTANCE_END = _TASK_END + len(_INSTANCE.columns)
_LOCK_TASK_COLUMNS = (
    sa.select(*_TASK.columns, *_INSTANCE.columns, *_ORGANISATION_VERSIONS, _EXCLUDED)
    .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
    .join(Organisation, Organisation.id == ProcessInstance.organisation_id)
    .where(HumanTask.id == sa.bindparam("task_id"))
)
_LOCK_TASK = DriverStatement(_LOCK_TASK_COLUMNS)
# On PostgreSQL the instance row is locked, and re-read at its newest version if the statement had
# to wait for the lock; the same row through an alias, not locked, keeps the version the rest of
# the statement (the task row) was read at.
_SEEN = so.aliased(ProcessInstance, name="seen_instance")
_LOCK_TASK_PG = DriverStatement(
    _LOCK_TASK_COLUMNS.add_columns(_SEEN.lock_version)
    .join(_SEEN, _SEEN.id == ProcessInstance.id)
    .with_for_update(of=ProcessInstance.__table__)
)
_INSTANCE_TABLE = Base.metadata.tables["process_instance"]
_INSTANCE_COLUMNS = tuple(attr.key for attr in sa.inspect(ProcessInstance).column_attrs)
_INSTANCE_DEFAULTED = tuple(
    column.key
    for column in _INSTANCE_TABLE.columns
    if column.key != "id" and (column.default is not None or column.server_default is not None)
)
_INSERT_INSTANCE = DriverStatement(sa.insert(_INSTANCE_TABLE).returning(_INSTANCE_TABLE.c.id))
_UPDATE_INSTANCE = sa.update(_INSTANCE_TABLE).where(
    _INSTANCE_TABLE.c.id == sa.bindparam("instance_id"),
    _INSTANCE_TABLE.c.lock_version == sa.bindparam("old_lock_version"),
)


@functools.cache
def _update_instance_statement(columns: frozenset[str]) -> sa.Update:
    """Return the versioned UPDATE of these columns (and ``lock_version``), built once per set."""
    return _UPDATE_INSTANCE.values({key: sa.bindparam(key) for key in sorted(columns | {"lock_version"})})


@functools.cache
def _driver_update_instance(columns: frozenset[str]) -> DriverStatement:
    return DriverStatement(_update_instance_statement(columns))


_AUDIT_TABLE = Base.metadata.tables["audit_event"]
_INSERT_AUDIT = DriverStatement(sa.insert(_AUDIT_TABLE))
_HUMAN_TASK_TABLE = Base.metadata.tables["human_task"]
# One row at a time: a driver's executemany gives no RETURNING rows.
_INSERT_HUMAN_TASK = DriverStatement(sa.insert(_HUMAN_TASK_TABLE).returning(_HUMAN_TASK_TABLE.c.id))


@functools.cache
def _task_update_statement(columns: frozenset[str]) -> sa.Update:
    """Return ``UPDATE human_task SET col = :done_col … WHERE id = :done_task_id``, built once per set."""
    return (
        sa.update(_HUMAN_TASK_TABLE)
        .where(_HUMAN_TASK_TABLE.c.id == sa.bindparam("done_task_id"))
        .values({key: sa.bindparam(f"done_{key}") for key in sorted(columns)})
    )


@functools.cache
def _driver_task_update(columns: frozenset[str]) -> DriverStatement:
    return DriverStatement(_task_update_statement(columns))


def _recordset(table: sa.Table, keys: Sequence[str], name: str, new_instance: Any = None) -> sa.Select[Any]:
    """Return ``SELECT keys FROM json_populate_recordset(NULL::table, :name)``: rows from one JSON parameter.

    PostgreSQL turns each JSON object into a row of *table*'s type, each value
    into its column's type; one statement whatever the number of rows. With
    *new_instance* (a CTE inserting the instance), ``instance_id`` is its id.
    """
    rows = sa.func.json_populate_recordset(
        sa.literal_column(f"NULL::{table.name}"), sa.bindparam(name, type_=sa.String).cast(sa.JSON)
    ).table_valued(*keys, name=f"{name}_row")
    if new_instance is None:
        return sa.select(*(rows.c[key] for key in keys))
    return sa.select(
        *(new_instance.c.id if key == "instance_id" else rows.c[key] for key in keys)
    ).select_from(rows.join(new_instance, sa.true()))


@functools.lru_cache(maxsize=256)
def _combined_write(
    insert_columns: frozenset[str] | None,
    instance_columns: frozenset[str] | None,
    done_columns: frozenset[str] | None,
    audit_keys: tuple[str, ...],
    task_keys: tuple[str, ...],
    report_keys: tuple[str, ...] = (),
    value_keys: tuple[str, ...] = (),
) -> DriverStatement:
    """Return the one PostgreSQL statement that writes what a save has pending, built once per shape.

    Data-modifying ``WITH`` queries: the INSERT of a new instance (if
    *insert_columns*) returning its id, which the rows below then take as
    theirs; or the versioned UPDATE of the instance (if
    *instance_columns*) returning its id, so no row means someone else changed
    it; the UPDATE of a completed task's row (if *done_columns*, see
    :func:`_task_update_statement`); the INSERT of task-index rows (if
    *task_keys*) returning their ids with their task UUIDs; the INSERT of audit
    events (if *audit_keys*); the upsert of the instance's ``case_report`` row
    (if *report_keys*) and of its indexed values (if *value_keys*). PostgreSQL
    runs each exactly once, to completion, whatever the outer query reads; they
    touch different rows, so that they see one snapshot changes nothing.
    Parameters: the instance UPDATE's as :meth:`InstanceOperation._update_instance`
    names them with ``i_`` before, the task UPDATE's, and the rows as JSON
    arrays in ``audit_rows``, ``task_rows``, ``report_rows`` and ``value_rows``
    (see :func:`_recordset`).
    """
    columns: list[Any] = []
    joined: Any = None
    new_instance = None
    if insert_columns is not None and instance_columns is not None:
        raise ValueError("an instance is either inserted or updated")
    if insert_columns is not None:
        new_instance = (
            sa.insert(_INSTANCE_TABLE)
            .values(
                {
                    key: sa.bindparam(f"n_{key}", type_=_INSTANCE_TABLE.c[key].type)
                    for key in sorted(insert_columns)
                }
            )
            .returning(_INSTANCE_TABLE.c.id)
            .cte("new_instance")
        )
        columns.append(new_instance.c.id.label("new_instance_id"))
        joined = new_instance
    if instance_columns is not None:
        # Parameters named after no column: SQLAlchemy would add a column to an UPDATE's SET
        # clause for each parameter with its name (human_task has a state, too).
        changed = (
            sa.update(_INSTANCE_TABLE)
            .where(
                _INSTANCE_TABLE.c.id == sa.bindparam("i_instance_id"),
                _INSTANCE_TABLE.c.lock_version == sa.bindparam("i_old_lock_version"),
            )
            .values({key: sa.bindparam(f"i_{key}") for key in sorted(instance_columns | {"lock_version"})})
            .returning(_INSTANCE_TABLE.c.id)
            .cte("changed_instance")
        )
        columns.append(changed.c.id.label("changed_instance_id"))
        joined = changed
    if task_keys:
        new_tasks = (
            sa.insert(_HUMAN_TASK_TABLE)
            .from_select(
                task_keys,
                _recordset(_HUMAN_TASK_TABLE, task_keys, "task_rows", new_instance),
                include_defaults=False,
            )
            .returning(_HUMAN_TASK_TABLE.c.id, _HUMAN_TASK_TABLE.c.task_uuid)
            .cte("new_human_task")
        )
        columns += [new_tasks.c.id.label("human_task_id"), new_tasks.c.task_uuid]
        joined = new_tasks if joined is None else joined.outerjoin(new_tasks, sa.true())
    statement = sa.select(*columns).select_from(joined)
    if done_columns is not None:
        statement = statement.add_cte(_task_update_statement(done_columns).cte("completed_task"))
    if audit_keys:
        statement = statement.add_cte(
            sa.insert(_AUDIT_TABLE)
            .from_select(
                audit_keys,
                _recordset(_AUDIT_TABLE, audit_keys, "audit_rows", new_instance),
                include_defaults=False,
            )
            .cte("new_audit")
        )
    for table_name, keys, rows in (
        (REPORT_TABLE_NAME, report_keys, "report_rows"),
        (VALUE_TABLE_NAME, value_keys, "value_rows"),
    ):
        if keys:
            table = Base.metadata.tables[table_name]
            upsert = upsert_from_rows(table_name, keys, _recordset(table, keys, rows, new_instance))
            statement = statement.add_cte(upsert.cte(f"new_{table_name}"))
    return DriverStatement(statement)


def _json_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Return *rows* as the JSON array :func:`_recordset` reads.

    Times are ISO 8601 with their offset, dates ISO 8601, decimals their text
    (PostgreSQL reads each string as its column's type).
    """
    return json.dumps(rows, default=_json_column_value, separators=(",", ":"))


def _json_column_value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; use aware UTC datetimes")
        return value.isoformat()
    if isinstance(value, dt.date | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value")


_INSERT_EXCLUSION = sa.insert(Base.metadata.tables["human_task_exclusion"])
_CLOSE_HUMAN_TASKS = (
    sa.update(_HUMAN_TASK_TABLE)
    .where(
        _HUMAN_TASK_TABLE.c.instance_id == sa.bindparam("b_instance_id"),
        _HUMAN_TASK_TABLE.c.task_uuid.in_(sa.bindparam("uuids", expanding=True)),
        _HUMAN_TASK_TABLE.c.state == "ready",
    )
    .values(state=sa.bindparam("b_state"), completed_at=sa.bindparam("b_now"))
)
_SUBSCRIPTION_TABLE = Base.metadata.tables["message_subscription"]
_INSERT_SUBSCRIPTION = sa.insert(_SUBSCRIPTION_TABLE)
_DELETE_SUBSCRIPTIONS = sa.delete(_SUBSCRIPTION_TABLE).where(
    _SUBSCRIPTION_TABLE.c.instance_id == sa.bindparam("instance_id")
)


def _changed_meanwhile(instance: ProcessInstance) -> ConflictError:
    return ConflictError(f"Instance {instance.id} was changed by someone else; reload and try again")


_DUE_IN_EXPECTED = "expected an ISO 8601 duration such as 'P5D', a number of days or a date"


def failed_task(exc: BaseException) -> Task | None:
    """Return the task a failure happened in: the one SpiffWorkflow names, else the innermost on the stack."""
    task = getattr(exc, "task", None)
    if isinstance(task, Task):
        return task
    found = None
    trace = exc.__traceback__
    while trace is not None:
        local = trace.tb_frame.f_locals
        for name in ("my_task", "task", "child"):
            if isinstance(local.get(name), Task):
                found = local[name]
                break
        trace = trace.tb_next
    return found


def event_definitions(task: Task) -> list[Any]:
    """Return the events a waiting task catches: one, or each of an event-based gateway's."""
    definition = task.task_spec.event_definition
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition]


def timer_due(task: Task, definition: TimerEventDefinition) -> dt.datetime | None:
    """Return when a waiting timer task fires, from the value SpiffWorkflow computed."""
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    if isinstance(definition, CycleTimerEventDefinition):
        return dt.datetime.fromisoformat(value["next"]) if isinstance(value, dict) else None
    if isinstance(value, dt.datetime):
        when = value
    else:
        parsed = TimerEventDefinition.parse_time_or_duration(str(value))
        if not isinstance(parsed, dt.datetime):
            return None
        when = parsed
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def compact(workflow: BpmnWorkflow) -> None:
    """Drop finished history that no unfinished task can reach back to.

    Finds the deepest task that is an ancestor of every unfinished task and
    hangs it directly under the root; everything else finished is removed.
    Joins, boundary events and subprocesses only look at tasks below that
    common ancestor, so the workflow behaves the same.
    """
    for wf in [workflow, *workflow.subprocesses.values()]:
        _compact_tree(workflow, wf)


def _compact_tree(top: BpmnWorkflow, wf: Any) -> None:
    root = wf.task_tree
    unfinished = [t for t in wf.tasks.values() if not t.has_state(TaskState.FINISHED_MASK)]
    if not unfinished:
        return
    first_chain = _ancestors(unfinished[0])
    if len(first_chain) < COMPACT_DEPTH:
        return
    keep_from = _deepest_common_ancestor(first_chain, unfinished[1:])
    if keep_from is None or keep_from is root or keep_from.parent is root:
        return
    keep_ids = {t.id for t in _descendants(keep_from)}
    keep_ids.add(root.id)
    for task_id in [tid for tid in wf.tasks if tid not in keep_ids]:
        del wf.tasks[task_id]
        if task_id in top.subprocesses:
            del top.subprocesses[task_id]
    keep_from._parent = root.id
    root._children = [keep_from.id]
    if wf.last_task is not None and wf.last_task.id not in keep_ids:
        wf.last_task = keep_from


def _deepest_common_ancestor(first_chain: list[Task], others: list[Task]) -> Task | None:
    """Return the deepest task of *first_chain* (one task's ancestors, parent first) that is an
    ancestor of every task in *others*.

    Each walk up from another task stops where it meets the chain or a path
    walked before (which met the chain no lower), so the whole costs one visit
    per task: a long chain of predicted tasks made intersecting every
    ancestor list quadratic.
    """
    position = {task.id: index for index, task in enumerate(first_chain)}
    highest = 0
    walked: set[UUID] = set()
    for task in others:
        parent = task.parent
        while parent is not None and parent.id not in position and parent.id not in walked:
            walked.add(parent.id)
            parent = parent.parent
        if parent is None:
            return None  # *task* is the root: nothing is an ancestor of it
        if parent.id in position:
            highest = max(highest, position[parent.id])
    return first_chain[highest] if first_chain else None


def _ancestors(task: Task) -> list[Task]:
    chain = []
    parent = task.parent
    while parent is not None:
        chain.append(parent)
        parent = parent.parent
    return chain


def _descendants(task: Task) -> list[Task]:
    result, stack = [], [task]
    while stack:
        current = stack.pop()
        result.append(current)
        stack.extend(current.children)
    return result


def get_user_or_none(session: so.Session, username: str | None) -> User | None:
    """Return the user called *username*, ``None`` for the system.

    :raises NotFoundError: a name was given but no such user exists.
    """
    if username is None:
        return None
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"No user {username!r}")
    return user
