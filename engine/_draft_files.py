"""A studio draft's files: names, sizes and text checked, saves counted (``lock_version``).

A draft may hold a broken model: only what makes a file storable is checked
here (a relative name with a bundle suffix, at most ``MAX_FILE_BYTES`` of
text, at most ``MAX_DRAFT_FILES`` files); whether it deploys is
:func:`engine.studio.validate_draft`'s question. Every save counts the
draft's ``lock_version`` up with a guarded UPDATE, so two editors never
overwrite each other unseen (see :mod:`engine.studio`).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._specs import BUNDLE_SUFFIXES, MAX_FILE_BYTES, BundleFile, kind_of, parse_xml
from .errors import ConflictError, DeploymentError, NotFoundError
from .models import ProcessDraft, ProcessDraftFile, utcnow

# A bundle is a handful of files; a draft with more is a mistake (an unpacked folder of something else).
MAX_DRAFT_FILES = 200
MAX_NAME_LENGTH = 255
_BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def primary_process_id(files: Iterable[BundleFile]) -> str:
    """Return the id of the bundle's main process: the first executable one no call activity calls.

    Reads only the BPMN files' XML (safely), so a bundle that would not deploy
    still has one; the files are taken in name order.

    :raises DeploymentError: malformed XML (file and line), or no executable process.
    """
    processes: list[str] = []
    called: set[str] = set()
    for item in sorted((f for f in files if f.kind == "bpmn"), key=lambda f: f.name):
        root = parse_xml(item.content, item.name)
        for element in root.iter(f"{{{_BPMN}}}process"):
            if element.get("isExecutable", "true") != "false" and element.get("id"):
                processes.append(element.get("id", ""))
        called.update(e.get("calledElement", "") for e in root.iter(f"{{{_BPMN}}}callActivity"))
    top = [p for p in processes if p not in called] or processes
    if not top:
        raise DeploymentError("no executable process found")
    return top[0]


def draft_files(session: so.Session, draft: ProcessDraft) -> list[BundleFile]:
    """Return the files of *draft*, sorted by name."""
    rows = session.scalars(
        sa.select(ProcessDraftFile)
        .where(ProcessDraftFile.draft_id == draft.id)
        .order_by(ProcessDraftFile.name)
    )
    return [BundleFile(name=row.name, kind=row.kind, content=row.content) for row in rows]


def read_draft_file(session: so.Session, draft: ProcessDraft, name: str) -> BundleFile:
    """Return the file *name* of *draft*.

    :raises NotFoundError: the draft has no such file.
    """
    row = draft_file(session, draft, name)
    if row is None:
        raise NotFoundError(f"No file {name!r} in the draft of {draft.process_id!r}")
    return BundleFile(name=row.name, kind=row.kind, content=row.content)


def save_draft_file(
    session: so.Session,
    draft: ProcessDraft,
    name: str,
    content: str,
    *,
    user: str | None,
    draft_version: int | None = None,
) -> None:
    """Create or replace the file *name* of *draft* with *content*; the draft counts one save up.

    Only the name (relative, no ``..``, suffix ``.bpmn``, ``.dmn`` or
    ``.json``), the size and the text are checked: a draft may hold a broken model.
    With *draft_version*, the save is refused if the draft has moved on since.

    :raises DeploymentError: naming the file whose name, size or text is refused.
    :raises ConflictError: *draft_version* is not the draft's version (someone saved meanwhile).
    """
    name = check_file_name(name)
    content = checked_content(name, content)
    check_version(draft, draft_version)
    row = draft_file(session, draft, name)
    if row is None:
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(ProcessDraftFile)
            .where(ProcessDraftFile.draft_id == draft.id)
        )
        if (count or 0) >= MAX_DRAFT_FILES:
            raise DeploymentError(f"a draft holds at most {MAX_DRAFT_FILES} files", file=name)
        session.add(ProcessDraftFile(draft_id=draft.id, name=name, kind=file_kind(name), content=content))
    else:
        row.content = content
    touch(session, draft, user=user, draft_version=draft_version)


def delete_draft_file(
    session: so.Session, draft: ProcessDraft, name: str, *, user: str | None, draft_version: int | None = None
) -> None:
    """Remove the file *name* from *draft*; the draft counts one save up.

    :raises NotFoundError: the draft has no such file.
    :raises ConflictError: *draft_version* is not the draft's version.
    """
    check_version(draft, draft_version)
    row = draft_file(session, draft, name)
    if row is None:
        raise NotFoundError(f"No file {name!r} in the draft of {draft.process_id!r}")
    session.delete(row)
    touch(session, draft, user=user, draft_version=draft_version)


def check_file_name(name: str) -> str:
    """Return *name* as a bundle path if it may name a draft file.

    Relative, ``/``-separated, without ``..``, empty or hidden parts, at most
    255 characters, ending in ``.bpmn`` (or ``.bpmn20.xml``), ``.dmn`` or ``.json``.

    :raises DeploymentError: naming the refused name and why.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise DeploymentError(f"a file name has 1 to {MAX_NAME_LENGTH} characters", file=str(name)[:300])
    if "\\" in name or name.startswith("/") or any(ord(c) < 32 for c in name):
        raise DeploymentError("a file name is a relative path with '/' between its parts", file=name)
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise DeploymentError("a file name may not have empty, hidden, '.' or '..' parts", file=name)
    if kind_of(name) is None:
        raise DeploymentError(f"a bundle file ends in {', '.join(sorted(BUNDLE_SUFFIXES))}", file=name)
    return name


