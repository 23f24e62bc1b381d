"""A year of demo cases run through the engine on the dates they happened (``procflow demo history``).

Every case is a small script (a generator) that acts as the people of the demo
organisation would: it starts a case or delivers a message, completes the tasks
the engine offers with valid form data, and says when it acts next. One
simulated clock (``time_machine``) moves forward from step to step; before it
passes a job's due time it stops there and lets the job runner
(:func:`engine.run_due_jobs`) fire it, so service-level escalations, quote and
tender deadlines, standstill periods and quarter ends happen at their own
times, as a worker would run them. Each step is its own transaction, as in the
web app.

The central purchasing body of the demo (``yhteishankinnat``) gets the contact
breakdown Hansel published for 2023: from the end of April a little over 800
contact requests, :data:`CONTACTS` by category, and :data:`JOINT_MINI_COMPETITIONS`
mini-competitions run together with customers (a few kicked off from a
contact, the others opened by the customer's buyer in the central body's
case list). A buying organisation (``exempelby``, ``esimerkkila``) gets direct
procurements (above and below the documentation threshold; ordered, not
approved, stopped, cancelled), mini-competitions and a goal review with its
quarterly status updates.

The same seed gives the same cases, the same data and the same dates. A year
that is not over yet runs up to now. An organisation that already has cases
started in the year is refused (:class:`HistoryExistsError`).

Cost: the central body's year is about 5 800 engine operations (starts,
completions, messages) and 5 500 jobs (timers and the outbox's e-mails, which
only log without ``PROCFLOW_SMTP_HOST``; the run unsets it), each its own
transaction: some 150 s of CPU, nearly all of it in the engine's own steps
(restoring and saving the workflow, the sandbox's expressions, the parameters
read per operation). A buying organisation's year is about 300 operations.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
import os
import random
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
import time_machine

from .definitions import deploy_path
from .errors import ProcflowError
from .identity import get_organisation
from .jobs import run_due_jobs
from .messages import send_message
from .models import Group, HumanTask, Job, Membership, ProcessInstance, User
from .runtime import cancel_instance, complete_task, get_instance, instance_data, start_instance, task_data
from .time_zones import organisation_time_zone
from .working_days import add_working_days

PROCESSES = Path(__file__).resolve().parent.parent / "processes"

#: Contact requests of the central purchasing body by category (the report's categories).
CONTACTS: dict[str, int] = {
    "advice": 571,
    "document_comments": 204,
    "mini_competition": 18,
    "other": 13,
    "not_joined": 8,
}
#: Mini-competitions the central purchasing body runs together with its customers in the year.
JOINT_MINI_COMPETITIONS = 120
#: Contacts arrive from this day of the year on (Hansel automated its contact intake in April).
CONTACTS_FROM = (4, 24)

#: Who the demo organisations are: which kind of year they have and the prefix of their users.
PROFILES: dict[str, tuple[str, str]] = {
    "yhteishankinnat": ("central", "cpb"),
    "exempelby": ("buyer", "se"),
    "esimerkkila": ("buyer", "fi"),
}

Script = Generator[dt.datetime | None, None, None]


class HistoryError(ProcflowError):
    """Demo history cannot run for this organisation or year."""


class HistoryExistsError(HistoryError):
    """The organisation already has cases started in the year."""


@dataclass
class HistorySummary:
    """What one run of the demo history did."""

    organisation: str
    year: int
    seed: int
    until: dt.datetime
    started: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    jobs_ran: int = 0
    jobs_failed: int = 0
    incidents: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "organisation": self.organisation,
            "year": self.year,
            "seed": self.seed,
            "until": self.until.isoformat(),
            "started": dict(sorted(self.started.items())),
            "steps": self.steps,
            "jobs_ran": self.jobs_ran,
            "jobs_failed": self.jobs_failed,
            "incidents": self.incidents,
            "errors": self.errors,
        }


def history_count(session: so.Session, organisation_id: int, year: int) -> int:
    """Return how many (real) cases *organisation_id* has started in *year* (UTC)."""
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ProcessInstance)
            .where(
                ProcessInstance.organisation_id == organisation_id,
                ProcessInstance.is_test.is_(False),
                ProcessInstance.created_at >= start,
                ProcessInstance.created_at < end,
            )
        )
        or 0
    )


def run_history(
    session_factory: so.sessionmaker[so.Session],
    *,
    organisation: str,
    year: int,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
    now: dt.datetime | None = None,
) -> HistorySummary:
    """Run the demo year *year* of *organisation* through the engine; return what it did.

    *progress* is called with the number of simulated days passed since the
    last call (:func:`history_days` days in all). Deploys the shared processes
    of ``processes/`` first (a no-op when they are deployed already).

    :raises HistoryError: not a demo organisation, its users are not loaded, or the year is in the future.
    :raises HistoryExistsError: the organisation already has cases started in the year.
    """
    real_now = now or dt.datetime.now(dt.UTC)
    if organisation not in PROFILES:
        raise HistoryError(
            f"demo history knows the demo organisations {', '.join(sorted(PROFILES))}, not {organisation!r}"
        )
    if year > real_now.year:
        raise HistoryError(f"The year {year} has not begun; demo history runs a past or the current year")
    if year < 2000:
        raise HistoryError(f"The year {year} is before the demo's parameters (2000 and later)")
    kind, prefix = PROFILES[organisation]
    with session_factory() as s:
        organisation_row = get_organisation(s, organisation)
        existing = history_count(s, organisation_row.id, year)
        if existing:
            raise HistoryExistsError(
                f"{organisation} already has {existing} case(s) started in {year}; demo history runs once "
                "per organisation and year (start from a fresh database, or choose another year)"
            )
        missing = [
            u
            for u in _users_needed(kind, prefix)
            if s.scalar(sa.select(User.id).where(User.username == u)) is None
        ]
        if missing:
            raise HistoryError(
                f"The demo users {', '.join(missing)} are missing: run `procflow demo load` first"
            )
    until = min(dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC), real_now)
    sim = _Simulation(session_factory, organisation, year, seed, until, progress)
    with sim.clock(dt.datetime(year, 1, 1, 0, 5, tzinfo=dt.UTC)):
        sim.deploy()
        if kind == "central":
            _central_year(sim)
        else:
            _buyer_year(sim, prefix)
        sim.run()
    return sim.summary


def history_days(year: int, now: dt.datetime | None = None) -> int:
    """Return how many days of *year* a run covers (all of them, or up to *now* in the current year)."""
    real_now = now or dt.datetime.now(dt.UTC)
    until = min(dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC), real_now)
    return max(0, (until - dt.datetime(year, 1, 1, tzinfo=dt.UTC)).days)


def _users_needed(kind: str, prefix: str) -> list[str]:
    if kind == "central":
        return [f"cpb-{r}" for r in ("support", "lawyer", "category-manager", "team-lead", "customer-buyer")]
    return [f"{prefix}-{r}" for r in ("requester", "buyer", "unit-head", "director", "quality", "admin")]


# -- the simulation -------------------------------------------------------------------


class _Simulation:
    def __init__(
        self,
        session_factory: so.sessionmaker[so.Session],
        organisation: str,
        year: int,
        seed: int,
        until: dt.datetime,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.factory = session_factory
        self.organisation = organisation
        self.year = year
        self.until = until
        self.rng = random.Random(f"procflow-demo-history/{organisation}/{year}/{seed}")
        self.summary = HistorySummary(organisation, year, seed, until)
        self._progress = progress
        self._queue: list[tuple[dt.datetime, int, Script]] = []
        self._order = itertools.count()
        self._days_reported = 0
        self._start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
        self._coordinates: Any = None
        self.now = self._start
        with session_factory() as s:
            org = get_organisation(s, organisation)
            self.organisation_id = org.id
            self.zone = ZoneInfo(organisation_time_zone(s, org.id, dt.date(year, 1, 1)))
            self.country = org.country or "FI"
            self._members = _group_members(s, org.id)

    # time ------------------------------------------------------------------------

    @contextmanager
    def clock(self, start: dt.datetime) -> Iterator[None]:
        traveller = time_machine.travel(start, tick=False)
        self._coordinates = traveller.start()
        self.now = start
        # Demo history never e-mails anyone: the outbox only logs without an SMTP host.
        smtp = os.environ.pop("PROCFLOW_SMTP_HOST", None)
        try:
            yield
        finally:
            traveller.stop()
            if smtp is not None:
                os.environ["PROCFLOW_SMTP_HOST"] = smtp

    def _move(self, when: dt.datetime) -> None:
        if when > self.now:
            self._coordinates.move_to(when)
            self.now = when
            days = (min(when, self.until) - self._start).days
            if self._progress is not None and days > self._days_reported:
                self._progress(days - self._days_reported)
            self._days_reported = max(self._days_reported, days)

    def _fire_jobs_until(self, when: dt.datetime) -> None:
        """Fire every job due before *when*, each at its due time, as a worker would."""
        while True:
            with self.factory() as s:
                due = s.scalar(
                    sa.select(sa.func.min(Job.due_at)).where(Job.status == "pending", Job.due_at <= when)
                )
            if due is None:
                return
            if due.tzinfo is None:
                due = due.replace(tzinfo=dt.UTC)
            self._move(due)
            ran = run_due_jobs(self.factory, worker_id="demo-history")
            self.summary.jobs_ran += ran.ran
            self.summary.jobs_failed += ran.failed
            self.summary.incidents += ran.incidents
            if not ran.ran and not ran.failed:
                # Due but leased or backing off: step past it rather than spin.
                self._move(due + dt.timedelta(seconds=1))

    # scheduling -----------------------------------------------------------------------

    def at(self, when: dt.datetime, script: Script) -> None:
        """Run *script* from *when* on."""
        heapq.heappush(self._queue, (when, next(self._order), script))

    def run(self) -> None:
        while self._queue:
            when, _, script = heapq.heappop(self._queue)
            if when >= self.until:
                break
            self._fire_jobs_until(when)
            self._move(when)
            try:
                following = next(script)
            except StopIteration:
                continue
            except ProcflowError as exc:
                self.summary.errors.append(f"{self.now.isoformat()}: {exc}")
                continue
            if following is not None:
                self.at(max(following, self.now), script)
        self._fire_jobs_until(self.until)
        self._move(self.until)
        self.summary.started = self.count_started()

    # working days ------------------------------------------------------------------

    def local(self, day: dt.date, hour: float) -> dt.datetime:
        """The moment *hour* o'clock (a fraction gives minutes) of *day* in the organisation's time zone."""
        minutes = round(hour * 60)
        at = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), self.zone)
        return at.astimezone(dt.UTC)

    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def working_day(self, days: int, start: dt.date | None = None) -> dt.date:
        return add_working_days(start or self.today(), days, self.country)

    def later(self, *, hours: float = 0, days: float = 0) -> dt.datetime:
        return self.now + dt.timedelta(hours=hours, days=days)

    def office_hours(self, days: int, start: dt.date | None = None) -> dt.datetime:
        """A moment of office hours *days* working days after *start* (today)."""
        return self.local(self.working_day(days, start), self.rng.uniform(8.5, 16))

    # the engine ------------------------------------------------------------------------

    def deploy(self) -> None:
        with self.factory.begin() as s:
            for folder in sorted(PROCESSES.iterdir()):
                if (folder / f"{folder.name}.bpmn").exists():
                    deploy_path(s, folder)

    def start(self, process_id: str, user: str, data: dict[str, Any] | None = None) -> int:
        self.summary.steps += 1
        with self.factory.begin() as s:
            instance = start_instance(s, process_id, organisation=self.organisation, user=user, data=data)
            return instance.id

    def message(self, name: str, payload: dict[str, Any]) -> list[tuple[int, str]]:
        self.summary.steps += 1
        with self.factory.begin() as s:
            instances = send_message(s, name, payload, organisation=self.organisation)
            return [(i.id, i.process_id) for i in instances]

    def tasks(self, instance_id: int) -> list[str]:
        with self.factory() as s:
            return sorted(
                s.scalars(
                    sa.select(HumanTask.bpmn_id).where(
                        HumanTask.instance_id == instance_id, HumanTask.state == "ready"
                    )
                )
            )

    def data(self, instance_id: int) -> dict[str, Any]:
        with self.factory() as s:
            return instance_data(s, get_instance(s, instance_id))

    def task_data(self, instance_id: int, bpmn_id: str) -> list[dict[str, Any]]:
        with self.factory() as s:
            return [task_data(s, t) for t in self._ready(s, instance_id, bpmn_id)]

    def due(self, instance_id: int) -> dt.datetime:
        """The due time of the instance's open task that has one (its service level), from the task index."""
        with self.factory() as s:
            due = s.scalar(
                sa.select(sa.func.min(HumanTask.due_at)).where(
                    HumanTask.instance_id == instance_id, HumanTask.state == "ready"
                )
            )
        if due is None:
            raise HistoryError(f"Case {instance_id} has no open task with a due date")
        return due if due.tzinfo else due.replace(tzinfo=dt.UTC)

    def count_started(self) -> dict[str, int]:
        start = dt.datetime(self.year, 1, 1, tzinfo=dt.UTC)
        with self.factory() as s:
            rows = s.execute(
                sa.select(ProcessInstance.process_id, sa.func.count())
                .where(
                    ProcessInstance.organisation_id == self.organisation_id,
                    ProcessInstance.is_test.is_(False),
                    ProcessInstance.created_at >= start,
                    ProcessInstance.created_at < self.until,
                )
                .group_by(ProcessInstance.process_id)
            ).all()
        return {process_id: int(n) for process_id, n in rows}

    def status(self, instance_id: int) -> str:
        with self.factory() as s:
            return get_instance(s, instance_id).status

    def _ready(self, s: so.Session, instance_id: int, bpmn_id: str) -> list[HumanTask]:
        return list(
            s.scalars(
                sa.select(HumanTask)
                .where(
                    HumanTask.instance_id == instance_id,
                    HumanTask.bpmn_id == bpmn_id,
                    HumanTask.state == "ready",
                )
                .order_by(HumanTask.id)
            )
        )

    def complete(
        self,
        instance_id: int,
        bpmn_id: str,
        data: dict[str, Any],
        *,
        user: str | None = None,
        prefer: str | None = None,
    ) -> bool:
        """Complete the first ready *bpmn_id* task of the case (as *user*, or whoever may); False if none."""
        with self.factory() as s:
            rows = self._ready(s, instance_id, bpmn_id)
            if not rows:
                return False
            row = rows[0]
            worker = user or self._worker(s, row, prefer)
            task_id = row.id
        self.summary.steps += 1
        with self.factory.begin() as s:
            complete_task(s, task_id, user=worker, data=data)
        return True

    def complete_as(self, instance_id: int, bpmn_id: str, user: str, data: dict[str, Any]) -> bool:
        """Complete the ready *bpmn_id* task assigned to *user*; False if there is none."""
        with self.factory() as s:
            user_id = s.scalar(sa.select(User.id).where(User.username == user))
            rows = [r for r in self._ready(s, instance_id, bpmn_id) if r.assignee_id in (None, user_id)]
            if not rows:
                return False
            task_id = rows[0].id
        self.summary.steps += 1
        with self.factory.begin() as s:
            complete_task(s, task_id, user=user, data=data)
        return True

    def cancel(self, instance_id: int, admin: str) -> None:
        self.summary.steps += 1
        with self.factory.begin() as s:
            cancel_instance(s, instance_id, user=admin)

    def _worker(self, s: so.Session, row: HumanTask, prefer: str | None) -> str:
        if row.assignee is not None:
            return row.assignee.username
        excluded = set(row.excluded_user_ids)
        members = [u for uid, u in self._members.get(row.candidate_group or "", []) if uid not in excluded]
        if not members:
            raise HistoryError(f"Nobody may work on task {row.bpmn_id} of case {row.instance_id}")
        if prefer in members:
            return prefer
        return sorted(members)[0] if len(members) == 1 else self.rng.choice(sorted(members))

    def newest(self, process_id: str, after: int) -> int | None:
        with self.factory() as s:
            return s.scalar(
                sa.select(sa.func.max(ProcessInstance.id)).where(
                    ProcessInstance.process_id == process_id,
                    ProcessInstance.organisation_id == self.organisation_id,
                    ProcessInstance.id > after,
                )
            )

    def last_id(self) -> int:
        with self.factory() as s:
            return int(s.scalar(sa.select(sa.func.max(ProcessInstance.id))) or 0)


