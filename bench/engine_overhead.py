"""How much does Procflow cost over SpiffWorkflow alone?

Runs one process (start → user task → script → user task → exclusive gateway →
user task → end) N times (a) with SpiffWorkflow in memory and (b) through
Procflow's engine on SQLite, one committed transaction per operation, and, if
a PostgreSQL URL is given, (c) on PostgreSQL. Prints the rates; the last line
is the ratio (b)/(a). Target: at least 0.1.

Times are CPU seconds of this process (SQLite runs in-process) plus those of
its evaluator processes (scripts and expressions run there, see
engine/_evaluator.py), so other load on the machine does not skew the ratio;
PostgreSQL runs in its own server process, so its figure is wall-clock time.

    python bench/engine_overhead.py [N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy.orm as so
from _database import fresh_database
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

import engine
from engine._evaluator import pool as evaluator_pool

BUNDLE = Path(__file__).parent / "overhead"


def raw_spiff(n: int) -> float:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(BUNDLE / "overhead.bpmn"))
    spec = parser.get_spec("overhead")
    began = time.process_time()
    for i in range(n):
        workflow = BpmnWorkflow(spec)
        workflow.get_next_task(spec_name="Start").data.update({"amount": i})
        workflow.do_engine_steps()
        while not workflow.is_completed():
            (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
            task.set_data(note="ok")
            task.run()
            workflow.do_engine_steps()
    return n / (time.process_time() - began)


def procflow(n: int, url: str) -> float:
    if url.startswith("postgresql"):
        db = fresh_database(url)
    else:
        db = engine.create_db_engine(url)
        engine.upgrade_database(db)
    factory = engine.create_session_factory(db)
    with factory.begin() as s:
        engine.add_organisation(s, "bench", name="Bench")
        engine.add_user(s, "bencher", organisation="bench", roles=["requester"])
        engine.deploy_path(s, BUNDLE)
    clock = time.perf_counter if url.startswith("postgresql") else _cpu_seconds
    _run_instance(factory, -1)  # starts the evaluator processes outside the measurement
    began = clock()
    for i in range(n):
        _run_instance(factory, i)
    rate = n / (clock() - began)
    db.dispose()
    return rate


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
    raw_rates, sqlite_rates, pg_rates = [], [], []
    for _ in range(args.rounds):
        # Alternating and keeping the best run of each cancels out load that comes and goes.
        raw_rates.append(raw_spiff(args.n))
        with tempfile.TemporaryDirectory() as folder:
            sqlite_rates.append(procflow(args.n, f"sqlite:///{folder}/bench.sqlite3"))
        if args.postgres:
            pg_rates.append(procflow(args.n, args.postgres))
    raw, sqlite = max(raw_rates), max(sqlite_rates)
    print(f"(a) SpiffWorkflow in memory:      {raw:8.1f} instances/s")
    print(f"(b) Procflow on SQLite, 4 commits: {sqlite:8.1f} instances/s")
    if pg_rates:
        pg = max(pg_rates)
        print(f"(c) Procflow on PostgreSQL:        {pg:8.1f} instances/s  ratio (c)/(a) {pg / raw:.3f}")
    print(f"ratio (b)/(a): {sqlite / raw:.3f}")


if __name__ == "__main__":
    main()
