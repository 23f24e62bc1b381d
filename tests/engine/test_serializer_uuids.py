"""Task UUIDs restored from a state keep their text, and a restored state is written back unchanged."""

from __future__ import annotations

import copy
import pickle
from uuid import UUID, uuid4

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine._serializer import SERIALIZER, fast_uuid
from tests.engine.test_data_is_data import TWO_STEPS


@pytest.mark.parametrize("text", [str(uuid4()), str(uuid4()).upper(), "{12345678123456781234567812345678}"])
def test_fast_uuid_is_the_uuid_of_its_text(text: str) -> None:
    value, expected = fast_uuid(text), UUID(text)
    assert value == expected
    assert hash(value) == hash(expected)
    assert str(value) == str(expected)
    assert isinstance(value, UUID)
    assert {value: 1}[expected] == 1


def test_a_kept_text_survives_pickle_and_deepcopy() -> None:
    text = str(uuid4())
    value = fast_uuid(text)
    for again in (pickle.loads(pickle.dumps(value)), copy.deepcopy(value), copy.copy(value)):
        assert again == value
        assert str(again) == text


def test_a_restored_workflow_is_written_back_as_it_was_read() -> None:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_str(TWO_STEPS.encode())
    spec = parser.get_spec("two_steps")
    workflow = BpmnWorkflow(spec)
    workflow.do_engine_steps()
    (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
    task.set_data(x=1)
    task.run()
    workflow.do_engine_steps()
    text = SERIALIZER.dumps(workflow)
    restored = SERIALIZER.loads(text, SERIALIZER.version, spec, {})
    assert SERIALIZER.dumps(restored) == text
    (task,) = restored.get_tasks(state=TaskState.READY, manual=True)
    task.run()  # new tasks (fresh UUIDs) beside restored ones
    restored.do_engine_steps()
    again = SERIALIZER.loads(SERIALIZER.dumps(restored), SERIALIZER.version, spec, {})
    assert again.is_completed()
    assert {str(t.id) for t in again.get_tasks()} == {str(t.id) for t in restored.get_tasks()}
