"""Admin commands of the procflow command line: users and groups.

``procflow user deactivate``, ``procflow group add``.
"""

from __future__ import annotations
