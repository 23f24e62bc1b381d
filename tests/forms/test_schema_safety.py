"""Form schemas are a stranger's input: they reach neither the network nor more CPU than their form needs."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema.validators import validator_for

import forms.validation
from forms import FormSchemaError, build_form, check_form_schema, render_fields, validate_submission

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
REDOS = "^(a+)+$"


class Listener:
    """A TCP listener on a random loopback port that counts the connections it gets."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            # Answer like a web server would, so a fetch that got here completes rather than hangs.
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}")
            connection.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ssrf.json"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _remote_ref_schema(url: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"supplier": {"$ref": url}}}


def test_validation_never_fetches_a_remote_ref(listener: Listener) -> None:
    with pytest.raises(FormSchemaError, match="does not point inside this form") as info:
        validate_submission(_remote_ref_schema(listener.url), {"supplier": "x"})
    assert info.value.pointer == "/properties/supplier/$ref"
    time.sleep(0.2)
    assert listener.connections == 0


def test_the_validator_itself_refuses_to_retrieve(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second wall alone: even with the schema check out of the way, jsonschema fetches nothing.
    monkeypatch.setattr(forms.validation, "check_form_safety", lambda schema: None)
    with pytest.raises(FormSchemaError, match="cannot be resolved inside the form"):
        validate_submission(_remote_ref_schema(listener.url), {"supplier": "x"})
    time.sleep(0.2)
    assert listener.connections == 0


def test_local_refs_keep_working() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"amount": {"type": "number", "minimum": 0}},
        "definitions": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "properties": {
            "net": {"$ref": "#/$defs/amount"},
            "vat": {"$ref": "#/$defs/amount"},
            "currency": {"$ref": "#/definitions/code"},
        },
    }
    check_form_schema(schema)
    assert validate_submission(schema, {"net": 10, "vat": 2, "currency": "SEK"}) == {}
    assert set(validate_submission(schema, {"net": -1, "vat": 2, "currency": "kr"})) == {"net", "currency"}


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"type": "object", "properties": {"child": {"$ref": "#"}}},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
        {
            "properties": {"p": {"$ref": "#/$defs/node/properties/next"}},
            "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        },
    ],
    ids=["root", "property-to-root", "defs-to-each-other", "into-a-def-and-back"],
)
def test_recursive_refs_are_a_clear_error_not_a_recursion_error(schema: dict[str, Any]) -> None:
    with pytest.raises(FormSchemaError, match="leads back into a schema that contains it"):
        validate_submission(schema, {"child": {"child": {}}})


def test_refs_that_expand_without_measure_are_refused() -> None:
    # Each level refers twice to the next: 2**40 schemas to evaluate, although there is no cycle.
    defs: dict[str, Any] = {f"l{i}": {"allOf": [{"$ref": f"#/$defs/l{i + 1}"}] * 2} for i in range(40)}
    defs["l40"] = {"type": "string"}
    schema = {"$defs": defs, "$ref": "#/$defs/l0"}
    started = time.monotonic()
    with pytest.raises(FormSchemaError, match="expand to more than"):
        validate_submission(schema, {})
    assert time.monotonic() - started < 1


def test_a_backtracking_pattern_answers_in_linear_time() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": REDOS}}}
    started = time.monotonic()
    errors = validate_submission(schema, {"code": "a" * 28 + "!"})
    assert time.monotonic() - started < 0.5
    assert list(errors) == ["code"]
    assert validate_submission(schema, {"code": "a" * 28}) == {}


def test_pattern_properties_and_additional_properties_use_linear_time() -> None:
    schema = {
        "type": "object",
        "properties": {
            "extra": {
                "type": "object",
                "patternProperties": {REDOS: {"type": "integer"}},
                "additionalProperties": False,
            }
        },
    }
    name = "a" * 30 + "!"
    started = time.monotonic()
    errors = validate_submission(schema, {"extra": {name: 1, "aaa": "not a number"}})
    assert time.monotonic() - started < 0.5
    assert set(errors) == {"extra", "extra/aaa"}  # the odd name is not allowed; "aaa" must be an integer


