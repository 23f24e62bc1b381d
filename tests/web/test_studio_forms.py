"""The studio's form editor: who sees it, saving fields and raw JSON into the draft, the preview."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from tests.conftest import PROCESSES
from tests.web.conftest import LoginAs, WebClient
from web.studio.forms_editor import _parse_bpmn, set_task_form

FORM = "forms/approve.schema.json"
URL = f"/studio/direct_procurement/forms/{FORM}"


@pytest.fixture
def procurement(session_factory: so.sessionmaker[so.Session], users: None) -> None:
    """The shipped direct procurement, shared, and north's own version of it."""
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "direct_procurement")
        engine.deploy_path(s, PROCESSES / "direct_procurement", organisation="north")


class _EditorForm(HTMLParser):
    """The values a browser would submit from the page's ``#editor-form`` (no button pressed)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "editor-form":
            self.inside = True
        if not self.inside or "name" not in a:
            if tag == "option" and self._select is not None and "selected" in a:
                self.values.append((self._select, a["value"]))
            return
        if tag == "input" and (a.get("type") not in ("checkbox", "radio") or "checked" in a):
            self.values.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def editor_values(html: str) -> dict[str, str]:
    parser = _EditorForm()
    parser.feed(html)
    return dict(parser.values)


def draft_file(session_factory: so.sessionmaker[so.Session], name: str, org: str = "north") -> Any:
    with session_factory() as s:
        organisation = engine.get_organisation(s, org)
        draft = engine.studio.find_draft(s, organisation.id, "direct_procurement")
        if draft is None:
            return None
        return json.loads(engine.studio.read_draft_file(s, draft, name).content)


def shipped(name: str) -> Any:
    return json.loads((PROCESSES / "direct_procurement" / name).read_text(encoding="utf-8"))


def test_the_editor_shows_the_fields_with_their_three_labels(login_as: LoginAs, procurement: None) -> None:
    client = login_as("process_owner")
    page = client.get(URL)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    values = editor_values(html)
    keys = [values[f"f{i}.key"] for i in range(int(values["n"]))]
    assert keys == shipped("forms/approve.uischema.json")["ui:order"]
    level = keys.index("approver_level")
    assert values[f"f{level}.title.sv"] == "Beslutsnivå" and values[f"f{level}.title.fi"] == "Hyväksyntätaso"
    assert values[f"f{level}.c0.label.sv"] == "Enhetschef"
    assert values[f"f{level}.read_only"] == "1"
    assert values["title.en"] == "Approve the purchase"


def test_saving_unedited_fields_changes_nothing_and_an_edit_lands_in_the_draft(
    login_as: LoginAs, procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("process_owner")
    values = editor_values(client.get(URL).get_data(as_text=True))
    saved = client.post(URL, data=values)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    assert draft_file(session_factory, FORM) == shipped(FORM)

    values = editor_values(client.get(URL).get_data(as_text=True))
    added = client.post(URL, data={**values, "action": "add:"})
    assert added.status_code == 200
    values = editor_values(added.get_data(as_text=True))
    new = f"f{int(values['n']) - 1}"
    values.update(
        {
            f"{new}.key": "delivery_address",
            f"{new}.title.en": "Delivery address",
            f"{new}.title.sv": "Leveransadress",
            f"{new}.title.fi": "Toimitusosoite",
            f"{new}.required": "1",
        }
    )
    assert client.post(URL, data=values).status_code == 303
    schema = draft_file(session_factory, FORM)
    assert schema["properties"]["delivery_address"] == {
        "type": "string",
        "title": "Delivery address",
        "x-translations": {"sv": {"title": "Leveransadress"}, "fi": {"title": "Toimitusosoite"}},
    }
    assert "delivery_address" in schema["required"]
    assert schema["allOf"] == shipped(FORM)["allOf"]
    assert draft_file(session_factory, "forms/approve.uischema.json")["ui:order"][-1] == "delivery_address"


def test_a_bad_edit_is_shown_beside_its_field_with_the_input_kept(
    login_as: LoginAs, procurement: None
) -> None:
    client = login_as("process_owner")
    values = editor_values(client.get(URL).get_data(as_text=True))
    values["f1.max"] = "lots"
    values["f1.title.sv"] = "Mitt nya namn"
    response = client.post(URL, data=values)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    after = editor_values(html)
    assert after["f1.max"] == "lots" and after["f1.title.sv"] == "Mitt nya namn"
    assert 'id="field-f1-error"' in html and "maximum &#39;lots&#39; is not a number" in html


def test_the_preview_renders_the_edit_in_the_chosen_language(login_as: LoginAs, procurement: None) -> None:
    client = login_as("process_owner")
    values = editor_values(client.get(URL).get_data(as_text=True))
    values["f0.title.sv"] = "Vad köps"
    swedish = client.post(f"{URL}/preview", data={**values, "preview_lang": "sv"}).get_data(as_text=True)
    assert "Vad köps" in swedish and "Godkänn inköpet" in swedish
    assert "Enhetschef" in swedish, "the read-only choice shows its sample value's Swedish label"
    assert ">Ja<" in swedish.replace("> Ja<", ">Ja<"), "interface words are Swedish too"
    finnish = client.post(f"{URL}/preview", data={**values, "preview_lang": "fi"}).get_data(as_text=True)
    assert "Hyväksy hankinta" in finnish and "Vad köps" not in finnish
    english = client.post(f"{URL}/preview", data={**values, "preview_lang": "en"}).get_data(as_text=True)
    assert "Approve the purchase" in english


def test_bad_raw_json_keeps_the_input_and_names_the_line(
    login_as: LoginAs, procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("process_owner")
    broken = '{\n  "type": "object",\n  "properties": {\n    "a": {"type": "string",}\n  }\n}'
    response = client.post(URL, data={"mode": "raw", "schema_json": broken, "ui_json": "{}"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f"{FORM}, line 4, column" in html
    assert '"a": {"type": "string",}' in html.replace("&#34;", '"'), "the typed text is shown again"
    assert draft_file(session_factory, FORM) is None, "nothing was saved (no draft was made)"

    not_a_schema = json.dumps({"type": "object", "properties": {"a": {"type": "strung"}}})
    response = client.post(URL, data={"mode": "raw", "schema_json": not_a_schema, "ui_json": "{}"})
    assert response.status_code == 422
    assert "JSON pointer /properties/a/type" in response.get_data(as_text=True)

    good = json.dumps({"type": "object", "properties": {"a": {"type": "string", "title": "A"}}})
    assert client.post(URL, data={"mode": "raw", "schema_json": good, "ui_json": "{}"}).status_code == 303
    assert draft_file(session_factory, FORM)["properties"] == {"a": {"type": "string", "title": "A"}}


def test_validation_problems_of_the_draft_are_shown_beside_their_field(
    login_as: LoginAs, procurement: None
) -> None:
    client = login_as("process_owner")
    bad = shipped(FORM)
    bad["properties"]["approval_comment"]["pattern"] = "(a)\\1"
    response = client.post(URL, data={"mode": "raw", "schema_json": json.dumps(bad), "ui_json": "{}"})
    assert response.status_code == 422, "deploy's pattern check refuses it on save"
    assert "JSON pointer /properties/approval_comment/pattern" in response.get_data(as_text=True)


def test_what_validating_the_draft_finds_is_shown_beside_the_field(
    login_as: LoginAs, procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    bad = shipped(FORM)
    bad["properties"]["approval_comment"]["pattern"] = "(a)\\1"
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north").id
        draft = engine.studio.open_draft(s, north, "direct_procurement", user="north-owner")
        engine.studio.save_draft_file(s, draft, FORM, json.dumps(bad), user="north-owner")
    client = login_as("process_owner")
    html = client.get(URL).get_data(as_text=True)
    values = editor_values(html)
    comment = next(i for i in range(int(values["n"])) if values[f"f{i}.key"] == "approval_comment")
    error = html.split(f'id="field-f{comment}-error"', 1)[1].split("</p>", 1)[0]
    assert "/properties/approval_comment/pattern" in error and "linear time" in error


def test_a_new_form_for_a_task_is_named_in_the_bpmn(
    login_as: LoginAs, procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("process_owner")
    assert client.get("/studio/direct_procurement/forms/new?task=describe_need").status_code == 200
    assert client.get("/studio/direct_procurement/forms/new?task=nope").status_code == 404
    response = client.post(
        "/studio/direct_procurement/forms/new",
        data={"name": "check_delivery", "task": "approve", "title.en": "Check", "title.sv": "Kontrollera"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(
        "/studio/direct_procurement/forms/forms/check_delivery.schema.json"
    )
    schema = draft_file(session_factory, "forms/check_delivery.schema.json")
    assert schema["title"] == "Check" and schema["x-translations"] == {"sv": {"title": "Kontrollera"}}
    with session_factory() as s:
        draft = engine.studio.find_draft(s, engine.get_organisation(s, "north").id, "direct_procurement")
        assert draft is not None
        bpmn = engine.studio.read_draft_file(s, draft, "direct_procurement.bpmn").content
        problems = engine.studio.validate_draft(s, draft)
    assert (
        '<spiffworkflow:property name="formJsonSchemaFilename" value="check_delivery.schema.json"/>' in bpmn
    )
    assert [p for p in problems if p.severity == "error"] == []
    again = client.post("/studio/direct_procurement/forms/new", data={"name": "check_delivery"})
    assert again.status_code == 422 and "already has a form" in again.get_data(as_text=True)


def test_a_shared_process_is_shown_read_only_until_customised(login_as: LoginAs, procurement: None) -> None:
    south = login_as("process_owner", "south")
    html = south.get(URL).get_data(as_text=True)
    assert "read-only for your organisation until you customise it" in html
    assert 'action="/studio/direct_procurement/customise"' in html
    values = editor_values(html)
    assert south.post(URL, data=values).status_code == 403
    preview = south.post(f"{URL}/preview", data={**values, "preview_lang": "fi"})
    assert "Hyväksy hankinta" in preview.get_data(as_text=True)


def test_a_task_without_extension_elements_gets_its_form_where_spiff_arena_writes_it() -> None:
    root = _parse_bpmn(
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        '<bpmn:process id="p"><bpmn:userTask id="t"><bpmn:documentation>Do it</bpmn:documentation>'
        "<bpmn:incoming>f</bpmn:incoming></bpmn:userTask></bpmn:process></bpmn:definitions>"
    )
    set_task_form(root, "t", "t.schema.json", "t.uischema.json")
    (task,) = root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}userTask")
    assert [child.tag.split("}")[1] for child in task] == ["documentation", "extensionElements", "incoming"]
    properties = task[1][0]
    assert properties.tag == "{http://spiffworkflow.org/bpmn/schema/1.0/core}properties"
    assert [(p.get("name"), p.get("value")) for p in properties] == [
        ("formJsonSchemaFilename", "t.schema.json"),
        ("formUiSchemaFilename", "t.uischema.json"),
    ]
    with pytest.raises(ValueError, match="DOCTYPE"):
        _parse_bpmn('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')


def test_a_broken_draft_file_opens_in_the_raw_view_naming_the_line(
    login_as: LoginAs, procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north").id
        draft = engine.studio.open_draft(s, north, "direct_procurement", user="north-owner")
        engine.studio.save_draft_file(s, draft, FORM, '{\n  "type": "object",\n', user="north-owner")
    html = login_as("process_owner").get(URL).get_data(as_text=True)
    assert '<details class="raw-json" open>' in html
    assert f"{FORM}, line 3, column 1" in html


@pytest.mark.parametrize("role", ["case_handler", "requester"])
def test_other_roles_get_404(login_as: LoginAs, procurement: None, role: str) -> None:
    client = login_as(role)
    assert client.get(URL).status_code == 404
    assert client.post(f"{URL}/preview", data={}).status_code == 404


def test_another_organisations_process_is_404(
    login_as: LoginAs, procurement: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, PROCESSES / "goal_review", organisation="south")
    client: WebClient = login_as("process_owner")
    assert client.get("/studio/goal_review/forms/forms/approve_plan.schema.json").status_code == 404
    assert client.get(f"{URL.replace('approve', 'no_such_form')}").status_code == 404
    south = login_as("process_owner", "south")
    assert south.get("/studio/goal_review/forms/forms/approve_plan.schema.json").status_code == 200
