"""Setting a password through the one-time link an admin made (engine/password_links.py).

``/password/<token>`` shows the form; posting it sets the password and spends
the link. A link that is unknown, used or expired, or whose user is
deactivated, gets the same page with 404: it says nothing of which. The pages
are never cached and send no referrer, so the token leaves no copies.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from .db import db_session

bp = Blueprint("password_links", __name__)


@bp.after_request
def _leave_no_copies(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _message(field: str, message: str) -> str:
    if field == "repeat":
        return _("The two passwords differ.")
    if "at least" in message:
        return _("Use at least %(count)s characters.", count=engine.password_links.MIN_PASSWORD_LENGTH)
    if "username" in message:
        return _("Do not use your username as your password.")
    return _("Use at most %(count)s characters.", count=engine.password_links.MAX_PASSWORD_LENGTH)


def _invalid() -> tuple[str, int]:
    return render_template("password_links/invalid.html"), 404


@bp.route("/password/<token>", methods=["GET"])
def set_password(token: str) -> str | tuple[str, int]:
    """Show the form that sets the password of the link's user.

    :returns: 404 with an explanation for a link that does not work.
    """
    try:
        user = engine.password_links.password_link_user(db_session(), token)
    except engine.NotFoundError:
        return _invalid()
    return render_template("password_links/set.html", user=user, token=token, errors={})


@bp.route("/password/<token>", methods=["POST"])
def save_password(token: str) -> str | tuple[str, int]:
    """Set the password and spend the link; a refused password re-renders the form (422).

    :raises BadRequest: (400) the CSRF token is missing or wrong.
    :returns: 404 with an explanation for a link that does not work.
    """
    session = db_session()
    try:
        user = engine.password_links.password_link_user(session, token)
        engine.password_links.set_password_with_link(
            session, token, request.form.get("password", ""), request.form.get("repeat", "")
        )
    except engine.NotFoundError:
        return _invalid()
    except engine.FormValidationError as exc:
        errors = {field: _message(field, messages[0]) for field, messages in exc.errors.items()}
        return render_template("password_links/set.html", user=user, token=token, errors=errors), 422
    return render_template("password_links/done.html", user=user)
