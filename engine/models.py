"""Typed SQLAlchemy models: the engine's whole persistent state.

Every row that belongs to a tenant carries ``organisation_id``; shared process
definitions are the only rows where it may be NULL.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so


def new_version() -> int:
    """Return a fresh cache version: random, so that no other database or state has it."""
    return secrets.randbits(62)


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware.

    SQLite keeps no zone; PostgreSQL does. Normalising here keeps comparisons
    between database values and ``utcnow()`` correct on both.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; use aware UTC datetimes")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(so.DeclarativeBase):
    """Declarative base with a naming convention so Alembic names constraints stably."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class Organisation(Base):
    __tablename__ = "organisation"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    key: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    # Given a new random value by every change to the organisation's users, memberships and
    # groups, and to the process definitions it runs: caches in every process key on them (see
    # engine/caches.py). Random, not counted up, so that no two databases (or a database and its
    # restored backup) share a version: a cache never serves one database's rows for another's.
    identity_version: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=new_version)
    definitions_version: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=new_version)
    # The platform organisation's process owners own the shared process versions: deploying from
    # their drafts makes shared versions (organisation NULL), see engine/studio.py.
    is_platform: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    # Settings an admin edits (/admin/settings). NULL: not set, and scripts see the organisation's
    # parameters of the same meaning instead (see engine/org_settings.py).
    organisation_number: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    country: so.Mapped[str | None] = so.mapped_column(sa.String(2))
    currency: so.Mapped[str | None] = so.mapped_column(sa.String(3))
    time_zone: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    default_language: so.Mapped[str | None] = so.mapped_column(sa.String(8))


class User(Base):
    __tablename__ = "user_account"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    username: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    display_name: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    email: so.Mapped[str | None] = so.mapped_column(sa.String(254))
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    is_active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    # The interface and e-mail language the user chose (``sv``, ``fi``, ``en``); NULL: not chosen.
    language: so.Mapped[str | None] = so.mapped_column(sa.String(8))
    # Whether the user is e-mailed when a task becomes theirs (engine/notifications.py).
    notify_by_email: so.Mapped[bool] = so.mapped_column(default=True, server_default=sa.true())

    memberships: so.Mapped[list[Membership]] = so.relationship(back_populates="user")


class Membership(Base):
    """A user's place in one organisation: roles and groups (lanes map to groups)."""

    __tablename__ = "membership"
    __table_args__ = (sa.UniqueConstraint("user_id", "organisation_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id", ondelete="CASCADE"))
    roles: so.Mapped[list[Any]] = so.mapped_column(default=list)
    # Set when an admin deactivates the user in this organisation: they cannot sign in to it, and
    # their claimed tasks there went back to their groups. NULL: active.
    deactivated_at: so.Mapped[dt.datetime | None]

    user: so.Mapped[User] = so.relationship(back_populates="memberships")
    organisation: so.Mapped[Organisation] = so.relationship()
    groups: so.Mapped[list[Group]] = so.relationship(secondary="group_member", back_populates="members")


class Group(Base):
    """A candidate group inside one organisation; a BPMN lane names one."""

    __tablename__ = "user_group"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "key"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id", ondelete="CASCADE"))
    key: so.Mapped[str] = so.mapped_column(sa.String(120))
    name: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    # Display names by language ({"sv": "Upphandlare", "fi": ...}); ``name`` where a language has none.
    translated_names: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict, server_default="{}")

    members: so.Mapped[list[Membership]] = so.relationship(secondary="group_member", back_populates="groups")


