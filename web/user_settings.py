"""The signed-in user's own settings: their language, and whether they are e-mailed about new tasks."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from .auth import require_login
from .db import db_session
from .i18n import LANGUAGE_NAMES

bp = Blueprint("settings", __name__)
bp.before_request(require_login)


@bp.route("/settings", methods=["GET"])
def settings() -> str:
    """Show the user's settings form."""
    return render_template("settings/settings.html", languages=LANGUAGE_NAMES)


@bp.route("/settings", methods=["POST"])
def save() -> Response:
    """Store the user's language and e-mail choice; the chosen language applies at once.

    Form fields: ``language`` (``sv``, ``fi``, ``en``, or empty: the browser's),
    ``notify_by_email`` (present: on).

    :raises BadRequest: (400) the CSRF token is missing or wrong, or an unknown language.
    """
    language = request.form.get("language", "") or None
    if language is not None and language not in LANGUAGE_NAMES:
        abort(400)
    engine.set_user_preferences(
        db_session(), g.user, language=language, notify_by_email=request.form.get("notify_by_email") == "on"
    )
    if language is None:
        session.pop("lang", None)
    else:
        session["lang"] = language
    flash(_("Your settings were saved."), "success")
    return redirect(url_for("settings.settings"), code=303)
