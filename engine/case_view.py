"""What a case page shows besides the diagram: what the case waits for, its summary, its forms so far.

Read-only questions about one instance, for the web's case page, plus
:func:`register_message`, which lets a case handler register a message from an
outside party (a customer's reply, a supplier's question) that would otherwise
arrive through the API or the command line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from forms import validate_submission

from ._case_file import CASE_FILE
from ._workflow import InstanceOperation, event_definitions, timer_due
from .caches import member, organisation_by_id
from .definitions import bundle_json, load_parsed
from .errors import FormValidationError, InvalidStateError, NotFoundError, PermissionDeniedError
from .identity import TASK_ROLES
from .messages import send_message
from .models import AuditEvent, HumanTask, Job, MessageSubscription, ProcessDefinition, ProcessInstance
from .time_zones import organisation_time_zone

# A correlation property read straight from a payload key: a case handler's form
# can be given that key (and its expected value) without asking for it.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CaseWait:
    """One thing a case waits for: a person's task, a time, or a message.

    ``within`` holds the (BPMN id, name) of each subprocess and called process
    the element runs in, outermost first. For a message, ``group`` is the lane or candidate group
    whose members may register it (``None``: anyone who works on tasks), and
    ``correlation`` the values the instance expects the message to carry.
    """

    kind: str
    element: str
    name: str
    due_at: dt.datetime | None = None
    task: HumanTask | None = None
    message: str | None = None
    correlation: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    within: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CompletedForm:
    """A human task completed on the case with its form and the values submitted, or a message received.

    For a message, ``task`` is ``None``, ``message`` its name, ``data`` its
    payload and the schemas those of its form in ``case.json`` (empty without one).
    """

    task: HumanTask | None
    schema: dict[str, Any]
    ui_schema: dict[str, Any]
    data: dict[str, Any]
    at: dt.datetime
    actor: str | None = None
    message: str | None = None


def case_file(session: so.Session, definition: ProcessDefinition) -> dict[str, Any]:
    """Return the definition's ``case.json`` (summary fields, message forms), or ``{}`` if it has none."""
    if load_parsed(session, definition).file(CASE_FILE) is None:
        return {}
    found: dict[str, Any] = bundle_json(session, definition, CASE_FILE)
    return found


def _enclosing(op: InstanceOperation, task: Task) -> list[Task]:
    """Return the subprocess and call activity tasks *task* runs in, innermost first."""
    found: list[Task] = []
    workflow = task.workflow
    while getattr(workflow, "parent_task_id", None) is not None:
        parent = op.workflow.get_task_from_id(workflow.parent_task_id)
        found.append(parent)
        workflow = parent.workflow
    return found


def _group_of(task: Task, enclosing: list[Task]) -> str | None:
    for spec in [task.task_spec, *(t.task_spec for t in enclosing)]:
        properties = (getattr(spec, "extensions", None) or {}).get("properties", {})
        group = properties.get("candidateGroup") or getattr(spec, "lane", None)
        if group:
            return str(group)
    return None


