"""Does the inbox stay fast as the task index grows? 1 k rows in ``human_task``, then 1 M.

Builds, in the PostgreSQL database given (its tables are dropped and
re-created through the migrations), 50 organisations of 40 users and 12
groups each; organisation 1 is the large one (a fifth of all cases). Cases
have four tasks each; one task in ten is open, 15 % have no candidate group,
30 % of the open ones are claimed, 60 % have a due date, and each task
excludes its case's starter (separation of duties). The user measured is a
case handler of the large organisation in three of its groups.

Times, as the web app runs them for the inbox (engine.inbox_counts for the
navigation, engine.inbox_page for the table, each in a new session), the
first page, and a page deep in the list (through the cursor of the task at
60 % of what the user sees), first with 1 k rows, then after filling the same
distribution up to 1 M rows with ``INSERT … SELECT generate_series``. Prints
the medians and, as the last line, the larger of the two ratios 1 M / 1 k.
Target: at most 2.

    python bench/inbox_scale.py postgresql+psycopg://postgres@127.0.0.1:5432/inbox_bench
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import sqlalchemy as sa
import sqlalchemy.orm as so
from _database import fresh_database

import engine

ORGANISATIONS = 50
USERS_PER_ORGANISATION = 40
GROUPS_PER_ORGANISATION = 12
PROCESSES = 8
TASKS_PER_CASE = 4
PAGE_SIZE = 20
RUNS = 300
TASK_NAMES = [
    "Review the request",
    "Approve the purchase",
    "Check the supplier",
    "Compare quotes",
    "Sign the contract",
    "Register the order",
    "Confirm delivery",
    "Check the invoice",
    "Decide on the appeal",
    "Ask for more information",
    "Publish the notice",
    "Evaluate tenders",
    "Notify the bidders",
    "Archive the case",
    "Plan the procurement",
    "Estimate the value",
]


# h(x, salt): a well-mixed number from 0 up, the same on every run.
def h(x: str, salt: int, modulo: int) -> str:
    return f"mod(abs(hashint8(({x})::bigint * 1000 + {salt})), {modulo})"


def role(number: int) -> str:
    """Return the role of user *number* (1-40) of an organisation: mostly case handlers, two auditors."""
    return (
        "case_handler"
        if number <= 30
        else "requester"
        if number <= 35
        else "admin"
        if number <= 38
        else "auditor"
    )


def build_schema(factory: so.sessionmaker[so.Session]) -> None:
    """Add organisations, users, groups and processes to the fresh schema."""
    with factory.begin() as session:
        for o in range(1, ORGANISATIONS + 1):
            engine.add_organisation(session, f"org{o}", name=f"Organisation {o}")
            for u in range(1, USERS_PER_ORGANISATION + 1):
                # Each user is in three of the organisation's groups.
                groups = [f"g{(u + shift) % GROUPS_PER_ORGANISATION + 1}" for shift in (0, 4, 8)]
                user = engine.add_user(
                    session,
                    f"user{(o - 1) * USERS_PER_ORGANISATION + u}",
                    organisation=f"org{o}",
                    roles=[role(u)],
                    groups=groups,
                )
                # fill() computes assignees and starters from these ids.
                assert user.id == (o - 1) * USERS_PER_ORGANISATION + u
        deployment = engine.Deployment(name="bench", content_hash="bench")
        session.add(deployment)
        for p in range(1, PROCESSES + 1):
            session.add(
                engine.ProcessDefinition(
                    id=p,
                    deployment=deployment,
                    process_id=f"proc{p}",
                    name=f"Process {p}",
                    version=1,
                    content_hash="bench",
                )
            )


def fill(db: sa.Engine, first: int, last: int) -> None:
    """Add tasks *first*..*last* (and their cases and exclusions) with the bench's distribution."""
    case_first, case_last = (first - 1) // TASKS_PER_CASE + 1, last // TASKS_PER_CASE
    org = f"(CASE WHEN mod(c, 5) = 0 THEN 1 ELSE 2 + {h('c', 1, ORGANISATIONS - 1)} END)"
    starter = f"(({org} - 1) * {USERS_PER_ORGANISATION} + 1 + {h('c', 2, USERS_PER_ORGANISATION)})"
    names = "(ARRAY[" + ", ".join(f"'{name}'" for name in TASK_NAMES) + "])"
    with db.begin() as conn:
        run = conn.exec_driver_sql
        run("SET LOCAL session_replication_role = replica")  # no foreign-key triggers while loading
        run(
            "INSERT INTO process_instance (id, definition_id, organisation_id, process_id, status, "
            "business_key, title, started_by_id, created_at, updated_at, state, serializer_version, "
            "lock_version) "
            f"SELECT c, 1 + {h('c', 3, PROCESSES)}, {org}, 'proc' || (1 + {h('c', 3, PROCESSES)}), "
            "'running', "
            f"'BK-' || c, 'Case ' || c || ' for ' || {names}[1 + {h('c', 4, len(TASK_NAMES))}], {starter}, "
            f"now() - interval '1 minute' * {h('c', 5, 1_000_000)}, now(), '', '1', 1 "
            f"FROM generate_series({case_first}, {case_last}) c"
        )
        task = f"(c - 1) * {TASKS_PER_CASE} + t"
        ready = f"({h(task, 6, 10)} = 0)"
        assignee = (
            f"CASE WHEN NOT {ready} OR {h(task, 8, 100)} < 30 "
            f"THEN ({org} - 1) * {USERS_PER_ORGANISATION} + 1 + {h(task, 9, USERS_PER_ORGANISATION)} END"
        )
        run(
            "INSERT INTO human_task (id, instance_id, organisation_id, process_id, task_uuid, bpmn_id, name, "
            "candidate_group, assignee_id, state, due_at, created_at, completed_at) "
            f"SELECT {task}, c, {org}, 'proc' || (1 + {h('c', 3, PROCESSES)}), "
            f"md5(({task})::text), 'task' || t, {names}[1 + {h(task, 7, len(TASK_NAMES))}], "
            f"CASE WHEN {h(task, 10, 100)} >= 15 "
            f"THEN 'g' || (1 + {h(task, 11, GROUPS_PER_ORGANISATION)}) END, "
            f"{assignee}, CASE WHEN {ready} THEN 'ready' ELSE 'completed' END, "
            f"CASE WHEN {h(task, 12, 100)} < 60 THEN now() + interval '1 minute' * "
            f"({h(task, 13, 172_800)} - 86400) END, "
            f"now() - interval '1 second' * {h(task, 14, 60_000_000)}, "
            f"CASE WHEN NOT {ready} THEN now() END "
            f"FROM generate_series({case_first}, {case_last}) c, generate_series(1, {TASKS_PER_CASE}) t"
        )
        run(
            "INSERT INTO human_task_exclusion (human_task_id, user_id) "
            f"SELECT {task}, {starter} "
            f"FROM generate_series({case_first}, {case_last}) c, generate_series(1, {TASKS_PER_CASE}) t"
        )
        run("SELECT setval('human_task_id_seq', (SELECT max(id) FROM human_task))")
        run("SELECT setval('process_instance_id_seq', (SELECT max(id) FROM process_instance))")
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE process_instance, human_task, human_task_exclusion"
        )