group_member = sa.Table(
    "group_member",
    Base.metadata,
    sa.Column("group_id", sa.ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("membership_id", sa.ForeignKey("membership.id", ondelete="CASCADE"), primary_key=True),
    # A member's groups, for the inbox's "one of my groups" test (engine/inbox.py).
    sa.Index("ix_group_member_membership", "membership_id", "group_id"),
)


class Deployment(Base):
    """One deployed bundle of files; its content hash makes re-deploys no-ops."""

    __tablename__ = "deployment"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisation.id"))
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    content_hash: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    deployed_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    deployed_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    files: so.Mapped[list[DeploymentFile]] = so.relationship(
        back_populates="deployment", order_by="DeploymentFile.name", cascade="all, delete-orphan"
    )


class DeploymentFile(Base):
    __tablename__ = "deployment_file"
    __table_args__ = (sa.UniqueConstraint("deployment_id", "name"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    deployment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("deployment.id", ondelete="CASCADE"))
    name: so.Mapped[str] = so.mapped_column(sa.String(255))
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    content: so.Mapped[str] = so.mapped_column(sa.Text)

    deployment: so.Mapped[Deployment] = so.relationship(back_populates="files")


class ProcessDefinition(Base):
    """One version of one executable process, for one organisation or shared (NULL)."""

    __tablename__ = "process_definition"
    __table_args__ = (sa.Index("ix_process_definition_lookup", "process_id", "organisation_id", "version"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    deployment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("deployment.id"))
    organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisation.id"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    name: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    version: so.Mapped[int]
    content_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    # Names of messages whose start events start this process, and the
    # correlation properties of every message it knows: send_message needs
    # both without parsing anything.
    message_starts: so.Mapped[list[Any]] = so.mapped_column(default=list)
    message_correlations: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)
    # Names of the process and its elements by language, from the bundle's names.json:
    # {element id: {"sv": ..., "fi": ...}}; the BPMN's own names where a language has none.
    translated_names: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict, server_default="{}")
    # A studio draft's test deployment ("Try it"): never resolved by any lookup, its version
    # numbers negative (engine/studio.py).
    is_test: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    deployment: so.Mapped[Deployment] = so.relationship()
    organisation: so.Mapped[Organisation | None] = so.relationship()


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (sa.Index("ix_process_instance_org_status", "organisation_id", "status"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    definition_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("process_definition.id"))
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    status: so.Mapped[str] = so.mapped_column(sa.String(16))
    business_key: so.Mapped[str | None] = so.mapped_column(sa.String(200), index=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    started_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("user_account.id"))
    parent_instance_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("process_instance.id"))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    completed_at: so.Mapped[dt.datetime | None]
    error_message: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # The serialized workflow without its spec (the spec belongs to the definition).
    state: so.Mapped[str] = so.mapped_column(sa.Text)
    serializer_version: so.Mapped[str] = so.mapped_column(sa.String(16))
    lock_version: so.Mapped[int] = so.mapped_column(default=1)
    # Started from a studio draft to try it: tasks go to the tester, no e-mails, not in reports.
    is_test: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())

    definition: so.Mapped[ProcessDefinition] = so.relationship()
    organisation: so.Mapped[Organisation] = so.relationship()
    started_by: so.Mapped[User | None] = so.relationship()

    __mapper_args__ = {"version_id_col": lock_version}


class ProcessDraft(Base):
    """An organisation's not yet deployed copy of a process bundle, edited in the studio.

    One per organisation and process id; ``base_definition_id`` is the version
    it was copied from (NULL for an imported or new bundle). ``lock_version``
    counts saves, so that two editors cannot overwrite each other unseen.
    """

    __tablename__ = "process_draft"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "process_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id", ondelete="CASCADE"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    base_definition_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("process_definition.id", ondelete="SET NULL")
    )
    updated_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    lock_version: so.Mapped[int] = so.mapped_column(default=1)

    base_definition: so.Mapped[ProcessDefinition | None] = so.relationship()
    files: so.Mapped[list[ProcessDraftFile]] = so.relationship(
        back_populates="draft", order_by="ProcessDraftFile.name", cascade="all, delete-orphan"
    )


