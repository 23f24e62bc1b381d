"""Reports (/reports): customer contacts, direct-procurement register, impact index, goal fulfilment.

Each report is a page with a chart (Chart.js, drawn by ``static/js/reports.js``
from the JSON the page carries: the Content-Security-Policy allows no inline
script), the table behind it, a period filter on the cases' start
(``?from=YYYY-MM-DD&to=YYYY-MM-DD``, both inclusive, either may be left out)
and the table as CSV (``?format=csv``) with its headers in the user's language.
The numbers come from :mod:`engine.reports`, which reads only the reporting
projection.

Who may see reports: admins and auditors of the organisation, and members of
its ``reports`` group. Everyone else gets 404, as for anything that is not theirs.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, g, render_template, request, url_for
from flask_babel import format_date, format_decimal, format_percent
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

import engine

from .auth import require_login, roles
from .db import db_session
from .i18n import time_zone
from .security import download

bp = Blueprint("reports", __name__, url_prefix="/reports")
bp.before_request(require_login)

REPORT_ROLES = frozenset({"admin", "auditor"})
REPORT_GROUP = "reports"


def may_see_reports() -> bool:
    """Whether the signed-in member may open the reports: admin, auditor, or in the ``reports`` group."""
    membership = g.get("membership")
    if membership is None:
        return False
    return bool(roles() & REPORT_ROLES) or any(group.key == REPORT_GROUP for group in membership.groups)


@bp.before_request
def _only_report_readers() -> None:
    # Runs after require_login: a visitor who is not signed in is sent to sign in first.
    if g.get("user") is not None and not may_see_reports():
        abort(404)


@bp.app_context_processor
def _report_link() -> dict[str, Any]:
    return {"may_see_reports": may_see_reports}


# --- labels --------------------------------------------------------------------------------------

CATEGORY_LABELS = {
    "advice": _l("Advice"),
    "document_comments": _l("Comments on the customer's documents"),
    "mini_competition": _l("Joint mini-competition"),
    "other": _l("Other"),
    "not_joined": _l("Not joined the agreement"),
}
GOAL_STATUS_LABELS = {"green": _l("Green"), "amber": _l("Amber"), "red": _l("Red")}
DOCUMENTATION_LABELS = {
    "not_required": _l("Not required"),
    "complete": _l("Documented"),
    "pending": _l("Due, in time"),
    "overdue": _l("Overdue"),
}
# Values of the register's code columns (engine/processes' codes), shown in the user's language.
VALUE_LABELS: dict[str, Mapping[str, Any]] = {
    "procedure": {
        "direct": _l("Direct procurement"),
        "advertised": _l("Advertised procedure"),
        "use_framework": _l("Order under a framework agreement"),
    },
    "outcome": {
        "open": _l("Open"),
        "ordered": _l("Ordered"),
        "cancelled": _l("Cancelled"),
        "not_approved": _l("Not approved"),
    },
    "approver": {
        "unit_head": _l("Unit head"),
        "area_head": _l("Area head"),
        "finance_head": _l("Finance head"),
        "director": _l("Director"),
    },
    "status": {
        "running": _l("Running"),
        "waiting": _l("Waiting"),
        "completed": _l("Completed"),
        "error": _l("Error"),
        "suspended": _l("Suspended"),
        "cancelled": _l("Cancelled"),
    },
    "category": CATEGORY_LABELS,
}
COLUMN_LABELS: dict[str, Any] = {
    "month": _l("Month"),
    **CATEGORY_LABELS,
    "total": _l("Total"),
    "agreement": _l("Agreement"),
    "category": _l("Category"),
    "met": _l("Within the service level"),
    "share": _l("Share within the service level"),
    "instance_id": _l("Case number"),
    "title": _l("Case"),
    "status": _l("Status"),
    "started_at": _l("Started"),
    "subject": _l("Subject"),
    "cpv_code": _l("CPV code"),
    "value": _l("Value (excl. VAT)"),
    "currency": _l("Currency"),
    "supplier": _l("Supplier"),
    "supplier_org_number": _l("Supplier's organisation number"),
    "procedure": _l("Procedure"),
    "approver": _l("Approver"),
    "outcome": _l("Outcome"),
    "outcome_reason": _l("Reason for the outcome"),
    "decided_on": _l("Decided on"),
    "documentation_required": _l("Documentation required"),
    "documentation_complete": _l("Documentation complete"),
    "documentation_due": _l("Documentation due"),
    "days_left": _l("Days left"),
    "buyer_name": _l("Buyer"),
    "buyer_org_number": _l("Buyer's organisation number"),
    "competition_method": _l("Competition method"),
    "suppliers_asked": _l("Suppliers asked"),
    "suppliers_asked_names": _l("Suppliers asked (names)"),
    "tenders_received": _l("Tenders received"),
    "award_reason": _l("Reason for the award"),
    "estimated_value": _l("Estimated value"),
    "contract_period": _l("Delivery or contract period"),
    "quotes_required": _l("Quotes required"),
    "fewer_quotes": _l("Fewer quotes than required"),
    "fewer_quotes_justification": _l("Justification for fewer quotes"),
    "conflict_declared": _l("Conflict of interest declared"),
    "stage1": _l("Stage 1"),
    "stage2": _l("Stage 2"),
    "follow_up": _l("One-year follow-up"),
    "count": _l("Mini-competitions"),
    "follow_up_count": _l("Followed up"),
    "year": _l("Year"),
    "theme": _l("Theme"),
    "goal_id": _l("Goal ID"),
    "goal": _l("Goal"),
    "assigned": _l("Assigned"),
    "done": _l("Done"),
}


def column_label(name: str) -> str:
    """The heading of a report column in the user's language (per-quarter goal columns too)."""
    if name in COLUMN_LABELS:
        return str(COLUMN_LABELS[name])
    quarter, _sep, part = name.rpartition("_")
    if quarter and part == "status":
        return str(_("%(quarter)s status", quarter=quarter))
    if quarter and part == "percent":
        return str(_("%(quarter)s %% fulfilled", quarter=quarter))
    return name


