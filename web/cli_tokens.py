"""``procflow token ...``: personal API tokens and service accounts."""

from __future__ import annotations
