"""Studio views: lint (see web/studio/__init__.py)."""

from __future__ import annotations

from . import bp  # noqa: F401
