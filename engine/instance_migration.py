"""Moving running instances to another version of their process (an admin action).

Built on SpiffWorkflow's own migration support (``SpiffWorkflow.bpmn.util.diff``):
``diff_workflow`` aligns the task specs of the instance's version N with those
of version M (by BPMN id, then by structure) and ``migrate_workflow`` points
every task at its new spec and re-predicts the open branches.

Which instances can move
------------------------
Only instances of version N that are ``running`` or ``waiting`` and are not
studio test cases are considered (:func:`plan_migration`). An instance is
*refused*, with a :class:`MigrationRefusal` naming the element, field or version, when:

- it is suspended or in error (``status``): resume or repair it first;
- an element it is at (an open task, a waiting event, a running subprocess)
  does not exist in M (``element_removed``, ``subprocess_removed``), or is of
  another kind there (``type_changed``: a user task that became a script task);
- it has passed an element that M does not have (``history_removed``): the
  history could not be kept;
- a waiting event waits for something else in M (``event_changed``: another
  message, or a timer became a message);
- an open user task's form changed incompatibly (``form_removed``,
  ``form_type_changed``, ``form_required_added``). *Incompatible* means: the
  form file is not in M; or a field present in both forms has another JSON
  Schema ``type`` in M (values already entered or carried from earlier steps
  would no longer validate); or a field is required in M but not in N, has no
  ``default`` in M, and the case holds no value for it (the handler, who may
  have filled in the form as N showed it, would be asked for something the
  task did not ask for). Nested fields (objects, rows of a list) are compared
  the same way and named by path, e.g. ``quotes[].price``. Labels, help
  texts, new optional fields, removed fields and new defaults are compatible;
- the migrated state does not restore onto M, or an open task would not stay
  open (``not_restorable``): checked by actually migrating a copy, writing it
  and restoring it onto M's spec, in the dry run as in the move;
- the version it would go to belongs to another organisation
  (``other_organisation``), or it changed since the dry run
  (``changed``, when the caller passes the versions it saw).

Moving (:func:`migrate_instances`) takes a session factory: each instance is
locked, checked again and moved in its own transaction (as
:func:`engine.run_due_jobs` runs jobs), so one refused or failing instance
leaves the others moved and itself untouched. A move keeps the open tasks'
ids (their index rows get M's name, lane, group and form), keeps a waiting
timer's due time when M's timer has the same expression, rewrites the timer
jobs and message subscriptions for M, sets the instance's definition to M, and
records the instance event ``migrated`` and the admin action
``instance_migrated`` in the same transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.bpmn.util.diff import WorkflowDiff, diff_workflow, migrate_workflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from ._serializer import SERIALIZER
from ._workflow import InstanceOperation
from .admin_audit import record_admin_action
from .definitions import load_parsed
from .errors import ConflictError, DataError, NotFoundError, ProcflowError
from .models import HumanTask, Organisation, ProcessDefinition, ProcessInstance, utcnow

MIGRATABLE_STATUSES = ("running", "waiting")
# Instances that are considered at all: what has ended stays on the version it ended on.
CONSIDERED_STATUSES = ("running", "waiting", "suspended", "error")
_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
_HISTORY = TaskState.COMPLETED | TaskState.CANCELLED

_MESSAGES = {
    "status": "it is {status}: only running or waiting instances move (resume or repair it first)",
    "element_removed": "its open element {element} does not exist in version {version}",
    "subprocess_removed": "its subprocess {element} does not exist in version {version}",
    "type_changed": (
        "its open element {element} is a {old} in version {from_version} but a {new} in version {version}"
    ),
    "history_removed": "it has passed element {element}, which version {version} does not have",
    "event_changed": "its waiting event {element} waits for {old}, in version {version} for {new}",
    "form_removed": "the form {form} of its open task {element} is not in version {version}",
    "form_type_changed": (
        "the field {field} of its open task {element} is of type {old}, in version {version} of type {new}"
    ),
    "form_required_added": (
        "the field {field} of its open task {element} is required in version {version}, "
        "has no default there and the case has no value for it"
    ),
    "not_restorable": "its state cannot be moved to version {version}: {error}",
    "other_organisation": "version {version} belongs to another organisation",
    "changed": "it changed since the dry run; run the dry run again",
    "not_on_source": "it is no longer on version {from_version}",
    "failed": "moving it failed: {error}",
}


@dataclass(frozen=True)
class MigrationRefusal:
    """Why an instance cannot move: a code (see the module documentation) and the values it names."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """The reason in English, e.g. ``its open element approve does not exist in version 2``."""
        return _MESSAGES[self.code].format_map(_Defaulting(self.params))


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


class MigrationRefused(ProcflowError):
    """The instance cannot move to the version; ``refusal`` says why."""

    def __init__(self, instance_id: int, refusal: MigrationRefusal) -> None:
        self.instance_id = instance_id
        self.refusal = refusal
        super().__init__(f"Instance {instance_id} cannot move: {refusal.message}")


@dataclass(frozen=True)
class MigrationCandidate:
    """One instance of version N in a dry run: whether it can move, and where it is."""

    instance_id: int
    organisation: str
    title: str
    business_key: str | None
    status: str
    lock_version: int
    # Where it is: the BPMN ids of its open tasks and waiting events.
    elements: tuple[str, ...]
    refusal: MigrationRefusal | None

    @property
    def movable(self) -> bool:
        """Whether it can move (no refusal)."""
        return self.refusal is None


@dataclass(frozen=True)
class MigrationPlan:
    """The dry run of moving the instances of *source* to *target*."""

    source: ProcessDefinition
    target: ProcessDefinition
    candidates: tuple[MigrationCandidate, ...]

    @property
    def movable(self) -> list[MigrationCandidate]:
        """The instances that can move."""
        return [c for c in self.candidates if c.movable]

    @property
    def refused(self) -> list[MigrationCandidate]:
        """The instances that cannot, each with its refusal."""
        return [c for c in self.candidates if not c.movable]


@dataclass
class MigrationResult:
    """What a move did: the ids moved, and the ids refused (or failed) with their refusal."""

    migrated: list[int] = field(default_factory=list)
    refused: list[tuple[int, MigrationRefusal]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """``{"migrated": [ids], "refused": [{"id", "reason"}]}``, as ``procflow instance migrate`` prints."""
        return {
            "migrated": list(self.migrated),
            "refused": [{"id": i, "reason": r.message} for i, r in self.refused],
        }


# -- choosing versions ------------------------------------------------------------


def migration_versions(
    session: so.Session, organisation_id: int, *, include_shared: bool
) -> list[ProcessDefinition]:
    """Return the versions an admin of the organisation may move instances between, by process and version.

    The organisation's own versions; with *include_shared* (admins of the
    platform organisation, who own the shared versions) the shared ones too.
    Studio test versions are never offered.
    """
    owner = ProcessDefinition.organisation_id == organisation_id
    if include_shared:
        owner = sa.or_(owner, ProcessDefinition.organisation_id.is_(None))
    return list(
        session.scalars(
            sa.select(ProcessDefinition)
            .where(owner, ProcessDefinition.is_test.is_(False))
            .order_by(
                ProcessDefinition.process_id,
                ProcessDefinition.organisation_id.is_(None),
                ProcessDefinition.version,
            )
        )
    )


def find_migration_version(
    session: so.Session, process_id: str, version: int, organisation_id: int | None, *, field_name: str
) -> ProcessDefinition:
    """Return version *version* of *process_id*: the organisation's own, or shared (``None``).

    :raises NotFoundError: no such version (the message names *field_name*).
    """
    owner = (
        ProcessDefinition.organisation_id.is_(None)
        if organisation_id is None
        else ProcessDefinition.organisation_id == organisation_id
    )
    definition = session.scalar(
        sa.select(ProcessDefinition).where(
            ProcessDefinition.process_id == process_id,
            ProcessDefinition.version == version,
            owner,
            ProcessDefinition.is_test.is_(False),
        )
    )
    if definition is None:
        whose = "shared" if organisation_id is None else "the organisation's own"
        raise NotFoundError(f"{field_name}: {process_id!r} has no version {version} among {whose} versions")
    return definition


def check_migration_pair(source: ProcessDefinition, target: ProcessDefinition) -> None:
    """Check that instances of *source* can be moved to *target* at all.

    :raises DataError: not the same process, or the same version (``field="to_version"``).
    """
    if source.process_id != target.process_id:
        raise DataError(
            f"to_version: version {target.version} is of {target.process_id!r}, not {source.process_id!r}"
        )
    if source.id == target.id:
        raise DataError("to_version: the instances are on that version already; choose another one")


# -- the dry run ----------------------------------------------------------------------


def _scope(source: ProcessDefinition, organisation_id: int | None) -> sa.Select[ProcessInstance]:
    stmt = sa.select(ProcessInstance).where(
        ProcessInstance.definition_id == source.id,
        ProcessInstance.status.in_(CONSIDERED_STATUSES),
        ProcessInstance.is_test.is_(False),
    )
    if organisation_id is not None:
        stmt = stmt.where(ProcessInstance.organisation_id == organisation_id)
    return stmt.order_by(ProcessInstance.id)


def plan_migration(
    session: so.Session,
    source: ProcessDefinition,
    target: ProcessDefinition,
    *,
    organisation_id: int | None,
    limit: int = 1000,
) -> MigrationPlan:
    """Dry run: which instances of *source* can move to *target*, which cannot and why.

    Instances of the organisation *organisation_id* (``None``: of every
    organisation, for shared versions), at most *limit*, oldest first. Each is
    restored and migrated in memory exactly as :func:`migrate_instance` would,
    and nothing is written; nothing is locked.

    :raises DataError: see :func:`check_migration_pair`.
    """
    check_migration_pair(source, target)
    keys: dict[int, str] = {
        row[0]: row[1] for row in session.execute(sa.select(Organisation.id, Organisation.key))
    }
    candidates = []
    for instance in session.scalars(_scope(source, organisation_id).limit(limit)):
        refusal = _pre_check(instance, source, target)
        elements: tuple[str, ...] = ()
        if refusal is None or refusal.code == "status":
            op = InstanceOperation(session, instance, actor=None)
            elements = _open_elements(op.workflow)
            if refusal is None:
                refusal = _migrate_in_memory(session, op, source, target)
        candidates.append(
            MigrationCandidate(
                instance_id=instance.id,
                organisation=keys.get(instance.organisation_id, "?"),
                title=instance.title,
                business_key=instance.business_key,
                status=instance.status,
                lock_version=instance.lock_version,
                elements=elements,
                refusal=refusal,
            )
        )
    return MigrationPlan(source=source, target=target, candidates=tuple(candidates))


def _pre_check(
    instance: ProcessInstance, source: ProcessDefinition, target: ProcessDefinition
) -> MigrationRefusal | None:
    if instance.definition_id != source.id:
        return MigrationRefusal("not_on_source", {"from_version": source.version})
    if target.organisation_id is not None and target.organisation_id != instance.organisation_id:
        return MigrationRefusal("other_organisation", {"version": target.version})
    if instance.status not in MIGRATABLE_STATUSES:
        return MigrationRefusal("status", {"status": instance.status})
    return None


def _open_elements(workflow: BpmnWorkflow) -> tuple[str, ...]:
    names: list[str] = []
    for wf in (workflow, *workflow.subprocesses.values()):
        for task in wf.tasks.values():
            if task.has_state(TaskState.READY | TaskState.WAITING | TaskState.ERROR):
                bpmn_id = getattr(task.task_spec, "bpmn_id", None)
                if bpmn_id and bpmn_id not in names:
                    names.append(bpmn_id)
    return tuple(names)


# -- migrating one workflow ---------------------------------------------------------------


def _element(task: Task) -> str:
    spec = task.task_spec
    return str(getattr(spec, "bpmn_id", None) or spec.name)


def _kind(spec: Any) -> str:
    return type(spec).__name__


def _refusal_from_diffs(
    op: InstanceOperation,
    top: WorkflowDiff,
    subprocesses: Mapping[Any, WorkflowDiff | None],
    source: ProcessDefinition,
    target: ProcessDefinition,
) -> MigrationRefusal | None:
    version = {"version": target.version, "from_version": source.version}
    for sp_id, sp_diff in subprocesses.items():
        if sp_diff is None:
            sp = op.workflow.subprocesses[sp_id]
            return MigrationRefusal("subprocess_removed", {**version, "element": sp.spec.name})
    diffs = [top, *(d for d in subprocesses.values() if d is not None)]
    for diff in diffs:
        for task in diff.removed:
            if task.has_state(_ACTIVE):
                return MigrationRefusal("element_removed", {**version, "element": _element(task)})
        for task in diff.removed:
            if task.has_state(_HISTORY):
                return MigrationRefusal("history_removed", {**version, "element": _element(task)})
    for diff in diffs:
        for task, new_spec in diff.alignment.items():
            if new_spec is None or not task.has_state(_ACTIVE):
                continue
            if _kind(task.task_spec) != _kind(new_spec):
                return MigrationRefusal(
                    "type_changed",
                    {
                        **version,
                        "element": _element(task),
                        "old": _kind(task.task_spec),
                        "new": _kind(new_spec),
                    },
                )
            if task.has_state(TaskState.WAITING):
                old_events, new_events = _event_names(task.task_spec), _event_names(new_spec)
                if old_events and old_events != new_events:
                    return MigrationRefusal(
                        "event_changed",
                        {
                            **version,
                            "element": _element(task),
                            "old": ", ".join(old_events),
                            "new": ", ".join(new_events) or "nothing",
                        },
                    )
    return None


def _event_names(spec: Any) -> list[str]:
    """What a catching event waits for: ``message 'x'``, ``a timer``, sorted."""
    definition = getattr(spec, "event_definition", None)
    if definition is None:
        return []
    found = []
    for item in getattr(definition, "event_definitions", None) or [definition]:
        if isinstance(item, MessageEventDefinition):
            found.append(f"message '{item.name}'")
        elif isinstance(item, TimerEventDefinition):
            found.append("a timer")
        else:
            found.append(type(item).__name__)
    return sorted(found)


def _form_reference(spec: Any) -> str | None:
    if not isinstance(spec, UserTask):
        return None
    properties = (getattr(spec, "extensions", None) or {}).get("properties", {})
    reference = properties.get("formJsonSchemaFilename")
    return str(reference) if reference else None


def form_changes(
    old: Any, new: Any, data: Mapping[str, Any] | None = None, path: str = ""
) -> list[MigrationRefusal]:
    """Return the incompatible changes from form schema *old* to *new* (see the module documentation).

    *data* is the case's data for the open task: a field newly required that
    it already holds a value for is compatible. Refusals name the field by
    path (``quotes[].price``); ``element`` and ``version`` are filled in by the caller.
    """
    found: list[MigrationRefusal] = []
    if not isinstance(old, dict) or not isinstance(new, dict):
        return found
    old_props: dict[str, Any] = old["properties"] if isinstance(old.get("properties"), dict) else {}
    new_props: dict[str, Any] = new["properties"] if isinstance(new.get("properties"), dict) else {}
    old_required = set(old.get("required") or ()) if isinstance(old.get("required"), list) else set()
    new_required = set(new.get("required") or ()) if isinstance(new.get("required"), list) else set()
    for name, new_field in new_props.items():
        where = f"{path}{name}"
        old_field = old_props.get(name)
        if isinstance(old_field, dict) and isinstance(new_field, dict):
            old_type, new_type = old_field.get("type"), new_field.get("type")
            if old_type is not None and new_type is not None and _types(old_type) != _types(new_type):
                found.append(
                    MigrationRefusal(
                        "form_type_changed",
                        {
                            "field": where,
                            "old": _type_text(old_type),
                            "new": _type_text(new_type),
                            **_titles(new_field),
                        },
                    )
                )
                continue
            value = data.get(name) if data is not None else None
            nested = value if isinstance(value, dict) else None
            found += form_changes(old_field, new_field, nested, f"{where}.")
            old_items, new_items = old_field.get("items"), new_field.get("items")
            if isinstance(old_items, dict) and isinstance(new_items, dict):
                found += form_changes(old_items, new_items, None, f"{where}[].")
        if name in new_required and name not in old_required:
            has_default = isinstance(new_field, dict) and "default" in new_field
            has_value = data is not None and data.get(name) not in (None, "", [])
            if not has_default and not has_value:
                found.append(MigrationRefusal("form_required_added", {"field": where, **_titles(new_field)}))
    return found


def _titles(schema: Any) -> dict[str, Any]:
    """The field's title and its translations (``x-translations``), for naming it to people."""
    if not isinstance(schema, dict) or not isinstance(schema.get("title"), str):
        return {}
    titles = {
        language: entry["title"]
        for language, entry in (schema.get("x-translations") or {}).items()
        if isinstance(entry, dict) and isinstance(entry.get("title"), str)
    }
    return {"title": schema["title"], "titles": titles}