def value_label(column: str, value: Any) -> str:
    """A code in a report column (a procedure, an outcome) in the user's language; other values as is."""
    labels = VALUE_LABELS.get(column, {})
    return str(labels.get(value, value)) if value is not None else ""


# --- the period filter ---------------------------------------------------------------------------


def _today() -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(time_zone())).date()


def read_period(args: MultiDict[str, str]) -> tuple[engine.reports.Period, dict[str, str]]:
    """Return the period ``?from=&to=`` asks for, and a message per field that is wrong."""
    errors: dict[str, str] = {}
    days: dict[str, dt.date | None] = {}
    for name in ("from", "to"):
        text = args.get(name, "").strip()
        days[name] = None
        if not text:
            continue
        try:
            days[name] = dt.date.fromisoformat(text)
        except ValueError:
            errors[name] = _("Enter a date as YYYY-MM-DD, for example 2025-01-31.")
    start, end = days["from"], days["to"]
    if start is not None and end is not None and start > end:
        errors["to"] = _("The end of the period is before its start.")
    if errors:
        return engine.reports.Period(), errors
    return engine.reports.Period(start, end), errors


def _period_presets(today: dt.date) -> list[tuple[str, dict[str, Any]]]:
    this_year, last_year = today.year, today.year - 1
    return [
        (
            _("This year (%(year)s)", year=this_year),
            {"from": f"{this_year}-01-01", "to": f"{this_year}-12-31"},
        ),
        (
            _("Last year (%(year)s)", year=last_year),
            {"from": f"{last_year}-01-01", "to": f"{last_year}-12-31"},
        ),
        (_("All time"), {}),
    ]


def _period_text(period: engine.reports.Period) -> str:
    start = format_date(period.start, "medium") if period.start else None
    end = format_date(period.end, "medium") if period.end else None
    if start and end:
        return str(_("Cases started %(start)s \N{EN DASH} %(end)s", start=start, end=end))
    if start:
        return str(_("Cases started from %(start)s", start=start))
    if end:
        return str(_("Cases started until %(end)s", end=end))
    return str(_("All cases, whenever they started"))


# --- shared page and CSV plumbing ----------------------------------------------------------------

REPORTS: tuple[tuple[str, Any, Any], ...] = (
    (
        "reports.contacts",
        _l("Customer contacts"),
        _l(
            "Contacts by category per month and agreement, service levels met, satisfaction, "
            "and the mini-competitions run together with customers."
        ),
    ),
    (
        "reports.register",
        _l("Direct-procurement register"),
        _l(
            "Every direct procurement with subject, CPV code, value, supplier, procedure, approver "
            "and the documentation duty."
        ),
    ),
    (
        "reports.impact",
        _l("Impact index"),
        _l(
            "Stage 1, stage 2 and total impact per mini-competition and per agreement, "
            "with the one-year follow-up."
        ),
    ),
    (
        "reports.goals",
        _l("Goal fulfilment"),
        _l("Per theme and goal, the status each quarter and the procurements and tasks assigned to it."),
    ),
)


