"""Do the case list and the contact report stay fast as the projection grows? 1 k cases, then 100 k.

Builds two databases of each kind, one with 1 000 cases and one with 100 000
(PostgreSQL: the database given and the same name with ``_small``; SQLite: two
files in a temporary folder; the PostgreSQL tables are dropped and re-created
through the migrations). The rows are bulk inserts, not engine runs (the bench
measures the reads): ``process_instance`` (empty state), its ``case_report``
and ``case_report_value`` rows with the fields each bundle's ``reporting.json``
in ``processes/`` declares, and the cases' ``human_task`` rows (two to four
tasks each, completed by users of the organisation).

The cases are spread over 12 organisations and the years 2021-2025. The
organisation ``central`` is a central purchasing body (customer contacts and
joint mini-competitions, a quarter of the cases); ``city`` is a large buying
organisation (direct procurements, mini-competitions, a goal review now and
then, another quarter); ten smaller ones share the rest. The contact report
measured is ``central``'s for 2024, a year of the same size in both databases
(400 contacts and 60 mini-competitions, cases 1-460): a report over one
organisation's year must not slow down because other years and organisations
grow. The case list is measured for ``city``, whose cases grow a hundredfold:
the first page of all its cases (an auditor's view), the first page of one
case handler's "my cases" (started by them or where they completed a task),
and the first page of a text search for a supplier's name (one in about 7 % of
the procurements). A rare supplier's search (0.7 %) is printed too but is not
in the target: its matches grow with the data (1 at 1 k, ~300 at 100 k) and the
page must sort them, or walk ever more rows to find 50. Each case list request
is what ``/cases`` asks: the page (``engine.cases.case_page``), which says
whether there are more, with no total (a count of the organisation's matching
cases reads all of them: ``--with-count`` adds ``engine.cases.count_cases`` to
each request, to see what it would cost).

Each operation runs as the web app runs it, in a new session, and is timed
``--runs`` times per round (median); the rounds alternate between the small and
the large database, so load from other programs on the machine hits both
alike, and the figures are the medians over ``--rounds`` rounds. Prints each
operation's times and ratio (100 k / 1 k), and as the last line the worst
ratio. Target: at most 2. ``--explain`` prints the plans of the statements
each operation issues, at both sizes (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN
QUERY PLAN on SQLite).

    python bench/reports_scale.py postgresql+psycopg://postgres@127.0.0.1:5432/procflow_bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from _database import fresh_database
from sqlalchemy.engine import make_url

import engine
from engine._reporting_file import REPORTING_FILE, ReportingField, check_reporting_file
from engine.models import Base, DeploymentFile
from engine.projection import search_text

PROCESSES = Path(__file__).parent.parent / "processes"
ORGANISATIONS = ("central", "city", *(f"town{n}" for n in range(1, 11)))
USERS_PER_ORGANISATION = 30
YEARS = (2021, 2022, 2023, 2024, 2025)
REPORT_YEAR = 2024
# central's report year: the same cases (1 .. CONTACTS + MINI_COMPETITIONS) in both databases.
CONTACTS_IN_REPORT_YEAR = 400
MINI_COMPETITIONS_IN_REPORT_YEAR = 60
PAGE_SIZE = 50
BATCH = 5_000

CONTACT = "customer_contact"
DIRECT = "direct_procurement"
MINI = "mini_competition"
GOALS = "goal_review"
# Which processes an organisation runs, with weights.
CENTRAL_MIX = ((CONTACT, 85), (MINI, 15))
BUYER_MIX = ((DIRECT, 62), (MINI, 20), (CONTACT, 15), (GOALS, 3))
ORGANISATION_WEIGHTS = (25, 25) + (5,) * 10
# Hansel's published year: ~570 advice, ~205 comments on documents, the rest in small numbers.
CATEGORY_WEIGHTS = (
    ("advice", 570),
    ("document_comments", 205),
    ("mini_competition", 15),
    ("other", 20),
    ("not_joined", 10),
)
SUPPLIERS = (
    "Kontorsvaruhuset Norden AB",
    "Lindström Byggservice Oy",
    "Pohjolan Siivouspalvelut Oy",
    "Skärgårdens Catering Ab",
    "Tietotekniikka Virtanen Oy",
    "Berglund & Söner Måleri AB",
    "Kuljetus Mäkinen Oy",
    "Nordic Medical Supplies AB",
    "Järvenpään Konepaja Oy",
    "Österbottens Trädgård Ab",
    "Helsingin Kalustetukku Oy",
    "Vasa Elektriska Ab",
    "Tampereen Painotalo Oy",
    "Saimaan Vesihuolto Oy",
    "Ålands Datakonsult Ab",
    "Kajaanin Turvallisuuspalvelu Oy",
    "Lapin Matkailupalvelut Oy",
    "Göteborgs Konsultbyrå AB",
    "Oulun Ympäristötekniikka Oy",
    "Porvoon Lasi ja Peili Oy",
)
# Zipf-like: the first supplier wins a fifth of the direct procurements, the last one a few in a thousand.
SUPPLIER_WEIGHTS = tuple(1 / rank for rank in range(1, len(SUPPLIERS) + 1))
# Searched for: a frequent supplier (the fourth, ~7 % of the procurements), and a rare one (the last,
# ~0.7 %) whose matches grow with the cases (1 -> ~300): printed, but outside the target (see main).
SEARCHED_SUPPLIER = "Skärgårdens Catering"
RARE_SUPPLIER = "Porvoon Lasi"
OUTSIDE_TARGET = "(not in the target)"
AGREEMENTS = (
    "Office supplies 2023-2027",
    "ICT hardware 2022-2026",
    "Cleaning services 2024-2028",
    "Food and catering 2021-2025",
    "Occupational health 2023-2026",
    "Furniture 2022-2026",
    "Travel services 2024-2027",
    "Energy 2021-2025",
    "Printing services 2023-2027",
    "Vehicle leasing 2022-2026",
)
MUNICIPALITIES = ("Espoo", "Vantaa", "Turku", "Oulu", "Lahti", "Kuopio", "Pori", "Joensuu", "Vaasa", "Kotka")
CUSTOMERS = tuple(f"Municipality of {name}" for name in MUNICIPALITIES)
SUBJECTS = (
    "Office chairs",
    "Laptops for the school",
    "Window cleaning",
    "Catering for the council meeting",
    "Road salt",
    "Translation of the strategy",
    "Playground equipment",
    "Consulting on the ERP procurement",
    "Printing of the annual report",
    "Snow removal equipment",
    "Library books",
    "Event technology",
)
PROCEDURES = ("direct_award", "small_value", "exception_urgency", "exception_sole_supplier")
OUTCOMES = ("ordered", "contract_signed", "cancelled", "no_suitable_offer")
TASKS = {
    CONTACT: ("Triage the contact", "Give individual advice", "Reply to the customer", "Close the case"),
    DIRECT: ("Describe the need", "Compare quotes", "Approve the purchase", "Document the procurement"),
    MINI: ("Plan the mini-competition", "Evaluate tenders", "Decide on the award", "Follow up the impact"),
    GOALS: ("Update the goal status", "Review the quarter", "Approve the review"),
}


@dataclass(frozen=True)
class Case:
    """One generated case: who, what and when; its reported fields are filled from the declarations."""

    number: int
    organisation: int  # 1-based index into ORGANISATIONS
    process_id: str
    started_at: dt.datetime
    completed_at: dt.datetime | None
    status: str
    started_by: int | None  # user id
    category: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def declared_fields() -> dict[str, tuple[ReportingField, ...]]:
    """Return the reporting fields each process of ``processes/`` declares (none without the file)."""
    declared = {}
    for process in (CONTACT, DIRECT, MINI, GOALS):
        path = PROCESSES / process / REPORTING_FILE
        declared[process] = check_reporting_file(path.read_text()) if path.exists() else ()
    return declared


def user_id(organisation: int, number: int) -> int:
    """The id of user *number* (1-based) of *organisation*: build_schema adds them in this order."""
    return (organisation - 1) * USERS_PER_ORGANISATION + number


def weighted(rng: random.Random, pairs: Sequence[tuple[str, float]]) -> str:
    return rng.choices([name for name, _ in pairs], [weight for _, weight in pairs])[0]


def generate(number: int, declared: dict[str, tuple[ReportingField, ...]]) -> Case:
    """Return case *number*, the same on every run and in both databases."""
    rng = random.Random(number * 7919 + 17)
    if number <= CONTACTS_IN_REPORT_YEAR + MINI_COMPETITIONS_IN_REPORT_YEAR:
        organisation, year = 1, REPORT_YEAR
        process = CONTACT if number <= CONTACTS_IN_REPORT_YEAR else MINI
    else:
        organisation = rng.choices(range(1, len(ORGANISATIONS) + 1), ORGANISATION_WEIGHTS)[0]
        years = [y for y in YEARS if organisation != 1 or y != REPORT_YEAR]
        year = rng.choice(years)
        process = weighted(rng, CENTRAL_MIX if organisation == 1 else BUYER_MIX)
    started_at = dt.datetime(year, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(365 * 86400))
    finished = rng.random() < (0.45 if year == YEARS[-1] else 0.95)
    status = ("cancelled" if rng.random() < 0.06 else "completed") if finished else "running"
    completed_at = started_at + dt.timedelta(hours=rng.randrange(2, 24 * 60)) if finished else None
    intake = process == CONTACT and rng.random() < 0.6  # a web form's contact has no starter
    started_by = None if intake else user_id(organisation, rng.randrange(1, USERS_PER_ORGANISATION + 1))
    case = Case(
        number=number,
        organisation=organisation,
        process_id=process,
        started_at=started_at,
        completed_at=completed_at,
        status=status,
        started_by=started_by,
        category=weighted(rng, CATEGORY_WEIGHTS) if process == CONTACT else None,
    )
    for declaration in declared[process]:
        case.fields[declaration.name] = field_value(declaration, case, rng)
    return case


def field_value(declaration: ReportingField, case: Case, rng: random.Random) -> Any:
    """A plausible value for a declared field, by its name (the processes' own names) or else its type."""
    name, kind = declaration.name, declaration.type
    if kind == "json":
        return []
    if kind == "boolean":
        share = {"sla_met": 0.87, "documentation_required": 0.3, "closed_without_reply": 0.05}
        return rng.random() < share.get(name, 0.5)
    if kind in ("number", "integer"):
        if "satisfaction" in name:
            return rng.randint(1, 5) if rng.random() < 0.45 else None
        if "year" in name:
            return case.started_at.year
        if name.startswith("impact_"):
            return 100 if name.endswith("_max") else rng.randint(20, 100)
        if kind == "integer":
            return rng.randint(1, 10)
        return round(rng.lognormvariate(9, 1.2), 2)
    if kind == "date":
        return (
            case.started_at.date() + dt.timedelta(days=30 if "due" in name else rng.randrange(60))
        ).isoformat()
    if kind == "date-time":
        return (case.started_at + dt.timedelta(hours=rng.randrange(1, 240))).isoformat()
    if "org_number" in name:
        return f"{rng.randrange(1000000, 9999999)}-{rng.randrange(10)}"
    if name == "category" and case.category is not None:
        return case.category
    if "category" in name:
        return rng.choice(CATEGORY_WEIGHTS)[0]
    if name == "supplier":
        return rng.choices(SUPPLIERS, SUPPLIER_WEIGHTS)[0]
    if name == "agreement":
        return rng.choice(AGREEMENTS)
    if "customer" in name or name == "buyer_name":
        return rng.choice(CUSTOMERS)
    if name == "subject":
        return rng.choice(SUBJECTS)
    if name == "origin":
        return "customer_contact" if rng.random() < 0.8 else "manual"
    if "cpv" in name:
        group = rng.choice(("30", "39", "45", "55", "72", "79", "90"))
        return group if "group" in name else f"{group}{rng.randrange(100000, 999999)}-{rng.randrange(10)}"
    choices = {
        "currency": ("EUR",),
        "procedure": PROCEDURES,
        "outcome": OUTCOMES,
        "approver_level": ("unit_head", "director", "board"),
        "channel": ("web", "email", "phone"),
        "language": ("fi", "sv", "en"),
        "urgency": ("normal", "urgent"),
        "lot": ("Lot 1", "Lot 2", "Lot 3"),
        "region": ("Uusimaa", "Pirkanmaa", "Ostrobothnia", "Lapland"),
    }
    if name in choices:
        return rng.choice(choices[name])
    if name.endswith("_ref"):
        return f"{case.process_id[:2].upper()}-{case.started_at.year}-{case.number:06d}"
    return f"{name.replace('_', ' ')} {rng.randrange(1, 25)}"


def build_schema(factory: so.sessionmaker[so.Session]) -> None:
    """Add organisations, users (mostly case handlers; admins and auditors too) and the processes.

    Each process is a deployment holding its ``reporting.json`` (the case list's text search reads
    which fields are searchable from it); no BPMN: the bench never runs an instance.
    """
    roles = ["case_handler"] * 22 + ["requester"] * 4 + ["admin"] * 2 + ["auditor"] * 2
    with factory.begin() as session:
        for o, key in enumerate(ORGANISATIONS, start=1):
            engine.add_organisation(session, key, name=key.capitalize())
            for u in range(1, USERS_PER_ORGANISATION + 1):
                user = engine.add_user(session, f"{key}-user{u:02d}", organisation=key, roles=[roles[u - 1]])
                assert user.id == user_id(o, u), "generate() relies on users' ids"
        for process, definition_id in DEFINITION_IDS.items():
            path = PROCESSES / process / REPORTING_FILE
            files = (
                [DeploymentFile(name=REPORTING_FILE, kind="json", content=path.read_text())]
                if path.exists()
                else []
            )
            deployment = engine.Deployment(name=process, content_hash=f"bench-{process}", files=files)
            session.add(deployment)
            session.add(
                engine.ProcessDefinition(
                    id=definition_id,
                    deployment=deployment,
                    process_id=process,
                    name=process,
                    version=1,
                    content_hash=f"bench-{process}",
                )
            )


DEFINITION_IDS = {CONTACT: 1, DIRECT: 2, MINI: 3, GOALS: 4}
TITLES = {CONTACT: "Contact", DIRECT: "Direct procurement", MINI: "Mini-competition", GOALS: "Goal review"}


def rows(
    case: Case, declared: dict[str, tuple[ReportingField, ...]], next_task: int
) -> dict[str, list[dict[str, Any]]]:
    """The rows of *case* in the tables the bench fills (task ids from *next_task* on)."""
    started = case.started_at
    what = case.fields.get("subject") or case.fields.get("agreement") or case.category or ""
    title = f"{TITLES[case.process_id]} {case.number}: {what}".strip()
    key = f"{case.process_id[:3].upper()}-{started.year}-{case.number:06d}"
    updated = case.completed_at or started + dt.timedelta(days=1)
    instance = {
        "id": case.number,
        "definition_id": DEFINITION_IDS[case.process_id],
        "organisation_id": case.organisation,
        "process_id": case.process_id,
        "status": case.status,
        "business_key": key,
        "title": title,
        "started_by_id": case.started_by,
        "created_at": started,
        "updated_at": updated,
        "completed_at": case.completed_at,
        "state": "",
        "serializer_version": "1",
        "lock_version": 1,
        "is_test": False,
    }
    report = {
        "instance_id": case.number,
        "organisation_id": case.organisation,
        "process_id": case.process_id,
        "status": case.status,
        "title": title,
        "business_key": key,
        "started_by_id": case.started_by,
        "started_at": started,
        "completed_at": case.completed_at,
        "updated_at": updated,
        "fields": case.fields,
        # As the engine writes it (engine/projection.py): what the case list's text search reads.
        "search_text": search_text(
            title, key, [case.fields.get(f.name) for f in declared[case.process_id] if f.search]
        ),
    }
    values = []
    for declaration in declared[case.process_id]:
        if not declaration.indexed:
            continue
        value = case.fields.get(declaration.name)
        value_row: dict[str, Any] = {
            "instance_id": case.number,
            "name": declaration.name,
            "organisation_id": case.organisation,
            "process_id": case.process_id,
            "text_value": None,
            "number_value": None,
            "date_value": None,
            "time_value": None,
        }
        if value is None:
            pass
        elif declaration.type == "boolean":
            value_row["text_value"] = "true" if value else "false"
        elif declaration.type in ("number", "integer"):
            value_row["number_value"] = Decimal(str(value))
        elif declaration.type == "date":
            value_row["date_value"] = dt.date.fromisoformat(value)
        elif declaration.type == "date-time":
            value_row["time_value"] = dt.datetime.fromisoformat(value)
        else:
            value_row["text_value"] = str(value)[:300]
        values.append(value_row)
    rng = random.Random(case.number * 104729 + 3)
    names = TASKS[case.process_id]
    count = rng.randint(2, len(names))
    tasks = []
    for t in range(count):
        open_task = case.status == "running" and t == count - 1
        created = started + dt.timedelta(hours=t * rng.randrange(1, 72))
        # Users 1-22 of an organisation are its case handlers (build_schema).
        handler = None if open_task else user_id(case.organisation, rng.randrange(1, 23))
        tasks.append(
            {
                "id": next_task + t,
                "instance_id": case.number,
                "organisation_id": case.organisation,
                "process_id": case.process_id,
                "task_uuid": f"{case.number:08d}-{t:04d}",
                "bpmn_id": f"task_{t}",
                "name": names[t],
                "candidate_group": "handlers",
                "assignee_id": handler,
                "state": "ready" if open_task else "completed",
                "created_at": created,
                "completed_at": None if open_task else created + dt.timedelta(hours=rng.randrange(1, 48)),
                "completed_by_id": handler,
            }
        )
    return {"instance": [instance], "report": [report], "values": values, "tasks": tasks}


TABLES = {
    "instance": Base.metadata.tables["process_instance"],
    "report": Base.metadata.tables["case_report"],
    "values": Base.metadata.tables["case_report_value"],
    "tasks": Base.metadata.tables["human_task"],
}


def fill(db: sa.Engine, count: int, declared: dict[str, tuple[ReportingField, ...]]) -> None:
    """Insert cases 1..*count* in batches; then refresh the planner's statistics."""
    on_postgresql = db.dialect.name == "postgresql"
    next_task = 1
    for first in range(1, count + 1, BATCH):
        batch: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        for number in range(first, min(first + BATCH, count + 1)):
            for name, table_rows in rows(generate(number, declared), declared, next_task).items():
                batch[name].extend(table_rows)
            next_task = batch["tasks"][-1]["id"] + 1
        with db.begin() as conn:
            for name, table in TABLES.items():
                if batch[name]:
                    if on_postgresql:
                        copy_rows(conn, table, batch[name])
                    else:
                        conn.execute(table.insert(), batch[name])
    with db.connect() as conn:
        if on_postgresql:
            conn.exec_driver_sql(
                "SELECT setval('process_instance_id_seq', (SELECT max(id) FROM process_instance))"
            )
            conn.exec_driver_sql("SELECT setval('human_task_id_seq', (SELECT max(id) FROM human_task))")
            conn.commit()
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE process_instance, case_report, case_report_value, human_task"
            )
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def copy_rows(conn: sa.Connection, table: sa.Table, table_rows: list[dict[str, Any]]) -> None:
    """COPY *table_rows* into *table* (PostgreSQL's bulk load; the rows' keys are its columns)."""
    columns = list(table_rows[0])
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in table_rows:
            copy.write_row([json.dumps(row[c]) if isinstance(row[c], dict) else row[c] for c in columns])


