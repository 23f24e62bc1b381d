"""Admin commands of the procflow command line: dated parameters (procflow param set, procflow param list)."""

from __future__ import annotations
