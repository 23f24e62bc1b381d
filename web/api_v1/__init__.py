"""The REST API under /api/v1 (flask-smorest, marshmallow schemas, OpenAPI 3.1)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
