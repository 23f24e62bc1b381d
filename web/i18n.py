"""Swedish, Finnish and English through Flask-Babel; the chosen language lives in the session.

Without a choice the browser's ``Accept-Language`` decides. Catalogues are in
``web/translations`` (``make translations`` re-extracts and compiles them).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale

import forms

LANGUAGE_NAMES = {"en": "English", "sv": "Svenska", "fi": "Suomi"}


def select_locale() -> str | None:
    """Return the session's language, else the best match of the browser's languages."""
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    """Return the language code of the current request (``sv``, ``fi``, ``en``)."""
    locale = get_locale()
    return locale.language if locale is not None else "en"


def _select_timezone() -> str:
    return str(current_app.config["TIMEZONE"])


def init_app(app: Flask) -> None:
    """Install Flask-Babel with the session/browser language selector and the configured timezone."""
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["TIMEZONE"])
    Babel(app, locale_selector=select_locale, timezone_selector=_select_timezone)

    @app.context_processor
    def _languages() -> dict[str, Any]:
        return {
            "language_names": LANGUAGE_NAMES,
            "current_language": current_language(),
            "translate_message": forms.translate_message,
        }
