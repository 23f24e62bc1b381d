"""Service-task connectors, found through the ``procflow.connectors`` entry points.

A connector is a callable ``connector(context, **params)`` returning a
JSON-serialisable result, which the service task stores in its result
variable. Raising any exception fails the task; the instance goes to ``error``
with the connector's message and can be retried.
"""

from __future__ import annotations

import logging
import os
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from importlib.metadata import entry_points
from typing import Any, Protocol

import sqlalchemy.orm as so

from .errors import ConnectorError
from .models import Job, OutboxMessage, ProcessInstance, utcnow

ENTRY_POINT_GROUP = "procflow.connectors"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector may know about the call: the open session and where it comes from."""

    session: so.Session
    organisation_id: int
    instance_id: int
    element: str
    actor: str | None


class Connector(Protocol):
    def __call__(self, context: ConnectorContext, **params: Any) -> Any: ...


class ConnectorRegistry:
    """Connectors by operation name; loads entry points on first use."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._connectors: dict[str, Connector] = {}
        self._load_entry_points = load_entry_points
        self._loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, connector: Connector | Callable[..., Any]) -> None:
        """Register *connector* under operation *name* (replacing any earlier one)."""
        with self._lock:
            self._connectors[name] = connector

    def unregister(self, name: str) -> None:
        """Forget the connector registered under *name*."""
        with self._lock:
            self._connectors.pop(name, None)

    def get(self, name: str) -> Connector:
        """Return the connector for operation *name*.

        :raises ConnectorError: none is registered.
        """
        self._ensure_loaded()
        try:
            return self._connectors[name]
        except KeyError:
            known = ", ".join(sorted(self._connectors)) or "none"
            raise ConnectorError(f"No connector {name!r} is registered (known: {known})") from None

    def names(self) -> list[str]:
        """Return the operation names of every registered connector, sorted (the studio's choice list)."""
        self._ensure_loaded()
        with self._lock:
            return sorted(self._connectors)

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded or not self._load_entry_points:
                return
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if ep.name in self._connectors:
                    continue
                target = ep.load()
                self._connectors[ep.name] = target() if isinstance(target, type) else target
            self._loaded = True


CONNECTORS = ConnectorRegistry()

# Parameters whose values the audit log must not keep (spiff-arena's basic_auth_password, tokens).
_SECRET_PARAMETER = ("password", "secret", "token", "api_key", "apikey")


def audited_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return *params* as the audit log records them: secret values (``*password*``, tokens) hidden."""
    return {
        key: "(hidden)" if any(part in key.lower() for part in _SECRET_PARAMETER) and value else value
        for key, value in params.items()
    }


class EmailConnector:
    """Writes an e-mail to the outbox table; an ``outbox`` job sends it after commit.

    Parameters: ``to``, ``subject``, ``body``. A test case's e-mail (tried from
    the studio) is kept in the outbox as ``test`` and never sent.
    """

    def __call__(self, context: ConnectorContext, *, to: str, subject: str, body: str = "") -> dict[str, Any]:
        if not to or "@" not in str(to):
            raise ConnectorError(f"email.send needs a recipient address in 'to', got {to!r}")
        instance = context.session.get(ProcessInstance, context.instance_id)
        message = OutboxMessage(
            organisation_id=context.organisation_id,
            instance_id=context.instance_id,
            recipient=str(to),
            subject=str(subject),
            body=str(body),
            status="test" if instance is not None and instance.is_test else "pending",
        )
        context.session.add(message)
        context.session.flush()
        if message.status == "test":
            return {"outbox_message_id": message.id, "status": "not sent: test case"}
        context.session.add(
            Job(
                kind="outbox",
                organisation_id=context.organisation_id,
                instance_id=context.instance_id,
                due_at=utcnow(),
                payload={"outbox_message_id": message.id},
            )
        )
        return {"outbox_message_id": message.id, "status": "queued"}


def send_outbox_message(session: so.Session, message_id: int) -> None:
    """Send one outbox e-mail by SMTP when ``PROCFLOW_SMTP_HOST`` is set, else log it.

    :raises OSError: the SMTP server failed (the job retries with backoff).
    """
    message = session.get(OutboxMessage, message_id)
    if message is None or message.status == "sent":
        return
    host = os.environ.get("PROCFLOW_SMTP_HOST")
    if host:
        email = EmailMessage()
        email["From"] = os.environ.get("PROCFLOW_SMTP_FROM", "procflow@localhost")
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email.set_content(message.body)
        port = int(os.environ.get("PROCFLOW_SMTP_PORT", "25"))
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.send_message(email)
    else:
        log.info(
            "outbox %s (no SMTP configured) to=%s subject=%s", message.id, message.recipient, message.subject
        )
    message.status = "sent"
    message.sent_at = utcnow()
