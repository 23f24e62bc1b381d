"""Do more worker processes fire timers faster?

On PostgreSQL (its tables are dropped and recreated!), starts N instances of
bench/timers (start → timer → script task → end), makes every timer job due,
then drains the job table with 1 worker process, refills it and drains it with
2, then with 4. Workers are real OS processes (multiprocessing, spawn), each
with its own engine, sessions and evaluator pool, running
:func:`engine.run_due_jobs` as ``procflow worker`` does; each one is warmed up
(spec parsed, evaluators started) before the clock starts. A drain's time runs
from the start signal until the last worker found no job left to lease; it is
checked that every timer fired exactly once. Each configuration is run
``--rounds`` times (in turn, so load that comes and goes hits all of them) and
the best rate is kept. Before each drain it waits (a minute at most) for the machine to be
nearly idle, and reports how busy all cores were during the drain: on a shared machine another
program's load shows there. Prints jobs/s per worker count; the last line is the
ratio of 2 workers' rate to 1 worker's. Target on a 2-core machine: ≥ 1.7.

    python bench/workers_scale.py postgresql+psycopg://postgres@127.0.0.1:5432/workers_bench [-n 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import multiprocessing.synchronize
import os
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from _database import fresh_database

import engine

BUNDLE = Path(__file__).parent / "timers"
PROCESS = "bench_timers"
START_BATCH = 100


def prepare(url: str) -> None:
    """Create the database if missing, migrate it afresh (its tables are dropped); deploy the bundle."""
    db = fresh_database(url)
    factory = engine.create_session_factory(db)
    with factory.begin() as s:
        engine.add_organisation(s, "bench", name="Bench")
        engine.add_user(s, "bencher", organisation="bench", roles=["requester"])
        engine.deploy_path(s, BUNDLE)
    db.dispose()


def fill(url: str, n: int) -> None:
    """Empty the instance tables, start *n* instances waiting on a timer and make all timers due."""
    db = engine.create_db_engine(url)
    with db.begin() as conn:
        conn.exec_driver_sql("TRUNCATE process_instance, audit_event, job RESTART IDENTITY CASCADE")
    factory = engine.create_session_factory(db)
    data = {"wait_for": "PT1S", "fired": 0, "warm_up": False}
    for first in range(0, n, START_BATCH):
        with factory.begin() as s:
            for _ in range(min(START_BATCH, n - first)):
                engine.start_instance(s, PROCESS, organisation="bench", user="bencher", data=data)
    with factory() as s:
        latest = s.scalar(sa.select(sa.func.max(engine.Job.due_at)))
    assert latest is not None, "the bench process created no timer jobs"
    # SpiffWorkflow fires a timer only once its own due time has passed, whatever the job row says.
    time.sleep(max(0.0, (latest - engine.models.utcnow()).total_seconds()) + 0.2)
    with db.begin() as conn:
        conn.execute(sa.update(engine.Job).values(due_at=engine.models.utcnow() - dt.timedelta(seconds=1)))
        conn.exec_driver_sql("ANALYZE")
    db.dispose()


def _worker(
    url: str,
    worker_id: str,
    ready: multiprocessing.synchronize.Barrier,
    go: multiprocessing.synchronize.Event,
    results: Any,
) -> None:
    factory = engine.create_session_factory(engine.create_db_engine(url))
    # Warm-up outside the measurement: parses the spec, starts evaluators, fills caches.
    with factory.begin() as s:
        engine.start_instance(
            s, PROCESS, organisation="bench", user="bencher", data={"warm_up": True, "fired": 0}
        )
    ready.wait()
    go.wait()
    summary = engine.run_due_jobs(factory, worker_id=worker_id)
    results.put((worker_id, summary.ran, summary.failed, time.monotonic()))


def drain(url: str, workers: int, n: int) -> float:
    """Drain the due timers with *workers* processes; return jobs per second."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(workers + 1)
    go = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(url, f"bench-{workers}-{i}", ready, go, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=120)
    quiet = wait_for_quiet_machine()
    busy_before = cpu_ticks()
    began = time.monotonic()
    go.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    busy_after = cpu_ticks()
    for process in processes:
        process.join()
    ended = max(o[3] for o in outcomes)
    ran = sum(o[1] for o in outcomes)
    failed = sum(o[2] for o in outcomes)
    check(url, n, ran, failed)
    shares = sorted(o[1] for o in outcomes)
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    # Jobs a worker leased but had not run while the others already found nothing left to do.
    idle_tail = ended - min(o[3] for o in outcomes)
    print(
        f"  {workers} worker(s): {ran / (ended - began):7.1f} jobs/s  (jobs per worker {shares}, "
        f"first idle {idle_tail:.2f} s before the last; all {os.cpu_count()} cores {busy:.0%} busy"
        f"{'' if quiet else ', machine was busy before'})",
        flush=True,
    )
    return ran / (ended - began)


def cpu_ticks() -> tuple[int, int]:
    """Return the machine's busy and total CPU time so far, in clock ticks (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def wait_for_quiet_machine(*, busy_below: float = 0.2, patience: float = 60.0) -> bool:
    """Wait until other programs leave the cores nearly idle (a shared machine); False if they never did."""
    deadline = time.monotonic() + patience
    while True:
        before = cpu_ticks()
        time.sleep(0.5)
        after = cpu_ticks()
        if (after[0] - before[0]) / max(1, after[1] - before[1]) < busy_below:
            return True
        if time.monotonic() > deadline:
            return False


def check(url: str, n: int, ran: int, failed: int) -> None:
    """Fail loudly unless every timer fired exactly once and none is left."""
    db = engine.create_db_engine(url)
    with so.Session(db) as s:
        left = s.scalar(sa.select(sa.func.count(engine.Job.id)))
        fired = s.execute(
            sa.select(engine.AuditEvent.instance_id, sa.func.count())
            .where(engine.AuditEvent.kind == "timer_fired")
            .group_by(engine.AuditEvent.instance_id)
        ).all()
    db.dispose()
    if (ran, failed, left) != (n, 0, 0) or len(fired) != n or any(count != 1 for _, count in fired):
        raise SystemExit(
            f"drain went wrong: ran {ran}, failed {failed}, jobs left {left}, "
            f"instances fired {len(fired)}, fired more than once {sum(c > 1 for _, c in fired)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="PostgreSQL URL; its tables are dropped!")
    parser.add_argument("-n", type=int, default=2000, help="timers per drain")
    parser.add_argument("--rounds", type=int, default=2, help="run every worker count this often; best kept")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    if not {1, 2} <= set(args.workers):
        parser.error("--workers must include 1 and 2: the last line compares them")
    if not args.url.startswith("postgresql"):
        parser.error("workers_scale needs a PostgreSQL URL (SQLite serialises writers)")
    prepare(args.url)
    best: dict[int, float] = {}
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number}:", flush=True)
        for workers in args.workers:
            fill(args.url, args.n)
            best[workers] = max(best.get(workers, 0.0), drain(args.url, workers, args.n))
    for workers in args.workers:
        print(
            f"{workers} worker(s): {best[workers]:7.1f} jobs/s  ({best[workers] / best[1]:.2f}x one worker)"
        )
    print(f"ratio 2 workers / 1 worker: {best[2] / best[1]:.3f}")


if __name__ == "__main__":
    main()
