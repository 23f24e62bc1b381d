"""Workflow state (de)serialization without the spec.

The spec belongs to the definition version and is cached in memory, so the
instance row holds only tasks and data. ``Decimal`` and ``date`` values in task
data round-trip exactly. The serializer version is stored beside the state so
SpiffWorkflow's migrations can upgrade old rows.

Task data is whatever users type and scripts build, so it may hold dicts with a
``typename`` key, which SpiffWorkflow's registry would take for one of its own
objects on the way back in (``{"typename": "BpmnWorkflow"}`` broke an instance
for good). Such dicts are wrapped as ``{"typename": "procflow.data", "value":
{...}}`` when written and unwrapped when read, so data stays data.
"""

from __future__ import annotations

import datetime as dt
import json
from contextvars import ContextVar
from decimal import Decimal
from typing import Any
from uuid import UUID, SafeUUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    TaskConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS
from SpiffWorkflow.bpmn.serializer.workflow import VERSION
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from .errors import LimitError
from .limits import STATE_BYTES_VARIABLE, check_state_size, max_state_bytes, may_exceed_state_size

DATA_TYPENAME = "procflow.data"
_TYPENAME = "typename"
_UUID_LENGTH = 36
_UNKNOWN_SAFETY = SafeUUID.unknown


def escape_data(value: Any) -> Any:
    """Return *value* with every dict that has a ``typename`` key wrapped; unchanged values are not copied."""
    if isinstance(value, dict):
        escaped = {k: escape_data(v) for k, v in value.items()}
        if _TYPENAME in value:
            return {_TYPENAME: DATA_TYPENAME, "value": escaped}
        return escaped if any(escaped[k] is not v for k, v in value.items()) else value
    if isinstance(value, list | tuple):
        items = [escape_data(v) for v in value]
        if any(a is not b for a, b in zip(items, value, strict=True)):
            return type(value)(items)
    return value


class _DataSafeRegistry(DefaultRegistry):
    """Escapes user dicts on the way out (internal and workflow data, payloads), unwraps them coming in."""

    def __init__(self) -> None:
        super().__init__()
        self.convert_from_dict[DATA_TYPENAME] = self._restore_data

    def _restore_data(self, dct: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: self.restore(v, **kwargs) for k, v in dct["value"].items()}

    def _convert_for_encoder(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return escape_data(self.clean(obj))
        return super()._convert_for_encoder(obj)


class _TextUUID(UUID):
    """A UUID made from its canonical text, which it keeps: writing the state again needs no ``str()``.

    Saving a workflow writes four UUIDs of every task as text; formatting them
    took about a fifth of the time of building the state's dict.
    """

    __slots__ = ("_text",)
    _text: str

    def __str__(self) -> str:
        return self._text

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {"int": self.int, "_text": self._text}
        if self.is_safe != _UNKNOWN_SAFETY:
            state["is_safe"] = self.is_safe.value
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "int", state["int"])
        safety = SafeUUID(state["is_safe"]) if "is_safe" in state else _UNKNOWN_SAFETY
        object.__setattr__(self, "is_safe", safety)
        object.__setattr__(self, "_text", state.get("_text") or UUID.__str__(self))


# The UUIDs made while one state is restored, by text: a task's id is written up to four times
# (its key, its own id, its parent's child, its children's parent), and becomes one object.
_restoring: ContextVar[dict[str, UUID] | None] = ContextVar("procflow_restoring_uuids", default=None)


def fast_uuid(text: str) -> UUID:
    """Return ``UUID(text)`` for a UUID as SpiffWorkflow writes it (36 characters), without its checks.

    Restoring a workflow makes four UUIDs of every task; ``UUID()`` took a third of the time.
    The text is kept when it is the canonical form (lower case, hyphens where ``str()`` puts them),
    and while a state is restored (:meth:`WorkflowStateSerializer.loads`) each text makes one object.
    """
    made = _restoring.get()
    if made is not None:
        value = made.get(text)
        if value is not None:
            return value
    if len(text) != _UUID_LENGTH:
        return UUID(text)
    if text[8] == text[13] == text[18] == text[23] == "-" and text.islower():
        value = object.__new__(_TextUUID)
        object.__setattr__(value, "_text", text)
    else:
        value = object.__new__(UUID)
    object.__setattr__(value, "int", int(text.replace("-", ""), 16))
    object.__setattr__(value, "is_safe", _UNKNOWN_SAFETY)
    if made is not None:
        made[text] = value
    return value