def _group_members(s: so.Session, organisation_id: int) -> dict[str, list[tuple[int, str]]]:
    rows = s.execute(
        sa.select(Group.key, User.id, User.username)
        .join(Group.members)
        .join(Membership.user)
        .where(Group.organisation_id == organisation_id, Membership.deactivated_at.is_(None))
        .order_by(Group.key, User.username)
    ).all()
    members: dict[str, list[tuple[int, str]]] = {}
    for key, user_id, username in rows:
        members.setdefault(key, []).append((user_id, username))
    return members


def _spread(
    sim: _Simulation, count: int, first: dt.date, last: dt.date, *, busy: dict[int, float]
) -> list[dt.datetime]:
    """*count* moments of office hours on working days from *first* to *last*, more in busy months."""
    days: list[dt.date] = []
    day = first
    while day <= last:
        if add_working_days(day - dt.timedelta(days=1), 1, sim.country) == day:
            days.append(day)
        day += dt.timedelta(days=1)
    weights = [busy.get(d.month, 1.0) for d in days]
    chosen = sim.rng.choices(days, weights=weights, k=count)
    return sorted(sim.local(d, sim.rng.uniform(8, 16.5)) for d in chosen)


# -- the central purchasing body ---------------------------------------------------------

CUSTOMERS = [
    ("Esimerkkilän kaupunki", "0123456-7", "hankinnat@esimerkkila.demo.example"),
    ("Järvenpään kaupunki", "0126977-1", "hankinnat@jarvenpaa.demo.example"),
    ("Pirkanmaan hyvinvointialue", "3221316-3", "hankinnat@pirha.demo.example"),
    ("Oulun yliopisto", "0245872-8", "hankinnat@oulu.demo.example"),
    ("Verohallinto", "0245458-3", "hankinnat@vero.demo.example"),
    ("Turun kaupunki", "0204819-8", "hankinnat@turku.demo.example"),
    ("Maanmittauslaitos", "1015618-9", "hankinnat@mml.demo.example"),
    ("Kuopion kaupunki", "0171450-7", "hankinnat@kuopio.demo.example"),
]
AGREEMENTS = [
    ("Cleaning services DPS", "Lot 2 Uusimaa", 3),
    ("Office supplies 2024", "Lot 1 Office supplies", 3),
    ("IT workstations 2023-2027", "Lot 1 Laptops", 4),
    ("Travel services", "Lot 1 Travel agency services", 2),
    ("Occupational health care", "Lot 3 Southern Finland", 2),
    ("Energy 2025", "Lot 1 Electricity", 2),
]
QUESTIONS = {
    "advice": [
        "Can we order directly from the framework without a mini-competition?",
        "Which lot covers our region?",
        "May we add an eco-label requirement?",
        "How do we calculate the estimated value with options?",
        "Is a voluntary standstill needed for a call-off?",
    ],
    "document_comments": [
        "Please comment on our invitation to tender before we send it.",
        "Could you check our evaluation criteria and weights?",
    ],
    "mini_competition": ["Please run our cleaning mini-competition with us."],
    "other": ["Where do we find the agreement's price list?", "Can we get a training on the DPS?"],
}
BUSY_MONTHS = {4: 1.0, 5: 1.2, 6: 1.0, 7: 0.35, 8: 1.1, 9: 1.3, 10: 1.2, 11: 1.2, 12: 0.8}
SLA_MET = {"advice": 0.9, "document_comments": 0.85, "mini_competition": 0.8, "other": 0.85}
CHECKLIST_KEYS = (
    "all_capable_suppliers_invited",
    "criteria_within_framework",
    "weights_stated",
    "deadline_reasonable",
    "terms_within_framework",
    "voluntary_standstill",
    "impact_choices",
)
IMPACT_DIMENSIONS = ("sustainability", "innovation", "cost_savings", "quality", "competence")


