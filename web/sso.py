"""Single sign-on with OpenID Connect (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sso", __name__)
