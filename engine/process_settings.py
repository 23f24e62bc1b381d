"""Own versions of shared processes: which version an organisation's new cases start on.

A shared process (deployed without an organisation) serves every organisation
until it deploys its own version under the same process id ("customise" in the
studio makes the draft of it). An organisation with its own version may go back
to the shared one for new cases ("use the shared version again") and later
return to its own: that choice is a :class:`~engine.models.ProcessSetting`
row, read by :func:`engine.definitions.resolve_definition`. Cases already
running stay on the version they started on.

Every function runs inside the caller's transaction; a change of the choice
replaces the organisation's definitions version (the ``before_flush`` listener
of :mod:`engine.caches`), so every process resolves afresh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from .admin_audit import record_admin_action
from .errors import InvalidStateError, NotFoundError
from .models import ProcessDefinition, ProcessDraft, ProcessSetting, utcnow


@dataclass(frozen=True)
class ProcessChoice:
    """One process an organisation sees: its latest own and shared versions and which one new cases get."""

    process_id: str
    name: str
    own: ProcessDefinition | None
    shared: ProcessDefinition | None
    # The organisation chose the shared version again although it has its own.
    use_shared: bool
    has_draft: bool
    updated_at: dt.datetime | None = None
    updated_by: str | None = None

    @property
    def new_cases(self) -> ProcessDefinition:
        """The version new cases start on."""
        if self.own is not None and not (self.use_shared and self.shared is not None):
            return self.own
        assert self.shared is not None  # a choice has an own or a shared version
        return self.shared

    @property
    def state(self) -> str:
        """``shared`` (no own version), ``own``, or ``own_using_shared``."""
        if self.own is None:
            return "shared"
        if self.use_shared and self.shared is not None:
            return "own_using_shared"
        return "own"


def process_choices(session: so.Session, organisation_id: int) -> list[ProcessChoice]:
    """Return every process the organisation sees (own or shared), sorted by name, then id.

    Reads the latest own and the latest shared version of each process id in one
    query (test definitions left out), then the settings and drafts.
    """
    ranked = (
        sa.select(
            ProcessDefinition.id,
            sa.func.row_number()
            .over(
                partition_by=(ProcessDefinition.process_id, ProcessDefinition.organisation_id),
                order_by=ProcessDefinition.version.desc(),
            )
            .label("rank"),
        )
        .where(
            sa.or_(
                ProcessDefinition.organisation_id.is_(None),
                ProcessDefinition.organisation_id == organisation_id,
            ),
            ProcessDefinition.is_test.is_(False),
        )
        .subquery()
    )
    latest = session.scalars(
        sa.select(ProcessDefinition)
        .join(ranked, ranked.c.id == ProcessDefinition.id)
        .where(ranked.c.rank == 1)
    )
    own: dict[str, ProcessDefinition] = {}
    shared: dict[str, ProcessDefinition] = {}
    for definition in latest:
        (shared if definition.organisation_id is None else own)[definition.process_id] = definition
    settings = {
        s.process_id: s
        for s in session.scalars(
            sa.select(ProcessSetting).where(ProcessSetting.organisation_id == organisation_id)
        )
    }
    drafts = set(
        session.scalars(
            sa.select(ProcessDraft.process_id).where(ProcessDraft.organisation_id == organisation_id)
        )
    )
    choices = []
    for process_id in own.keys() | shared.keys():
        setting = settings.get(process_id)
        named = own.get(process_id) or shared[process_id]
        choices.append(
            ProcessChoice(
                process_id=process_id,
                name=named.name,
                own=own.get(process_id),
                shared=shared.get(process_id),
                use_shared=bool(setting and setting.use_shared),
                has_draft=process_id in drafts,
                updated_at=setting.updated_at if setting else None,
                updated_by=setting.updated_by if setting else None,
            )
        )
    return sorted(choices, key=lambda c: (c.name.lower(), c.process_id))


def process_choice(session: so.Session, organisation_id: int, process_id: str) -> ProcessChoice:
    """Return the organisation's choice for one process.

    :raises NotFoundError: the organisation sees no process *process_id*.
    """
    for choice in process_choices(session, organisation_id):
        if choice.process_id == process_id:
            return choice
    raise NotFoundError(f"No process {process_id!r} is deployed for this organisation")


def set_use_shared(
    session: so.Session, organisation_id: int, process_id: str, *, use_shared: bool, user: str | None
) -> ProcessChoice:
    """Make the organisation's new cases of *process_id* start on the shared version (or its own again).

    Audited as ``admin.process_uses_shared`` / ``admin.process_uses_own`` with the
    version new cases got before and get after. Setting what is already set changes
    nothing and records nothing.

    :raises NotFoundError: the organisation sees no process *process_id*.
    :raises InvalidStateError: *use_shared* and the process has no shared version, or the
        organisation has no own version of it (then it runs the shared one anyway);
        not *use_shared* and it has no own version (customise it first).
    """
    choice = process_choice(session, organisation_id, process_id)
    if choice.own is None:
        raise InvalidStateError(
            f"Your organisation has no version of its own of {process_id!r}: it runs the shared one"
            + ("" if use_shared else "; customise it first")
        )
    if use_shared and choice.shared is None:
        raise InvalidStateError(f"Process {process_id!r} has no shared version to go back to")
    if choice.use_shared == use_shared:
        return choice
    before = choice.new_cases
    setting = session.scalar(
        sa.select(ProcessSetting).where(
            ProcessSetting.organisation_id == organisation_id, ProcessSetting.process_id == process_id
        )
    )
    if setting is None:
        setting = ProcessSetting(organisation_id=organisation_id, process_id=process_id)
        session.add(setting)
    setting.use_shared = use_shared
    setting.updated_at = utcnow()
    setting.updated_by = user
    session.flush()
    after = process_choice(session, organisation_id, process_id)
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=user,
        action="process_uses_shared" if use_shared else "process_uses_own",
        target=f"process {process_id}",
        before={"use_shared": not use_shared, "new_cases": _version(before)},
        after={"use_shared": use_shared, "new_cases": _version(after.new_cases)},
    )
    return after


def _version(definition: ProcessDefinition) -> str:
    return f"{'own' if definition.organisation_id is not None else 'shared'} v{definition.version}"
