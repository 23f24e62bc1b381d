"""A bundle's ``reporting.json``: the data fields its processes report (see :mod:`engine.projection`).

The file is optional. It holds::

    {
      "fields": {
        "subject": {"type": "string", "indexed": true},
        "supplier": {"type": "string", "key": "winner.supplier", "indexed": true},
        "value": {"type": "number", "key": "contract_value"}
      }
    }

Each field names a reporting field (letters, digits and ``_``, starting with a
letter, at most 100 characters) and gives its ``type`` (one of
:data:`FIELD_TYPES`), the data ``key`` it is read from (a dotted path into the
instance's data, default the field's own name) and whether it is ``indexed``
(filterable in SQL; default false) and whether it is ``search``-able (the case
list's text search looks in it; only an indexed ``string`` field can be). Type
``json`` keeps a list or object as it is (for reports that show nested data such
as a goal's quarterly statuses); it cannot be indexed. The fields apply to every process of the
bundle. Deploy checks the shape (:func:`check_reporting_file`); an error names
the file and the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .errors import DeploymentError

REPORTING_FILE = "reporting.json"
FIELD_TYPES = ("string", "number", "integer", "boolean", "date", "date-time", "json")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_FIELD_KEYS = {"type", "key", "indexed", "search"}


@dataclass(frozen=True)
class ReportingField:
    """One declared reporting field: where it comes from in the data and how it is stored."""

    name: str
    type: str
    path: tuple[str, ...]
    indexed: bool
    search: bool = False


def check_reporting_file(content: str) -> tuple[ReportingField, ...]:
    """Return the fields *content* (a ``reporting.json``) declares.

    :raises DeploymentError: invalid JSON, or a field with a bad name, type,
        key or setting; names the file and the field.
    """
    try:
        document = json.loads(content)
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"invalid JSON: {exc.msg}", file=REPORTING_FILE, line=exc.lineno) from None
    if not isinstance(document, dict) or set(document) - {"fields"}:
        raise DeploymentError('must be an object with one key, "fields"', file=REPORTING_FILE)
    declared = document.get("fields", {})
    if not isinstance(declared, dict):
        raise DeploymentError('"fields" must be an object of field name to field', file=REPORTING_FILE)
    found = []
    for name, spec in declared.items():
        where = f"field {name!r}"
        if not _NAME.fullmatch(name):
            raise DeploymentError(
                f"{where}: a name is a letter, then letters, digits or _ (at most 100)", file=REPORTING_FILE
            )
        if not isinstance(spec, dict):
            raise DeploymentError(f"{where} must be an object with a type", file=REPORTING_FILE)
        unknown = sorted(set(spec) - _FIELD_KEYS)
        if unknown:
            raise DeploymentError(f"{where}: unknown setting(s) {', '.join(unknown)}", file=REPORTING_FILE)
        kind = spec.get("type")
        if kind not in FIELD_TYPES:
            raise DeploymentError(
                f"{where}: type {kind!r} is not one of {', '.join(FIELD_TYPES)}", file=REPORTING_FILE
            )
        key = spec.get("key", name)
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise DeploymentError(
                f"{where}: key {key!r} is not a data key or a dotted path of them", file=REPORTING_FILE
            )
        indexed = spec.get("indexed", False)
        if not isinstance(indexed, bool):
            raise DeploymentError(f"{where}: indexed must be true or false", file=REPORTING_FILE)
        search = spec.get("search", False)
        if not isinstance(search, bool):
            raise DeploymentError(f"{where}: search must be true or false", file=REPORTING_FILE)
        if kind == "json" and indexed:
            raise DeploymentError(f"{where}: a json field cannot be indexed", file=REPORTING_FILE)
        if search and not (indexed and kind == "string"):
            raise DeploymentError(
                f"{where}: only an indexed string field can be searched (set indexed and type string)",
                file=REPORTING_FILE,
            )
        found.append(
            ReportingField(name=name, type=kind, path=tuple(key.split(".")), indexed=indexed, search=search)
        )
    return tuple(found)