def _types(value: Any) -> frozenset[str]:
    return frozenset(value) if isinstance(value, list) else frozenset([str(value)])


def _type_text(value: Any) -> str:
    return " or ".join(sorted(_types(value)))


def _form_refusal(
    op: InstanceOperation,
    source: ProcessDefinition,
    target: ProcessDefinition,
    tasks: Iterable[tuple[Task, Any]],
    session: so.Session,
) -> MigrationRefusal | None:
    old_bundle, new_bundle = load_parsed(session, source), load_parsed(session, target)
    for task, new_spec in tasks:
        old_ref, new_ref = _form_reference(task.task_spec), _form_reference(new_spec)
        if old_ref is None and new_ref is None:
            continue
        params = {"element": _element(task), "version": target.version, "form": new_ref or old_ref}
        if new_ref is None or new_bundle.file(new_ref) is None:
            return MigrationRefusal("form_removed", params)
        try:
            old_schema = old_bundle.json_file(old_ref) if old_ref else {}
        except (KeyError, ValueError):
            old_schema = {}
        new_schema = new_bundle.json_file(new_ref)
        changes = form_changes(old_schema, new_schema, dict(task.data))
        if changes:
            first = changes[0]
            return MigrationRefusal(first.code, {**first.params, **params})
    return None


