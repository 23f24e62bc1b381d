"""Studio views: a decision table's editor page and its "try it" panel.

``GET /studio/<process_id>/decisions/<path:name>`` holds the dmn-js editor
(bundle ``vendor/studio/dmn-editor.js``, mounted on ``#dmn-editor``; it reads
and saves the file through ``GET``/``PUT /studio/<process_id>/files/<name>``
and dispatches ``procflow:dmn-saved`` after a save), the deploy-time findings
for the file (overlapping rows of a UNIQUE table refuse the deploy, gaps are
warnings: :mod:`engine.decision_check`), and per decision a form with one
field per input column. The form posts (htmx) to ``.../try``, which evaluates
the table on the draft's saved files (else the running version's) with the
real engine in its sandbox (:func:`engine.decision_try.try_decision`) and
answers the panel again: the fields with the values typed and any error beside
its field, the matching rows and the outputs. After a save,
``js/studio-decisions.js`` refreshes the findings and tries the table again.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, render_template, request, url_for
from flask_babel import gettext as _

import engine

from ..db import db_session
from . import bp
from .models import bundle_files

#: Kinds of a refused input value (:class:`engine.decision_try.InputError`), as the page says them.
_INPUT_ERRORS = {
    "required": lambda: _("Enter a value: rows of the table compare it."),
    "number": lambda: _("Enter a number, such as 1 234,50."),
    "integer": lambda: _("Enter a whole number."),
    "boolean": lambda: _("Choose yes or no."),
    "date": lambda: _("Enter a date as YYYY-MM-DD."),
    "datetime": lambda: _("Enter a date and time as YYYY-MM-DDTHH:MM."),
}
_DATA_PREFIX = "data:"


def _dmn_file(process_id: str, name: str) -> tuple[bool, list[engine.BundleFile], engine.BundleFile]:
    """The bundle of *process_id* the studio shows (draft, else running version) and its DMN file *name*."""
    draft, files = bundle_files(process_id)
    found = next((f for f in files if f.name == name and f.kind == "dmn"), None)
    if found is None:
        abort(404)
    return draft is not None, files, found


def _tables(item: engine.BundleFile) -> list[engine.decision_check.DecisionTable]:
    try:
        return engine.decision_check.read_decision_file(item)
    except engine.DeploymentError:
        return []  # the findings say why


def _read_only(process_id: str, has_draft: bool) -> bool:
    """Whether the organisation runs the shared version and may not edit it before customising it."""
    if has_draft:
        return False
    session = db_session()
    running = engine.studio.running_definition(session, g.organisation.id, process_id)
    return (
        running is not None
        and running.organisation_id is None
        and not engine.studio.may_edit_shared(session, g.organisation.id)
    )


@bp.get("/<process_id>/decisions/<path:name>")
def decision_editor(process_id: str, name: str) -> str:
    """The decision table editor of DMN file *name*, its deploy-time findings and its "try it" panel.

    :raises NotFound: (404) no such process for the organisation, or no DMN file *name* in it.
    """
    has_draft, _files, item = _dmn_file(process_id, name)
    read_only = _read_only(process_id, has_draft)
    return render_template(
        "studio/decision.html",
        process_id=process_id,
        name=name,
        has_draft=has_draft,
        read_only=read_only,
        file_url=url_for("studio.file_text", process_id=process_id, name=name),
        save_url=None if read_only else url_for("studio.save_file", process_id=process_id, name=name),
        findings=engine.decision_check.decision_file_problems(item),
        panels=[_panel(process_id, name, table) for table in _tables(item)],
    )


@bp.get("/<process_id>/decisions/<path:name>/findings")
def decision_findings(process_id: str, name: str) -> str:
    """The deploy-time findings of DMN file *name* as it is saved now (an htmx fragment).

    :raises NotFound: (404) no such process or DMN file.
    """
    _draft, _files, item = _dmn_file(process_id, name)
    return render_template(
        "studio/_decision_findings.html",
        process_id=process_id,
        name=name,
        findings=engine.decision_check.decision_file_problems(item),
    )


@bp.post("/<process_id>/decisions/<path:name>/try")
def try_decision(process_id: str, name: str) -> str:
    """Evaluate the posted decision of *name* on the posted inputs; answer its "try it" panel (htmx).

    :raises NotFound: (404) no such process, DMN file or decision in it.
    """
    _draft, files, item = _dmn_file(process_id, name)
    decision_id = request.form.get("decision", "")
    table = next((t for t in _tables(item) if t.decision_id == decision_id), None)
    if table is None:
        abort(404)
    inputs = {column.id: request.form.get(f"input:{column.id}", "") for column in table.inputs}
    data = {
        key: request.form.get(f"{_DATA_PREFIX}{key}", "") for key in engine.decision_try.data_names(table)
    }
    session = db_session()
    trial = engine.decision_try.try_decision(
        files, decision_id, inputs, session=session, organisation_id=g.organisation.id, data=data
    )
    return render_template(
        "studio/_decision_try.html",
        panel=_panel(process_id, name, table, values={**inputs, **_prefixed(data)}, trial=trial),
    )


def _prefixed(data: dict[str, str]) -> dict[str, str]:
    return {f"{_DATA_PREFIX}{key}": value for key, value in data.items()}


def _panel(
    process_id: str,
    name: str,
    table: engine.decision_check.DecisionTable,
    *,
    values: dict[str, str] | None = None,
    trial: engine.decision_try.DecisionTrial | None = None,
) -> dict[str, Any]:
    """What ``studio/_decision_try.html`` shows of one decision: its fields, and the trial's outcome."""
    values = values or {}
    errors = trial.input_errors if trial is not None else {}
    fields = [
        {
            "name": f"input:{column.id}",
            "id": f"try-{table.decision_id}-{column.id}",
            "label": column.title,
            "expression": column.expression if column.expression != column.title else None,
            "type_ref": column.type_ref.lower(),
            "value": values.get(column.id, ""),
            "error": _input_error(errors.get(column.id)),
        }
        for column in table.inputs
    ]
    data_fields = [
        {
            "name": f"{_DATA_PREFIX}{key}",
            "id": f"try-{table.decision_id}-data-{key}",
            "label": key,
            "value": values.get(f"{_DATA_PREFIX}{key}", ""),
        }
        for key in engine.decision_try.data_names(table)
    ]
    matched = []
    if trial is not None:
        by_id = {rule.id: rule for rule in table.rules}
        for rule in trial.matched_rules:
            source = by_id[rule.id]
            matched.append(
                {
                    "id": rule.id,
                    "row": rule.row,
                    "annotation": rule.annotation,
                    "used": rule.id in trial.used_rules,
                    "cells": list(zip((c.title for c in table.inputs), source.inputs, strict=False)),
                }
            )
    outputs = []
    if trial is not None and trial.error is None and not trial.input_errors:
        for output in table.outputs:
            key = output.name or output.label
            if key in trial.outputs:
                outputs.append({"label": output.title, "name": output.name, "value": trial.outputs[key]})
    return {
        "table": table,
        "action": url_for("studio.try_decision", process_id=process_id, name=name),
        "fields": fields,
        "data_fields": data_fields,
        "trial": trial,
        "matched": matched,
        "outputs": outputs,
        "overlap": table.hit_policy == "UNIQUE" and len(matched) > 1,
    }


def _input_error(error: engine.decision_try.InputError | None) -> str | None:
    if error is None:
        return None
    say = _INPUT_ERRORS.get(error.kind)
    return say() if say is not None else error.message