def _central_year(sim: _Simulation) -> None:
    categories = [c for c, n in CONTACTS.items() for _ in range(n)]
    sim.rng.shuffle(categories)
    first = dt.date(sim.year, *CONTACTS_FROM)
    arrivals = _spread(sim, len(categories), first, dt.date(sim.year, 12, 31), busy=BUSY_MONTHS)
    _kick_off_in_the_year(sim, categories, arrivals)
    for number, (when, category) in enumerate(zip(arrivals, categories, strict=True), start=1):
        sim.at(when, _contact(sim, f"YH-{sim.year}-{number:04d}", category))
    by_contact = CONTACTS["mini_competition"]
    opened = _spread(
        sim,
        JOINT_MINI_COMPETITIONS - by_contact,
        dt.date(sim.year, 1, 9),
        dt.date(sim.year, 11, 30),
        busy={7: 0.3, 12: 0.5},
    )
    for number, when in enumerate(opened, start=1):
        customer = sim.rng.choice(CUSTOMERS)
        sim.at(when, _joint_mini_competition(sim, None, f"YHK-{sim.year}-{number:03d}", customer))


# A joint mini-competition asked for after this day might not be kicked off before the year ends.
LAST_MINI_COMPETITION_REQUEST = (11, 15)


def _kick_off_in_the_year(sim: _Simulation, categories: list[str], arrivals: list[dt.datetime]) -> None:
    """Swap late requests for a joint mini-competition with earlier advice contacts (in place).

    Each such contact starts a mini-competition once it is planned, days later: one that arrived in
    the last weeks would start it next year, and the year would have one joint mini-competition less.
    """
    last = dt.date(sim.year, *LAST_MINI_COMPETITION_REQUEST)
    early_advice = [i for i, when in enumerate(arrivals) if when.date() <= last and categories[i] == "advice"]
    for i, when in enumerate(arrivals):
        if categories[i] == "mini_competition" and when.date() > last and early_advice:
            j = early_advice.pop(sim.rng.randrange(len(early_advice)))
            categories[i], categories[j] = categories[j], categories[i]


