"""What the studio's lists show: the process models an organisation sees, their versions and drafts.

Counts come from SQL over ``process_instance`` (status and definition only),
never from deserialised workflows. An organisation sees counts of its own
instances only, also on shared versions; test instances are never counted.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so

from .models import Deployment, ProcessDefinition, ProcessDraft, ProcessInstance

# An instance on these statuses still runs on its version; completed and cancelled ones are finished.
FINISHED_STATUSES = ("completed", "cancelled")


@dataclass(frozen=True)
class VersionSummary:
    """One deployed version of a process: who deployed it, when, and the organisation's instances on it."""

    definition_id: int
    version: int
    shared: bool
    name: str
    deployed_by: str | None
    deployed_at: dt.datetime
    running: int
    finished: int


@dataclass(frozen=True)
class DraftSummary:
    """An organisation's draft of a process: who saved it last, and when."""

    process_id: str
    updated_by: str | None
    updated_at: dt.datetime
    draft_version: int
    base_definition_id: int | None


@dataclass
class ProcessModel:
    """A process the organisation sees in the studio, with its versions newest first.

    ``runs`` is the version the organisation's new cases start on (own over
    shared), ``None`` for a process that only has a draft (imported, never deployed).
    """

    process_id: str
    name: str
    versions: list[VersionSummary] = field(default_factory=list)
    draft: DraftSummary | None = None
    runs: VersionSummary | None = None

    @property
    def shared(self) -> bool:
        """Whether the organisation runs the shared version (it has no version of its own)."""
        return self.runs is not None and self.runs.shared

    @property
    def own_versions(self) -> list[VersionSummary]:
        """The organisation's own versions, newest first."""
        return [v for v in self.versions if not v.shared]


def process_models(
    session: so.Session, organisation_id: int, *, process_id: str | None = None
) -> list[ProcessModel]:
    """Return every process the organisation sees (own, shared, drafts only), sorted by name.

    With *process_id*, only that one (an empty list if the organisation sees
    no such process). Test definitions are left out.
    """
    definitions = sa.select(ProcessDefinition, Deployment.deployed_by, Deployment.deployed_at).join(
        Deployment, Deployment.id == ProcessDefinition.deployment_id
    )
    definitions = definitions.where(
        sa.or_(
            ProcessDefinition.organisation_id.is_(None),
            ProcessDefinition.organisation_id == organisation_id,
        ),
        ProcessDefinition.is_test.is_(False),
    )
    drafts = sa.select(ProcessDraft).where(ProcessDraft.organisation_id == organisation_id)
    if process_id is not None:
        definitions = definitions.where(ProcessDefinition.process_id == process_id)
        drafts = drafts.where(ProcessDraft.process_id == process_id)
    rows = session.execute(definitions).all()
    counts = _instance_counts(session, organisation_id, [d.id for d, _, _ in rows])
    models: dict[str, ProcessModel] = {}
    for definition, deployed_by, deployed_at in rows:
        model = models.setdefault(definition.process_id, ProcessModel(definition.process_id, definition.name))
        running, finished = counts.get(definition.id, (0, 0))
        model.versions.append(
            VersionSummary(
                definition_id=definition.id,
                version=definition.version,
                shared=definition.organisation_id is None,
                name=definition.name,
                deployed_by=deployed_by,
                deployed_at=deployed_at,
                running=running,
                finished=finished,
            )
        )
    for model in models.values():
        # Own versions first, each line newest first; what runs is the newest of the first line.
        model.versions.sort(key=lambda v: (v.shared, -v.version))
        model.runs = model.versions[0]
        model.name = model.runs.name
    for draft in session.scalars(drafts):
        model = models.setdefault(draft.process_id, ProcessModel(draft.process_id, draft.process_id))
        model.draft = DraftSummary(
            process_id=draft.process_id,
            updated_by=draft.updated_by,
            updated_at=draft.updated_at,
            draft_version=draft.lock_version,
            base_definition_id=draft.base_definition_id,
        )
    return sorted(models.values(), key=lambda m: (m.name.lower(), m.process_id))


def running_by_version(
    session: so.Session, process_id: str, *, organisation_id: int | None, shared: bool
) -> dict[int, int]:
    """Return how many instances still run on each version of one line of *process_id*.

    The line is the organisation's own versions, or the shared ones (*shared*).
    Counted are the organisation's instances, or with ``organisation_id=None``
    those of every organisation (what the platform's process owners see of
    the shared versions they deploy). Test instances are left out.
    """
    line = (
        ProcessDefinition.organisation_id.is_(None)
        if shared
        else ProcessDefinition.organisation_id == organisation_id
    )
    stmt = (
        sa.select(ProcessDefinition.version, sa.func.count(ProcessInstance.id))
        .join(ProcessInstance, ProcessInstance.definition_id == ProcessDefinition.id)
        .where(
            ProcessDefinition.process_id == process_id,
            ProcessDefinition.is_test.is_(False),
            line,
            ProcessInstance.status.not_in(FINISHED_STATUSES),
        )
        .group_by(ProcessDefinition.version)
        .order_by(ProcessDefinition.version)
    )
    if organisation_id is not None:
        stmt = stmt.where(ProcessInstance.organisation_id == organisation_id)
    return {version: count for version, count in session.execute(stmt)}


def _instance_counts(
    session: so.Session, organisation_id: int, definition_ids: list[int]
) -> dict[int, tuple[int, int]]:
    """Return (running, finished) instances of the organisation per definition id."""
    if not definition_ids:
        return {}
    finished = ProcessInstance.status.in_(FINISHED_STATUSES)
    stmt = (
        sa.select(
            ProcessInstance.definition_id,
            sa.func.count(ProcessInstance.id).filter(sa.not_(finished)),
            sa.func.count(ProcessInstance.id).filter(finished),
        )
        .where(
            ProcessInstance.organisation_id == organisation_id,
            ProcessInstance.definition_id.in_(definition_ids),
            ProcessInstance.is_test.is_(False),
        )
        .group_by(ProcessInstance.definition_id)
    )
    counts: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for definition_id, running, done in session.execute(stmt):
        counts[definition_id] = (running, done)
    return dict(counts)
