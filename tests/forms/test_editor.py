"""The form editor's model: every shipped form reads and writes back unchanged; edits land where the
shipped forms keep them and leave everything else alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from forms import build_form, check_form_schema
from forms.editor import Choice, EditedField, FormEditError, read_form, write_form
from forms.editor_page import apply_action, field_pointers, prefix_for_pointer, sample_values
from tests.forms.test_shipped_translations import FORMS, missing_translations

ROOT = Path(__file__).resolve().parents[2]


def _load(schema_file: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    ui_file = schema_file.with_name(schema_file.name.replace(".schema.json", ".uischema.json"))
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    ui = json.loads(ui_file.read_text(encoding="utf-8")) if ui_file.exists() else {}
    return schema, ui


@pytest.mark.parametrize("schema_file", FORMS, ids=[str(f.relative_to(ROOT / "processes")) for f in FORMS])
def test_every_shipped_form_round_trips_unchanged(schema_file: Path) -> None:
    schema, ui = _load(schema_file)
    before = (copy.deepcopy(schema), copy.deepcopy(ui))
    written = write_form(schema, ui, read_form(schema, ui))
    assert written == before
    assert (schema, ui) == before, "write_form changed its arguments"
    # Key order too, so a saved file differs from the shipped one only where it was edited.
    assert json.dumps(written[0]) == json.dumps(before[0])


def _approve() -> tuple[dict[str, Any], dict[str, Any]]:
    return _load(ROOT / "processes/direct_procurement/forms/approve.schema.json")


def test_a_field_with_three_labels_is_written_as_the_shipped_forms_write_it(tmp_path: Path) -> None:
    schema, ui = _approve()
    form = read_form(schema, ui)
    apply_action(form, "add:")
    added = form.fields[-1]
    added.key = "delivery_address"
    added.kind = "textarea"
    added.required = True
    added.titles = {"en": "Delivery address", "sv": "Leveransadress", "fi": "Toimitusosoite"}
    added.helps = {"en": "Street and town", "sv": "Gata och ort", "fi": "Katu ja paikkakunta"}
    new_schema, new_ui = write_form(schema, ui, form)

    assert new_schema["properties"]["delivery_address"] == {
        "type": "string",
        "title": "Delivery address",
        "x-translations": {
            "sv": {"title": "Leveransadress", "description": "Gata och ort"},
            "fi": {"title": "Toimitusosoite", "description": "Katu ja paikkakunta"},
        },
        "description": "Street and town",
    }
    assert new_schema["required"] == ["approver_has_conflict", "approved", "delivery_address"]
    assert new_ui["delivery_address"] == {"ui:widget": "textarea"}
    assert new_ui["ui:order"][-1] == "delivery_address"
    assert new_schema["allOf"] == schema["allOf"], "the if/then conditions are kept"
    check_form_schema(new_schema)
    (tmp_path / "a.schema.json").write_text(json.dumps(new_schema), encoding="utf-8")
    (tmp_path / "a.uischema.json").write_text(json.dumps(new_ui), encoding="utf-8")
    assert missing_translations(tmp_path / "a.schema.json", root=tmp_path) == []
    swedish = build_form(new_schema, new_ui, locale="sv")
    assert swedish.fields[-1].label == "Leveransadress"
    assert swedish.fields[-1].help == "Gata och ort"


def test_choices_with_labels_become_oneof_entries_and_keep_what_they_had() -> None:
    schema, ui = _approve()
    form = read_form(schema, ui)
    level = next(f for f in form.fields if f.key == "approver_level")
    assert level.kind == "select" and level.read_only
    assert level.choices[0] == Choice(
        "unit_head", {"en": "Unit head", "sv": "Enhetschef", "fi": "Yksikön päällikkö"}
    )
    level.choices[1].labels["fi"] = "Alueen johtaja"
    level.choices.append(Choice("board", {"en": "Board", "sv": "Styrelse", "fi": "Hallitus"}))
    del level.choices[0]
    new_schema, _ = write_form(schema, ui, form)
    alternatives = new_schema["properties"]["approver_level"]["oneOf"]
    assert [a["const"] for a in alternatives] == ["area_head", "finance_head", "director", "board"]
    assert alternatives[0]["x-translations"]["fi"]["title"] == "Alueen johtaja"
    assert alternatives[0]["x-translations"]["sv"]["title"] == "Områdeschef"
    assert alternatives[-1] == {
        "const": "board",
        "title": "Board",
        "x-translations": {"sv": {"title": "Styrelse"}, "fi": {"title": "Hallitus"}},
    }


def test_a_bare_enum_gets_labels_as_oneof() -> None:
    schema = {"type": "object", "properties": {"size": {"type": "string", "enum": ["s", "m"]}}}
    form = read_form(schema)
    assert [c.value for c in form.fields[0].choices] == ["s", "m"]
    form.fields[0].choices[0].labels = {"en": "Small", "sv": "Liten", "fi": "Pieni"}
    new_schema, _ = write_form(schema, {}, form)
    size = new_schema["properties"]["size"]
    assert "enum" not in size
    assert size["oneOf"][0]["title"] == "Small" and size["oneOf"][1] == {"const": "m"}


def test_repeating_rows_edit_their_own_columns() -> None:
    schema, ui = _load(ROOT / "processes/direct_procurement/forms/register_quotes.schema.json")
    form = read_form(schema, ui)
    quotes = next(f for f in form.fields if f.key == "quotes")
    assert quotes.kind == "rows"
    assert [c.key for c in quotes.fields] == ["supplier", "org_number", "price", "compliant", "score"]
    assert quotes.fields[2].kind == "number" and quotes.fields[2].minimum == "0" and quotes.fields[2].required
    prefix = f"f{form.fields.index(quotes)}"
    assert apply_action(form, f"add:{prefix}")
    column = quotes.fields[-1]
    column.key, column.kind = "delivery_date", "date"
    column.titles = {"en": "Delivery", "sv": "Leverans", "fi": "Toimitus"}
    quotes.fields[4].maximum = "10"
    quotes.addable = False
    new_schema, new_ui = write_form(schema, ui, form)
    items = new_schema["properties"]["quotes"]["items"]
    assert items["properties"]["delivery_date"]["format"] == "date"
    assert items["properties"]["score"]["maximum"] == 10
    assert items["required"] == schema["properties"]["quotes"]["items"]["required"]
    assert new_ui["quotes"] == {"ui:options": {"addable": False}}
    check_form_schema(new_schema)


def test_unknown_keywords_survive_edits_of_the_same_field() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "$defs": {"money": {"type": "number"}},
        "x-owner": "finance",
        "properties": {
            "weights": {
                "type": "array",
                "title": "Weights",
                "x-total": {"of": "weight", "equals": 100},
                "x-custom": [1, 2],
                "items": {"type": "object", "properties": {"weight": {"type": "number", "x-unit": "%"}}},
            },
            "goal": {"type": "string", "x-choices": {"source": "open_goal_tasks"}},
        },
    }
    ui = {"weights": {"ui:options": {"rows": 3}, "ui:classNames": "wide"}}
    form = read_form(schema, ui)
    form.fields[0].titles["sv"] = "Vikter"
    form.fields[0].fields[0].titles["en"] = "Weight"
    form.fields[0].removable = False
    new_schema, new_ui = write_form(schema, ui, form)
    weights = new_schema["properties"]["weights"]
    assert weights["x-total"] == {"of": "weight", "equals": 100} and weights["x-custom"] == [1, 2]
    assert weights["items"]["properties"]["weight"] == {"type": "number", "x-unit": "%", "title": "Weight"}
    assert new_schema["$defs"] == schema["$defs"] and new_schema["x-owner"] == "finance"
    assert new_schema["properties"]["goal"] == schema["properties"]["goal"]
    assert new_ui == {"weights": {"ui:options": {"rows": 3, "removable": False}, "ui:classNames": "wide"}}


def test_ui_help_in_languages_is_edited_where_it_is() -> None:
    schema, ui = _load(ROOT / "processes/goal_review/forms/select_goals.schema.json")
    form = read_form(schema, ui)
    goals = next(f for f in form.fields if f.kind == "rows" and f.helps["sv"])
    goals.helps["fi"] = "Uusi ohje"
    _, new_ui = write_form(schema, ui, form)
    assert new_ui[goals.key]["ui:help"]["fi"] == "Uusi ohje"
    assert new_ui[goals.key]["ui:help"]["sv"] == ui[goals.key]["ui:help"]["sv"]


def test_rename_remove_reorder_and_read_only() -> None:
    schema, ui = _approve()
    form = read_form(schema, ui)
    keys = [f.key for f in form.fields]
    comment = keys.index("approval_comment")
    form.fields[comment].key = "comment"
    assert apply_action(form, f"up:f{comment}")
    assert apply_action(form, "remove:f0")  # subject
    form.fields[0].read_only = False  # contract_value
    new_schema, new_ui = write_form(schema, ui, form)
    assert "subject" not in new_schema["properties"] and "subject" not in new_ui
    assert "comment" in new_schema["properties"] and "approval_comment" not in new_ui
    assert new_ui["comment"] == {"ui:widget": "textarea"}
    assert new_ui["ui:order"][-2:] == ["comment", "approved"]
    assert "readOnly" not in new_schema["properties"]["contract_value"]
    assert "contract_value" not in new_ui
    # The if/then keeps naming the old key: the editor shows it as conditional, the raw JSON edits it.
    assert next(f for f in read_form(schema, ui).fields if f.key == "approval_comment").conditional


def test_changing_a_type_drops_keywords_it_no_longer_takes() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "string", "maxLength": 5, "title": "N"}}}
    form = read_form(schema)
    form.fields[0].kind = "money"
    form.fields[0].maximum = "1000"
    form.fields[0].default = "12,5"
    new_schema, new_ui = write_form(schema, {}, form)
    assert new_schema["properties"]["n"] == {"type": "number", "title": "N", "maximum": 1000, "default": 12.5}
    assert new_ui == {"n": {"ui:widget": "money"}}


@pytest.mark.parametrize(
    ("edit", "pointer", "words"),
    [
        (lambda f: setattr(f, "key", "två ord"), "/properties/två ord", "must start with a letter"),
        (lambda f: setattr(f, "maximum", "many"), "/properties/price/maxLength", "not a whole number"),
        (lambda f: setattr(f, "kind", "select"), "/properties/price/oneOf", "at least one choice"),
    ],
)
def test_bad_edits_name_their_field(edit: Any, pointer: str, words: str) -> None:
    schema = {"type": "object", "properties": {"price": {"type": "string"}}}
    form = read_form(schema)
    edit(form.fields[0])
    with pytest.raises(FormEditError) as caught:
        write_form(schema, {}, form)
    assert caught.value.pointer == pointer and words in caught.value.message


def test_problems_are_placed_beside_the_deepest_field_they_name() -> None:
    schema, ui = _load(ROOT / "processes/direct_procurement/forms/register_quotes.schema.json")
    form = read_form(schema, ui)
    pointers = field_pointers(form)
    quotes = next(i for i, f in enumerate(form.fields) if f.key == "quotes")
    assert (
        prefix_for_pointer(pointers, "/properties/quotes/items/properties/price/minimum") == f"f{quotes}.f2"
    )
    assert prefix_for_pointer(pointers, "/properties/quotes") == f"f{quotes}"
    assert prefix_for_pointer(pointers, "/required") is None


def test_sample_values_fill_every_field_with_its_type() -> None:
    schema, ui = _load(ROOT / "processes/direct_procurement/forms/register_quotes.schema.json")
    values = sample_values(schema, "sv")
    assert values["subject"] == "Exempel"
    assert values["quotes"][0]["price"] == 1200 and values["quotes"][0]["compliant"] is True
    form = build_form(schema, ui, values=values, locale="sv")
    assert form.fields[0].value == "Exempel"
    new = EditedField(key="x")
    assert new.kind == "text" and not new.has_choices
