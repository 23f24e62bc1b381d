"""``/api/v1/reports``: the table behind each report page, as JSON (admins, auditors, group ``reports``).

Each report reads only the reporting projection (:mod:`engine.reports`);
``from`` and ``to`` bound the cases' start dates, both inclusive.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g
from flask_smorest import Blueprint

import engine

from ..db import db_session
from .auth import authenticate, require_roles
from .problems import init_blueprint
from .schemas import period_query_schema, report_schema

bp = Blueprint("api_v1_reports", __name__, url_prefix="/api/v1/reports", description="Reports.")
bp.before_request(authenticate)
init_blueprint(bp)

READERS = ("admin", "auditor")
READERS_GROUP = "reports"


def _period(query: dict[str, Any]) -> engine.reports.Period:
    try:
        return engine.reports.Period(start=query.get("from_"), end=query.get("to"))
    except ValueError as exc:  # it ends before it starts
        raise engine.DataError(str(exc)) from None


def _table(report: Any, summary: dict[str, Any]) -> dict[str, Any]:
    return {"columns": list(report.columns), "rows": report.table_rows(), "summary": summary}


@bp.route("/contacts")
@bp.arguments(period_query_schema, location="query")
@bp.response(200, report_schema)
@require_roles(*READERS, group=READERS_GROUP)
def contact_report(query: dict[str, Any]) -> Any:
    """Customer contacts per month and category; the summary is ``procflow report contacts --json``."""
    report = engine.reports.contact_report(
        db_session(), organisation_id=g.organisation.id, period=_period(query)
    )
    return _table(report, report.as_json())


@bp.route("/register")
@bp.arguments(period_query_schema, location="query")
@bp.response(200, report_schema)
@require_roles(*READERS, group=READERS_GROUP)
def register_report(query: dict[str, Any]) -> Any:
    """The register of direct procurements, with each record's documentation deadline."""
    report = engine.reports.register_report(
        db_session(),
        organisation_id=g.organisation.id,
        period=_period(query),
        today=dt.datetime.now(dt.UTC).date(),
    )
    return _table(
        report, {"procurements": len(report.rows), "documentation_overdue": report.documentation_overdue}
    )


@bp.route("/impact")
@bp.arguments(period_query_schema, location="query")
@bp.response(200, report_schema)
@require_roles(*READERS, group=READERS_GROUP)
def impact_report(query: dict[str, Any]) -> Any:
    """The impact index of each mini-competition; averages per agreement in the summary."""
    report = engine.reports.impact_report(
        db_session(), organisation_id=g.organisation.id, period=_period(query)
    )
    return _table(report, {"by_agreement": report.agreement_rows()})


@bp.route("/goals")
@bp.arguments(period_query_schema, location="query")
@bp.response(200, report_schema)
@require_roles(*READERS, group=READERS_GROUP)
def goal_report(query: dict[str, Any]) -> Any:
    """Each goal's status per quarter and the procurements and tasks assigned to it."""
    report = engine.reports.goal_report(
        db_session(), organisation_id=g.organisation.id, period=_period(query)
    )
    return _table(report, {"status_counts": report.status_counts()})
