"""Sign-in, sign-out, the language and organisation switches, and who is signed in.

The signed-in user, their organisation and their membership there (roles and
groups) are loaded once per request into ``g.user``, ``g.organisation`` and
``g.membership``. Everything a user sees is scoped to ``g.organisation``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from .db import db_session, keep_despite_error

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])


def load_signed_in_user() -> None:
    """Fill ``g.user``, ``g.organisation`` and ``g.membership`` from the session cookie.

    A user who was deactivated or lost their membership is signed out.
    """
    g.user = g.organisation = g.membership = None
    username = session.get("username")
    if request.endpoint == "static" or not username:
        return
    db = db_session()
    try:
        user = engine.get_user(db, username)
        organisation = engine.get_organisation(db, session.get("organisation", ""))
    except engine.NotFoundError:
        sign_out_session()
        return
    membership = engine.membership_of(db, user, organisation.id)
    if membership is None or not user.is_active:
        sign_out_session()
        return
    g.user, g.organisation, g.membership = user, organisation, membership


def roles() -> set[str]:
    """Return the signed-in user's roles in their current organisation."""
    return set(g.membership.roles) if g.get("membership") else set()


def require_login() -> Response | None:
    """Send anonymous visitors to the sign-in page (``before_request`` hook of protected blueprints).

    :raises Unauthorized: (401) for the JSON API, which has no sign-in page.
    """
    if g.get("user") is not None:
        return None
    if request.path.startswith("/api/"):
        abort(401)
    if request.headers.get("HX-Request"):
        # htmx (a poll of the inbox counts, a filter) would put the sign-in page inside the page:
        # answer 401, and have htmx open the sign-in page as a whole page, back to where it was.
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        back = current.path + (f"?{current.query}" if current.query else "") if current.path else None
        response = Response(status=401)
        response.headers["HX-Redirect"] = url_for("auth.login", next=safe_next(back, url_for("tasks.inbox")))
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require_role(*allowed: str) -> Callable[[F], F]:
    """Decorate a view so that only members with one of *allowed* roles may use it.

    :raises Forbidden: (403) for everyone else.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not roles() & set(allowed):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def safe_next(target: str | None, default: str) -> str:
    """Return *target* if it is a path on this site, else *default* (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def sign_out_session() -> None:
    """Forget who is signed in (the language choice is kept)."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """Show the sign-in form; on POST check the password and sign the user in.

    Failed attempts answer 401 with the form again and are counted per
    (username, client address) and per address in the database
    (:mod:`engine.sign_in_throttle`); an attempt that comes before the wait those
    failures impose answers 429 without the password being checked.

    :raises BadRequest: (400) the CSRF token is missing or wrong.
    :raises SignInThrottledError: (429) too many failed attempts; try again later.
    """
    next_url = safe_next(request.values.get("next"), url_for("tasks.inbox"))
    if request.method == "GET":
        if g.get("user") is not None:
            return redirect(next_url)
        return render_template("auth/login.html", next_url=next_url, username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"
    db = db_session()
    engine.check_sign_in_allowed(db, username=username, address=address)
    user = engine.verify_password(db, username, password) if username and password else None
    error = None
    if user is None:
        error = _("Wrong username or password.")
        engine.record_sign_in_failure(db, username=username, address=address)
        keep_despite_error()
    else:
        engine.record_sign_in_success(db, username=username, address=address)
        memberships = sorted(
            (m for m in user.memberships if m.deactivated_at is None),
            key=lambda m: m.organisation.name.lower(),
        )
        if not memberships:
            error = _("Your account is not a member of any organisation. Ask an administrator.")
    if error is not None:
        return render_template("auth/login.html", next_url=next_url, username=username, error=error), 401
    sign_out_session()
    session.permanent = True
    session["username"] = user.username  # type: ignore[union-attr]
    session["organisation"] = memberships[0].organisation.key
    current_app.logger.info("user %s signed in", username)
    return redirect(next_url, code=303)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out and return to the sign-in page (the language choice is kept)."""
    sign_out_session()
    return redirect(url_for("auth.login"), code=303)


@bp.route("/language", methods=["POST"])
def language() -> Response:
    """Remember the chosen interface language and go back to the page the user was on.

    :raises BadRequest: (400) an unsupported language.
    """
    chosen = request.form.get("lang", "")
    if chosen not in current_app.config["LANGUAGES"]:
        abort(400)
    session["lang"] = chosen
    if g.get("user") is not None and chosen != g.user.language:
        # Kept with the user too: their next sign-in, elsewhere, and their task e-mails use it.
        engine.set_user_preferences(
            db_session(), g.user, language=chosen, notify_by_email=g.user.notify_by_email
        )
    return redirect(safe_next(request.form.get("next"), url_for("tasks.inbox")), code=303)


@bp.route("/organisation", methods=["POST"])
def organisation() -> Response:
    """Switch to another organisation the signed-in user is a member of.

    :raises NotFound: (404) the user is not a member of that organisation.
    """
    response = require_login()
    if response is not None:
        return response
    key = request.form.get("organisation", "")
    if key not in {m.organisation.key for m in g.user.memberships if m.deactivated_at is None}:
        abort(404)
    session["organisation"] = key
    return redirect(url_for("tasks.inbox"), code=303)
