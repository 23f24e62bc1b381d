"""A form's JSON Schema and UI schema as a list of editable fields, and back, losing nothing.

The studio's form editor shows a form as fields (key, type, required, labels
and help texts in English, Swedish and Finnish, choices with their labels,
default, minimum and maximum, repeating rows with their own fields, read-only
context) and writes the edits back into the documents they came from.

:func:`read_form` turns a schema and a UI schema into an :class:`EditedForm`;
:func:`write_form` applies an edited form to the same two documents and
returns new ones. Writing changes only what was edited: every keyword the
editor does not show (``if``/``then`` conditions, ``x-total``, ``x-choices``,
``$defs``, patterns, unknown ``x-`` keywords) stays as it was, so reading a
form and writing it back unedited gives the same JSON.

Texts are written where the shipped forms keep them: English in ``title`` and
``description``, Swedish and Finnish in ``"x-translations": {"sv": {"title":
…}}`` beside them, choices as ``oneOf`` entries with ``const``, ``title`` and
``x-translations``. A field whose UI schema holds ``ui:title`` or ``ui:help``
(or whose schema writes a text as a language mapping) keeps its texts there.

:mod:`forms.editor_page` reads the editor's HTML form and applies its buttons.
Nothing here knows HTTP or SQL.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import choices, ordered_properties, schema_type
from .schema_check import escape

LANGUAGES = ("en", "sv", "fi")
"""The languages a label or help text is edited in, English first (it goes in ``title``)."""

KINDS = (
    "text",
    "textarea",
    "email",
    "number",
    "integer",
    "money",
    "date",
    "date-time",
    "boolean",
    "select",
    "radio",
    "multi-select",
    "attachment",
    "rows",
    "group",
)
"""The field types the editor offers; a field it cannot name is ``"other"`` (or ``"hidden"``)."""

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# kind: (JSON type, format, ui:widget)
_SHAPES: dict[str, tuple[str, str | None, str | None]] = {
    "text": ("string", None, None),
    "textarea": ("string", None, "textarea"),
    "email": ("string", "email", None),
    "number": ("number", None, None),
    "integer": ("integer", None, None),
    "money": ("number", None, "money"),
    "date": ("string", "date", None),
    "date-time": ("string", "date-time", None),
    "boolean": ("boolean", None, None),
    "select": ("string", None, None),
    "radio": ("string", None, "radio"),
    "multi-select": ("array", None, None),
    "attachment": ("string", "data-url", None),
    "rows": ("array", None, None),
    "group": ("object", None, None),
}
_STRING_KEYS = ("minLength", "maxLength", "pattern")
_NUMBER_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_CHOICE_KEYS = ("enum", "oneOf", "anyOf")
_ARRAY_KEYS = ("items", "minItems", "maxItems", "uniqueItems", "x-total")
_OBJECT_KEYS = ("properties", "required", "additionalProperties")
_ALLOWED: dict[str, tuple[str, ...]] = {
    **{kind: _STRING_KEYS for kind in ("text", "textarea", "email")},
    **{kind: _NUMBER_KEYS for kind in ("number", "integer", "money")},
    **{kind: _STRING_KEYS + _CHOICE_KEYS for kind in ("select", "radio")},
    "multi-select": _ARRAY_KEYS,
    "rows": _ARRAY_KEYS,
    "group": _OBJECT_KEYS,
}
_TYPE_KEYS = frozenset(_STRING_KEYS + _NUMBER_KEYS + _CHOICE_KEYS + _ARRAY_KEYS + _OBJECT_KEYS)
_WIDGETS = frozenset(
    {"textarea", "radio", "money", "checkbox", "file", "select", "date", "datetime", "email"}
)
# Which keywords a field's "min" and "max" are, by kind.
_BOUNDS = {
    **{kind: ("minLength", "maxLength") for kind in ("text", "textarea", "email", "select", "radio")},
    **{kind: ("minimum", "maximum") for kind in ("number", "integer", "money")},
    **{kind: ("minItems", "maxItems") for kind in ("multi-select", "rows")},
}


class FormEditError(ValueError):
    """An edit cannot be written: ``pointer`` is the JSON pointer of the field it concerns."""

    def __init__(self, message: str, *, pointer: str = "") -> None:
        self.message = message
        self.pointer = pointer
        super().__init__(f"at {pointer or '/'}: {message}")


def _texts() -> dict[str, str]:
    return dict.fromkeys(LANGUAGES, "")


@dataclass
class Choice:
    """One choice of a select, radio or multi-select field: its value and its label per language."""

    value: str
    labels: dict[str, str] = field(default_factory=_texts)


@dataclass
class EditedField:
    """One field as the editor shows it.

    ``origin`` is the key the field has in the documents it was read from
    (``None`` for a field added in the editor); ``default``, ``minimum`` and
    ``maximum`` are the texts typed (empty: none). ``fields`` are a group's
    properties or a repeating row's columns. ``conditional`` tells that an
    ``if``/``then`` of the form makes the field required in some cases (edited
    in the raw JSON only).
    """

    key: str
    kind: str = "text"
    origin: str | None = None
    required: bool = False
    read_only: bool = False
    titles: dict[str, str] = field(default_factory=_texts)
    helps: dict[str, str] = field(default_factory=_texts)
    choices: list[Choice] = field(default_factory=list)
    default: str = ""
    minimum: str = ""
    maximum: str = ""
    addable: bool = True
    removable: bool = True
    fields: list[EditedField] = field(default_factory=list)
    conditional: bool = False
    dynamic_choices: bool = False

    @property
    def has_choices(self) -> bool:
        """Tell whether the field's kind takes a list of choices."""
        return self.kind in ("select", "radio", "multi-select")

    @property
    def has_fields(self) -> bool:
        """Tell whether the field's kind holds fields of its own (rows, group)."""
        return self.kind in ("rows", "group")


