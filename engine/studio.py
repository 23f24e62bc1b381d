"""The process studio's drafts: edit a bundle without deploying it, check it, try it, deploy it.

A **draft** is one organisation's not yet deployed copy of a process bundle
(BPMN, DMN and JSON files), one per organisation and process id. It is made on
first use as a copy of the version the organisation runs (its own, else the
shared one), or by an import; drafts may hold broken models, since they are
work in progress. :func:`validate_draft` runs exactly the checks of
``procflow deploy``; :func:`deploy_draft` deploys it (version N+1, or a no-op
for unchanged files) and then **deletes the draft**: the deployed version *is*
its content, and the next edit opens a new draft from it. That is what users of
Camunda's Web Modeler and spiff-arena see: the model stays open as deployed,
with nothing pending; a list of "drafts" shows only work not yet deployed.

**Who deploys what.** A process owner deploys their organisation's own
version. The process owners of the *platform* organisation
(``Organisation.is_platform``) own the shared versions: their drafts deploy
shared versions (no organisation), unless the platform organisation runs an
own version of that process, which then gets the new version. Another
organisation's draft of a shared process ("customise") deploys an own version
that from then on wins over the shared one.

**Test definitions and instances.** :func:`start_test_instance` deploys the
draft as a *test definition* (``ProcessDefinition.is_test``) of the draft's
organisation and starts a *test instance* (``ProcessInstance.is_test``) of it.
No lookup ever resolves a test definition (latest version, catalogue,
resolve, message starts: see :mod:`engine.definitions`), and it takes no real
version number: test versions count *down* from -1 (-1, -2, ...) per
organisation and process id, so they never collide with, nor sort above, the
real versions 1, 2, ...; trying unchanged files again reuses their test
definition. In a test instance every human task is assigned to the tester
who started it, whatever its lane or separation of duties say, so one person
steps through the whole case; no one is e-mailed about its tasks; and it has
no reporting row, so no list or report counts it.

Draft saves count ``lock_version`` up; a caller that passes the version its
editor loaded (``draft_version``) gets :class:`~engine.errors.ConflictError`
if someone saved in between, rather than overwriting their work unseen.

Every function runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._draft_files import (
    MAX_DRAFT_FILES,
    check_file_name,
    checked_content,
    delete_draft_file,
    draft_files,
    file_kind,
    primary_process_id,
    read_draft_file,
    save_draft_file,
    touch,
)
from ._model_versions import DraftSummary, ProcessModel, VersionSummary, process_models, running_by_version
from ._specs import (
    SPEC_CACHE,
    BundleFile,
    bundle_hash,
    parse_bundle,
)
from ._workflow import InstanceOperation
from .definitions import DeployedProcess, deploy_files, latest_definition
from .errors import ConflictError, DeploymentError, NotFoundError, PermissionDeniedError, Problem
from .messages import start_by_message
from .models import (
    AuditEvent,
    Deployment,
    DeploymentFile,
    Membership,
    Organisation,
    ProcessDefinition,
    ProcessDraft,
    ProcessDraftFile,
    ProcessInstance,
    User,
    utcnow,
)
from .runtime import (
    STARTER_ROLES,
    checked_start_data,
    create_instance,
    manual_start_event,
    manual_start_event_of,
)

__all__ = [
    "MAX_DRAFT_FILES",
    "DeployTarget",
    "DraftSummary",
    "ProcessDraft",
    "ProcessDraftFile",
    "ProcessModel",
    "VersionSummary",
    "check_file_name",
    "create_draft",
    "delete_draft",
    "delete_draft_file",
    "deploy_draft",
    "deploy_target",
    "deploy_target_of",
    "draft_files",
    "draft_start_form",
    "files_of_version",
    "find_draft",
    "may_edit_shared",
    "open_draft",
    "primary_process_id",
    "process_models",
    "read_draft_file",
    "running_by_version",
    "running_definition",
    "save_draft_file",
    "start_test_instance",
    "test_definition",
    "validate_draft",
    "validate_version",
]


@dataclass(frozen=True)
class DeployTarget:
    """Where a draft deploys to: the organisation's own versions, or the shared ones."""

    shared: bool
    organisation_key: str | None  # None: shared


