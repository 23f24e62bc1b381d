"""Deploying bundles: versioning, organisation overrides, validation and safe XML."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy.orm as so

import engine
from tests.conftest import FIXTURES

APPROVAL = FIXTURES / "approval"


def _copy_bundle(tmp_path: Path) -> Path:
    target = tmp_path / "approval"
    shutil.copytree(APPROVAL, target)
    return target


def test_redeploying_unchanged_files_is_a_no_op(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        first = engine.deploy_path(s, APPROVAL)
        again = engine.deploy_path(s, APPROVAL)
    assert [(d.process_id, d.version, d.changed) for d in first] == [("approval", 1, True)]
    assert [(d.process_id, d.version, d.changed) for d in again] == [("approval", 1, False)]


def test_changed_files_make_a_new_version_and_running_instances_stay(
    session_factory: so.sessionmaker[so.Session], orgs: None, tmp_path: Path
) -> None:
    bundle = _copy_bundle(tmp_path)
    with session_factory.begin() as s:
        engine.deploy_path(s, bundle)
        old = engine.start_instance(s, "approval", organisation="north", user="north-req")
    bpmn = bundle / "approval.bpmn"
    bpmn.write_text(bpmn.read_text().replace("Describe the purchase", "Describe the need"))
    with session_factory.begin() as s:
        (deployed,) = engine.deploy_path(s, bundle)
        new = engine.start_instance(s, "approval", organisation="north", user="north-req")
    assert deployed.version == 2
    with session_factory() as s:
        assert engine.get_instance(s, old.id).definition.version == 1
        assert engine.get_instance(s, new.id).definition.version == 2
        names = {t.instance_id: t.name for t in engine.list_tasks(s)}
    assert names == {old.id: "Describe the purchase", new.id: "Describe the need"}


def test_organisation_version_wins_over_shared(
    session_factory: so.sessionmaker[so.Session], orgs: None, tmp_path: Path
) -> None:
    bundle = _copy_bundle(tmp_path)
    bpmn = bundle / "approval.bpmn"
    bpmn.write_text(bpmn.read_text().replace("Describe the purchase", "Southern request"))
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)
        (own,) = engine.deploy_path(s, bundle, organisation="south")
        north = engine.start_instance(s, "approval", organisation="north", user="north-req")
        south = engine.start_instance(s, "approval", organisation="south", user="south-req")
    assert (own.organisation, own.version) == ("south", 1)
    with session_factory() as s:
        assert engine.list_tasks(s, instance_id=north.id)[0].name == "Describe the purchase"
        assert engine.list_tasks(s, instance_id=south.id)[0].name == "Southern request"


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def _deploy_text(session_factory: so.sessionmaker[so.Session], name: str, text: str) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile(name=name, kind="bpmn", content=text)], name="broken")


def test_malformed_xml_names_file_and_line(session_factory: so.sessionmaker[so.Session]) -> None:
    text = (APPROVAL / "approval.bpmn").read_text().replace("</bpmn:userTask>", "</bpmn:userTsk>", 1)
    with pytest.raises(engine.DeploymentError) as info:
        _deploy_text(session_factory, "broken.bpmn", text)
    assert info.value.file == "broken.bpmn"
    assert info.value.line == _line_of(text, "</bpmn:userTsk>")
    assert "malformed XML" in str(info.value)


def test_schema_violation_names_file_line_and_element(session_factory: so.sessionmaker[so.Session]) -> None:
    text = (
        (APPROVAL / "approval.bpmn")
        .read_text()
        .replace(
            '<bpmn:sequenceFlow id="f2" sourceRef="request" targetRef="compute" />',
            '<bpmn:sequenceFlow id="f2" sourceRef="request" targetRef="nowhere" />',
        )
    )
    with pytest.raises(engine.DeploymentError) as info:
        _deploy_text(session_factory, "broken.bpmn", text)
    assert info.value.file == "broken.bpmn"
    assert info.value.element in {"f2", "request", "nowhere"}
    assert info.value.line is not None and info.value.line > 1


def test_missing_form_file_is_refused(session_factory: so.sessionmaker[so.Session], tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    (bundle / "approve.schema.json").unlink()
    with pytest.raises(engine.DeploymentError) as info, session_factory.begin() as s:
        engine.deploy_path(s, bundle)
    assert info.value.element == "approve"
    assert info.value.file == "approval.bpmn"
    assert info.value.line == _line_of((bundle / "approval.bpmn").read_text(), '<bpmn:userTask id="approve"')
    assert "approve.schema.json" in str(info.value)


def test_invalid_json_form_is_refused(session_factory: so.sessionmaker[so.Session], tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    (bundle / "approve.schema.json").write_text('{"type": "object",\n "properties": }')
    with pytest.raises(engine.DeploymentError, match="invalid JSON") as info, session_factory.begin() as s:
        engine.deploy_path(s, bundle)
    assert (info.value.file, info.value.line) == ("approve.schema.json", 2)


@pytest.mark.parametrize("depth", [65, 100_000])
def test_too_deeply_nested_form_is_refused(
    session_factory: so.sessionmaker[so.Session], tmp_path: Path, depth: int
) -> None:
    bundle = _copy_bundle(tmp_path)
    nested = "[" * (depth - 1) + "]" * (depth - 1)  # inside the form's own object: *depth* levels in all
    (bundle / "approve.schema.json").write_text('{"type": "object",\n "x-notes": ' + nested + "}")
    too_deep = pytest.raises(engine.DeploymentError, match="nested more than 64 levels deep")
    with too_deep as info, session_factory.begin() as s:
        engine.deploy_path(s, bundle)
    assert (info.value.file, info.value.line) == ("approve.schema.json", 2)


def test_form_nested_to_the_limit_deploys(
    session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    bundle = _copy_bundle(tmp_path)
    schema = bundle / "approve.schema.json"
    schema.write_text(schema.read_text().rstrip()[:-1] + ', "x-notes": ' + "[" * 63 + "]" * 63 + "}")
    with session_factory.begin() as s:
        (deployed,) = engine.deploy_path(s, bundle)
    assert deployed.changed


XXE = """<?xml version="1.0"?>
<!DOCTYPE bpmn:definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&xxe;" isExecutable="true"><bpmn:startEvent id="s" /></bpmn:process>
</bpmn:definitions>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&lol3;" isExecutable="true"><bpmn:startEvent id="s" /></bpmn:process>
</bpmn:definitions>"""


@pytest.mark.parametrize("text", [XXE, BILLION_LAUGHS], ids=["xxe", "entity-expansion"])
def test_doctype_and_entities_are_refused(session_factory: so.sessionmaker[so.Session], text: str) -> None:
    with pytest.raises(engine.DeploymentError, match="DOCTYPE") as info:
        _deploy_text(session_factory, "evil.bpmn", text)
    assert info.value.file == "evil.bpmn"


def test_failed_deploy_keeps_what_was_stored(
    session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)
    bundle = _copy_bundle(tmp_path)
    (bundle / "approval.bpmn").write_text("<not-closed>")
    with pytest.raises(engine.DeploymentError), session_factory.begin() as s:
        engine.deploy_path(s, bundle)
    with session_factory() as s:
        north = engine.add_organisation(s, "north", name="North")
        definition = engine.resolve_definition(s, "approval", north.id)
        assert definition.version == 1


def test_unknown_process_is_not_found(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    with pytest.raises(engine.NotFoundError, match="No process 'nope'"), session_factory.begin() as s:
        engine.start_instance(s, "nope", organisation="north", user="north-req")


def test_element_names_cover_every_named_element_of_the_version(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)
        instance = engine.start_instance(s, "approval", organisation="north", user="north-req")
        names = engine.element_names(s, instance.definition)
    assert names["start"] == "Need arises"
    assert names["request"] == "Describe the purchase"
    assert names["compute"] == "Compute VAT"  # a script task: no human task row carries its name