def case_waits(session: so.Session, instance: ProcessInstance) -> list[CaseWait]:
    """Return what *instance* waits for: open human tasks, timers and messages, in that order.

    Timers come with their due time from the job table (the source of truth the
    worker fires from), messages with the correlation values the instance
    expects. An ended instance waits for nothing.
    """
    if instance.status in ("completed", "cancelled") or not instance.state:
        return []
    tasks = list(
        session.scalars(
            sa.select(HumanTask)
            .where(HumanTask.instance_id == instance.id, HumanTask.state == "ready")
            .order_by(HumanTask.created_at, HumanTask.id)
        )
    )
    jobs = {
        job.task_uuid: job
        for job in session.scalars(sa.select(Job).where(Job.instance_id == instance.id, Job.kind == "timer"))
    }
    subscriptions = {
        (s.task_uuid, s.message_name): s
        for s in session.scalars(
            sa.select(MessageSubscription).where(MessageSubscription.instance_id == instance.id)
        )
    }
    op = InstanceOperation(session, instance, actor=None)
    waits = [CaseWait(kind="task", element=t.bpmn_id, name=t.name, due_at=t.due_at, task=t) for t in tasks]
    human = {t.task_uuid for t in tasks}
    for uuid, names in _waiting_tasks(op):
        task = op.task(uuid)
        if task is None or uuid in human:
            continue
        enclosing = _enclosing(op, task)
        within = tuple(
            (t.task_spec.bpmn_id, t.task_spec.bpmn_name or t.task_spec.bpmn_id) for t in reversed(enclosing)
        )
        spec = task.task_spec
        name = spec.bpmn_name or spec.bpmn_id
        for definition in names:
            if isinstance(definition, TimerEventDefinition):
                job = jobs.get(uuid)
                due = job.due_at if job is not None else timer_due(task, definition)
                waits.append(
                    CaseWait(kind="timer", element=spec.bpmn_id, name=name, due_at=due, within=within)
                )
            elif isinstance(definition, MessageEventDefinition):
                subscription = subscriptions.get((uuid, definition.name))
                waits.append(
                    CaseWait(
                        kind="message",
                        element=spec.bpmn_id,
                        name=name,
                        message=definition.name,
                        correlation=json.loads(subscription.correlation_key) if subscription else {},
                        group=_group_of(task, enclosing),
                        within=within,
                    )
                )
    root = str(op.workflow.task_tree.id)
    for (uuid, message), subscription in subscriptions.items():
        if uuid == root:
            # An event subprocess of the whole process starts on it.
            waits.append(
                CaseWait(
                    kind="message",
                    element=message,
                    name=message,
                    message=message,
                    correlation=json.loads(subscription.correlation_key),
                )
            )
    return waits


def _waiting_tasks(op: InstanceOperation) -> list[tuple[str, list[Any]]]:
    return [
        (str(t.id), event_definitions(t))
        for t in op.workflow.event_manager.tasks.values()
        if t.state == TaskState.WAITING
    ]


