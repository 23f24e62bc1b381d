"""What a form schema written by a stranger may contain, checked before it is served.

Process owners of any organisation deploy form files, so a form schema is
untrusted input to the server that validates and renders it. Three things in
JSON Schema would let such a file reach beyond its own form:

- **References out of the form.** ``jsonschema`` fetches a ``$ref`` to
  ``http://…`` (or to a relative file name) over the network on every
  validation. A form may only refer inside its own document, with a JSON
  pointer fragment: ``#``, ``#/$defs/…``, ``#/definitions/…``, ``#/properties/…``.
  References to other files (even of the same bundle), anchors,
  ``$dynamicRef``/``$recursiveRef`` and a ``$id`` below the root (which would
  change what ``#`` means) are refused. As a second wall, validation uses a
  registry whose ``retrieve`` refuses everything (:data:`NO_RETRIEVAL`).
- **Backtracking regular expressions.** ``pattern``, ``patternProperties``
  and the ``regex`` format run on RE2 (:func:`compile_pattern`), in time
  linear in the text, never on Python's backtracking ``re``. Patterns RE2
  cannot run (backreferences, lookahead and lookbehind, ``\\u`` escapes:
  write ``\\x{…}``) are refused. ``jsonschema`` evaluates ``patternProperties``
  for ``unevaluatedProperties`` with Python's ``re``, so one form may not use
  both.
- **Schemas without end.** A ``$ref`` that leads back into a schema it sits
  in (``{"$ref": "#"}`` under ``properties``, two ``$defs`` referring to each
  other) makes validation or rendering recurse until Python gives up, and
  references shared over and over can expand to billions of schemas. Cycles
  are refused, and so is a form whose references expand to more than
  :data:`MAX_EXPANDED_SCHEMAS` schemas.

:func:`check_form_schema` checks all of this plus the form's metaschema at
deploy; validation runs :func:`check_form_safety` again on every schema it
is given, so a form deployed before these checks existed cannot do harm either.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import re2
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.exceptions import NoSuchResource

MAX_EXPANDED_SCHEMAS = 10_000
"""How many schemas a form may count with every ``$ref`` replaced by what it refers to."""

_DIALECTS: dict[str, Any] = {
    "json-schema.org/draft/2020-12/schema": Draft202012Validator,
    "json-schema.org/draft-07/schema": Draft7Validator,
}

_ONE_SCHEMA = (
    "additionalItems",
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_LIST_OF_SCHEMAS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP_OF_SCHEMAS = (
    "$defs",
    "definitions",
    "dependencies",
    "dependentSchemas",
    "patternProperties",
    "properties",
)


class FormSchemaError(ValueError):
    """A form schema may not be used: it is not valid JSON Schema, or it could reach past its form.

    ``pointer`` is the JSON pointer of the offending place in the form file
    (``""`` for the whole document).
    """

    def __init__(self, message: str, *, pointer: str = "") -> None:
        self.message = message
        self.pointer = pointer
        super().__init__(f"at {pointer or '/'}: {message}")


def _refuse_retrieval(uri: str) -> Any:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]
"""A ``referencing`` registry that never fetches a schema: every unknown URI is missing."""

_RE2_OPTIONS = re2.Options()
# Refused patterns are reported to the form's author; RE2 need not also log them to stderr.
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """Compile a JSON Schema ``pattern`` with RE2, which matches in time linear in the text.

    :raises FormSchemaError: RE2 cannot compile *pattern* (a backreference,
        lookaround, or a pattern too large for its memory budget).
    """
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise FormSchemaError(
            f"pattern {pattern!r} cannot be matched in linear time ({reason}); "
            "backreferences and lookaround are not supported"
        ) from None


def dialect(schema: Any) -> Any:
    """Return the ``jsonschema`` validator class for the ``$schema`` a form declares (2020-12 by default).

    An unknown ``$schema`` also gives 2020-12 here; :func:`check_form_schema` refuses it at deploy.
    """
    declared = schema.get("$schema") if isinstance(schema, Mapping) else None
    if isinstance(declared, str) and _dialect_key(declared) in _DIALECTS:
        return _DIALECTS[_dialect_key(declared)]
    return Draft202012Validator


def _dialect_key(uri: str) -> str:
    return uri.split("://", 1)[-1].rstrip("#")


def escape(token: str) -> str:
    """Escape one JSON pointer token (``~`` and ``/``)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer_of(path: Any) -> str:
    """Return the JSON pointer of a ``jsonschema`` path (a sequence of keys and indexes)."""
    return "".join("/" + escape(str(part)) for part in path)


