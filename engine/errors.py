"""The one exception family of the Procflow engine.

Every error the engine raises derives from :class:`ProcflowError`. Errors
about something that does not exist also derive from :class:`LookupError`, so
callers can treat them as "not found" without knowing the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Problem:
    """One finding about a bundle: what is wrong and where (file, line, element id, form field).

    ``severity`` is ``"error"`` (the bundle cannot be deployed) or ``"warning"``
    (it deploys and runs, but something should be looked at: an overlap-free
    decision table with gaps, XML the BPMN schema does not accept).
    ``field`` is a JSON pointer into a form file (``/properties/price``).
    """

    message: str
    severity: str = "error"
    file: str | None = None
    line: int | None = None
    element: str | None = None
    field: str | None = None

    def where(self) -> str:
        """Return "file, line N, element 'x', field /p" for the parts known."""
        return ", ".join(
            part
            for part in (
                self.file,
                f"line {self.line}" if self.line else None,
                f"element {self.element!r}" if self.element else None,
                f"field {self.field}" if self.field else None,
            )
            if part
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the problem as JSON-ready data (the studio pins it to its element or field)."""
        return {
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "element": self.element,
            "field": self.field,
        }


class DeploymentError(ProcflowError, ValueError):
    """A process bundle could not be deployed.

    Carries the file, line, element id and form field (JSON pointer) of the
    problem when known; :meth:`problem` gives the same as a :class:`Problem`.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        element: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.element = element
        self.field = field
        where = self.problem().where()
        super().__init__(f"{where}: {message}" if where else message)

    def problem(self) -> Problem:
        """Return this error as a :class:`Problem` of severity ``"error"``."""
        return Problem(self.message, file=self.file, line=self.line, element=self.element, field=self.field)


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
