"""Starting instances and acting on them: complete, claim, suspend, cancel, retry.

Every function runs inside the caller's transaction (``with session.begin()``
in a worker or CLI, the request boundary in the web app) and leaves the
instance at its next wait state.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from forms import keep_read_only, validate_submission

from ._submitted import exact_numbers, submitted_data_errors
from ._workflow import ACTIVE_STATUSES, FAILED_IN, InstanceOperation, json_safe
from .caches import Actor, member, organisation_by_id, organisation_by_key, resolved_definition
from .definitions import bundle_json, load_parsed
from .errors import (
    ConflictError,
    FormValidationError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
)
from .form_choices import engine_sources, fill_choice_lists, has_choice_lists
from .identity import TASK_ROLES, get_user
from .inbox import TaskFilter, matching_tasks
from .models import (
    AuditEvent,
    Base,
    HumanTask,
    Job,
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    User,
    utcnow,
)
from .notifications import TaskToNotify, queue_task_emails

STARTER_ROLES = {"admin", "process_owner", "case_handler", "requester"}


def start_instance(
    session: so.Session,
    process_id: str,
    *,
    organisation: str,
    user: str | None,
    data: dict[str, Any] | None = None,
    business_key: str | None = None,
    title: str | None = None,
) -> ProcessInstance:
    """Start *process_id* for *organisation* and run it to its first wait states.

    ``user=None`` starts as the system (scheduled and message starts). *data*
    is checked like a task submission (see :func:`complete_task`); read-only
    fields of a start form get no value, since there is no case yet.

    :raises NotFoundError: unknown organisation, user or process, or the user is
        not a member of the organisation.
    :raises PermissionDeniedError: the user's roles do not allow starting processes.
    :raises FormValidationError: the data uses a reserved name, nests too deep,
        or does not satisfy the start form; names each bad field.
    """
    org = organisation_by_key(session, organisation)
    if org is None:
        raise NotFoundError(f"No organisation {organisation!r}")
    starter_id = None
    if user is not None:
        starter = member(session, org, user, otherwise=f"No organisation {organisation!r} for user {user!r}")
        if not STARTER_ROLES & starter.roles:
            raise PermissionDeniedError(f"User {user!r} may not start processes in {organisation!r}")
        starter_id = starter.user_id
    definition = resolved_definition(session, org, process_id)
    if definition is None:
        raise NotFoundError(f"No process {process_id!r} is deployed for this organisation")
    data = dict(data or {})
    errors = submitted_data_errors(data)
    if errors:
        raise FormValidationError(errors)
    data = exact_numbers(data)
    event = manual_start_event(session, definition)
    message = _message_name(event) if event is not None else None
    if message is not None:
        # The process starts only on a message: starting it by hand is sending it that message
        # (whose start, like this one, checks the data against the start event's form).
        from .messages import start_by_message

        return start_by_message(
            session, definition, org.id, message, data, actor=user, business_key=business_key, title=title
        )
    data = checked_start_data(session, definition, event, data)
    instance = create_instance(definition, org.id, starter_id, business_key=business_key, title=title)
    op = InstanceOperation(session, instance, actor=user, organisation=org)
    start = op.workflow.get_next_task(spec_name="Start")
    if start is not None and data:
        start.data.update(data)
    op.audit("started", detail={"data": data or {}, "version": definition.version})
    op.advance()
    op.save()
    return instance


def create_instance(
    definition: ProcessDefinition,
    organisation_id: int,
    starter_id: int | None,
    *,
    business_key: str | None = None,
    title: str | None = None,
    parent_instance_id: int | None = None,
    is_test: bool = False,
) -> ProcessInstance:
    """Return a new, not yet started instance of *definition*; its row is written when it is saved.

    :meth:`InstanceOperation.save` inserts it with its first state, in one statement.
    *is_test* marks a studio test instance (see :mod:`engine.studio`).
    """
    now = utcnow()
    instance = ProcessInstance(
        definition_id=definition.id,
        organisation_id=organisation_id,
        process_id=definition.process_id,
        status="running",
        business_key=business_key,
        title=title or definition.name,
        started_by_id=starter_id,
        parent_instance_id=parent_instance_id,
        created_at=now,
        updated_at=now,
        state="",
        serializer_version="",
        lock_version=1,
        is_test=is_test,
    )
    instance.definition = definition
    return instance


def _message_name(event: StartEvent) -> str | None:
    definition = getattr(event, "event_definition", None)
    return definition.name if isinstance(definition, MessageEventDefinition) else None


def _form_of(event: StartEvent) -> str | None:
    properties = (getattr(event, "extensions", None) or {}).get("properties", {})
    return properties.get("formJsonSchemaFilename") or None


def manual_start_event(session: so.Session, definition: ProcessDefinition) -> StartEvent | None:
    """Return the start event a start by hand goes through: a none start, else the only message start.

    A none start with a form is preferred over one without. A process that
    starts only on messages is started by hand by sending it the message of
    its start event (the one with a form, if several): the form's data is the
    message's payload. ``None``: the process has neither (it starts on timers).
    """
    return manual_start_event_of(load_parsed(session, definition).specs[definition.process_id])


def manual_start_event_of(spec: BpmnProcessSpec) -> StartEvent | None:
    """Return the start event of *spec* a start by hand goes through (see :func:`manual_start_event`)."""
    events = [ts for ts in spec.task_specs.values() if isinstance(ts, StartEvent)]
    plain = [e for e in events if isinstance(e.event_definition, NoneEventDefinition)]
    by_message = [e for e in events if _message_name(e) is not None]
    for candidates in (plain, by_message):
        if candidates:
            return next((e for e in candidates if _form_of(e)), candidates[0])
    return None


def start_event_form(
    session: so.Session, definition: ProcessDefinition, event: StartEvent
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """Return the JSON Schema and UI schema of *event*'s form, if it names one."""
    reference = _form_of(event)
    if reference is None:
        return None
    properties = (getattr(event, "extensions", None) or {}).get("properties", {})
    schema: dict[str, Any] = bundle_json(session, definition, reference)
    ui = properties.get("formUiSchemaFilename")
    return schema, bundle_json(session, definition, ui) if ui else None


