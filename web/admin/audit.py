"""Admin console: the audit log of admin actions, filtered by who, what and when, and its CSV export.

It lists the organisation's ``admin.*`` events (every change made in the
console or with the command line) and the actions taken on its instances
(suspended, resumed, cancelled, retried, reset, data changed), newest first,
a page at a time (cut in SQL by event id).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zoneinfo
from collections.abc import Iterator
from typing import Any

from flask import Response, g, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import engine

from ..db import db_session
from ..i18n import time_zone
from . import bp

# What each kind of event means, as the page shows it. A kind not listed is shown by its name.
KIND_LABELS = {
    "suspended": _l("Case suspended"),
    "resumed": _l("Case resumed"),
    "cancelled": _l("Case cancelled"),
    "retried": _l("Case retried"),
    "reset": _l("Case reset"),
    "data_changed": _l("Case data changed"),
    "admin.settings_changed": _l("Organisation settings changed"),
    "admin.user_added": _l("User added"),
    "admin.user_changed": _l("User details changed"),
    "admin.user_deactivated": _l("User deactivated"),
    "admin.user_reactivated": _l("User reactivated"),
    "admin.roles_changed": _l("Roles changed"),
    "admin.groups_changed": _l("Group memberships changed"),
    "admin.password_link_issued": _l("Password link issued"),
    "admin.password_set": _l("Password set with a link"),
    "admin.group_added": _l("Group added"),
    "admin.group_changed": _l("Group changed"),
    "admin.group_deleted": _l("Group deleted"),
    "admin.parameter_set": _l("Parameter value recorded"),
    "admin.parameter_uses_shared": _l("Parameter back to the shared value"),
    "admin.process_uses_shared": _l("Process back to the shared version"),
    "admin.process_uses_own": _l("Process on the organisation's own version"),
    "admin.incident_retried": _l("Incident retried"),
    "admin.instance_data_set": _l("Case data set by an administrator"),
    "admin.instance_reset": _l("Case reset by an administrator"),
    "admin.instance_migrated": _l("Case moved to another version"),
    "admin.sso_membership_synced": _l("Roles and groups taken from single sign-on"),
}

# What the target of an event is, by its first word ("user alice", "instance 12"...).
TARGET_LABELS = {
    "user": _l("User %(name)s"),
    "group": _l("Group %(name)s"),
    "parameter": _l("Parameter %(name)s"),
    "process": _l("Process %(name)s"),
    "instance": _l("Case %(name)s"),
    "organisation": _l("Organisation %(name)s"),
}

# What the values before and after an action are, by their key (others are shown as they are).
FIELD_LABELS = {
    "name": _l("Name"),
    "organisation_number": _l("Organisation number"),
    "country": _l("Country"),
    "currency": _l("Currency"),
    "time_zone": _l("Time zone"),
    "default_language": _l("Default language"),
    "display_name": _l("Name"),
    "email": _l("E-mail address"),
    "roles": _l("Roles"),
    "groups": _l("Groups"),
    "names": _l("Names"),
    "active": _l("Active"),
    "status": _l("Status"),
    "error": _l("Error"),
    "note": _l("Note"),
    "value": _l("Value"),
    "valid_from": _l("Valid from"),
    "valid_to": _l("Valid to"),
    "uses_shared": _l("Uses the shared value"),
    "use_shared": _l("Uses the shared version"),
    "new_cases": _l("New cases start on"),
    "version": _l("Version"),
    "process_id": _l("Process"),
    "to": _l("Back to the step"),
    "data": _l("Data"),
    "due_at": _l("Due"),
    "expires_at": _l("Expires"),
    "emailed_to": _l("E-mailed to"),
    "released_tasks": _l("Tasks returned to their groups"),
    "with_link_made_by": _l("With a link made by"),
}

# The CSV export's columns.
CSV_COLUMNS = ("when", "who", "what", "target", "before", "after")


def kind_label(kind: str) -> str:
    """Return what an event of *kind* means, in the user's language (else the kind, readable)."""
    label = KIND_LABELS.get(kind)
    if label is not None:
        return str(label)
    return kind.removeprefix(engine.ADMIN_KIND_PREFIX).replace("_", " ").capitalize()


def target_label(target: str) -> str:
    """Return the target of an event in the user's language (``user alice`` → "Användare alice")."""
    word, _space, name = target.partition(" ")
    label = TARGET_LABELS.get(word)
    return str(label) % {"name": name} if label is not None and name else target


def field_label(key: str) -> str:
    """Return what the value *key* of an action's before and after is, in the user's language."""
    label = FIELD_LABELS.get(key)
    return str(label) if label is not None else key.replace("_", " ")


