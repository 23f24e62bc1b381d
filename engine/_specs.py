"""Reading, validating and parsing process bundles; the per-version spec cache.

XML comes from users (process owners upload it), so it is parsed with entity
resolution, DTD loading and network access off, and documents carrying a
DOCTYPE are refused outright: no XXE, no entity-expansion bombs.

Form files (JSON Schema and UI schema) may nest at most ``MAX_FORM_DEPTH``
(64) levels of objects and arrays. Parsing, validating against and rendering
a form all recurse once per level, so a deeper file is refused at deploy,
measured without recursion, rather than ending in a ``RecursionError`` there
or later.

SpiffWorkflow's parser decides what is refused: what it cannot parse is an
error naming file, line and element. The BPMN and DMN schemas are checked
too, but what they refuse and the parser accepts (leftovers of older
modelers, such as spiff-arena's ``messageRef="[object Object]"``) deploys and
runs, with a warning in :attr:`ParsedBundle.warnings` naming file, line and
element. Files may be named ``*.bpmn20.xml`` as well as ``*.bpmn``.

At deploy every file a task names as ``formJsonSchemaFilename`` must also be
valid JSON Schema for the dialect it declares (draft 2020-12 by default, or
draft-07) and safe to serve: no ``$ref`` out of the file or in a cycle, only
patterns RE2 can match in linear time (:func:`forms.check_form_schema`); a
file named as ``formUiSchemaFilename`` must be a JSON object. Errors name the
file and the JSON pointer. Bundles already stored are parsed again without
these checks (``check_form_schemas=False``), so a case of a version deployed
before them keeps running; validation guards such forms on its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from forms import FormSchemaError, check_form_schema, check_ui_schema

from ._case_file import CASE_FILE, check_case_file
from ._parameters_file import PARAMETERS_FILE, check_parameters_file
from ._reporting_file import REPORTING_FILE, check_reporting_file
from ._sandbox import IsolatedDecisionEngine
from ._submitted import json_too_deep_at
from .errors import DeploymentError, Problem
from .limits import DeepBpmnParser, allow_long_chains, check_literal_durations, check_model_size
from .translated_names import NAMES_FILE, check_translated_names

# spiff-arena names its diagrams *.bpmn20.xml as often as *.bpmn.
BUNDLE_SUFFIXES = {".bpmn": "bpmn", ".bpmn20.xml": "bpmn", ".dmn": "dmn", ".json": "form"}
# spiff-arena's metadata of a model folder (and of a folder of models): read at import, never forms.
SPIFF_ARENA_METADATA = frozenset({"process_model.json", "process_group.json"})
MAX_FILE_BYTES = 5 * 1024 * 1024
FORM_PROPERTIES = ("formJsonSchemaFilename", "formUiSchemaFilename")
MAX_FORM_DEPTH = 64

# What the BPMN or DMN schema refuses is reported up to this many times per file.
MAX_SCHEMA_WARNINGS = 20

_DOCTYPE = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle: its name inside the bundle, kind and text."""

    name: str
    kind: str
    content: str


@dataclass
class ParsedBundle:
    """The outcome of parsing a bundle: specs by process id and what deploy must record."""

    specs: dict[str, BpmnProcessSpec]
    subprocess_specs: dict[str, dict[str, BpmnProcessSpec]]
    names: dict[str, str]
    executable: list[str]
    message_starts: dict[str, list[str]] = field(default_factory=dict)
    message_correlations: dict[str, dict[str, list[dict[str, str]]]] = field(default_factory=dict)
    # The checked names.json (see engine/translated_names.py); filled at deploy only.
    translated_names: dict[str, dict[str, str]] = field(default_factory=dict)
    files: list[BundleFile] = field(default_factory=list)
    # What deploys and runs but should be looked at (shown in the studio, printed by the CLI).
    warnings: list[Problem] = field(default_factory=list)
    _json: dict[str, Any] = field(default_factory=dict)

    def event_subprocess_messages(self, process_id: str) -> dict[str, Any]:
        """Return the message start events of the process's event subprocesses, by message name.

        SpiffWorkflow starts event subprocesses of the top-level process only,
        so only those are listed.
        """
        spec = self.specs[process_id]
        found: dict[str, Any] = {}
        for name in getattr(spec.start, "trigger_specs", []):
            subprocess = self.subprocess_specs[process_id].get(name)
            for start_event in getattr(subprocess, "bpmn_start_events", []):
                definition = start_event.event_definition
                if type(definition).__name__ == "MessageEventDefinition":
                    found[definition.name] = definition
        return found

    def file(self, reference: str) -> BundleFile | None:
        """Return the bundle file named *reference* (bundle path or file name)."""
        if reference.endswith(".json"):
            return find_form(self.files, reference)
        return _by_name(self.files, reference)

    def json_file(self, reference: str) -> Any:
        """Return the parsed content of a JSON file of the bundle (cached; treat as read-only)."""
        if reference not in self._json:
            item = self.file(reference)
            if item is None:
                raise KeyError(reference)
            self._json[reference] = json.loads(item.content)
        return self._json[reference]


