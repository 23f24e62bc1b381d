"""Admin console: the organisation's settings (name, number, country, currency, time zone, default language).

Scripts see the set ones as parameters (``organisation_name``,
``organisation_number``, ``jurisdiction``, ``currency``, ``time_zone``); the
default language is that of the pages and e-mails of users who chose none.
"""

from __future__ import annotations

from typing import Any

from flask import g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

import engine

from ..db import db_session
from ..i18n import LANGUAGE_NAMES, current_language
from . import bp


def _problem(setting: str, value: str) -> Any:
    """The page's message for a refused *value* of *setting*, in the user's language."""
    if setting == "name":
        if not value.strip():
            return _("Enter the organisation's name.")
        return _("The name is too long: at most %(count)s characters.", count=engine.org_settings.MAX_NAME)
    if setting == "organisation_number":
        return _(
            "The organisation number is too long: at most %(count)s characters.",
            count=engine.org_settings.MAX_ORGANISATION_NUMBER,
        )
    if setting == "country":
        return _(
            "“%(value)s” is not a country code of ISO 3166 (two letters, such as SE or FI).", value=value
        )
    if setting == "currency":
        return _(
            "“%(value)s” is not a currency code of ISO 4217 (three letters, such as SEK or EUR).", value=value
        )
    if setting == "time_zone":
        return _(
            "“%(value)s” is not a time zone name (such as Europe/Stockholm or Europe/Helsinki).", value=value
        )
    if setting == "default_language":
        return _("Choose Swedish, Finnish or English.")
    return _("This setting cannot be changed here.")


def _render(values: dict[str, Any], errors: dict[str, str]) -> str:
    language = current_language()
    return render_template(
        "admin/settings.html",
        values=values,
        errors=errors,
        parameters=engine.org_settings.SETTING_PARAMETERS,
        countries=engine.org_settings.country_choices(language),
        currencies=engine.org_settings.currency_choices(language),
        time_zones=sorted(engine.org_settings.time_zone_names()),
        languages=LANGUAGE_NAMES,
        done=request.args.get("done") == "1",
    )


@bp.route("/settings", methods=["GET"])
def settings() -> str:
    """Show the organisation's settings in a form."""
    return _render(engine.get_settings(g.organisation).as_dict(), {})


@bp.route("/settings", methods=["POST"])
def settings_save() -> Response | tuple[str, int]:
    """Store the organisation's settings; each change is in the audit log with its old and new value.

    Form fields: ``name``, ``organisation_number``, ``country`` (ISO 3166
    alpha-2), ``currency`` (ISO 4217), ``time_zone`` (IANA), ``default_language``
    (``sv``, ``fi``, ``en``); empty: not set (the name is required).

    :raises BadRequest: (400) the CSRF token is missing or wrong.
    :returns: a redirect to the page with ``?done=1``; 422 and the form with a
        message beside each refused field, nothing stored.
    """
    values = {setting: request.form.get(setting, "") for setting in engine.org_settings.SETTINGS}
    try:
        engine.update_settings(db_session(), g.organisation, values, actor=g.user.username)
    except engine.FormValidationError as exc:
        errors = {setting: _problem(setting, str(values.get(setting, ""))) for setting in exc.errors}
        return _render(values, errors), 422
    return redirect(url_for("admin.settings", done="1"), code=303)