# --- measuring ------------------------------------------------------------------------------------

Operation = Callable[[so.Session], Any]


def operations(with_count: bool) -> dict[str, tuple[Operation, Callable[[Any], str]]]:
    """The operations measured, by label: each a call as the web app makes it, and what it found.

    A case list request is :func:`~engine.cases.case_page`, as ``/cases`` makes it, and
    with *with_count* also :func:`~engine.cases.count_cases` (which ``/cases`` does not call).
    """
    found: dict[str, tuple[Operation, Callable[[Any], str]]] = {}
    from engine.cases import CaseFilter, case_page, count_cases
    from engine.reports import Period, contact_report

    city = ORGANISATIONS.index("city") + 1
    handler = user_id(city, 3)

    def page(where: CaseFilter) -> Operation:
        def request(session: so.Session) -> Any:
            # As web/cases.py asks for it: the list shows no reported fields.
            listed = case_page(session, organisation_id=city, where=where, limit=PAGE_SIZE, with_fields=False)
            total = count_cases(session, organisation_id=city, where=where) if with_count else None
            return listed, total

        return request

    def rows(result: Any) -> str:
        listed, total = result
        more = ", more" if listed.next_cursor else ""
        return f"{len(listed.rows)} rows{more}" + (f" of {total}" if total is not None else "")

    found["case list, all of city's cases"] = (page(CaseFilter()), rows)
    found["case list, a case handler's cases"] = (page(CaseFilter(participant_id=handler)), rows)
    found[f"case list, text {SEARCHED_SUPPLIER!r}"] = (page(CaseFilter(text=SEARCHED_SUPPLIER)), rows)
    found[f"case list, text {RARE_SUPPLIER!r} {OUTSIDE_TARGET}"] = (
        page(CaseFilter(text=RARE_SUPPLIER)),
        rows,
    )
    year = Period(dt.date(REPORT_YEAR, 1, 1), dt.date(REPORT_YEAR, 12, 31))

    def contacts(session: so.Session) -> Any:
        report = contact_report(session, organisation_id=1, period=year)
        assert report.total == CONTACTS_IN_REPORT_YEAR, report.total  # the same year in both databases
        return report

    found[f"contact report, central {REPORT_YEAR}"] = (
        contacts,
        lambda r: f"{r.total} contacts, {r.mini_competitions_run} mini-competitions run",
    )
    return found


