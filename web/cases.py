"""The case list (/cases): my cases, and every case of the organisation for admins and auditors."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("cases", __name__)