def _migrate_in_memory(
    session: so.Session, op: InstanceOperation, source: ProcessDefinition, target: ProcessDefinition
) -> MigrationRefusal | None:
    """Migrate *op*'s workflow onto *target*'s spec in memory; return why not (then it is unusable)."""
    version = {"version": target.version, "from_version": source.version}
    parsed = load_parsed(session, target)
    process_id = op.instance.process_id
    if process_id not in parsed.specs:
        return MigrationRefusal("element_removed", {**version, "element": process_id})
    new_spec = parsed.specs[process_id]
    new_deps = parsed.subprocess_specs[process_id]
    workflow = op.workflow
    registry = SERIALIZER._serializer.registry
    try:
        top, subprocesses = diff_workflow(registry, workflow, new_spec, new_deps)
    except KeyError as exc:  # a task whose spec the alignment never reached
        return MigrationRefusal(
            "not_restorable", {**version, "error": f"element {exc} could not be compared"}
        )
    refusal = _refusal_from_diffs(op, top, subprocesses, source, target)
    if refusal is not None:
        return refusal
    open_user_tasks = [
        (task, new_spec_)
        for diff in (top, *(d for d in subprocesses.values() if d is not None))
        for task, new_spec_ in diff.alignment.items()
        if new_spec_ is not None and task.has_state(TaskState.READY) and task.task_spec.manual
    ]
    refusal = _form_refusal(op, source, target, open_user_tasks, session)
    if refusal is not None:
        return refusal

    # What a reset of the open branches would lose: the data of open tasks (a multi-instance
    # task's item among it) and the fire time of waiting timers.
    ready_before = {str(t.id) for t in op._ready_human_tasks()}
    kept_data = {t.id: copy.deepcopy(t.data) for t in _tasks(workflow) if t.has_state(TaskState.READY)}
    kept_timers = {
        t.id: (copy.deepcopy(t.internal_data), _timer_expressions(t.task_spec))
        for t in _tasks(workflow)
        if t.has_state(TaskState.WAITING) and _timer_expressions(t.task_spec)
    }
    try:
        migrate_workflow(top, workflow, new_spec)
        for sp_id, sp in list(workflow.subprocesses.items()):
            sp_diff = subprocesses.get(sp_id)
            if sp_diff is not None:
                migrate_workflow(sp_diff, sp, new_deps[sp.spec.name])
        workflow.subprocess_specs = new_deps
        for task in _tasks(workflow):
            if task.id in kept_data and task.has_state(TaskState.READY):
                task.data = {**task.data, **kept_data[task.id]}
            kept = kept_timers.get(task.id)
            if (
                kept is not None
                and task.has_state(TaskState.WAITING)
                and _timer_expressions(task.task_spec) == kept[1]
            ):
                task.internal_data = kept[0]
    except Exception as exc:  # SpiffWorkflow or a pre-script refused: the copy is discarded
        return MigrationRefusal("not_restorable", {**version, "error": _one_line(exc)})
    # Every task must now belong to M's specs, or the state would not restore.
    for wf in (workflow, *workflow.subprocesses.values()):
        for task in wf.tasks.values():
            if wf.spec.task_specs.get(task.task_spec.name) is not task.task_spec:
                return MigrationRefusal("history_removed", {**version, "element": _element(task)})
    ready_after = {str(t.id) for t in op._ready_human_tasks()}
    if ready_before - ready_after:
        gone = next(iter(sorted(ready_before - ready_after)))
        task = op.task(gone)
        element = _element(task) if task is not None else gone
        return MigrationRefusal(
            "not_restorable", {**version, "error": f"its open task {element} would not stay open"}
        )
    try:
        SERIALIZER.loads(SERIALIZER.dumps(workflow), SERIALIZER.version, new_spec, new_deps)
    except Exception as exc:
        return MigrationRefusal("not_restorable", {**version, "error": _one_line(exc)})
    return None


