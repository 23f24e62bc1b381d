"""The management reports: what the central purchasing body and the buying units did.

Every report reads only the reporting projection (``case_report`` and
``case_report_value``, see :mod:`engine.projection`), scoped to one
organisation and a :class:`Period` on the cases' start (UTC date). The
counting happens in SQL (``GROUP BY``), so a report's cost follows the number
of groups, not the number of cases.

Each report has ``columns`` (the names of the table behind its chart) and
``table_rows()`` (that table, one dict per row with those keys);
:func:`to_csv` writes that table.

The fields a report reads are declared by the processes' ``reporting.json``:

- customer contact (``customer_contact``): ``category`` (one of
  :data:`CONTACT_CATEGORIES`), ``agreement``, ``sla_met``, ``satisfaction``;
- direct procurement (``direct_procurement``): see :data:`REGISTER_COLUMNS`;
- mini-competition (``mini_competition``): ``agreement``, ``impact_stage1``,
  ``impact_stage2``, ``impact_total``, ``impact_follow_up``, and ``origin`` and
  ``customer_organisation``: one run together with a customer (started from a
  customer's contact, or opened for a named customer) is what
  ``mini_competitions_run`` counts;
- goal review (``goal_review``): ``goals`` (json: one object per goal with its
  theme, quarterly statuses and assignments).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import sqlalchemy as sa
import sqlalchemy.orm as so

from .db import is_postgresql
from .models import CaseReport

CONTACT_PROCESS = "customer_contact"
DIRECT_PROCUREMENT_PROCESS = "direct_procurement"
MINI_COMPETITION_PROCESS = "mini_competition"
GOAL_REVIEW_PROCESS = "goal_review"

CONTACT_CATEGORIES = ("advice", "document_comments", "mini_competition", "other", "not_joined")
GOAL_STATUSES = ("red", "amber", "green")
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
# A mini-competition the central purchasing body runs with a customer either starts from that
# customer's contact (message mini_competition_requested: the process keeps origin 'customer_contact')
# or is opened for a named customer (its customer_organisation is set).
RUN_WITH_CUSTOMER_ORIGIN = "customer_contact"


@dataclass(frozen=True)
class Period:
    """Cases started from *start* to *end*, both inclusive (UTC dates); None is open-ended."""

    start: dt.date | None = None
    end: dt.date | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"The period starts ({self.start}) after it ends ({self.end})")


class Report(Protocol):
    """What every report offers: the table behind its chart."""

    @property
    def columns(self) -> tuple[str, ...]: ...

    def table_rows(self) -> list[dict[str, Any]]: ...


# --- customer contacts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactMonth:
    """Contacts started in one month (``YYYY-MM``), per category (every category a key)."""

    month: str
    counts: dict[str, int]
    total: int


@dataclass(frozen=True)
class ContactAgreement:
    """Contacts about one agreement (``""`` when none was named), per category."""

    agreement: str
    counts: dict[str, int]
    total: int


@dataclass(frozen=True)
class SlaOutcome:
    """Of a category's contacts whose service level is known, how many were answered in time."""

    category: str
    met: int
    total: int

    @property
    def share(self) -> float | None:
        """*met* / *total*, None when no contact of the category has a known outcome."""
        return self.met / self.total if self.total else None


CONTACT_COLUMNS = ("month", *CONTACT_CATEGORIES, "total")


