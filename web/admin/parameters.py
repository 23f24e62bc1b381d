"""Admin console: parameters (being built)."""

from __future__ import annotations
