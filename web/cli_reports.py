"""``procflow report ...``: the reports from the command line (JSON or CSV).

``procflow report contacts --org KEY [--from DATE] [--to DATE] [--json]``: the
customer-contact breakdown (``{"total", "by_category", "mini_competitions_run",
...}`` with ``--json``). ``procflow report register --org KEY [--from DATE]
[--to DATE] [--csv] [--json]``: the direct-procurement register with the
documentation duty. Dates are ISO 8601 (``2024-04-30``), both inclusive, on the
cases' start (UTC). Both read the reporting projection only (engine.reports).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import click

import engine

from .cli import _emit, _handles_errors, _transaction, main


@main.group()
def report() -> None:
    """Reports of an organisation: customer contacts, the direct-procurement register."""


def _period(start: dt.datetime | None, end: dt.datetime | None) -> engine.reports.Period:
    try:
        return engine.reports.Period(start=start.date() if start else None, end=end.date() if end else None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--from' / '--to'") from None


_FROM = click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day (inclusive), YYYY-MM-DD."
)
_TO = click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (inclusive), YYYY-MM-DD.")


@report.command("contacts")
@click.option("--org", "organisation", required=True, help="The organisation's key.")
@_FROM
@_TO
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def report_contacts(
    organisation: str, start: dt.datetime | None, end: dt.datetime | None, as_json: bool
) -> None:
    """Customer contacts by category, and the mini-competitions run together with customers."""
    period = _period(start, end)
    with _transaction() as session:
        org = engine.get_organisation(session, organisation)
        found = engine.reports.contact_report(session, organisation_id=org.id, period=period)
    lines = [f"contacts: {found.total}"]
    lines += [f"  {c}: {found.by_category[c]}" for c in engine.reports.CONTACT_CATEGORIES]
    lines.append(f"mini-competitions run with customers: {found.mini_competitions_run}")
    if found.satisfaction_average is not None:
        lines.append(f"satisfaction: {found.satisfaction_average} ({found.satisfaction_count} ratings)")
    _emit(as_json, found.as_json(), "\n".join(lines))


@report.command("register")
@click.option("--org", "organisation", required=True, help="The organisation's key.")
@_FROM
@_TO
@click.option("--csv", "as_csv", is_flag=True, help="The register as CSV (every column).")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def report_register(
    organisation: str, start: dt.datetime | None, end: dt.datetime | None, as_csv: bool, as_json: bool
) -> None:
    """Direct procurements with subject, value, supplier, approver and the documentation duty."""
    if as_csv and as_json:
        raise click.UsageError("choose one of --csv and --json")
    period = _period(start, end)
    with _transaction() as session:
        org = engine.get_organisation(session, organisation)
        found = engine.reports.register_report(
            session, organisation_id=org.id, period=period, today=dt.date.today()
        )
    if as_csv:
        click.echo(engine.reports.to_csv(found), nl=False)
        return
    rows: list[dict[str, Any]] = [{k: _number(v) for k, v in r.items()} for r in found.table_rows()]
    text = "\n".join(
        f"{r['instance_id']}\t{r['subject'] or r['title']}\t{r['value'] if r['value'] is not None else ''}"
        f" {r['currency'] or ''}\t{r['supplier'] or ''}\t{r['outcome'] or r['status']}\t{_duty(r)}"
        for r in rows
    )
    _emit(as_json, {"register": rows}, text or "no direct procurements")


def _duty(row: dict[str, Any]) -> str:
    if not row["documentation_required"]:
        return "no documentation duty"
    if row["documentation_complete"]:
        return "documented"
    if row["days_left"] is None:
        return "documentation required"
    if row["days_left"] < 0:
        return f"documentation overdue by {-row['days_left']} days"
    return f"documentation due in {row['days_left']} days"


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
