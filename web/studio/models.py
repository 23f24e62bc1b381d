"""Studio views: the process models list, drafts, validate and deploy, versions, import and export, try it.

Pages: ``GET /studio/`` (every process the organisation sees, own and shared,
with versions, instances per version and drafts; the import form) and
``GET /studio/<process_id>/versions``. The rest is JSON for the editors
(see the studio contract): a draft's files are read and written one by one
(``PUT`` with the file's text, ``X-CSRFToken`` header), and
validate, deploy-preview, deploy and try act on the whole draft.

JSON errors have one shape, ``{"problems": [Problem, ...]}``: 422 for a
refused file or bundle (with file, line, element, field), 404 for what the
organisation does not see (another organisation's process or draft), 403 for
a shared process that must be customised first, 409 for a stale
``draft_version``. A save may send the draft version its editor loaded as
``If-Match: <n>`` (or ``?draft_version=n``); every answer that changes the
draft gives the new one.

Rights: the blueprint lets only process owners and admins of the signed-in
organisation in; a shared process is read-only for organisations other than
the platform one until "Customise" makes an own draft of it
(:func:`engine.studio.open_draft`).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, flash, g, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response

import engine
import forms

from ..db import db_session
from ..i18n import current_language, time_zone
from ..processes import open_first_task, read_start_submission
from . import bp

F = TypeVar("F", bound=Callable[..., Any])
PROCESS_MODEL_FILE = "process_model.json"


# -- errors as JSON ---------------------------------------------------------------------------------


def problems_response(status: int, problems: list[engine.Problem]) -> tuple[Response, int]:
    """Return the studio's JSON error: ``{"problems": [...]}`` with *status*."""
    return jsonify({"problems": [p.as_dict() for p in problems]}), status