def _filter_args(period: engine.reports.Period) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if period.start:
        args["from"] = period.start.isoformat()
    if period.end:
        args["to"] = period.end.isoformat()
    return args


def _page(
    endpoint: str,
    name: str,
    build: Callable[[engine.reports.Period], engine.reports.Report],
    render: Callable[[Any, dict[str, Any]], str],
) -> Response | str | tuple[str, int]:
    """Answer one report: its page (422 with messages for a wrong period) or, with ``format=csv``, its CSV."""
    wanted = request.args.get("format", "html")
    if wanted not in ("html", "csv"):
        abort(404)
    period, errors = read_period(request.args)
    today = _today()
    common: dict[str, Any] = {
        "endpoint": endpoint,
        "errors": errors,
        "values": {field: request.args.get(field, "") for field in ("from", "to")},
        "presets": [(label, url_for(endpoint, **args)) for label, args in _period_presets(today)],
        "period": period,
        "period_text": _period_text(period),
        "csv_url": url_for(endpoint, format="csv", **_filter_args(period)),
        "report_title": next(str(title) for e, title, _d in REPORTS if e == endpoint),
        "reports_nav": REPORTS,
    }
    if errors:
        return render(None, common), 422
    report = build(period)
    if wanted == "csv":
        return _csv_download(name, report, period, today)
    return render(report, common)


def _csv_download(
    name: str, report: engine.reports.Report, period: engine.reports.Period, today: dt.date
) -> Response:
    labels = {column: column_label(column) for column in report.columns}
    start = period.start.isoformat() if period.start else "start"
    end = period.end.isoformat() if period.end else today.isoformat()
    filename = f"{name}-{g.organisation.key}-{start}-{end}.csv"
    # The byte order mark makes spreadsheets read the file as UTF-8 (å, ä, ö).
    content = "\ufeff" + engine.reports.to_csv(report, labels=labels)
    return download(content.encode("utf-8"), filename=filename, content_type="text/csv; charset=utf-8")


def _chart(
    kind: str, labels: Sequence[str], datasets: list[dict[str, Any]], **options: Any
) -> dict[str, Any]:
    """The chart's description for reports.js: its type, x labels, datasets (key, label, data) and options."""
    return {"type": kind, "labels": list(labels), "datasets": datasets, **options}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float | Decimal) and not isinstance(value, bool) else None


def _month_label(month: str) -> str:
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        return month
    return str(format_date(first, "MMM y"))


def cell(column: str, value: Any) -> str:
    """A table cell's text in the user's language: numbers, dates, yes/no and codes."""
    if value is None or value == "":
        return "\N{EN DASH}"
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if column == "share" and isinstance(value, int | float | Decimal):
        return str(format_percent(value))
    if isinstance(value, int | float | Decimal):
        return str(format_decimal(value, "#,##0.##"))
    if isinstance(value, dt.datetime):
        return str(format_date(value, "medium"))
    if isinstance(value, dt.date):
        return str(format_date(value, "medium"))
    if column == "month":
        return _month_label(str(value))
    return value_label(column, value)


def _case_url(row: Mapping[str, Any]) -> str | None:
    instance_id = row.get("instance_id")
    return url_for("instances.instance", instance_id=instance_id) if instance_id else None


def _render(template: str, report: Any, common: dict[str, Any], **context: Any) -> str:
    return render_template(
        template,
        report=report,
        column_label=column_label,
        cell=cell,
        value_label=value_label,
        case_url=_case_url,
        **common,
        **context,
    )


# --- the pages -----------------------------------------------------------------------------------


@bp.route("/")
def index() -> str:
    """List the reports.

    :raises NotFound: (404) the user is neither admin, auditor nor in the ``reports`` group.
    """
    return render_template("reports/index.html", reports=REPORTS)


@bp.route("/contacts")
def contacts() -> Response | str | tuple[str, int]:
    """Customer contacts: by category per month (the chart) and per agreement, service levels, satisfaction.

    :raises NotFound: (404) not a report reader, or an unknown ``format``.
    """

    def build(period: engine.reports.Period) -> engine.reports.Report:
        return engine.reports.contact_report(db_session(), organisation_id=g.organisation.id, period=period)

    def render(report: engine.reports.ContactReport | None, common: dict[str, Any]) -> str:
        chart = None
        if report is not None:
            chart = _chart(
                "bar",
                [_month_label(m.month) for m in report.by_month],
                [
                    {
                        "key": c,
                        "label": str(CATEGORY_LABELS[c]),
                        "data": [m.counts.get(c, 0) for m in report.by_month],
                    }
                    for c in engine.reports.CONTACT_CATEGORIES
                ],
                stacked=True,
                integer=True,
                yTitle=_("Contacts"),
            )
        return _render(
            "reports/contacts.html",
            report,
            common,
            chart=chart,
            chart_description=_("Contacts per month, by category"),
            categories=engine.reports.CONTACT_CATEGORIES,
        )

    return _page("reports.contacts", "contacts", build, render)