@dataclass
class EditedForm:
    """A whole form as the editor shows it: its title per language and its fields."""

    titles: dict[str, str] = field(default_factory=_texts)
    fields: list[EditedField] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def field_kind(schema: Mapping[str, Any], ui: Mapping[str, Any]) -> str:
    """Return the editor's kind of a property: one of :data:`KINDS`, ``"hidden"`` or ``"other"``."""
    widget = ui.get("ui:widget")
    kind = schema_type(schema)
    fmt = schema.get("format")
    if widget == "hidden":
        return "hidden"
    if kind == "object":
        return "group"
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, Mapping) and choices(items) is not None:
            return "multi-select"
        if isinstance(items, Mapping) and schema_type(items) == "object":
            return "rows"
        return "other"
    if kind == "boolean":
        return "boolean"
    if choices(schema) is not None or "x-choices" in schema:
        return "radio" if widget == "radio" else "select"
    if kind in ("number", "integer"):
        if widget == "money" or fmt == "money":
            return "money"
        return kind
    if kind != "string":
        return "other"
    if widget == "file" or fmt == "data-url":
        return "attachment"
    if widget == "datetime" or fmt == "date-time":
        return "date-time"
    if widget == "date" or fmt == "date":
        return "date"
    if widget == "textarea":
        return "textarea"
    if widget == "email" or fmt == "email":
        return "email"
    return "text" if fmt is None and widget in (None, "text") else "other"


