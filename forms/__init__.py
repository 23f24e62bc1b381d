"""Human-task forms: JSON Schema definitions, validation and rendering."""

from __future__ import annotations

from .validation import validate_submission

__all__ = ["validate_submission"]
