"""A bundle's ``case.json``: what a case page shows of a process besides its tasks.

The file is optional. It holds::

    {
      "summary": [
        {"key": "tender_closes_at", "label": {"en": "...", "sv": "...", "fi": "..."},
         "format": "date-time",
         "note": {"when": "tender_deadline_extended", "text": {"en": "... {tender_period_min_days} ..."}}}
      ],
      "messages": {
        "supplier_question": {"label": {"en": "Supplier's question", ...},
                              "action": {"en": "Register a supplier's question", ...},
                              "form": "forms/supplier_question.schema.json",
                              "form_ui": "forms/supplier_question.uischema.json"}
      }
    }

``summary`` lists data keys shown at the top of the case page (with an
optional note shown when another key is true, ``{key}`` in it standing for the
case's value); ``messages`` gives, for a message the process waits for, its
label, the words of the button that registers it by hand, and the form a case
handler fills in (its payload). Deploy checks the shape (:func:`check_case_file`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from forms import FormSchemaError, check_form_schema, check_ui_schema

from .errors import DeploymentError

CASE_FILE = "case.json"

SUMMARY_FORMATS = ("text", "date", "date-time", "boolean", "number", "money")


def _check_text(value: Any, where: str) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, dict) or not value or not all(isinstance(v, str) for v in value.values()):
        raise DeploymentError(
            f"{where} must be a text or a mapping of language codes to texts", file=CASE_FILE
        )


def check_case_file(content: str, *, forms: Mapping[str, str]) -> None:
    """Check a bundle's ``case.json`` (its text *content*); *forms* maps the bundle's JSON files to texts.

    :raises DeploymentError: the file is not JSON or not of the documented shape,
        naming the entry at fault; or a message form is not in the bundle or not a valid form.
    """
    try:
        case = json.loads(content)
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"invalid JSON: {exc.msg}", file=CASE_FILE, line=exc.lineno) from None
    if not isinstance(case, dict):
        raise DeploymentError("must be a JSON object with 'summary' and/or 'messages'", file=CASE_FILE)
    unknown = sorted(set(case) - {"summary", "messages", "description"})
    if unknown:
        raise DeploymentError(f"unknown keys {unknown}: expected 'summary' and 'messages'", file=CASE_FILE)
    summary = case.get("summary", [])
    if not isinstance(summary, list):
        raise DeploymentError("'summary' must be a list of entries", file=CASE_FILE)
    for index, item in enumerate(summary):
        where = f"summary[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise DeploymentError(f"{where} must be an object with a data 'key'", file=CASE_FILE)
        _check_text(item.get("label"), f"{where}.label")
        if item.get("format", "text") not in SUMMARY_FORMATS:
            raise DeploymentError(
                f"{where}.format {item.get('format')!r} is not one of {', '.join(SUMMARY_FORMATS)}",
                file=CASE_FILE,
            )
        note = item.get("note")
        if note is not None:
            if not isinstance(note, dict) or not isinstance(note.get("when"), str):
                raise DeploymentError(
                    f"{where}.note must be an object with a data key 'when'", file=CASE_FILE
                )
            _check_text(note.get("text"), f"{where}.note.text")
    messages = case.get("messages", {})
    if not isinstance(messages, dict):
        raise DeploymentError("'messages' must map message names to entries", file=CASE_FILE)
    for name, entry in messages.items():
        where = f"messages.{name}"
        if not isinstance(entry, dict):
            raise DeploymentError(f"{where} must be an object", file=CASE_FILE)
        for text in ("label", "action"):
            if text in entry:
                _check_text(entry[text], f"{where}.{text}")
        for key in ("form", "form_ui"):
            reference = entry.get(key)
            if reference is None:
                continue
            if not isinstance(reference, str) or reference not in forms:
                raise DeploymentError(
                    f"{where}.{key} names {reference!r}, which is not in the bundle", file=CASE_FILE
                )
            check = check_form_schema if key == "form" else check_ui_schema
            try:
                check(json.loads(forms[reference]))
            except FormSchemaError as exc:
                raise DeploymentError(
                    f"JSON pointer {exc.pointer or '/'}: {exc.message}", file=reference
                ) from None
