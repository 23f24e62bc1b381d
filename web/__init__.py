"""The Procflow web app: sign-in, task inbox and forms, start page, instance pages, JSON API.

``create_app()`` builds the app from defaults, ``PROCFLOW_*`` environment
variables and an optional mapping (tests pass one); see :mod:`web.config`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from . import api, auth, db, errors, i18n, instances, processes, tasks
from .config import ConfigurationError, load_config

__all__ = ["ConfigurationError", "create_app"]

# Content-Security-Policy: every script is a file of ours; bpmn-js sets inline styles on the SVG.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def _rate_limit_login(app: Flask) -> None:
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        default_limits=[],
        headers_enabled=True,
    )
    # Only failed attempts count, per client address and per username tried.
    view: Any = app.view_functions["auth.login"]
    for limit, key in (
        (app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"], get_remote_address),
        (app.config["LOGIN_RATE_LIMIT_PER_USERNAME"], auth.attempted_username),
    ):
        view = limiter.limit(limit, key_func=key, methods=["POST"], deduct_when=auth.login_failed)(view)
    app.view_functions["auth.login"] = view


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
    CSRFProtect(app)
    db.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    app.before_request(auth.load_signed_in_user)
    app.after_request(_security_headers)
    app.register_blueprint(auth.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(processes.bp)
    app.register_blueprint(instances.bp)
    app.register_blueprint(api.bp)
    _rate_limit_login(app)
    return app
