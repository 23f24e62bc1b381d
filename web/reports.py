"""Reports (/reports): customer contacts, direct-procurement register, impact index, goal fulfilment."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__)