def check_form_schema(schema: Any) -> None:
    """Check a form's JSON Schema at deploy: its metaschema, then :func:`check_form_safety`.

    :raises FormSchemaError: naming the JSON pointer of the first problem.
    """
    if not isinstance(schema, Mapping):
        raise FormSchemaError("a form schema must be a JSON object")
    declared = schema.get("$schema")
    if declared is not None and (not isinstance(declared, str) or _dialect_key(declared) not in _DIALECTS):
        raise FormSchemaError(
            f"$schema {declared!r} is not supported; declare draft 2020-12 "
            "('https://json-schema.org/draft/2020-12/schema') or draft-07 "
            "('http://json-schema.org/draft-07/schema#')",
            pointer="/$schema",
        )
    cls = dialect(schema)
    # No format checker: the metaschema's "regex" format would compile patterns with Python's re;
    # check_form_safety compiles them with RE2 and says why one is refused.
    error = best_match(cls(cls.META_SCHEMA, registry=NO_RETRIEVAL).iter_errors(schema))
    if error is not None:
        raise FormSchemaError(
            f"not valid JSON Schema ({cls.META_SCHEMA['$schema'].rstrip('#')}): {error.message}",
            pointer=pointer_of(error.absolute_path),
        )
    check_form_safety(schema)


def check_ui_schema(ui_schema: Any) -> None:
    """Check a UI schema: a JSON object (its keys are read, never executed or fetched).

    :raises FormSchemaError: it is not an object.
    """
    if not isinstance(ui_schema, Mapping):
        raise FormSchemaError("a UI schema must be a JSON object")


def check_form_safety(schema: Any) -> None:
    """Check that validating or rendering *schema* stays inside the form and ends in bounded time.

    See the module documentation for what is refused. Walks without recursion,
    so a long chain of references cannot exhaust Python's stack here either.

    :raises FormSchemaError: naming the JSON pointer of the first problem.
    """
    if not isinstance(schema, Mapping):
        return
    # Three colours over schema locations (JSON pointers): absent = unseen, None = on the
    # current path (a $ref to it closes a cycle), int = done, with its expanded size.
    sizes: dict[str, int | None] = {}
    stack: list[tuple[str, Iterator[str]]] = []
    pattern_properties: list[str] = []
    unevaluated_properties: list[str] = []

    def enter(pointer: str) -> None:
        sizes[pointer] = None
        node = _resolve(schema, pointer)
        if isinstance(node, Mapping):
            if "patternProperties" in node:
                pattern_properties.append(pointer + "/patternProperties")
            if "unevaluatedProperties" in node:
                unevaluated_properties.append(pointer + "/unevaluatedProperties")
        stack.append((pointer, _edges(schema, node, pointer)))

    enter("")
    while stack:
        pointer, edges = stack[-1]
        target = next(edges, None)
        if target is None:
            stack.pop()
            node = _resolve(schema, pointer)
            size = 1 + sum(sizes[child] or 0 for child in _children_pointers(schema, node, pointer))
            if size > MAX_EXPANDED_SCHEMAS:
                raise FormSchemaError(
                    f"the form's $ref references expand to more than {MAX_EXPANDED_SCHEMAS} schemas",
                    pointer=pointer,
                )
            sizes[pointer] = size
            continue
        at = target
        if target.startswith("$ref:"):
            at, _, target = target[len("$ref:") :].partition("|")
        if target not in sizes:
            enter(target)
        elif sizes[target] is None:
            # Tree edges only lead down: whichever edge closes the loop, a $ref is part of it.
            what = f"$ref {_resolve(schema, at)!r}" if at.endswith("/$ref") else "a $ref"
            raise FormSchemaError(
                f"{what} leads back into a schema that contains it: "
                "the form would validate and render without end",
                pointer=at,
            )
    if pattern_properties and unevaluated_properties:
        raise FormSchemaError(
            "unevaluatedProperties cannot be combined with patternProperties in one form "
            f"(patternProperties at {pattern_properties[0]})",
            pointer=unevaluated_properties[0],
        )


def _subschemas(node: Mapping[str, Any], pointer: str) -> Iterator[tuple[str, Any]]:
    """Yield (pointer, subschema) of every place in *node* that JSON Schema reads as a schema."""
    for keyword in _ONE_SCHEMA:
        value = node.get(keyword)
        if isinstance(value, Mapping | bool):
            yield f"{pointer}/{escape(keyword)}", value
    for keyword in _LIST_OF_SCHEMAS:
        value = node.get(keyword)
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield f"{pointer}/{escape(keyword)}/{index}", item
    for keyword in _MAP_OF_SCHEMAS:
        value = node.get(keyword)
        if isinstance(value, Mapping):
            for name, item in value.items():
                # dependencies: a list of property names is no schema.
                if isinstance(item, Mapping | bool):
                    yield f"{pointer}/{escape(keyword)}/{escape(str(name))}", item


