"""From a JSON Schema and a UI schema to a tree of form fields ready to render.

The UI schema follows react-jsonschema-form's keys, as spiff-arena writes
them: ``ui:order``, ``ui:widget``, ``ui:help``, ``ui:placeholder``,
``ui:readonly``, ``ui:options``, and ``ui:title``. Titles and help texts may be
a plain string or a mapping from language code to text (``{"sv": "Ämne",
"en": "Subject"}``).

Widgets beyond the schema's types: ``textarea``, ``radio``, ``select``,
``checkbox``, ``date`` (also chosen by ``"format": "date"``), ``datetime``
(chosen by ``"format": "date-time"``: a date and a time of day in the
organisation's time zone, sent on as RFC 3339 with its offset), ``money`` (a
number typed with a decimal comma or point; ``ui:options.currency`` names the
currency), ``file`` (also chosen by ``"format": "data-url"``, as
react-jsonschema-form does) and ``hidden``. Arrays of objects become
repeating rows (none until the user adds one, or as many as ``minItems``
asks); arrays of enumerated strings become a group of checkboxes. Yes/no
fields and choices render as radios, selects and checkboxes in rows too.

Read-only fields show the case's data, never inputs: a read-only object as
its declared properties with their titles (all of them read-only too), then
the keys of its value it does not declare (unless ``additionalProperties`` is
``false``) with a humanized label; a read-only array of objects as a table,
with the declared item properties (or, when none are declared, the keys of
its rows) as headers. Values show as the reader's language writes them:
yes/no in words, numbers and dates localized, date-times in the time zone.

A field's ``path`` (``quotes/0/price``) is both its HTML ``name`` and the key
of its validation messages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from .schema_check import FormSchemaError

ATTACHMENT_PREFIX = "attachment:"
NOT_BEFORE = "x-not-before"
"""Schema keyword: ``"x-not-before": "now"`` refuses a date before today or a date-time before now."""


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
    time_zone: str = "UTC"
    #: Repeating rows only: may the user add rows, and remove them (ui:options addable, removable).
    addable: bool = True
    removable: bool = True

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
    locale: str = "en"
    time_zone: str = "UTC"


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
        if schema.get("const") is True:
            return "checkbox"  # a box to tick to confirm ("the record is complete")
        if requested == "checkbox" or (requested != "radio" and not required):
            return "checkbox"
        return "boolean_radio"
    if choices(schema) is not None:
        return "radio" if requested == "radio" else "select"
    if kind in ("number", "integer"):
        return "money" if requested == "money" or schema.get("format") == "money" else "number"
    if requested == "file" or schema.get("format") == "data-url":
        return "file"
    if requested == "datetime" or schema.get("format") == "date-time":
        return "datetime"
    if requested in ("textarea", "date", "email"):
        return str(requested)
    if schema.get("format") in ("date", "email"):
        return str(schema["format"])
    return "text"


def declares_nothing(schema: Mapping[str, Any]) -> bool:
    """Tell whether an array's items are objects that declare no properties (a form cannot edit such rows)."""
    items = schema.get("items")
    return isinstance(items, Mapping) and schema_type(items) == "object" and not items.get("properties")


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


@dataclass
class _Context:
    errors: Mapping[str, list[str]]
    used: set[str]
    locale: str
    time_zone: str


def _build(
    name: str,
    path: str,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    *,
    required: bool,
    value: Any,
    context: _Context,
    readonly: bool = False,
) -> Field:
    readonly = readonly or is_read_only(schema, ui)
    widget = widget_for(schema, ui, required=required)
    if widget == "rows" and declares_nothing(schema):
        readonly = True  # rows without declared fields have nothing to type into: show the case's rows
    options = ui.get("ui:options") or {}
    result = Field(
        path=path,
        name=name,
        label=localized(ui.get("ui:title"), context.locale)
        or schema_text(schema, "title", context.locale)
        or _humanize(name),
        widget=widget,
        required=required and not readonly,
        value=value if value is not None else schema.get("default"),
        help=localized(ui.get("ui:help"), context.locale)
        or schema_text(schema, "description", context.locale),
        placeholder=localized(ui.get("ui:placeholder"), context.locale),
        errors=list(context.errors.get(path, [])),
        readonly=readonly,
        attrs=_attrs(schema, widget, ui),
        currency=options.get("currency") if widget == "money" else None,
        time_zone=context.time_zone,
    )
    if widget in ("date", "datetime") and schema.get(NOT_BEFORE) == "now":
        result.attrs["min"] = _now_for_input(widget, context.time_zone)
    context.used.add(path)
    if widget in ("select", "radio"):
        result.options = [(str(v), label) for v, label in choices(schema, context.locale) or []]
    elif widget == "checkboxes":
        result.options = [
            (str(v), label) for v, label in choices(schema.get("items") or {}, context.locale) or []
        ]
    elif widget == "group":
        values = result.value if isinstance(result.value, Mapping) else {}
        declared: Mapping[str, Any] = schema.get("properties") or {}
        result.children = _build_properties(
            schema, ui, path=path, values=values, context=context, readonly=readonly
        )
        if readonly and schema.get("additionalProperties") is not False:
            # Context shows all of the case's data: keys the schema does not declare follow the declared ones.
            extra = {key: v for key, v in values.items() if key not in declared}
            result.children.extend(_shown_keys(path, extra, context))
    elif widget == "rows":
        _build_rows(result, schema, ui, context=context)
    return result


