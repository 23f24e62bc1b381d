"""The case list (/cases): my cases, and every case of the organisation for admins and auditors.

Reads the reporting projection through :func:`engine.cases.case_page` (filters,
sorting and keyset paging in SQL). It shows no total of the matching cases (a
count reads all of them, however few a page shows): a page says which rows it
shows and whether there are more ("Cases 1-50 of more than 50"); a list of one
page, how many cases it has.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _

import engine

from .auth import require_login, roles
from .db import db_session

bp = Blueprint("cases", __name__)
bp.before_request(require_login)

# Who may list every case of the organisation, not only their own.
SEE_ALL_ROLES = frozenset({"admin", "auditor"})
CASE_VIEWS = ("mine", "all")


def may_see_all_cases() -> bool:
    """Tell whether the signed-in member may list every case of the organisation."""
    return bool(roles() & SEE_ALL_ROLES)


def _default_view() -> str:
    # Who works on no tasks (an auditor) has no cases of their own to follow.
    return "all" if may_see_all_cases() and not roles() & engine.TASK_ROLES else "mine"


def _date(name: str, label: str, errors: dict[str, str]) -> dt.date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors[name] = _("%(field)s: %(value)s is not a date (YYYY-MM-DD).", field=label, value=raw[:40])
        return None


@bp.route("/cases")
def case_list() -> tuple[str, int]:
    """List the organisation's cases: the user's own ("my cases") or, for admins and auditors, all.

    Query parameters: ``view`` (mine, all), ``process``, ``status`` (open or a
    case status), ``from`` and ``to`` (start dates, YYYY-MM-DD, inclusive),
    ``q`` (text: title, business key, the fields each process declares
    searchable, or the case number), ``sort`` (one of ``CASE_SORTS``) and
    ``after`` (the cursor of the page before).

    :raises BadRequest: (400) a cursor that is not one or not for this sort; a
        date that is not one, or a period that ends before it starts, shows the
        page with the message beside the field (also 400).
    """
    view = request.args.get("view") or _default_view()
    if view not in CASE_VIEWS or (view == "all" and not may_see_all_cases()):
        view = "mine"
    sort = request.args.get("sort", "-started")
    sort = sort if sort in engine.cases.CASE_SORTS else "-started"
    status = request.args.get("status", "")
    status = status if status == "open" or status in engine.cases.CASE_STATUSES else ""
    errors: dict[str, str] = {}
    started_from = _date("from", _("Started from"), errors)
    started_to = _date("to", _("Started until"), errors)
    if started_from and started_to and started_to < started_from:
        errors["to"] = _("The period ends before it starts.")
    values = {
        "process": request.args.get("process", ""),
        "status": status,
        "from": request.args.get("from", "").strip(),
        "to": request.args.get("to", "").strip(),
        "q": request.args.get("q", "").strip(),
    }
    context = {
        "view": view,
        "sort": sort,
        "values": values,
        "errors": errors,
        "may_see_all": may_see_all_cases(),
        # The filter as page links carry it on (empty ones left out).
        "filter_args": {key: value for key, value in values.items() if value},
        "filtered": any(values.values()),
        "page": None,
    }
    if errors:
        return render_template("cases/list.html", **context), 400
    where = engine.cases.CaseFilter(
        process_id=values["process"] or None,
        status=status or None,
        started_from=started_from,
        started_to=started_to,
        text=values["q"] or None,
        participant_id=g.user.id if view == "mine" else None,
    )
    db = db_session()
    context["page"] = engine.cases.case_page(
        db,
        organisation_id=g.organisation.id,
        where=where,
        sort=sort,
        cursor=request.args.get("after") or None,
        limit=current_app.config.get("CASE_PAGE_SIZE", 50),
        with_fields=False,  # the list does not show them
    )
    return render_template("cases/list.html", **context), 200
