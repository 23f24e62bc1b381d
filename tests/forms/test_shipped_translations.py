"""Every text a shipped form shows has a Swedish and a Finnish translation.

For each form of the shipped processes (``processes/*/forms`` and the message
forms in ``processes/*/messages``): the form's title, every field's title (and
description, when it has one), every help text of the UI schema and every
choice's label. A title translates as ``"x-translations": {"sv": {"title": …},
"fi": {…}}`` beside it, or as a language mapping in the UI schema's
``ui:title``. A choice needs a label to translate: ``oneOf`` entries with a
``const``, a ``title`` and its ``x-translations``; a bare ``enum`` shows raw keys
and counts as missing. Fields the UI schema hides are not shown, so not checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("sv", "fi")
FORMS = sorted(
    [*ROOT.glob("processes/*/forms/*.schema.json"), *ROOT.glob("processes/*/messages/*.schema.json")]
)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _translated(node: Mapping[str, Any], key: str, language: str, ui_text: Any = None) -> bool:
    if isinstance(ui_text, Mapping) and ui_text.get(language):
        return True
    translations = node.get("x-translations")
    return isinstance(translations, Mapping) and bool((translations.get(language) or {}).get(key))


def _text(node: Mapping[str, Any], key: str, pointer: str, ui_text: Any = None) -> Iterator[str]:
    """Yield ``pointer (language)`` for each language *node*'s *key* lacks."""
    for language in LANGUAGES:
        if not _translated(node, key, language, ui_text):
            yield f"{pointer}/{key} ({language})"


def _choices(schema: Mapping[str, Any], pointer: str) -> Iterator[str]:
    for keyword in ("oneOf", "anyOf"):
        alternatives = schema.get(keyword)
        if isinstance(alternatives, list) and all(
            isinstance(a, Mapping) and "const" in a for a in alternatives
        ):
            for index, alternative in enumerate(alternatives):
                yield from _text(alternative, "title", f"{pointer}/{keyword}/{index}")
    for index, value in enumerate(schema.get("enum") or []):
        if value is not None:
            for language in LANGUAGES:
                yield f"{pointer}/enum/{index} ({language}: {value!r} has no label; use oneOf with titles)"


def _fields(schema: Mapping[str, Any], ui: Mapping[str, Any], pointer: str) -> Iterator[str]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    for name, field in properties.items():
        if not isinstance(field, Mapping):
            continue
        field_ui = ui.get(name) if isinstance(ui.get(name), Mapping) else {}
        if field_ui.get("ui:widget") == "hidden":
            continue
        here = f"{pointer}/properties/{_escape(name)}"
        yield from _text(field, "title", here, field_ui.get("ui:title"))
        if "description" in field:
            yield from _text(field, "description", here)
        help_text = field_ui.get("ui:help")
        if help_text is not None and not isinstance(help_text, Mapping):
            yield from (f"uischema {here}/ui:help ({language})" for language in LANGUAGES)
        elif isinstance(help_text, Mapping):
            yield from (f"uischema {here}/ui:help ({lang})" for lang in LANGUAGES if not help_text.get(lang))
        yield from _choices(field, here)
        yield from _fields(field, field_ui, here)
        items = field.get("items")
        if isinstance(items, Mapping):
            items_ui = field_ui.get("items") if isinstance(field_ui.get("items"), Mapping) else {}
            yield from _choices(items, f"{here}/items")
            yield from _fields(items, items_ui, f"{here}/items")


def missing_translations(schema_file: Path, *, root: Path = ROOT) -> list[str]:
    """Return ``file#pointer (language)`` for each text of the form in *schema_file* lacking a translation."""
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    ui_file = schema_file.with_name(schema_file.name.replace(".schema.json", ".uischema.json"))
    ui = json.loads(ui_file.read_text(encoding="utf-8")) if ui_file.exists() else {}
    name = schema_file.relative_to(root)
    found = [*_text(schema, "title", ""), *_fields(schema, ui, "")]
    return [f"{name}#{entry}" for entry in found]


def test_every_shipped_form_is_checked() -> None:
    assert len(FORMS) >= 46


@pytest.mark.parametrize("schema_file", FORMS, ids=[str(f.relative_to(ROOT / "processes")) for f in FORMS])
def test_every_text_of_a_shipped_form_has_swedish_and_finnish(schema_file: Path) -> None:
    missing = missing_translations(schema_file)
    assert not missing, f"{len(missing)} translation(s) missing:\n" + "\n".join(missing)


BARE = "'a' has no label; use oneOf with titles"


def test_the_check_finds_what_is_missing(tmp_path: Path) -> None:
    form = {
        "title": "Approve",
        "x-translations": {"sv": {"title": "Godkänn"}, "fi": {"title": "Hyväksy"}},
        "type": "object",
        "properties": {
            "decision": {
                "type": "string",
                "title": "Decision",
                "x-translations": {"sv": {"title": "Beslut"}},
                "oneOf": [
                    {
                        "const": "yes",
                        "title": "Yes",
                        "x-translations": {"sv": {"title": "Ja"}, "fi": {"title": "Kyllä"}},
                    }
                ],
            },
            "rows": {
                "type": "array",
                "title": {"en": "Rows"},
                "items": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["a"]}}},
            },
            "secret": {"type": "string"},
        },
    }
    ui = {"rows": {"ui:title": {"sv": "Rader", "fi": "Rivit"}}, "secret": {"ui:widget": "hidden"}}
    (tmp_path / "x.schema.json").write_text(json.dumps(form), encoding="utf-8")
    (tmp_path / "x.uischema.json").write_text(json.dumps(ui), encoding="utf-8")
    missing = missing_translations(tmp_path / "x.schema.json", root=tmp_path)
    assert missing == [
        "x.schema.json#/properties/decision/title (fi)",
        "x.schema.json#/properties/rows/items/properties/kind/title (sv)",
        "x.schema.json#/properties/rows/items/properties/kind/title (fi)",
        *(
            f"x.schema.json#/properties/rows/items/properties/kind/enum/0 ({lang}: {BARE})"
            for lang in ("sv", "fi")
        ),
    ]
