"""The web fixtures (``app``, ``client``, ``users``, ``deployed`` ...) for the operations tests."""

from __future__ import annotations

from tests.web.conftest import app, client, deployed, login_as, password_hash, start, users

__all__ = ["app", "client", "deployed", "login_as", "password_hash", "start", "users"]