@dataclass(frozen=True)
class ContactReport:
    """The customer-contact breakdown of one organisation in a period.

    ``table_rows()`` is the per-month table (``CONTACT_COLUMNS``);
    ``agreement_rows()`` and ``sla_rows()`` are the other two tables.
    """

    period: Period
    total: int
    by_category: dict[str, int]
    by_month: tuple[ContactMonth, ...]
    by_agreement: tuple[ContactAgreement, ...]
    sla: dict[str, SlaOutcome]
    satisfaction_average: float | None
    satisfaction_count: int
    mini_competitions_run: int
    columns: tuple[str, ...] = CONTACT_COLUMNS

    def table_rows(self) -> list[dict[str, Any]]:
        """One row per month: the count of each category and the total."""
        return [{"month": m.month, **m.counts, "total": m.total} for m in self.by_month]

    agreement_columns: tuple[str, ...] = ("agreement", *CONTACT_CATEGORIES, "total")

    def agreement_rows(self) -> list[dict[str, Any]]:
        """One row per agreement: the count of each category and the total."""
        return [{"agreement": a.agreement, **a.counts, "total": a.total} for a in self.by_agreement]

    sla_columns: tuple[str, ...] = ("category", "met", "total", "share")

    def sla_rows(self) -> list[dict[str, Any]]:
        """One row per category: contacts answered within the service level, of those known."""
        return [
            {"category": c, "met": self.sla[c].met, "total": self.sla[c].total, "share": self.sla[c].share}
            for c in CONTACT_CATEGORIES
        ]

    def as_json(self) -> dict[str, Any]:
        """The ``procflow report contacts --json`` document (the CLI contract's keys first)."""
        return {
            "total": self.total,
            "by_category": dict(self.by_category),
            "mini_competitions_run": self.mini_competitions_run,
            "period": {
                "from": self.period.start.isoformat() if self.period.start else None,
                "to": self.period.end.isoformat() if self.period.end else None,
            },
            "by_month": self.table_rows(),
            "by_agreement": self.agreement_rows(),
            "sla": {c: {"met": s.met, "total": s.total} for c, s in self.sla.items()},
            "satisfaction_average": self.satisfaction_average,
            "satisfaction_count": self.satisfaction_count,
        }


def contact_report(session: so.Session, *, organisation_id: int, period: Period) -> ContactReport:
    """Count the organisation's customer contacts started in *period*.

    Per category (a contact not yet triaged counts as ``other``), per month and
    per agreement; the service level met per category; the average satisfaction
    rating; and the mini-competitions the organisation ran together with a
    customer in the period. Reads the projection only.
    """
    contacts = _cases(organisation_id, CONTACT_PROCESS, period)
    category = _text(CaseReport.fields["category"])
    month = _month(session, CaseReport.started_at)
    by_month: dict[str, dict[str, int]] = {}
    for month_key, name, count in session.execute(
        sa.select(month, category, sa.func.count()).where(*contacts).group_by(month, category).order_by(month)
    ):
        counts = by_month.setdefault(month_key, dict.fromkeys(CONTACT_CATEGORIES, 0))
        counts[_category(name)] += count
    agreement = sa.func.coalesce(_text(CaseReport.fields["agreement"]), "")
    by_agreement: dict[str, dict[str, int]] = {}
    for agreement_key, name, count in session.execute(
        sa.select(agreement, category, sa.func.count())
        .where(*contacts)
        .group_by(agreement, category)
        .order_by(agreement)
    ):
        counts = by_agreement.setdefault(agreement_key, dict.fromkeys(CONTACT_CATEGORIES, 0))
        counts[_category(name)] += count
    met = _boolean(CaseReport.fields["sla_met"])
    sla = {c: SlaOutcome(category=c, met=0, total=0) for c in CONTACT_CATEGORIES}
    for name, met_count, known in session.execute(
        sa.select(category, sa.func.sum(sa.case((met, 1), else_=0)), sa.func.count(met))
        .where(*contacts)
        .group_by(category)
    ):
        key = _category(name)
        sla[key] = SlaOutcome(
            category=key, met=sla[key].met + int(met_count or 0), total=sla[key].total + int(known or 0)
        )
    rating = CaseReport.fields["satisfaction"].as_float()
    average, rated = session.execute(
        sa.select(sa.func.avg(rating), sa.func.count(rating)).where(*contacts)
    ).one()
    run_with_customers = session.scalar(
        sa.select(sa.func.count())
        .select_from(CaseReport)
        .where(
            *_cases(organisation_id, MINI_COMPETITION_PROCESS, period),
            sa.or_(
                _text(CaseReport.fields["origin"]) == RUN_WITH_CUSTOMER_ORIGIN,
                sa.func.coalesce(_text(CaseReport.fields["customer_organisation"]), "") != "",
            ),
        )
    )
    by_category = dict.fromkeys(CONTACT_CATEGORIES, 0)
    for counts in by_month.values():
        for key, count in counts.items():
            by_category[key] += count
    return ContactReport(
        period=period,
        total=sum(by_category.values()),
        by_category=by_category,
        by_month=tuple(
            ContactMonth(month=key, counts=counts, total=sum(counts.values()))
            for key, counts in sorted(by_month.items())
        ),
        by_agreement=tuple(
            ContactAgreement(agreement=key, counts=counts, total=sum(counts.values()))
            for key, counts in sorted(
                by_agreement.items(), key=lambda item: (-sum(item[1].values()), item[0])
            )
        ),
        sla=sla,
        satisfaction_average=round(float(average), 2) if average is not None else None,
        satisfaction_count=int(rated or 0),
        mini_competitions_run=int(run_with_customers or 0),
    )