def checked_start_data(
    session: so.Session, definition: ProcessDefinition, event: StartEvent | None, data: dict[str, Any]
) -> dict[str, Any]:
    """Return *data* as a start through *event* takes it: read-only fields of its form left out.

    :raises FormValidationError: the data does not satisfy the form; names each bad field.
    """
    form = start_event_form(session, definition, event) if event is not None else None
    if form is None:
        return data
    data = keep_read_only(form[0], form[1], data, {})  # there is no case yet to keep values of
    errors = validate_submission(form[0], data)
    if errors:
        raise FormValidationError(errors)
    return data


def start_form(
    session: so.Session, definition: ProcessDefinition
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """Return the JSON Schema and UI schema of the form a start by hand fills in, if there is one.

    A start event carries a form the same way a user task does
    (``formJsonSchemaFilename`` / ``formUiSchemaFilename`` properties); see
    :func:`manual_start_event` for which start event that is.
    """
    event = manual_start_event(session, definition)
    return start_event_form(session, definition, event) if event is not None else None


def get_instance(
    session: so.Session, instance_id: int, *, organisation_id: int | None = None
) -> ProcessInstance:
    """Return instance *instance_id*, only if it belongs to *organisation_id* when given.

    :raises NotFoundError: no such instance (or it belongs to another organisation).
    """
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or (organisation_id is not None and instance.organisation_id != organisation_id):
        raise NotFoundError(f"No instance {instance_id}")
    return instance


def get_task(session: so.Session, task_id: int, *, organisation_id: int | None = None) -> HumanTask:
    """Return human task *task_id*, only if it belongs to *organisation_id* when given.

    :raises NotFoundError: no such task (or it belongs to another organisation).
    """
    found = matching_tasks(
        session, where=TaskFilter(organisation_id=organisation_id, task_id=task_id, state=None)
    )
    if not found:
        raise NotFoundError(f"No task {task_id}")
    return found[0]


def instance_data(session: so.Session, instance: ProcessInstance) -> dict[str, Any]:
    """Return the current data of *instance* as plain JSON values."""
    if not instance.state:
        return {}
    op = InstanceOperation(session, instance, actor=None)
    data: dict[str, Any] = json_safe(op.data())
    return data


def task_data(session: so.Session, task: HumanTask) -> dict[str, Any]:
    """Return the data *task* itself holds, as plain JSON values: what its form starts from.

    Parallel branches hold data of their own (an answer task knows the supplier question
    that started it, another branch's open task does not), so a form shows its task's
    data, not the instance's (:func:`instance_data`), which a task no longer in the
    workflow falls back to.
    """
    op = InstanceOperation(session, task.instance, actor=None)
    spiff_task = op.task(task.task_uuid)
    if spiff_task is None:
        return instance_data(session, task.instance)
    data: dict[str, Any] = json_safe({k: v for k, v in spiff_task.data.items() if not callable(v)})
    return data


def task_form_schema(session: so.Session, task: HumanTask) -> dict[str, Any] | None:
    """Return the JSON Schema of *task*'s form from its definition's bundle, if it has one.

    Properties that take their choices from data (``x-choices``) come with them filled in.
    """
    if not task.form:
        return None
    schema: dict[str, Any] = bundle_json(session, task.instance.definition, task.form)
    if has_choice_lists(schema):
        # Choices from data (engine/form_choices.py): the task's own data, or the organisation's.
        spiff_task = InstanceOperation(session, task.instance, actor=None).task(task.task_uuid)
        data = spiff_task.data if spiff_task is not None else {}
        schema = fill_choice_lists(schema, data, engine_sources(session, task.organisation_id))
    return schema


def task_ui_schema(session: so.Session, task: HumanTask) -> dict[str, Any] | None:
    """Return the UI schema of *task*'s form, if it has one."""
    if not task.form_ui:
        return None
    schema: dict[str, Any] = bundle_json(session, task.instance.definition, task.form_ui)
    return schema


def check_may_work_on(session: so.Session, task: HumanTask, user: User) -> None:
    """Check that *user* may claim or complete *task*: role, lane group, assignee, separation of duties.

    Only members with a role that works on tasks (``TASK_ROLES``: not auditors)
    may, whether or not the task has a lane.

    :raises NotFoundError: the user is not in the task's organisation.
    :raises PermissionDeniedError: naming the rule that refuses the user.
    """
    organisation = organisation_by_id(session, task.organisation_id)
    if organisation is None:
        raise NotFoundError(f"No task {task.id}")
    worker = member(session, organisation, user.username, otherwise=f"No task {task.id}")
    _check_member(task, worker, excluded=user.id in task.excluded_user_ids)


def _check_member(task: HumanTask, worker: Actor, *, excluded: bool) -> None:
    if not TASK_ROLES & worker.roles:
        raise PermissionDeniedError(
            f"User {worker.username!r} may not work on task {task.id} ({task.name}): "
            f"their role ({', '.join(sorted(worker.roles)) or 'none'}) only reads cases"
        )
    if excluded:
        raise PermissionDeniedError(
            f"User {worker.username!r} may not work on task {task.id} ({task.name}): "
            "separation of duties excludes them (they started the case or did an earlier step)"
        )
    if task.assignee_id is not None:
        if task.assignee_id != worker.user_id:
            holder = task.assignee.username if task.assignee else "someone else"
            raise PermissionDeniedError(f"Task {task.id} ({task.name}) is claimed by {holder}")
        return  # the assignee works on it whatever its group, as the inbox shows it to them
    if task.candidate_group and task.candidate_group not in worker.groups:
        raise PermissionDeniedError(
            f"User {worker.username!r} is not in group {task.candidate_group!r} "
            f"of task {task.id} ({task.name})"
        )


def _lock_task(
    session: so.Session, task_id: int, username: str
) -> tuple[InstanceOperation, HumanTask, Actor, bool]:
    op, task, excluded = InstanceOperation.lock_task(session, task_id, actor=username)
    worker = member(session, op.organisation, username, otherwise=f"No task {task.id}")
    if task.state == "error":
        raise InvalidStateError(
            f"Task {task.id} ({task.name}) failed after it was submitted; "
            f"instance {task.instance_id} waits for an admin to repair and retry it"
        )
    if task.state != "ready":
        who = f" by {task.completed_by.username}" if task.completed_by else ""
        raise ConflictError(f"Task {task.id} ({task.name}) was already {task.state}{who}")
    if op.instance.status == "suspended":
        raise InvalidStateError(f"Instance {op.instance.id} is suspended; task {task.id} cannot be worked on")
    if op.instance.status not in ACTIVE_STATUSES:
        raise InvalidStateError(
            f"Instance {op.instance.id} is {op.instance.status}; task {task.id} is not active"
        )
    return op, task, worker, excluded


def _write_task(session: so.Session, task: HumanTask, **values: Any) -> None:
    """UPDATE *task*'s row with *values* in one statement and keep the object in step."""
    session.connection().execute(_UPDATE_TASK, {"task_id": task.id, **values})
    for key, value in values.items():
        so.attributes.set_committed_value(task, key, value)


_HUMAN_TASK_TABLE = Base.metadata.tables["human_task"]
_UPDATE_TASK = sa.update(_HUMAN_TASK_TABLE).where(_HUMAN_TASK_TABLE.c.id == sa.bindparam("task_id"))


def complete_task(
    session: so.Session, task_id: int, *, user: str, data: dict[str, Any] | None = None
) -> ProcessInstance:
    """Complete human task *task_id* as *user* with *data*, and run on to the next wait states.

    *data* stays data: a top-level key may not be a name the script sandbox
    reserves (``parameters``, ``date``, ``len``..., or any name starting with
    ``_``), and it may nest at most ``MAX_DATA_DEPTH`` levels. What is sent for
    a read-only field of the form (at any depth) is ignored and the value the
    case holds is kept; the result is then validated against the form schema.

    :raises NotFoundError: no such task, or not in the user's organisation.
    :raises PermissionDeniedError: lane group, assignee or separation of duties refuses the user.
    :raises FormValidationError: the data uses a reserved name, nests too deep, or
        does not satisfy the form; names each bad field.
    :raises ConflictError: the task was completed or cancelled meanwhile.
    :raises InvalidStateError: the instance is suspended or not active.
    """
    data = dict(data or {})
    op, task, worker, excluded = _lock_task(session, task_id, user)
    _check_member(task, worker, excluded=excluded)
    errors = submitted_data_errors(data)
    if errors:
        raise FormValidationError(errors)
    data = exact_numbers(data)
    spiff_task = op.task(task.task_uuid)
    if spiff_task is None or spiff_task.state != TaskState.READY:
        raise ConflictError(f"Task {task.id} ({task.name}) is no longer active")
    schema = task_form_schema(session, task)
    if schema is not None:
        data = keep_read_only(schema, task_ui_schema(session, task), data, spiff_task.data)
        errors = validate_submission(schema, data)
        if errors:
            raise FormValidationError(errors)
    spiff_task.set_data(**data)
    with op.guard(running=spiff_task):
        spiff_task.run()
    # A post-script that fails leaves the task in ERROR: the submission is kept
    # on it, and retrying the instance runs the task again with it.
    op.write_task_row(
        task,
        state="completed" if spiff_task.state == TaskState.COMPLETED else "error",
        completed_at=utcnow(),
        completed_by_id=worker.user_id,
    )
    op.audit(
        "task_completed", element=task.bpmn_id, detail={"task_id": task.id, "name": task.name, "data": data}
    )
    op.advance()
    op.save(completed_task_uuid=task.task_uuid)
    return op.instance


def claim_task(session: so.Session, task_id: int, *, user: str) -> HumanTask:
    """Assign *task_id* to *user* (who must be allowed to work on it).

    :raises ConflictError: someone else has claimed or completed it.
    """
    op, task, worker, excluded = _lock_task(session, task_id, user)
    if task.assignee_id is not None and task.assignee_id != worker.user_id:
        holder = task.assignee.username if task.assignee else "someone else"
        raise ConflictError(f"Task {task.id} ({task.name}) is already claimed by {holder}")
    _check_member(task, worker, excluded=excluded)
    _write_task(session, task, assignee_id=worker.user_id)
    op.audit("task_claimed", element=task.bpmn_id, detail={"task_id": task.id})
    op.touch()
    op.write_audits()
    return task


def unclaim_task(session: so.Session, task_id: int, *, user: str) -> HumanTask:
    """Release *task_id* back to its group; only the assignee or an admin may.

    :raises PermissionDeniedError: the user is neither, or the process itself assigned the task.
    """
    op, task, worker, _excluded = _lock_task(session, task_id, user)
    if task.assignee_id not in (None, worker.user_id) and "admin" not in worker.roles:
        raise PermissionDeniedError(f"Only the assignee or an admin may release task {task.id}")
    spiff_task = op.task(task.task_uuid)
    properties = (
        (getattr(spiff_task.task_spec, "extensions", None) or {}).get("properties", {}) if spiff_task else {}
    )
    if properties.get("assignee"):
        raise PermissionDeniedError(
            f"Task {task.id} ({task.name}) is assigned by the process to one person and cannot be released"
        )
    _write_task(session, task, assignee_id=None)
    op.audit("task_unclaimed", element=task.bpmn_id, detail={"task_id": task.id})
    op.touch()
    op.write_audits()
    # Back in the group: its members hear of it as of a new task (not who released it).
    queue_task_emails(session, op.instance, op.definition, [TaskToNotify.from_task(task)], actor=user)
    return task


def _admin_operation(session: so.Session, instance_id: int, user: str | None) -> InstanceOperation:
    op = InstanceOperation.lock(session, instance_id, actor=user)
    if user is not None:
        admin = member(session, op.organisation, user, otherwise=f"No instance {instance_id}")
        if "admin" not in admin.roles:
            raise PermissionDeniedError(f"User {user!r} is not an admin of this organisation")
    return op


def suspend_instance(session: so.Session, instance_id: int, *, user: str | None) -> ProcessInstance:
    """Suspend an active instance: no task completion, timer or message moves it until resumed.

    :raises InvalidStateError: the instance is not running or waiting.
    """
    op = _admin_operation(session, instance_id, user)
    if op.instance.status not in (*ACTIVE_STATUSES, "error"):
        raise InvalidStateError(f"Instance {instance_id} is {op.instance.status} and cannot be suspended")
    op.instance.status = "suspended"
    op.audit("suspended")
    op.save()
    return op.instance


def resume_instance(session: so.Session, instance_id: int, *, user: str | None) -> ProcessInstance:
    """Resume a suspended instance; timers that fell due meanwhile fire at once.

    :raises InvalidStateError: the instance is not suspended.
    """
    op = _admin_operation(session, instance_id, user)
    if op.instance.status != "suspended":
        raise InvalidStateError(f"Instance {instance_id} is {op.instance.status}, not suspended")
    op.instance.status = "running"
    op.audit("resumed")
    op.save()
    return op.instance


def cancel_instance(session: so.Session, instance_id: int, *, user: str | None) -> ProcessInstance:
    """Cancel an instance: open tasks are cancelled, timers and subscriptions removed.

    :raises InvalidStateError: the instance has already ended.
    """
    op = _admin_operation(session, instance_id, user)
    if op.instance.status in ("completed", "cancelled"):
        raise InvalidStateError(f"Instance {instance_id} is already {op.instance.status}")
    op.workflow.cancel()
    op.instance.status = "cancelled"
    op.instance.completed_at = utcnow()
    op.audit("cancelled")
    op.save()
    return op.instance


def retry_instance(
    session: so.Session, instance_id: int, *, user: str | None, data: dict[str, Any] | None = None
) -> ProcessInstance:
    """Run the failed tasks of an instance in ``error`` again, optionally with corrected data.

    Also re-arms jobs of the instance that had become incidents. What failed is
    repeated: a task that failed while running runs again, one that failed while
    being readied (a pre-script, a multi-instance's input) is readied again, and a
    human task whose post-script failed completes again with what was submitted.

    :raises InvalidStateError: the instance is not in ``error``.
    :raises FormValidationError: *data* uses a reserved name or nests too deep.
    """
    op = _admin_operation(session, instance_id, user)
    if op.instance.status != "error":
        raise InvalidStateError(f"Instance {instance_id} is {op.instance.status}, not in error")
    errors = submitted_data_errors(data or {})
    if errors:
        raise FormValidationError(errors)
    data = exact_numbers(data)
    op.audit("retried", detail={"data": data or {}})
    op.instance.error_message = None
    for task in op.workflow.get_tasks(state=TaskState.ERROR):
        if data:
            task.set_data(**data)
        _retry_task(session, op, task)
    for job in session.scalars(
        sa.select(Job).where(Job.instance_id == instance_id, Job.status == "incident")
    ):
        job.status = "pending"
        job.attempts = 0
        job.due_at = utcnow()
        job.last_error = None
    op.instance.status = "running"
    op.advance()
    op.save()
    return op.instance


def _retry_task(session: so.Session, op: InstanceOperation, task: Task) -> None:
    """Repeat what failed: readying the task, running it, or (a submitted human task) completing it."""
    failed_in = task.internal_data.pop(FAILED_IN, "run")
    if failed_in == "update" and task.parent is not None:
        # Readying a task inherits its parent's data over its own: corrections
        # made on the failed task must survive that.
        task.parent.data.update(task.data)
        task._set_state(TaskState.WAITING)
        with op.guard(running=task.parent):  # failing again is again a failure to ready it
            task.task_spec._update(task)
        return
    task._set_state(TaskState.READY)
    if not task.task_spec.manual:
        return  # advance() runs it
    submitted = session.scalar(
        sa.select(HumanTask).where(
            HumanTask.instance_id == op.instance.id,
            HumanTask.task_uuid == str(task.id),
            HumanTask.state == "error",
        )
    )
    if submitted is None:
        return  # failed before anyone worked on it: back to the inbox
    with op.guard(running=task):
        task.run()
    if task.state == TaskState.COMPLETED:
        submitted.state = "completed"
        submitted.completed_at = utcnow()


def list_tasks(
    session: so.Session,
    *,
    organisation_id: int | None = None,
    instance_id: int | None = None,
    user: str | None = None,
    state: str | None = "ready",
) -> list[HumanTask]:
    """Return human tasks, oldest first, from the task index only (:func:`engine.inbox.matching_tasks`).

    With *user*: the tasks that user may work on (in their organisations
    where they have a role that works on tasks, assigned to them or to one
    of their groups, not excluded from), as :func:`check_may_work_on` decides.
    For short lists (a case's tasks); the inbox pages with :func:`engine.inbox_page`.

    :raises NotFoundError: no user called *user*.
    """
    where = TaskFilter(organisation_id=organisation_id, instance_id=instance_id, state=state)
    user_id = get_user(session, user).id if user is not None else None
    return matching_tasks(session, user_id=user_id, where=where)


def instance_events(session: so.Session, instance_id: int) -> list[AuditEvent]:
    """Return the audit trail of an instance, oldest first."""
    return list(
        session.scalars(
            sa.select(AuditEvent).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.id)
        )
    )


