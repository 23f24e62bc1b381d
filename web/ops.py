"""Operations endpoints: /healthz, /readyz and /metrics."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ops", __name__)
