"""Studio views: the BPMN modeler page and what its properties panel asks the server.

``GET /studio/<process_id>`` is the bpmn-js modeler (bundle
``vendor/studio/modeler.js``, built from ``web/studio-src/``). It reads and
writes the draft's files through the endpoints of :mod:`.models` and asks
``GET /studio/<process_id>/modeler/context`` for the choices of its
properties panel: the organisation's groups with their display names, the
connector registry with each connector's parameters, the bundle's forms and
decision tables, and the processes a call activity may call.
"""

from __future__ import annotations

import inspect
from typing import Any

from flask import abort, g, jsonify, render_template, url_for
from flask_babel import gettext
from lxml import etree
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from ..i18n import current_language
from . import bp
from .models import bundle_files

_DMN_DECISION = "{*}decision"
_BPMN_PROCESS = "{*}process"
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@bp.get("/<process_id>")
def modeler(process_id: str) -> str:
    """The BPMN modeler of *process_id*'s draft (or of the version the organisation runs).

    A shared process the organisation has not customised opens read-only, with
    a button to customise it.

    :raises NotFound: (404) the process is neither deployed for the organisation nor drafted by it.
    """
    draft, files = bundle_files(process_id)
    bpmn = [f.name for f in files if f.kind == "bpmn"]
    if not bpmn:
        abort(404)
    return render_template(
        "studio/modeler.html",
        process_id=process_id,
        files=files,
        read_only=draft is None and _is_shared_here(process_id),
        first_bpmn=_primary_bpmn(process_id, bpmn),
        strings=client_strings(),
        urls={
            "files": f"/studio/{process_id}/files",
            "file": f"/studio/{process_id}/files/",
            "validate": f"/studio/{process_id}/validate",
            "deployPreview": f"/studio/{process_id}/deploy-preview",
            "deploy": f"/studio/{process_id}/deploy",
            "try": f"/studio/{process_id}/try",
            "export": f"/studio/{process_id}/export",
            "context": url_for("studio.modeler_context", process_id=process_id),
            "forms": f"/studio/{process_id}/forms/",
            "decisions": f"/studio/{process_id}/decisions/",
        },
    )


@bp.get("/<process_id>/modeler/context")
def modeler_context(process_id: str) -> Response:
    """JSON with the choices of the properties panel (see the module docstring).

    :raises NotFound: (404) the process is neither deployed for the organisation nor drafted by it.
    """
    _, files = bundle_files(process_id)
    session = db_session()
    organisation_id = g.organisation.id
    groups = engine.group_names(session, organisation_id, current_language())
    processes = {d.process_id: d.name for d in engine.visible_definitions(session, organisation_id)}
    decisions: list[dict[str, str]] = []
    for file in files:
        if file.kind == "dmn":
            decisions.extend(
                {"id": node.get("id", ""), "name": node.get("name", ""), "file": file.name}
                for node in _elements(file.content, _DMN_DECISION)
            )
        elif file.kind == "bpmn":
            for node in _elements(file.content, _BPMN_PROCESS):
                processes.setdefault(node.get("id", ""), node.get("name", ""))
    return jsonify(
        {
            "processId": process_id,
            "groups": [
                {"key": key, "name": name} for key, name in sorted(groups.items(), key=lambda i: i[1].lower())
            ],
            "connectors": [connector_description(name) for name in engine.CONNECTORS.names()],
            "forms": [
                {"value": file.name.rsplit("/", 1)[-1], "path": file.name}
                for file in files
                if file.kind == "form"
            ],
            "decisions": decisions,
            "processes": [{"id": pid, "name": name} for pid, name in sorted(processes.items()) if pid],
        }
    )


def connector_description(name: str) -> dict[str, Any]:
    """Return a connector's name and its parameters (``id``, ``type``, ``required``) read from its signature.

    The first parameter (the :class:`engine.ConnectorContext`) and ``**kwargs`` are not the task's parameters.
    """
    connector = engine.CONNECTORS.get(name)
    try:
        signature = inspect.signature(connector)
    except (TypeError, ValueError):
        return {"name": name, "parameters": []}
    parameters = []
    for index, parameter in enumerate(signature.parameters.values()):
        if index == 0 and parameter.kind is not parameter.KEYWORD_ONLY:
            continue
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        annotation = parameter.annotation
        type_name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        parameters.append(
            {
                "id": parameter.name,
                "type": type_name if type_name in ("str", "int", "float", "bool") else "any",
                "required": parameter.default is parameter.empty,
            }
        )
    return {"name": name, "parameters": parameters}


def _is_shared_here(process_id: str) -> bool:
    """Whether the organisation runs the shared version and may not edit it without customising it first."""
    session = db_session()
    running = engine.studio.running_definition(session, g.organisation.id, process_id)
    return (
        running is not None
        and running.organisation_id is None
        and not engine.studio.may_edit_shared(session, g.organisation.id)
    )