def read_bundle(path: Path) -> list[BundleFile]:
    """Read a bundle from a folder (every BPMN, DMN and JSON file below it) or one file.

    Files are taken by suffix (:data:`BUNDLE_SUFFIXES`); spiff-arena's
    ``process_model.json`` and ``process_group.json`` are metadata and are left out.

    :raises DeploymentError: the path does not exist, holds no BPMN file, or a
        file is too large or not UTF-8.
    """
    if not path.exists():
        raise DeploymentError("no such file or folder", file=str(path))
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    files = []
    for item in paths:
        kind = kind_of(item.name)
        if kind is None or item.name in SPIFF_ARENA_METADATA:
            continue
        if item.stat().st_size > MAX_FILE_BYTES:
            raise DeploymentError(f"file is larger than {MAX_FILE_BYTES} bytes", file=str(item))
        try:
            content = item.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DeploymentError(f"not UTF-8 text ({exc.reason})", file=str(item)) from exc
        name = item.relative_to(path).as_posix() if path.is_dir() else item.name
        files.append(BundleFile(name=name, kind=kind, content=content))
    if not any(f.kind == "bpmn" for f in files):
        raise DeploymentError("no .bpmn file found", file=str(path))
    return files


def kind_of(name: str) -> str | None:
    """Return the kind of bundle file *name* is (``bpmn``, ``dmn``, ``form``) by its suffix, else ``None``."""
    lowered = name.lower()
    for suffix, kind in BUNDLE_SUFFIXES.items():
        if lowered.endswith(suffix):
            return kind
    return None


