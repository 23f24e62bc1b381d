"""The documentation record of a direct procurement: its own page, printable, and as PDF."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("records", __name__)