def _organisation(session: so.Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFoundError(f"No organisation {organisation_id}")
    return organisation


def running_definition(
    session: so.Session, organisation_id: int, process_id: str
) -> ProcessDefinition | None:
    """Return the version of *process_id* the organisation runs now (own, else shared), or ``None``.

    Never a test definition; reads the database, not the caches, so a version
    deployed earlier in this transaction counts.
    """
    return latest_definition(session, process_id, organisation_id) or latest_definition(
        session, process_id, None
    )


def find_draft(session: so.Session, organisation_id: int, process_id: str) -> ProcessDraft | None:
    """Return the organisation's draft of *process_id*, if it has one."""
    return session.scalar(
        sa.select(ProcessDraft).where(
            ProcessDraft.organisation_id == organisation_id, ProcessDraft.process_id == process_id
        )
    )


def open_draft(
    session: so.Session, organisation_id: int, process_id: str, *, user: str | None, customise: bool = False
) -> ProcessDraft:
    """Return the organisation's draft of *process_id*, made on first use from the version it runs.

    The new draft copies the files of the organisation's own version, else the
    shared one; ``base_definition_id`` records which. A shared process is
    read-only for every organisation but the platform one until it is
    customised: only with *customise* does an organisation start its own draft of it.

    :raises NotFoundError: the process is not visible to the organisation and it has no draft of it.
    :raises PermissionDeniedError: the process is shared, the organisation is not the platform
        organisation and *customise* is false.
    """
    draft = find_draft(session, organisation_id, process_id)
    if draft is not None:
        return draft
    running = running_definition(session, organisation_id, process_id)
    if running is None:
        raise NotFoundError(f"No process {process_id!r} is deployed for this organisation")
    if running.organisation_id is None and not customise and not may_edit_shared(session, organisation_id):
        raise PermissionDeniedError(
            f"Process {process_id!r} is shared and read-only here: customise it to make a version of your own"
        )
    return create_draft(
        session, organisation_id, process_id, files_of_version(session, running), user=user, base=running
    )


def may_edit_shared(session: so.Session, organisation_id: int) -> bool:
    """Whether the organisation's process owners edit the shared versions (it is the platform one)."""
    return _organisation(session, organisation_id).is_platform


def create_draft(
    session: so.Session,
    organisation_id: int,
    process_id: str,
    files: Iterable[BundleFile],
    *,
    user: str | None,
    base: ProcessDefinition | None = None,
) -> ProcessDraft:
    """Make the organisation's draft of *process_id* hold *files*, replacing what a draft held.

    What an import does: the files are checked as :func:`save_draft_file` checks
    them (names, sizes), not as a deploy would. An existing draft keeps its id
    and counts one save up.

    :raises DeploymentError: a file name or size is refused (naming the file), or too many files.
    """
    files = list(files)
    if len(files) > MAX_DRAFT_FILES:
        raise DeploymentError(f"a draft holds at most {MAX_DRAFT_FILES} files, this one has {len(files)}")
    checked = [
        BundleFile(check_file_name(f.name), file_kind(f.name), checked_content(f.name, f.content))
        for f in files
    ]
    draft = find_draft(session, organisation_id, process_id)
    now = utcnow()
    if draft is None:
        draft = ProcessDraft(
            organisation_id=organisation_id,
            process_id=process_id,
            base_definition_id=base.id if base else None,
            updated_by=user,
            created_at=now,
            updated_at=now,
        )
        draft.files = [ProcessDraftFile(name=f.name, kind=f.kind, content=f.content) for f in checked]
        try:
            with session.begin_nested():
                session.add(draft)
                session.flush()
        except sa.exc.IntegrityError:
            # Someone made the draft at the same moment: theirs stands, this one is refused.
            raise ConflictError(
                f"A draft of {process_id!r} was made meanwhile by someone else; open it again"
            ) from None
        return draft
    # Old rows go first: the unit of work would insert the new ones before deleting (same names).
    session.execute(sa.delete(ProcessDraftFile).where(ProcessDraftFile.draft_id == draft.id))
    session.expire(draft, ["files"])
    session.add_all(
        ProcessDraftFile(draft_id=draft.id, name=f.name, kind=f.kind, content=f.content) for f in checked
    )
    draft.base_definition_id = base.id if base else None
    touch(session, draft, user=user, draft_version=None)
    return draft


def delete_draft(session: so.Session, draft: ProcessDraft) -> None:
    """Discard *draft* and its files (what the version it came from holds is untouched)."""
    session.delete(draft)
    session.flush()


def validate_draft(session: so.Session, draft: ProcessDraft) -> list[Problem]:
    """Return what ``procflow deploy`` would say of the draft: its error, or else its warnings.

    The same checks as :func:`engine.deploy_files` (with the form-schema
    checks): a refused bundle gives the problem that refuses it (deploy stops
    at the first), a deployable one the warnings of its parse, if any. Also an
    error if the bundle no longer holds the draft's process as an executable one.
    """
    try:
        parsed = parse_bundle(_deployable_files(session, draft), check_form_schemas=True)
    except DeploymentError as exc:
        return [exc.problem()]
    if draft.process_id not in parsed.executable:
        return [_missing_process(draft, parsed.executable)]
    return list(parsed.warnings)


def deploy_target(session: so.Session, draft: ProcessDraft) -> DeployTarget:
    """Return where *draft* deploys: shared for the platform organisation (see the module docstring)."""
    return deploy_target_of(session, draft.organisation_id, draft.process_id)


def deploy_target_of(session: so.Session, organisation_id: int, process_id: str) -> DeployTarget:
    """Return where the organisation's draft of *process_id* deploys (see :func:`deploy_target`)."""
    organisation = _organisation(session, organisation_id)
    if organisation.is_platform and latest_definition(session, process_id, organisation.id) is None:
        return DeployTarget(shared=True, organisation_key=None)
    return DeployTarget(shared=False, organisation_key=organisation.key)


def validate_version(session: so.Session, definition: ProcessDefinition) -> list[Problem]:
    """Return what a deploy of a deployed version's files would say now: its warnings, or an error.

    A version passed the checks of its day; later checks may have something to say.
    """
    try:
        return list(parse_bundle(files_of_version(session, definition), check_form_schemas=True).warnings)
    except DeploymentError as exc:
        return [exc.problem()]


def deploy_draft(session: so.Session, draft: ProcessDraft, *, user: str | None) -> list[DeployedProcess]:
    """Deploy *draft* as :func:`engine.deploy_files` does, then delete the draft.

    Every changed process of the bundle gets version N+1 for the target
    (:func:`deploy_target`); unchanged files are a no-op. The deploy is in the
    audit log (``deployed``, by *user*).

    :raises DeploymentError: the bundle is refused (nothing is written, the draft stays).
    :raises PermissionDeniedError: *user* is not a process owner or admin of the draft's organisation.
    """
    if user is not None:
        _check_process_owner(session, draft.organisation_id, user)
    files = _deployable_files(session, draft)
    parsed = parse_bundle(files, check_form_schemas=True)
    if draft.process_id not in parsed.executable:
        problem = _missing_process(draft, parsed.executable)
        raise DeploymentError(problem.message, file=problem.file)
    target = deploy_target(session, draft)
    deployed = deploy_files(
        session, files, name=draft.process_id, organisation=target.organisation_key, user=user
    )
    delete_draft(session, draft)
    return deployed


def test_definition(session: so.Session, draft: ProcessDraft, *, user: str | None) -> ProcessDefinition:
    """Return the test definition of the draft's files (deployed as one when new; see the module docstring).

    :raises DeploymentError: the bundle is refused, as a deploy would refuse it.
    """
    files = _deployable_files(session, draft)
    content_hash = bundle_hash(files)
    parsed = parse_bundle(files, check_form_schemas=True)
    if draft.process_id not in parsed.executable:
        problem = _missing_process(draft, parsed.executable)
        raise DeploymentError(problem.message, file=problem.file)
    SPEC_CACHE.put(content_hash, parsed)
    of_draft = (
        ProcessDefinition.organisation_id == draft.organisation_id,
        ProcessDefinition.process_id == draft.process_id,
        ProcessDefinition.is_test.is_(True),
    )
    same = session.scalar(
        sa.select(ProcessDefinition).where(*of_draft, ProcessDefinition.content_hash == content_hash).limit(1)
    )
    if same is not None:
        return same
    lowest = session.scalar(sa.select(sa.func.min(ProcessDefinition.version)).where(*of_draft))
    deployment = Deployment(
        organisation_id=draft.organisation_id,
        name=f"{draft.process_id} (test)",
        content_hash=content_hash,
        deployed_by=user,
        files=[DeploymentFile(name=f.name, kind=f.kind, content=f.content) for f in files],
    )
    session.add(deployment)
    session.flush()
    definition = ProcessDefinition(
        deployment_id=deployment.id,
        organisation_id=draft.organisation_id,
        process_id=draft.process_id,
        name=parsed.names[draft.process_id],
        version=min(lowest or 0, 0) - 1,
        content_hash=content_hash,
        message_starts=parsed.message_starts[draft.process_id],
        message_correlations=parsed.message_correlations[draft.process_id],
        translated_names=parsed.translated_names,
        is_test=True,
    )
    session.add(definition)
    session.flush()
    session.add(
        AuditEvent(
            organisation_id=draft.organisation_id,
            actor=user,
            kind="deployed_for_test",
            element=draft.process_id,
            detail={"version": definition.version, "content_hash": content_hash},
        )
    )
    session.flush()
    return definition


def start_test_instance(
    session: so.Session, draft: ProcessDraft, *, user: str, data: dict[str, object] | None = None
) -> ProcessInstance:
    """Start a test instance of *draft*'s files as *user*, and run it to its first wait states.

    The instance is marked ``is_test``: its tasks are all *user*'s, no one is
    e-mailed, and reports leave it out. *data* is the start form's data, checked
    as a start by hand checks it.

    :raises DeploymentError: the draft is refused, as a deploy would refuse it.
    :raises PermissionDeniedError: *user* may not start processes in the draft's organisation.
    :raises FormValidationError: *data* does not satisfy the start form.
    """
    starter = _check_starter(session, draft.organisation_id, user)
    definition = test_definition(session, draft, user=user)
    data = dict(data or {})
    event = manual_start_event(session, definition)
    message = getattr(event.event_definition, "name", None) if event is not None else None
    if event is not None and message is not None:
        return start_by_message(
            session, definition, draft.organisation_id, message, data, actor=user, is_test=True
        )
    data = checked_start_data(session, definition, event, data)
    instance = create_instance(definition, draft.organisation_id, starter.id, is_test=True)
    op = InstanceOperation(session, instance, actor=user)
    start = op.workflow.get_next_task(spec_name="Start")
    if start is not None and data:
        start.data.update(data)
    op.audit("started", detail={"data": data, "version": definition.version, "test": True})
    op.advance()
    op.save()
    return instance


def draft_start_form(
    session: so.Session, draft: ProcessDraft
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """Return the JSON Schema and UI schema of the form a start of the draft by hand fills in, if any.

    Parses the draft (nothing is written), as :func:`start_test_instance` would deploy it.

    :raises DeploymentError: the draft is refused, as a deploy would refuse it.
    """
    files = _deployable_files(session, draft)
    parsed = parse_bundle(files, check_form_schemas=True)
    if draft.process_id not in parsed.executable:
        problem = _missing_process(draft, parsed.executable)
        raise DeploymentError(problem.message, file=problem.file)
    event = manual_start_event_of(parsed.specs[draft.process_id])
    properties = (getattr(event, "extensions", None) or {}).get("properties", {}) if event else {}
    reference = properties.get("formJsonSchemaFilename")
    if not reference:
        return None
    ui = properties.get("formUiSchemaFilename")
    schema: dict[str, Any] = parsed.json_file(reference)
    return schema, parsed.json_file(ui) if ui else None


def files_of_version(session: so.Session, definition: ProcessDefinition) -> list[BundleFile]:
    """Return the files of the bundle *definition* was deployed from, sorted by name."""
    rows = session.scalars(
        sa.select(DeploymentFile)
        .where(DeploymentFile.deployment_id == definition.deployment_id)
        .order_by(DeploymentFile.name)
    )
    return [BundleFile(name=row.name, kind=row.kind, content=row.content) for row in rows]


def _deployable_files(session: so.Session, draft: ProcessDraft) -> list[BundleFile]:
    """Return the draft's files, refused as ``read_bundle`` refuses a folder without BPMN."""
    files = draft_files(session, draft)
    if not any(f.kind == "bpmn" for f in files):
        raise DeploymentError("no .bpmn file found", file=draft.process_id)
    return files


def _missing_process(draft: ProcessDraft, executable: list[str]) -> Problem:
    return Problem(
        f"the bundle has no executable process {draft.process_id!r} (it has: {', '.join(executable)})",
    )


def _member_roles(session: so.Session, organisation_id: int, username: str) -> tuple[User, set[str]]:
    row = session.execute(
        sa.select(User, Membership.roles)
        .join(Membership, Membership.user_id == User.id)
        .where(User.username == username, Membership.organisation_id == organisation_id)
    ).first()
    if row is None:
        raise NotFoundError(f"No organisation {organisation_id} for user {username!r}")
    return row[0], set(row[1] or [])


def _check_process_owner(session: so.Session, organisation_id: int, username: str) -> None:
    _, roles = _member_roles(session, organisation_id, username)
    if not roles & {"process_owner", "admin"}:
        raise PermissionDeniedError(f"User {username!r} is not a process owner or admin of this organisation")


def _check_starter(session: so.Session, organisation_id: int, username: str) -> User:
    user, roles = _member_roles(session, organisation_id, username)
    if not roles & STARTER_ROLES:
        raise PermissionDeniedError(f"User {username!r} may not start processes in this organisation")
    return user
