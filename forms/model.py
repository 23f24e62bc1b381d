"""From a JSON Schema and a UI schema to a tree of form fields ready to render.

The UI schema follows react-jsonschema-form's keys, as spiff-arena writes
them: ``ui:order``, ``ui:widget``, ``ui:help``, ``ui:placeholder``,
``ui:readonly``, ``ui:options``, and ``ui:title``. Titles and help texts may be
a plain string or a mapping from language code to text (``{"sv": "Ämne",
"en": "Subject"}``).

Widgets beyond the schema's types: ``textarea``, ``radio``, ``select``,
``checkbox``, ``date``, ``money`` (a number typed with a decimal comma or
point; ``ui:options.currency`` names the currency), ``file`` (also chosen by
``"format": "data-url"``, as react-jsonschema-form does) and ``hidden``.
Arrays of objects become repeating rows; arrays of enumerated strings become
a group of checkboxes.

A field's ``path`` (``quotes/0/price``) is both its HTML ``name`` and the key
of its validation messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .schema_check import FormSchemaError

ATTACHMENT_PREFIX = "attachment:"


@dataclass
class Field:
    """One form field: what to show, the current value and its messages."""

    path: str
    name: str
    label: str
    widget: str
    required: bool = False
    value: Any = None
    help: str | None = None
    placeholder: str | None = None
    errors: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    readonly: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    currency: str | None = None
    children: list[Field] = field(default_factory=list)
    columns: list[Field] = field(default_factory=list)
    rows: list[list[Field]] = field(default_factory=list)

    @property
    def html_id(self) -> str:
        """Return the element id of the field's input."""
        return "f-" + self.path.replace("/", "-")


@dataclass
class Form:
    """A whole form: its fields, and messages that belong to no single field."""

    title: str | None
    fields: list[Field]
    errors: list[str] = field(default_factory=list)


def localized(text: Any, locale: str) -> str | None:
    """Return *text* for *locale* when it is a mapping of translations, else *text* itself."""
    if text is None:
        return None
    if isinstance(text, Mapping):
        for key in (locale, locale.split("_")[0], "en"):
            if key in text:
                return str(text[key])
        return str(next(iter(text.values()), "")) or None
    return str(text)


def schema_text(schema: Mapping[str, Any], key: str, locale: str) -> str | None:
    """Return the schema's ``title`` or ``description`` for *locale*.

    Translations may sit beside the field as ``"x-translations": {"sv": {"title": ...}}``
    (the convention of the shipped process forms) or be a mapping in the key itself.
    """
    translations = schema.get("x-translations")
    if isinstance(translations, Mapping):
        for lang in (locale, locale.split("_")[0]):
            text = (translations.get(lang) or {}).get(key)
            if text:
                return str(text)
    return localized(schema.get(key), locale)


def schema_type(schema: Mapping[str, Any]) -> str:
    """Return the JSON type of a property schema (the first non-null one of a list)."""
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), "string")
    if declared:
        return str(declared)
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def choices(schema: Mapping[str, Any], locale: str = "en") -> list[tuple[Any, str]] | None:
    """Return the (value, label) choices of an ``enum`` or a ``oneOf`` of ``const`` values, if any."""
    if "enum" in schema:
        return [(value, str(value)) for value in schema["enum"] if value is not None]
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives and all(isinstance(a, Mapping) and "const" in a for a in alternatives):
        return [(a["const"], schema_text(a, "title", locale) or str(a["const"])) for a in alternatives]
    return None


def is_read_only(schema: Mapping[str, Any], ui: Mapping[str, Any]) -> bool:
    """Tell whether a field is read-only: ``readOnly`` in its schema or ``ui:readonly`` in its UI schema.

    A read-only field shows context from earlier steps; what a submitter sends
    for it is never taken (see :func:`forms.keep_read_only`).
    """
    return bool(ui.get("ui:readonly") or schema.get("readOnly"))


def widget_for(schema: Mapping[str, Any], ui: Mapping[str, Any], *, required: bool) -> str:
    """Choose the widget of a property from its schema and UI schema."""
    requested = ui.get("ui:widget")
    kind = schema_type(schema)
    if requested == "hidden":
        return "hidden"
    if kind == "object":
        return "group"
    if kind == "array":
        items = schema.get("items") or {}
        if isinstance(items, Mapping) and choices(items) is not None:
            return "checkboxes"
        return "rows"
    if kind == "boolean":
        if requested == "checkbox" or (requested != "radio" and not required):
            return "checkbox"
        return "boolean_radio"
    if choices(schema) is not None:
        return "radio" if requested == "radio" else "select"
    if kind in ("number", "integer"):
        return "money" if requested == "money" or schema.get("format") == "money" else "number"
    if requested == "file" or schema.get("format") == "data-url":
        return "file"
    if requested in ("textarea", "date", "email"):
        return str(requested)
    if schema.get("format") in ("date", "email"):
        return str(schema["format"])
    return "text"


def ordered_properties(schema: Mapping[str, Any], ui: Mapping[str, Any]) -> list[str]:
    """Return property names in ``ui:order`` order (``*`` stands for the rest), else schema order."""
    names = list((schema.get("properties") or {}).keys())
    order = ui.get("ui:order")
    if not order:
        return names
    rest = [n for n in names if n not in order]
    result: list[str] = []
    for name in order:
        if name == "*":
            result.extend(rest)
        elif name in names:
            result.append(name)
    if "*" not in order:
        result.extend(rest)
    return result


