"""``procflow worker --lease-seconds``: how long a worker holds the jobs it takes.

That a killed worker's jobs are then taken over after that long is proven with real
processes on PostgreSQL by ``tests/scale/test_fault_kill.py``; here, what the option passes on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from click.testing import CliRunner

import engine
from web.cli import main


@pytest.fixture
def calls(db_url: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    monkeypatch.setenv("PROCFLOW_DATABASE_URL", db_url)
    seen: list[tuple[str, dict[str, Any]]] = []
    real_run_due_jobs = engine.run_due_jobs

    def run_due_jobs(factory: Any, **kwargs: Any) -> Any:
        seen.append(("run_due_jobs", kwargs))
        return real_run_due_jobs(factory, **kwargs)

    monkeypatch.setattr(engine, "run_due_jobs", run_due_jobs)
    monkeypatch.setattr(engine, "run_worker", lambda factory, **kwargs: seen.append(("run_worker", kwargs)))
    return seen


def test_the_lease_time_reaches_the_worker_loop(calls: list[tuple[str, dict[str, Any]]]) -> None:
    runner = CliRunner()
    polled = runner.invoke(main, ["worker", "--interval", "0.5", "--lease-seconds", "7.5"])
    assert polled.exit_code == 0, polled.output
    once = runner.invoke(main, ["worker", "--once", "--lease-seconds", "20"])
    assert once.exit_code == 0 and "ran 0 job(s)" in once.output, once.output
    default = runner.invoke(main, ["worker", "--once"])
    assert default.exit_code == 0, default.output
    assert calls == [
        ("run_worker", {"interval": 0.5, "lease_time": dt.timedelta(seconds=7.5)}),
        ("run_due_jobs", {"lease_time": dt.timedelta(seconds=20)}),
        ("run_due_jobs", {"lease_time": None}),  # the engine's LEASE
    ]


@pytest.mark.parametrize("given", ["0", "-3", "soon"])
def test_a_lease_time_that_is_not_a_positive_number_is_refused(
    given: str, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    refused = CliRunner().invoke(main, ["worker", "--once", "--lease-seconds", given])
    assert refused.exit_code == 2 and "--lease-seconds" in refused.output, refused.output
    assert calls == []
