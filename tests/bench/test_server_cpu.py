"""The benchmarks' reading of a local PostgreSQL server's CPU time (bench/_database.py)."""

from __future__ import annotations

import sys
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


def test_steal_is_the_eighth_field_of_the_cpu_line() -> None:
    before = [100, 0, 50, 800, 0, 0, 0, 50, 0, 0]
    after = [200, 0, 100, 1600, 0, 0, 0, 150, 0, 0]
    assert steal_share(before, after) == pytest.approx(100 / 1050)
    assert steal_share([], []) == 0.0
