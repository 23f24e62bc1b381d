"""Files uploaded to an instance from a task form, stored in the database.

Whoever may work on a task may attach files to its instance; every member of
the instance's organisation may list and download them. Uploads are audited.
"""

from __future__ import annotations

import hashlib
import unicodedata

import sqlalchemy as sa
import sqlalchemy.orm as so

from .errors import ConflictError, FormValidationError, NotFoundError
from .identity import get_user
from .models import Attachment, AuditEvent
from .runtime import check_may_work_on, get_task

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024

# The only content types an attachment is ever stored or served with, chosen by
# the file name's extension. The type the uploader's browser declared is never
# trusted: a "text/javascript" or "image/svg+xml" attachment served as such
# runs script in the app's origin. SVG and HTML are deliberately absent.
DOWNLOAD_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "txt": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "zip": "application/zip",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}
UNKNOWN_TYPE = "application/octet-stream"


def download_content_type(filename: str) -> str:
    """Return the content type to store and serve a file called *filename* with (``DOWNLOAD_TYPES``).

    Anything not on the list is ``application/octet-stream``.
    """
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return DOWNLOAD_TYPES.get(extension, UNKNOWN_TYPE)


def _clean_filename(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return (name or "attachment")[-255:]


def add_attachment(
    session: so.Session,
    task_id: int,
    *,
    user: str,
    filename: str,
    content: bytes,
    content_type: str | None = None,
    field: str | None = None,
) -> Attachment:
    """Store a file uploaded by *user* in the form of task *task_id*, attached to its instance.

    The stored content type comes from the file name (:func:`download_content_type`);
    *content_type*, what the uploader declared, is kept only in the audit event.
    Runs in the caller's transaction.

    :raises NotFoundError: no such task or user, or the task is in another organisation.
    :raises PermissionDeniedError: the user may not work on the task (lane, assignee, separation of duties).
    :raises ConflictError: the task is no longer open.
    :raises FormValidationError: the file is empty or larger than ``MAX_ATTACHMENT_BYTES``.
    """
    task = get_task(session, task_id)
    actor = get_user(session, user)
    check_may_work_on(session, task, actor)
    if task.state != "ready":
        raise ConflictError(f"Task {task.id} ({task.name}) is already {task.state}")
    key = field or ""
    if not content:
        raise FormValidationError({key: ["The file is empty."]})
    if len(content) > MAX_ATTACHMENT_BYTES:
        limit = MAX_ATTACHMENT_BYTES // (1024 * 1024)
        raise FormValidationError({key: [f"The file is larger than {limit} MB."]})
    name = _clean_filename(filename)
    attachment = Attachment(
        organisation_id=task.organisation_id,
        instance_id=task.instance_id,
        task_id=task.id,
        field=field,
        filename=name,
        content_type=download_content_type(name),
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by_id=actor.id,
    )
    session.add(attachment)
    session.flush()
    session.add(
        AuditEvent(
            organisation_id=task.organisation_id,
            instance_id=task.instance_id,
            actor=actor.username,
            kind="attachment_added",
            element=task.bpmn_id,
            detail={
                "attachment_id": attachment.id,
                "filename": attachment.filename,
                "size": attachment.size,
                "sha256": attachment.sha256,
                "declared_content_type": (content_type or "")[:200],
                "task_id": task.id,
                "field": field,
            },
        )
    )
    session.flush()
    return attachment


def list_attachments(session: so.Session, instance_id: int) -> list[Attachment]:
    """Return the attachments of an instance, oldest first (contents not loaded)."""
    stmt = sa.select(Attachment).where(Attachment.instance_id == instance_id).order_by(Attachment.id)
    return list(session.scalars(stmt))


def get_attachment(
    session: so.Session, attachment_id: int, *, organisation_id: int | None = None
) -> Attachment:
    """Return attachment *attachment_id*, only if it belongs to *organisation_id* when given.

    :raises NotFoundError: no such attachment (or it belongs to another organisation).
    """
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or (organisation_id is not None and attachment.organisation_id != organisation_id):
        raise NotFoundError(f"No attachment {attachment_id}")
    return attachment
