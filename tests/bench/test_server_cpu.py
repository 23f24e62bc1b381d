"""The benchmarks' reading of a local PostgreSQL server's CPU time (bench/_database.py)."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from _database import ServerCpu, steal_share


@pytest.mark.postgres
def test_counts_the_cpu_a_query_costs_the_server(db_engine: sa.Engine) -> None:
    server = ServerCpu(db_engine)
    assert server.available
    before = server.seconds()
    with db_engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM generate_series(1, 5000000)")).scalar_one()
    assert server.seconds() - before > 0.1


@pytest.mark.postgres
def test_counts_a_backend_that_has_ended(db_engine: sa.Engine) -> None:
    server = ServerCpu(db_engine)
    before = server.seconds()
    other = sa.create_engine(db_engine.url, poolclass=sa.pool.NullPool)
    with other.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM generate_series(1, 5000000)")).scalar_one()
    other.dispose()  # the backend exits; the postmaster reaps it and adds its CPU to its children's
    for _ in range(50):  # reaping takes a moment
        if server.seconds() - before > 0.1:
            break
        time.sleep(0.1)
    assert server.seconds() - before > 0.1


@pytest.mark.postgres
def test_the_reading_never_goes_back_while_backends_end(db_engine: sa.Engine) -> None:
    """A backend reaped while the children are read is counted once, never twice or not at all."""
    server = ServerCpu(db_engine)
    stop = threading.Event()

    def connections_that_come_and_go() -> None:
        other = sa.create_engine(db_engine.url, poolclass=sa.pool.NullPool)
        while not stop.is_set():
            with other.connect() as conn:
                conn.execute(sa.text("SELECT count(*) FROM generate_series(1, 1000000)")).scalar_one()
        other.dispose()

    churn = threading.Thread(target=connections_that_come_and_go)
    churn.start()
    try:
        readings = [server.seconds()]
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            readings.append(server.seconds())
    finally:
        stop.set()
        churn.join()
    drops = [(a, b) for a, b in itertools.pairwise(readings) if b < a]
    assert readings[-1] - readings[0] > 0.5  # backends did end meanwhile
    assert drops == []


def test_steal_is_the_eighth_field_of_the_cpu_line() -> None:
    before = [100, 0, 50, 800, 0, 0, 0, 50, 0, 0]
    after = [200, 0, 100, 1600, 0, 0, 0, 150, 0, 0]
    assert steal_share(before, after) == pytest.approx(100 / 1050)
    assert steal_share([], []) == 0.0