def _contact(sim: _Simulation, ref: str, category: str) -> Script:
    rng = sim.rng
    customer = rng.choice(CUSTOMERS)
    agreement, lot, _ = AGREEMENTS[0] if category == "mini_competition" else rng.choice(AGREEMENTS)
    question_kind = "advice" if category == "not_joined" else category
    reached = sim.message(
        "contact_received",
        {
            "contact_ref": ref,
            "name": rng.choice(["Maija Meikäläinen", "Matti Virtanen", "Anna Korhonen", "Juha Nieminen"]),
            "email": customer[2],
            "organisation": customer[0],
            "message": rng.choice(QUESTIONS[question_kind]),
            "channel": rng.choice(["web", "web", "web", "api"]),
        },
    )
    (case,) = [i for i, p in reached if p == "customer_contact"]
    yield sim.later(hours=rng.uniform(0.3, 5))
    # A few customers answer back and the case is handled again (a kick-off happens once).
    rounds = 2 if rng.random() < 0.04 and category != "mini_competition" else 1
    missed_any = False
    for round_ in range(rounds):
        sim.complete(
            case,
            "triage",
            {
                "customer_org_number": customer[1],
                "has_joined": category != "not_joined",
                "agreement": agreement,
                "lot": lot,
                "category": "advice" if category == "not_joined" else category,
                "language": rng.choices(["fi", "sv", "en"], weights=[85, 12, 3])[0],
                "urgency": "urgent" if rng.random() < 0.08 else "normal",
            },
            prefer="cpb-support",
        )
        if category == "not_joined":
            break
        due = sim.due(case)
        met = rng.random() < SLA_MET[category]
        missed_any = missed_any or not met
        if met:
            handled = max(sim.now + dt.timedelta(hours=1), due - dt.timedelta(hours=rng.uniform(9, 60)))
            handled = min(handled, due - dt.timedelta(minutes=30))
        else:
            yield due + dt.timedelta(hours=rng.uniform(8, 30))
            sim.complete(
                case,
                "follow_up_overdue",
                {
                    "action": rng.choice(
                        ["Asked the specialist to answer today.", "Reassigned.", "Called the customer."]
                    )
                },
            )
            handled = sim.later(hours=rng.uniform(1, 20))
        yield handled
        if category == "advice":
            legal = rng.random() < 0.12
            sim.complete(
                case,
                "give_advice",
                {"advice": "The agreement allows it; see its terms, section 4.", "needs_legal_review": legal},
                prefer="cpb-support",
            )
            if legal:
                legal_due = sim.due(case)
                yield max(sim.later(hours=2), legal_due - dt.timedelta(hours=rng.uniform(4, 50)))
                if "follow_up_overdue" in sim.tasks(case):
                    sim.complete(case, "follow_up_overdue", {"action": "Reminded the lawyer."})
                sim.complete(case, "legal_review", {"legal_comment": "Agreed."})
        elif category == "document_comments":
            checklist = {k: rng.random() < 0.85 for k in CHECKLIST_KEYS}
            sim.complete(
                case,
                "comment_documents",
                {
                    "checklist": checklist,
                    "comments": "See our comments on the criteria and the tender period.",
                },
            )
        elif category == "mini_competition":
            before = sim.last_id()
            sim.complete(
                case,
                "plan_mini_competition",
                {"kickoff_date": sim.working_day(3).isoformat(), "plan": "We draft the invitation together."},
            )
            joint = sim.newest("mini_competition", before)
            if joint is not None:
                sim.at(
                    sim.later(hours=rng.uniform(20, 70)), _joint_mini_competition(sim, joint, None, customer)
                )
        else:
            sim.complete(case, "handle_other", {"resolution": "Answered by e-mail."})
        if "follow_up_overdue" in sim.tasks(case):
            sim.complete(case, "follow_up_overdue", {"action": "Done meanwhile."})
        yield sim.later(hours=rng.uniform(0.2, 3))
        waiting = round_ + 1 < rounds or rng.random() < 0.05
        sim.complete(
            case,
            "reply_to_customer",
            {"reply_text": "Here is our answer to your question.", "waiting_for_customer": waiting},
            prefer="cpb-support",
        )
        if not waiting:
            break
        if round_ + 1 < rounds:
            yield sim.office_hours(rng.randint(1, 6))
            sim.message("customer_reply", {"contact_ref": ref, "message": "Thank you, one more question."})
            yield sim.later(hours=rng.uniform(0.5, 4))
        else:
            # No reply: the case closes by itself after ten working days (a timer).
            yield sim.office_hours(12)
    yield sim.later(hours=rng.uniform(0.1, 30))
    rating: dict[str, Any] = {}
    if rng.random() < 0.62:
        weights = [2, 4, 12, 38, 44] if not missed_any else [5, 10, 25, 35, 25]
        rating = {"satisfaction_rating": rng.choices([1, 2, 3, 4, 5], weights=weights)[0]}
    sim.complete(case, "close_case", {**rating, "closing_note": ""}, prefer="cpb-support")


