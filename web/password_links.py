"""Setting a password through the one-time link an admin made (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("password_links", __name__)
