"""Configuration of the web app: defaults, then ``PROCFLOW_*`` environment variables, then a mapping.

Every default below can be overridden by an environment variable named
``PROCFLOW_`` plus the key (``PROCFLOW_SECRET_KEY``, ``PROCFLOW_TIMEZONE``);
the value is parsed as the default's type. ``PROCFLOW_DATABASE_URL`` is read
by the engine (:func:`engine.database_url`) when ``DATABASE_URL`` is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .sso_config import OIDCConfigurationError, parse_oidc_providers

ENV_PREFIX = "PROCFLOW_"

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "LANGUAGES": ("en", "sv", "fi"),
    "BABEL_DEFAULT_LOCALE": "en",
    "TIMEZONE": "Europe/Stockholm",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "procflow_session",
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,
    "MAX_CONTENT_LENGTH": 20 * 1024 * 1024,
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    "INBOX_PAGE_SIZE": 20,
    # The OpenID Connect providers to sign in with: JSON, or @/path/file.json (web/sso_config.py).
    "OIDC_PROVIDERS": "",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigurationError(RuntimeError):
    """The web app cannot start with this configuration."""


def _parse(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise ConfigurationError(f"{ENV_PREFIX}{key} must be true or false, not {raw!r}")
        return lowered in _TRUE
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{ENV_PREFIX}{key} must be a whole number, not {raw!r}") from exc
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return the configuration: defaults, then ``PROCFLOW_*`` variables of *environ*, then *overrides*.

    :raises ConfigurationError: a variable cannot be parsed, no secret key is set
        outside tests, or an OpenID Connect provider is misconfigured.
    """
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        raw = environ.get(ENV_PREFIX + key)
        if raw is not None:
            config[key] = _parse(key, raw, default)
    config.update(overrides or {})
    try:
        config["OIDC_PROVIDERS"] = parse_oidc_providers(config.get("OIDC_PROVIDERS"))
    except OIDCConfigurationError as exc:
        raise ConfigurationError(str(exc)) from exc
    if not config.get("SECRET_KEY") and not config.get("TESTING"):
        raise ConfigurationError(
            f"No secret key: set {ENV_PREFIX}SECRET_KEY to a long random value "
            '(python -c "import secrets; print(secrets.token_hex(32))")'
        )
    return config
