"""Admin console: moving running cases to another version of their process, dry run first.

The admin chooses a process, the version its cases are on and the version to
move them to (the organisation's own versions; the platform organisation's
admins also the shared ones, whose cases run in every organisation). The dry
run lists each case with where it is and whether it can move, or why not
(:mod:`engine.instance_migration`); the admin then moves the movable ones,
each in its own transaction, checked again and refused if it changed since
the dry run. The result is shown on the page (``?moved=...&refused=...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

import engine

from ..db import database, db_session
from ..i18n import current_language
from . import bp

# The reasons the dry run gives, in the user's language (see engine/instance_migration.py).
REASONS = {
    "status": _l(
        "Its status is “%(status)s”: only running or waiting cases move (resume or repair it first)."
    ),
    "element_removed": _l("Its open step “%(element)s” does not exist in version %(version)s."),
    "subprocess_removed": _l("Its subprocess “%(element)s” does not exist in version %(version)s."),
    "type_changed": _l(
        "Its open step “%(element)s” is of another kind in version %(version)s (%(old)s → %(new)s)."
    ),
    "history_removed": _l("It has passed the step “%(element)s”, which version %(version)s does not have."),
    "event_changed": _l(
        "Its waiting event “%(element)s” waits for %(old)s, in version %(version)s for %(new)s."
    ),
    "form_removed": _l("The form of its open step “%(element)s” is not in version %(version)s."),
    "form_type_changed": _l(
        "The field %(field)s of its open step “%(element)s” changes type in version %(version)s "
        "(%(old)s → %(new)s)."
    ),
    "form_required_added": _l(
        "The field %(field)s of its open step “%(element)s” is required in version %(version)s, "
        "has no default and the case has no value for it."
    ),
    "not_restorable": _l("Its state cannot be moved to version %(version)s: %(error)s"),
    "other_organisation": _l("Version %(version)s belongs to another organisation."),
    "changed": _l("It changed after the dry run; run the dry run again."),
    "not_on_source": _l("It is no longer on version %(from_version)s."),
    "failed": _l("Moving it failed: %(error)s"),
}
STATUSES = {
    "running": _l("Running"),
    "waiting": _l("Waiting"),
    "suspended": _l("Suspended"),
    "error": _l("Error"),
}


def _is_platform() -> bool:
    return bool(g.organisation.is_platform)


def _versions() -> list[engine.ProcessDefinition]:
    return engine.migration_versions(db_session(), g.organisation.id, include_shared=_is_platform())


def version_label(definition: engine.ProcessDefinition) -> str:
    """``Version 2`` for an own version, ``Version 3 (shared)`` for a shared one."""
    if definition.organisation_id is None:
        return _("Version %(version)s (shared)", version=definition.version)
    return _("Version %(version)s", version=definition.version)


def _process_label(definition: engine.ProcessDefinition) -> str:
    default = definition.name or definition.process_id
    return engine.translated(definition.translated_names, definition.process_id, current_language(), default)


def _chosen(
    versions: list[engine.ProcessDefinition], args: Mapping[str, str], name: str
) -> engine.ProcessDefinition | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    if not text.isdigit():
        abort(404)
    found = next((d for d in versions if d.id == int(text)), None)
    if found is None:
        abort(404)  # another organisation's version, or shared for a non-platform admin
    return found


def reason_text(refusal: engine.MigrationRefusal, names: Mapping[str, str]) -> str:
    """The refusal in the user's language, its element by name."""
    params: dict[str, Any] = {k: v for k, v in refusal.params.items()}
    if "element" in params:
        params["element"] = names.get(str(params["element"]), str(params["element"]))
    if "field" in params:
        titles = params.get("titles") or {}
        title = titles.get(current_language()) or params.get("title")
        params["field"] = f"{title} ({params['field']})" if title else params["field"]
    if "status" in params:
        params["status"] = STATUSES.get(str(params["status"]), params["status"])
    for key in ("version", "from_version", "old", "new", "field", "error"):
        params.setdefault(key, "?")
    template = REASONS.get(refusal.code)
    return str(template) % params if template is not None else refusal.message


