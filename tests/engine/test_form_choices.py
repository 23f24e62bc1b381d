"""Choice lists a form takes from data (engine/form_choices.py)."""

from __future__ import annotations

import pytest

from engine.form_choices import (
    engine_sources,
    fill_choice_lists,
    goal_task_parts,
    has_choice_lists,
    open_goal_tasks,
)
from forms import FormSchemaError, build_form, check_form_schema, validate_submission
from forms.schema_check import CHOICE_SOURCES

SCHEMA = {
    "type": "object",
    "properties": {
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "goal": {
                        "type": "string",
                        "title": "Goal",
                        "x-choices": {"data": "catalogue", "value": "id", "label": "label"},
                    }
                },
            },
        },
        "task": {"type": "string", "title": "Goal task", "x-choices": {"source": "open_goal_tasks"}},
    },
}
CATALOGUE = [
    {"id": "T1.1", "label": {"en": "T1.1 · Strategy", "sv": "T1.1 · Strategi", "fi": "T1.1 · Strategia"}},
    {"id": "T1.2", "label": "T1.2 · Plan"},
    {"id": "", "label": "no id: left out"},
    "not a row",
]
REVIEW = {
    "goal_plan_ref": "0123456-7/2025",
    "goals": [{"goal_id": "T1.1", "title": "Strategy"}],
    "assignments": [
        {
            "goal_id": "T1.1",
            "procurement_id": "P-1",
            "task": "Write it",
            "due_date": "2025-06-30",
            "status": "open",
        },
        {"goal_id": "T1.1", "procurement_id": "P-2", "task": "Done already", "status": "done"},
    ],
}


def test_choices_come_from_the_task_data_and_the_sources() -> None:
    assert has_choice_lists(SCHEMA) and not has_choice_lists({"properties": {"a": {"type": "string"}}})
    calls: list[str] = []

    def source() -> list[dict[str, object]]:
        calls.append("asked")
        return open_goal_tasks([REVIEW, {"goal_plan_ref": 5}, {}])

    filled = fill_choice_lists(SCHEMA, {"catalogue": CATALOGUE}, {"open_goal_tasks": source})
    goal = filled["properties"]["rows"]["items"]["properties"]["goal"]
    assert goal["oneOf"] == [
        {
            "const": "T1.1",
            "title": "T1.1 · Strategy",
            "x-translations": {"sv": {"title": "T1.1 · Strategi"}, "fi": {"title": "T1.1 · Strategia"}},
        },
        {"const": "T1.2", "title": "T1.2 · Plan"},
    ]
    (task,) = filled["properties"]["task"]["oneOf"]
    assert task["const"] == "0123456-7/2025#T1.1#P-1" and task["title"].startswith(
        "T1.1 Strategy · P-1: Write it"
    )
    assert calls == ["asked"]
    assert "oneOf" not in SCHEMA["properties"]["task"], "the stored schema is left alone"
    # The choices are enforced and shown with their labels in the user's language.
    assert validate_submission(filled, {"task": "0123456-7/2025#T1.1#P-2"})
    assert not validate_submission(filled, {"task": task["const"], "rows": [{"goal": "T1.2"}]})
    form = build_form(filled, {}, values={"rows": [{"goal": "T1.1"}]}, locale="fi")
    assert form.fields[0].rows[0][0].options == [("T1.1", "T1.1 · Strategia"), ("T1.2", "T1.2 · Plan")]


def test_nothing_to_choose_refuses_every_value() -> None:
    filled = fill_choice_lists(SCHEMA, {}, {"open_goal_tasks": list})
    assert filled["properties"]["task"]["enum"] == []
    assert validate_submission(filled, {"task": "anything"})
    assert not validate_submission(filled, {})


def test_an_unknown_source_is_a_clear_error() -> None:
    schema = {"properties": {"x": {"type": "string", "x-choices": {"source": "all_users"}}}}
    with pytest.raises(FormSchemaError, match="one of the sources open_goal_tasks"):
        fill_choice_lists(schema, {}, {"open_goal_tasks": list})


def test_goal_task_parts() -> None:
    assert goal_task_parts("212000-0001/2025#T8.1#DP#17") == ("212000-0001/2025", "T8.1", "DP#17")
    for bad in ("", "a#b", "#T8.1#P"):
        with pytest.raises(ValueError, match="names no goal task"):
            goal_task_parts(bad)


def test_the_sources_checked_at_deploy_are_the_ones_the_engine_answers() -> None:
    assert engine_sources(None, 1).keys() == CHOICE_SOURCES  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec", [{"source": "all_users"}, {"data": ""}, "open_goal_tasks", {"data": "goals", "value": 3}]
)
def test_a_bad_choice_list_is_refused_at_deploy_naming_where(spec: object) -> None:
    schema = {"type": "object", "properties": {"goal": {"type": "string", "x-choices": spec}}}
    with pytest.raises(FormSchemaError, match="x-choices") as raised:
        check_form_schema(schema)
    assert raised.value.pointer == "/properties/goal/x-choices"