def _tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for wf in (workflow, *workflow.subprocesses.values()) for t in wf.tasks.values()]


def _timer_expressions(spec: Any) -> tuple[str, ...]:
    definition = getattr(spec, "event_definition", None)
    if definition is None:
        return ()
    items = getattr(definition, "event_definitions", None) or [definition]
    return tuple(str(d.expression) for d in items if isinstance(d, TimerEventDefinition))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


# -- moving -------------------------------------------------------------------------------


def migrate_instance(
    session: so.Session,
    instance_id: int,
    target: ProcessDefinition,
    *,
    actor: str | None,
    source: ProcessDefinition | None = None,
    expected_lock_version: int | None = None,
    organisation_id: int | None = None,
) -> ProcessInstance:
    """Move one instance to version *target*, in the caller's transaction (see the module documentation).

    Locks the instance and checks it again; *source* (default: its current
    version) is the version it must be on, *expected_lock_version* the version
    counter a dry run saw, *organisation_id* the organisation it must belong to.

    :raises NotFoundError: no such instance (in that organisation).
    :raises MigrationRefused: it cannot move; nothing was changed.
    :raises ConflictError: someone else changed it meanwhile.
    """
    op = InstanceOperation.lock(session, instance_id, actor=actor)
    instance = op.instance
    if organisation_id is not None and instance.organisation_id != organisation_id:
        raise NotFoundError(f"No instance {instance_id}")
    source = source or op.definition
    check_migration_pair(source, target)
    if expected_lock_version is not None and instance.lock_version != expected_lock_version:
        raise MigrationRefused(instance_id, MigrationRefusal("changed"))
    refusal = _pre_check(instance, source, target) or _migrate_in_memory(session, op, source, target)
    if refusal is not None:
        raise MigrationRefused(instance_id, refusal)
    parsed = load_parsed(session, target)
    op.definition = target
    op.spec = parsed.specs[instance.process_id]
    op.subprocess_specs = parsed.subprocess_specs[instance.process_id]
    op.event_subprocess_messages = parsed.event_subprocess_messages(instance.process_id)
    op._timers_before = True  # the old version's jobs and subscriptions are rewritten for M
    op._messages_before = True
    instance.definition_id = target.id
    so.attributes.set_committed_value(instance, "definition", target)
    _rewrite_task_rows(session, op)
    detail = {
        "from_version": source.version,
        "to_version": target.version,
        "from_definition_id": source.id,
        "to_definition_id": target.id,
        "shared": target.organisation_id is None,
    }
    op.audit("migrated", detail=detail)
    op.save()
    record_admin_action(
        session,
        organisation_id=instance.organisation_id,
        actor=actor,
        action="instance_migrated",
        target=f"instance {instance.id}",
        before={"process_id": instance.process_id, "version": source.version},
        after={"process_id": instance.process_id, "version": target.version},
        instance_id=instance.id,
    )
    return instance


