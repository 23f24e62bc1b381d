"""E-mail to the people who may work on a task, when it becomes theirs.

When a human task is created, or released back to its group, each user who may
work on it gets one e-mail through the outbox (``outbox_message`` rows, sent
by ``outbox`` jobs after commit), written in the same transaction as the task:
a rolled-back step mails no one. Who may work on it follows the inbox's rule
(:mod:`engine.inbox`): its assignee, else the members of its candidate group
(every member, when it has no group) with a role that works on tasks, minus the
users separation of duties excludes. Besides, a user is not mailed when they

* turned the e-mails off (``User.notify_by_email``),
* are deactivated, or have no e-mail address,
* caused the task themselves (their own step created it, or they released it).

Each e-mail is in the user's language (``User.language``; if they chose none, the
organisation's default language (``Organisation.default_language``, set by its
admin), else its ``language`` parameter, else its jurisdiction's: SE Swedish, FI
Finnish; else English), with
the task's and the process's translated names, the case title and a link to
the task under ``PROCFLOW_BASE_URL``; a due date is in the organisation's time
zone (:mod:`engine.time_zones`). One statement reads the recipients of
all the tasks an operation creates.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from .caches import OrganisationRef, by_identity
from .errors import DataError
from .identity import TASK_ROLES
from .models import (
    Base,
    Group,
    HumanTask,
    Membership,
    ProcessDefinition,
    ProcessInstance,
    User,
    group_member,
    utcnow,
)
from .translated_names import translated

BASE_URL_VARIABLE = "PROCFLOW_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
DEFAULT_LANGUAGE = "en"

# The e-mail's text in each language the app speaks. Kept here rather than in the web app's
# catalogues: the worker writes these e-mails too (a timer that creates a task), without Flask.
_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "New task: {task} ({case})",
        "greeting": "Hello {name},",
        "intro": "A task in Procflow is waiting for you or your group.",
        "task": "Task",
        "case": "Case",
        "process": "Process",
        "group": "Group",
        "due": "Due",
        "open": "Open the task",
        "why": "You get this e-mail because you may work on this task. "
        "You can turn these e-mails off in your settings:",
    },
    "sv": {
        "subject": "Ny uppgift: {task} ({case})",
        "greeting": "Hej {name}!",
        "intro": "En uppgift i Procflow väntar på dig eller din grupp.",
        "task": "Uppgift",
        "case": "Ärende",
        "process": "Process",
        "group": "Grupp",
        "due": "Förfaller",
        "open": "Öppna uppgiften",
        "why": "Du får det här meddelandet eftersom du kan arbeta med uppgiften. "
        "Du kan stänga av meddelandena i dina inställningar:",
    },
    "fi": {
        "subject": "Uusi tehtävä: {task} ({case})",
        "greeting": "Hei {name},",
        "intro": "Procflow'ssa on tehtävä, joka odottaa sinua tai ryhmääsi.",
        "task": "Tehtävä",
        "case": "Asia",
        "process": "Prosessi",
        "group": "Ryhmä",
        "due": "Määräaika",
        "open": "Avaa tehtävä",
        "why": "Saat tämän viestin, koska voit käsitellä tehtävän. "
        "Voit poistaa viestit käytöstä asetuksistasi:",
    },
}
LANGUAGES = tuple(_TEXTS)
_JURISDICTION_LANGUAGES = {"SE": "sv", "FI": "fi"}


@dataclass(frozen=True)
class TaskToNotify:
    """What the e-mail about one task needs: the task index row's fields and who is excluded."""

    task_id: int
    bpmn_id: str
    name: str
    candidate_group: str | None
    assignee_id: int | None
    due_at: dt.datetime | None
    excluded_user_ids: frozenset[int]

    @classmethod
    def from_row(cls, task_id: int, row: Mapping[str, Any], excluded: Sequence[int]) -> TaskToNotify:
        """Build one from a ``human_task`` row as the engine inserts it."""
        return cls(
            task_id=task_id,
            bpmn_id=row["bpmn_id"],
            name=row["name"],
            candidate_group=row["candidate_group"],
            assignee_id=row["assignee_id"],
            due_at=row["due_at"],
            excluded_user_ids=frozenset(excluded),
        )

    @classmethod
    def from_task(cls, task: HumanTask) -> TaskToNotify:
        """Build one from a task index row read from the database."""
        return cls(
            task_id=task.id,
            bpmn_id=task.bpmn_id,
            name=task.name,
            candidate_group=task.candidate_group,
            assignee_id=task.assignee_id,
            due_at=task.due_at,
            excluded_user_ids=frozenset(task.excluded_user_ids),
        )


@dataclass(frozen=True)
class _Candidate:
    user_id: int
    username: str
    display_name: str
    email: str
    language: str | None
    works_on_tasks: bool
    groups: frozenset[str]