def json_errors(view: F) -> F:
    """Answer the engine's errors in a JSON view as ``{"problems": [...]}`` (see the module docstring)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except engine.DeploymentError as exc:
            return problems_response(422, [exc.problem()])
        except engine.FormValidationError as exc:
            return problems_response(
                422,
                [
                    engine.Problem(message, field="/" + path if path else None)
                    for path, messages in exc.errors.items()
                    for message in messages
                ],
            )
        except engine.NotFoundError as exc:
            return problems_response(404, [engine.Problem(str(exc))])
        except engine.PermissionDeniedError as exc:
            return problems_response(403, [engine.Problem(str(exc))])
        except (engine.ConflictError, engine.InvalidStateError) as exc:
            return problems_response(409, [engine.Problem(str(exc))])

    return wrapped  # type: ignore[return-value]


# -- what the organisation sees ---------------------------------------------------------------------


def _organisation_id() -> int:
    organisation_id: int = g.organisation.id
    return organisation_id


def _username() -> str:
    username: str = g.user.username
    return username


def bundle_files(process_id: str) -> tuple[engine.studio.ProcessDraft | None, list[engine.BundleFile]]:
    """Return the organisation's draft of *process_id* and its files, else the running version's files.

    :raises NotFoundError: the organisation neither drafts nor runs such a process (also for
        another organisation's own process).
    """
    session = db_session()
    draft = engine.studio.find_draft(session, _organisation_id(), process_id)
    if draft is not None:
        return draft, engine.studio.draft_files(session, draft)
    running = engine.studio.running_definition(session, _organisation_id(), process_id)
    if running is None:
        raise engine.NotFoundError(f"No process {process_id!r} in this organisation's studio")
    return None, engine.studio.files_of_version(session, running)


def _draft(process_id: str) -> engine.studio.ProcessDraft:
    """Return the organisation's draft of *process_id*, made from the running version on first use."""
    return engine.studio.open_draft(db_session(), _organisation_id(), process_id, user=_username())


def _existing_draft(process_id: str) -> engine.studio.ProcessDraft:
    draft = engine.studio.find_draft(db_session(), _organisation_id(), process_id)
    if draft is None:
        raise engine.NotFoundError(f"This organisation has no draft of {process_id!r}")
    return draft


def _draft_version() -> int | None:
    """The draft version the editor loaded, from ``If-Match`` or ``?draft_version=``; ``None``: not sent."""
    raw = request.headers.get("If-Match") or request.args.get("draft_version")
    if not raw or raw.strip() == "*":
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise engine.ConflictError(f"If-Match must be the draft version, a number, not {raw!r}")
    return int(text)


def _version(process_id: str, version: int, shared: bool | None) -> engine.ProcessDefinition:
    """Return deployed version *version* of *process_id* that the organisation sees.

    ``shared=None`` means the organisation's own line if it has one, else the shared one.
    """
    model = _model(process_id)
    line = [v for v in model.versions if shared is None or v.shared == shared]
    if shared is None and model.own_versions:
        line = model.own_versions
    found = next((v for v in line if v.version == version), None)
    if found is None:
        raise engine.NotFoundError(f"No version {version} of {process_id!r}")
    definition = db_session().get(engine.ProcessDefinition, found.definition_id)
    assert definition is not None
    return definition


def _model(process_id: str) -> engine.studio.ProcessModel:
    found = engine.studio.process_models(db_session(), _organisation_id(), process_id=process_id)
    if not found:
        raise engine.NotFoundError(f"No process {process_id!r} in this organisation's studio")
    return found[0]


def _shared_arg() -> bool | None:
    value = request.args.get("shared")
    return None if value is None else value in ("1", "true", "yes")


def _file_url(process_id: str, name: str) -> str:
    return url_for("studio.file_text", process_id=process_id, name=name)


def _version_file_url(process_id: str, version: engine.studio.VersionSummary, name: str) -> str:
    return url_for(
        "studio.version_file",
        process_id=process_id,
        version=version.version,
        name=name,
        shared=1 if version.shared else None,
    )


# -- pages ------------------------------------------------------------------------------------------


@bp.get("/")
def process_models() -> str:
    """The process models list: own and shared processes, versions, instances, drafts; the import form."""
    session = db_session()
    return render_template(
        "studio/list.html",
        models=engine.studio.process_models(session, _organisation_id()),
        may_edit_shared=engine.studio.may_edit_shared(session, _organisation_id()),
        import_problems=g.get("import_problems", []),
    )


@bp.get("/<process_id>/versions")
def versions(process_id: str) -> str:
    """The versions of *process_id*: who deployed each and when, instances on each, export links.

    :raises NotFound: (404) the organisation neither runs nor drafts such a process.
    """
    try:
        model = _model(process_id)
    except engine.NotFoundError:
        abort(404)
    session = db_session()
    return render_template(
        "studio/versions.html",
        model=model,
        may_edit_shared=engine.studio.may_edit_shared(session, _organisation_id()),
    )


# -- a draft's files --------------------------------------------------------------------------------


@bp.get("/<process_id>/files")
@json_errors
def files(process_id: str) -> Response:
    """JSON list of the draft's files (else the running version's): name, kind and URL of each."""
    draft, items = bundle_files(process_id)
    return jsonify(
        {
            "draft": draft is not None,
            "draft_version": draft.lock_version if draft is not None else None,
            "files": [{"name": f.name, "kind": f.kind, "url": _file_url(process_id, f.name)} for f in items],
        }
    )


@bp.get("/<process_id>/files/<path:name>")
@json_errors
def file_text(process_id: str, name: str) -> Response:
    """The text of one file of the draft (else of the running version).

    :raises NotFound: (404) no such process or file.
    """
    draft, items = bundle_files(process_id)
    found = next((f for f in items if f.name == name), None)
    if found is None:
        raise engine.NotFoundError(f"No file {name!r} in {process_id!r}")
    response = Response(found.content, mimetype=_mimetype(found.kind))
    if draft is not None:
        response.headers["ETag"] = f'"{draft.lock_version}"'
    return response


@bp.put("/<process_id>/files/<path:name>")
@json_errors
def save_file(process_id: str, name: str) -> tuple[Response, int] | Response:
    """Save one file of the draft (made on first save); the body is the file's text.

    Answers ``{"saved": name, "draft_version": n}``; 422 naming the file for a
    refused name, size or text; 409 for a stale ``If-Match``; 403 for a shared
    process not customised.
    """
    try:
        content = request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise engine.DeploymentError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=name
        ) from None
    engine.studio.check_file_name(name)
    draft = _draft(process_id)
    engine.studio.save_draft_file(
        db_session(), draft, name, content, user=_username(), draft_version=_draft_version()
    )
    return jsonify({"saved": name, "draft_version": draft.lock_version})


