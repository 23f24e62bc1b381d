"""Every payload of the escape corpus, in its place in a deployed model, run through the engine API.

For each payload: deploy a tiny model holding it for organisation north, start it (complete
its form, send its message), and check that it is blocked with a clear error - the instance
in ``error`` with a message naming the element, or a :class:`engine.ProcflowError` at deploy
or at the API - that the file an escape would write does not exist, and that the engine then
still starts a harmless instance. Expensive payloads run under a thread-join timeout, so a
regression fails instead of hanging the suite.
"""

from __future__ import annotations

import ast
import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from engine import _evaluator, _workflow
from tests.conftest import bounded
from tests.security.bundles import ELEMENT, MESSAGE, PROCESS_ID, RECEIVER, bundle, harmless
from tests.security.corpus import CORPUS, Payload
from tests.security.outcomes import OUTCOMES, Outcome, wall_of

Factory = so.sessionmaker[so.Session]

NORTH_THRESHOLD = 5
# A stopped payload costs its time limit, the evaluator's grace, and (on a busy machine) a little more.
EXPENSIVE_SECONDS = _workflow.SCRIPT_TIME_LIMIT + _evaluator.GRACE_SECONDS + 3.0
CHEAP_SECONDS = 15.0
DEPLOY_SECONDS = 20.0


@pytest.fixture
def parameters(session_factory: Factory, orgs: None) -> None:
    """North has a threshold; south has a secret no north script may read."""
    with session_factory.begin() as s:
        today = dt.date(2000, 1, 1)
        north = engine.get_organisation(s, "north").id
        south = engine.get_organisation(s, "south").id
        engine.set_parameter(s, "threshold", NORTH_THRESHOLD, organisation_id=north, valid_from=today)
        engine.set_parameter(s, "south_secret", "south only", organisation_id=south, valid_from=today)


def _deploy(session_factory: Factory, files: list[engine.BundleFile]) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, files, name=files[0].name, organisation="north")


def _start(session_factory: Factory, process_id: str = PROCESS_ID) -> engine.ProcessInstance:
    with session_factory.begin() as s:
        return engine.start_instance(s, process_id, organisation="north", user="north-req", data={"value": 1})


def _attack(session_factory: Factory, payload: Payload) -> engine.ProcessInstance:
    """Set off *payload* (already deployed) the way its place is reached: return the instance it ran in."""
    instance = _start(session_factory)
    if payload.place == "form_schema" and payload.submission is not None and instance.status != "error":
        with session_factory.begin() as s:
            (task,) = engine.list_tasks(s, instance_id=instance.id)
            assert task.bpmn_id == ELEMENT
            return engine.complete_task(s, task.id, user="north-req", data=payload.submission)
    return instance