def _scores(rng: random.Random, bias: float = 0.0) -> dict[str, int]:
    return {d: min(2, max(0, round(rng.uniform(0, 2) + bias))) for d in IMPACT_DIMENSIONS}


@dataclass(frozen=True)
class _CallOff:
    """Who runs a mini-competition and on which agreement."""

    buyer: str
    team: tuple[str, ...]
    replacement: str
    decision_maker: str | None
    agreement: str
    lot: str
    region: str
    direct_order_supplier: dict[str, str] | None = None


CPB_CALL_OFF = _CallOff(
    buyer="cpb-customer-buyer",
    team=("cpb-category-manager", "cpb-support"),
    replacement="cpb-team-lead",
    decision_maker="cpb-customer-buyer",
    agreement="Cleaning services DPS",
    lot="Lot 2 Uusimaa",
    region="Uusimaa",
)


def _joint_mini_competition(
    sim: _Simulation, instance_id: int | None, call_off_ref: str | None, customer: tuple[str, str, str]
) -> Script:
    """A mini-competition on the cleaning DPS that the central body runs with *customer*."""
    return _mini_competition(sim, instance_id, call_off_ref, customer[0], customer[2], CPB_CALL_OFF)


def _mini_competition(
    sim: _Simulation,
    instance_id: int | None,
    call_off_ref: str | None,
    customer_name: str,
    customer_email: str,
    people: _CallOff,
    value: int | None = None,
) -> Script:
    rng = sim.rng
    buyer = people.buyer
    if instance_id is None:
        # Opened in the case list by the customer's buyer: the customer is named from the start.
        start = {"customer_organisation": customer_name} if people is CPB_CALL_OFF else None
        instance_id = sim.start("mini_competition", buyer, start)
    ref = call_off_ref or f"MC-{sim.year}-C{instance_id}"
    subject = rng.choice(
        ["Office cleaning", "School cleaning", "Window cleaning", "Cleaning of health centres"]
    )
    estimated = value or rng.randrange(60, 900) * 1000
    sim.complete(
        instance_id,
        "define_call_off",
        {
            "call_off_ref": ref,
            "subject": f"{subject}, {customer_name}",
            "agreement": people.agreement,
            "lot": people.lot,
            "region": people.region,
            "estimated_value": estimated,
            "contract_months": rng.choice([24, 36, 48]),
            "requester_email": customer_email,
        },
        user=buyer,
    )
    sim.complete(
        instance_id,
        "score_stage_1",
        {"stage_1_scores": _scores(rng, 0.3), "stage_1_note": "The agreement's criteria"},
        user=buyer,
    )
    if "place_direct_order" in sim.tasks(instance_id) and people.direct_order_supplier is not None:
        yield sim.office_hours(rng.randint(1, 5))
        sim.complete(
            instance_id,
            "place_direct_order",
            {
                "winner": people.direct_order_supplier,
                "order_number": f"{ref}-O",
                "order_date": sim.today().isoformat(),
                "contract_value": round(estimated * rng.uniform(0.9, 1.0)),
            },
            user=buyer,
        )
        yield sim.office_hours(rng.randint(1, 10))
        sim.complete(instance_id, "record_impact", {"end_scores": _scores(rng, 0.2)}, user=buyer)
        return
    yield sim.office_hours(rng.randint(2, 8))
    review = rng.random() < 0.25 and people is CPB_CALL_OFF
    team = list(people.team)
    sim.complete(
        instance_id,
        "prepare_invitation",
        {
            "criteria": [{"criterion": "Price", "weight": 60}, {"criterion": "Quality", "weight": 40}],
            "question_deadline": (sim.today() + dt.timedelta(days=7)).isoformat(),
            "tender_deadline": (sim.today() + dt.timedelta(days=rng.choice([14, 18, 21]))).isoformat(),
            "invitation_text": "Please tender as described in the attached documents.",
            "stage_2_scores": _scores(rng),
            "impact_choices": rng.choice(["Eco-labelled detergents.", "Apprenticeships.", ""]),
            "voluntary_standstill": rng.random() < 0.3,
            "document_review": review,
            "evaluation_team": team,
        },
        user=buyer,
    )
    if review:
        yield sim.office_hours(rng.randint(1, 3))
        sim.complete(
            instance_id,
            "review_documents",
            {"review_checklist": {k: True for k in CHECKLIST_KEYS}, "review_comments": "Fine."},
        )
    yield sim.later(hours=rng.uniform(2, 30))
    conflicted = len(team) > 1 and rng.random() < 0.03
    for member in team:
        has = conflicted and member == team[-1]
        sim.complete_as(
            instance_id,
            "declare_conflict",
            member,
            {"has_conflict": has, "details": "I used to work for a tenderer." if has else ""},
        )
    if "replace_members" in sim.tasks(instance_id):
        sim.complete(instance_id, "replace_members", {"replacements": [people.replacement]}, user=buyer)
        sim.complete_as(
            instance_id, "declare_replacements", people.replacement, {"has_conflict": False, "details": ""}
        )
    choices = sim.data(instance_id)["invitee_choices"]
    sim.complete(instance_id, "confirm_invitees", {"invitee_choices": choices}, prefer=team[0])
    data = sim.data(instance_id)
    invitees = data["invitees"]
    if rng.random() < 0.3:
        yield sim.office_hours(rng.randint(1, 4))
        sim.message(
            "supplier_question",
            {"call_off_ref": ref, "email": invitees[0]["email"], "question": "Are windows included?"},
        )
        yield sim.later(hours=rng.uniform(2, 20))
        sim.complete(instance_id, "answer_question", {"answer": "Yes, twice a year."}, prefer=team[0])
    closes = dt.datetime.fromisoformat(data["tender_closes_at"]).astimezone(dt.UTC)
    yield sim.office_hours(1, closes.astimezone(sim.zone).date())
    tendering = [s for s in invitees if rng.random() < 0.85] or invitees[:1]
    none_valid = rng.random() < 0.03
    tenders = [
        {
            "supplier": s["name"],
            "org_number": s["org_number"],
            "email": s["email"],
            "price": round(estimated * rng.uniform(0.8, 1.1)),
            "valid": not none_valid and rng.random() < 0.93,
            "invalid_reason": "",
        }
        for s in tendering
    ]
    if not none_valid and not any(t["valid"] for t in tenders):
        tenders[0]["valid"] = True
    for tender in tenders:
        if not tender["valid"]:
            tender["invalid_reason"] = "References missing"
    sim.complete(
        instance_id,
        "open_tenders",
        {"opened_on": sim.today().isoformat(), "tenders": tenders},
        prefer=team[0],
    )
    if "no_valid_tenders" in sim.tasks(instance_id):
        sim.complete(
            instance_id,
            "no_valid_tenders",
            {"next_step": "cancel", "next_step_reason": "No valid tender; the need is covered otherwise."},
            user=buyer,
        )
        return
    yield sim.office_hours(rng.randint(2, 6))
    valid = [t for t in tenders if t["valid"]]
    scores = {t["org_number"]: rng.randint(55, 95) for t in valid}
    sim.complete(
        instance_id,
        "evaluate_tenders",
        {"evaluation": [{"org_number": k, "score": v} for k, v in scores.items()]},
        prefer=team[0],
    )
    winner = max(scores, key=lambda k: (scores[k], k))
    yield sim.office_hours(rng.randint(1, 3))
    sim.complete(
        instance_id,
        "award_decision",
        {
            "winner_org_number": winner,
            "award_reasoning": "Best weighted score on price and quality.",
            "award_notice_channel": "electronic",
        },
        user=people.decision_maker,
    )
    if rng.random() < 0.04:
        yield sim.office_hours(rng.randint(2, 6))
        sim.message(
            "review_requested",
            {"call_off_ref": ref, "applicant": invitees[-1]["name"], "grounds": "Quality scored wrongly."},
        )
        yield sim.office_hours(2)
        sim.complete(
            instance_id,
            "handle_review_request",
            {"legal_assessment": "The evaluation follows the criteria.", "review_outcome": "proceed"},
        )
    standstill = sim.data(instance_id).get("standstill_ends_at")
    ends = dt.datetime.fromisoformat(standstill).astimezone(dt.UTC) if standstill else sim.now
    yield sim.office_hours(rng.randint(1, 5), ends.astimezone(sim.zone).date())
    sim.complete(
        instance_id,
        "sign_contract",
        {"contract_number": f"{ref}-S", "signed_on": sim.today().isoformat()},
        user=buyer,
    )
    yield sim.office_hours(rng.randint(1, 10))
    sim.complete(
        instance_id,
        "record_impact",
        {"end_scores": _scores(rng, 0.2), "impact_note": "As tendered."},
        user=buyer,
    )


