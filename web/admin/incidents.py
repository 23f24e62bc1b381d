"""Admin console: incidents (being built)."""

from __future__ import annotations
