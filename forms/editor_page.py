"""The form editor's HTML page: the names of its inputs, its buttons, where problems go, sample values.

The studio's form editor (``web/studio/forms_editor.py``) shows an
:class:`~forms.editor.EditedForm` as one HTML form. Field *index* of a
container has the name prefix :func:`field_prefix` (``f2``, and ``f2.f0`` for
the first column of its rows); its inputs are ``<prefix>.key``, ``.kind``,
``.origin``, ``.required``, ``.read_only``, ``.title.<lang>``, ``.help.<lang>``,
``.default``, ``.min``, ``.max``, ``.addable``, ``.removable``, choices
``<prefix>.c<i>.value`` and ``<prefix>.c<i>.label.<lang>``, and counts ``n``
(fields of the form), ``<prefix>.n`` (its own fields) and ``<prefix>.cn``
(its choices). :func:`parse_editor_input` reads them back and
:func:`apply_action` applies a button. Nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .editor import LANGUAGES, Choice, EditedField, EditedForm
from .model import choices, schema_type
from .schema_check import escape


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def field_prefix(parent: str, index: int) -> str:
    """Return the name prefix of field *index* of the container *parent* (``""`` for the form): ``f0.f2``."""
    return f"{parent}.f{index}" if parent else f"f{index}"


MAX_DEPTH = 12
"""How deep the editor's HTML form nests fields in fields (rows in groups...) before it stops reading."""


def parse_editor_input(get: Callable[[str], str | None]) -> EditedForm:
    """Read an :class:`EditedForm` back from the editor's HTML form (*get* returns a submitted value)."""
    return EditedForm(titles=_read_inputs(get, "title"), fields=_parse_fields(get, ""))


def _read_inputs(get: Callable[[str], str | None], prefix: str) -> dict[str, str]:
    return {language: (get(f"{prefix}.{language}") or "").strip() for language in LANGUAGES}


def _count(get: Callable[[str], str | None], name: str) -> int:
    text = get(name) or "0"
    return min(int(text), 500) if text.isdigit() else 0


def _parse_fields(get: Callable[[str], str | None], parent: str) -> list[EditedField]:
    if parent.count(".") >= MAX_DEPTH:
        return []
    fields = []
    for index in range(_count(get, f"{parent}.n" if parent else "n")):
        p = field_prefix(parent, index)
        origin = get(f"{p}.origin") or None
        f = EditedField(
            key=(get(f"{p}.key") or "").strip(),
            kind=get(f"{p}.kind") or "text",
            origin=origin,
            required=get(f"{p}.required") == "1",
            read_only=get(f"{p}.read_only") == "1",
            titles=_read_inputs(get, f"{p}.title"),
            helps=_read_inputs(get, f"{p}.help"),
            default=get(f"{p}.default") or "",
            minimum=(get(f"{p}.min") or "").strip(),
            maximum=(get(f"{p}.max") or "").strip(),
            addable=get(f"{p}.addable") == "1",
            removable=get(f"{p}.removable") == "1",
            conditional=get(f"{p}.conditional") == "1",
            dynamic_choices=get(f"{p}.dynamic_choices") == "1",
        )
        f.choices = [
            Choice(value=(get(f"{p}.c{i}.value") or "").strip(), labels=_read_inputs(get, f"{p}.c{i}.label"))
            for i in range(_count(get, f"{p}.cn"))
        ]
        f.fields = _parse_fields(get, p)
        fields.append(f)
    return fields


def _walk(
    fields: list[EditedField], parent: str = ""
) -> Iterator[tuple[str, EditedField, list[EditedField]]]:
    for index, f in enumerate(fields):
        p = field_prefix(parent, index)
        yield p, f, fields
        yield from _walk(f.fields, p)


def _new_key(siblings: list[EditedField]) -> str:
    taken = {f.key for f in siblings}
    number = len(siblings) + 1
    while f"field_{number}" in taken:
        number += 1
    return f"field_{number}"