class ProcessDraftFile(Base):
    """One file (BPMN, DMN or JSON) of a draft; may be a broken model until deployed."""

    __tablename__ = "process_draft_file"
    __table_args__ = (sa.UniqueConstraint("draft_id", "name"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    draft_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("process_draft.id", ondelete="CASCADE"))
    name: so.Mapped[str] = so.mapped_column(sa.String(255))
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    content: so.Mapped[str] = so.mapped_column(sa.Text)

    draft: so.Mapped[ProcessDraft] = so.relationship(back_populates="files")


# Leading columns of the inbox indexes: one organisation's open tasks, assigned to one user or to none.
_INBOX_PREFIX = ("organisation_id", "state", "assignee_id")


class HumanTask(Base):
    """Index row for a READY or finished user/manual task; the inbox reads only this."""

    __tablename__ = "human_task"
    __table_args__ = (
        sa.UniqueConstraint("instance_id", "task_uuid"),
        # The inbox (engine/inbox.py says which index serves which part): one per sort, each
        # branch (assigned to me / unassigned) a range in sort order, the group test on the entry;
        # and one for the counts, a range per branch and group.
        sa.Index("ix_human_task_inbox_due", *_INBOX_PREFIX, "due_at", "created_at", "id", "candidate_group"),
        sa.Index("ix_human_task_inbox_created", *_INBOX_PREFIX, "created_at", "id", "candidate_group"),
        sa.Index("ix_human_task_inbox_name", *_INBOX_PREFIX, "name", "id", "candidate_group"),
        sa.Index("ix_human_task_inbox_counts", *_INBOX_PREFIX, "candidate_group", "id"),
        # "My cases" (engine/cases.py): did this user complete a task of this case (one probe), and
        # the cases whose tasks a user completed (one range).
        sa.Index("ix_human_task_completed_by_instance", "completed_by_id", "instance_id"),
        # A case's tasks in one state, in order (engine/inbox.py, every step of its callers): a
        # range however many tasks the case has finished, e.g. a goal review after years of loops.
        sa.Index("ix_human_task_instance_state", "instance_id", "state", "created_at", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    instance_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("process_instance.id", ondelete="CASCADE"))
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    task_uuid: so.Mapped[str] = so.mapped_column(sa.String(36))
    bpmn_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    name: so.Mapped[str] = so.mapped_column(sa.String(300))
    lane: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    candidate_group: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    assignee_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("user_account.id"), index=True)
    form: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    form_ui: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    instructions: so.Mapped[str | None] = so.mapped_column(sa.Text)
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="ready")
    due_at: so.Mapped[dt.datetime | None]
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    completed_at: so.Mapped[dt.datetime | None]
    completed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("user_account.id"))

    instance: so.Mapped[ProcessInstance] = so.relationship()
    assignee: so.Mapped[User | None] = so.relationship(foreign_keys=[assignee_id])
    completed_by: so.Mapped[User | None] = so.relationship(foreign_keys=[completed_by_id])
    exclusions: so.Mapped[list[HumanTaskExclusion]] = so.relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def excluded_user_ids(self) -> list[int]:
        """Return the users separation of duties keeps off this task."""
        return sorted(e.user_id for e in self.exclusions)


class HumanTaskExclusion(Base):
    """A user separation of duties keeps off a task (its starter, or who did an earlier step).

    A row per user rather than a list on the task, so that the inbox query
    excludes them with an index look-up (``NOT EXISTS`` on the primary key).
    """

    __tablename__ = "human_task_exclusion"
    # The inbox counts exclude a user's tasks by reading that user's rows (engine/inbox.py).
    __table_args__ = (sa.Index("ix_human_task_exclusion_user", "user_id", "human_task_id"),)

    human_task_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )


class Job(Base):
    """Work due at a time: timers, message deliveries, outbox sends, scheduled starts."""

    __tablename__ = "job"
    __table_args__ = (sa.Index("ix_job_due", "status", "due_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending")
    organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisation.id"))
    instance_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("process_instance.id", ondelete="CASCADE"), index=True
    )
    task_uuid: so.Mapped[str | None] = so.mapped_column(sa.String(36))
    due_at: so.Mapped[dt.datetime]
    payload: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    locked_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    locked_until: so.Mapped[dt.datetime | None]
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)


class MessageSubscription(Base):
    """An instance waiting for a message, indexed by name and correlation values."""

    __tablename__ = "message_subscription"
    __table_args__ = (
        sa.Index("ix_message_subscription_lookup", "organisation_id", "message_name", "correlation_key"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id"))
    instance_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("process_instance.id", ondelete="CASCADE"), index=True
    )
    task_uuid: so.Mapped[str] = so.mapped_column(sa.String(36))
    message_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    correlation_key: so.Mapped[str] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only record of what happened: the documentation procurement law requires."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_instance", "instance_id", "id"),
        # The admin console's audit page: an organisation's events, newest first, by kind.
        sa.Index("ix_audit_event_organisation", "organisation_id", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisation.id"))
    instance_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("process_instance.id", ondelete="CASCADE")
    )
    at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    actor: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    element: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    detail: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)