def read_texts(schema: Mapping[str, Any], ui: Mapping[str, Any], key: str, ui_key: str) -> dict[str, str]:
    """Return a field's *key* (``title``, ``description``) per language, from wherever the form keeps it."""
    texts = _texts()
    held = ui[ui_key] if ui_key in ui else schema.get(key)
    if isinstance(held, Mapping):
        for language in LANGUAGES:
            texts[language] = str(held.get(language) or "")
        return texts
    if ui_key in ui:
        texts["en"] = "" if held is None else str(held)
        return texts
    texts["en"] = "" if held is None else str(held)
    translations = _mapping(schema.get("x-translations"))
    for language in LANGUAGES[1:]:
        texts[language] = str(_mapping(translations.get(language)).get(key) or "")
    return texts


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _choice_schema(schema: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return _mapping(schema.get("items")) if kind == "multi-select" else schema


def _read_choices(schema: Mapping[str, Any]) -> list[Choice]:
    if "enum" in schema and isinstance(schema["enum"], list):
        return [Choice(value=_display(value)) for value in schema["enum"] if value is not None]
    keyword = "oneOf" if "oneOf" in schema else "anyOf"
    alternatives = schema.get(keyword)
    if not isinstance(alternatives, list):
        return []
    return [
        Choice(value=_display(a["const"]), labels=read_texts(a, {}, "title", "ui:title"))
        for a in alternatives
        if isinstance(a, Mapping) and "const" in a
    ]


def _conditionally_required(schema: Mapping[str, Any]) -> set[str]:
    """Return the names an ``if``/``then`` (at the root or in ``allOf``) of *schema* may require."""
    found: set[str] = set()
    for part in [schema, *(p for p in schema.get("allOf") or [] if isinstance(p, Mapping))]:
        for branch in ("then", "else"):
            found.update(str(name) for name in _mapping(part.get(branch)).get("required") or [])
    return found


def read_field(
    key: str, schema: Mapping[str, Any], ui: Mapping[str, Any], *, required: bool, conditional: bool = False
) -> EditedField:
    """Return the editable view of property *key* with its *schema* and *ui* schema."""
    kind = field_kind(schema, ui)
    bounds = _BOUNDS.get(kind, ("", ""))
    options = _mapping(ui.get("ui:options"))
    result = EditedField(
        key=key,
        kind=kind,
        origin=key,
        required=required,
        read_only=bool(schema.get("readOnly") or ui.get("ui:readonly")),
        titles=read_texts(schema, ui, "title", "ui:title"),
        helps=read_texts(schema, ui, "description", "ui:help"),
        choices=_read_choices(_choice_schema(schema, kind)),
        default=_display(schema.get("default")),
        minimum=_display(schema.get(bounds[0])) if bounds[0] else "",
        maximum=_display(schema.get(bounds[1])) if bounds[1] else "",
        addable=options.get("addable", True) is not False,
        removable=options.get("removable", True) is not False,
        conditional=conditional,
        dynamic_choices="x-choices" in schema,
    )
    if kind == "rows":
        result.fields = read_fields(_mapping(schema.get("items")), _mapping(ui.get("items")))
    elif kind == "group":
        result.fields = read_fields(schema, ui)
    return result


def read_fields(schema: Mapping[str, Any], ui: Mapping[str, Any]) -> list[EditedField]:
    """Return the editable fields of an object schema's properties, in ``ui:order`` order."""
    properties = _mapping(schema.get("properties"))
    required = set(schema.get("required") or [])
    conditional = _conditionally_required(schema)
    return [
        read_field(
            name,
            _mapping(properties[name]),
            _mapping(ui.get(name)),
            required=name in required,
            conditional=name in conditional,
        )
        for name in ordered_properties(schema, ui)
    ]


def read_form(schema: Mapping[str, Any], ui_schema: Mapping[str, Any] | None = None) -> EditedForm:
    """Return the editable view of a form's JSON Schema and UI schema.

    :raises FormEditError: the schema nests too deeply to edit (deploy refuses such forms too).
    """
    ui = ui_schema or {}
    try:
        return EditedForm(titles=read_texts(schema, {}, "title", "ui:title"), fields=read_fields(schema, ui))
    except RecursionError:
        raise FormEditError("the form nests too deeply to edit as fields") from None


# -- writing ---------------------------------------------------------------------------------------


def write_form(
    schema: Mapping[str, Any], ui_schema: Mapping[str, Any] | None, form: EditedForm
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return new (schema, UI schema): the documents *form* was read from, with its edits applied.

    What *form* leaves as :func:`read_form` gave it stays as it was, keyword
    for keyword; what the editor does not show is never touched.

    :raises FormEditError: a key, number or default that cannot be written (naming the field's pointer).
    """
    original = read_form(schema, ui_schema)
    new_schema: dict[str, Any] = copy.deepcopy(dict(schema))
    new_ui: dict[str, Any] = copy.deepcopy(dict(ui_schema or {}))
    if form.titles != original.titles:
        write_texts(new_schema, {}, "title", "ui:title", form.titles)
    _write_fields(new_schema, new_ui, form.fields, original.fields, pointer="")
    return new_schema, new_ui


def write_texts(
    schema: dict[str, Any], ui: dict[str, Any], key: str, ui_key: str, texts: Mapping[str, str]
) -> None:
    """Write a text per language where :func:`read_texts` reads it (English in *key* by default)."""
    if ui_key in ui or isinstance(schema.get(key), Mapping):
        holder, name = (ui, ui_key) if ui_key in ui else (schema, key)
        held = holder[name]
        mapping: dict[str, Any] = dict(held) if isinstance(held, Mapping) else {}
        for language in LANGUAGES:
            if texts.get(language):
                mapping[language] = texts[language]
            else:
                mapping.pop(language, None)
        if not mapping:
            holder.pop(name)
        elif set(mapping) == {"en"} and not isinstance(held, Mapping):
            holder[name] = mapping["en"]
        else:
            holder[name] = mapping
        return
    if texts.get("en"):
        schema[key] = texts["en"]
    else:
        schema.pop(key, None)
    translations = schema.get("x-translations")
    translations = dict(translations) if isinstance(translations, Mapping) else {}
    for language in LANGUAGES[1:]:
        entry = dict(_mapping(translations.get(language)))
        if texts.get(language):
            entry[key] = texts[language]
        else:
            entry.pop(key, None)
        if entry:
            translations[language] = entry
        else:
            translations.pop(language, None)
    if translations:
        schema["x-translations"] = translations
    else:
        schema.pop("x-translations", None)


def _write_fields(
    container: dict[str, Any],
    ui: dict[str, Any],
    fields: list[EditedField],
    originals: list[EditedField],
    *,
    pointer: str,
) -> None:
    """Write *fields* as the properties of the object schema *container* (and their UI entries in *ui*)."""
    old_properties = _mapping(container.get("properties"))
    before = {f.origin: f for f in originals}
    seen: set[str] = set()
    for f in fields:
        here = f"{pointer}/properties/{escape(f.key)}"
        if not _KEY.match(f.key):
            raise FormEditError(
                f"field key {f.key!r} must start with a letter or _ and hold only letters, digits and _ "
                "(scripts and decisions read the field by this name)",
                pointer=here,
            )
        if f.key in seen:
            raise FormEditError(f"two fields have the key {f.key!r}", pointer=here)
        seen.add(f.key)
    properties: dict[str, Any] = {}
    kept = {f.origin for f in fields if f.origin in before}
    for gone in before:
        if gone not in kept and gone is not None:
            ui.pop(gone, None)
    for f in fields:
        here = f"{pointer}/properties/{escape(f.key)}"
        old = before.get(f.origin) if f.origin is not None else None
        origin = f.origin if old is not None and f.origin is not None else None
        schema = copy.deepcopy(dict(_mapping(old_properties.get(origin)))) if origin else {}
        field_ui = copy.deepcopy(dict(_mapping(ui.get(origin)))) if origin else {}
        _write_field(schema, field_ui, f, old, pointer=here)
        properties[f.key] = schema
        if old and f.origin != f.key:
            ui.pop(str(f.origin), None)
        if field_ui:
            ui[f.key] = field_ui
        else:
            ui.pop(f.key, None)
    old_order = [f.key for f in originals]
    new_order = [f.key for f in fields]
    if "ui:order" in ui or new_order == old_order:
        # ui:order says the order: properties keep their places in the file, new ones at the end.
        places = {name: index for index, name in enumerate(old_properties)}
        renamed = {f.key: places.get(f.origin, len(places)) if f.origin else len(places) for f in fields}
        properties = dict(sorted(properties.items(), key=lambda item: renamed[item[0]]))
    if "properties" in container or properties:
        container["properties"] = properties
    _write_required(container, fields, originals)
    if "ui:order" in ui and new_order != old_order:
        ui["ui:order"] = new_order


def _write_required(
    container: dict[str, Any], fields: list[EditedField], originals: list[EditedField]
) -> None:
    old = list(container.get("required") or [])
    by_origin = {f.origin: f for f in fields if f.origin is not None}
    declared = {f.key for f in originals}
    result: list[str] = []
    for name in old:
        if name not in declared:
            result.append(name)  # required but not a property: not the editor's to drop
        elif name in by_origin and by_origin[name].required:
            result.append(by_origin[name].key)
    result.extend(f.key for f in fields if f.required and f.key not in result)
    if result == old:
        return
    if result:
        container["required"] = result
    else:
        container.pop("required", None)


def _write_field(
    schema: dict[str, Any], ui: dict[str, Any], f: EditedField, old: EditedField | None, *, pointer: str
) -> None:
    """Write one edited field into its property *schema* and UI entry *ui* (only what differs from *old*)."""
    if f.kind not in KINDS and (old is None or f.kind != old.kind):
        raise FormEditError(f"unknown field type {f.kind!r}", pointer=pointer)
    if old is None or f.kind != old.kind:
        retype(schema, ui, f.kind)
    if old is None or f.read_only != old.read_only:
        if f.read_only:
            schema["readOnly"] = True
            ui["ui:readonly"] = True
        else:
            schema.pop("readOnly", None)
            ui.pop("ui:readonly", None)
    if old is None or f.titles != old.titles:
        write_texts(schema, ui, "title", "ui:title", f.titles)
    if old is None or f.helps != old.helps:
        write_texts(schema, ui, "description", "ui:help", f.helps)
    if f.has_choices and (old is None or f.choices != old.choices or f.kind != old.kind):
        target = schema.setdefault("items", {}) if f.kind == "multi-select" else schema
        _write_choices(target, f.choices, pointer=pointer)
    if old is None or f.default != old.default or f.kind != old.kind:
        _write_default(schema, f, pointer=pointer)
    bounds = _BOUNDS.get(f.kind)
    if bounds:
        for name, text, before in (
            (bounds[0], f.minimum, old.minimum if old else ""),
            (bounds[1], f.maximum, old.maximum if old else ""),
        ):
            if old is None or text != before or f.kind != old.kind:
                _write_number(
                    schema,
                    name,
                    text,
                    integer=name in ("minLength", "maxLength", "minItems", "maxItems"),
                    pointer=pointer,
                )
    if f.kind == "rows" and (old is None or (f.addable, f.removable) != (old.addable, old.removable)):
        options = dict(_mapping(ui.get("ui:options")))
        for name, allowed in (("addable", f.addable), ("removable", f.removable)):
            if allowed:
                options.pop(name, None)
            else:
                options[name] = False
        if options:
            ui["ui:options"] = options
        else:
            ui.pop("ui:options", None)
    if f.kind == "rows":
        items = schema.setdefault("items", {"type": "object", "properties": {}})
        items_ui = dict(_mapping(ui.get("items")))
        _write_fields(items, items_ui, f.fields, old.fields if old else [], pointer=f"{pointer}/items")
        if items_ui:
            ui["items"] = items_ui
        else:
            ui.pop("items", None)
    elif f.kind == "group":
        _write_fields(schema, ui, f.fields, old.fields if old else [], pointer=pointer)


def retype(schema: dict[str, Any], ui: dict[str, Any], kind: str) -> None:
    """Give a property the type, format and widget of *kind*, dropping the keywords it no longer takes."""
    json_type, fmt, widget = _SHAPES[kind]
    allowed = set(_ALLOWED.get(kind, ()))
    for keyword in list(schema):
        if keyword in _TYPE_KEYS and keyword not in allowed:
            del schema[keyword]
    schema.pop("default", None)
    schema["type"] = json_type
    if fmt:
        schema["format"] = fmt
    else:
        schema.pop("format", None)
    if widget:
        ui["ui:widget"] = widget
    elif ui.get("ui:widget") in _WIDGETS or ui.get("ui:widget") == "hidden":
        ui.pop("ui:widget")
    if kind == "multi-select":
        items = _mapping(schema.get("items"))
        if choices(items) is None:
            schema["items"] = {"type": "string", "oneOf": []}
        schema.setdefault("uniqueItems", True)
    elif kind == "rows":
        if schema_type(_mapping(schema.get("items"))) != "object" or "items" not in schema:
            schema["items"] = {"type": "object", "properties": {}}
    elif kind == "group":
        schema.setdefault("properties", {})


def _const(value: str, schema: Mapping[str, Any]) -> Any:
    """Return a new choice's ``const``: a number for a number field, else the text."""
    if schema_type(schema) not in ("number", "integer"):
        return value
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def _write_choices(schema: dict[str, Any], edited: list[Choice], *, pointer: str) -> None:
    keyword = "anyOf" if "anyOf" in schema and "oneOf" not in schema else "oneOf"
    old = {
        _display(a["const"]): a for a in schema.get(keyword) or [] if isinstance(a, Mapping) and "const" in a
    }
    if not edited:
        raise FormEditError("a choice field needs at least one choice", pointer=f"{pointer}/{keyword}")
    alternatives = []
    seen: set[str] = set()
    for index, choice in enumerate(edited):
        if choice.value == "":
            raise FormEditError(f"choice {index + 1} has no value", pointer=f"{pointer}/{keyword}/{index}")
        if choice.value in seen:
            raise FormEditError(
                f"two choices have the value {choice.value!r}", pointer=f"{pointer}/{keyword}/{index}"
            )
        seen.add(choice.value)
        alternative = (
            copy.deepcopy(dict(old[choice.value]))
            if choice.value in old
            else {"const": _const(choice.value, schema)}
        )
        if read_texts(alternative, {}, "title", "ui:title") != choice.labels:
            write_texts(alternative, {}, "title", "ui:title", choice.labels)
        alternatives.append(alternative)
    schema.pop("enum", None)
    schema[keyword] = alternatives


def _write_default(schema: dict[str, Any], f: EditedField, *, pointer: str) -> None:
    text = f.default.strip() if f.kind not in ("text", "textarea") else f.default
    if text == "":
        schema.pop("default", None)
        return
    value: Any = text
    if f.kind in ("number", "integer", "money", "boolean", "multi-select", "rows", "group"):
        try:
            value = json.loads(text.replace(",", ".") if f.kind in ("number", "money") else text)
        except json.JSONDecodeError:
            value = None
        expected = {
            "number": (int, float),
            "money": (int, float),
            "integer": (int,),
            "boolean": (bool,),
            "multi-select": (list,),
            "rows": (list,),
            "group": (dict,),
        }[f.kind]
        if (
            value is None
            or not isinstance(value, expected)
            or (isinstance(value, bool) and f.kind != "boolean")
        ):
            raise FormEditError(
                f"default {text!r} is not {_DEFAULT_WORDS[f.kind]}", pointer=f"{pointer}/default"
            )
    schema["default"] = value


_DEFAULT_WORDS = {
    "number": "a number",
    "money": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "multi-select": "a JSON list",
    "rows": "a JSON list of rows",
    "group": "a JSON object",
}


def _write_number(schema: dict[str, Any], name: str, text: str, *, integer: bool, pointer: str) -> None:
    text = text.strip().replace(",", ".")
    if text == "":
        schema.pop(name, None)
        return
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number != number or (integer and (not number.is_integer() or number < 0)):
        word = "a whole number of 0 or more" if integer else "a number"
        raise FormEditError(f"{name} {text!r} is not {word}", pointer=f"{pointer}/{name}")
    schema[name] = int(number) if number.is_integer() and "." not in text else number