def _humanize(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def _attrs(schema: Mapping[str, Any], widget: str, ui: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if widget in ("number", "money"):
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if key in schema:
                attrs[attr] = schema[key]
        if schema_type(schema) == "integer":
            attrs["step"] = 1
    if widget in ("text", "textarea", "email"):
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            if key in schema:
                attrs[attr] = schema[key]
    options = ui.get("ui:options") or {}
    if widget == "textarea":
        attrs["rows"] = options.get("rows", 4)
    return attrs


def _build(
    name: str,
    path: str,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    *,
    required: bool,
    value: Any,
    errors: Mapping[str, list[str]],
    used: set[str],
    locale: str,
) -> Field:
    widget = widget_for(schema, ui, required=required)
    options = ui.get("ui:options") or {}
    result = Field(
        path=path,
        name=name,
        label=localized(ui.get("ui:title"), locale)
        or schema_text(schema, "title", locale)
        or _humanize(name),
        widget=widget,
        required=required,
        value=value if value is not None else schema.get("default"),
        help=localized(ui.get("ui:help"), locale) or schema_text(schema, "description", locale),
        placeholder=localized(ui.get("ui:placeholder"), locale),
        errors=list(errors.get(path, [])),
        readonly=is_read_only(schema, ui),
        attrs=_attrs(schema, widget, ui),
        currency=options.get("currency") if widget == "money" else None,
    )
    used.add(path)
    if widget in ("select", "radio"):
        result.options = [(str(v), label) for v, label in choices(schema, locale) or []]
    elif widget == "checkboxes":
        result.options = [(str(v), label) for v, label in choices(schema.get("items") or {}, locale) or []]
    elif widget == "group":
        result.children = _build_properties(
            schema,
            ui,
            path=path,
            values=value if isinstance(value, Mapping) else {},
            errors=errors,
            used=used,
            locale=locale,
        )
    elif widget == "rows":
        _build_rows(result, schema, ui, errors=errors, used=used, locale=locale)
    return result


def _build_rows(
    result: Field,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    *,
    errors: Mapping[str, list[str]],
    used: set[str],
    locale: str,
) -> None:
    items: Mapping[str, Any] = schema.get("items") or {}
    item_ui: Mapping[str, Any] = ui.get("items") or {}
    rows = result.value if isinstance(result.value, list) else []
    if not rows:
        rows = [None] * max(int(schema.get("minItems", 0) or 0), 1)
    result.value = rows
    result.attrs = {k: schema[k] for k in ("minItems", "maxItems") if k in schema}
    object_rows = schema_type(items) == "object"
    for index, row in enumerate(rows):
        row_path = f"{result.path}/{index}"
        used.add(row_path)
        if object_rows:
            cells = _build_properties(
                items,
                item_ui,
                path=row_path,
                values=row if isinstance(row, Mapping) else {},
                errors=errors,
                used=used,
                locale=locale,
            )
        else:
            cells = [
                _build(
                    result.name,
                    row_path,
                    items,
                    item_ui,
                    required=True,
                    value=row,
                    errors=errors,
                    used=used,
                    locale=locale,
                )
            ]
        result.rows.append(cells)
    template_path = f"{result.path}/__new"
    if object_rows:
        result.columns = _build_properties(
            items, item_ui, path=template_path, values={}, errors={}, used=set(), locale=locale
        )
    else:
        result.columns = [
            _build(
                result.name,
                template_path,
                items,
                item_ui,
                required=True,
                value=None,
                errors={},
                used=set(),
                locale=locale,
            )
        ]
        result.columns[0].label = schema_text(items, "title", locale) or result.label


def _build_properties(
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    *,
    path: str,
    values: Mapping[str, Any],
    errors: Mapping[str, list[str]],
    used: set[str],
    locale: str,
) -> list[Field]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields = []
    for name in ordered_properties(schema, ui):
        child_path = f"{path}/{name}" if path else name
        fields.append(
            _build(
                name,
                child_path,
                properties[name],
                ui.get(name) or {},
                required=name in required,
                value=values.get(name),
                errors=errors,
                used=used,
                locale=locale,
            )
        )
    return fields


def build_form(
    schema: Mapping[str, Any],
    ui_schema: Mapping[str, Any] | None = None,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    locale: str = "en",
) -> Form:
    """Return the fields of *schema* with *values* filled in and *errors* placed beside their fields.

    Messages whose path names no field (``""``, or a field the schema does not
    show) end up in :attr:`Form.errors`, so none is lost.

    :raises FormSchemaError: the schema nests too deeply to render (deploy
        refuses such forms; this guards against forms stored before).
    """
    errors = errors or {}
    used: set[str] = set()
    try:
        fields = _build_properties(
            schema, ui_schema or {}, path="", values=values or {}, errors=errors, used=used, locale=locale
        )
    except RecursionError:
        raise FormSchemaError("the form schema nests too deeply to render") from None
    leftover = [message for path, messages in errors.items() if path not in used for message in messages]
    return Form(title=schema_text(schema, "title", locale), fields=fields, errors=leftover)
