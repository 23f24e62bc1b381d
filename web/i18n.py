"""Swedish, Finnish and English through Flask-Babel; the chosen language lives in the session.

A signed-in user's choice is also stored with them (``User.language``: the
settings page and the header's switch set it), so it holds on every device
and their task e-mails use it. Without a choice the browser's
``Accept-Language`` decides. Catalogues are in
``web/translations`` (``make translations`` re-extracts and compiles them).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, request, session
from flask_babel import Babel, get_locale

import engine
import forms

from .db import db_session

LANGUAGE_NAMES = {"en": "English", "sv": "Svenska", "fi": "Suomi"}


def select_locale() -> str | None:
    """Return the session's language, else the signed-in user's stored one, else their organisation's
    default language (set by its admin), else the browser's best match."""
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    user = g.get("user")
    if user is not None and user.language in languages:
        return str(user.language)
    organisation = g.get("organisation")
    if organisation is not None and organisation.default_language in languages:
        return str(organisation.default_language)
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    """Return the language code of the current request (``sv``, ``fi``, ``en``)."""
    locale = get_locale()
    return locale.language if locale is not None else "en"


def time_zone() -> str:
    """Return the IANA time zone times are shown in: the signed-in organisation's, else ``TIMEZONE``.

    The organisation's comes from :func:`engine.organisation_time_zone` (its
    ``time_zone`` parameter, else its jurisdiction's zone, else UTC); it is
    looked up once per request.
    """
    organisation = g.get("organisation")
    if organisation is None:
        return str(current_app.config["TIMEZONE"])
    if "time_zone" not in g:
        g.time_zone = engine.organisation_time_zone(db_session(), organisation.id)
    found: str = g.time_zone
    return found


def init_app(app: Flask) -> None:
    """Install Flask-Babel with the session/browser language selector and the configured timezone."""
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["TIMEZONE"])
    Babel(app, locale_selector=select_locale, timezone_selector=time_zone)

    @app.context_processor
    def _languages() -> dict[str, Any]:
        return {
            "language_names": LANGUAGE_NAMES,
            "current_language": current_language(),
            "translate_message": forms.translate_message,
        }