# -- a buying organisation ---------------------------------------------------------------


PURCHASES = [
    ("Ergonomic office chairs", "39112000-0", "goods"),
    ("Laptops for the schools", "30213100-6", "goods"),
    ("Translation of the city's web pages", "79530000-8", "services"),
    ("Consulting on the energy plan", "71314300-5", "services"),
    ("New doors for the town hall", "45421000-4", "works"),
    ("Catering for the council's seminar", "55520000-1", "services"),
    ("Playground equipment", "37535200-9", "goods"),
    ("Training in the procurement guidelines", "80500000-9", "services"),
]
SUPPLIERS = {
    "SE": [
        {"name": "Stolfabriken AB", "org_number": "556000-0001", "email": "offert@stolfabriken.example"},
        {"name": "Kontorsmöbler AB", "org_number": "556000-0002", "email": "sales@kontorsmobler.example"},
        {"name": "Sittbra AB", "org_number": "556000-0003", "email": "info@sittbra.example"},
    ],
    "FI": [
        {"name": "Käännöstoimisto Oy", "org_number": "1234567-8", "email": "tarjous@kaannos.example"},
        {"name": "Kielipalvelu Oy", "org_number": "2345678-9", "email": "myynti@kielipalvelu.example"},
        {"name": "Sanasto Oy", "org_number": "3456789-0", "email": "info@sanasto.example"},
    ],
}
#: Values of the direct procurements (excl. VAT) by country: low, high, and a few just under the limit.
VALUES = {"SE": (8000, 450000), "FI": (3000, 55000)}
BUYER_CALL_OFFS = {
    "SE": _CallOff(
        buyer="se-requester",
        team=("se-buyer",),
        replacement="se-colleague",
        decision_maker=None,
        agreement="Städtjänster ramavtal 2024",
        lot="Område 1 Exempelby",
        region="Exempelby",
        direct_order_supplier={
            "name": "Rena Lokaler AB",
            "org_number": "556100-0001",
            "email": "anbud@renalokaler.example",
        },
    ),
    "FI": _CallOff(
        buyer="fi-requester",
        team=("fi-buyer",),
        replacement="fi-colleague",
        decision_maker=None,
        agreement="Siivouspalvelut DPS",
        lot="Osa-alue 2 Uusimaa",
        region="Uusimaa",
    ),
}