# --- direct-procurement register -----------------------------------------------------------------

# The minimum documentation record (LOU 19 a kap. 11 §) and the register's own columns.
REGISTER_COLUMNS = (
    "instance_id",
    "title",
    "status",
    "started_at",
    "subject",
    "cpv_code",
    "value",
    "currency",
    "supplier",
    "supplier_org_number",
    "procedure",
    "approver",
    "outcome",
    "outcome_reason",
    "decided_on",
    "documentation_required",
    "documentation_complete",
    "documentation_due",
    "days_left",
    "buyer_name",
    "buyer_org_number",
    "competition_method",
    "suppliers_asked",
    "suppliers_asked_names",
    "tenders_received",
    "award_reason",
    "estimated_value",
    "contract_period",
    "quotes_required",
    "fewer_quotes",
    "fewer_quotes_justification",
    "conflict_declared",
)


@dataclass(frozen=True)
class RegisterRow:
    """One direct procurement in the register, with its documentation duty."""

    instance_id: int
    title: str
    status: str
    started_at: dt.datetime
    subject: str | None
    cpv_code: str | None
    value: Decimal | None
    currency: str | None
    supplier: str | None
    supplier_org_number: str | None
    procedure: str | None
    approver: str | None
    outcome: str | None
    outcome_reason: str | None
    decided_on: dt.date | None
    documentation_required: bool | None
    documentation_complete: bool | None
    documentation_due: dt.date | None
    days_left: int | None
    buyer_name: str | None
    buyer_org_number: str | None
    competition_method: str | None
    suppliers_asked: int | None
    suppliers_asked_names: str | None
    tenders_received: int | None
    award_reason: str | None
    estimated_value: Decimal | None
    contract_period: str | None
    quotes_required: int | None
    fewer_quotes: bool | None
    fewer_quotes_justification: str | None
    conflict_declared: bool | None

    def as_dict(self) -> dict[str, Any]:
        """The row keyed by :data:`REGISTER_COLUMNS`."""
        return {name: getattr(self, name) for name in REGISTER_COLUMNS}


@dataclass(frozen=True)
class RegisterReport:
    """Every direct procurement of the organisation started in a period, oldest first."""

    period: Period
    today: dt.date
    rows: tuple[RegisterRow, ...]
    columns: tuple[str, ...] = REGISTER_COLUMNS

    @property
    def documentation_overdue(self) -> int:
        """Procurements whose record is required, not complete, and past its 30 days."""
        return sum(1 for r in self.rows if r.days_left is not None and r.days_left < 0)

    def table_rows(self) -> list[dict[str, Any]]:
        """One dict per procurement, keyed by :data:`REGISTER_COLUMNS`."""
        return [r.as_dict() for r in self.rows]


