"""``procflow demo history``: a year of realistic cases run through the engine.

``procflow demo history --org KEY --year YEAR [--seed N] [--json]`` runs the
demo organisation's year (see :mod:`engine.demo_history`) on the dates the
cases happened, with a progress bar of the simulated days on stderr. Run
``procflow demo load`` first. An organisation that already has cases in the
year is refused; the same seed gives the same year.
"""

from __future__ import annotations

import sys
import time

import click

import engine

from .cli import _emit, _handles_errors, demo


@demo.command("history")
@click.option(
    "--org",
    "organisation",
    required=True,
    help="A demo organisation: yhteishankinnat, exempelby, esimerkkila.",
)
@click.option(
    "--year", type=int, required=True, help="The year to run (a past one, or the current one up to now)."
)
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed gives the same cases.")
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def demo_history_command(organisation: str, year: int, seed: int, as_json: bool) -> None:
    """Run a year of demo cases of an organisation through the engine, on the dates they happened."""
    database = engine.create_db_engine()
    began = time.monotonic()
    try:
        factory = engine.create_session_factory(database)
        days = engine.demo_history.history_days(year)
        with click.progressbar(
            length=max(days, 1),
            label=f"{organisation} {year}",
            file=sys.stderr,
            show_pos=True,
        ) as bar:
            summary = engine.demo_history.run_history(
                factory, organisation=organisation, year=year, seed=seed, progress=bar.update
            )
    finally:
        database.dispose()
    seconds = round(time.monotonic() - began, 1)
    started = ", ".join(f"{n} {p}" for p, n in sorted(summary.started.items())) or "no cases"
    lines = [
        f"{organisation} {year} (seed {seed}): started {started}; {summary.steps} steps, "
        f"{summary.jobs_ran} jobs run in {seconds} s"
    ]
    if summary.jobs_failed or summary.incidents:
        lines.append(f"warning: {summary.jobs_failed} job run(s) failed, {summary.incidents} incident(s)")
    lines.extend(f"warning: {e}" for e in summary.errors)
    _emit(as_json, {**summary.as_json(), "seconds": seconds}, "\n".join(lines))
