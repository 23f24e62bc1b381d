"""Names of processes, tasks and groups by language: names.json at deploy, group names from the seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask

import engine
from engine.definitions import load_parsed
from tests.conftest import FIXTURES, PROCESSES

Factory = so.sessionmaker[so.Session]
SHIPPED = ("direct_procurement", "customer_contact", "mini_competition", "goal_review")


def _files(names: object) -> list[engine.BundleFile]:
    bpmn = (FIXTURES / "approval" / "approval.bpmn").read_text(encoding="utf-8")
    files = [engine.BundleFile("approval.bpmn", "bpmn", bpmn)]
    for form in ("request.schema.json", "approve.schema.json"):
        files.append(
            engine.BundleFile(form, "form", (FIXTURES / "approval" / form).read_text(encoding="utf-8"))
        )
    files.append(engine.BundleFile("names.json", "form", json.dumps(names)))
    return files


def test_deploy_stores_the_names_with_the_definition(session_factory: Factory, orgs: None) -> None:
    names = {"approval": {"sv": "Inköpsgodkännande"}, "approve": {"sv": "Godkänn", "fi": " Hyväksy "}}
    with session_factory.begin() as s:
        engine.deploy_files(s, _files(names), name="approval")
    with session_factory() as s:
        (definition,) = engine.visible_definitions(s, engine.get_organisation(s, "north").id)
        assert definition.translated_names == {
            "approval": {"sv": "Inköpsgodkännande"},
            "approve": {"sv": "Godkänn", "fi": "Hyväksy"},
        }
        assert engine.translated(definition.translated_names, "approve", "fi", "Approve") == "Hyväksy"
        assert engine.translated(definition.translated_names, "approve", "en", "Approve") == "Approve"
        assert engine.translated(definition.translated_names, "request", "sv", "Describe") == "Describe"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            {"aprove": {"sv": "Godkänn"}},
            "names.json, element 'aprove': key 'aprove' is not the id of a process",
        ),
        ({"approve": "Godkänn"}, "names.json, element 'approve': key 'approve' must map language codes"),
        ({"approve": {"Swedish": "Godkänn"}}, "'Swedish' is not a language code"),
        ({"approve": {"sv": ""}}, "the 'sv' name must be text"),
        (["approve"], "names.json: must be a JSON object"),
    ],
)
def test_a_bad_names_file_is_a_deploy_error_naming_file_and_key(
    session_factory: Factory, orgs: None, names: object, message: str
) -> None:
    with session_factory.begin() as s, pytest.raises(engine.DeploymentError) as refused:
        engine.deploy_files(s, _files(names), name="approval")
    assert message in str(refused.value)
    assert refused.value.file == "names.json"
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.ProcessDefinition)) == 0


def test_a_stored_bundle_parses_again_without_the_deploy_checks(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, _files({"approve": {"sv": "Godkänn"}}), name="approval")
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        (definition,) = engine.visible_definitions(s, engine.get_organisation(s, "north").id)
        assert "approval" in load_parsed(s, definition).specs


@pytest.mark.parametrize("process_id", SHIPPED)
def test_every_shipped_process_and_user_task_has_swedish_and_finnish_names(
    session_factory: Factory, process_id: str
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / process_id)
    with session_factory() as s:
        definition = s.scalars(sa.select(engine.ProcessDefinition)).one()
        names = definition.translated_names
        parsed = load_parsed(s, definition)
        specs = [parsed.specs[process_id], *parsed.subprocess_specs[process_id].values()]
        tasks = {ts.bpmn_id for spec in specs for ts in spec.task_specs.values() if isinstance(ts, UserTask)}
        missing = sorted(
            f"{element} ({language})"
            for element in {process_id, *tasks}
            for language in ("sv", "fi")
            if not names.get(element, {}).get(language)
        )
        assert missing == [], f"processes/{process_id}/names.json lacks {', '.join(missing)}"


def test_below_threshold_purchases_are_not_called_suorahankinta() -> None:
    # In hankintalaki, suorahankinta is the exceptional negotiated procedure without prior notice.
    for process_id in SHIPPED:
        text = (PROCESSES / process_id / "names.json").read_text(encoding="utf-8").lower()
        assert "suorahankin" not in text, process_id


def test_group_names_come_from_the_seed(session_factory: Factory, tmp_path: Path) -> None:
    seed = engine.read_seed_file(PROCESSES / "demo.json")
    seed["users"] = [{**u, "password": None} for u in seed["users"]]
    with session_factory.begin() as s:
        engine.load_seed(s, seed)
    with session_factory() as s:
        fi = engine.get_organisation(s, "esimerkkila").id
        assert engine.group_names(s, fi, "fi")["procurement_officers"] == "Hankinta-asiantuntijat"
        assert engine.group_names(s, fi, "sv")["procurement_officers"] == "Upphandlare"
        assert engine.group_names(s, fi, "en")["procurement_officers"] == "Procurement officers"
        # Every group a demo user is in, or a shipped lane names, has a name in each language.
        keys = {g for u in seed["users"] for g in u["groups"]}
        for language in ("en", "sv", "fi"):
            names = engine.group_names(s, fi, language)
            assert all(names[k] != k for k in keys if k in names), language


def test_a_group_with_bad_names_is_refused(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s, pytest.raises(engine.DataError, match="'buyers'"):
        seed = {
            "organisations": [
                {
                    "key": "north",
                    "name": "North",
                    "groups": [{"key": "buyers", "name": "B", "names": {"sv": ""}}],
                }
            ]
        }
        engine.load_seed(s, seed)