def _read_filter(args: Any) -> tuple[engine.AuditFilter, dict[str, str]]:
    """Return the filter the query *args* ask for, and a message per field that is wrong."""
    errors: dict[str, str] = {}
    days: dict[str, dt.date | None] = {}
    for field in ("since", "until"):
        text = args.get(field, "").strip()
        days[field] = None
        if text:
            try:
                days[field] = dt.date.fromisoformat(text)
            except ValueError:
                errors[field] = _("“%(value)s” is not a date (YYYY-MM-DD).", value=text)
    since, until = days["since"], days["until"]
    if since is not None and until is not None and since > until:
        errors["until"] = _("The period ends before it starts.")
        until = None
    kind = args.get("kind", "").strip() or None
    if kind is not None and not engine.is_admin_kind(kind):
        errors["kind"] = _("“%(value)s” is not a kind of admin action.", value=kind)
        kind = None
    actor = args.get("actor", "").strip() or None
    return engine.AuditFilter(actor=actor, kind=kind, since=since, until=until), errors


def _cursor(args: Any, name: str, errors: dict[str, str]) -> int | None:
    text = args.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        errors[name] = _("The page link is broken: start again from the newest entries.")
        return None
    return int(text)


def _filter_args(where: engine.AuditFilter) -> dict[str, Any]:
    """The query arguments that repeat *where* (for the paging and CSV links)."""
    found = {
        "actor": where.actor or "",
        "kind": where.kind or "",
        "since": where.since.isoformat() if where.since else "",
        "until": where.until.isoformat() if where.until else "",
    }
    return {key: value for key, value in found.items() if value}


def shown_value(value: Any) -> str:
    """Return a before/after value as compact JSON text ("" for none)."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


@bp.route("/audit")
def audit() -> tuple[str, int] | str:
    """Show a page of admin actions, newest first, filtered by ``actor``, ``kind``, ``since`` and ``until``.

    Query arguments: ``actor`` (a username), ``kind`` (``admin.user_added``,
    ``suspended``...), ``since`` and ``until`` (days, YYYY-MM-DD, in the
    organisation's time zone, inclusive), ``before`` / ``after`` (an event id:
    the page of older / newer entries).

    :returns: 422 and the page with a message beside each wrong filter field
        (the entries then ignore that field).
    """
    session = db_session()
    kinds = engine.admin_audit_kinds(session, g.organisation.id)
    where, errors = _read_filter(request.args)
    before = _cursor(request.args, "before", errors)
    after = _cursor(request.args, "after", errors) if before is None else None
    page = engine.admin_audit_page(
        session, g.organisation.id, where, time_zone=time_zone(), before=before, after=after
    )
    filter_args = _filter_args(where)
    body = render_template(
        "admin/audit.html",
        page=page,
        kinds=[(kind, kind_label(kind)) for kind in kinds],
        where=where,
        values={field: request.args.get(field, "") for field in ("actor", "kind", "since", "until")},
        errors=errors,
        kind_label=kind_label,
        target_label=target_label,
        field_label=field_label,
        shown_value=shown_value,
        older_url=url_for("admin.audit", before=page.older, **filter_args) if page.older else None,
        newer_url=url_for("admin.audit", after=page.newer, **filter_args) if page.newer else None,
        newest_url=url_for("admin.audit", **filter_args) if (before or after) else None,
        csv_url=url_for("admin.audit_csv", **filter_args),
    )
    return (body, 422) if errors else body


def _csv_cell(text: str) -> str:
    # A spreadsheet runs a cell that starts like a formula: keep it text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(where: engine.AuditFilter, zone: str) -> Iterator[str]:
    local = zoneinfo.ZoneInfo(zone)
    out = io.StringIO()
    writer = csv.writer(out)
    # The byte order mark makes spreadsheets read the file as UTF-8 (å, ä, ö).
    yield "\ufeff"
    writer.writerow(CSV_COLUMNS)
    for entry in engine.admin_audit_entries(db_session(), g.organisation.id, where, time_zone=zone):
        writer.writerow(
            [
                entry.at.astimezone(local).isoformat(timespec="seconds"),
                _csv_cell(entry.actor or ""),
                entry.kind,
                _csv_cell(entry.target),
                _csv_cell(shown_value(entry.before)),
                _csv_cell(shown_value(entry.after)),
            ]
        )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


@bp.route("/audit.csv")
def audit_csv() -> Response | tuple[str, int] | str:
    """Download the filtered admin actions as CSV: when, who, what, target, before, after (JSON).

    Takes the filter arguments of :func:`audit`; times are in the
    organisation's time zone with their offset.

    :returns: 422 and the audit page with the messages when a filter field is wrong.
    """
    where, errors = _read_filter(request.args)
    if errors:
        return audit()
    zone = time_zone()
    today = dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
    filename = f"audit-{g.organisation.key}-{today.isoformat()}.csv"
    return Response(
        stream_with_context(_csv_lines(where, zone)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
