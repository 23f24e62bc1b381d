"""Message delivery with correlation, and message start events.

A message goes to every waiting instance of the organisation whose expected
correlation values equal the message's (found through the indexed
subscription table); if none waits, every process with a message start event
of that name is started with it.

Studio test cases (``is_test``) and real cases never exchange messages: a
message from outside, or thrown by a real case, reaches and starts real cases
only; one thrown by a test case reaches test cases only, and what it starts is
a test case too.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState

from ._sandbox import SandboxedEnvironment
from ._submitted import exact_numbers, submitted_data_errors
from ._workflow import (
    InstanceOperation,
    canonical_key,
    event_definitions,
    get_user_or_none,
    json_safe,
    operations_in_flight,
)
from .definitions import load_parsed, visible_definitions
from .errors import DataError, FormValidationError, NotFoundError, ProcflowError, ScriptError
from .identity import get_organisation
from .models import MessageSubscription, ProcessDefinition, ProcessInstance
from .runtime import checked_start_data, create_instance

_expressions = SandboxedEnvironment(time_limit=1.0)


def _correlation_values(properties: list[dict[str, str]], payload: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for prop in properties:
        try:
            values[prop["name"]] = _expressions.evaluate(prop["expression"], dict(payload))
        except Exception:
            continue
    return values


def send_message(
    session: so.Session,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    organisation: str,
    user: str | None = None,
    test_cases: bool = False,
) -> list[ProcessInstance]:
    """Deliver message *name* within *organisation*; return the instances it reached or started.

    It reaches real cases only; with *test_cases*, studio test cases only (a
    message registered on a test case's page). Runs in the caller's transaction.
    The payload's keys become task data, so they follow the rules of a task
    submission (see :func:`engine.complete_task`).

    :raises NotFoundError: unknown organisation, or nothing waits for or starts on this message.
    :raises DataError: a payload key is a reserved name, the payload nests too deep, or a
        correlation property of the event that would catch it cannot be read from it.
    """
    org = get_organisation(session, organisation)
    reached = _deliver(
        session, org.id, name, dict(payload or {}), actor=user, source_instance_id=None, is_test=test_cases
    )
    if not reached:
        raise NotFoundError(f"No instance waits for message {name!r} and no process starts on it")
    return reached


def deliver_thrown_message(
    session: so.Session,
    *,
    organisation_id: int,
    name: str,
    payload: Any,
    source_instance_id: int,
    actor: str | None,
    is_test: bool = False,
) -> list[ProcessInstance]:
    """Route a message an instance threw; unmatched messages are dropped (and audited by the caller).

    *is_test*: the sender is a studio test case, so only test cases receive it.
    """
    body = payload if isinstance(payload, dict) else {"payload": payload}
    try:
        return _deliver(
            session,
            organisation_id,
            name,
            body,
            actor=actor,
            source_instance_id=source_instance_id,
            is_test=is_test,
        )
    except FormValidationError as exc:
        # The sender's model built the payload; its user cannot fix it field by field.
        raise ProcflowError(
            f"Instance {source_instance_id} sent message {name!r} with a payload that does not "
            f"satisfy the start form of the process it starts: {exc}"
        ) from exc


def _deliver(
    session: so.Session,
    organisation_id: int,
    name: str,
    payload: dict[str, Any],
    *,
    actor: str | None,
    source_instance_id: int | None,
    is_test: bool = False,
) -> list[ProcessInstance]:
    errors = submitted_data_errors(payload)
    if errors:
        # Sent or thrown, the payload's keys become the receiver's data: the rules of a submission.
        sender = f"Instance {source_instance_id} sent message" if source_instance_id else "Message"
        details = "; ".join(message for messages in errors.values() for message in messages)
        raise DataError(f"{sender} {name!r} was not delivered: its payload is refused: {details}")
    payload = exact_numbers(payload)
    definitions = visible_definitions(session, organisation_id)
    property_sets = {
        canonical_key({"p": props}): props
        for definition in definitions
        for props in [definition.message_correlations.get(name, [])]
    } or {"[]": []}
    keys = {canonical_key(_correlation_values(props, payload)) for props in property_sets.values()}
    keys.add(canonical_key({}))
    stmt = (
        sa.select(MessageSubscription)
        .join(ProcessInstance, ProcessInstance.id == MessageSubscription.instance_id)
        .where(
            MessageSubscription.organisation_id == organisation_id,
            MessageSubscription.message_name == name,
            MessageSubscription.correlation_key.in_(keys),
            ProcessInstance.status.in_(("running", "waiting")),
            ProcessInstance.is_test == is_test,
        )
        .order_by(MessageSubscription.id)
    )
    if source_instance_id is not None:
        stmt = stmt.where(MessageSubscription.instance_id != source_instance_id)
    subscriptions = list(session.scalars(stmt))
    reached: list[ProcessInstance] = []
    in_flight = operations_in_flight()
    for op in list(in_flight.values()):
        # Already locked, restored and ahead of its row: catch it in memory (its owner saves it).
        if (
            op.instance.id == source_instance_id
            or op.instance.organisation_id != organisation_id
            or op.instance.status not in ("running", "waiting")
            or bool(op.instance.is_test) != is_test
        ):
            continue
        if _catch(op, name, payload):
            op.audit("message_received", detail={"message": name, "payload": payload})
            op.advance()
            reached.append(op.instance)
    for instance_id in dict.fromkeys(s.instance_id for s in subscriptions):
        if instance_id in in_flight:
            continue
        op = InstanceOperation.lock(session, instance_id, actor=actor)
        if op.instance.status not in ("running", "waiting"):
            continue
        if _catch(op, name, payload):
            op.audit("message_received", detail={"message": name, "payload": payload})
            op.advance()
            op.save()
            reached.append(op.instance)
    if reached:
        return reached
    for definition in definitions:
        if name in (definition.message_starts or []):
            reached.append(
                start_by_message(
                    session, definition, organisation_id, name, payload, actor=actor, is_test=is_test
                )
            )
    return reached


def _catch(op: InstanceOperation, name: str, payload: dict[str, Any]) -> bool:
    waiting = [
        d
        for t in op.workflow.event_manager.tasks.values()
        for d in event_definitions(t)
        if isinstance(d, MessageEventDefinition) and d.name == name
    ]
    if not waiting:
        if name not in op.event_subprocess_messages:
            return False
        # Catching it makes SpiffWorkflow start the event subprocess (a new one each time).
        waiting = [op.event_subprocess_messages[name]]
    definition = waiting[0]
    correlations = _correlations(op, definition, payload)
    caught: int = op.workflow.event_manager.catch(
        BpmnEvent(definition, payload, correlations), internal=False
    )
    return caught > 0


def _correlations(
    op: InstanceOperation, definition: MessageEventDefinition, payload: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Return the message's correlation values by key, as SpiffWorkflow's own calculation does.

    :raises DataError: a correlation property's expression fails on the payload (a key it
        reads is missing, say): names the message, the process, the property and its expression.
    """
    correlations: dict[str, dict[str, Any]] = {}
    for prop in definition.correlation_properties:
        try:
            value = op.script_engine.environment.evaluate(prop.retrieval_expression, payload)
        except ScriptError as exc:
            keys = ", ".join(sorted(map(repr, payload))) or "none"
            raise DataError(
                f"Message {definition.name!r} was not delivered to process {op.instance.process_id!r}: "
                f"its correlation property {prop.name!r} is read from the payload by "
                f"{prop.retrieval_expression!r}, which failed ({exc}). The payload's keys: {keys}."
            ) from exc
        for key in prop.correlation_keys:
            correlations.setdefault(key, {})[prop.name] = value
    return correlations


def start_by_message(
    session: so.Session,
    definition: ProcessDefinition,
    organisation_id: int,
    name: str,
    payload: dict[str, Any],
    *,
    actor: str | None,
    business_key: str | None = None,
    title: str | None = None,
    is_test: bool = False,
) -> ProcessInstance:
    """Start *definition* through its start event on message *name*, with *payload* as the message.

    If that start event has a form, the payload must satisfy it, as a start by hand would.
    *is_test* marks a studio test instance (see :mod:`engine.studio`).

    :raises FormValidationError: the payload does not satisfy the start event's form.
    """
    event = next(
        (
            ts
            for ts in load_parsed(session, definition).specs[definition.process_id].task_specs.values()
            if isinstance(ts, StartEvent) and getattr(ts.event_definition, "name", None) == name
        ),
        None,
    )
    payload = checked_start_data(session, definition, event, payload)
    starter = get_user_or_none(session, actor)
    instance = create_instance(
        definition,
        organisation_id,
        starter.id if starter else None,
        business_key=business_key,
        title=title,
        is_test=is_test,
    )
    op = InstanceOperation(session, instance, actor=actor)
    op.audit(
        "started", detail={"message": name, "payload": json_safe(payload), "version": definition.version}
    )
    # Other start events (a none start for manual registration, say) would fire
    # first and cancel this one; this instance starts by the message only.
    for task in op.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK):
        if (
            isinstance(task.task_spec, StartEvent)
            and getattr(task.task_spec.event_definition, "name", None) != name
        ):
            task.cancel()
    op.advance()
    if not _catch(op, name, payload):
        raise ProcflowError(
            f"Process {instance.process_id!r} declares a start on message {name!r} but did not catch it"
        )
    op.audit("message_received", detail={"message": name, "payload": payload})
    op.advance()
    op.save()
    return instance
