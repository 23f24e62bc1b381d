"""``procflow demo history``: a year of realistic cases run through the engine."""

from __future__ import annotations