def register_report(
    session: so.Session, *, organisation_id: int, period: Period, today: dt.date
) -> RegisterReport:
    """List the organisation's direct procurements started in *period*, with the documentation duty.

    ``days_left`` counts from *today* to the documentation due date (negative
    when overdue); None when documentation is not required, already complete,
    or not yet due (no decision yet).
    """
    rows = []
    for report in session.scalars(
        sa.select(CaseReport)
        .where(*_cases(organisation_id, DIRECT_PROCUREMENT_PROCESS, period))
        .order_by(CaseReport.started_at, CaseReport.instance_id)
    ):
        rows.append(_register_row(report, today))
    return RegisterReport(period=period, today=today, rows=tuple(rows))


def _register_row(report: CaseReport, today: dt.date) -> RegisterRow:
    f = report.fields
    required = _bool_value(f.get("documentation_required"))
    complete = _bool_value(f.get("documentation_complete"))
    due = _date_value(f.get("documentation_due"))
    days_left = (due - today).days if required and not complete and due is not None else None
    level, person = f.get("approver_level"), f.get("approved_by")
    approver = f"{person} ({level})" if person and level else (person or level)
    contract_value, estimate = _decimal(f.get("contract_value")), _decimal(f.get("value_excl_vat"))
    declarations = f.get("conflict_declarations")
    conflict = (
        any(bool(d.get("has_conflict")) for d in declarations if isinstance(d, Mapping))
        if isinstance(declarations, list)
        else None
    )
    months, options = f.get("contract_period_months"), f.get("option_months")
    period = f.get("delivery_or_contract_period") or (
        f"{months} + {options} months" if months and options else f"{months} months" if months else None
    )
    asked = f.get("suppliers_asked")
    asked_count, required_quotes = f.get("suppliers_asked_count"), f.get("quotes_required")
    return RegisterRow(
        instance_id=report.instance_id,
        title=report.title,
        status=report.status,
        started_at=report.started_at,
        subject=f.get("subject"),
        cpv_code=f.get("cpv_code"),
        value=contract_value if contract_value is not None else estimate,
        currency=f.get("currency"),
        supplier=f.get("supplier"),
        supplier_org_number=f.get("supplier_org_number"),
        procedure=f.get("procedure"),
        approver=approver,
        outcome=f.get("outcome"),
        documentation_required=required,
        documentation_complete=complete,
        documentation_due=due,
        days_left=days_left,
        buyer_name=f.get("buyer_name"),
        buyer_org_number=f.get("buyer_org_number"),
        competition_method=f.get("competition_method"),
        suppliers_asked=asked_count,
        suppliers_asked_names="; ".join(
            f"{s.get('name', '')} ({s.get('org_number', '')})" for s in asked if isinstance(s, Mapping)
        )
        if isinstance(asked, list)
        else None,
        tenders_received=f.get("tenders_received"),
        award_reason=f.get("award_reason"),
        estimated_value=estimate,
        contract_period=period,
        quotes_required=required_quotes,
        fewer_quotes=asked_count < required_quotes
        if isinstance(asked_count, int) and isinstance(required_quotes, int)
        else None,
        fewer_quotes_justification=f.get("fewer_quotes_justification") or None,
        conflict_declared=conflict,
        decided_on=_date_value(f.get("decided_on")),
        outcome_reason=f.get("outcome_reason") or None,
    )


# --- impact index --------------------------------------------------------------------------------

IMPACT_COLUMNS = ("instance_id", "title", "agreement", "status", "stage1", "stage2", "total", "follow_up")


@dataclass(frozen=True)
class ImpactRow:
    """The impact index of one mini-competition: stage 1, stage 2, total, the follow-up when in."""

    instance_id: int
    title: str
    agreement: str
    status: str
    stage1: Decimal | None
    stage2: Decimal | None
    total: Decimal | None
    follow_up: Decimal | None


