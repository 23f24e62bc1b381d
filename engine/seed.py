"""Dated parameters and seed data: organisations, users and parameters from one mapping.

``procflow demo load`` feeds ``processes/demo.json`` through :func:`load_seed`;
an admin's own seed file works the same way. Loading is idempotent:
organisations and users are updated, and a parameter value is recorded as a
new row only when it differs from the newest row of the same organisation,
key and start date (the history of values is never edited in place).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from .errors import DataError
from .identity import add_organisation, add_user
from .models import Group, Parameter
from .org_settings import update_settings


def set_parameter(
    session: so.Session,
    key: str,
    value: Any,
    *,
    organisation_id: int | None,
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    note: str | None = None,
    created_by: str | None = None,
    uses_shared: bool = False,
) -> Parameter:
    """Record *value* for (*organisation_id*, *key*) from *valid_from* and return its row.

    ``organisation_id=None`` is a shared value that every organisation sees
    unless it has its own; ``uses_shared=True`` (an organisation's row only)
    says "from *valid_from*, the shared value again". History is append-only:
    a new value for a start date already recorded is a newer row that
    supersedes the older one (see ``engine._workflow.rows_in_force``). When the
    newest row for (*organisation_id*, *key*, *valid_from*) already says the
    same (value, end date and ``uses_shared``), nothing is added and that row
    is returned, so loading a seed file twice adds nothing.
    Runs in the caller's transaction.
    """
    owner = (
        Parameter.organisation_id.is_(None)
        if organisation_id is None
        else Parameter.organisation_id == organisation_id
    )
    newest = session.scalar(
        sa.select(Parameter)
        .where(Parameter.key == key, Parameter.valid_from == valid_from, owner)
        .order_by(Parameter.created_at.desc(), Parameter.id.desc())
        .limit(1)
    )
    if (
        newest is not None
        and newest.value == value
        and newest.valid_to == valid_to
        and newest.uses_shared == uses_shared
    ):
        return newest
    row = Parameter(
        organisation_id=organisation_id,
        key=key,
        value=value,
        valid_from=valid_from,
        valid_to=valid_to,
        note=note,
        created_by=created_by,
        uses_shared=uses_shared,
    )
    session.add(row)
    session.flush()
    return row


def set_group(
    session: so.Session, organisation_id: int, key: str, *, name: str, names: Mapping[str, str]
) -> Group:
    """Create or update the organisation's group *key*: its name, and its names by language.

    Runs in the caller's transaction.

    :raises DataError: *names* is not a mapping of language codes to non-empty names.
    """
    if not isinstance(names, Mapping) or not all(
        isinstance(code, str) and isinstance(text, str) and text.strip() for code, text in names.items()
    ):
        raise DataError(f"Group {key!r}: 'names' must map language codes to names, not {names!r}")
    group = session.scalar(sa.select(Group).where(Group.organisation_id == organisation_id, Group.key == key))
    if group is None:
        group = Group(organisation_id=organisation_id, key=key)
        session.add(group)
    group.name = name
    group.translated_names = dict(names)
    session.flush()
    return group


def read_seed_file(path: str | Path) -> dict[str, Any]:
    """Read seed data from a JSON file; a parameter's ``value_file`` is read from beside it.

    Large editable values (the goal catalogue) are kept in files of their own.

    :raises OSError: a file cannot be read.
    :raises ValueError: a file is not valid JSON.
    """
    path = Path(path)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    params = [p for org in data.get("organisations", []) for p in org.get("parameters", [])]
    for param in [*params, *data.get("shared_parameters", [])]:
        if "value_file" in param:
            param["value"] = json.loads((path.parent / param.pop("value_file")).read_text(encoding="utf-8"))
    return data


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def load_seed(session: so.Session, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Write organisations, their parameters, shared parameters and users from *data*.

    *data* has ``organisations`` (``key``, ``name``, ``platform``, ``settings`` (as
    :func:`engine.org_settings.update_settings` takes them), ``groups``, ``parameters``),
    ``shared_parameters`` and ``users`` (``username``, ``organisation``,
    ``roles``, ``groups``, ``password``...); groups have ``key``, ``name`` and
    ``names`` by language (``{"sv": ..., "fi": ...}``); parameters have ``key``,
    ``value``, ``valid_from`` and optionally ``valid_to`` (ISO dates).
    Runs in the caller's transaction; returns the users as given.

    :raises ProcflowError: an invalid organisation key or an unknown role.
    :raises NotFoundError: a user names an organisation that does not exist.
    :raises DataError: a group's ``names`` are not names by language.
    """
    for org in data.get("organisations", []):
        organisation = add_organisation(session, org["key"], name=org["name"])
        # The platform organisation's process owners deploy the shared versions (engine/studio.py).
        organisation.is_platform = bool(org.get("platform", False))
        if org.get("settings"):
            # As an admin sets them on /admin/settings: validated, and audited when they change.
            update_settings(session, organisation, dict(org["settings"]), actor="seed")
        for group in org.get("groups", []):
            set_group(
                session, organisation.id, group["key"], name=group["name"], names=group.get("names") or {}
            )
        for param in org.get("parameters", []):
            set_parameter(
                session,
                param["key"],
                param["value"],
                organisation_id=organisation.id,
                valid_from=dt.date.fromisoformat(param["valid_from"]),
                valid_to=_date(param.get("valid_to")),
                note=param.get("note"),
                created_by="seed",
            )
    for param in data.get("shared_parameters", []):
        set_parameter(
            session,
            param["key"],
            param["value"],
            organisation_id=None,
            valid_from=dt.date.fromisoformat(param["valid_from"]),
            valid_to=_date(param.get("valid_to")),
            note=param.get("note"),
            created_by="seed",
        )
    users: list[dict[str, Any]] = data.get("users", [])
    for user in users:
        add_user(
            session,
            user["username"],
            organisation=user["organisation"],
            roles=user.get("roles", []),
            groups=user.get("groups", []),
            password=user.get("password"),
            display_name=user.get("display_name"),
            email=user.get("email"),
        )
    return users
