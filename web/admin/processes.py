"""Admin console: which processes run the shared version and which the organisation's own.

``GET /admin/processes`` lists every process the organisation sees: shared only
(with "Customise", the studio's action that makes an own draft of it), its own,
or its own but new cases on the shared version again; and the version new cases
start on. ``POST /admin/processes/<process_id>/use-shared`` and ``.../use-own``
switch new cases between the two (running cases stay on their version).
"""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from ..tasks import process_name
from . import bp

DONE = ("shared", "own")


@bp.route("/processes")
def processes() -> str:
    """List the organisation's processes: shared, own, or own with new cases on the shared version."""
    session = db_session()
    choices = engine.process_choices(session, g.organisation.id)
    done = request.args.get("done")
    done_process = request.args.get("process", "")
    done_choice = next((c for c in choices if c.process_id == done_process), None) if done in DONE else None
    return render_template(
        "admin/processes.html",
        choices=choices,
        names={c.process_id: process_name(c.own or c.shared) for c in choices if c.own or c.shared},
        may_edit_shared=engine.studio.may_edit_shared(session, g.organisation.id),
        done=done if done_choice else None,
        done_choice=done_choice,
    )


def _switch(process_id: str, *, use_shared: bool) -> Response:
    try:
        engine.set_use_shared(
            db_session(), g.organisation.id, process_id, use_shared=use_shared, user=g.user.username
        )
    except engine.NotFoundError:
        abort(404)
    return redirect(
        url_for("admin.processes", done="shared" if use_shared else "own", process=process_id)
        + f"#process-{process_id}",
        code=303,
    )


@bp.route("/processes/<process_id>/use-shared", methods=["POST"])
def processes_use_shared(process_id: str) -> Response:
    """New cases of *process_id* start on the shared version again, though the organisation has its own.

    :raises NotFound: (404) the organisation sees no such process.
    :raises Conflict: (409) it has no own version, or there is no shared one.
    """
    return _switch(process_id, use_shared=True)


@bp.route("/processes/<process_id>/use-own", methods=["POST"])
def processes_use_own(process_id: str) -> Response:
    """New cases of *process_id* start on the organisation's own version again.

    :raises NotFound: (404) the organisation sees no such process.
    :raises Conflict: (409) it has no own version (customise it first).
    """
    return _switch(process_id, use_shared=False)
