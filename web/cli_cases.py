"""``procflow cases``: the case list from the command line."""

from __future__ import annotations
