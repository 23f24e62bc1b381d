"""The admin console: an organisation's admins run their part of the installation.

One blueprint, ``admin``, under ``/admin``; its views live in the modules
imported below, each for one area:

- :mod:`.users` — users (add with a one-time password link, deactivate,
  reactivate, roles) and groups (members, names in sv, fi and en);
- :mod:`.parameters` — dated parameters: the value in force, the history, own
  values over shared ones;
- :mod:`.processes` — which processes run the shared version and which the
  organisation's own;
- :mod:`.incidents` — failed jobs and instances in error: retry, set data, reset;
- :mod:`.migrations` — moving running instances to another version, dry run first;
- :mod:`.settings` — the organisation's name, number, country, currency, time
  zone and default language;
- :mod:`.tokens` — the organisation's API tokens and service accounts;
- :mod:`.audit` — every admin action, and its CSV export.

Only admins of the signed-in organisation see any of it; everyone else gets
404, as for anything of another organisation.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, redirect, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ..auth import require_login, roles

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The console's sections in its navigation: (endpoint, label).
SECTIONS = (
    ("admin.users", _l("Users")),
    ("admin.groups", _l("Groups")),
    ("admin.parameters", _l("Parameters")),
    ("admin.processes", _l("Processes")),
    ("admin.incidents", _l("Incidents")),
    ("admin.migrations", _l("Migration")),
    ("admin.settings", _l("Organisation")),
    ("admin.tokens", _l("API tokens")),
    ("admin.audit", _l("Audit log")),
)


def is_admin() -> bool:
    """Whether the signed-in user is an admin of the organisation they are signed in to."""
    return g.get("membership") is not None and "admin" in roles()


@bp.before_request
def _only_admins() -> Response | None:
    redirect_to_login = require_login()
    if redirect_to_login is not None:
        return redirect_to_login
    if not is_admin():
        abort(404)
    return None


@bp.context_processor
def _sections() -> dict[str, object]:
    return {"admin_sections": [(e, label) for e, label in SECTIONS if e in current_app.view_functions]}


@bp.route("/")
def index() -> Response:
    """The console opens on its users."""
    return redirect(url_for("admin.users"))


from . import audit, incidents, migrations, parameters, processes, settings, tokens, users  # noqa: E402

__all__ = [
    "SECTIONS",
    "audit",
    "bp",
    "incidents",
    "is_admin",
    "migrations",
    "parameters",
    "processes",
    "settings",
    "tokens",
    "users",
]
