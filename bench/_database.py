"""A PostgreSQL database for a benchmark (created if missing, its tables dropped and migrated afresh).

And the CPU time of its server, when it runs on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

import engine
from engine.models import Base


def fresh_database(url: str) -> sa.Engine:
    """Return an engine on *url* with an empty, migrated schema (every table in it is dropped!).

    The database is created first when it does not exist (through the server's
    ``postgres`` database), so ``make bench`` needs nothing set up by hand.
    """
    target = make_url(url)
    maintenance = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with maintenance.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    maintenance.dispose()
    db = engine.create_db_engine(url)
    with db.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.upgrade_database(db)
    return db


class ServerCpu:
    """CPU seconds of a local PostgreSQL server: every process of it, the ones that ended included.

    Read from ``/proc``: the postmaster's own and its reaped children's CPU
    (``cutime``, ``cstime``), plus that of its children still running. So a
    benchmark can count the server's CPU beside its own instead of wall-clock
    time, which on a shared virtual machine also holds the time its CPUs were
    given to others (steal). ``available`` is False when the server is not a
    process of this machine (or not Linux); then there is nothing to read.
    """

    def __init__(self, db: sa.Engine) -> None:
        with db.connect() as conn:
            backend = conn.scalar(sa.text("SELECT pg_backend_pid()"))
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        fields = _stat(backend)
        self.postmaster = int(fields[1]) if fields is not None else None
        self.available = self.postmaster is not None and _stat(self.postmaster) is not None

    def seconds(self) -> float:
        """The server's CPU seconds so far (0.0 if not ``available``).

        A backend that ends moves its CPU time from its own ``/proc`` entry to the
        postmaster's reaped total while the children are being read. So the
        reaped total is read before and after them, and the reading is taken
        again when it moved; a child already reaped but still listed (state
        ``X``) is in that total and is not counted again.
        """
        if self.postmaster is None:
            return 0.0
        for _ in range(100):
            parent = _stat(self.postmaster)
            if parent is None:
                return 0.0
            total = sum(int(value) for value in parent[11:15])  # utime stime cutime cstime
            for child in _children(self.postmaster):
                fields = _stat(child)
                if fields is not None and fields[0] != "X":
                    total += int(fields[11]) + int(fields[12])
            again = _stat(self.postmaster)
            if again is not None and again[13:15] == parent[13:15]:
                break
        return total / self._tick


def _stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (field 3, the state, first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _children(pid: int) -> list[int]:
    """The processes whose parent is *pid*, read from each stat (``children`` files need a kernel option)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def steal_share(before: list[int], after: list[int]) -> float:
    """Share of the machine's CPU time taken by other machines (steal) between two :func:`cpu_ticks`."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent)
    return spent[7] / total if len(spent) > 7 and total > 0 else 0.0


def cpu_ticks() -> list[int]:
    """The machine's ``cpu`` line of ``/proc/stat`` (user nice system idle iowait irq softirq steal ...)."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return []
    return [int(value) for value in line.split()[1:]]