class OutboxMessage(Base):
    """An e-mail written by a service task; a worker job sends it."""

    __tablename__ = "outbox_message"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisation.id"))
    instance_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("process_instance.id", ondelete="CASCADE")
    )
    recipient: so.Mapped[str] = so.mapped_column(sa.String(254))
    subject: so.Mapped[str] = so.mapped_column(sa.String(300))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending")
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    sent_at: so.Mapped[dt.datetime | None]


class Parameter(Base):
    """A per-organisation (or shared, NULL) parameter value valid over a date range."""

    __tablename__ = "parameter"
    __table_args__ = (sa.Index("ix_parameter_lookup", "key", "organisation_id", "valid_from"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisation.id"))
    key: so.Mapped[str] = so.mapped_column(sa.String(120))
    value: so.Mapped[Any] = so.mapped_column(sa.JSON)
    valid_from: so.Mapped[dt.date] = so.mapped_column(sa.Date)
    valid_to: so.Mapped[dt.date | None] = so.mapped_column(sa.Date)
    # History is never edited in place: a correction is a newer row with the same start date.
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow, server_default=sa.func.now())
    created_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    note: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # An organisation's row that says "from valid_from, use the shared value again" (value unused).
    uses_shared: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())


class Schedule(Base):
    """A recurring start of a process for one organisation (cron expression)."""

    __tablename__ = "schedule"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    cron: so.Mapped[str] = so.mapped_column(sa.String(120))
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64), default="UTC")
    data: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)
    starter_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("user_account.id"))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)


class Attachment(Base):
    """A file uploaded to an instance (from a task form); the bytes live in the database.

    Kept in the database rather than on a web node's disk so that every node of
    a cluster serves the same files and backups cover them.
    """

    __tablename__ = "attachment"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id"))
    instance_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("process_instance.id", ondelete="CASCADE"), index=True
    )
    task_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("human_task.id", ondelete="SET NULL"))
    field: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    filename: so.Mapped[str] = so.mapped_column(sa.String(255))
    content_type: so.Mapped[str] = so.mapped_column(sa.String(200))
    size: so.Mapped[int]
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    content: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary, deferred=True)
    uploaded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("user_account.id"))
    uploaded_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    uploaded_by: so.Mapped[User | None] = so.relationship()


class SignInFailures(Base):
    """Failed sign-ins counted per (username, client address), and per address alone (username ``""``).

    Kept in the database so that every web process and host throttles the same
    counters; see :mod:`engine.sign_in_throttle`.
    """

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        sa.UniqueConstraint("username", "address", name="uq_sign_in_failures_username_address"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    username: so.Mapped[str] = so.mapped_column(sa.String(120))
    address: so.Mapped[str] = so.mapped_column(sa.String(64))
    failures: so.Mapped[int] = so.mapped_column(default=0)
    last_failure_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow, index=True)


class CaseReport(Base):
    """The reporting projection of one instance (engine/projection.py): lists and reports read only this.

    Written by the engine in the same transaction as the instance. ``fields``
    holds the values the process's ``reporting.json`` declares; those declared
    ``indexed`` are also rows of :class:`CaseReportValue`, where queries filter on them.
    """

    __tablename__ = "case_report"
    __table_args__ = (
        sa.Index("ix_case_report_org_process_status", "organisation_id", "process_id", "status"),
        # The case list (engine/cases.py): one per sort, each page one range in the sort's order;
        # the default sort also with a process or a status filter. The default sort's index also
        # holds the starter and the search text (after the instance id, so they do not change its
        # order): "my cases" and the text search test each case in the index, not in the table row.
        sa.Index(
            "ix_case_report_org_started",
            "organisation_id",
            "started_at",
            "instance_id",
            "started_by_id",
            "search_text",
        ),
        sa.Index("ix_case_report_org_updated", "organisation_id", "updated_at", "instance_id"),
        sa.Index("ix_case_report_org_title", "organisation_id", "title", "instance_id"),
        sa.Index(
            "ix_case_report_org_process_started", "organisation_id", "process_id", "started_at", "instance_id"
        ),
        sa.Index(
            "ix_case_report_org_status_started", "organisation_id", "status", "started_at", "instance_id"
        ),
        # The case list's text search on PostgreSQL: a rare term is found through the trigrams
        # instead of reading the organisation's whole range. SQLite has no trigram index: there it
        # is an index of no rows (WHERE 0), so that both databases have the same schema.
        sa.Index(
            "ix_case_report_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
            sqlite_where=sa.text("0"),
        ),
    )

    instance_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("process_instance.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    status: so.Mapped[str] = so.mapped_column(sa.String(16))
    title: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    business_key: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    started_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("user_account.id"))
    started_at: so.Mapped[dt.datetime]
    completed_at: so.Mapped[dt.datetime | None]
    updated_at: so.Mapped[dt.datetime]
    fields: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)
    # Lower-cased title, business key and the values of the fields declared "search", one per line:
    # the case list's text search is one LIKE on the row (engine/cases.py).
    search_text: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")


