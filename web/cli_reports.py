"""``procflow report ...``: the reports from the command line (JSON or CSV)."""

from __future__ import annotations
