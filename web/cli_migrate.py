"""Admin commands of the procflow command line: instance migration (procflow instance migrate)."""

from __future__ import annotations