def instance_subscriptions(session: so.Session, instance_id: int) -> list[MessageSubscription]:
    """Return the messages an instance is waiting for."""
    return list(
        session.scalars(sa.select(MessageSubscription).where(MessageSubscription.instance_id == instance_id))
    )


# Audit events that show an element ran to its end (history older than the
# compacted workflow tree lives only in the audit trail and the task index).
_COMPLETING_EVENTS = ("task_completed", "service_called", "decision_made", "timer_fired", "message_received")


def element_states(session: so.Session, instance: ProcessInstance) -> dict[str, list[str]]:
    """Return the BPMN element ids of *instance* by state, for marking its diagram.

    ``active``: user or manual tasks waiting for a person; ``waiting``: timers,
    message catches and other events waiting; ``failed``: the elements in error;
    ``completed``: everything that has run (sequence flows are not included).
    """
    active: set[str] = set()
    waiting: set[str] = set()
    failed: set[str] = set()
    completed: set[str] = set()
    if instance.state:
        op = InstanceOperation(session, instance, actor=None)
        for task in op.workflow.get_tasks():
            bpmn_id = getattr(task.task_spec, "bpmn_id", None)
            if not bpmn_id:
                continue
            if task.state == TaskState.ERROR:
                failed.add(bpmn_id)
            elif task.state in (TaskState.READY, TaskState.STARTED) and task.task_spec.manual:
                active.add(bpmn_id)
            elif task.state == TaskState.WAITING or (
                task.state == TaskState.STARTED and not task.task_spec.manual
            ):
                waiting.add(bpmn_id)
            elif task.state == TaskState.COMPLETED:
                completed.add(bpmn_id)
    completed.update(
        session.scalars(
            sa.select(HumanTask.bpmn_id).where(
                HumanTask.instance_id == instance.id, HumanTask.state == "completed"
            )
        )
    )
    completed.update(
        e
        for e in session.scalars(
            sa.select(AuditEvent.element).where(
                AuditEvent.instance_id == instance.id, AuditEvent.kind.in_(_COMPLETING_EVENTS)
            )
        )
        if e
    )
    busy = active | waiting | failed
    return {
        "active": sorted(active),
        "waiting": sorted(waiting - active),
        "failed": sorted(failed),
        "completed": sorted(completed - busy),
    }