@bp.delete("/<process_id>/files/<path:name>")
@json_errors
def delete_file(process_id: str, name: str) -> Response:
    """Remove one file from the draft; answers ``{"deleted": name, "draft_version": n}``."""
    draft = _draft(process_id)
    engine.studio.delete_draft_file(
        db_session(), draft, name, user=_username(), draft_version=_draft_version()
    )
    return jsonify({"deleted": name, "draft_version": draft.lock_version})


# -- validate, deploy, try --------------------------------------------------------------------------


@bp.post("/<process_id>/validate")
@json_errors
def validate(process_id: str) -> Response:
    """``{"problems": [...]}``: what a deploy of the draft (else of the running version) would say."""
    session = db_session()
    draft = engine.studio.find_draft(session, _organisation_id(), process_id)
    if draft is None:
        running = engine.studio.running_definition(session, _organisation_id(), process_id)
        if running is None:
            raise engine.NotFoundError(f"No process {process_id!r} in this organisation's studio")
        problems = engine.studio.validate_version(session, running)
        return jsonify({"problems": [p.as_dict() for p in problems]})
    return jsonify({"problems": [p.as_dict() for p in engine.studio.validate_draft(session, draft)]})


@bp.get("/<process_id>/deploy-preview")
@json_errors
def deploy_preview(process_id: str) -> Response:
    """What a deploy would replace: the running version and its files, instances that stay, the target.

    ``instances_staying`` counts, by version, the running instances of the
    target line (own versions, or the shared ones) that keep their version;
    for the platform organisation's shared deploys, those of every organisation.
    ``instances_staying_shared``: for an own deploy, the organisation's cases on shared versions.
    """
    session = db_session()
    organisation_id = _organisation_id()
    draft = engine.studio.find_draft(session, organisation_id, process_id)
    model = _model(process_id)
    target = engine.studio.deploy_target_of(session, organisation_id, process_id)
    running = model.runs
    running_json = None
    if running is not None:
        definition = session.get(engine.ProcessDefinition, running.definition_id)
        assert definition is not None
        running_json = {
            "version": running.version,
            "shared": running.shared,
            "files": {
                f.name: _version_file_url(process_id, running, f.name)
                for f in engine.studio.files_of_version(session, definition)
            },
        }
    staying = engine.studio.running_by_version(
        session,
        process_id,
        organisation_id=None if target.shared else organisation_id,
        shared=target.shared,
    )
    base = (
        session.get(engine.ProcessDefinition, draft.base_definition_id)
        if draft and draft.base_definition_id
        else None
    )
    return jsonify(
        {
            "running": running_json,
            "instances_staying": {str(version): count for version, count in staying.items()},
            # An own version's first deploy (customise): the organisation's cases on shared versions stay too.
            "instances_staying_shared": {
                str(version): count
                for version, count in engine.studio.running_by_version(
                    session, process_id, organisation_id=organisation_id, shared=True
                ).items()
            }
            if not target.shared
            else {},
            "target": "shared" if target.shared else "own",
            "draft_version": draft.lock_version if draft is not None else None,
            "base_version": (
                {"version": base.version, "shared": base.organisation_id is None}
                if base is not None
                else None
            ),
        }
    )


@bp.post("/<process_id>/deploy")
@json_errors
def deploy(process_id: str) -> Response:
    """Deploy the draft: ``{"deployed": [{"process_id", "version", "changed", "shared"}]}``, or 422.

    With ``If-Match`` (or ``?draft_version=``), a draft saved meanwhile is refused (409).
    """
    draft = _existing_draft(process_id)
    expected = _draft_version()
    if expected is not None and expected != draft.lock_version:
        raise engine.ConflictError(
            f"The draft of {process_id!r} was saved meanwhile (version {draft.lock_version}); reload it"
        )
    deployed = engine.studio.deploy_draft(db_session(), draft, user=_username())
    return jsonify(
        {
            "deployed": [
                {
                    "process_id": d.process_id,
                    "version": d.version,
                    "changed": d.changed,
                    "shared": d.organisation is None,
                }
                for d in deployed
            ]
        }
    )


