"""Admin console: incidents — failed jobs and instances in error — and their repair.

``GET /admin/incidents`` lists them, newest first, paged and filtered by process
in SQL (:func:`engine.list_incidents`), with element, message, attempts, since
and the trace; ``POST /admin/incidents/retry`` retries the one of a row's button
or every ticked one. A case's repair page
(``GET /admin/incidents/instances/<id>``) shows its incident and corrects its
data (:func:`engine.repair_instance_data`, the case page's set-data) or moves it
back to an earlier step (:func:`engine.repair_reset`, the case page's reset),
then retries it. Every change is an admin action in the audit log.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from ..i18n import current_language
from ..instances import data_correction
from ..tasks import process_name
from . import bp

REPAIR_DONE = ("data", "reset", "retried", "nothing")


def _element_label(incident: engine.Incident) -> str | None:
    """The failed element's name in the user's language, with its id, if the incident names one."""
    if not incident.element:
        return None
    definition = incident.definition
    if definition is None:
        return incident.element
    names = engine.element_names(db_session(), definition)
    name = engine.translated(
        definition.translated_names, incident.element, current_language(), names.get(incident.element, "")
    )
    return name or incident.element


def _process_label(incident: engine.Incident) -> str | None:
    return process_name(incident.definition) if incident.definition is not None else None


def _int_arg(name: str) -> int:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else 0


@bp.route("/incidents")
def incidents() -> str:
    """List the organisation's incidents, newest first (``?process=`` filters, ``?offset=`` pages)."""
    session = db_session()
    organisation_id = g.organisation.id
    processes = engine.incident_processes(session, organisation_id)
    chosen = request.args.get("process") or None
    page = engine.list_incidents(session, organisation_id, process_id=chosen, offset=_int_arg("offset"))
    refused = [key for key in request.args.get("refused", "").split(",") if key]
    return render_template(
        "admin/incidents.html",
        page=page,
        processes=processes,
        process_names=_process_names(processes),
        chosen=chosen,
        elements={i.key: _element_label(i) for i in page.incidents},
        process_labels={i.key: _process_label(i) for i in page.incidents},
        retried=_int_arg("retried"),
        refused=refused,
    )


def _process_names(process_ids: list[str]) -> dict[str, str]:
    visible = {d.process_id: d for d in engine.visible_definitions(db_session(), g.organisation.id)}
    return {p: process_name(visible[p]) if p in visible else p for p in process_ids}


@bp.route("/incidents/retry", methods=["POST"])
def incidents_retry() -> Response:
    """Retry the incident of the row's button (``one``), else every ticked one (``incident``).

    Each is retried in a savepoint: one repaired meanwhile is named on the page, the others are retried.

    :raises BadRequest: (400) no incident was chosen.
    """
    one = request.form.get("one")
    keys = [one] if one else request.form.getlist("incident")
    back: dict[str, Any] = {}
    if request.form.get("process"):
        back["process"] = request.form["process"]
    if not keys:
        return redirect(url_for("admin.incidents", none="1", **back), code=303)
    outcome = engine.retry_incidents(db_session(), g.organisation.id, keys, user=g.user.username)
    if request.form.get("back") == "repair" and one and one.startswith("instance-") and not outcome.refused:
        instance_id = int(one.removeprefix("instance-"))
        return redirect(
            url_for("admin.incidents_instance", instance_id=instance_id, done="retried"), code=303
        )
    return redirect(
        url_for(
            "admin.incidents",
            retried=len(outcome.retried),
            refused=",".join(key for key, _why in outcome.refused) or None,
            **back,
        ),
        code=303,
    )


def _repair_page(
    instance_id: int, *, data_input: str | None = None, data_errors: list[str] | None = None
) -> str:
    session = db_session()
    instance = engine.get_instance(session, instance_id, organisation_id=g.organisation.id)
    incident = engine.instance_incident(session, g.organisation.id, instance_id)
    repairable = instance.status in ("running", "waiting", "error")
    if data_input is None:
        data_input = json.dumps(
            engine.instance_data(session, instance), indent=2, ensure_ascii=False, sort_keys=True
        )
    done = request.args.get("done")
    return render_template(
        "admin/incidents_repair.html",
        instance=instance,
        incident=incident,
        element=_element_label(incident) if incident else None,
        process_label=process_name(instance.definition),
        repairable=repairable,
        data_input=data_input,
        data_errors=data_errors or [],
        reset_targets=engine.reset_targets(session, instance) if repairable else [],
        done=done if done in REPAIR_DONE else None,
    )


@bp.route("/incidents/instances/<int:instance_id>")
def incidents_instance(instance_id: int) -> str:
    """The repair page of a case: its incident and trace, its data to correct, the steps to move back to.

    :raises NotFound: (404) no such instance in the organisation.
    """
    return _repair_page(instance_id)


@bp.route("/incidents/instances/<int:instance_id>/data", methods=["POST"])
def incidents_set_data(instance_id: int) -> Response | tuple[str, int]:
    """Correct a case's data: the fields whose values differ from the current data are merged in.

    Text that is not a JSON object, or fields the engine refuses, come back beside the text (422).

    :raises NotFound: (404) no such instance in the organisation.
    :raises Conflict: (409) the instance has ended.
    """
    session = db_session()
    instance = engine.get_instance(session, instance_id, organisation_id=g.organisation.id)
    raw = request.form.get("data", "")
    changed, problem = data_correction(raw, engine.instance_data(session, instance))
    if problem is not None:
        return _repair_page(instance_id, data_input=raw, data_errors=[problem]), 422
    if not changed:
        return redirect(
            url_for("admin.incidents_instance", instance_id=instance_id, done="nothing"), code=303
        )
    g.rerender_form = lambda errors: _repair_page(
        instance_id,
        data_input=raw,
        data_errors=[f"{field}: {m}" if field else m for field, ms in errors.items() for m in ms],
    )
    engine.repair_instance_data(session, g.organisation.id, instance_id, data=changed, user=g.user.username)
    return redirect(url_for("admin.incidents_instance", instance_id=instance_id, done="data"), code=303)


@bp.route("/incidents/instances/<int:instance_id>/reset", methods=["POST"])
def incidents_reset(instance_id: int) -> Response:
    """Move a case back to an earlier step, which runs again from there.

    :raises NotFound: (404) no such instance in the organisation, or no such step.
    :raises BadRequest: (400) no step was chosen.
    :raises Conflict: (409) the case is suspended or has ended, or the step has not run.
    """
    engine.get_instance(db_session(), instance_id, organisation_id=g.organisation.id)
    to = request.form.get("to", "")
    if not to:
        abort(400)
    engine.repair_reset(db_session(), g.organisation.id, instance_id, to=to, user=g.user.username)
    return redirect(url_for("admin.incidents_instance", instance_id=instance_id, done="reset"), code=303)
