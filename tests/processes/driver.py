"""Three ways to drive a shipped process through a scenario, and the BPMN coverage they record.

``straight``: the workflow stays in memory, with the engine's own parser and
sandboxed script engine, from start to end (SpiffWorkflow's "straight through").

``save_restore``: every step goes through the engine's public API and the
database, so the instance is serialized, committed and restored between every
two steps, and lane groups, separation of duties, jobs and message
subscriptions are the real ones.

``cold``: as ``save_restore``, but every transaction starts with an empty spec
cache, so each step parses the spec afresh from the deployment files in the
database and restores the workflow onto it, as a fresh process (a restarted web
worker, another machine's job worker) would. State that SpiffWorkflow keeps on
parsed specs between steps, rather than in the serialized workflow, is lost
there as it is in production.

All validate submitted form data against the real schemas in the bundle, and
all record which flow nodes and sequence flows the scenario reached.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
import time_machine
from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

import engine
from engine._sandbox import SandboxedScriptEngine
from engine._specs import ParsedBundle, find_form, parse_bundle, read_bundle
from engine._submitted import exact_numbers
from engine._workflow import (
    SCRIPT_TIME_LIMIT,
    InstanceOperation,
    current_parameters,
    event_definitions,
    json_safe,
)
from engine.connectors import ConnectorContext
from engine.form_choices import fill_choice_lists, has_choice_lists, open_goal_tasks
from forms import validate_submission

PROCESSES = Path(__file__).resolve().parent.parent.parent / "processes"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FLOW_NODE_TAGS = {
    *("startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"),
    *("userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask", "sendTask", "receiveTask"),
    *("task", "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway"),
    *("subProcess", "callActivity"),
}


class ScenarioError(AssertionError):
    """A scenario step could not be taken (no such task, invalid form data, nothing caught the message)."""


# -- coverage --------------------------------------------------------------------


@dataclass
class ModelElements:
    """The flow nodes and sequence flows of one process model, read from its BPMN file."""

    nodes: set[str]
    flows: dict[str, tuple[str, str]]

    @classmethod
    def read(cls, bpmn: Path) -> ModelElements:
        root = etree.parse(str(bpmn)).getroot()
        nodes, flows = set(), {}
        for process in root.iter(f"{{{BPMN_NS}}}process"):
            for element in process.iter():
                tag = etree.QName(element).localname if isinstance(element.tag, str) else ""
                if tag in FLOW_NODE_TAGS:
                    nodes.add(element.get("id"))
                elif tag == "sequenceFlow":
                    flows[element.get("id")] = (element.get("sourceRef"), element.get("targetRef"))
        return cls(nodes, flows)


@dataclass
class Coverage:
    """Elements reached per process model, across all scenarios of a test session."""

    models: dict[str, ModelElements] = field(default_factory=dict)
    nodes: dict[str, set[str]] = field(default_factory=dict)
    flows: dict[str, set[str]] = field(default_factory=dict)

    def model(self, process_id: str) -> ModelElements:
        if process_id not in self.models:
            self.models[process_id] = ModelElements.read(PROCESSES / process_id / f"{process_id}.bpmn")
            self.nodes[process_id] = set()
            self.flows[process_id] = set()
        return self.models[process_id]

    def record(self, process_id: str, workflow: BpmnWorkflow) -> None:
        """Add the completed elements of *workflow* (and its subprocesses) and the flows between them."""
        model = self.model(process_id)
        by_pair = {pair: flow_id for flow_id, pair in model.flows.items()}
        for wf in [workflow, *workflow.subprocesses.values()]:
            for task in wf.tasks.values():
                bpmn_id = task.task_spec.bpmn_id
                if task.state != TaskState.COMPLETED or bpmn_id not in model.nodes:
                    continue
                self.nodes[process_id].add(bpmn_id)
                source = _previous_node(task, model.nodes)
                if source is not None and (source, bpmn_id) in by_pair:
                    self.flows[process_id].add(by_pair[(source, bpmn_id)])

    def report(self) -> list[str]:
        lines = []
        for process_id in sorted(self.models):
            model = self.models[process_id]
            nodes, flows = self.nodes[process_id], self.flows[process_id]
            lines.append(
                f"{process_id}: flow nodes {len(nodes & model.nodes)}/{len(model.nodes)}, "
                f"sequence flows {len(flows)}/{len(model.flows)}"
            )
            missing = sorted(model.nodes - nodes) + sorted(set(model.flows) - flows)
            if missing:
                lines.append(f"  not reached: {', '.join(missing)}")
        return lines


def _previous_node(task: Task, nodes: set[str]) -> str | None:
    parent = task.parent
    while parent is not None:
        bpmn_id = parent.task_spec.bpmn_id
        if bpmn_id in nodes and bpmn_id != task.task_spec.bpmn_id:
            return str(bpmn_id)
        parent = parent.parent
    return None


COVERAGE = Coverage()


# -- time ------------------------------------------------------------------------


class Clock:
    """Test time that only moves forward when a scenario says so."""

    def __init__(self, start: dt.datetime) -> None:
        self._traveller = time_machine.travel(start, tick=True)
        self._shifted = dt.timedelta()

    def __enter__(self) -> Clock:
        self._coordinates = self._traveller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._traveller.stop()

    def advance(self, **delta: float) -> None:
        self._coordinates.shift(dt.timedelta(**delta))


# -- the drivers -----------------------------------------------------------------


class Run:
    """One process instance being driven."""

    process_id: str

    def open_tasks(self) -> list[str]:
        raise NotImplementedError

    def complete(self, bpmn_id: str, *, user: str, data: dict[str, Any] | None = None) -> None:
        raise NotImplementedError

    @property
    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def status(self) -> str:
        raise NotImplementedError


class Driver:
    """Starts processes, delivers messages and fires due timers."""

    name: str
    emails: list[dict[str, Any]]

    def __init__(self, session_factory: so.sessionmaker[so.Session]) -> None:
        self.session_factory = session_factory
        with session_factory.begin() as s:
            seed = engine.read_seed_file(PROCESSES / "demo.json")
            # Passwords play no part in a scenario; hashing dozens of them would dominate the run time.
            engine.load_seed(s, {**seed, "users": [{**u, "password": None} for u in seed["users"]]})

    def start(self, process_id: str, *, org: str, user: str, data: dict[str, Any] | None = None) -> Run:
        raise NotImplementedError

    def send_message(self, name: str, payload: dict[str, Any], *, org: str) -> list[Run]:
        raise NotImplementedError

    def fire_due_timers(self) -> None:
        raise NotImplementedError

    def runs_of(self, process_id: str) -> list[Run]:
        raise NotImplementedError

    def organisation_id(self, key: str) -> int:
        with self.session_factory() as s:
            return engine.get_organisation(s, key).id


def json_data(data: dict[str, Any]) -> dict[str, Any]:
    """Data as it arrives from the API, plain JSON, with its fractions as the engine keeps them (Decimal)."""
    loaded: dict[str, Any] = exact_numbers(json.loads(json.dumps(data)))
    return loaded


# straight: in memory ----------------------------------------------------------------


class _RecordingScriptEngine(SandboxedScriptEngine):
    def __init__(self, driver: MemoryDriver, parameters: dict[str, Any], organisation_id: int) -> None:
        super().__init__(time_limit=SCRIPT_TIME_LIMIT, extra_globals={"parameters": parameters})
        self._driver = driver
        self._organisation_id = organisation_id

    def call_service(self, task: Task, **kwargs: Any) -> str:
        name = kwargs["operation_name"]
        params = {key: spec["value"] for key, spec in kwargs.get("operation_params", {}).items()}
        if name != "email.send":
            # Connectors that read the database (the reporting projection) run for real, on the
            # organisation's rows; an in-memory instance has no row of its own (id 0).
            with self._driver.session_factory() as s:
                context = ConnectorContext(
                    session=s,
                    organisation_id=self._organisation_id,
                    instance_id=0,
                    element=task.task_spec.bpmn_id,
                    actor=None,
                )
                return json.dumps(json_safe(engine.CONNECTORS.get(name)(context, **params)))
        if name != "email.send" or "@" not in str(params.get("to", "")):
            raise ScenarioError(f"{task.task_spec.bpmn_id}: unexpected service call {name} {params}")
        self._driver.emails.append({"element": task.task_spec.bpmn_id, **params})
        return json.dumps({"status": "queued"})


class MemoryRun(Run):
    def __init__(self, driver: MemoryDriver, process_id: str, org: str) -> None:
        self.driver = driver
        self.process_id = process_id
        self.org = org
        self.bundle = driver.bundle(process_id)
        organisation_id = driver.organisation_id(org)
        with driver.session_factory() as s:
            parameters = current_parameters(s, organisation_id)
        self.workflow = BpmnWorkflow(
            self.bundle.specs[process_id],
            self.bundle.subprocess_specs[process_id],
            script_engine=_RecordingScriptEngine(driver, parameters, organisation_id),
        )

    def advance(self) -> None:
        self.workflow.do_engine_steps()
        errors = self.workflow.get_tasks(state=TaskState.ERROR)
        if errors:
            raise ScenarioError(f"{self.process_id}: tasks in error: {[t.task_spec.bpmn_id for t in errors]}")
        COVERAGE.record(self.process_id, self.workflow)
        for event in self.workflow.get_events():
            if isinstance(event.event_definition, MessageEventDefinition):
                payload = event.payload if isinstance(event.payload, dict) else {"payload": event.payload}
                self.driver.route(event.event_definition.name, payload, org=self.org, source=self)

    def _ready(self, bpmn_id: str) -> list[Task]:
        return [
            t
            for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)
            if t.task_spec.bpmn_id == bpmn_id
        ]

    def open_tasks(self) -> list[str]:
        return sorted(
            t.task_spec.bpmn_id for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)
        )

    def complete(self, bpmn_id: str, *, user: str, data: dict[str, Any] | None = None) -> None:
        data = json_data(data or {})
        ready = self._ready(bpmn_id)
        if not ready:
            raise ScenarioError(f"No ready task {bpmn_id!r}; open: {self.open_tasks()}")
        properties = (getattr(ready[0].task_spec, "extensions", None) or {}).get("properties", {})
        if properties.get("assignee"):
            ready = [
                t for t in ready if self.workflow.script_engine.evaluate(t, properties["assignee"]) == user
            ]
            if not ready:
                raise ScenarioError(f"No task {bpmn_id!r} is assigned to {user!r}")
        form_name = properties.get("formJsonSchemaFilename")
        if form_name:
            form_file = find_form(self.driver.files[self.process_id], form_name)
            assert form_file is not None
            schema = json.loads(form_file.content)
            if has_choice_lists(schema):
                # As the engine does: choices from the task data, or the running goal reviews.
                goal_reviews = [
                    r.data for r in self.driver.runs if r.process_id == "goal_review" and r.org == self.org
                ]
                schema = fill_choice_lists(
                    schema, ready[0].data, {"open_goal_tasks": lambda: open_goal_tasks(goal_reviews)}
                )
            errors = validate_submission(schema, data)
            if errors:
                raise engine.FormValidationError(errors)
        task = ready[0]
        task.set_data(**data)
        task.run()
        self.advance()

    def catch(self, name: str, payload: dict[str, Any]) -> bool:
        # As the engine does: an event-based gateway waits for each of its events.
        waiting = [
            d
            for t in self.workflow.event_manager.tasks.values()
            for d in event_definitions(t)
            if getattr(d, "name", None) == name
        ]
        if not waiting:
            return False
        definition = waiting[0]
        correlations = definition.calculate_correlations(
            self.workflow.script_engine, definition.correlation_properties, payload
        )
        caught = self.workflow.event_manager.catch(
            BpmnEvent(definition, payload, correlations), internal=False
        )
        if caught:
            self.advance()
        return bool(caught)

    @property
    def data(self) -> dict[str, Any]:
        tasks = self.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING)
        source = tasks[0] if tasks else self.workflow.last_task
        return dict(source.data if source is not None else self.workflow.data)

    @property
    def status(self) -> str:
        if self.workflow.is_completed():
            return "completed"
        if self.workflow.get_tasks(state=TaskState.READY, manual=True):
            return "running"
        return "waiting"


class MemoryDriver(Driver):
    name = "straight"

    def __init__(self, session_factory: so.sessionmaker[so.Session]) -> None:
        super().__init__(session_factory)
        self.emails = []
        self.runs: list[MemoryRun] = []
        self.files: dict[str, Any] = {}
        self._bundles: dict[str, ParsedBundle] = {}

    def bundle(self, process_id: str) -> ParsedBundle:
        if process_id not in self._bundles:
            self.files[process_id] = read_bundle(PROCESSES / process_id)
            self._bundles[process_id] = parse_bundle(self.files[process_id])
        return self._bundles[process_id]

    def start(self, process_id: str, *, org: str, user: str, data: dict[str, Any] | None = None) -> Run:
        run = MemoryRun(self, process_id, org)
        self.runs.append(run)
        start = run.workflow.get_next_task(spec_name="Start")
        if start is not None and data:
            start.data.update(json_data(data))
        run.advance()
        return run

    def route(self, name: str, payload: dict[str, Any], *, org: str, source: MemoryRun | None) -> list[Run]:
        reached: list[Run] = [
            r for r in self.runs if r is not source and r.org == org and r.catch(name, payload)
        ]
        if reached:
            return reached
        for process_id in [p.name for p in sorted(PROCESSES.iterdir()) if (p / f"{p.name}.bpmn").exists()]:
            bundle = self.bundle(process_id)
            spec = bundle.specs[process_id]
            if name in _message_starts(spec):
                run = MemoryRun(self, process_id, org)
                self.runs.append(run)
                # As the engine does: other start events (a none start) would fire first and cancel this one.
                for task in run.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK):
                    if type(task.task_spec).__name__ == "StartEvent" and (
                        getattr(task.task_spec.event_definition, "name", None) != name
                    ):
                        task.cancel()
                run.advance()
                if not run.catch(name, payload):
                    raise ScenarioError(f"{process_id} did not catch its start message {name!r}")
                reached.append(run)
        return reached

    def send_message(self, name: str, payload: dict[str, Any], *, org: str) -> list[Run]:
        reached = self.route(name, json_data(payload), org=org, source=None)
        if not reached:
            raise ScenarioError(f"Nothing waits for or starts on message {name!r}")
        return reached

    def fire_due_timers(self) -> None:
        for run in list(self.runs):
            run.workflow.refresh_timers()
            run.advance()

    def runs_of(self, process_id: str) -> list[Run]:
        return [r for r in self.runs if r.process_id == process_id]


def _message_starts(spec: Any) -> set[str]:
    return {
        ts.event_definition.name
        for ts in spec.task_specs.values()
        if type(ts).__name__ == "StartEvent"
        and isinstance(getattr(ts, "event_definition", None), MessageEventDefinition)
    }


# save/restore: through the engine and the database -------------------------------------


class EngineRun(Run):
    def __init__(self, driver: EngineDriver, instance_id: int, process_id: str) -> None:
        self.driver = driver
        self.instance_id = instance_id
        self.process_id = process_id

    def _record(self) -> None:
        with self.driver.session_factory() as s:
            instance = engine.get_instance(s, self.instance_id)
            if instance.status == "error":
                raise ScenarioError(
                    f"{self.process_id} instance {self.instance_id}: {instance.error_message}"
                )
            # An instance unchanged since it was last recorded has nothing new to cover, and
            # restoring it (parsing its spec too, for the cold driver) after every step of every
            # other instance would dominate the run time.
            if self.driver.recorded_versions.get(self.instance_id) == instance.lock_version:
                return
            COVERAGE.record(self.process_id, InstanceOperation(s, instance, actor=None).workflow)
            self.driver.recorded_versions[self.instance_id] = instance.lock_version

    def open_tasks(self) -> list[str]:
        with self.driver.session_factory() as s:
            return sorted(t.bpmn_id for t in engine.list_tasks(s, instance_id=self.instance_id))

    def task_rows(self, bpmn_id: str | None = None, state: str | None = "ready") -> list[engine.HumanTask]:
        with self.driver.session_factory() as s:
            rows = engine.list_tasks(s, instance_id=self.instance_id, state=state)
            for row in rows:
                _ = row.assignee, row.completed_by
            return [r for r in rows if bpmn_id is None or r.bpmn_id == bpmn_id]

    def complete(self, bpmn_id: str, *, user: str, data: dict[str, Any] | None = None) -> None:
        with self.driver.session_factory() as s:
            rows = [
                t
                for t in engine.list_tasks(s, instance_id=self.instance_id, user=user)
                if t.bpmn_id == bpmn_id
            ]
            if not rows:
                open_ = [t.bpmn_id for t in engine.list_tasks(s, instance_id=self.instance_id)]
                raise ScenarioError(f"No ready task {bpmn_id!r} for {user!r}; open: {open_}")
            task_id = rows[0].id
        with self.driver.session_factory.begin() as s:
            engine.complete_task(s, task_id, user=user, data=json_data(data or {}))
        self._record()
        self.driver.record_all()

    @property
    def data(self) -> dict[str, Any]:
        with self.driver.session_factory() as s:
            return engine.instance_data(s, engine.get_instance(s, self.instance_id))

    @property
    def status(self) -> str:
        with self.driver.session_factory() as s:
            return engine.get_instance(s, self.instance_id).status


class EngineDriver(Driver):
    name = "save_restore"

    def __init__(self, session_factory: so.sessionmaker[so.Session]) -> None:
        super().__init__(session_factory)
        self.recorded_versions: dict[int, int] = {}
        with session_factory.begin() as s:
            for folder in sorted(PROCESSES.iterdir()):
                if (folder / f"{folder.name}.bpmn").exists():
                    engine.deploy_path(s, folder)

    @property
    def emails(self) -> list[dict[str, Any]]:  # type: ignore[override]
        with self.session_factory() as s:
            rows = s.scalars(sa.select(engine.OutboxMessage).order_by(engine.OutboxMessage.id))
            return [{"to": r.recipient, "subject": r.subject, "body": r.body} for r in rows]

    def start(self, process_id: str, *, org: str, user: str, data: dict[str, Any] | None = None) -> Run:
        with self.session_factory.begin() as s:
            instance = engine.start_instance(
                s, process_id, organisation=org, user=user, data=json_data(data or {})
            )
            run = EngineRun(self, instance.id, process_id)
        run._record()
        return run

    def send_message(self, name: str, payload: dict[str, Any], *, org: str) -> list[Run]:
        with self.session_factory.begin() as s:
            reached = [
                (i.id, i.process_id)
                for i in engine.send_message(s, name, json_data(payload), organisation=org)
            ]
        self.record_all()
        return [EngineRun(self, iid, pid) for iid, pid in reached]

    def fire_due_timers(self) -> None:
        summary = engine.run_due_jobs(self.session_factory)
        if summary.failed:
            raise ScenarioError(f"{summary.failed} job(s) failed")
        self.record_all()

    def record_all(self) -> None:
        for run in self.runs_of(None):
            run._record()  # type: ignore[attr-defined]

    def runs_of(self, process_id: str | None) -> list[Run]:
        with self.session_factory() as s:
            stmt = sa.select(engine.ProcessInstance).order_by(engine.ProcessInstance.id)
            if process_id is not None:
                stmt = stmt.where(engine.ProcessInstance.process_id == process_id)
            return [EngineRun(self, i.id, i.process_id) for i in s.scalars(stmt)]


# cold: through the engine and the database, each transaction as in a fresh process --------------


class ColdDriver(EngineDriver):
    """The ``save_restore`` driver with the spec cache emptied at the start of every transaction.

    Every operation (start, complete, message delivery, each due job, reading
    tasks, data and status, coverage recording) opens its own transaction, and
    the engine restores the workflow from the database in each, so clearing the
    cache there makes every step run on a spec parsed afresh from the
    deployment files, as it would in another process.
    """

    name = "cold"

    def __init__(self, session_factory: so.sessionmaker[so.Session]) -> None:
        # A sessionmaker of its own, so the listener stays with this driver's sessions.
        cold_factory: so.sessionmaker[so.Session] = so.sessionmaker(
            class_=session_factory.class_, **session_factory.kw
        )
        sa.event.listen(cold_factory, "after_transaction_create", _forget_specs)
        super().__init__(cold_factory)


def _forget_specs(session: so.Session, transaction: so.SessionTransaction) -> None:
    if transaction.parent is None:
        engine.SPEC_CACHE.clear()


DRIVERS: dict[str, type[Driver]] = {
    "straight": MemoryDriver,
    "save_restore": EngineDriver,
    "cold": ColdDriver,
}


def driver_for(kind: str, session_factory: so.sessionmaker[so.Session]) -> Driver:
    """Return the driver named *kind* (``straight``, ``save_restore`` or ``cold``).

    :raises KeyError: no driver of that name.
    """
    return DRIVERS[kind](session_factory)
