"""Deploying process bundles and finding the definition version to run.

Lookup follows Camunda and Flowable: an organisation's own deployment of a
process id wins over the shared one (deployed without an organisation),
unless the organisation chose to use the shared version again
(:class:`~engine.models.ProcessSetting` ``use_shared``): then new cases start
on the latest shared version although it has its own. Running cases stay on
the version they started on either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._specs import SPEC_CACHE, BundleFile, ParsedBundle, bundle_hash, parse_bundle, read_bundle
from .caches import organisation_by_id, resolved_definition
from .errors import NotFoundError, Problem
from .identity import get_organisation
from .models import AuditEvent, Deployment, DeploymentFile, ProcessDefinition, ProcessSetting


@dataclass(frozen=True)
class DeployedProcess:
    """One process id of a deployment and the version it now has."""

    process_id: str
    version: int
    organisation: str | None
    changed: bool
    # What the bundle's checks found that deploys but should be looked at (the same for every process).
    warnings: tuple[Problem, ...] = ()


def deploy_path(
    session: so.Session, path: str | Path, *, organisation: str | None = None, user: str | None = None
) -> list[DeployedProcess]:
    """Deploy the bundle in folder (or file) *path*; see :func:`deploy_files`."""
    path = Path(path)
    return deploy_files(session, read_bundle(path), name=path.name, organisation=organisation, user=user)


def deploy_files(
    session: so.Session,
    files: list[BundleFile],
    *,
    name: str,
    organisation: str | None = None,
    user: str | None = None,
) -> list[DeployedProcess]:
    """Validate and store a bundle; every changed process gets version N+1.

    A process whose latest version (for this organisation, or shared) has the
    same bundle content is left alone. Nothing is written if any file is invalid.
    Runs in the caller's transaction.

    :raises DeploymentError: with file, line and element id of the problem.
    :raises NotFoundError: the organisation does not exist.
    """
    org = get_organisation(session, organisation) if organisation else None
    org_id = org.id if org else None
    content_hash = bundle_hash(files)
    parsed = parse_bundle(files)
    SPEC_CACHE.put(content_hash, parsed)

    results: list[DeployedProcess] = []
    deployment: Deployment | None = None
    for process_id in parsed.executable:
        latest = latest_definition(session, process_id, org_id)
        if latest is not None and latest.content_hash == content_hash:
            results.append(
                DeployedProcess(
                    process_id, latest.version, organisation, changed=False, warnings=tuple(parsed.warnings)
                )
            )
            continue
        if deployment is None:
            deployment = Deployment(
                organisation_id=org_id,
                name=name,
                content_hash=content_hash,
                deployed_by=user,
                files=[DeploymentFile(name=f.name, kind=f.kind, content=f.content) for f in files],
            )
            session.add(deployment)
            session.flush()
        definition = ProcessDefinition(
            deployment_id=deployment.id,
            organisation_id=org_id,
            process_id=process_id,
            name=parsed.names[process_id],
            version=(latest.version + 1) if latest else 1,
            content_hash=content_hash,
            message_starts=parsed.message_starts[process_id],
            message_correlations=parsed.message_correlations[process_id],
            translated_names=parsed.translated_names,
        )
        session.add(definition)
        session.flush()
        session.add(
            AuditEvent(
                organisation_id=org_id,
                actor=user,
                kind="deployed",
                element=process_id,
                detail={"version": definition.version, "bundle": name, "content_hash": content_hash},
            )
        )
        results.append(
            DeployedProcess(
                process_id, definition.version, organisation, changed=True, warnings=tuple(parsed.warnings)
            )
        )
    session.flush()
    return results


def latest_definition(
    session: so.Session, process_id: str, organisation_id: int | None
) -> ProcessDefinition | None:
    """Return the latest version of *process_id* deployed for *organisation_id* (``None``: shared).

    Test definitions (a studio draft tried out, ``is_test``) are never the latest.
    """
    org_filter = (
        ProcessDefinition.organisation_id.is_(None)
        if organisation_id is None
        else ProcessDefinition.organisation_id == organisation_id
    )
    return session.scalar(
        sa.select(ProcessDefinition)
        .where(ProcessDefinition.process_id == process_id, org_filter, ProcessDefinition.is_test.is_(False))
        .order_by(ProcessDefinition.version.desc())
        .limit(1)
    )


def shared_again(session: so.Session, organisation_id: int, process_id: str | None = None) -> set[str]:
    """Return the process ids for which the organisation chose the shared version again (of *process_id*)."""
    stmt = sa.select(ProcessSetting.process_id).where(
        ProcessSetting.organisation_id == organisation_id, ProcessSetting.use_shared.is_(True)
    )
    if process_id is not None:
        stmt = stmt.where(ProcessSetting.process_id == process_id)
    return set(session.scalars(stmt))


def definition_for_new_cases(
    session: so.Session, process_id: str, organisation_id: int
) -> ProcessDefinition | None:
    """Return the version new cases of *process_id* start on for the organisation (uncached).

    Its own latest version, unless it chose the shared version again and a shared
    one exists; else the latest shared one. :func:`engine.caches.resolved_definition`
    caches this answer per definitions version.
    """
    own = latest_definition(session, process_id, organisation_id)
    if own is not None and not shared_again(session, organisation_id, process_id):
        return own
    return latest_definition(session, process_id, None) or own


def resolve_definition(session: so.Session, process_id: str, organisation_id: int) -> ProcessDefinition:
    """Return the latest version of *process_id* the organisation runs: its own, else the shared one.

    An organisation that chose the shared version again (``ProcessSetting.use_shared``)
    runs the shared one although it has its own.

    :raises NotFoundError: neither exists.
    """
    organisation = organisation_by_id(session, organisation_id)
    definition = resolved_definition(session, organisation, process_id) if organisation else None
    if definition is None:
        raise NotFoundError(f"No process {process_id!r} is deployed for this organisation")
    return definition


def visible_definitions(session: so.Session, organisation_id: int) -> list[ProcessDefinition]:
    """Return the definition each process id resolves to for the organisation, sorted by name.

    Test definitions (``is_test``) are left out, as :func:`latest_definition` leaves them out;
    the organisation's choice of the shared version again counts, as in :func:`resolve_definition`.
    """
    candidates = session.scalars(
        sa.select(ProcessDefinition).where(
            sa.or_(
                ProcessDefinition.organisation_id.is_(None),
                ProcessDefinition.organisation_id == organisation_id,
            ),
            ProcessDefinition.is_test.is_(False),
        )
    )
    # Same rule as resolve_definition, in one query: own versions over shared ones (unless the
    # organisation chose the shared one again), then the latest.
    again = shared_again(session, organisation_id)
    latest: dict[tuple[str, bool], ProcessDefinition] = {}
    for definition in candidates:
        key = (definition.process_id, definition.organisation_id is not None)
        current = latest.get(key)
        if current is None or definition.version > current.version:
            latest[key] = definition
    chosen: dict[str, ProcessDefinition] = {}
    for (process_id, own), definition in latest.items():
        if own:
            wanted = process_id not in again or (process_id, False) not in latest
        else:
            wanted = process_id in again or (process_id, True) not in latest
        if wanted:
            chosen[process_id] = definition
    return sorted(chosen.values(), key=lambda d: (d.name.lower(), d.process_id))


def load_parsed(session: so.Session, definition: ProcessDefinition) -> ParsedBundle:
    """Return the parsed bundle of *definition*, from the cache when already parsed."""

    def files() -> list[BundleFile]:
        rows = session.scalars(
            sa.select(DeploymentFile).where(DeploymentFile.deployment_id == definition.deployment_id)
        )
        return [BundleFile(name=row.name, kind=row.kind, content=row.content) for row in rows]

    return SPEC_CACHE.get(definition.content_hash, files)


def bundle_file(session: so.Session, definition: ProcessDefinition, name: str) -> BundleFile:
    """Return a file of the definition's bundle by path or file name (forms, diagrams).

    :raises NotFoundError: no such file.
    """
    found = load_parsed(session, definition).file(name)
    if found is not None:
        return found
    raise NotFoundError(f"No file {name!r} in the bundle of {definition.process_id!r} v{definition.version}")


def bundle_json(session: so.Session, definition: ProcessDefinition, name: str) -> Any:
    """Return a JSON file of the definition's bundle, parsed (cached per version; do not modify).

    :raises NotFoundError: no such file.
    """
    try:
        return load_parsed(session, definition).json_file(name)
    except KeyError:
        raise NotFoundError(
            f"No file {name!r} in the bundle of {definition.process_id!r} v{definition.version}"
        ) from None


def element_names(session: so.Session, definition: ProcessDefinition) -> dict[str, str]:
    """Return the BPMN names of every element of *definition*'s processes (subprocesses too), by id.

    An element without a name is left out, so callers fall back to their own default.
    """
    parsed = load_parsed(session, definition)
    specs = [
        *parsed.specs.values(),
        *(s for by_id in parsed.subprocess_specs.values() for s in by_id.values()),
    ]
    return {
        task_spec.bpmn_id: task_spec.bpmn_name
        for spec in specs
        for task_spec in spec.task_specs.values()
        if getattr(task_spec, "bpmn_id", None) and getattr(task_spec, "bpmn_name", None)
    }