def _element_names(definition: engine.ProcessDefinition) -> dict[str, str]:
    names = engine.element_names(db_session(), definition)
    language = current_language()
    ids = set(names) | set(definition.translated_names or {})
    return {i: engine.translated(definition.translated_names, i, language, names.get(i, i)) for i in ids}


@bp.route("/migrations")
def migrations() -> str:
    """Choose process and versions; with both versions chosen, the dry run table."""
    versions = _versions()
    processes: dict[str, str] = {}
    for definition in versions:
        processes.setdefault(definition.process_id, _process_label(definition))
    process_id = (request.args.get("process") or "").strip() or None
    if process_id is not None and process_id not in processes:
        abort(404)
    source = _chosen(versions, request.args, "from")
    target = _chosen(versions, request.args, "to")
    if source is not None:
        process_id = source.process_id
    choices = [d for d in versions if d.process_id == process_id] if process_id else []
    errors: dict[str, str] = {}
    plan: engine.MigrationPlan | None = None
    names: dict[str, str] = {}
    if source is not None and target is not None:
        try:
            engine.check_migration_pair(source, target)
        except engine.DataError as exc:
            errors["to"] = (
                _("The cases are on that version already: choose another one.")
                if source.id == target.id
                else str(exc)
            )
        else:
            scope = (
                None
                if source.organisation_id is None and target.organisation_id is None
                else g.organisation.id
            )
            plan = engine.plan_migration(db_session(), source, target, organisation_id=scope)
            names = _element_names(source)
    elif request.args.get("dry_run") and (source is None or target is None):
        for name, chosen in (("from", source), ("to", target)):
            if chosen is None:
                errors[name] = _("Choose a version.")
    moved = _ids(request.args.get("moved"))
    refused = _ids(request.args.get("refused"))
    status = 422 if errors else 200
    return render_template(
        "admin/migrations.html",
        processes=sorted(processes.items(), key=lambda item: item[1].lower()),
        process_id=process_id,
        choices=choices,
        source=source,
        target=target,
        plan=plan,
        names=names,
        errors=errors,
        moved=moved,
        refused=refused,
        version_label=version_label,
        reason_text=reason_text,
        status_label=lambda s: STATUSES.get(s, s),
        shared_scope=plan is not None
        and plan.source.organisation_id is None
        and plan.target.organisation_id is None,
    ), status  # type: ignore[return-value]


def _ids(text: str | None) -> list[int]:
    return [int(part) for part in (text or "").split(",") if part.isdigit()]


@bp.route("/migrations", methods=["POST"])
def migrations_run() -> Response:
    """Move the cases of the dry run that could move; each checked again in its own transaction."""
    form = request.form
    # Each case moves in a transaction of its own (engine.migrate_instances). The request's
    # session has only read (signing in); end its transaction now: on SQLite it holds the
    # write lock from its start, which every move must take. Nothing else uses it here.
    db_session().commit()
    with database().reading_session_factory() as session:
        versions = engine.migration_versions(session, g.organisation.id, include_shared=_is_platform())
        source = _chosen(versions, form, "from")
        target = _chosen(versions, form, "to")
        if source is None or target is None:
            abort(404)
        source_id, target_id, process_id = source.id, target.id, source.process_id
        shared = source.organisation_id is None and target.organisation_id is None
    expected: dict[int, int] = {}
    for item in form.getlist("instance"):
        instance_id, _sep, version = item.partition(":")
        if instance_id.isdigit() and version.isdigit():
            expected[int(instance_id)] = int(version)
    try:
        result = engine.migrate_instances(
            database().session_factory,
            source_id=source_id,
            target_id=target_id,
            actor=g.user.username,
            organisation_id=None if shared else g.organisation.id,
            instance_ids=sorted(expected),
            expected_versions=expected,
        )
    except (engine.DataError, engine.NotFoundError):
        abort(404)
    return redirect(
        url_for(
            "admin.migrations",
            process=process_id,
            **{"from": source_id, "to": target_id},
            moved=",".join(map(str, result.migrated)) or None,
            refused=",".join(str(i) for i, _r in result.refused) or None,
            done=1,
        )
    )