def message_form(
    session: so.Session, definition: ProcessDefinition, message: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return the JSON Schema and UI schema a case handler fills in to register *message*, if any.

    The bundle's ``case.json`` names it (``messages.<name>.form``).
    """
    entry = (case_file(session, definition).get("messages") or {}).get(message) or {}
    if not entry.get("form"):
        return None
    schema: dict[str, Any] = bundle_json(session, definition, entry["form"])
    ui: dict[str, Any] = bundle_json(session, definition, entry["form_ui"]) if entry.get("form_ui") else {}
    return schema, ui


def may_register(session: so.Session, wait: CaseWait, instance: ProcessInstance, username: str) -> bool:
    """Tell whether *username* may register the message *wait* awaits on *instance*.

    Admins may; others need a role that works on tasks and, when the waiting
    element has a lane or candidate group, membership of it.
    """
    try:
        check_may_register(session, wait, instance, username)
    except (PermissionDeniedError, NotFoundError):
        return False
    return True


def awaited_message(session: so.Session, instance: ProcessInstance, message: str) -> CaseWait:
    """Return what *instance* waits for that catches *message*.

    :raises InvalidStateError: the instance does not (or no longer) wait for *message*.
    """
    wait = next((w for w in case_waits(session, instance) if w.message == message), None)
    if wait is None or instance.status not in ("running", "waiting"):
        raise InvalidStateError(f"Instance {instance.id} does not wait for message {message!r}")
    return wait


def check_may_register(session: so.Session, wait: CaseWait, instance: ProcessInstance, username: str) -> None:
    """Check that *username* may register the message *wait* awaits (see :func:`may_register`).

    :raises NotFoundError: the user is not a member of the instance's organisation.
    :raises PermissionDeniedError: naming the role or group that is missing.
    """
    organisation = organisation_by_id(session, instance.organisation_id)
    if organisation is None:
        raise NotFoundError(f"No instance {instance.id}")
    actor = member(session, organisation, username, otherwise=f"No instance {instance.id}")
    if "admin" in actor.roles:
        return
    if not TASK_ROLES & actor.roles:
        raise PermissionDeniedError(
            f"User {username!r} may not register message {wait.message!r}: their role only reads cases"
        )
    if wait.group and wait.group not in actor.groups:
        raise PermissionDeniedError(
            f"User {username!r} is not in group {wait.group!r}, which registers message {wait.message!r} "
            f"on instance {instance.id}"
        )


def register_message(
    session: so.Session,
    instance_id: int,
    message: str,
    payload: dict[str, Any],
    *,
    user: str,
    organisation_id: int,
) -> list[ProcessInstance]:
    """Register *message* from an outside party on instance *instance_id* as *user*; return whom it reached.

    The message gets the correlation values the instance expects, then goes
    through :func:`engine.send_message` (audited as received, with *user* as the
    actor), in the caller's transaction. With a form in ``case.json`` the
    payload must satisfy it.

    :raises NotFoundError: no such instance in the organisation.
    :raises InvalidStateError: the instance does not wait for *message*, or its
        correlation cannot be filled in from a form.
    :raises PermissionDeniedError: *user* is not in the lane or group that registers it.
    :raises FormValidationError: the payload does not satisfy the message's form.
    """
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or instance.organisation_id != organisation_id:
        raise NotFoundError(f"No instance {instance_id}")
    wait = awaited_message(session, instance, message)
    check_may_register(session, wait, instance, user)
    form = message_form(session, instance.definition, message)
    if form is not None:
        zone = organisation_time_zone(session, instance.organisation_id)
        errors = validate_submission(form[0], payload, time_zone=zone)
        if errors:
            raise FormValidationError(errors)
    body = dict(payload)
    for prop in instance.definition.message_correlations.get(message, []):
        if prop["name"] not in wait.correlation:
            continue
        if not _PLAIN_KEY.match(prop["expression"]):
            raise InvalidStateError(
                f"Message {message!r} reads {prop['name']!r} with the expression {prop['expression']!r}: "
                "it cannot be registered by hand; send it through the API"
            )
        body[prop["expression"]] = wait.correlation[prop["name"]]
    reached = send_message(
        session,
        message,
        body,
        organisation=instance.organisation.key,
        user=user,
        test_cases=bool(instance.is_test),
    )
    if instance not in reached:
        raise InvalidStateError(f"Message {message!r} did not reach instance {instance_id}")
    return reached


def completed_forms(session: so.Session, instance: ProcessInstance) -> list[CompletedForm]:
    """Return the forms completed and the messages received on *instance*, in the order they happened.

    Human tasks without a form are left out. The values are those submitted
    (from the audit trail); the forms come from the instance's definition version.
    """
    events = session.scalars(
        sa.select(AuditEvent)
        .where(
            AuditEvent.instance_id == instance.id,
            AuditEvent.kind.in_(("task_completed", "message_received")),
        )
        .order_by(AuditEvent.id)
    ).all()
    task_ids = [e.detail.get("task_id") for e in events if isinstance(e.detail.get("task_id"), int)]
    tasks = (
        {t.id: t for t in session.scalars(sa.select(HumanTask).where(HumanTask.id.in_(task_ids)))}
        if task_ids
        else {}
    )
    found: list[CompletedForm] = []
    for event in events:
        if event.kind == "message_received":
            name, payload = event.detail.get("message"), event.detail.get("payload")
            if isinstance(name, str) and isinstance(payload, dict):
                schema, ui = message_form(session, instance.definition, name) or ({}, {})
                found.append(
                    CompletedForm(
                        task=None,
                        schema=schema,
                        ui_schema=ui,
                        data=payload,
                        at=event.at,
                        actor=event.actor,
                        message=name,
                    )
                )
            continue
        task = tasks.get(event.detail.get("task_id"))  # type: ignore[arg-type]
        data = event.detail.get("data")
        if task is None or not task.form or not isinstance(data, dict):
            continue
        try:
            schema = bundle_json(session, instance.definition, task.form)
            ui = bundle_json(session, instance.definition, task.form_ui) if task.form_ui else {}
        except NotFoundError:
            continue
        found.append(
            CompletedForm(task=task, schema=schema, ui_schema=ui, data=data, at=event.at, actor=event.actor)
        )
    return found