class _DataSafeTaskConverter(TaskConverter):
    """Task data and its deltas are written as they are by SpiffWorkflow; escape them first.

    Otherwise as SpiffWorkflow 3.2's ``TaskConverter``, written out to look up
    the parent task once and to make UUIDs with :func:`fast_uuid`.
    """

    def to_dict(self, task: Task) -> dict[str, Any]:
        parent = task.workflow.tasks.get(task._parent) if task._parent is not None else None
        if parent is None:
            data = escape_data(task.data)
            delta = {}
        else:
            parent_data, own = parent.data, task.data
            data = {}
            delta = {
                "updates": escape_data(DeepMerge.get_updated_keys(parent_data, own)),
                "deletions": DeepMerge.get_deleted_keys(parent_data, own),
            }
        return {
            "id": str(task.id),
            "parent": str(task._parent) if parent is not None else None,
            "children": [str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": self.registry.convert(task.internal_data),
            "data": data,
            "delta": delta,
        }

    def from_dict(self, dct: dict[str, Any], workflow: Any) -> Task:
        task_spec = workflow.spec.task_specs.get(dct["task_spec"])
        task: Task = self.target_class(workflow, task_spec, state=dct["state"], id=fast_uuid(dct["id"]))
        task._parent = fast_uuid(dct["parent"]) if dct["parent"] is not None else None
        task._children = [fast_uuid(child) for child in dct["children"]]
        task.last_state_change = dct["last_state_change"]
        task.triggered = dct["triggered"]
        task.internal_data = self.registry.restore(dct["internal_data"])
        if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            task.workflow.top_workflow.event_manager.add_task(task)
        delta = dct.get("delta")
        parent = workflow.tasks.get(task._parent) if task._parent is not None else None
        if delta and parent is not None:
            data = DeepMerge.merge({}, parent.data)
            data.update(self.registry.restore(delta.get("updates", {})))
            for key in delta.get("deletions", {}):
                if key in data:
                    del data[key]
        else:
            data = self.registry.restore(dct["data"])
        task.data = data
        return task


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Leaves the spec out on the way out and takes the cached one on the way in."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        # Skip BpmnWorkflowConverter.to_dict: converting the spec only to drop it
        # would cost as much as the rest of the state put together.
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def mapping_from_dict(
        self, mapping: dict[str, Any], key_class: Any = None, **kwargs: Any
    ) -> dict[Any, Any]:
        if key_class is UUID:  # the task table: its keys with fast_uuid
            restore = self.registry.restore
            return {fast_uuid(key): restore(value, **kwargs) for key, value in mapping.items()}
        result: dict[Any, Any] = super().mapping_from_dict(mapping, key_class, **kwargs)
        return result

    def from_dict(
        self,
        dct: dict[str, Any],
        spec: BpmnProcessSpec | None = None,
        subprocess_specs: dict[str, BpmnProcessSpec] | None = None,
    ) -> BpmnWorkflow:
        if spec is None:
            raise ValueError("restoring a workflow needs its spec")
        dct["spec"] = spec
        dct["subprocess_specs"] = subprocess_specs or {}
        return super().from_dict(dct)


def _registry() -> Any:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _SpeclessWorkflowConverter
    config[Task] = _DataSafeTaskConverter
    registry = BpmnWorkflowSerializer.configure(config, registry=_DataSafeRegistry())
    registry.typenames[_TextUUID] = registry.typenames[UUID]  # written as any UUID
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]), "Decimal")
    registry.register(
        dt.date, lambda v: {"value": v.isoformat()}, lambda v: dt.date.fromisoformat(v["value"]), "date"
    )
    return registry


class WorkflowStateSerializer:
    """Turns a workflow into a JSON string and back, given its cached specs."""

    version = VERSION

    def __init__(self) -> None:
        self._serializer = BpmnWorkflowSerializer(registry=_registry())

    def dumps(self, workflow: BpmnWorkflow, *, max_bytes: int | None = None) -> str:
        """Serialize *workflow* without its specs, into at most *max_bytes* (see :func:`max_state_bytes`).

        As ``BpmnWorkflowSerializer.serialize_json``, with the size checked
        before the text is built: one string kept in many variables is written
        once per variable, and would otherwise first become a text of gigabytes.

        :raises LimitError: the state would be too large, or its data holds an
            integer too long to write.
        """
        limit = max_state_bytes() if max_bytes is None else max_bytes
        serializer = self._serializer
        serializer.registry._encoder_mode = True
        try:
            dct = serializer.to_dict(workflow)
            dct[serializer.VERSION_KEY] = serializer.VERSION
            if may_exceed_state_size(dct, limit):
                check_state_size(dct, limit)
            try:
                text = json.dumps(dct, cls=serializer._encoder_cls)
            except ValueError:
                check_state_size(dct, limit)  # names the variable, e.g. of an integer too long to write
                raise
        except ValueError as exc:  # what the size check cannot foresee, e.g. a circular reference
            raise LimitError(
                f"the instance's state cannot be written: {exc}", limit="state", refused=True
            ) from exc
        finally:
            serializer.registry._encoder_mode = False
        if len(text) > limit:  # the encoder writes ASCII only: characters are bytes
            raise LimitError(
                f"the instance's state would be {len(text)} bytes, more than the limit of {limit} "
                f"(set with {STATE_BYTES_VARIABLE})",
                limit="state",
                refused=True,
            )
        return text

    def loads(
        self,
        state: str,
        serializer_version: str,
        spec: BpmnProcessSpec,
        subprocess_specs: dict[str, BpmnProcessSpec],
    ) -> BpmnWorkflow:
        """Restore a workflow from *state*, migrating it if it was written by an older version."""
        dct = json.loads(state)
        dct.pop(BpmnWorkflowSerializer.VERSION_KEY, None)
        if serializer_version != self.version and serializer_version in MIGRATIONS:
            MIGRATIONS[serializer_version](dct)
        dct.pop("spec", None)
        dct.pop("subprocess_specs", None)
        registry = self._serializer.registry
        converter = registry.convert_from_dict[registry.typenames[BpmnWorkflow]]
        dct.pop("typename", None)
        token = _restoring.set({})
        try:
            workflow: BpmnWorkflow = converter(dct, spec=spec, subprocess_specs=subprocess_specs)
        finally:
            _restoring.reset(token)
        return workflow


SERIALIZER = WorkflowStateSerializer()
