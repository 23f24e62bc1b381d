"""How much does Procflow cost over SpiffWorkflow alone?

Runs one process (start → user task → script → user task → exclusive gateway →
user task → end) N times (a) with SpiffWorkflow in memory and (b) through
Procflow's engine on SQLite, one committed transaction per operation, and, if
a PostgreSQL URL is given, (c) on PostgreSQL. Prints the rates; the last line
is the ratio (b)/(a). Target: at least 0.1.

Times are CPU seconds of this process (SQLite runs in-process) plus those of
its evaluator processes (scripts and expressions run there, see
engine/_evaluator.py), so other load on the machine does not skew the ratio.
PostgreSQL runs in its own server processes: its first figure adds the CPU
seconds of all of them (read from /proc, see _database.ServerCpu, when the
server runs on this machine); its second is wall-clock time, which also holds
the waits between client and server and, on a shared virtual machine, the time
its CPUs were given to other machines (steal, printed beside it). That figure
is divided by SpiffWorkflow's own wall-clock rate (steal slows both), and, as
a third figure, by its CPU-time rate (a).

    python bench/engine_overhead.py [N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy.orm as so
from _database import ServerCpu, cpu_ticks, fresh_database, steal_share
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

import engine
from engine._evaluator import pool as evaluator_pool

BUNDLE = Path(__file__).parent / "overhead"


@dataclass
class Rates:
    """Instances per second of one run by CPU and by wall-clock time, and the steal share meanwhile."""

    cpu: float
    wall: float
    steal: float


def raw_spiff(n: int) -> Rates:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(BUNDLE / "overhead.bpmn"))
    spec = parser.get_spec("overhead")
    ticks, wall, began = cpu_ticks(), time.perf_counter(), time.process_time()
    for i in range(n):
        workflow = BpmnWorkflow(spec)
        workflow.get_next_task(spec_name="Start").data.update({"amount": i})
        workflow.do_engine_steps()
        while not workflow.is_completed():
            (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
            task.set_data(note="ok")
            task.run()
            workflow.do_engine_steps()
    cpu, wall = time.process_time() - began, time.perf_counter() - wall
    return Rates(cpu=n / cpu, wall=n / wall, steal=steal_share(ticks, cpu_ticks()))


def procflow(n: int, url: str) -> Rates:
    postgresql = url.startswith("postgresql")
    if postgresql:
        db = fresh_database(url)
    else:
        db = engine.create_db_engine(url)
        engine.upgrade_database(db)
    factory = engine.create_session_factory(db)
    with factory.begin() as s:
        engine.add_organisation(s, "bench", name="Bench")
        engine.add_user(s, "bencher", organisation="bench", roles=["requester"])
        engine.deploy_path(s, BUNDLE)
    server = ServerCpu(db) if postgresql else None
    _run_instance(factory, -1)  # starts the evaluator processes outside the measurement
    ticks, wall = cpu_ticks(), time.perf_counter()
    cpu = _cpu_seconds() + (server.seconds() if server else 0.0)
    for i in range(n):
        _run_instance(factory, i)
    cpu = _cpu_seconds() + (server.seconds() if server else 0.0) - cpu
    wall = time.perf_counter() - wall
    db.dispose()
    if server is not None and not server.available:
        cpu = wall  # the server's CPU cannot be read here: wall-clock time is all there is
    return Rates(cpu=n / cpu, wall=n / wall, steal=steal_share(ticks, cpu_ticks()))


def _cpu_seconds() -> float:
    return time.process_time() + evaluator_pool().cpu_seconds()


def _run_instance(factory: so.sessionmaker[so.Session], i: int) -> None:
    with factory.begin() as s:
        instance_id = engine.start_instance(
            s, "overhead", organisation="bench", user="bencher", data={"amount": i}
        ).id
    status = "running"
    while status != "completed":  # as (a) asks is_completed(), not for tasks it knows are none
        with factory.begin() as s:
            (task,) = engine.list_tasks(s, instance_id=instance_id)
            status = engine.complete_task(s, task.id, user="bencher", data={"note": "ok"}).status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", type=int, nargs="?", default=200)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate (a), (b) and (c) this often; best of each"
    )
    parser.add_argument("--postgres", help="also measure on this PostgreSQL URL (its tables are dropped!)")
    args = parser.parse_args()
    raw_rates: list[Rates] = []
    sqlite_rates: list[Rates] = []
    pg_rates: list[Rates] = []
    for _ in range(args.rounds):
        # Alternating and keeping the best run of each cancels out load that comes and goes.
        raw_rates.append(raw_spiff(args.n))
        with tempfile.TemporaryDirectory() as folder:
            sqlite_rates.append(procflow(args.n, f"sqlite:///{folder}/bench.sqlite3"))
        if args.postgres:
            pg_rates.append(procflow(args.n, args.postgres))
    raw, sqlite = max(rate.cpu for rate in raw_rates), max(rate.cpu for rate in sqlite_rates)
    print(f"(a) SpiffWorkflow in memory:      {raw:8.1f} instances/s")
    print(f"(b) Procflow on SQLite, 4 commits: {sqlite:8.1f} instances/s")
    if pg_rates:
        by_cpu = max(pg_rates, key=lambda rate: rate.cpu)
        print(
            f"(c) Procflow on PostgreSQL, CPU of this process and the server's: {by_cpu.cpu:8.1f} instances/s"
            f"  ratio (c)/(a) {by_cpu.cpu / raw:.3f}"
        )
        # Both by the wall clock, each the best of its rounds as for CPU time: steal that comes
        # and goes slows SpiffWorkflow's runs as it slows PostgreSQL's.
        wall_raw = max(raw_rates, key=lambda rate: rate.wall)
        wall_pg = max(pg_rates, key=lambda rate: rate.wall)
        print(
            f"    the same by wall-clock time:  {wall_pg.wall:8.1f} instances/s"
            f"  over SpiffWorkflow's {wall_raw.wall:.1f} by wall-clock time:"
            f" ratio {wall_pg.wall / wall_raw.wall:.3f}"
            f"  (steal meanwhile: {wall_pg.steal:.0%} of the machine's CPU time in that run,"
            f" {wall_raw.steal:.0%} in SpiffWorkflow's)"
        )
        print(f"    by wall-clock time over SpiffWorkflow's CPU time (a): ratio {wall_pg.wall / raw:.3f}")
    print(f"ratio (b)/(a): {sqlite / raw:.3f}")


if __name__ == "__main__":
    main()