@bp.post("/<process_id>/try")
def try_draft(process_id: str) -> Any:
    """Start a test instance of the draft.

    As JSON (the modeler): ``{"instance_url": "/instances/N"}``; a body
    ``{"data": {...}}`` is the start form's data, and without valid data a
    process with a start form answers 422 with the form's problems and
    ``start_form_url``, the page that asks for them. As a form post (that
    page): the case opens, or the form comes back with its messages (422).
    """
    if not request.is_json:
        return _try_with_form(process_id)
    return _try_json(process_id)


@json_errors
def _try_json(process_id: str) -> Response | tuple[Response, int]:
    body = request.get_json(silent=True) or {}
    data = body.get("data") if isinstance(body, dict) else None
    if data is not None and not isinstance(data, dict):
        raise engine.DeploymentError("'data' must be a JSON object of the start form's fields")
    draft = _draft(process_id)
    try:
        instance = engine.studio.start_test_instance(db_session(), draft, user=_username(), data=data)
    except engine.FormValidationError as exc:
        problems = [
            engine.Problem(message, field="/" + path if path else None).as_dict()
            for path, messages in exc.errors.items()
            for message in messages
        ]
        start_form_url = url_for("studio.try_page", process_id=process_id)
        return jsonify({"problems": problems, "start_form_url": start_form_url}), 422
    return jsonify({"instance_url": url_for("instances.instance", instance_id=instance.id)})


@bp.get("/<process_id>/try")
def try_page(process_id: str) -> str:
    """The start form of the draft (else of the running version), to start a test case with.

    :raises NotFound: (404) the organisation neither runs nor drafts such a process.
    """
    session = db_session()
    draft = engine.studio.find_draft(session, _organisation_id(), process_id)
    if draft is None:
        running = engine.studio.running_definition(session, _organisation_id(), process_id)
        if running is None:
            abort(404)
        if running.organisation_id is None and not engine.studio.may_edit_shared(session, _organisation_id()):
            return _render_try(process_id, None, read_only=True)
        return _render_try(process_id, None, start_form=engine.start_form(session, running))
    return _render_try(process_id, draft)


def _render_try(
    process_id: str,
    draft: engine.studio.ProcessDraft | None,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    start_form: tuple[dict[str, Any], dict[str, Any] | None] | None = None,
    read_only: bool = False,
) -> str:
    problems: list[engine.Problem] = []
    if draft is not None:
        try:
            start_form = engine.studio.draft_start_form(db_session(), draft)
        except engine.DeploymentError as exc:
            problems = [exc.problem()]
    form_html = None
    if start_form is not None:
        form = forms.build_form(
            start_form[0],
            start_form[1],
            values=values,
            errors=errors,
            locale=current_language(),
            time_zone=time_zone(),
        )
        form_html = Markup(forms.render_fields(form, gettext=_, attachments={}))
    return render_template(
        "studio/try.html",
        process_id=process_id,
        read_only=read_only,
        form_html=form_html,
        problems=problems,
        has_errors=bool(errors),
    )


def _try_with_form(process_id: str) -> Any:
    session = db_session()
    draft = _draft(process_id)
    try:
        start_form = engine.studio.draft_start_form(session, draft)
    except engine.DeploymentError:
        return _render_try(process_id, draft), 422  # the page names the problem
    data, response = read_start_submission(start_form, lambda **page: _render_try(process_id, draft, **page))
    if response is not None:
        return response
    instance = engine.studio.start_test_instance(session, draft, user=_username(), data=data)
    return open_first_task(session, instance)


@bp.post("/<process_id>/customise")
def customise(process_id: str) -> Response:
    """Make the organisation's own draft of a shared process, and open it in the modeler.

    :raises NotFound: (404) the organisation does not see such a process.
    """
    try:
        engine.studio.open_draft(
            db_session(), _organisation_id(), process_id, user=_username(), customise=True
        )
    except engine.NotFoundError:
        abort(404)
    return redirect(url_for("studio.modeler", process_id=process_id), code=303)