def bundle_hash(files: Iterable[BundleFile]) -> str:
    """Return a SHA-256 over file names and contents, independent of order."""
    digest = hashlib.sha256()
    for item in sorted(files, key=lambda f: f.name):
        digest.update(item.name.encode())
        digest.update(b"\0")
        digest.update(item.content.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def parse_xml(content: str, file_name: str) -> etree._Element:
    """Parse untrusted XML safely.

    :raises DeploymentError: malformed XML (with its line), or a DOCTYPE.
    """
    # Refuse before parsing: with a DTD in play even a safe parser's errors
    # depend on entity handling, and no BPMN or DMN file needs one.
    declaration = _DOCTYPE.search(content)
    if declaration:
        line = content.count("\n", 0, declaration.start()) + 1
        raise DeploymentError("DOCTYPE declarations are not allowed", file=file_name, line=line)
    try:
        root = etree.fromstring(content.encode("utf-8"), parser=_SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise DeploymentError(f"malformed XML: {exc.msg}", file=file_name, line=exc.lineno) from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DeploymentError("DOCTYPE declarations are not allowed", file=file_name, line=1)
    return root


def _line_of(root: etree._Element, element_id: str | None) -> int | None:
    if not element_id:
        return None
    found = root.xpath("//*[@id=$id]", id=element_id)
    return found[0].sourceline if found else None


def _form_files(files: Iterable[BundleFile]) -> dict[str, BundleFile]:
    by_name: dict[str, BundleFile] = {}
    for item in files:
        if item.kind == "form":
            by_name[item.name] = item
            by_name.setdefault(item.name.rsplit("/", 1)[-1], item)
    return by_name


def _by_name(files: Iterable[BundleFile], reference: str) -> BundleFile | None:
    for item in files:
        if item.name == reference or item.name.rsplit("/", 1)[-1] == reference:
            return item
    return None


def find_form(files: Iterable[BundleFile], reference: str) -> BundleFile | None:
    """Find the form file a task references, by bundle path or by file name."""
    return _form_files(files).get(reference)


def parse_bundle(files: list[BundleFile], *, check_form_schemas: bool = True) -> ParsedBundle:
    """Validate and parse every file of a bundle.

    *check_form_schemas* false skips the metaschema and safety checks of form
    files (see the module documentation): for bundles that were deployed already.

    :raises DeploymentError: naming file, line and element id of the first problem
        (for a form file: the file and the JSON pointer).
    """
    schema_warnings: list[Problem] = []
    parser = _LenientParser(schema_warnings)
    roots: dict[str, etree._Element] = {}
    for item in files:
        if item.kind == "form":
            too_deep = json_too_deep_at(item.content, MAX_FORM_DEPTH)
            if too_deep is not None:
                raise DeploymentError(
                    f"JSON is nested more than {MAX_FORM_DEPTH} levels deep (column {too_deep[1]})",
                    file=item.name,
                    line=too_deep[0],
                )
            try:
                json.loads(item.content)
            except json.JSONDecodeError as exc:
                raise DeploymentError(f"invalid JSON: {exc.msg}", file=item.name, line=exc.lineno) from exc
            if item.name == CASE_FILE:
                check_case_file(item.content, forms={f.name: f.content for f in files if f.kind == "form"})
            if item.name == REPORTING_FILE:
                check_reporting_file(item.content)
            if item.name == PARAMETERS_FILE:
                check_parameters_file(item.content)
            continue
        root = parse_xml(item.content, item.name)
        roots[item.name] = root
        if item.kind == "bpmn":
            check_model_size(root, item.name)
            check_literal_durations(root, item.name)
        try:
            if item.kind == "bpmn":
                parser.add_bpmn_xml(root, filename=item.name)
            else:
                parser.add_dmn_xml(root, filename=item.name)
        except ValidationException as exc:
            raise _deployment_error(exc, roots) from exc
        except SpiffWorkflowException as exc:
            raise DeploymentError(str(exc), file=item.name) from exc

    executable = [
        process_id
        for process_id in parser.get_process_ids()
        if parser.get_process_parser(process_id).node.get("isExecutable", "true") != "false"
    ]
    if not executable:
        raise DeploymentError("no executable process found", file=files[0].name)

    specs: dict[str, BpmnProcessSpec] = {}
    subprocess_specs: dict[str, dict[str, BpmnProcessSpec]] = {}
    names: dict[str, str] = {}
    try:
        for process_id in executable:
            specs[process_id] = parser.get_spec(process_id)
            subprocess_specs[process_id] = parser.get_subprocess_specs(process_id)
            names[process_id] = parser.get_process_parser(process_id).get_name() or process_id
    except ValidationException as exc:
        raise _deployment_error(exc, roots) from exc
    except SpiffWorkflowException as exc:
        raise DeploymentError(str(exc)) from exc

    for process_id in executable:
        for spec in [specs[process_id], *subprocess_specs[process_id].values()]:
            connect_loop_merges(spec)
            isolate_decisions(spec)
            allow_long_chains(spec)
    parsed = ParsedBundle(
        specs=specs,
        subprocess_specs=subprocess_specs,
        names=names,
        executable=executable,
        files=list(files),
        warnings=schema_warnings,
    )
    _check_forms(parsed, files, roots, check_schemas=check_form_schemas)
    _record_messages(parsed, parser)
    if check_form_schemas:  # at deploy: versions deployed before these checks keep running
        from .decision_check import check_decision_tables  # (it builds on this module)
        from .expressions import bpmn_code_problems

        for item in files:
            if item.kind == "bpmn":
                for problem in bpmn_code_problems(roots[item.name], item.name):
                    if problem.severity == "error":
                        raise DeploymentError(
                            problem.message, file=problem.file, line=problem.line, element=problem.element
                        )
                    parsed.warnings.append(problem)
        parsed.warnings.extend(check_decision_tables(files, roots))
    if check_form_schemas:
        parsed.translated_names = _translated_names(parsed, parser)
    return parsed


_SCHEMA_LOCK = threading.Lock()
_DMN_SCHEMAS: dict[str, etree.XMLSchema] = {}
_NAMESPACE_PREFIXES = {
    "http://www.omg.org/spec/BPMN/20100524/MODEL": "bpmn:",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi:",
    "http://spiffworkflow.org/bpmn/schema/1.0/core": "spiffworkflow:",
}
_QUALIFIED = re.compile(r"\{([^}]*)\}")


class _LenientValidator(BpmnValidator):
    """Validates against the BPMN (or DMN) schema, but records what it refuses instead of refusing it.

    SpiffWorkflow's parser decides what can run; what it accepts and the schema
    does not (leftovers of older modelers, such as spiff-arena's
    ``messageRef="[object Object]"``, attributes of other tools) deploys, with a
    warning naming file, line and element. One compiled schema serves every
    parse; its error log is per schema object, hence the lock.
    """

    def __init__(self, schema: etree.XMLSchema, warnings: list[Problem]) -> None:
        self.validator = schema
        self.warnings = warnings

    def validate(self, bpmn: etree._Element, filename: str | None = None) -> None:
        self.preprocess(bpmn)  # as the library's validator does: it retags what bpmn-js writes
        with _SCHEMA_LOCK:
            valid = self.validator.validate(bpmn)
            entries = [] if valid else list(self.validator.error_log)
        for entry in entries[:MAX_SCHEMA_WARNINGS]:
            self.warnings.append(_schema_warning(entry, bpmn, filename))
        if len(entries) > MAX_SCHEMA_WARNINGS:
            more = len(entries) - MAX_SCHEMA_WARNINGS
            self.warnings.append(
                Problem(f"{more} more places the schema does not accept", severity="warning", file=filename)
            )


def _schema_warning(entry: Any, root: etree._Element, filename: str | None) -> Problem:
    # The element the finding is about starts on its line; its id, or its nearest ancestor's.
    element_id = None
    on_line = [e for e in root.iter() if isinstance(e.tag, str) and e.sourceline == entry.line]
    node = on_line[-1] if on_line else None
    while node is not None and element_id is None:
        element_id = node.get("id")
        node = node.getparent()
    message = _QUALIFIED.sub(lambda m: _NAMESPACE_PREFIXES.get(m[1], ""), entry.message).rstrip(".")
    return Problem(
        f"the schema does not accept this (it runs nevertheless): {message}",
        severity="warning",
        file=filename,
        line=entry.line or None,
        element=element_id,
    )


def _dmn_schema(path: str) -> etree.XMLSchema:
    with _SCHEMA_LOCK:
        if path not in _DMN_SCHEMAS:
            _DMN_SCHEMAS[path] = etree.XMLSchema(etree.parse(path))
        return _DMN_SCHEMAS[path]


class _LenientParser(DeepBpmnParser):
    """The parser of :func:`parse_bundle`: schema findings are warnings (see :class:`_LenientValidator`)."""

    def __init__(self, warnings: list[Problem]) -> None:
        super().__init__(validator=_LenientValidator(VALIDATOR.validator, warnings))
        self._warnings = warnings

    def add_dmn_xml(self, node: etree._Element, filename: str | None = None) -> None:
        # The library validates DMN with a strict validator it builds per file; do it leniently here.
        namespaces = {**self.namespaces, **node.nsmap}
        if None in namespaces:
            namespaces["dmn"] = namespaces.pop(None)
        schema = self.dmn_schemas.get(namespaces.get("dmn"))
        if schema is not None:
            _LenientValidator(_dmn_schema(schema), self._warnings).validate(node, filename)
        validator: Any = getattr(self, "validator")  # noqa: B009 (the library's attribute has no type)
        self.validator = None
        try:
            super().add_dmn_xml(node, filename=filename)
        finally:
            self.validator = validator


def _translated_names(parsed: ParsedBundle, parser: SpiffBpmnParser) -> dict[str, dict[str, str]]:
    """Return the bundle's checked names.json; only the ids of its processes and elements may be keys."""
    names_file = next((f for f in parsed.files if f.name == NAMES_FILE), None)
    if names_file is None:
        return {}
    known = set(parser.get_process_ids())
    for process_id in parsed.executable:
        for spec in _all_specs(parsed, process_id):
            known.update(ts.bpmn_id for ts in spec.task_specs.values() if ts.bpmn_id)
    return check_translated_names(json.loads(names_file.content), known, file=names_file.name)


def connect_loop_merges(spec: BpmnProcessSpec) -> None:
    """Connect every loop and multi-instance task of *spec* to the completion of its child task.

    SpiffWorkflow makes this connection only when a loop creates its first
    child, in the process that creates it; a spec parsed afresh in another
    process (a restart, another web worker) would never merge the children of a
    loop that was already running, and the case would wait for nothing. Its own
    spec deserializer connects them up front, as this does.
    """
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, LoopTask):
            child = spec.task_specs[task_spec.task_spec]
            if not child.completed_event.is_connected(task_spec.merge_child):
                child.completed_event.connect(task_spec.merge_child)


def isolate_decisions(spec: BpmnProcessSpec) -> None:
    """Make every business rule task of *spec* evaluate its table in an evaluator process."""
    for task_spec in spec.task_specs.values():
        engine = getattr(task_spec, "dmnEngine", None)
        if engine is not None and not isinstance(engine, IsolatedDecisionEngine):
            task_spec.dmnEngine = IsolatedDecisionEngine(engine.decision_table)


def _deployment_error(exc: ValidationException, roots: Mapping[str, etree._Element]) -> DeploymentError:
    file_name = exc.file_name or None
    line = exc.line_number if isinstance(exc.line_number, int) and exc.line_number else None
    if line is None and file_name is not None and file_name in roots:
        line = _line_of(roots[file_name], exc.id)
    message = str(exc.args[0]) if exc.args else str(exc)
    return DeploymentError(message, file=file_name, line=line, element=exc.id or None)


def _all_specs(parsed: ParsedBundle, process_id: str) -> Iterable[BpmnProcessSpec]:
    yield parsed.specs[process_id]
    yield from parsed.subprocess_specs[process_id].values()


def _check_forms(
    parsed: ParsedBundle,
    files: list[BundleFile],
    roots: Mapping[str, etree._Element],
    *,
    check_schemas: bool,
) -> None:
    forms = _form_files(files)
    referenced: dict[str, set[str]] = {key: set() for key in FORM_PROPERTIES}
    for process_id in parsed.executable:
        for spec in _all_specs(parsed, process_id):
            for task_spec in spec.task_specs.values():
                if not isinstance(task_spec, UserTask | StartEvent):
                    continue
                properties = (getattr(task_spec, "extensions", None) or {}).get("properties", {})
                for key in FORM_PROPERTIES:
                    reference = properties.get(key)
                    if reference and reference not in forms:
                        file_name = spec.file
                        raise DeploymentError(
                            f"{key} names {reference!r}, which is not in the bundle",
                            file=file_name,
                            line=_line_of(roots[file_name], task_spec.bpmn_id)
                            if file_name in roots
                            else None,
                            element=task_spec.bpmn_id,
                        )
                    if reference:
                        referenced[key].add(forms[reference].name)
    if check_schemas:
        _check_form_schemas(parsed, referenced)


def _check_form_schemas(parsed: ParsedBundle, referenced: Mapping[str, set[str]]) -> None:
    checks = (("formJsonSchemaFilename", check_form_schema), ("formUiSchemaFilename", check_ui_schema))
    for key, check in checks:
        for name in sorted(referenced[key]):
            try:
                check(parsed.json_file(name))
            except FormSchemaError as exc:
                raise DeploymentError(
                    f"JSON pointer {exc.pointer or '/'}: {exc.message}", file=name
                ) from None


def _record_messages(parsed: ParsedBundle, parser: SpiffBpmnParser) -> None:
    # The parser keys correlations by the message's id; events carry its name.
    correlations = {
        parser.messages.get(message_id) or message_id: [
            {"name": prop.name, "expression": prop.retrieval_expression} for prop in props
        ]
        for message_id, props in parser.message_correlations.items()
    }
    for process_id in parsed.executable:
        spec = parsed.specs[process_id]
        parsed.message_starts[process_id] = sorted(
            {
                ts.event_definition.name
                for ts in spec.task_specs.values()
                if type(ts).__name__ == "StartEvent"
                and type(getattr(ts, "event_definition", None)).__name__ == "MessageEventDefinition"
            }
        )
        parsed.message_correlations[process_id] = correlations


class SpecCache:
    """Parsed specs per bundle content hash: parse once per version, never per request.

    Keyed by content hash, so it is safe to share between databases and threads.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, ParsedBundle] = {}
        self._lock = threading.Lock()

    def get(self, content_hash: str, files: Any) -> ParsedBundle:
        """Return the parsed bundle for *content_hash*, parsing *files()* on a miss."""
        with self._lock:
            parsed = self._entries.get(content_hash)
        if parsed is not None:
            return parsed
        parsed = parse_bundle(files(), check_form_schemas=False)
        self.put(content_hash, parsed)
        return parsed

    def put(self, content_hash: str, parsed: ParsedBundle) -> None:
        """Remember an already parsed bundle (deploy parses it anyway to validate it)."""
        with self._lock:
            if content_hash not in self._entries and len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[content_hash] = parsed

    def clear(self) -> None:
        """Forget every parsed spec."""
        with self._lock:
            self._entries.clear()


SPEC_CACHE = SpecCache()
