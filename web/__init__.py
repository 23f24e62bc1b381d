"""The Procflow web app: sign-in, task inbox and forms, start page, instance pages, JSON API.

``create_app()`` builds the app from defaults, ``PROCFLOW_*`` environment
variables and an optional mapping (tests pass one); see :mod:`web.config`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from . import (
    admin,
    api,
    api_v1,
    auth,
    cases,
    db,
    errors,
    i18n,
    instances,
    logging_setup,
    ops,
    password_links,
    processes,
    records,
    reports,
    sso,
    studio,
    tasks,
    token_settings,
    user_settings,
)
from .config import ConfigurationError, load_config
from .security import security_headers

__all__ = ["ConfigurationError", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the web app.

    :param config: settings that win over defaults and environment variables
        (tests pass ``TESTING``, ``DATABASE_URL`` and so on).
    :raises ConfigurationError: no ``SECRET_KEY`` outside tests, or a malformed variable.
    """
    settings = load_config(config)
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = secrets.token_hex(32)  # tests only: load_config refuses this elsewhere
    app = Flask(__name__)
    app.config.update(settings)
    logging_setup.init_app(app)  # first: the request id is there for every other hook's log lines
    CSRFProtect(app)
    db.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    app.before_request(auth.load_signed_in_user)
    app.after_request(security_headers)
    app.register_blueprint(auth.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(processes.bp)
    app.register_blueprint(instances.bp)
    app.register_blueprint(user_settings.bp)
    app.register_blueprint(token_settings.bp)
    app.register_blueprint(studio.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(password_links.bp)
    app.register_blueprint(sso.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(records.bp)
    app.register_blueprint(ops.bp)
    api_v1.init_app(app)
    return app
