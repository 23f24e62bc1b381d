"""The process studio: process owners model, check, try and deploy BPMN, decision tables and forms.

One blueprint, ``studio``, under ``/studio``; its views live in the modules
imported below, each for one area:

- :mod:`.models` — the process models list, drafts (files saved, validated,
  deployed), versions, import and export, test instances;
- :mod:`.modeler` — the bpmn-js modeler page and what its properties panel
  asks the server (groups, connectors, forms, decisions);
- :mod:`.lint` — what the in-editor lint rules ask the server (expressions
  the sandbox refuses);
- :mod:`.forms_editor` — the form editor (JSON Schema and UI schema) and its
  live preview by the case handler's renderer;
- :mod:`.decisions` — the dmn-js decision table editor and its "try it" panel.

Only process owners and admins of the signed-in organisation see any of it;
everyone else gets 404, as for anything of another organisation.
"""

from __future__ import annotations

from flask import Blueprint, abort, g
from werkzeug.wrappers import Response

from ..auth import require_login, roles

bp = Blueprint("studio", __name__, url_prefix="/studio")

STUDIO_ROLES = frozenset({"process_owner", "admin"})


def may_use_studio() -> bool:
    """Whether the signed-in user is a process owner or an admin of the organisation."""
    return g.get("membership") is not None and bool(STUDIO_ROLES & set(roles()))


@bp.before_request
def _only_process_owners() -> Response | None:
    redirect = require_login()
    if redirect is not None:
        return redirect
    if not may_use_studio():
        abort(404)
    return None


from . import decisions, forms_editor, lint, modeler, models  # noqa: E402  (views register themselves on bp)

__all__ = ["STUDIO_ROLES", "bp", "decisions", "forms_editor", "lint", "may_use_studio", "modeler", "models"]