def median_ms(factory: so.sessionmaker[so.Session], operation: Operation, runs: int) -> float:
    """The median time of *operation* in a new session, over *runs* calls after a few unmeasured ones."""
    for _ in range(max(2, runs // 10)):
        with factory() as session:
            operation(session)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        with factory() as session:
            operation(session)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


@dataclass
class Databases:
    """One database kind at both sizes."""

    label: str
    small: sa.Engine
    large: sa.Engine


def explain(db: sa.Engine, operation: Operation) -> list[str]:
    """Return the plans of the SELECTs *operation* issues (EXPLAIN ANALYZE, or SQLite's query plan)."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    sa.event.listen(db, "before_cursor_execute", record)
    try:
        with so.Session(db) as session:
            operation(session)
    finally:
        sa.event.remove(db, "before_cursor_execute", record)
    on_postgresql = db.dialect.name == "postgresql"
    lines = []
    with db.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in statements:
            lines.append("  " + " ".join(statement.split())[:2000])
            if on_postgresql:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                lines.extend("    " + row[0] for row in cursor.fetchall())
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                lines.extend(f"    {row[0]:>3} {row[1]:>3} {row[3]}" for row in cursor.fetchall())
    return lines


def measure(
    databases: Databases, rounds: int, runs: int, sizes: tuple[int, int], show_plans: bool, with_count: bool
) -> dict[str, float]:
    """Time every operation at both sizes, alternating; print the medians; return the ratios by label."""
    found = operations(with_count)
    small_factory = engine.create_session_factory(databases.small)
    large_factory = engine.create_session_factory(databases.large)
    results: dict[tuple[str, str], list[float]] = {}
    for label, (operation, summary) in found.items():
        with small_factory() as on_small, large_factory() as on_large:
            print(f"  {label}: {summary(operation(on_small))} / {summary(operation(on_large))}")
        if show_plans:
            for size, db in (("small", databases.small), ("large", databases.large)):
                print(f"  --- plans of {label!r} ({size}):")
                print("\n".join(explain(db, operation)))
    for round_number in range(rounds):
        order = (("small", small_factory), ("large", large_factory))
        for label, (operation, _) in found.items():
            for size, factory in order if round_number % 2 == 0 else reversed(order):
                results.setdefault((label, size), []).append(median_ms(factory, operation, runs))
    ratios = {}
    for label in found:
        small = statistics.median(results[(label, "small")])
        large = statistics.median(results[(label, "large")])
        per_round = [b / a for a, b in zip(results[(label, "small")], results[(label, "large")], strict=True)]
        ratios[f"{label} ({databases.label})"] = large / small
        print(
            f"  {label}: {small:.2f} ms at {sizes[0]:,}, {large:.2f} ms at {sizes[1]:,}: "
            f"{large / small:.2f}x (rounds {min(per_round):.2f}-{max(per_round):.2f}x)"
        )
    return ratios


def prepare(db: sa.Engine, count: int, declared: dict[str, tuple[ReportingField, ...]]) -> None:
    """Fill the freshly migrated *db* with *count* cases; print how long it took."""
    began = time.perf_counter()
    build_schema(engine.create_session_factory(db))
    fill(db, count, declared)
    print(f"  {count:,} cases on {db.dialect.name} in {time.perf_counter() - began:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="a PostgreSQL database whose tables may be dropped (and NAME_small too)")
    parser.add_argument("--small", type=int, default=1_000, help="cases in the small databases")
    parser.add_argument("--large", type=int, default=100_000, help="cases in the large databases")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of measurements (medians)")
    parser.add_argument("--runs", type=int, default=40, help="calls per operation, size and round")
    parser.add_argument("--explain", action="store_true", help="print the plans of the operations' queries")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    parser.add_argument(
        "--with-count",
        action="store_true",
        help="time each case list page with a count of all its matching cases (count_cases; /cases has none)",
    )
    args = parser.parse_args()
    if not args.url.startswith("postgresql"):
        parser.error("give a PostgreSQL URL (postgresql+psycopg://...)")
    minimum = CONTACTS_IN_REPORT_YEAR + MINI_COMPETITIONS_IN_REPORT_YEAR
    if not minimum < args.small < args.large:
        parser.error(f"need {minimum} < --small < --large")
    declared = declared_fields()
    sizes = (args.small, args.large)
    url = make_url(args.url)
    small_url = url.set(database=f"{url.database}_small").render_as_string(hide_password=False)
    targets = [Databases("PostgreSQL", fresh_database(small_url), fresh_database(args.url))]
    with tempfile.TemporaryDirectory(prefix="reports-scale-") as folder:
        if not args.no_sqlite:
            pair = [
                engine.create_db_engine(f"sqlite:///{folder}/{name}.sqlite3") for name in ("small", "large")
            ]
            for db in pair:
                engine.upgrade_database(db)
            targets.append(Databases("SQLite", *pair))
        print("filling:")
        for target in targets:
            prepare(target.small, args.small, declared)
            prepare(target.large, args.large, declared)
        ratios: dict[str, float] = {}
        for target in targets:
            print(f"{target.label}, {args.rounds} rounds of {args.runs} calls:")
            ratios.update(measure(target, args.rounds, args.runs, sizes, args.explain, args.with_count))
            target.small.dispose()
            target.large.dispose()
    # A rare term's first page sorts all its matches, which grow with the data: no index keeps that flat.
    counted = {label: ratio for label, ratio in ratios.items() if OUTSIDE_TARGET not in label}
    worst = max(counted, key=counted.__getitem__)
    print(f"worst: {worst}, {ratios[worst]:.2f}x ({args.large:,} / {args.small:,} cases)")
    print(f"{ratios[worst]:.2f}")


if __name__ == "__main__":
    main()