def _buyer_year(sim: _Simulation, prefix: str) -> None:
    country = "SE" if prefix == "se" else "FI"
    with sim.factory() as s:
        org_number = get_organisation(s, sim.organisation).organisation_number or sim.organisation
    plan_ref = f"{org_number}/{sim.year}"
    sim.at(sim.local(add_working_days(dt.date(sim.year, 1, 7), 0, country), 9.5), _goal_review(sim, prefix))
    moments = _spread(sim, 36, dt.date(sim.year, 2, 3), dt.date(sim.year, 12, 12), busy={7: 0.2, 12: 0.6})
    for number, when in enumerate(moments, start=1):
        goal_task = f"{plan_ref}#T8.1#DP-{sim.year}-{number:03d}" if number in (2, 9) else None
        sim.at(when, _direct_procurement(sim, prefix, country, number, goal_task))
    call_off = BUYER_CALL_OFFS[country]
    for number, when in enumerate(
        _spread(sim, 6, dt.date(sim.year, 2, 10), dt.date(sim.year, 10, 30), busy={7: 0.1}), 1
    ):
        value = sim.rng.choice([150000, 300000, 650000, 900000]) if country == "SE" else None
        sim.at(
            when,
            _mini_competition(
                sim,
                None,
                f"MC-{sim.year}-{number:03d}",
                sim.organisation,
                f"{prefix}-requester@demo.example",
                call_off,
                value,
            ),
        )


def _national(goal_id: str, owner: str, year: int, level: str) -> dict[str, Any]:
    return {
        "catalogue_goal": goal_id,
        "source": "national",
        "level": level,
        "baseline": "10 %",
        "target": "30 %",
        "owner": owner,
        "period_start": f"{year}-01-01",
        "period_end": f"{year}-12-31",
    }


