"""The studio's form editor: a form's fields with labels in three languages, and a live preview.

A form is a pair of bundle files named as the shipped processes name them:
``forms/x.schema.json`` (the JSON Schema) and ``forms/x.uischema.json`` (its
UI schema, optional). The editor shows the fields of the schema
(:mod:`forms.editor`), applies its buttons (add, remove, move a field or a
choice) on the server, and saves into the organisation's draft of the process
(:mod:`engine.studio`); the preview is the form rendered by
:func:`forms.render_fields`, exactly as a case handler's task page renders it,
in the language chosen beside it and filled with sample values. What the
field editor cannot express is edited as raw JSON: checked on save, and on an
error shown again as typed, with the line or JSON pointer of the problem.

Pages read the draft if the organisation has one, else the version it runs;
saving makes the draft on first use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext
from lxml import etree
from markupsafe import Markup
from werkzeug.wrappers import Response

import engine
import forms
from forms import editor, editor_page

from ..db import db_session
from ..i18n import current_language, time_zone
from . import bp

SCHEMA_SUFFIX = ".schema.json"
UI_SUFFIX = ".uischema.json"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_NEW_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,80}$")
_POINTER_IN_MESSAGE = re.compile(r"JSON pointer (/\S*):")


def N_(text: str) -> str:
    """Mark *text* for translation (``pybabel extract -k N_``); the template translates it when shown."""
    return text


KIND_LABELS = {
    "text": N_("Text"),
    "textarea": N_("Long text"),
    "email": N_("E-mail address"),
    "number": N_("Number"),
    "integer": N_("Whole number"),
    "money": N_("Amount of money"),
    "date": N_("Date"),
    "date-time": N_("Date and time"),
    "boolean": N_("Yes/no"),
    "select": N_("Choice (list)"),
    "radio": N_("Choice (buttons)"),
    "multi-select": N_("Several choices"),
    "attachment": N_("Attachment"),
    "rows": N_("Repeating rows"),
    "group": N_("Group of fields"),
    "hidden": N_("Hidden"),
    "other": N_("Other (edit as raw JSON)"),
}
LANGUAGE_LABELS = {"en": "English", "sv": "Svenska", "fi": "Suomi"}


def ui_schema_name(name: str) -> str:
    """Return the UI schema file of the schema file *name* (``x.schema.json`` → ``x.uischema.json``)."""
    return name[: -len(SCHEMA_SUFFIX)] + UI_SUFFIX


def _files(process_id: str) -> tuple[engine.studio.ProcessDraft | None, dict[str, engine.BundleFile]]:
    """Return the organisation's draft of *process_id* (or ``None``) and the files it edits, by name.

    :raises NotFound: (404) the organisation neither has a draft of the process nor runs it.
    """
    db = db_session()
    draft = engine.studio.find_draft(db, g.organisation.id, process_id)
    if draft is not None:
        g.form_editable = True
        files = engine.studio.draft_files(db, draft)
    else:
        running = engine.studio.running_definition(db, g.organisation.id, process_id)
        if running is None:
            abort(404)
        # A shared process is read-only here until the organisation customises it (engine.studio.open_draft).
        g.form_editable = running.organisation_id is not None or engine.studio.may_edit_shared(
            db, g.organisation.id
        )
        files = engine.studio.files_of_version(db, running)
    return draft, {f.name: f for f in files}


def _documents(files: Mapping[str, engine.BundleFile], name: str) -> tuple[str, str]:
    """Return the texts of the schema file *name* and its UI schema (``"{}"`` when it has none).

    :raises NotFound: (404) *name* is not a form schema of the bundle.
    """
    if not name.endswith(SCHEMA_SUFFIX) or name not in files:
        abort(404)
    ui = files.get(ui_schema_name(name))
    return files[name].content, ui.content if ui is not None else "{}"


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _problems(draft: engine.studio.ProcessDraft | None, name: str) -> list[engine.Problem]:
    """Return what validating the draft finds in the form *name* or its UI schema."""
    if draft is None:
        return []
    mine = {name, ui_schema_name(name)}
    return [
        problem
        for problem in engine.studio.validate_draft(db_session(), draft)
        if problem.file in mine
        or (problem.file or "").rsplit("/", 1)[-1] in {n.rsplit("/", 1)[-1] for n in mine}
    ]


def _pointer(problem: engine.Problem) -> str | None:
    if problem.field is not None:
        return problem.field
    found = _POINTER_IN_MESSAGE.search(problem.message)
    return found.group(1) if found else None


def _place(
    form: editor.EditedForm,
    errors: dict[str, list[str]],
    general: list[str],
    pointer: str | None,
    message: str,
) -> None:
    """Put *message* beside the field *pointer* lies in, or among the form's messages."""
    prefix = editor_page.prefix_for_pointer(editor_page.field_pointers(form), pointer) if pointer else None
    if prefix is None:
        general.append(message)
    else:
        errors.setdefault(prefix, []).append(message)


