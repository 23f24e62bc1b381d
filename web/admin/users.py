"""Admin console: users (being built)."""

from __future__ import annotations