def _now_for_input(widget: str, time_zone: str) -> str:
    now = dt.datetime.now(ZoneInfo(time_zone))
    return now.date().isoformat() if widget == "date" else now.strftime("%Y-%m-%dT%H:%M")


def _shown(name: str, path: str, value: Any, context: _Context) -> Field:
    """Return a read-only field for a value the schema does not describe, labelled by its key."""
    shown = Field(
        path=path,
        name=name,
        label=_humanize(name),
        widget="text",
        value=value,
        readonly=True,
        time_zone=context.time_zone,
    )
    if isinstance(value, Mapping):
        shown.widget = "group"
        shown.children = _shown_keys(path, value, context)
    elif isinstance(value, list) and value and all(isinstance(row, Mapping) for row in value):
        shown.widget = "rows"
        _shown_rows(shown, value, context)
    return shown


def _shown_keys(path: str, values: Mapping[str, Any], context: _Context) -> list[Field]:
    return [_shown(str(key), f"{path}/{key}", value, context) for key, value in values.items()]


def _shown_rows(result: Field, rows: list[Mapping[str, Any]], context: _Context) -> None:
    """Show rows the schema does not describe as a table: one column per key, in order of first appearance."""
    keys = list(dict.fromkeys(str(key) for row in rows for key in row))
    result.columns = [_shown(key, f"{result.path}/__new/{key}", None, context) for key in keys]
    result.rows = [
        [_shown(key, f"{result.path}/{index}/{key}", row.get(key), context) for key in keys]
        for index, row in enumerate(rows)
    ]


def row_changes_allowed(ui: Mapping[str, Any]) -> tuple[bool, bool]:
    """Return whether rows of a repeating field may be (added, removed), from its ``ui:options``."""
    options = ui.get("ui:options")
    options = options if isinstance(options, Mapping) else {}
    return options.get("addable", True) is not False, options.get("removable", True) is not False


def _build_rows(
    result: Field, schema: Mapping[str, Any], ui: Mapping[str, Any], *, context: _Context
) -> None:
    items: Mapping[str, Any] = schema.get("items") or {}
    item_ui: Mapping[str, Any] = ui.get("items") or {}
    rows = result.value if isinstance(result.value, list) else []
    if not rows and not result.readonly:
        # No row until the user adds one, unless minItems asks for some.
        rows = [None] * int(schema.get("minItems", 0) or 0)
    result.value = rows
    result.attrs = {k: schema[k] for k in ("minItems", "maxItems") if k in schema}
    result.addable, result.removable = row_changes_allowed(ui)
    readonly = result.readonly or is_read_only(items, item_ui)
    if readonly and not items.get("properties"):
        if rows and all(isinstance(row, Mapping) for row in rows):
            _shown_rows(result, rows, context)
        else:
            result.widget = "list"  # values that are not rows of fields: shown as a list
        return
    object_rows = schema_type(items) == "object"
    for index, row in enumerate(rows):
        row_path = f"{result.path}/{index}"
        context.used.add(row_path)
        if object_rows:
            cells = _build_properties(
                items,
                item_ui,
                path=row_path,
                values=row if isinstance(row, Mapping) else {},
                context=context,
                readonly=readonly,
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
                    context=context,
                    readonly=readonly,
                )
            ]
        result.rows.append(cells)
    template = _Context(errors={}, used=set(), locale=context.locale, time_zone=context.time_zone)
    template_path = f"{result.path}/__new"
    if object_rows:
        result.columns = _build_properties(
            items, item_ui, path=template_path, values={}, context=template, readonly=readonly
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
                context=template,
                readonly=readonly,
            )
        ]
        result.columns[0].label = schema_text(items, "title", context.locale) or result.label


def _build_properties(
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    *,
    path: str,
    values: Mapping[str, Any],
    context: _Context,
    readonly: bool = False,
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
                context=context,
                readonly=readonly,
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
    time_zone: str = "UTC",
) -> Form:
    """Return the fields of *schema* with *values* filled in and *errors* placed beside their fields.

    *time_zone* (an IANA name) is the one date-time fields are typed and shown in.
    Messages whose path names no field (``""``, or a field the schema does not
    show) end up in :attr:`Form.errors`, so none is lost.

    :raises FormSchemaError: the schema nests too deeply to render (deploy
        refuses such forms; this guards against forms stored before).
    """
    context = _Context(errors=errors or {}, used=set(), locale=locale, time_zone=time_zone)
    try:
        fields = _build_properties(schema, ui_schema or {}, path="", values=values or {}, context=context)
    except RecursionError:
        raise FormSchemaError("the form schema nests too deeply to render") from None
    leftover = [
        message
        for path, messages in context.errors.items()
        if path not in context.used
        for message in messages
    ]
    return Form(
        title=schema_text(schema, "title", locale),
        fields=fields,
        errors=leftover,
        locale=locale,
        time_zone=time_zone,
    )