@dataclass(frozen=True)
class ImpactAgreement:
    """The averages over one agreement's mini-competitions (None when none has the value)."""

    agreement: str
    count: int
    stage1: Decimal | None
    stage2: Decimal | None
    total: Decimal | None
    follow_up: Decimal | None
    follow_up_count: int


@dataclass(frozen=True)
class ImpactReport:
    """Impact per mini-competition (``table_rows``) and averages per agreement (``agreement_rows``)."""

    period: Period
    rows: tuple[ImpactRow, ...]
    by_agreement: tuple[ImpactAgreement, ...]
    columns: tuple[str, ...] = IMPACT_COLUMNS
    agreement_columns: tuple[str, ...] = (
        "agreement",
        "count",
        "stage1",
        "stage2",
        "total",
        "follow_up",
        "follow_up_count",
    )

    def table_rows(self) -> list[dict[str, Any]]:
        """One dict per mini-competition, keyed by :data:`IMPACT_COLUMNS`."""
        return [{name: getattr(r, name) for name in IMPACT_COLUMNS} for r in self.rows]

    def agreement_rows(self) -> list[dict[str, Any]]:
        """One dict per agreement, keyed by ``agreement_columns``."""
        return [{name: getattr(a, name) for name in self.agreement_columns} for a in self.by_agreement]


def impact_report(session: so.Session, *, organisation_id: int, period: Period) -> ImpactReport:
    """The impact index of the organisation's mini-competitions started in *period*.

    A direct order (no mini-competition, so no stage 2) has stage 1 as its total.
    The agreement averages are computed in SQL over the cases that have each value.
    """
    where = _cases(organisation_id, MINI_COMPETITION_PROCESS, period)
    stage1 = CaseReport.fields["impact_stage1"].as_float()
    stage2 = CaseReport.fields["impact_stage2"].as_float()
    follow_up = CaseReport.fields["impact_follow_up"].as_float()
    total = sa.func.coalesce(
        CaseReport.fields["impact_total"].as_float(),
        sa.case((_text(CaseReport.fields["outcome"]) == "direct_order", stage1)),
    )
    agreement = sa.func.coalesce(_text(CaseReport.fields["agreement"]), "")
    rows = tuple(
        ImpactRow(
            instance_id=instance_id,
            title=title,
            agreement=agreement_key,
            status=status,
            stage1=_score(s1),
            stage2=_score(s2),
            total=_score(t),
            follow_up=_score(fu),
        )
        for instance_id, title, agreement_key, status, s1, s2, t, fu in session.execute(
            sa.select(
                CaseReport.instance_id,
                CaseReport.title,
                agreement,
                CaseReport.status,
                stage1,
                stage2,
                total,
                follow_up,
            )
            .where(*where)
            .order_by(CaseReport.started_at, CaseReport.instance_id)
        )
    )
    by_agreement = tuple(
        ImpactAgreement(
            agreement=agreement_key,
            count=int(count),
            stage1=_score(s1),
            stage2=_score(s2),
            total=_score(t),
            follow_up=_score(fu),
            follow_up_count=int(fu_count or 0),
        )
        for agreement_key, count, s1, s2, t, fu, fu_count in session.execute(
            sa.select(
                agreement,
                sa.func.count(),
                sa.func.avg(stage1),
                sa.func.avg(stage2),
                sa.func.avg(total),
                sa.func.avg(follow_up),
                sa.func.count(follow_up),
            )
            .where(*where)
            .group_by(agreement)
            .order_by(agreement)
        )
    )
    return ImpactReport(period=period, rows=rows, by_agreement=by_agreement)


# --- goal fulfilment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuarterStatus:
    """A goal's status in one quarter: red, amber or green, and the percentage fulfilled."""

    status: str | None
    fulfilled_percent: Decimal | None