def test_the_regex_format_is_checked_with_re2() -> None:
    schema = {"type": "object", "properties": {"rule": {"type": "string", "format": "regex"}}}
    assert validate_submission(schema, {"rule": "^[a-z]+$"}) == {}
    # A backreference compiles in Python's re, which the library's own check uses; RE2 refuses it.
    assert list(validate_submission(schema, {"rule": "(a)\\1"})) == ["rule"]


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"properties": {"x": {"type": "string", "pattern": "(a)\\1"}}}, "/properties/x/pattern"),
        ({"properties": {"x": {"type": "string", "pattern": "^(?!admin)"}}}, "/properties/x/pattern"),
        ({"patternProperties": {"(?<=a)b": {}}}, "/patternProperties/(?<=a)b"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_their_pointer(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(FormSchemaError, match="cannot be matched in linear time") as info:
        check_form_schema(schema)
    assert info.value.pointer == pointer


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"properties": {"x": {"$ref": "other.schema.json"}}}, "/properties/x/$ref"),
        ({"properties": {"x": {"$ref": "#supplier"}}}, "/properties/x/$ref"),
        ({"properties": {"x": {"$ref": "#/$defs/missing"}}}, "/properties/x/$ref"),
        ({"properties": {"x": {"$id": "http://127.0.0.1/x", "$ref": "#/a"}}}, "/properties/x/$id"),
        ({"$dynamicRef": "#meta"}, "/$dynamicRef"),
        ({"properties": {"x": {"title": {"en": "X", "sv": "X"}}}}, "/properties/x/title"),
        ({"$schema": "http://127.0.0.1:1/schema"}, "/$schema"),
        (
            {"patternProperties": {"^x-": {}}, "allOf": [{"unevaluatedProperties": False}]},
            "/allOf/0/unevaluatedProperties",
        ),
    ],
)
def test_form_schema_problems_name_their_pointer(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(FormSchemaError) as info:
        check_form_schema(schema)
    assert info.value.pointer == pointer


def test_draft_07_metaschema_applies_when_declared() -> None:
    # "$defs" means nothing to draft-07, but "definitions" holds schemas there.
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"x": {"type": 5}}}
    with pytest.raises(FormSchemaError, match="draft-07") as info:
        check_form_schema(schema)
    assert info.value.pointer == "/definitions/x/type"


def test_rendering_a_form_too_deep_for_python_is_a_clear_error() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(sys.getrecursionlimit()):
        schema = {"type": "object", "properties": {"inner": schema}}
    with pytest.raises(FormSchemaError, match="nests too deeply to render"):
        build_form(schema)


def _shipped_form_schemas() -> list[Path]:
    return sorted(PROCESSES.rglob("*.schema.json"))


@pytest.mark.parametrize("path", _shipped_form_schemas(), ids=lambda p: str(p.relative_to(PROCESSES)))
def test_shipped_form_schemas_are_valid_json_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator_for(schema).check_schema(schema)
    check_form_schema(schema)


AGREEMENT_TYPES = {
    "type": "object",
    "properties": {
        "agreement_type": {
            "type": "string",
            "title": "Agreement type",
            "oneOf": [
                {
                    "const": "framework",
                    "title": "Framework agreement",
                    "x-translations": {"sv": {"title": "Ramavtal"}, "fi": {"title": "Puitejärjestely"}},
                },
                {
                    "const": "dps",
                    "title": "Dynamic purchasing system",
                    "x-translations": {"sv": {"title": "Dynamiskt inköpssystem"}},
                },
            ],
        }
    },
}


@pytest.mark.parametrize(
    ("locale", "labels"),
    [
        ("sv", ["Ramavtal", "Dynamiskt inköpssystem"]),
        ("en", ["Framework agreement", "Dynamic purchasing system"]),
        # A choice without a Finnish title shows the English one.
        ("fi", ["Puitejärjestely", "Dynamic purchasing system"]),
    ],
)
def test_choice_labels_stay_translated(locale: str, labels: list[str]) -> None:
    form = build_form(AGREEMENT_TYPES, {"agreement_type": {"ui:widget": "radio"}}, locale=locale)
    (field,) = [f for f in form.fields if f.name == "agreement_type"]
    assert [label for _, label in field.options] == labels
    html = str(render_fields(form))
    assert all(label in html for label in labels)