class CaseReportValue(Base):
    """One indexed reporting field of an instance, in the column of its type (the others NULL).

    Strings and booleans (``"true"``/``"false"``) in ``text_value``, numbers in
    ``number_value``, dates in ``date_value``, date-times in ``time_value``.
    """

    __tablename__ = "case_report_value"
    __table_args__ = (
        sa.Index("ix_case_report_value_text", "organisation_id", "process_id", "name", "text_value"),
        sa.Index("ix_case_report_value_number", "organisation_id", "process_id", "name", "number_value"),
        sa.Index("ix_case_report_value_date", "organisation_id", "process_id", "name", "date_value"),
        sa.Index("ix_case_report_value_time", "organisation_id", "process_id", "name", "time_value"),
    )

    instance_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("case_report.instance_id", ondelete="CASCADE"), primary_key=True
    )
    name: so.Mapped[str] = so.mapped_column(sa.String(100), primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    text_value: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    number_value: so.Mapped[Decimal | None] = so.mapped_column(sa.Numeric(20, 4))
    date_value: so.Mapped[dt.date | None]
    time_value: so.Mapped[dt.datetime | None]


class PasswordLink(Base):
    """A one-time link to set a password: made by an admin for a new user, stored hashed."""

    __tablename__ = "password_link"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    created_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    expires_at: so.Mapped[dt.datetime]
    used_at: so.Mapped[dt.datetime | None]

    user: so.Mapped[User] = so.relationship()


class ProcessSetting(Base):
    """An organisation's choice for one process id: its own versions, or the shared one again."""

    __tablename__ = "process_setting"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "process_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id", ondelete="CASCADE"))
    process_id: so.Mapped[str] = so.mapped_column(sa.String(200))
    # True: new cases start on the shared version although the organisation has its own.
    use_shared: so.Mapped[bool] = so.mapped_column(default=False)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    updated_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))


class ExternalIdentity(Base):
    """A user's account at an OpenID Connect provider: (issuer, subject) signs them in."""

    __tablename__ = "external_identity"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    issuer: so.Mapped[str] = so.mapped_column(sa.String(500))
    subject: so.Mapped[str] = so.mapped_column(sa.String(255))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    last_sign_in_at: so.Mapped[dt.datetime | None]

    user: so.Mapped[User] = so.relationship()


class ServiceAccount(Base):
    """A system that calls the REST API for one organisation (a web form, an e-procurement platform).

    It acts through its own user (no password, so no sign-in) and that user's
    membership: its roles and groups decide what its tokens may do, as for a person.
    """

    __tablename__ = "service_account"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id", ondelete="CASCADE"))
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), unique=True
    )
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    created_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    # Set when an admin removed it: its tokens were revoked and its membership deactivated.
    deactivated_at: so.Mapped[dt.datetime | None]

    user: so.Mapped[User] = so.relationship()


class ApiToken(Base):
    """A bearer token of the REST API: one user's (a person or a service account) in one organisation.

    Only the SHA-256 of the token is stored; ``hint`` is its first characters,
    enough to tell tokens apart on a page. ``scopes`` is ``["read"]`` or
    ``["read", "write"]`` (see :mod:`engine.api_tokens`).
    """

    __tablename__ = "api_token"
    __table_args__ = (sa.Index("ix_api_token_organisation_user", "organisation_id", "user_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisation.id", ondelete="CASCADE"))
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    hint: so.Mapped[str] = so.mapped_column(sa.String(16))
    scopes: so.Mapped[list[Any]] = so.mapped_column(default=list)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    created_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    expires_at: so.Mapped[dt.datetime]
    revoked_at: so.Mapped[dt.datetime | None]
    revoked_by: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    last_used_at: so.Mapped[dt.datetime | None]

    user: so.Mapped[User] = so.relationship()
    organisation: so.Mapped[Organisation] = so.relationship()
