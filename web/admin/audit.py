"""Admin console: audit (being built)."""

from __future__ import annotations