def file_kind(name: str) -> str:
    """Return the kind of a file whose name :func:`check_file_name` accepted."""
    found = kind_of(name)
    assert found is not None, name
    return found


def checked_content(name: str, content: str) -> str:
    """Return *content* if it may be a draft file's text: text, no NUL, at most ``MAX_FILE_BYTES``.

    :raises DeploymentError: naming the file.
    """
    if not isinstance(content, str):
        raise DeploymentError("a bundle file is text", file=name)
    if "\x00" in content:
        raise DeploymentError("a bundle file is text: it holds a NUL character", file=name)
    if len(content.encode("utf-8")) > MAX_FILE_BYTES:
        raise DeploymentError(f"file is larger than {MAX_FILE_BYTES} bytes", file=name)
    return content


def draft_file(session: so.Session, draft: ProcessDraft, name: str) -> ProcessDraftFile | None:
    """Return the row of file *name* of *draft*, if it has one."""
    return session.scalar(
        sa.select(ProcessDraftFile).where(
            ProcessDraftFile.draft_id == draft.id, ProcessDraftFile.name == name
        )
    )


def check_version(draft: ProcessDraft, draft_version: int | None) -> None:
    """Refuse a change based on *draft_version* if the draft has moved on (``None``: not checked).

    :raises ConflictError: naming who saved last.
    """
    if draft_version is not None and draft_version != draft.lock_version:
        who = f" by {draft.updated_by}" if draft.updated_by else ""
        raise ConflictError(
            f"The draft of {draft.process_id!r} was saved meanwhile{who} (version {draft.lock_version}, "
            f"yours is {draft_version}); reload it"
        )


def touch(session: so.Session, draft: ProcessDraft, *, user: str | None, draft_version: int | None) -> None:
    """Count a save of *draft*: its version goes up, unless someone else's save came first."""
    expected = draft.lock_version if draft_version is None else draft_version
    result = session.execute(
        sa.update(ProcessDraft)
        .where(ProcessDraft.id == draft.id, ProcessDraft.lock_version == expected)
        .values(lock_version=expected + 1, updated_at=utcnow(), updated_by=user)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            f"The draft of {draft.process_id!r} was saved meanwhile by someone else; reload it"
        )
    session.expire(draft, ["lock_version", "updated_at", "updated_by"])