def _goal_review(sim: _Simulation, prefix: str) -> Script:
    rng, year = sim.rng, sim.year
    case = sim.start("goal_review", f"{prefix}-buyer", {"plan_year": year})
    owner = f"{prefix}-quality"
    goals = [_national("T8.1", owner, year, "procurement"), _national("T2.1", owner, year, "organisation")]
    sim.complete(case, "select_goals", {"goals": goals}, user=f"{prefix}-buyer")
    sim.complete(case, "schedule_goals", {"schedule": []}, user=f"{prefix}-buyer")
    yield sim.office_hours(rng.randint(3, 8))
    sim.complete(
        case,
        "approve_plan",
        {"plan_decision": "approve", "approval_comments": "Good plan."},
        prefer=f"{prefix}-director",
    )
    yield sim.office_hours(2)
    assignments = [
        {
            "goal_id": "T8.1",
            "procurement_id": f"DP-{year}-{number:03d}",
            "lifecycle_phase": "tendering",
            "task": "Require eco-labelled products in the quote request",
            "due_date": f"{year}-{6 if number == 2 else 11:02d}-30",
        }
        for number in (2, 9)
    ]
    sim.complete(case, "assign_goals", {"assignments": assignments}, user=f"{prefix}-buyer")
    for quarter, planned in ((2, 50), (3, 75)):
        quarter_end = dt.date(year, 3 * quarter + 1, 1)
        yield sim.office_hours(rng.randint(2, 7), quarter_end)
        while "report_goal_status" in sim.tasks(case):
            percent = max(0, min(100, planned + rng.randint(-25, 10)))
            rag = "green" if percent >= planned - 5 else "amber" if percent >= planned - 15 else "red"
            sim.complete(
                case,
                "report_goal_status",
                {
                    "rag": rag,
                    "percent_fulfilled": percent,
                    "indicator_value": f"{percent // 3} %",
                    "comment": "",
                },
            )
        if "corrective_action" in sim.tasks(case):
            yield sim.office_hours(rng.randint(2, 5))
            corrective = [
                {
                    "goal_id": "T2.1",
                    "action": "Plan the competence sessions",
                    "responsible": f"{prefix}-buyer",
                    "due_date": f"{year}-{3 * quarter + 2:02d}-28",
                }
            ]
            sim.complete(
                case, "corrective_action", {"corrective_actions": corrective}, prefer=f"{prefix}-director"
            )


def _direct_procurement(
    sim: _Simulation, prefix: str, country: str, number: int, goal_task: str | None
) -> Script:
    rng = sim.rng
    subject, cpv, category = rng.choice(PURCHASES)
    low, high = VALUES[country]
    # One in twenty is over the limit: an advertised procedure is required.
    over_limit = rng.random() < 0.05
    value = high * 2 if over_limit else round(math.exp(rng.uniform(math.log(low), math.log(high))), -2)
    requester = rng.choice([f"{prefix}-requester", f"{prefix}-colleague"])
    case = sim.start("direct_procurement", requester)
    need = {
        "subject": f"{subject} (DP-{sim.year}-{number:03d})",
        "description": f"{subject}: requirements in the attached specification.",
        "cpv_code": cpv,
        "category": category,
        "value_excl_vat": value,
        "contract_months": 0,
        "option_months": 0,
        "utility_activity": False,
        "same_kind_spend_outside": 0,
        "framework_agreement_exists": rng.random() < 0.04,
        "requester": requester,
        "participants": [requester],
        "requester_email": f"{requester}@demo.example",
        **({"goal_task": goal_task} if goal_task else {}),
    }
    try:
        sim.complete(case, "describe_need", need, user=requester)
    except ProcflowError:
        if not goal_task:
            raise
        sim.complete(
            case, "describe_need", {k: v for k, v in need.items() if k != "goal_task"}, user=requester
        )
    if sim.status(case) == "completed":
        return  # another procedure is required: the requester was told so
    sim.complete_as(case, "declare_conflict", requester, {"has_conflict": False, "details": ""})
    yield sim.office_hours(rng.randint(1, 4))
    suppliers = SUPPLIERS[country]
    request: dict[str, Any] = {
        "suppliers": suppliers,
        "request_text": "Please quote for the attached requirements.",
        "quotes_requested_on": sim.today().isoformat(),
        "quote_deadline": (sim.now + dt.timedelta(days=7)).isoformat(timespec="seconds"),
    }
    if rng.random() < 0.1:
        request["suppliers"] = suppliers[:1]
        request["fewer_quotes_justification"] = (
            f"Only {suppliers[0]['name']} can deliver to our requirements."
        )
    sim.complete(case, "request_quotes", request, prefer=f"{prefix}-buyer")
    if rng.random() < 0.06:
        yield sim.office_hours(rng.randint(1, 3))
        sim.cancel(case, f"{prefix}-admin")  # the need went away while the quotes were out
        return
    yield sim.office_hours(rng.randint(1, 3), (sim.now + dt.timedelta(days=7)).astimezone(sim.zone).date())
    compliant = rng.random() > 0.03
    quotes = [
        {
            "supplier": s["name"],
            "org_number": s["org_number"],
            "price": round(value * rng.uniform(0.85, 1.0)),
            "compliant": compliant,
            "score": rng.randint(55, 95) if compliant else 0,
        }
        for s in request["suppliers"]
    ]
    sim.complete(case, "register_quotes", {"quotes": quotes}, prefer=f"{prefix}-buyer")
    if "select_supplier" in sim.tasks(case):
        best = max(quotes, key=lambda q: (q["score"], q["org_number"]))
        sim.complete(
            case,
            "select_supplier",
            {"winner_org_number": best["org_number"], "justification": "Best score on quality and price."},
            prefer=f"{prefix}-buyer",
        )
        yield sim.office_hours(rng.randint(1, 4))
        approved = rng.random() < 0.94
        sim.complete(
            case,
            "approve",
            {
                "approved": approved,
                "approval_comment": "" if approved else "No budget this year.",
                "approver_has_conflict": False,
            },
        )
        if "quality_review" in sim.tasks(case):
            yield sim.office_hours(rng.randint(1, 3))
            sim.complete(
                case,
                "quality_review",
                {"quality_ok": True, "quality_remarks": "", "reviewer_has_conflict": False},
            )
        if "place_order" in sim.tasks(case):
            yield sim.office_hours(rng.randint(0, 2))
            sim.complete(
                case,
                "place_order",
                {
                    "order_number": f"PO-{sim.year}-{number:04d}",
                    "order_date": sim.today().isoformat(),
                    "delivery_or_contract_period": rng.choice(["Delivery within 6 weeks", "12 months"]),
                },
                prefer=f"{prefix}-buyer",
            )
    if "archive_documentation" in sim.tasks(case):
        # Mostly in time, some after the reminder; a few are still open at the year's end.
        yield sim.office_hours(rng.choice([3, 8, 15, 20, 27, 40]))
        sim.complete(
            case,
            "archive_documentation",
            {"documentation_complete": True, "archive_reference": f"DNR {sim.year}/{number}"},
            prefer=f"{prefix}-buyer",
        )
