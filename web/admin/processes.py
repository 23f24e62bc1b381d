"""Admin console: processes (being built)."""

from __future__ import annotations
