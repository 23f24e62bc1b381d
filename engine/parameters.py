"""Dated parameters as an admin sees them: what the processes read, in force when, recorded by whom.

An organisation's processes read parameters in scripts and decision tables
(``parameters['three_quotes_threshold']``). The catalogue
(:func:`parameter_catalogue`) lists every key its processes read — found by
scanning the BPMN and DMN files of the versions it runs, its own and the
shared ones — with the type, label and help the bundle's ``parameters.json``
declares (:mod:`engine._parameters_file`), plus every key it or the shared
rows have a value for. Each entry has the value in force and where it comes
from: the organisation's own row, the shared row, or the organisation's
settings (``organisation_name``, ``jurisdiction``, ``currency``...: set on the
settings page only, :mod:`engine.org_settings`).

History is append-only (:func:`record_parameter_value`): a new value, a
correction (a newer row with the same start date), an override of a shared
value and "from this date, the shared value again"
(:func:`use_shared_parameter`) are each a new row, audited as an admin action
in the same transaction. Values are checked by type (:func:`check_value`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._parameters_file import (
    PARAMETER_KEY,
    PARAMETER_TYPES,
    PARAMETERS_FILE,
    DeclaredParameter,
    check_parameters_file,
)
from ._workflow import json_safe, parameter_rows_in_force
from .admin_audit import record_admin_action
from .definitions import visible_definitions
from .errors import FormValidationError, NotFoundError
from .models import DeploymentFile, Organisation, Parameter, ProcessDefinition
from .org_settings import SETTING_PARAMETERS, settings_parameters

# Parameters the organisation's settings give (set on /admin/settings, never here).
SETTINGS_KEYS = frozenset(SETTING_PARAMETERS.values())
# What a script or decision reads: parameters['key'], parameters["key"], parameters.get('key'...;
# in XML the quotes may be written as entities.
_READ = re.compile(
    r"""\bparameters\s*(?:\[\s*|\.get\(\s*)(?:'|"|&quot;|&apos;|&#39;|&#34;)([A-Za-z_][A-Za-z0-9_]{0,119})"""
)
MAX_TEXT = 2000
MAX_NOTE = 2000

_SCAN_LOCK = threading.Lock()
# What each deployed bundle declares and reads, by content hash (a deployed bundle never changes).
_SCANNED: dict[str, tuple[dict[str, DeclaredParameter], frozenset[str]]] = {}


@dataclass(frozen=True)
class ParameterEntry:
    """One parameter of the catalogue: declaration, processes that read it, the value in force."""

    key: str
    type: str | None  # None: no bundle declares it; any JSON value is accepted
    label: Mapping[str, str] = field(default_factory=dict)
    help: Mapping[str, str] = field(default_factory=dict)
    processes: tuple[str, ...] = ()  # process ids that read it or declare it
    value: Any = None
    has_value: bool = False
    source: str | None = None  # "own", "shared", "settings" or None (no value in force)
    row: Parameter | None = None  # the row in force (None for settings and for no value)

    @property
    def from_settings(self) -> bool:
        """Whether the organisation's settings give this parameter (read-only here)."""
        return self.key in SETTINGS_KEYS

    def label_in(self, language: str) -> str:
        """Return the label in *language*, else in English, else any, else the key."""
        return self.label.get(language) or self.label.get("en") or next(iter(self.label.values()), self.key)

    def help_in(self, language: str) -> str:
        """Return the help text in *language*, else in English, else any, else ``""``."""
        return self.help.get(language) or self.help.get("en") or next(iter(self.help.values()), "")


@dataclass(frozen=True)
class HistoryRow:
    """One recorded row of a parameter's history, with whether it counts and is in force."""

    row: Parameter
    shared: bool
    superseded: bool  # a newer row of the same owner and start date replaces it
    in_force: bool


def _scan(
    session: so.Session, definition: ProcessDefinition
) -> tuple[dict[str, DeclaredParameter], frozenset[str]]:
    with _SCAN_LOCK:
        found = _SCANNED.get(definition.content_hash)
    if found is not None:
        return found
    declared: dict[str, DeclaredParameter] = {}
    read: set[str] = set()
    files = session.scalars(
        sa.select(DeploymentFile).where(DeploymentFile.deployment_id == definition.deployment_id)
    )
    for item in files:
        if item.name == PARAMETERS_FILE:
            declared = check_parameters_file(item.content)
        elif item.kind in ("bpmn", "dmn"):
            read.update(_READ.findall(item.content))
    found = (declared, frozenset(read))
    with _SCAN_LOCK:
        _SCANNED[definition.content_hash] = found
    return found


def read_parameter_keys(content: str) -> set[str]:
    """Return the parameter keys a BPMN or DMN text reads (by ``parameters[...]`` or ``parameters.get``)."""
    return set(_READ.findall(content))


def _organisation(session: so.Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFoundError(f"No organisation {organisation_id!r}")
    return organisation


def parameter_catalogue(
    session: so.Session, organisation_id: int, *, on: dt.date | None = None
) -> list[ParameterEntry]:
    """Return every parameter the organisation's processes read or that has a value for it, by key.

    The value in force is the one on *on* (today). Reads in the caller's transaction.

    :raises NotFoundError: no such organisation.
    """
    on = on or dt.date.today()
    organisation = _organisation(session, organisation_id)
    declared: dict[str, DeclaredParameter] = {}
    users: dict[str, set[str]] = {}
    for definition in visible_definitions(session, organisation_id):
        bundle_declared, read = _scan(session, definition)
        for key, declaration in bundle_declared.items():
            declared.setdefault(key, declaration)
        for key in read | set(bundle_declared):
            users.setdefault(key, set()).add(definition.process_id)
    rows = parameter_rows_in_force(session, organisation_id, on)
    settings = settings_parameters(organisation)
    recorded = set(
        session.scalars(
            sa.select(Parameter.key)
            .where(sa.or_(Parameter.organisation_id.is_(None), Parameter.organisation_id == organisation_id))
            .distinct()
        )
    )
    entries = []
    for key in sorted(set(users) | set(declared) | recorded | set(settings)):
        found = declared.get(key)
        row = rows.get(key)
        source: str | None = None
        if key in settings:
            source, value = "settings", settings[key]
            row = None
        elif row is not None:
            source, value = ("shared" if row.organisation_id is None else "own"), row.value
        else:
            value = None
        entries.append(
            ParameterEntry(
                key=key,
                type=found.type if found else None,
                label=found.label if found else {},
                help=found.help if found else {},
                processes=tuple(sorted(users.get(key, ()))),
                value=value,
                has_value=source is not None,
                source=source,
                row=row,
            )
        )
    return entries


def parameter_entry(
    session: so.Session, organisation_id: int, key: str, *, on: dt.date | None = None
) -> ParameterEntry:
    """Return the catalogue entry of *key* for the organisation.

    :raises NotFoundError: the organisation's processes do not read *key* and no value of it
        is recorded for the organisation or shared (another organisation's own keys included).
    """
    for entry in parameter_catalogue(session, organisation_id, on=on):
        if entry.key == key:
            return entry
    raise NotFoundError(f"No parameter {key!r}")


def parameter_history(session: so.Session, organisation_id: int, key: str) -> list[HistoryRow]:
    """Return every recorded row of *key*, the organisation's own and the shared ones, newest start first.

    Rows of the same start date are listed newest recorded first; older ones are ``superseded``.
    """
    rows = session.scalars(
        sa.select(Parameter)
        .where(
            Parameter.key == key,
            sa.or_(Parameter.organisation_id.is_(None), Parameter.organisation_id == organisation_id),
        )
        .order_by(Parameter.valid_from.desc(), Parameter.created_at.desc(), Parameter.id.desc())
    ).all()
    in_force = parameter_rows_in_force(session, organisation_id, dt.date.today()).get(key)
    seen: set[tuple[int | None, dt.date]] = set()
    history = []
    for row in rows:
        slot = (row.organisation_id, row.valid_from)
        history.append(
            HistoryRow(
                row=row,
                shared=row.organisation_id is None,
                superseded=slot in seen,
                in_force=in_force is not None and row.id == in_force.id,
            )
        )
        seen.add(slot)
    return history


def _invalid(field_name: str, message: str) -> FormValidationError:
    return FormValidationError({field_name: [message]})


def _number(value: Any, field_name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _invalid(field_name, "must be a number")
    number = Decimal(str(value))
    if not number.is_finite():
        raise _invalid(field_name, "must be a number")
    return number


def _plain(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def check_value(kind: str | None, value: Any, *, field: str = "value") -> Any:
    """Return *value* checked against parameter type *kind* (``None``: any JSON value), as stored.

    money: a number >= 0 with at most 2 decimals; days and working_days: a whole
    number >= 0; integer: a whole number; percentage: a number from 0 to 100;
    text: a non-empty string; list: a JSON list; object: a JSON object.

    :raises FormValidationError: (with *field*) the value is not of that type.
    """
    if kind in ("money", "days", "working_days", "integer", "percentage"):
        number = _number(value, field)
        if kind == "money":
            if number < 0:
                raise _invalid(field, "must be an amount of 0 or more")
            if number != number.quantize(Decimal("0.01")):
                raise _invalid(field, "must have at most 2 decimals")
        elif kind == "percentage":
            if not 0 <= number <= 100:
                raise _invalid(field, "must be a percentage from 0 to 100")
        else:
            if number != number.to_integral_value():
                raise _invalid(field, "must be a whole number")
            if kind != "integer" and number < 0:
                raise _invalid(field, "must be a whole number of days, 0 or more")
        return _plain(number)
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise _invalid(field, "must be a text")
        if len(value) > MAX_TEXT:
            raise _invalid(field, "is too long (at most 2000 characters)")
        return value.strip()
    if kind == "list" and not isinstance(value, list):
        raise _invalid(field, 'must be a JSON list, such as ["a", "b"]')
    if kind == "object" and not isinstance(value, dict):
        raise _invalid(field, 'must be a JSON object, such as {"goods": 100}')
    if kind is not None and kind not in PARAMETER_TYPES:
        raise _invalid(field, "has a type that is not known")
    try:
        return json.loads(json.dumps(json_safe(value)))
    except (TypeError, ValueError):
        raise _invalid(field, "must be a JSON value") from None


def parse_value(kind: str | None, text: str, *, field: str = "value") -> Any:
    """Return the value an admin typed as *text* for type *kind*, checked (:func:`check_value`).

    Numbers may have spaces between thousands and a decimal comma; text is
    taken as typed; a list, an object and an undeclared parameter are JSON.

    :raises FormValidationError: (with *field*) empty, not JSON where JSON is needed, or not of the type.
    """
    text = text.strip()
    if not text:
        raise _invalid(field, "enter a value")
    if kind == "text":
        return check_value(kind, text, field=field)
    if kind in ("money", "days", "working_days", "integer", "percentage"):
        cleaned = re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".")
        if kind == "percentage":
            cleaned = cleaned.removesuffix("%")
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            raise _invalid(field, "must be a number") from None
        return check_value(kind, number, field=field)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise _invalid(field, "is not valid JSON") from None
    return check_value(kind, value, field=field)


def _check_dates(valid_from: dt.date, valid_to: dt.date | None) -> None:
    if valid_to is not None and valid_to < valid_from:
        raise _invalid("valid_to", "must be on or after the start date")


def _check_note(note: str | None) -> str | None:
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise _invalid("note", "is too long (at most 2000 characters)")
    return note


def _declared_type(session: so.Session, organisation_id: int | None, key: str) -> str | None:
    if organisation_id is not None:
        definitions: Iterable[ProcessDefinition] = visible_definitions(session, organisation_id)
    else:
        definitions = session.scalars(
            sa.select(ProcessDefinition).where(
                ProcessDefinition.organisation_id.is_(None), ProcessDefinition.is_test.is_(False)
            )
        )
    for definition in definitions:
        declaration = _scan(session, definition)[0].get(key)
        if declaration is not None:
            return declaration.type
    return None


def _summary(row: Parameter | None) -> dict[str, Any] | None:
    if row is None:
        return None
    if row.uses_shared:
        return {"uses_shared": True, "valid_from": row.valid_from.isoformat()}
    return {
        "value": row.value,
        "valid_from": row.valid_from.isoformat(),
        "valid_to": row.valid_to.isoformat() if row.valid_to else None,
        "shared": row.organisation_id is None,
    }


def _append(session: so.Session, row: Parameter) -> Parameter:
    # Always a new row, even for a value recorded before: the admin recorded it again, with a note.
    session.add(row)
    session.flush()
    return row


def record_parameter_value(
    session: so.Session,
    organisation_id: int | None,
    key: str,
    value: Any,
    *,
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    note: str | None = None,
    actor: str | None,
) -> Parameter:
    """Record *value* for *key* from *valid_from* (to *valid_to*), checked by the key's declared type.

    ``organisation_id=None`` records a shared value. A value for a start date
    already recorded is a correction: a newer row. An organisation's value over
    a shared one overrides it from that date. Audited (``admin.parameter_set``)
    in the caller's transaction; returns the new row.

    :raises FormValidationError: a bad key (``field="key"``), a key the organisation's settings give,
        a value not of the declared type (``field="value"``), an end before the start
        (``field="valid_to"``), or a note too long (``field="note"``).
    """
    if not PARAMETER_KEY.fullmatch(key):
        raise _invalid("key", "a key is a letter or _, then letters, digits or _ (at most 120)")
    if key in SETTINGS_KEYS:
        raise _invalid("key", "comes from the organisation's settings: change it there")
    kind = _declared_type(session, organisation_id, key)
    checked = check_value(kind, value, field="value")
    _check_dates(valid_from, valid_to)
    note = _check_note(note)
    before = _summary(parameter_rows_in_force(session, organisation_id, valid_from).get(key))
    row = _append(
        session,
        Parameter(
            organisation_id=organisation_id,
            key=key,
            value=checked,
            valid_from=valid_from,
            valid_to=valid_to,
            note=note,
            created_by=actor,
        ),
    )
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=actor,
        action="parameter_set",
        target=f"parameter {key}",
        before=before,
        after={**(_summary(row) or {}), "note": note},
    )
    return row


def use_shared_parameter(
    session: so.Session,
    organisation_id: int,
    key: str,
    *,
    valid_from: dt.date,
    note: str | None = None,
    actor: str | None,
) -> Parameter:
    """Record that from *valid_from* the organisation uses the shared value of *key* again.

    Audited (``admin.parameter_uses_shared``) in the caller's transaction; returns the new row.

    :raises FormValidationError: the organisation has no value of its own of *key*, or no shared
        value of *key* exists (``field="key"``), or a note too long (``field="note"``).
    """
    owned = session.scalar(
        sa.select(sa.func.count())
        .select_from(Parameter)
        .where(Parameter.key == key, Parameter.organisation_id == organisation_id)
    )
    if not owned:
        raise _invalid("key", "has no value of the organisation's own: it uses the shared one already")
    shared = session.scalar(
        sa.select(sa.func.count())
        .select_from(Parameter)
        .where(Parameter.key == key, Parameter.organisation_id.is_(None))
    )
    if not shared:
        raise _invalid("key", "has no shared value to go back to")
    note = _check_note(note)
    before = _summary(parameter_rows_in_force(session, organisation_id, valid_from).get(key))
    row = _append(
        session,
        Parameter(
            organisation_id=organisation_id,
            key=key,
            value=None,
            valid_from=valid_from,
            note=note,
            created_by=actor,
            uses_shared=True,
        ),
    )
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=actor,
        action="parameter_uses_shared",
        target=f"parameter {key}",
        before=before,
        after={"uses_shared": True, "valid_from": valid_from.isoformat(), "note": note},
    )
    return row


def parameters_in_force(
    session: so.Session, organisation_id: int | None, on: dt.date | None = None
) -> list[dict[str, Any]]:
    """Return the values in force on *on* (today), by key: ``key``, ``value``, ``valid_from``,
    ``valid_to`` and ``organisation`` (the key of the organisation whose row it is, ``None`` if shared).

    ``organisation_id=None`` lists the shared values. For an organisation, its
    settings are listed as its own, without dates.
    """
    on = on or dt.date.today()
    rows = parameter_rows_in_force(session, organisation_id, on)
    found: dict[str, dict[str, Any]] = {}
    organisation = session.get(Organisation, organisation_id) if organisation_id is not None else None
    for key, row in rows.items():
        found[key] = {
            "key": key,
            "value": json_safe(row.value),
            "valid_from": row.valid_from.isoformat(),
            "valid_to": row.valid_to.isoformat() if row.valid_to else None,
            "organisation": organisation.key if organisation and row.organisation_id is not None else None,
        }
    if organisation is not None:
        for key, value in settings_parameters(organisation).items():
            found[key] = {
                "key": key,
                "value": value,
                "valid_from": None,
                "valid_to": None,
                "organisation": organisation.key,
            }
    return [found[key] for key in sorted(found)]


__all__ = [
    "PARAMETER_TYPES",
    "SETTINGS_KEYS",
    "HistoryRow",
    "ParameterEntry",
    "check_value",
    "parameter_catalogue",
    "parameter_entry",
    "parameter_history",
    "parameters_in_force",
    "parse_value",
    "read_parameter_keys",
    "record_parameter_value",
    "use_shared_parameter",
]
