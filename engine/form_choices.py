"""Choice lists a form takes from data when it is shown and when it is checked, never typed in the schema.

A string property of a form schema may say where its choices come from::

    "goal_id":   {"type": "string", "x-choices": {"data": "catalogue_goals", "value": "goal_id",
                                                   "label": "label"}}
    "goal_task": {"type": "string", "x-choices": {"source": "open_goal_tasks"}}

``data`` names a list in the task's own data (its items' ``value`` key is the
choice, their ``label`` key the label: a text, or a mapping of language codes
to texts); ``source`` names one of :data:`SOURCES`, a question the engine
answers for the task's own organisation only. Either way the property gets a
``oneOf`` of ``{"const", "title", "x-translations"}`` (an empty ``enum`` when
there is nothing to choose), so the form shows translated labels and a value
outside the list is refused like any other wrong choice.

Sources:

``open_goal_tasks``
    The goal tasks (assignments of goals to procurements) still open in the
    organisation's running goal reviews. A choice's value is
    ``<goal_plan_ref>#<goal_id>#<procurement_id>``: the goal review's
    correlation key and the assignment, which a process sends back in its
    ``goal_task_completed`` message (see :func:`goal_task_parts`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from forms import FormSchemaError

CHOICES_KEY = "x-choices"
LANGUAGES = ("sv", "fi")
GOAL_TASK_SEPARATOR = "#"
#: The most choices one list may have, so a form stays a form.
MAX_CHOICES = 500

ChoiceSource = Callable[[], list[dict[str, Any]]]


def has_choice_lists(schema: Any) -> bool:
    """Tell whether any property of *schema* (at any depth) takes its choices from data."""
    return any(True for _ in _choice_nodes(schema))


def _choice_nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get(CHOICES_KEY), Mapping):
            yield node
        for value in node.values():
            yield from _choice_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _choice_nodes(value)


def choice(value: Any, title: Any) -> dict[str, Any]:
    """Return one ``oneOf`` alternative: *title* is a text or a mapping of language codes to texts."""
    if isinstance(title, Mapping):
        english = title.get("en") or next((str(t) for t in title.values() if t), str(value))
        translations = {lang: {"title": str(title[lang])} for lang in LANGUAGES if title.get(lang)}
        entry: dict[str, Any] = {"const": value, "title": str(english)}
        if translations:
            entry["x-translations"] = translations
        return entry
    return {"const": value, "title": str(title) if title not in (None, "") else str(value)}


def _from_data(spec: Mapping[str, Any], data: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = data.get(str(spec["data"]))
    if not isinstance(items, list):
        return []
    value_key, title_key = str(spec.get("value", "value")), str(spec.get("label", "title"))
    return [
        choice(item[value_key], item.get(title_key))
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get(value_key), (str, int)) and item[value_key] != ""
    ]


def fill_choice_lists(
    schema: Mapping[str, Any], data: Mapping[str, Any], sources: Mapping[str, ChoiceSource]
) -> dict[str, Any]:
    """Return a copy of *schema* whose ``x-choices`` properties list their choices as ``oneOf``.

    *data* is the task's data; *sources* answers ``source`` lists (each called
    at most once).

    :raises FormSchemaError: an ``x-choices`` names neither a data list nor a known source.
    """
    filled: dict[str, Any] = copy.deepcopy(dict(schema))
    answered: dict[str, list[dict[str, Any]]] = {}
    for node in _choice_nodes(filled):
        spec = node[CHOICES_KEY]
        if "data" in spec:
            choices = _from_data(spec, data)
        elif spec.get("source") in sources:
            name = str(spec["source"])
            if name not in answered:
                answered[name] = sources[name]()
            choices = answered[name]
        else:
            raise FormSchemaError(
                f"{CHOICES_KEY} must name a data list ('data') or one of the sources "
                f"{', '.join(sorted(sources))} ('source'), got {dict(spec)!r}"
            )
        unique = list({repr(c["const"]): c for c in choices}.values())[:MAX_CHOICES]
        node.pop("enum", None)
        node.pop("oneOf", None)
        if unique:
            node["oneOf"] = unique
        else:
            node["enum"] = []
    return filled


# -- the open goal tasks -----------------------------------------------------------


def goal_task_value(goal_plan_ref: str, goal_id: str, procurement_id: str) -> str:
    """Return the choice value naming one goal task of one goal review."""
    return GOAL_TASK_SEPARATOR.join((goal_plan_ref, goal_id, procurement_id))


def goal_task_parts(value: str) -> tuple[str, str, str]:
    """Split a goal task choice into its goal plan, goal id and procurement id.

    :raises ValueError: *value* is not a goal task choice.
    """
    parts = value.split(GOAL_TASK_SEPARATOR, 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{value!r} names no goal task")
    return parts[0], parts[1], parts[2]


def open_goal_tasks(goal_reviews: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the choices of the open goal tasks in the data of running goal reviews."""
    choices = []
    for data in goal_reviews:
        plan = data.get("goal_plan_ref")
        assignments = data.get("assignments")
        if not isinstance(plan, str) or not isinstance(assignments, list):
            continue
        titles = {
            g.get("goal_id"): g.get("title") or "" for g in data.get("goals") or [] if isinstance(g, Mapping)
        }
        for a in assignments:
            if not isinstance(a, Mapping) or a.get("status") != "open":
                continue
            goal_id, procurement_id = str(a.get("goal_id", "")), str(a.get("procurement_id", ""))
            if not goal_id or not procurement_id:
                continue
            goal = f"{goal_id} {titles.get(goal_id, '')}".strip()
            label = f"{goal} · {procurement_id}: {a.get('task', '')} ({a.get('due_date', '')}, {plan})"
            choices.append(choice(goal_task_value(plan, goal_id, procurement_id), label))
    return choices


def _running_goal_reviews(session: so.Session, organisation_id: int) -> list[dict[str, Any]]:
    from .models import ProcessInstance
    from .runtime import instance_data

    instances = session.scalars(
        sa.select(ProcessInstance)
        .where(
            ProcessInstance.organisation_id == organisation_id,
            ProcessInstance.process_id == "goal_review",
            ProcessInstance.status.in_(("running", "waiting")),
        )
        .order_by(ProcessInstance.id)
    )
    return [instance_data(session, instance) for instance in instances]


def engine_sources(session: so.Session, organisation_id: int) -> dict[str, ChoiceSource]:
    """Return the sources a form of *organisation_id* may take choices from (none of another's data)."""
    # forms.schema_check.CHOICE_SOURCES lists these names for the check at deploy.
    return {"open_goal_tasks": lambda: open_goal_tasks(_running_goal_reviews(session, organisation_id))}