@dataclass(frozen=True)
class GoalAssignment:
    """A procurement or task assigned to a goal, and whether it is done."""

    procurement: str
    task: str
    phase: str | None
    due: dt.date | None
    done: bool


@dataclass(frozen=True)
class GoalRow:
    """One goal of a goal review: its theme, status per quarter and its assignments."""

    instance_id: int
    year: str
    theme: str
    goal_id: str
    goal: str
    quarters: dict[str, QuarterStatus]
    assignments: tuple[GoalAssignment, ...] = field(default=())

    @property
    def assigned(self) -> int:
        return len(self.assignments)

    @property
    def done(self) -> int:
        return sum(1 for a in self.assignments if a.done)


@dataclass(frozen=True)
class GoalReport:
    """Goal fulfilment of the organisation's goal reviews started in a period.

    ``quarters`` are the quarter labels (``Q1`` .. ``Q4``); a row's ``quarters``
    maps each label to its status. ``table_rows()`` flattens them into
    ``<quarter>_status`` and ``<quarter>_percent`` columns.
    """

    period: Period
    quarters: tuple[str, ...]
    rows: tuple[GoalRow, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        per_quarter = tuple(f"{q}_{part}" for q in self.quarters for part in ("status", "percent"))
        return ("year", "theme", "goal_id", "goal", *per_quarter, "assigned", "done")

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Per quarter, how many goals are red, amber and green (the chart's data)."""
        counts = {q: dict.fromkeys(GOAL_STATUSES, 0) for q in self.quarters}
        for row in self.rows:
            for quarter, status in row.quarters.items():
                if status.status in GOAL_STATUSES and quarter in counts:
                    counts[quarter][status.status] += 1
        return counts

    def table_rows(self) -> list[dict[str, Any]]:
        """One dict per goal, keyed by ``columns``."""
        out = []
        for row in self.rows:
            item: dict[str, Any] = {
                "year": row.year,
                "theme": row.theme,
                "goal_id": row.goal_id,
                "goal": row.goal,
            }
            for q in self.quarters:
                status = row.quarters.get(q, QuarterStatus(None, None))
                item[f"{q}_status"] = status.status
                item[f"{q}_percent"] = status.fulfilled_percent
            item["assigned"] = row.assigned
            item["done"] = row.done
            out.append(item)
        return out


def goal_report(session: so.Session, *, organisation_id: int, period: Period) -> GoalReport:
    """Goal fulfilment per theme and goal in the organisation's goal reviews started in *period*.

    A goal review is one case per organisation and year, so its goals are read
    from the case's reported ``goals``, ``assignments`` and ``goal_status_history``.
    """
    rows: list[GoalRow] = []
    for report in session.scalars(
        sa.select(CaseReport)
        .where(*_cases(organisation_id, GOAL_REVIEW_PROCESS, period))
        .order_by(CaseReport.started_at, CaseReport.instance_id)
    ):
        rows.extend(_goal_rows(report))
    rows.sort(key=lambda r: (r.year, _theme_order(r.theme), r.goal_id))
    return GoalReport(period=period, quarters=QUARTERS, rows=tuple(rows))


def _goal_rows(report: CaseReport) -> list[GoalRow]:
    f = report.fields
    goals = [g for g in f.get("goals") or [] if isinstance(g, Mapping) and g.get("goal_id")]
    statuses: dict[str, dict[str, QuarterStatus]] = {}
    for quarter in f.get("goal_status_history") or []:
        if not isinstance(quarter, Mapping) or quarter.get("quarter") not in (1, 2, 3, 4):
            continue
        label = QUARTERS[int(quarter["quarter"]) - 1]
        for status in quarter.get("statuses") or []:
            if isinstance(status, Mapping):
                rag = status.get("rag")
                statuses.setdefault(str(status.get("goal_id")), {})[label] = QuarterStatus(
                    status=rag if rag in GOAL_STATUSES else None,
                    fulfilled_percent=_decimal(status.get("percent_fulfilled")),
                )
    assignments: dict[str, list[GoalAssignment]] = {}
    for a in f.get("assignments") or []:
        if isinstance(a, Mapping):
            assignments.setdefault(str(a.get("goal_id")), []).append(
                GoalAssignment(
                    procurement=str(a.get("procurement_id") or ""),
                    task=str(a.get("task") or ""),
                    phase=a.get("lifecycle_phase"),
                    due=_date_value(a.get("due_date")),
                    done=a.get("status") == "done",
                )
            )
    year = f.get("plan_year")
    return [
        GoalRow(
            instance_id=report.instance_id,
            year=str(year) if year is not None else "",
            theme=str(g.get("theme") or ""),
            goal_id=str(g["goal_id"]),
            goal=str(g.get("title") or g["goal_id"]),
            quarters=statuses.get(str(g["goal_id"]), {}),
            assignments=tuple(assignments.get(str(g["goal_id"]), ())),
        )
        for g in goals
    ]


def _theme_order(theme: str) -> tuple[int, str]:
    return (int(theme), "") if theme.isdigit() else (10**6, theme)


# --- query helpers -------------------------------------------------------------------------------


def _cases(organisation_id: int, process_id: str, period: Period) -> list[sa.ColumnElement[bool]]:
    """The conditions for the organisation's cases of *process_id* started in *period* (UTC dates)."""
    conditions = [CaseReport.organisation_id == organisation_id, CaseReport.process_id == process_id]
    if period.start is not None:
        conditions.append(CaseReport.started_at >= dt.datetime.combine(period.start, dt.time(), dt.UTC))
    if period.end is not None:
        end = period.end + dt.timedelta(days=1)
        conditions.append(CaseReport.started_at < dt.datetime.combine(end, dt.time(), dt.UTC))
    return conditions


def _text(element: Any) -> Any:
    return element.as_string()


def _boolean(element: Any) -> Any:
    return element.as_boolean()


def _month(session: so.Session, column: Any) -> Any:
    """``YYYY-MM`` of a UTC timestamp column, in SQL."""
    if is_postgresql(session):
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM")
    # SQLite keeps UTC timestamps as text starting 'YYYY-MM-DD'.
    return sa.func.substr(sa.cast(column, sa.String), 1, 7)


def _category(name: str | None) -> str:
    # A contact not yet triaged (or with an unknown route) counts as other: it is a contact all the same.
    return name if name in CONTACT_CATEGORIES else "other"


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def _score(value: Any) -> Decimal | None:
    number = _decimal(value)
    return number.quantize(Decimal("0.01")) if number is not None else None


def _bool_value(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _date_value(value: Any) -> dt.date | None:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


# --- CSV -----------------------------------------------------------------------------------------


def to_csv(report: Report, labels: Mapping[str, str] | None = None) -> str:
    """The table behind *report* as CSV: a header row (a column's label, or its name), then the rows.

    Dates as ISO 8601, numbers as plain decimals, booleans as ``true``/``false``,
    missing values empty. A text that a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``+``, ``-``, ``@``, tab, CR) gets a leading ``'``;
    a text that is a plain number stays as it is.
    """
    return _csv(report.columns, report.table_rows(), labels)


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str] | None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([(labels or {}).get(c, c) for c in columns])
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return out.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    if isinstance(value, float):
        return repr(round(value, 4))
    text = str(value)
    if text[:1] in _FORMULA_STARTS and not _NUMBER.fullmatch(text):
        return f"'{text}"
    return text


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


__all__ = [
    "CONTACT_CATEGORIES",
    "ContactReport",
    "GoalReport",
    "ImpactReport",
    "Period",
    "RegisterReport",
    "contact_report",
    "goal_report",
    "impact_report",
    "register_report",
    "to_csv",
]