def _rewrite_task_rows(session: so.Session, op: InstanceOperation) -> None:
    """Give the open tasks' index rows M's name, lane, group, form and instructions; claims stay."""
    now = utcnow()
    rows = {
        row.task_uuid: row
        for row in session.scalars(
            sa.select(HumanTask).where(HumanTask.instance_id == op.instance.id, HumanTask.state == "ready")
        )
    }
    for task in op._ready_human_tasks():
        row = rows.get(str(task.id))
        if row is None:
            continue
        new, _ = op._new_human_task(task, now)
        values = {
            key: new[key]
            for key in ("bpmn_id", "name", "lane", "form", "form_ui", "instructions")
            if getattr(row, key) != new[key]
        }
        if row.assignee_id is None and row.candidate_group != new["candidate_group"]:
            values["candidate_group"] = new["candidate_group"]
        for key, value in values.items():
            setattr(row, key, value)
    session.flush()


def migrate_instances(
    session_factory: so.sessionmaker[so.Session],
    *,
    source_id: int,
    target_id: int,
    actor: str | None,
    organisation_id: int | None,
    instance_ids: Sequence[int] | None = None,
    expected_versions: Mapping[int, int] | None = None,
) -> MigrationResult:
    """Move the instances of definition *source_id* to *target_id*, each in its own transaction.

    *instance_ids* (default: every instance a dry run would consider now) are
    moved one by one with :func:`migrate_instance`; *expected_versions* maps
    an id to the lock version its dry run saw. A refused or failed instance is
    rolled back alone and listed with its refusal; the others move.

    :raises NotFoundError: no such definition (or not visible to *organisation_id*).
    :raises DataError: see :func:`check_migration_pair`.
    """
    with session_factory.begin() as session:
        source, target = _pair(session, source_id, target_id, organisation_id)
        check_migration_pair(source, target)
        if instance_ids is None:
            instance_ids = list(
                session.scalars(_scope(source, organisation_id).with_only_columns(ProcessInstance.id))
            )
    result = MigrationResult()
    for instance_id in instance_ids:
        try:
            with session_factory.begin() as session:
                source, target = _pair(session, source_id, target_id, organisation_id)
                migrate_instance(
                    session,
                    instance_id,
                    target,
                    actor=actor,
                    source=source,
                    expected_lock_version=(expected_versions or {}).get(instance_id),
                    organisation_id=organisation_id,
                )
        except MigrationRefused as exc:
            result.refused.append((instance_id, exc.refusal))
        except ConflictError:
            result.refused.append((instance_id, MigrationRefusal("changed")))
        except NotFoundError:
            result.refused.append(
                (instance_id, MigrationRefusal("not_on_source", {"from_version": source.version}))
            )
        except Exception as exc:
            result.refused.append((instance_id, MigrationRefusal("failed", {"error": _one_line(exc)})))
        else:
            result.migrated.append(instance_id)
    return result


def _pair(
    session: so.Session, source_id: int, target_id: int, organisation_id: int | None
) -> tuple[ProcessDefinition, ProcessDefinition]:
    found = []
    for definition_id, name in ((source_id, "from_version"), (target_id, "to_version")):
        definition = session.get(ProcessDefinition, definition_id)
        if (
            definition is None
            or definition.is_test
            or (organisation_id is not None and definition.organisation_id not in (None, organisation_id))
        ):
            raise NotFoundError(f"{name}: no such version")
        found.append(definition)
    return found[0], found[1]
