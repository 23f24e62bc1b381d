"""Deploy refuses form files that are not valid JSON Schema or could reach past their form."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from engine._specs import parse_bundle, read_bundle
from tests.conftest import FIXTURES
from tests.forms.test_schema_safety import Listener, listener

__all__ = ["listener"]  # the fixture, imported to be found by pytest

APPROVAL = FIXTURES / "approval"
REDOS = "^(a+)+$"


def _bundle_with(tmp_path: Path, approve_schema: Any) -> Path:
    target = tmp_path / "approval"
    shutil.copytree(APPROVAL, target)
    (target / "approve.schema.json").write_text(json.dumps(approve_schema, indent=2), encoding="utf-8")
    return target


def _approve(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["approved"],
        "properties": {"approved": {"type": "boolean", "title": "Approved"}, **properties},
    }


def _refused(session_factory: so.sessionmaker[so.Session], bundle: Path) -> engine.DeploymentError:
    with pytest.raises(engine.DeploymentError) as info, session_factory.begin() as s:
        engine.deploy_path(s, bundle)
    return info.value


def test_a_remote_ref_is_refused_and_never_fetched(
    session_factory: so.sessionmaker[so.Session], tmp_path: Path, listener: Listener
) -> None:
    bundle = _bundle_with(tmp_path, _approve(comment={"$ref": listener.url}))
    error = _refused(session_factory, bundle)
    assert error.file == "approve.schema.json"
    assert "JSON pointer /properties/comment/$ref" in error.message
    assert "does not point inside this form" in error.message
    time.sleep(0.2)
    assert listener.connections == 0


def test_a_ref_cycle_is_refused(session_factory: so.sessionmaker[so.Session], tmp_path: Path) -> None:
    schema = _approve(comment={"$ref": "#/$defs/note"})
    schema["$defs"] = {"note": {"type": "object", "properties": {"reply": {"$ref": "#/$defs/note"}}}}
    error = _refused(session_factory, _bundle_with(tmp_path, schema))
    assert error.file == "approve.schema.json"
    assert "JSON pointer /$defs/note/properties/reply/$ref" in error.message


def test_shared_local_refs_deploy(session_factory: so.sessionmaker[so.Session], tmp_path: Path) -> None:
    schema = _approve(comment={"$ref": "#/$defs/text"}, reason={"$ref": "#/$defs/text"})
    schema["$defs"] = {"text": {"type": "string", "maxLength": 200, "pattern": REDOS}}
    with session_factory.begin() as s:
        (deployed,) = engine.deploy_path(s, _bundle_with(tmp_path, schema))
    assert deployed.changed


def test_a_pattern_re2_cannot_run_is_refused(
    session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    bundle = _bundle_with(tmp_path, _approve(comment={"type": "string", "pattern": "^(\\w)\\1$"}))
    error = _refused(session_factory, bundle)
    assert error.file == "approve.schema.json"
    assert "JSON pointer /properties/comment/pattern" in error.message
    assert "linear time" in error.message


def test_a_form_that_is_not_json_schema_is_refused(
    session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    schema = _approve(
        decision={"type": "string", "oneOf": [{"const": "yes", "title": {"en": "Yes", "sv": "Ja"}}]}
    )
    error = _refused(session_factory, _bundle_with(tmp_path, schema))
    assert error.file == "approve.schema.json"
    assert "JSON pointer /properties/decision/oneOf/0/title" in error.message
    assert "not valid JSON Schema" in error.message


def test_a_ui_schema_must_be_an_object(session_factory: so.sessionmaker[so.Session], tmp_path: Path) -> None:
    bundle = _bundle_with(tmp_path, _approve())
    bpmn = bundle / "approval.bpmn"
    bpmn.write_text(
        bpmn.read_text().replace(
            '<spiffworkflow:property name="formJsonSchemaFilename" value="approve.schema.json" />',
            '<spiffworkflow:property name="formJsonSchemaFilename" value="approve.schema.json" />'
            '<spiffworkflow:property name="formUiSchemaFilename" value="approve.uischema.json" />',
        )
    )
    # A UI schema is no JSON Schema (its "ui:" keys would fail no metaschema), but it must be an object.
    (bundle / "approve.uischema.json").write_text('["ui:order"]')
    error = _refused(session_factory, bundle)
    assert error.file == "approve.uischema.json"
    assert "must be a JSON object" in error.message
    (bundle / "approve.uischema.json").write_text('{"ui:order": ["approved", "*"], "comment": {}}')
    with session_factory.begin() as s:
        (deployed,) = engine.deploy_path(s, bundle)
    assert deployed.changed


def test_stored_bundles_are_parsed_without_the_deploy_checks(tmp_path: Path) -> None:
    # A version deployed before these checks keeps running; validation guards its forms itself.
    files = read_bundle(_bundle_with(tmp_path, _approve(comment={"type": "string", "title": {"en": "C"}})))
    with pytest.raises(engine.DeploymentError, match="not valid JSON Schema"):
        parse_bundle(files)
    assert "approval" in parse_bundle(files, check_form_schemas=False).specs