def _literal(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return None


def _record(payload: Payload, stage: str, message: str, elapsed: float) -> None:
    OUTCOMES[payload.id] = Outcome(payload.place, stage, wall_of(stage, message), message, elapsed)


def _params(payloads: tuple[Payload, ...]) -> list[Any]:
    return [pytest.param(p, id=p.id, marks=[pytest.mark.slow] if p.expensive else []) for p in payloads]


@pytest.mark.parametrize("payload", _params(CORPUS))
def test_payload_is_blocked_with_a_clear_error(
    session_factory: Factory, parameters: None, tmp_path: Path, payload: Payload
) -> None:
    marker = tmp_path / f"marker-{payload.id}-{uuid.uuid4().hex}"
    files = bundle(payload, marker)
    limit = EXPENSIVE_SECONDS if payload.expensive else CHEAP_SECONDS
    started = time.monotonic()
    try:
        bounded(lambda: _deploy(session_factory, files), DEPLOY_SECONDS, "deploy")
    except engine.DeploymentError as exc:
        _record(payload, "deploy", str(exc), time.monotonic() - started)
        assert exc.message.strip()
        if payload.place == "form_schema":
            assert exc.file == f"{PROCESS_ID}.schema.json", f"the deploy error does not name the form: {exc}"
        else:
            # A condition belongs to the gateway's outgoing sequence flow (``to_yes``), which the error names.
            named = {ELEMENT, "to_yes"} if payload.place == "condition" else {ELEMENT}
            assert exc.file and named & {exc.element, *str(exc).split()}, f"no file or element: {exc}"
    else:
        started = time.monotonic()
        try:
            instance = bounded(lambda: _attack(session_factory, payload), limit, "the instance")
        except engine.ProcflowError as exc:
            # Refused at the API (a limit, a form): the operation left nothing behind.
            _record(payload, "api", str(exc), time.monotonic() - started)
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
        else:
            elapsed = time.monotonic() - started
            message = instance.error_message or ""
            _record(payload, instance.status, message, elapsed)
            assert instance.status == "error", (
                f"{payload.id} was not blocked: the instance is {instance.status}"
            )
            assert ELEMENT in message, f"the error does not name the element: {message!r}"
            with session_factory() as s:
                last = engine.instance_events(s, instance.id)[-1]
                assert (last.kind, last.element) == ("error", ELEMENT)
        if payload.place == "message_payload":
            _check_message_api(session_factory, payload)
    assert not marker.exists(), f"{payload.id} escaped: it wrote {marker}"
    _check_engine_still_works(session_factory)


def _check_message_api(session_factory: Factory, payload: Payload) -> None:
    """A payload that is plain data is refused by ``send_message`` too, or cannot change the parameters."""
    body = _literal(payload.source)
    if not isinstance(body, dict):
        return
    try:
        with session_factory.begin() as s:
            reached = engine.send_message(s, MESSAGE, body, organisation="north", user="north-req")
    except engine.DataError as exc:
        assert "reserved name" in str(exc) and MESSAGE in str(exc)
        return
    with session_factory() as s:
        for instance in reached:
            assert engine.instance_data(s, instance).get("seen") == NORTH_THRESHOLD
    pytest.fail(f"send_message accepted the payload {body!r}")


def _check_engine_still_works(session_factory: Factory) -> None:
    _deploy(session_factory, harmless())
    instance = bounded(lambda: _start(session_factory, "harmless"), CHEAP_SECONDS, "a harmless instance")
    assert (instance.status, instance.error_message) == ("running", None)


BENIGN = {
    "script": "x = value + 1",
    "condition": "value > 0",
    "dmn_cell": "> 0",
    "timer": "'PT1H'",
    "due_in": "'P2D'",
    "message_payload": "{'x': value}",
    "multi_instance": "2",
    "form_schema": '{"type": "object", "properties": {"note": {"type": "string", "pattern": "^a+$"}}}',
}


@pytest.mark.parametrize("place", sorted(BENIGN))
def test_the_same_model_with_a_benign_payload_runs(
    session_factory: Factory, parameters: None, tmp_path: Path, place: Any
) -> None:
    """The models are sound: only the payload makes an attack model fail."""
    payload = Payload(f"benign-{place}", place, BENIGN[place], "nothing")
    _deploy(session_factory, bundle(payload, tmp_path / "unused"))
    instance = bounded(lambda: _attack(session_factory, payload), CHEAP_SECONDS, "the instance")
    assert (instance.status, instance.error_message) in {("running", None), ("waiting", None)}


def test_the_corpus_covers_every_place() -> None:
    places = {p.place for p in CORPUS}
    assert places == {
        "script",
        "condition",
        "dmn_cell",
        "timer",
        "due_in",
        "message_payload",
        "multi_instance",
        "form_schema",
    }
    assert len(CORPUS) >= 60


def test_a_thrown_payload_cannot_replace_the_organisations_parameters(
    session_factory: Factory, parameters: None, tmp_path: Path
) -> None:
    """A model that throws ``{'parameters': ...}`` is refused, as a message from outside would be."""
    (payload,) = [p for p in CORPUS if p.id == "message-sets-parameters"]
    _deploy(session_factory, bundle(payload, tmp_path / "unused"))
    with pytest.raises(engine.DataError, match="'parameters' is a reserved name"):
        bounded(lambda: _start(session_factory), CHEAP_SECONDS, "the sender")
    with session_factory() as s:
        north = engine.get_organisation(s, "north").id
        assert engine.list_instances(s, organisation_id=north, process_id=RECEIVER) == []