def set_user_preferences(
    session: so.Session, user: User, *, language: str | None, notify_by_email: bool
) -> None:
    """Store *user*'s language (``None``: none chosen) and whether they get task e-mails.

    Runs in the caller's transaction.

    :raises DataError: a language Procflow does not speak.
    """
    if language is not None and language not in LANGUAGES:
        raise DataError(f"Unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
    user.language = language
    user.notify_by_email = notify_by_email
    session.flush()


def base_url() -> str:
    """Return the address links in e-mails start with (``PROCFLOW_BASE_URL``, no trailing slash)."""
    return (os.environ.get(BASE_URL_VARIABLE, "").strip() or DEFAULT_BASE_URL).rstrip("/")


def queue_task_emails(
    session: so.Session,
    instance: ProcessInstance,
    definition: ProcessDefinition,
    tasks: Sequence[TaskToNotify],
    *,
    actor: str | None,
    organisation: OrganisationRef | None = None,
) -> int:
    """Write one outbox e-mail (and its ``outbox`` job) per user who may work on each of *tasks*.

    *actor* (a username, ``None`` for the system) is never mailed. Runs in the
    caller's transaction; returns how many e-mails were queued. With the
    *organisation*'s cache versions as the operation read them, who may be
    mailed is looked up once per identity version (engine/caches.py). A test
    instance (tried from the studio, its tasks all the tester's) mails no one.
    """
    if not tasks or instance.is_test:
        return 0
    org_id = instance.organisation_id
    reached = _reached(tasks)
    keys = tuple(sorted({t.candidate_group for t in tasks if t.candidate_group}))

    def candidates_now() -> list[_Candidate]:
        return _candidates(session, org_id, *reached)

    def group_names_now() -> dict[str, tuple[str, dict[str, Any]]]:
        return _group_names(session, org_id, keys)

    if organisation is None:
        candidates = candidates_now()
    else:
        candidates = by_identity(organisation, "mail candidates", reached, candidates_now)
    if not candidates:
        return 0
    if organisation is None:
        group_names = group_names_now()
    else:
        group_names = by_identity(organisation, "group names", keys, group_names_now)
    needs_parameters = any(c.language is None for c in candidates) or any(t.due_at for t in tasks)
    fallback, zone = (
        _organisation_locale(session, instance.organisation_id)
        if needs_parameters
        else (DEFAULT_LANGUAGE, "UTC")
    )
    now = utcnow()
    messages: list[dict[str, Any]] = []
    for task in tasks:
        for candidate in candidates:
            if candidate.username == actor or not _may_work_on(candidate, task):
                continue
            subject, body = _email(
                candidate, candidate.language or fallback, zone, task, instance, definition, group_names
            )
            messages.append(
                {
                    "organisation_id": instance.organisation_id,
                    "instance_id": instance.id,
                    "recipient": candidate.email,
                    "subject": subject[:300],
                    "body": body,
                    "status": "pending",
                    "created_at": now,
                    "sent_at": None,
                }
            )
    if not messages:
        return 0
    connection = session.connection()
    ids = connection.execute(_INSERT_OUTBOX, messages).scalars().all()
    connection.execute(
        _INSERT_JOB,
        [
            {
                "kind": "outbox",
                "status": "pending",
                "organisation_id": instance.organisation_id,
                "instance_id": instance.id,
                "due_at": now,
                "payload": {"outbox_message_id": message_id},
                "attempts": 0,
                "created_at": now,
            }
            for message_id in ids
        ],
    )
    return len(ids)


def _reached(tasks: Sequence[TaskToNotify]) -> tuple[tuple[int, ...], tuple[str, ...], bool]:
    """Return how *tasks* reach users: their assignees' ids, the groups of unassigned ones, and whether
    an unassigned task without group reaches every member."""
    return (
        tuple(sorted({t.assignee_id for t in tasks if t.assignee_id is not None})),
        tuple(sorted({t.candidate_group for t in tasks if t.assignee_id is None and t.candidate_group})),
        any(t.assignee_id is None and not t.candidate_group for t in tasks),
    )


def _candidates(
    session: so.Session,
    organisation_id: int,
    assignees: Sequence[int],
    groups: Sequence[str],
    everyone: bool,
) -> list[_Candidate]:
    """Read, in one statement, every user who could be mailed (see :func:`_reached`), with their groups.

    One branch per way to reach a task, each starting from an index: the
    assignees by id, the members of the tasks' groups from the groups (by
    organisation and key), and for a task without group every member.
    """
    columns = (User.id, User.username, User.display_name, User.email, User.language, Membership.roles)
    reachable = (
        Membership.organisation_id == organisation_id,
        Membership.deactivated_at.is_(None),
        User.is_active.is_(True),
        User.notify_by_email.is_(True),
        User.email.is_not(None),
        User.email != "",
    )
    no_group = sa.null().label("group_key")
    branches: list[sa.Select[Any]] = []
    if everyone or assignees:
        members = (
            sa.select(*columns, no_group).join(Membership, Membership.user_id == User.id).where(*reachable)
        )
        branches.append(members if everyone else members.where(User.id.in_(assignees)))
    if groups:
        branches.append(
            sa.select(*columns, Group.key.label("group_key"))
            .select_from(Group)
            .join(group_member, group_member.c.group_id == Group.id)
            .join(Membership, Membership.id == group_member.c.membership_id)
            .join(User, User.id == Membership.user_id)
            .where(Group.organisation_id == organisation_id, Group.key.in_(groups), *reachable)
        )
    if not branches:
        return []
    statement = branches[0] if len(branches) == 1 else sa.union_all(*branches)
    found: dict[int, _Candidate] = {}
    for user_id, username, display_name, email, language, roles, group in session.execute(statement):
        known = found.get(user_id)
        found[user_id] = _Candidate(
            user_id=user_id,
            username=username,
            display_name=display_name or username,
            email=email,
            language=language if language in _TEXTS else None,
            works_on_tasks=bool(TASK_ROLES & set(roles or ())),
            groups=(known.groups if known else frozenset()) | ({group} if group else frozenset()),
        )
    return sorted(found.values(), key=lambda c: c.user_id)


def _organisation_locale(session: so.Session, organisation_id: int) -> tuple[str, str]:
    """Return the language of the organisation's e-mails to users who chose none, and its time zone.

    The language is the organisation's default language (set on /admin/settings), else its
    ``language`` parameter, else its jurisdiction's (SE Swedish, FI Finnish), else English.
    """
    # Imported here: _workflow (which time_zones imports) calls this module.
    from ._workflow import current_parameters
    from .models import Organisation
    from .time_zones import time_zone_for

    parameters = current_parameters(session, organisation_id)
    organisation = session.get(Organisation, organisation_id)
    named = parameters.get("language")
    if organisation is not None and organisation.default_language in _TEXTS:
        language = str(organisation.default_language)
    elif isinstance(named, str) and named in _TEXTS:
        language = named
    else:
        jurisdiction = str(parameters.get("jurisdiction", "")).upper()
        language = _JURISDICTION_LANGUAGES.get(jurisdiction, DEFAULT_LANGUAGE)
    return language, time_zone_for(parameters)


def _may_work_on(candidate: _Candidate, task: TaskToNotify) -> bool:
    """The inbox's rule (engine/inbox.py) for one user and one task."""
    if not candidate.works_on_tasks or candidate.user_id in task.excluded_user_ids:
        return False
    if task.assignee_id is not None:
        return task.assignee_id == candidate.user_id
    return not task.candidate_group or task.candidate_group in candidate.groups


def _group_names(
    session: so.Session, organisation_id: int, keys: Sequence[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    if not keys:
        return {}
    rows = session.execute(
        sa.select(Group.key, Group.name, Group.translated_names).where(
            Group.organisation_id == organisation_id, Group.key.in_(keys)
        )
    )
    return {key: (name or key, names or {}) for key, name, names in rows}


def _email(
    candidate: _Candidate,
    language: str,
    zone: str,
    task: TaskToNotify,
    instance: ProcessInstance,
    definition: ProcessDefinition,
    group_names: Mapping[str, tuple[str, dict[str, Any]]],
) -> tuple[str, str]:
    """Return the subject and body of the e-mail to *candidate* about *task*, in *language*.

    A due date is shown in the organisation's time zone *zone*.
    """
    text = _TEXTS[language]
    names = definition.translated_names
    task_name = translated(names, task.bpmn_id, language, task.name)
    process_name = translated(
        names, definition.process_id, language, definition.name or definition.process_id
    )
    case = instance.title or instance.business_key or f"#{instance.id}"
    url = base_url()
    lines = [
        text["greeting"].format(name=candidate.display_name),
        "",
        text["intro"],
        "",
        f"{text['task']}: {task_name}",
        f"{text['case']}: {case} (#{instance.id})",
        f"{text['process']}: {process_name}",
    ]
    if task.assignee_id is None and task.candidate_group:
        default, by_language = group_names.get(task.candidate_group, (task.candidate_group, {}))
        lines.append(f"{text['group']}: {translated({'g': by_language}, 'g', language, default)}")
    if task.due_at is not None:
        due = task.due_at.astimezone(zoneinfo.ZoneInfo(zone))
        lines.append(f"{text['due']}: {due:%Y-%m-%d %H:%M} ({zone})")
    lines += [
        "",
        f"{text['open']}: {url}/tasks/{task.task_id}",
        "",
        "-- ",
        f"{text['why']} {url}/settings",
    ]
    return text["subject"].format(task=task_name, case=case), "\n".join(lines) + "\n"


_OUTBOX_TABLE = Base.metadata.tables["outbox_message"]
_INSERT_OUTBOX = sa.insert(_OUTBOX_TABLE).returning(_OUTBOX_TABLE.c.id, sort_by_parameter_order=True)
_INSERT_JOB = sa.insert(Base.metadata.tables["job"])