def median_ms(operation: Callable[[], object], runs: int = RUNS) -> float:
    for _ in range(runs // 10):
        operation()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        operation()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def measure(factory: so.sessionmaker[so.Session], label: str) -> tuple[float, float]:
    """Time the inbox's first page and a deep page (each with the counts); return both medians in ms."""
    with factory() as session:
        user = engine.get_user(session, "user1")
        where = engine.TaskFilter(organisation_id=1)
        counts = engine.inbox_counts(session, user_id=user.id, where=where)
        visible = engine.list_tasks(session, user=user.username, organisation_id=1)
        assert len(visible) == counts.all, (len(visible), counts)
        visible.sort(key=lambda t: (t.due_at is None, t.due_at or t.created_at, t.created_at, t.id))
        deep_cursor = engine.inbox_cursor("due", visible[int(len(visible) * 0.6)])

    def request(after: str | None) -> Callable[[], object]:
        def run() -> object:
            with factory() as session:
                counts = engine.inbox_counts(session, user_id=user.id, where=where)
                page = engine.inbox_page(session, user_id=user.id, where=where, limit=PAGE_SIZE, after=after)
                assert page.tasks and counts.all
                return page

        return run

    first = median_ms(request(None))
    deep = median_ms(request(deep_cursor))
    print(
        f"{label}: {counts.all} tasks visible to the user ({counts.mine} assigned to them); "
        f"first page + counts {first:.2f} ms, page at 60 % + counts {deep:.2f} ms"
    )
    return first, deep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="a PostgreSQL database whose tables may be dropped")
    args = parser.parse_args()
    if not args.url.startswith("postgresql"):
        parser.error("give a PostgreSQL URL (postgresql+psycopg://...)")
    db = fresh_database(args.url)
    factory = engine.create_session_factory(db)
    build_schema(factory)
    fill(db, 1, 1_000)
    small = measure(factory, "1 k tasks")
    began = time.perf_counter()
    fill(db, 1_001, 1_000_000)
    print(f"filled to 1 M tasks in {time.perf_counter() - began:.0f} s")
    large = measure(factory, "1 M tasks")
    db.dispose()
    print(f"first page {large[0] / small[0]:.2f}x, deep page {large[1] / small[1]:.2f}x")
    print(f"{max(large[0] / small[0], large[1] / small[1]):.2f}")


if __name__ == "__main__":
    main()