@bp.post("/<process_id>/discard")
def discard(process_id: str) -> Response:
    """Throw the organisation's draft of *process_id* away (what is deployed stays), back to the list.

    :raises NotFound: (404) the organisation has no such draft.
    """
    session = db_session()
    draft = engine.studio.find_draft(session, _organisation_id(), process_id)
    if draft is None:
        abort(404)
    engine.studio.delete_draft(session, draft)
    flash(_("The draft of %(process)s was discarded.", process=process_id))
    return redirect(url_for("studio.process_models"), code=303)


# -- versions, import and export --------------------------------------------------------------------


@bp.get("/<process_id>/versions/<int:version>/files/<path:name>")
@json_errors
def version_file(process_id: str, version: int, name: str) -> Response:
    """The text of one file of a deployed version (``?shared=1`` for the shared line)."""
    definition = _version(process_id, version, _shared_arg())
    found = next(
        (f for f in engine.studio.files_of_version(db_session(), definition) if f.name == name), None
    )
    if found is None:
        raise engine.NotFoundError(f"No file {name!r} in version {version} of {process_id!r}")
    return Response(found.content, mimetype=_mimetype(found.kind))


@bp.get("/<process_id>/export")
def export(process_id: str) -> Response:
    """A zip of a deployed version (``?version=N``, ``&shared=1``), else of the draft or the running version.

    The zip holds the bundle's files and spiff-arena's ``process_model.json``,
    so that it imports here and in spiff-arena alike.

    :raises NotFound: (404) no such process or version.
    """
    session = db_session()
    try:
        model = _model(process_id)
        version = request.args.get("version", type=int)
        if version is not None:
            definition = _version(process_id, version, _shared_arg())
            items, label = engine.studio.files_of_version(session, definition), f"v{version}"
        else:
            draft, items = bundle_files(process_id)
            label = "draft" if draft is not None else f"v{model.runs.version}" if model.runs else "draft"
    except engine.NotFoundError:
        abort(404)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in items:
            archive.writestr(f"{process_id}/{item.name}", item.content)
        archive.writestr(f"{process_id}/{PROCESS_MODEL_FILE}", _process_model_json(model, items))
    buffer.seek(0)
    return send_file(
        buffer, mimetype="application/zip", as_attachment=True, download_name=f"{process_id}-{label}.zip"
    )


def _process_model_json(model: engine.studio.ProcessModel, items: list[engine.BundleFile]) -> str:
    primary = next(
        (f.name for f in items if f.kind == "bpmn" and model.process_id in f.content),
        next((f.name for f in items if f.kind == "bpmn"), ""),
    )
    return json.dumps(
        {
            "display_name": model.name,
            "description": "",
            "primary_file_name": primary,
            "primary_process_id": model.process_id,
            "files": [],
        },
        indent=2,
        ensure_ascii=False,
    )


@bp.post("/import")
def import_bundle() -> Response | tuple[str, int]:
    """Make a draft from an uploaded zip (``bundle``) or folder (``files``, with their relative paths).

    The draft is the organisation's, for the bundle's primary process, and
    replaces a draft it had of it; the modeler opens on it. A refused upload
    is shown on the list page with the file and line (422).
    """
    session = db_session()
    try:
        upload = request.files.get("bundle")
        folder = [f for f in request.files.getlist("files") if f.filename]
        if upload is not None and upload.filename:
            imported = engine.bundle_import.read_zip(upload.read())
        elif folder:
            imported = engine.bundle_import.read_uploaded_files(
                [(f.filename or "", f.read()) for f in folder]
            )
        else:
            raise engine.DeploymentError(_("Choose a zip file or a folder to import."))
        process_id = imported.process_id or engine.studio.primary_process_id(imported.files)
        # Of a shared process, the import is the organisation's own (customised) draft of it.
        running = engine.studio.running_definition(session, _organisation_id(), process_id)
        engine.studio.create_draft(
            session, _organisation_id(), process_id, imported.files, user=_username(), base=running
        )
    except engine.DeploymentError as exc:
        g.import_problems = [exc.problem()]
        return process_models(), 422
    for warning in imported.warnings:
        flash(
            _("Import: %(where)s: %(message)s", where=warning.where() or "-", message=warning.message),
            "warning",
        )
    return redirect(url_for("studio.modeler", process_id=process_id), code=303)


def _mimetype(kind: str) -> str:
    return "application/json" if kind == "form" else "application/xml"
