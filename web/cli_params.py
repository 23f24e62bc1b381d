"""Admin commands of the procflow command line: dated parameters (procflow param set, procflow param list).

``procflow param set KEY VALUE_JSON --from DATE [--to DATE] [--org KEY] [--json]``
records a value (checked by the type the processes' ``parameters.json``
declares; without ``--org`` a shared value) as a new row of the history,
audited as an admin action. ``procflow param list [--org KEY] [--on DATE]
[--json]`` prints the values in force: ``{"parameters": [{"key", "value",
"valid_from", "valid_to", "organisation"}]}``.
"""

from __future__ import annotations

import datetime as dt
import json

import click

import engine

from .cli import _emit, _handles_errors, _transaction, main


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} must be a date as YYYY-MM-DD, not {value!r}") from None


@main.group()
def param() -> None:
    """Dated parameters of an organisation, or shared ones."""


@param.command("set")
@click.argument("key")
@click.argument("value_json")
@click.option("--from", "valid_from", required=True, help="First day the value is in force (YYYY-MM-DD).")
@click.option("--to", "valid_to", help="Last day the value is in force (YYYY-MM-DD); open without.")
@click.option("--org", "organisation", help="Organisation key; without it, a shared value.")
@click.option("--note", help="Why, and the source of the value.")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def param_set(
    key: str,
    value_json: str,
    valid_from: str,
    valid_to: str | None,
    organisation: str | None,
    note: str | None,
    as_json: bool,
) -> None:
    """Record VALUE_JSON (a JSON value: 10000, "SE", [1, 2]) for parameter KEY from --from."""
    try:
        value = json.loads(value_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"VALUE_JSON is not valid JSON: {exc.msg} at column {exc.colno}") from None
    start = _date(valid_from, "--from")
    assert start is not None
    with _transaction() as session:
        organisation_id = engine.get_organisation(session, organisation).id if organisation else None
        row = engine.parameters.record_parameter_value(
            session,
            organisation_id,
            key,
            value,
            valid_from=start,
            valid_to=_date(valid_to, "--to"),
            note=note,
            actor="cli",
        )
        payload = {
            "key": row.key,
            "value": row.value,
            "valid_from": row.valid_from.isoformat(),
            "valid_to": row.valid_to.isoformat() if row.valid_to else None,
            "organisation": organisation,
        }
    scope = f"for {organisation}" if organisation else "shared"
    _emit(as_json, payload, f"parameter {key} = {json.dumps(payload['value'])} from {valid_from} ({scope})")


@param.command("list")
@click.option("--org", "organisation", help="Organisation key; without it, the shared values.")
@click.option("--on", "on", help="The date the values are in force on (YYYY-MM-DD); default today.")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def param_list(organisation: str | None, on: str | None, as_json: bool) -> None:
    """List the parameter values in force (the organisation's own over the shared ones)."""
    with _transaction() as session:
        organisation_id = engine.get_organisation(session, organisation).id if organisation else None
        found = engine.parameters.parameters_in_force(session, organisation_id, _date(on, "--on"))
    lines = [
        f"{p['key']} = {json.dumps(p['value'], ensure_ascii=False)}"
        f" ({p['organisation'] or 'shared'}{', from ' + p['valid_from'] if p['valid_from'] else ''})"
        for p in found
    ]
    _emit(as_json, {"parameters": found}, "\n".join(lines) or "no parameters")
