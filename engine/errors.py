"""The one exception family of the Procflow engine.

Every error the engine raises derives from :class:`ProcflowError`. Errors
about something that does not exist also derive from :class:`LookupError`, so
callers can treat them as "not found" without knowing the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any


class ProcflowError(Exception):
    """Base class of every error raised by the engine."""


class NotFoundError(ProcflowError, LookupError):
    """Something named by the caller does not exist (or is not visible)."""


class ConflictError(ProcflowError):
    """The operation lost a race: the state it was based on has changed."""


class PermissionDeniedError(ProcflowError, PermissionError):
    """The user may not perform the operation."""


class InvalidStateError(ProcflowError):
    """The operation does not apply to the object in its current state."""


class SignInThrottledError(ProcflowError):
    """Too many failed sign-ins for this username from this address (or from this address at all).

    ``retry_at`` is the aware UTC time from which the next attempt is accepted.
    """

    def __init__(self, message: str, *, retry_at: dt.datetime) -> None:
        self.retry_at = retry_at
        super().__init__(message)


class DeploymentError(ProcflowError, ValueError):
    """A process bundle could not be deployed.

    Carries the file, line and element id of the problem when known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        element: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.element = element
        where = ", ".join(
            part
            for part in (
                file,
                f"line {line}" if line else None,
                f"element {element!r}" if element else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class DataError(ProcflowError, ValueError):
    """Data from outside the model (a message payload, JSON text) is refused before it is used.

    The message names the key or the line; forms get :class:`FormValidationError` instead.
    """


class FormValidationError(ProcflowError, ValueError):
    """Submitted task data does not satisfy the task's form schema.

    ``errors`` maps a field path (``"quotes/0/price"``, ``""`` for the whole
    form) to the list of messages for that field.
    """

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        details = "; ".join(
            f"{field or '(form)'}: {', '.join(messages)}" for field, messages in self.errors.items()
        )
        super().__init__(f"Invalid form data: {details}")


class ScriptError(ProcflowError):
    """A script or expression failed, or was refused by the sandbox.

    Keeps the BPMN element id and the line number of the script when known.
    """

    def __init__(
        self,
        message: str,
        *,
        element: str | None = None,
        line: int | None = None,
        detail: Any = None,
    ) -> None:
        self.message = message
        self.element = element
        self.line = line
        self.detail = detail
        where = ", ".join(
            part
            for part in (f"element {element!r}" if element else None, f"line {line}" if line else None)
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class SandboxViolation(ScriptError):
    """A script tried something the sandbox forbids (imports, dunders, ...)."""


class ScriptTimeout(ScriptError):
    """A script or expression ran longer than the sandbox allows."""


class ConnectorError(ProcflowError):
    """A service-task connector failed or is not registered."""


class LimitError(ProcflowError):
    """A model or an instance went past one of the engine's limits (see ``engine/limits.py``).

    ``limit`` names the limit (``"call depth"``, ``"tasks"``, ``"duration"``,
    ``"state"``); ``element`` is the BPMN element id, or the task data variable
    for the state size, when known. ``refused`` is true for limits reached
    where the task tree is half updated: the operation must then be refused
    and nothing of it stored, rather than the failure recorded in the instance.
    """

    def __init__(
        self, message: str, *, limit: str, element: str | None = None, refused: bool = False
    ) -> None:
        self.limit = limit
        self.element = element
        self.refused = refused
        super().__init__(message)
