"""Repairing cases: correct an instance's data, move it back to an earlier step, find instances.

A case in ``error`` whose data is wrong fails again on every retry; an admin
corrects the data (:func:`set_instance_data`) and retries
(:func:`engine.retry_instance`), or moves the case back to the step where the
wrong data was entered (:func:`reset_instance`) so that it is done again. Both
are admin actions of the instance's organisation and are audited.

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import copy
import keyword
import math
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
import sqlalchemy.orm as so
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent, ThrowingEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from ._submitted import exact_numbers, submitted_data_errors
from ._workflow import InstanceOperation
from .errors import FormValidationError, InvalidStateError, NotFoundError, ProcflowError
from .models import AuditEvent, HumanTask, ProcessInstance
from .runtime import _COMPLETING_EVENTS, _admin_operation

INSTANCE_STATUSES = ("running", "waiting", "completed", "error", "suspended", "cancelled")
# A suspended case is moved by nothing until it is resumed, a reset included: it runs the case on.
RESETTABLE_STATUSES = ("running", "waiting", "error")


@dataclass(frozen=True)
class ResetTarget:
    """An element a case can be moved back to: it has run (or failed) and is still in its history."""

    bpmn_id: str
    name: str


def set_instance_data(
    session: so.Session, instance_id: int, *, user: str | None, data: dict[str, Any]
) -> ProcessInstance:
    """Merge the fields of *data* into the current data of an instance, as an admin correction.

    The values go to the failed task(s) when the instance is in error (a retry
    runs with them), else to the open tasks (they carry them on), and always to
    the task whose data :func:`engine.instance_data` shows. Nothing runs: the
    workflow does not advance. Audited as ``data_changed`` with the fields'
    values before and after. ``user=None`` acts as the system.

    Due dates, groups and correlation values already derived from the old
    values are not recomputed; timers keep their due time.

    :raises NotFoundError: no such instance, or not in the user's organisation.
    :raises PermissionDeniedError: the user is not an admin of the instance's organisation.
    :raises InvalidStateError: the instance has ended (completed or cancelled).
    :raises FormValidationError: *data* is not a JSON object of plain JSON values, or a field
        name is not a valid identifier or is reserved (``RESERVED_DATA_NAMES`` in
        ``engine/_sandbox.py``); names each field.
    """
    op = _admin_operation(session, instance_id, user)
    if op.instance.status in ("completed", "cancelled"):
        raise InvalidStateError(f"Instance {instance_id} is {op.instance.status}; its data cannot be changed")
    errors = data_errors(data)
    if errors:
        raise FormValidationError(errors)
    data = exact_numbers(data)
    before = op.data()
    workflow = op.workflow
    targets = workflow.get_tasks(state=TaskState.ERROR) or workflow.get_tasks(
        state=TaskState.READY | TaskState.WAITING
    )
    # The task InstanceOperation.data() reads: an open one, else the last completed one.
    shown = workflow.get_next_task(state=TaskState.READY | TaskState.WAITING) or workflow.last_task
    if shown is not None and all(t.id != shown.id for t in targets):
        targets.append(shown)
    for task in targets:
        task.data.update(copy.deepcopy(data))
    if not targets:
        workflow.data.update(copy.deepcopy(data))
    op.audit(
        "data_changed",
        detail={"before": {key: before.get(key) for key in data}, "after": data},
    )
    op.save()
    return op.instance


def data_errors(data: Any) -> dict[str, list[str]]:
    """Return what is wrong with *data* as fields to merge into a case, by field ("" for the whole).

    The checks of every submission (:func:`engine._submitted.submitted_data_errors`: no reserved
    or ``_`` names, bounded nesting), and more, as an admin writes these fields straight into
    the variables scripts read: each name must be an identifier a script can use, each value
    plain JSON.
    """
    if not isinstance(data, dict):
        return {"": ["The data must be a JSON object of field names and values."]}
    if not data:
        return {"": ["The data names no field to change."]}
    errors = submitted_data_errors(data)
    if "" in errors:
        return errors  # nested too deep: not walked again
    for key, value in data.items():
        if key in errors:
            continue
        problem = _name_problem(key) or _value_problem(value)
        if problem:
            errors[key] = [problem]
    return errors


def _name_problem(key: str) -> str | None:
    if not key.isidentifier() or keyword.iskeyword(key):
        return (
            f"{key!r} is not a valid field name: use letters, digits and _, "
            "not starting with a digit, and not a Python keyword."
        )
    return None


def _value_problem(value: Any) -> str | None:
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "Numbers must be finite."
    if isinstance(value, list):
        return next((p for p in map(_value_problem, value) if p), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "The keys of an object must be text."
        return next((p for p in map(_value_problem, value.values()) if p), None)
    return f"A {type(value).__name__} is not a JSON value."


def reset_instance(session: so.Session, instance_id: int, *, to: str, user: str | None) -> ProcessInstance:
    """Move an instance back to element *to* (BPMN id), which runs again from there.

    Takes the most recent run of the element that completed or failed, in the
    process or any of its subprocesses; everything after it is discarded (open
    tasks are cancelled, timers and message waits removed) and the element is
    reached anew, with the data it was reached with then: corrections made with
    :func:`set_instance_data` after that point are dropped, so correct data after
    resetting. A user task appears as a new open task. The instance runs on to
    its next wait states. Audited as ``reset``. ``user=None`` acts as the system.

    Allowed on running, waiting and failed instances; a suspended instance must
    be resumed first, as nothing moves it while it is suspended.

    :raises NotFoundError: no such instance or not in the user's organisation, or the
        process has no element *to*.
    :raises PermissionDeniedError: the user is not an admin of the instance's organisation.
    :raises InvalidStateError: the instance is suspended or has ended, or the element has
        not run, or ran so long ago that the engine no longer keeps that history.
    :raises ProcflowError: readying the element failed (e.g. its pre-script); nothing is changed.
    """
    op = _admin_operation(session, instance_id, user)
    status = op.instance.status
    if status == "suspended":
        raise InvalidStateError(
            f"Instance {instance_id} is suspended; resume it before moving it back to {to!r}"
        )
    if status not in RESETTABLE_STATUSES:
        raise InvalidStateError(f"Instance {instance_id} is {status}; it cannot be moved back to {to!r}")
    task = _reset_task(session, op, to)
    failed_rows = _failed_human_task_uuids(op)
    _renew_id(task)
    try:
        removed = op.workflow.reset_from_task_id(task.id)
    except (SpiffWorkflowException, ProcflowError) as exc:
        raise ProcflowError(f"Moving instance {instance_id} back to {to!r} failed: {exc}") from exc
    # SpiffWorkflow's reset leaves the catching events it removed registered: the next step
    # would update a timer that is no longer in the tree (and fail on its missing parent).
    for gone in removed:
        op.workflow.event_manager.remove_task(gone)
    _cancel_gone_failed_rows(op, failed_rows)
    op.instance.status = "running"
    op.audit("reset", element=to, detail={"to": to})
    op.advance()
    op.save()
    return op.instance


def reset_targets(session: so.Session, instance: ProcessInstance) -> list[ResetTarget]:
    """Return the elements *instance* can be moved back to, the most recently run first.

    Events are left out (the CLI can still name them). Empty for an instance that
    :func:`reset_instance` would refuse by its status.
    """
    if not instance.state or instance.status not in RESETTABLE_STATUSES:
        return []
    op = InstanceOperation(session, instance, actor=None)
    targets: dict[str, ResetTarget] = {}
    for task in reversed(_ran(op)):
        spec = task.task_spec
        if isinstance(spec, CatchingEvent | ThrowingEvent):
            continue  # a case is moved back to a step, not to the event that led to it
        targets.setdefault(spec.bpmn_id, ResetTarget(spec.bpmn_id, spec.bpmn_name or spec.bpmn_id))
    return list(targets.values())


def list_instances(
    session: so.Session,
    *,
    organisation_id: int | None = None,
    status: str | None = None,
    process_id: str | None = None,
    limit: int = 100,
) -> list[ProcessInstance]:
    """Return instances, newest first, read from the instance table only (no workflow is restored).

    The serialized state is not loaded; the definition is, for its version.
    """
    stmt = (
        sa.select(ProcessInstance)
        .options(so.defer(ProcessInstance.state), so.joinedload(ProcessInstance.definition))
        .order_by(ProcessInstance.created_at.desc(), ProcessInstance.id.desc())
        .limit(limit)
    )
    if organisation_id is not None:
        stmt = stmt.where(ProcessInstance.organisation_id == organisation_id)
    if status is not None:
        stmt = stmt.where(ProcessInstance.status == status)
    if process_id is not None:
        stmt = stmt.where(ProcessInstance.process_id == process_id)
    return list(session.scalars(stmt))


def _ran(op: InstanceOperation) -> list[Task]:
    """Tasks of the workflow and its subprocesses that completed or failed, in the order they did."""
    workflow = op.workflow
    ran = []
    for wf in (workflow, *workflow.subprocesses.values()):
        for task in wf.tasks.values():
            if task.state not in (TaskState.COMPLETED, TaskState.ERROR):
                continue
            if not getattr(task.task_spec, "bpmn_id", None) or _is_instance_of_multi(task):
                continue
            ran.append(task)
    return sorted(ran, key=lambda t: t.last_state_change)


def _is_instance_of_multi(task: Task) -> bool:
    # One instance of a multi-instance or loop activity has the activity's BPMN id; moving back means
    # doing the whole activity again, and the activity's task keeps the ids of its instances.
    parent = task.parent
    return parent is not None and isinstance(parent.task_spec, LoopTask)


def _reset_task(session: so.Session, op: InstanceOperation, bpmn_id: str) -> Task:
    candidates = [t for t in _ran(op) if t.task_spec.bpmn_id == bpmn_id]
    if candidates:
        return candidates[-1]
    instance = op.instance
    specs = [op.spec, *op.subprocess_specs.values()]
    spec = next(
        (
            s
            for wf_spec in specs
            for s in wf_spec.task_specs.values()
            if getattr(s, "bpmn_id", None) == bpmn_id
        ),
        None,
    )
    if spec is None:
        raise NotFoundError(f"Process {instance.process_id!r} has no element {bpmn_id!r}")
    name = f"{bpmn_id!r} ({spec.bpmn_name})" if spec.bpmn_name else repr(bpmn_id)
    if _ran_before(session, instance.id, bpmn_id):
        raise InvalidStateError(
            f"Element {name} of instance {instance.id} ran too long ago: the engine no longer keeps "
            "that part of the case's history (it drops finished history far back), "
            "so the case cannot be moved back to it"
        )
    raise InvalidStateError(
        f"Element {name} has not run in instance {instance.id} (or ran so long ago that the engine "
        "no longer keeps that part of its history); a case can only be moved back to a step "
        "it has been through"
    )


def _ran_before(session: so.Session, instance_id: int, bpmn_id: str) -> bool:
    """Whether the task index or the audit trail shows that the element ran (they outlive compaction)."""
    human = sa.select(HumanTask.id).where(
        HumanTask.instance_id == instance_id, HumanTask.bpmn_id == bpmn_id, HumanTask.state == "completed"
    )
    audited = sa.select(AuditEvent.id).where(
        AuditEvent.instance_id == instance_id,
        AuditEvent.element == bpmn_id,
        AuditEvent.kind.in_(_COMPLETING_EVENTS),
    )
    return session.scalar(human.limit(1)) is not None or session.scalar(audited.limit(1)) is not None


def _renew_id(task: Task) -> None:
    """Give *task* a new id, so that reaching it again is a new task (and task index row).

    SpiffWorkflow's reset keeps the id of the task it resets to; the task index
    keeps one row per instance and task id, and the old row is history.
    """
    wf = task.workflow
    top = wf.top_workflow
    old, new = task.id, uuid4()
    del wf.tasks[old]
    task.id = new
    wf.tasks[new] = task
    parent = task.parent
    if parent is not None:
        parent._children = [new if child == old else child for child in parent._children]
    for child in task.children:
        child._parent = new
    if old in top.subprocesses:
        subprocess = top.subprocesses.pop(old)
        subprocess.parent_task_id = new
        top.subprocesses[new] = subprocess
    if old in top.event_manager.tasks:
        top.event_manager.tasks[new] = top.event_manager.tasks.pop(old)


def _failed_human_task_uuids(op: InstanceOperation) -> set[str]:
    return {str(t.id) for t in op.workflow.get_tasks(state=TaskState.ERROR) if t.task_spec.manual}


def _cancel_gone_failed_rows(op: InstanceOperation, before: set[str]) -> None:
    """Cancel index rows of human tasks that had failed and that the reset discarded."""
    still = _failed_human_task_uuids(op)
    gone = before - still
    if gone:
        op.session.execute(
            sa.update(HumanTask)
            .where(
                HumanTask.instance_id == op.instance.id,
                HumanTask.task_uuid.in_(gone),
                HumanTask.state == "error",
            )
            .values(state="cancelled")
            .execution_options(synchronize_session=False)
        )