def documentation_state(row: engine.reports.RegisterRow) -> str:
    """Where a direct procurement stands with its documentation duty (a :data:`DOCUMENTATION_LABELS` key)."""
    if not row.documentation_required:
        return "not_required"
    if row.documentation_complete:
        return "complete"
    if row.days_left is not None and row.days_left < 0:
        return "overdue"
    return "pending"


@bp.route("/register")
def register() -> Response | str | tuple[str, int]:
    """The direct-procurement register with each procurement's documentation duty.

    :raises NotFound: (404) not a report reader, or an unknown ``format``.
    """

    def build(period: engine.reports.Period) -> engine.reports.Report:
        return engine.reports.register_report(
            db_session(), organisation_id=g.organisation.id, period=period, today=_today()
        )

    def render(report: engine.reports.RegisterReport | None, common: dict[str, Any]) -> str:
        chart = states = None
        if report is not None:
            states = {row.instance_id: documentation_state(row) for row in report.rows}
            counts = {key: 0 for key in DOCUMENTATION_LABELS}
            for state in states.values():
                counts[state] += 1
            chart = _chart(
                "doughnut",
                [str(label) for label in DOCUMENTATION_LABELS.values()],
                [
                    {
                        "key": "documentation",
                        "keys": list(counts),
                        "label": _("Direct procurements"),
                        "data": list(counts.values()),
                    }
                ],
            )
        return _render(
            "reports/register.html",
            report,
            common,
            chart=chart,
            chart_description=_("Direct procurements by documentation duty"),
            states=states,
            documentation_labels=DOCUMENTATION_LABELS,
            record_endpoint="records.record" if "records.record" in current_app.view_functions else None,
        )

    return _page("reports.register", "register", build, render)


@bp.route("/impact")
def impact() -> Response | str | tuple[str, int]:
    """The impact index: stage 1, stage 2, total and follow-up per mini-competition and per agreement.

    :raises NotFound: (404) not a report reader, or an unknown ``format``.
    """

    def build(period: engine.reports.Period) -> engine.reports.Report:
        return engine.reports.impact_report(db_session(), organisation_id=g.organisation.id, period=period)

    def render(report: engine.reports.ImpactReport | None, common: dict[str, Any]) -> str:
        chart = None
        if report is not None:
            parts = ("stage1", "stage2", "total", "follow_up")
            chart = _chart(
                "bar",
                [a.agreement or _("No agreement named") for a in report.by_agreement],
                [
                    {
                        "key": part,
                        "label": column_label(part),
                        "data": [_number(getattr(a, part)) for a in report.by_agreement],
                    }
                    for part in parts
                ],
                yTitle=_("Average impact index"),
            )
        return _render(
            "reports/impact.html",
            report,
            common,
            chart=chart,
            chart_description=_("Average impact index per agreement: stage 1, stage 2, total and follow-up"),
        )

    return _page("reports.impact", "impact", build, render)


@bp.route("/goals")
def goals() -> Response | str | tuple[str, int]:
    """Goal fulfilment: per theme and goal, the status per quarter and what is assigned to it.

    :raises NotFound: (404) not a report reader, or an unknown ``format``.
    """

    def build(period: engine.reports.Period) -> engine.reports.Report:
        return engine.reports.goal_report(db_session(), organisation_id=g.organisation.id, period=period)

    def render(report: engine.reports.GoalReport | None, common: dict[str, Any]) -> str:
        chart = None
        if report is not None:
            counts = report.status_counts()
            chart = _chart(
                "bar",
                list(report.quarters),
                [
                    {
                        "key": status,
                        "label": str(GOAL_STATUS_LABELS[status]),
                        "data": [counts[q][status] for q in report.quarters],
                    }
                    for status in reversed(engine.reports.GOAL_STATUSES)
                ],
                stacked=True,
                integer=True,
                yTitle=_("Goals"),
            )
        return _render(
            "reports/goals.html",
            report,
            common,
            chart=chart,
            chart_description=_("Goals per quarter by status: green, amber, red"),
            status_labels=GOAL_STATUS_LABELS,
        )

    return _page("reports.goals", "goals", build, render)