def apply_action(form: EditedForm, action: str) -> bool:
    """Apply one button of the editor to *form*; return whether *action* named something to change.

    Actions: ``add:`` (a field at the end of the form), ``add:<prefix>`` (a
    column of a repeating row or group), ``remove:<prefix>``, ``up:<prefix>``,
    ``down:<prefix>``, ``add-choice:<prefix>``, ``remove-choice:<prefix>.c<index>``.
    """
    verb, _, target = action.partition(":")
    if verb == "add" and target == "":
        form.fields.append(EditedField(key=_new_key(form.fields)))
        return True
    if verb == "remove-choice":
        target, _, choice = target.rpartition(".c")
    for prefix, f, siblings in _walk(form.fields):
        if prefix != target:
            continue
        index = siblings.index(f)
        if verb == "add" and f.has_fields:
            f.fields.append(EditedField(key=_new_key(f.fields)))
        elif verb == "remove":
            siblings.pop(index)
        elif verb == "up" and index > 0:
            siblings[index - 1], siblings[index] = siblings[index], siblings[index - 1]
        elif verb == "down" and index < len(siblings) - 1:
            siblings[index + 1], siblings[index] = siblings[index], siblings[index + 1]
        elif verb == "add-choice" and f.has_choices:
            f.choices.append(Choice(value=""))
        elif verb == "remove-choice" and choice.isdigit() and int(choice) < len(f.choices):
            f.choices.pop(int(choice))
        else:
            return False
        return True
    return False


def field_pointers(form: EditedForm) -> dict[str, str]:
    """Return the JSON pointer (in the schema) of every field, by its name prefix in the editor."""
    found: dict[str, str] = {}

    def visit(fields: list[EditedField], parent: str, pointer: str) -> None:
        for index, f in enumerate(fields):
            p = field_prefix(parent, index)
            here = f"{pointer}/properties/{escape(f.key)}"
            found[p] = here
            visit(f.fields, p, f"{here}/items" if f.kind == "rows" else here)

    visit(form.fields, "", "")
    return found


def prefix_for_pointer(pointers: Mapping[str, str], pointer: str) -> str | None:
    """Return the editor prefix of the field that *pointer* (of a problem) lies in, the deepest one."""
    best: tuple[int, str] | None = None
    for prefix, here in pointers.items():
        inside = pointer == here or pointer.startswith(here + "/")
        if inside and (best is None or len(here) > best[0]):
            best = (len(here), prefix)
    return best[1] if best else None


_SAMPLE_TEXT = {"en": "Example", "sv": "Exempel", "fi": "Esimerkki"}


def sample_values(schema: Mapping[str, Any], locale: str = "en") -> dict[str, Any]:
    """Return example data for every property of *schema*, so a preview shows each field filled in."""
    result: dict[str, Any] = {}
    for name, child in _mapping(schema.get("properties")).items():
        if isinstance(child, Mapping):
            value = _sample(child, locale)
            if value is not None:
                result[str(name)] = value
    return result


def _sample(schema: Mapping[str, Any], locale: str) -> Any:
    if "default" in schema and schema["default"] not in ("", None):
        return schema["default"]
    kind = schema_type(schema)
    found = choices(schema)
    if found:
        return found[0][0]
    if kind == "object":
        return sample_values(schema, locale)
    if kind == "array":
        items = _mapping(schema.get("items"))
        first = choices(items)
        if first:
            return [first[0][0]]
        return [_sample(items, locale)] if schema_type(items) == "object" else []
    if kind == "boolean":
        return True
    if kind in ("number", "integer"):
        minimum = schema.get("minimum")
        return minimum if isinstance(minimum, int | float) and minimum > 0 else 1200
    fmt = schema.get("format")
    if fmt == "date":
        return "2026-03-02"
    if fmt == "date-time":
        return "2026-03-02T09:30:00Z"
    if fmt == "email":
        return "anna.andersson@example.org"
    if fmt == "data-url":
        return None
    return _SAMPLE_TEXT.get(locale, _SAMPLE_TEXT["en"])
