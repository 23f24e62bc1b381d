"""Admin console: migrations (being built)."""

from __future__ import annotations