def _page(
    process_id: str,
    name: str,
    *,
    draft: engine.studio.ProcessDraft | None,
    form: editor.EditedForm,
    base_schema: str,
    base_ui: str,
    raw_schema: str | None = None,
    raw_ui: str | None = None,
    errors: dict[str, list[str]] | None = None,
    general: list[str] | None = None,
    raw_errors: list[str] | None = None,
    problems: list[engine.Problem] | None = None,
    preview_lang: str | None = None,
    draft_version: int | None = None,
) -> str:
    errors = errors if errors is not None else {}
    general = general if general is not None else []
    for problem in problems or []:
        _place(form, errors, general, _pointer(problem), problem.message)
    context = {
        "process_id": process_id,
        "name": name,
        "ui_name": ui_schema_name(name),
        "draft": draft,
        "editable": g.get("form_editable", True),
        "draft_version": draft_version
        if draft_version is not None
        else (draft.lock_version if draft else ""),
        "form": form,
        "base_schema": base_schema,
        "base_ui": base_ui,
        "raw_schema": raw_schema if raw_schema is not None else base_schema,
        "raw_ui": raw_ui if raw_ui is not None else base_ui,
        "raw_open": raw_errors is not None and bool(raw_errors),
        "errors": errors,
        "general": general,
        "raw_errors": raw_errors or [],
        "kinds": editor.KINDS,
        "kind_labels": KIND_LABELS,
        "languages": editor.LANGUAGES,
        "language_labels": LANGUAGE_LABELS,
        "preview_lang": preview_lang if preview_lang in editor.LANGUAGES else current_language(),
        "field_prefix": editor_page.field_prefix,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "editor-form":
        return render_template("studio/_form_fields.html", **context)
    return render_template("studio/form_editor.html", **context)


@bp.get("/<process_id>/forms/<path:name>")
def form_editor(process_id: str, name: str) -> str:
    """Show the form editor for the form schema *name* of the process's draft (else its running version).

    :raises NotFound: (404) the process is not the organisation's, or it has no such form.
    """
    draft, files = _files(process_id)
    schema_text, ui_text = _documents(files, name)
    # A file that is no JSON object (a broken draft, an import) is mended in the raw JSON view.
    broken = [_json_error(name, schema_text)[1], _json_error(ui_schema_name(name), ui_text)[1]]
    try:
        form = editor.read_form(_loads(schema_text), _loads(ui_text))
    except editor.FormEditError as exc:
        form = editor.EditedForm()
        broken.append(f"{name}: {exc.message}")
    return _page(
        process_id,
        name,
        draft=draft,
        form=form,
        base_schema=schema_text,
        base_ui=ui_text,
        raw_errors=[message for message in broken if message],
        problems=_problems(draft, name),
        preview_lang=request.args.get("lang"),
    )


def _edited() -> tuple[dict[str, Any], dict[str, Any], editor.EditedForm]:
    """Return the documents the page was made from and the fields as the user edited them."""
    return (
        _loads(request.form.get("base_schema", "")),
        _loads(request.form.get("base_ui", "")),
        editor_page.parse_editor_input(request.form.get),
    )


def _written(
    base_schema: Mapping[str, Any], base_ui: Mapping[str, Any], form: editor.EditedForm
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the edited documents, checked as deploy checks them.

    :raises forms.editor.FormEditError: an edit that cannot be written.
    :raises forms.FormSchemaError: the result is no form schema deploy accepts.
    """
    schema, ui = editor.write_form(base_schema, base_ui, form)
    forms.check_form_schema(schema)
    forms.check_ui_schema(ui)
    return schema, ui


def _save(
    process_id: str,
    files: Mapping[str, engine.BundleFile],
    name: str,
    schema: Mapping[str, Any],
    ui: Mapping[str, Any],
    draft_version: int | None,
) -> None:
    """Save the schema and UI schema into the draft (made on first use); unchanged files are not written."""
    db = db_session()
    draft = engine.studio.open_draft(db, g.organisation.id, process_id, user=g.user.username)
    ui_name = ui_schema_name(name)
    writes = [(name, schema)]
    if ui or ui_name in files:
        writes.append((ui_name, ui))
    for file_name, document in writes:
        old = files.get(file_name)
        if old is not None and _json_error(file_name, old.content)[0] == document:
            continue
        engine.studio.save_draft_file(
            db, draft, file_name, _dumps(document), user=g.user.username, draft_version=draft_version
        )
        draft_version = None  # the first save counted the version up; the second is the same edit


def _draft_version() -> int | None:
    text = request.form.get("draft_version", "")
    return int(text) if text.isdigit() else None


@bp.post("/<process_id>/forms/<path:name>")
def save_form(process_id: str, name: str) -> Response | str | tuple[str, int]:
    """Save the edited form into the draft, or apply one of the editor's buttons and show it again.

    The form's ``action`` (a button: add, remove, move a field or a choice)
    shows the editor again without saving; ``mode=raw`` saves the raw JSON of
    both files. An edit that cannot be saved shows the editor again with the
    user's input and the message beside the field it concerns (422).

    :raises NotFound: (404) the process is not the organisation's, or it has no such form.
    :raises Conflict: (409) someone saved the draft since the page was loaded.
    """
    draft, files = _files(process_id)
    _documents(files, name)
    if request.form.get("mode") == "raw":
        return _save_raw(process_id, name, draft, files)
    base_schema, base_ui = request.form.get("base_schema", ""), request.form.get("base_ui", "")
    schema_doc, ui_doc, form = _edited()
    action = request.form.get("action")
    page = {
        "draft": draft,
        "form": form,
        "base_schema": base_schema,
        "base_ui": base_ui,
        "preview_lang": request.form.get("preview_lang"),
        "draft_version": _draft_version(),
    }
    if action:
        editor_page.apply_action(form, action)
        response = make_response(_page(process_id, name, **page))  # type: ignore[arg-type]
        response.headers["HX-Trigger"] = "editor-changed"  # the preview shows the change
        return response
    try:
        schema, ui = _written(schema_doc, ui_doc, form)
    except (editor.FormEditError, forms.FormSchemaError) as exc:
        errors: dict[str, list[str]] = {}
        general: list[str] = []
        _place(form, errors, general, exc.pointer, f"{exc.pointer or '/'}: {exc.message}")
        return _page(process_id, name, errors=errors, general=general, **page), 422  # type: ignore[arg-type]
    _save(process_id, files, name, schema, ui, _draft_version())
    flash(gettext("Form saved in the draft."), "success")
    return redirect(url_for("studio.form_editor", process_id=process_id, name=name), code=303)


def _json_error(file_name: str, text: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return (document, None), or (None, a message naming the file and where it went wrong)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, gettext(
            "%(file)s, line %(line)d, column %(column)d: %(message)s",
            file=file_name,
            line=exc.lineno,
            column=exc.colno,
            message=exc.msg,
        )
    except RecursionError:
        return None, gettext("%(file)s: nests too deeply", file=file_name)
    if not isinstance(document, dict):
        return None, gettext("%(file)s: must be a JSON object", file=file_name)
    return document, None


def _save_raw(
    process_id: str,
    name: str,
    draft: engine.studio.ProcessDraft | None,
    files: Mapping[str, engine.BundleFile],
) -> Response | tuple[str, int]:
    raw_schema = request.form.get("schema_json", "")
    raw_ui = request.form.get("ui_json", "") or "{}"
    problems: list[str] = []
    schema, message = _json_error(name, raw_schema)
    if message:
        problems.append(message)
    ui, message = _json_error(ui_schema_name(name), raw_ui)
    if message:
        problems.append(message)
    if schema is not None:
        try:
            forms.check_form_schema(schema)
        except forms.FormSchemaError as exc:
            problems.append(f"{name}, JSON pointer {exc.pointer or '/'}: {exc.message}")
    if problems or schema is None or ui is None:
        base_schema, base_ui = _documents(files, name)
        form = editor.read_form(_loads(base_schema), _loads(base_ui))
        page = _page(
            process_id,
            name,
            draft=draft,
            form=form,
            base_schema=base_schema,
            base_ui=base_ui,
            raw_schema=raw_schema,
            raw_ui=raw_ui,
            raw_errors=problems,
            draft_version=_draft_version(),
        )
        return page, 422
    _save(process_id, files, name, schema, ui, _draft_version())
    flash(gettext("Form saved in the draft."), "success")
    return redirect(url_for("studio.form_editor", process_id=process_id, name=name), code=303)


@bp.post("/<process_id>/forms/<path:name>/preview")
def preview_form(process_id: str, name: str) -> str:
    """Return the edited form rendered as a case handler sees it, in the language ``preview_lang``.

    An htmx fragment; the values are samples of each field's type. An edit that
    cannot be written shows its message instead of the form.

    :raises NotFound: (404) the process is not the organisation's, or it has no such form.
    """
    _, files = _files(process_id)
    _documents(files, name)
    schema_doc, ui_doc, form = _edited()
    language = request.form.get("preview_lang", "")
    language = language if language in editor.LANGUAGES else current_language()
    with force_locale(language):
        try:
            schema, ui = _written(schema_doc, ui_doc, form)
        except (editor.FormEditError, forms.FormSchemaError) as exc:
            return render_template(
                "studio/_form_preview.html", problem=f"{exc.pointer or '/'}: {exc.message}", language=language
            )
        built = forms.build_form(
            schema,
            ui,
            values=editor_page.sample_values(schema, language),
            locale=language,
            time_zone=time_zone(),
        )
        fields_html = Markup(forms.render_fields(built, gettext=gettext))
        return render_template(
            "studio/_form_preview.html",
            problem=None,
            title=built.title,
            fields_html=fields_html,
            language=language,
        )


# -- a new form ------------------------------------------------------------------------------------


def _user_task(files: Mapping[str, engine.BundleFile], task_id: str) -> tuple[str, etree._Element] | None:
    """Return (BPMN file name, parsed root) of the BPMN file holding the user task *task_id*."""
    for file in files.values():
        if file.kind != "bpmn":
            continue
        try:
            root = _parse_bpmn(file.content)
        except (etree.XMLSyntaxError, ValueError):
            continue
        if root.xpath("//bpmn:userTask[@id=$id]", id=task_id, namespaces={"bpmn": BPMN_NS}):
            return file.name, root
    return None


def _parse_bpmn(content: str) -> etree._Element:
    """Parse BPMN XML with entities, DTDs and the network off (as deploy does); refuse a DOCTYPE."""
    if "<!DOCTYPE" in content.upper():
        raise ValueError("DOCTYPE declarations are not allowed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=False)
    return etree.fromstring(content.encode("utf-8"), parser=parser)


def set_task_form(root: etree._Element, task_id: str, schema_file: str, ui_file: str) -> None:
    """Name the form of the user task *task_id* as spiff-arena writes it.

    ``<spiffworkflow:property name="formJsonSchemaFilename" value="…"/>`` (and
    ``formUiSchemaFilename``) inside the task's ``spiffworkflow:properties`` in
    its ``bpmn:extensionElements``, each made if missing; other properties stay.
    """
    (task,) = root.xpath("//bpmn:userTask[@id=$id]", id=task_id, namespaces={"bpmn": BPMN_NS})
    extensions = task.find(f"{{{BPMN_NS}}}extensionElements")
    if extensions is None:
        extensions = etree.Element(f"{{{BPMN_NS}}}extensionElements")
        documentation = task.find(f"{{{BPMN_NS}}}documentation")
        task.insert(task.index(documentation) + 1 if documentation is not None else 0, extensions)
    properties = extensions.find(f"{{{SPIFF_NS}}}properties")
    if properties is None:
        properties = etree.SubElement(
            extensions, f"{{{SPIFF_NS}}}properties", nsmap={"spiffworkflow": SPIFF_NS}
        )
    for key, value in (("formJsonSchemaFilename", schema_file), ("formUiSchemaFilename", ui_file)):
        found = properties.xpath(
            "spiffworkflow:property[@name=$name]", name=key, namespaces={"spiffworkflow": SPIFF_NS}
        )
        prop = found[0] if found else etree.SubElement(properties, f"{{{SPIFF_NS}}}property")
        prop.set("name", key)
        prop.set("value", value)


def _new_page(process_id: str, task: str, values: Mapping[str, str], error: str | None) -> str:
    return render_template(
        "studio/form_new.html",
        process_id=process_id,
        task=task,
        values=values,
        error=error,
        languages=editor.LANGUAGES,
        language_labels=LANGUAGE_LABELS,
    )


@bp.get("/<process_id>/forms/new")
def new_form(process_id: str) -> str:
    """Ask for the name and title of a new form (for the user task ``task``, if given).

    :raises NotFound: (404) the process is not the organisation's, or it has no user task ``task``.
    """
    _, files = _files(process_id)
    task = request.args.get("task", "")
    if task and _user_task(files, task) is None:
        abort(404)
    return _new_page(process_id, task, {"name": task.lower() if _NEW_NAME.match(task.lower()) else ""}, None)


@bp.post("/<process_id>/forms/new")
def create_form(process_id: str) -> Response | tuple[str, int]:
    """Make ``forms/<name>.schema.json`` and ``forms/<name>.uischema.json`` in the draft.

    With ``task``, the user task of that id also gets the form in the draft's
    BPMN (``formJsonSchemaFilename``, ``formUiSchemaFilename``). Then show the
    new form's editor.

    :raises NotFound: (404) the process is not the organisation's, or it has no user task ``task``.
    """
    _, files = _files(process_id)
    task = request.form.get("task", "")
    found = _user_task(files, task) if task else None
    if task and found is None:
        abort(404)
    stem = request.form.get("name", "").strip()
    values = {
        "name": stem,
        **{f"title.{lang}": request.form.get(f"title.{lang}", "").strip() for lang in editor.LANGUAGES},
    }
    name = f"forms/{stem}{SCHEMA_SUFFIX}"
    error = None
    if not _NEW_NAME.match(stem):
        error = gettext("A form name holds lower-case letters, digits, - and _ (for example approve_order).")
    elif name in files or any(f.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1] for f in files):
        error = gettext("The bundle already has a form %(name)s.", name=name)
    if error:
        return _new_page(process_id, task, values, error), 422
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    editor.write_texts(
        schema, {}, "title", "ui:title", {lang: values[f"title.{lang}"] for lang in editor.LANGUAGES}
    )
    schema["properties"] = {}
    db = db_session()
    draft = engine.studio.open_draft(db, g.organisation.id, process_id, user=g.user.username)
    engine.studio.save_draft_file(db, draft, name, _dumps(schema), user=g.user.username)
    engine.studio.save_draft_file(db, draft, ui_schema_name(name), _dumps({}), user=g.user.username)
    if found is not None:
        bpmn_name, root = found
        set_task_form(root, task, f"{stem}{SCHEMA_SUFFIX}", f"{stem}{UI_SUFFIX}")
        content = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
        engine.studio.save_draft_file(db, draft, bpmn_name, content, user=g.user.username)
    flash(gettext("Form %(name)s made in the draft.", name=name), "success")
    return redirect(url_for("studio.form_editor", process_id=process_id, name=name), code=303)
