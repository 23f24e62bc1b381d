"""A bundle's ``parameters.json``: the organisation parameters its processes read, with type and labels.

The file is optional. It holds::

    {
      "parameters": {
        "three_quotes_threshold": {
          "type": "money",
          "label": {"sv": "Gräns för tre anbud", "fi": "...", "en": "Three-quotes threshold"},
          "help": {"sv": "...", "fi": "...", "en": "..."}
        }
      }
    }

Each key is a parameter key as scripts and decision tables read it
(``parameters['three_quotes_threshold']``): a letter or ``_``, then letters,
digits or ``_`` (at most 120). ``type`` is one of :data:`PARAMETER_TYPES`; it
decides how an admin's new value is checked (:mod:`engine.parameters`).
``label`` (required) and ``help`` (optional) map language codes to texts.
Deploy checks the shape (:func:`check_parameters_file`); an error names the
file and the parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import DeploymentError

PARAMETERS_FILE = "parameters.json"
# money: an amount >= 0 with at most 2 decimals; days, working_days: whole numbers >= 0;
# percentage: a number from 0 to 100; integer: a whole number; text: a string;
# list: a JSON list; object: a JSON object.
PARAMETER_TYPES = ("money", "days", "working_days", "percentage", "integer", "text", "list", "object")
PARAMETER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,119}")
_ENTRY_KEYS = {"type", "label", "help"}


@dataclass(frozen=True)
class DeclaredParameter:
    """One parameter a bundle declares: its key, type, and label and help text by language."""

    key: str
    type: str
    label: Mapping[str, str] = field(default_factory=dict)
    help: Mapping[str, str] = field(default_factory=dict)


def _texts(value: Any, where: str, *, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if (
        not isinstance(value, dict)
        or not value
        or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items())
    ):
        raise DeploymentError(f"{where} must map language codes to texts", file=PARAMETERS_FILE)
    return dict(value)


def check_parameters_file(content: str) -> dict[str, DeclaredParameter]:
    """Return the parameters *content* (a ``parameters.json``) declares, by key.

    :raises DeploymentError: invalid JSON, or a parameter with a bad key, type, label or help.
    """
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"invalid JSON: {exc.msg}", file=PARAMETERS_FILE, line=exc.lineno) from None
    if not isinstance(data, dict) or set(data) != {"parameters"} or not isinstance(data["parameters"], dict):
        raise DeploymentError('must be an object with one key, "parameters", an object', file=PARAMETERS_FILE)
    declared: dict[str, DeclaredParameter] = {}
    for key, entry in data["parameters"].items():
        where = f"parameter {key!r}"
        if not PARAMETER_KEY.fullmatch(key):
            raise DeploymentError(
                f"{where}: a key is a letter or _, then letters, digits or _ (at most 120)",
                file=PARAMETERS_FILE,
            )
        if not isinstance(entry, dict) or "type" not in entry:
            raise DeploymentError(f"{where} must be an object with a type and a label", file=PARAMETERS_FILE)
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise DeploymentError(f"{where}: unknown setting(s) {', '.join(unknown)}", file=PARAMETERS_FILE)
        if entry["type"] not in PARAMETER_TYPES:
            raise DeploymentError(
                f"{where}: type {entry['type']!r} is not one of {', '.join(PARAMETER_TYPES)}",
                file=PARAMETERS_FILE,
            )
        declared[key] = DeclaredParameter(
            key=key,
            type=entry["type"],
            label=_texts(entry.get("label"), f"{where}: label", required=True),
            help=_texts(entry.get("help"), f"{where}: help", required=False),
        )
    return declared