def _primary_bpmn(process_id: str, names: list[str]) -> str:
    """The BPMN file to open first: the one named after the process, else the first."""
    for name in names:
        if name.rsplit("/", 1)[-1].rsplit(".", 1)[0] == process_id:
            return name
    return names[0]


def _elements(content: str, tag: str) -> list[Any]:
    """The elements *tag* of an XML text; none when it does not parse (a broken draft shows in Validate)."""
    try:
        root = etree.fromstring(content.encode("utf-8"), _SAFE_XML)
    except etree.XMLSyntaxError:
        return []
    return list(root.iter(tag))


def N_(text: str) -> str:
    """Mark *text* for Babel's extraction (its ``N_`` keyword); :func:`client_strings` translates it."""
    return text


# The modeler's texts (web/studio-src/modeler/), translated by bpmn-js's ``translate`` service; ``%(name)s``
# and ``{name}`` are filled in by the browser.
CLIENT_TEXTS = (
    # toolbar and page
    N_("Save"),
    N_("Saving…"),
    N_("Saved"),
    N_("Unsaved changes"),
    N_("The diagram had no layout: Procflow laid it out. Save to keep it."),
    N_("Validate"),
    N_("Validating…"),
    N_("No problems found"),
    N_("Deploy"),
    N_("Try it"),
    N_("Export"),
    N_("Error"),
    N_("Warning"),
    N_("Could not save %(file)s: %(message)s"),
    N_("Could not load %(file)s: %(message)s"),
    N_("The request failed: %(message)s"),
    N_("Problems: %(count)s"),
    N_("Open the editor of %(file)s"),
    N_("Deploy a new version"),
    N_("Added"),
    N_("Removed"),
    N_("Changed"),
    N_("Layout changed"),
    N_("Nothing changed in the diagram"),
    N_("This will be the first version."),
    N_("Running instances that stay on version %(version)s: %(count)s"),
    N_("Deploys for this organisation"),
    N_("Deploys as a shared version for every organisation"),
    N_("Deployed version %(version)s"),
    N_("Cancel"),
    # properties panel
    N_("(none)"),
    N_("not in this bundle"),
    N_("Form"),
    N_("Form (JSON Schema)"),
    N_("UI schema"),
    N_("Edit this form"),
    N_("New form for this task"),
    N_("Instructions"),
    N_("Shown above the form (Markdown)"),
    N_("Who and when"),
    N_("Candidate group"),
    N_("Who may take the task; empty: the group of the lane"),
    N_("Candidate group from an expression"),
    N_("Evaluated when the task starts; overrides the group above"),
    N_("Assignee (expression)"),
    N_("An expression giving a username"),
    N_("Not the one who started the case"),
    N_("Not who completed these tasks"),
    N_("Task ids, separated by commas"),
    N_("Not these users (expression)"),
    N_("An expression giving a username or a list of them"),
    N_("Due (expression)"),
    N_("A duration such as 'P5D', or a date"),
    N_("Scripts"),
    N_("Script"),
    N_("Python run in the sandbox; the case data are its variables"),
    N_("Pre-script"),
    N_("Runs before the task"),
    N_("Post-script"),
    N_("Runs after the task"),
    N_("Connector"),
    N_("Result variable"),
    N_("Where the connector's answer is stored"),
    N_("An expression: 'text' in quotes, or a variable"),
    N_("Decision"),
    N_("Edit this decision table"),
    N_("Called process"),
    N_("Condition"),
    N_("A Python expression; the flow is taken when it is true"),
    N_("Message data"),
    N_("Payload"),
    N_("A Python expression, usually a dict, sent with the message"),
    N_("Store the payload in"),
    N_("A variable name"),
    N_("Correlation"),
    N_("Expression on the message payload that gives the correlation value"),
    N_("Correlate on a new property"),
    N_("Its name; the payload key of the same name gives the value"),
    N_("Multi-instance data"),
    N_("Input collection"),
    N_("A list variable: one instance per item"),
    N_("Input item"),
    N_("The variable holding each instance's item"),
    N_("Output collection"),
    N_("The list the instances' results are collected in"),
    N_("Output item"),
    N_("The variable each instance leaves its result in"),
    N_("Run the pre- and post-scripts on each instance"),
    # bpmn-js's own panel groups and entries the user meets first
    N_("General"),
    N_("Name"),
    N_("ID"),
    N_("Documentation"),
    N_("Element documentation"),
    N_("Timer"),
    N_("Type"),
    N_("Value"),
    N_("Date"),
    N_("Duration"),
    N_("Cycle"),
    N_("Message"),
    N_("Global message reference"),
    N_("Multi-instance"),
    N_("Loop cardinality"),
    N_("Completion condition"),
    N_("Process documentation"),
    N_("<none>"),
    N_("Select an element to edit its properties."),
)


def client_strings() -> dict[str, str]:
    """The modeler's texts in the user's language, keyed by their English text."""
    return {text: gettext(text) for text in CLIENT_TEXTS}
