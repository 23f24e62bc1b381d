"""The signed-in user's API tokens (``/settings/tokens``): make one (shown once), see them, revoke one.

A token acts as its user in the organisation they are signed in to; see
:mod:`engine.api_tokens`. The secret is shown on the page that answers the
form and nowhere else: it is never stored, flashed or put in a cookie.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from .auth import require_login
from .db import db_session

bp = Blueprint("tokens", __name__)
bp.before_request(require_login)


def token_errors(exc: engine.FormValidationError) -> dict[str, str]:
    """Return the page's message, in the user's language, for each field the engine refused."""
    messages = {
        "name": _("Give the token a name that says where it is used (at most 200 characters)."),
        "scopes": _("Choose read, or read and write."),
        "valid_days": _(
            "Choose how many days the token works: 1 to %(days)s.", days=engine.api_tokens.MAX_VALID_DAYS
        ),
        "roles": _("Choose at least one role."),
    }
    return {field: messages.get(field, _("This value is not valid.")) for field in exc.errors}


def token_form_values() -> tuple[str, list[str], int | None]:
    """Return the name, scopes and days of the token form (days ``None``: not a whole number)."""
    scope = request.form.get("scope", "read")
    days = request.form.get("valid_days", "")
    return request.form.get("name", ""), [scope], int(days) if days.isdigit() else None


def _page(status: int = 200, **values: object) -> tuple[str, int]:
    tokens = engine.api_tokens.list_tokens(db_session(), organisation_id=g.organisation.id, user_id=g.user.id)
    page = render_template(
        "settings/tokens.html",
        tokens=tokens,
        default_days=engine.api_tokens.DEFAULT_VALID_DAYS,
        max_days=engine.api_tokens.MAX_VALID_DAYS,
        now=engine.models.utcnow(),
        **values,
    )
    return page, status


@bp.route("/settings/tokens", methods=["GET"])
def tokens() -> tuple[str, int]:
    """Show the user's tokens in the current organisation and the form to make one."""
    return _page()


@bp.route("/settings/tokens", methods=["POST"])
def create() -> tuple[str, int]:
    """Make a token from the form (``name``, ``scope`` read or write, ``valid_days``) and show it once.

    :raises BadRequest: (400) the CSRF token is missing or wrong.
    """
    name, scopes, days = token_form_values()
    try:
        issued = engine.api_tokens.create_token(
            db_session(),
            username=g.user.username,
            organisation=g.organisation.key,
            name=name,
            scopes=scopes,
            valid_days=days if days is not None else 0,
            actor=g.user.username,
        )
    except engine.FormValidationError as exc:
        return _page(422, errors=token_errors(exc), form=request.form)
    return _page(201, issued=issued)


@bp.route("/settings/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke(token_id: int) -> Response:
    """Revoke one of the user's own tokens.

    :raises NotFound: (404) not a token of the user in this organisation.
    """
    try:
        engine.api_tokens.revoke_token(
            db_session(),
            token_id,
            organisation_id=g.organisation.id,
            user_id=g.user.id,
            actor=g.user.username,
        )
    except engine.NotFoundError:
        abort(404)
    flash(_("The token was revoked: it no longer works."), "success")
    return redirect(url_for("tokens.tokens"), code=303)
