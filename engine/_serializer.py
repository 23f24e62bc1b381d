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
from decimal import Decimal
from typing import Any

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
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task

from .errors import LimitError
from .limits import STATE_BYTES_VARIABLE, check_state_size, max_state_bytes, may_exceed_state_size

DATA_TYPENAME = "procflow.data"
_TYPENAME = "typename"


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


class _DataSafeTaskConverter(TaskConverter):
    """Task data and its deltas are written as they are by SpiffWorkflow; escape them first."""

    def to_dict(self, task: Task) -> dict[str, Any]:
        dct: dict[str, Any] = super().to_dict(task)
        dct["data"] = escape_data(dct["data"])
        if dct.get("delta"):
            dct["delta"]["updates"] = escape_data(dct["delta"]["updates"])
        return dct


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Leaves the spec out on the way out and takes the cached one on the way in."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        # Skip BpmnWorkflowConverter.to_dict: converting the spec only to drop it
        # would cost as much as the rest of the state put together.
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

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
        workflow: BpmnWorkflow = converter(dct, spec=spec, subprocess_specs=subprocess_specs)
        return workflow


SERIALIZER = WorkflowStateSerializer()