def _edges(root: Mapping[str, Any], node: Any, pointer: str) -> Iterator[str]:
    """Check *node* itself, then yield the pointers it leads to (``$ref:`` marks a reference)."""
    if not isinstance(node, Mapping):
        return
    _check_keywords(root, node, pointer)
    ref = node.get("$ref")
    if isinstance(ref, str):
        yield f"$ref:{pointer}/$ref|{_ref_target(root, ref, pointer)}"
    for child, _ in _subschemas(node, pointer):
        yield child


def _children_pointers(root: Mapping[str, Any], node: Any, pointer: str) -> Iterator[str]:
    if not isinstance(node, Mapping):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        yield _ref_target(root, ref, pointer)
    for child, _ in _subschemas(node, pointer):
        yield child


#: What the engine answers for ``"x-choices": {"source": ...}`` (see engine/form_choices.py).
CHOICE_SOURCES = frozenset({"open_goal_tasks"})


def _check_choice_list(spec: Any, pointer: str) -> None:
    if isinstance(spec, Mapping) and isinstance(spec.get("data"), str) and spec["data"]:
        for key in ("value", "label"):
            if key in spec and not isinstance(spec[key], str):
                raise FormSchemaError(
                    f"x-choices {key!r} must name a key of the list's items", pointer=pointer
                )
        return
    if isinstance(spec, Mapping) and spec.get("source") in CHOICE_SOURCES:
        return
    raise FormSchemaError(
        "x-choices must name a list in the task's data ({'data': 'key'}) or one of the sources "
        f"{', '.join(sorted(CHOICE_SOURCES))} ({{'source': name}}), got {spec!r}",
        pointer=pointer,
    )


def _check_keywords(root: Mapping[str, Any], node: Mapping[str, Any], pointer: str) -> None:
    for keyword in ("$dynamicRef", "$recursiveRef"):
        if keyword in node:
            raise FormSchemaError(
                f"{keyword} is not supported in forms; use $ref to '#/$defs/…'",
                pointer=f"{pointer}/{escape(keyword)}",
            )
    if pointer and "$id" in node:
        raise FormSchemaError(
            "$id is allowed only at the root of a form (below it, it changes what '#' refers to)",
            pointer=f"{pointer}/$id",
        )
    if "x-not-before" in node and node["x-not-before"] != "now":
        raise FormSchemaError(
            'x-not-before takes only "now" (no date before today, no date-time before now)',
            pointer=f"{pointer}/x-not-before",
        )
    if "x-choices" in node:
        _check_choice_list(node["x-choices"], f"{pointer}/x-choices")
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        _compile_at(pattern, f"{pointer}/pattern")
    patterns = node.get("patternProperties")
    if isinstance(patterns, Mapping):
        for name in patterns:
            _compile_at(str(name), f"{pointer}/patternProperties/{escape(str(name))}")


def _compile_at(pattern: str, pointer: str) -> None:
    try:
        compile_pattern(pattern)
    except FormSchemaError as exc:
        raise FormSchemaError(exc.message, pointer=pointer) from None


def _ref_target(root: Mapping[str, Any], ref: str, pointer: str) -> str:
    """Return the JSON pointer a local ``$ref`` names.

    :raises FormSchemaError: the reference leaves the form or names nothing in it.
    """
    if not ref.startswith("#") or (len(ref) > 1 and not ref.startswith("#/")):
        raise FormSchemaError(
            f"$ref {ref!r} does not point inside this form; only JSON pointer references within the "
            "same file ('#/$defs/…', '#/definitions/…') are allowed, and nothing is ever fetched",
            pointer=f"{pointer}/$ref",
        )
    target = unquote(ref[1:])
    if _resolve(root, target, missing=True) is _MISSING:
        raise FormSchemaError(f"$ref {ref!r} points at nothing in this form", pointer=f"{pointer}/$ref")
    return target


_MISSING: Any = object()


def _resolve(root: Any, pointer: str, *, missing: bool = False) -> Any:
    """Return what the JSON pointer names in *root* (``_MISSING`` if *missing* and it names nothing)."""
    node = root
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif missing:
            return _MISSING
        else:
            raise KeyError(pointer)
    return node
