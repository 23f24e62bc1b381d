"""Names of processes, tasks and groups in the user's language.

A bundle may carry ``names.json`` at its root: element ids (the process's id,
its tasks' and events' ids) mapped to a name per language::

    {"direct_procurement": {"sv": "Direktupphandling", "fi": "Pienhankinta"},
     "approve": {"sv": "Godkänn inköpet", "fi": "Hyväksy hankinta"}}

Deploy checks the file (:func:`check_translated_names`) and stores the mapping
on each process definition (``ProcessDefinition.translated_names``), so that
lists and inboxes translate without parsing a model. A group's names by
language live on the group (``Group.translated_names``). Where a language has
no name, the BPMN's own name (or the group's ``name``) is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from .errors import DeploymentError
from .models import Group

NAMES_FILE = "names.json"
MAX_NAME_LENGTH = 300
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def translated(names: Mapping[str, Any] | None, key: str, language: str, default: str) -> str:
    """Return the name of *key* in *language* from a ``translated_names`` mapping, else *default*."""
    entry = (names or {}).get(key)
    if isinstance(entry, Mapping):
        name = entry.get(language)
        if isinstance(name, str) and name:
            return name
    return default


def check_translated_names(
    content: Any, known_ids: Iterable[str], *, file: str = NAMES_FILE
) -> dict[str, dict[str, str]]:
    """Return the checked mapping of a bundle's ``names.json`` (already parsed as JSON).

    :raises DeploymentError: naming *file* and the key: the file is not an object,
        a key is not the id of a process or element of the bundle, or a value is
        not an object of language codes (``sv``, ``fi``...) to non-empty names.
    """
    if not isinstance(content, dict):
        raise DeploymentError(
            'must be a JSON object of element ids to names by language, e.g. {"approve": {"sv": "Godkänn"}}',
            file=file,
        )
    known = set(known_ids)
    checked: dict[str, dict[str, str]] = {}
    for key, by_language in content.items():
        if key not in known:
            raise DeploymentError(
                f"key {key!r} is not the id of a process or element in the bundle's BPMN files",
                file=file,
                element=key,
            )
        if not isinstance(by_language, dict) or not by_language:
            raise DeploymentError(
                f'key {key!r} must map language codes to names, e.g. {{"sv": "...", "fi": "..."}}',
                file=file,
                element=key,
            )
        for language, name in by_language.items():
            if not _LANGUAGE.match(language):
                raise DeploymentError(
                    f"key {key!r}: {language!r} is not a language code such as 'sv' or 'fi'",
                    file=file,
                    element=key,
                )
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
                raise DeploymentError(
                    f"key {key!r}: the {language!r} name must be text of 1 to {MAX_NAME_LENGTH} characters",
                    file=file,
                    element=key,
                )
        checked[key] = {language: name.strip() for language, name in by_language.items()}
    return checked


def group_names(session: so.Session, organisation_id: int, language: str) -> dict[str, str]:
    """Return the display name in *language* of each group of the organisation, by group key."""
    rows = session.execute(
        sa.select(Group.key, Group.name, Group.translated_names).where(
            Group.organisation_id == organisation_id
        )
    )
    return {key: translated({key: names}, key, language, name or key) for key, name, names in rows}
