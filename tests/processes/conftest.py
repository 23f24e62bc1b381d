"""Fixtures for the scenario tests of the shipped processes, and the BPMN coverage report.

Every scenario runs three times (``driver`` is parametrised): straight through
in memory; through the engine and database with a save/restore between steps;
and cold, as a fresh process would run each step (spec cache cleared, spec
parsed from the database's deployment files, workflow restored from the database).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy.orm as so

from tests.processes.driver import COVERAGE, DRIVERS, Clock, Driver, driver_for

# A Monday morning, so working-day arithmetic in the scenarios is easy to follow.
SCENARIO_START = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Iterator[Clock]:
    """Frozen-then-ticking test time starting at ``SCENARIO_START``; ``clock.advance(days=3)`` moves it."""
    with Clock(SCENARIO_START) as running:
        yield running


@pytest.fixture(params=list(DRIVERS))
def driver(
    request: pytest.FixtureRequest, session_factory: so.sessionmaker[so.Session], clock: Clock
) -> Driver:
    """A scenario driver with the demo organisations, users and parameters loaded."""
    return driver_for(request.param, session_factory)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = COVERAGE.report()
    if not lines:
        return
    terminalreporter.section("BPMN coverage of the scenario tests (elements reached / total)")
    for line in lines:
        terminalreporter.write_line(line)
