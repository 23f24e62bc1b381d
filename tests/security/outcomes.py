"""Which wall stopped which payload: collected by the corpus tests, printed after the run with ``-v``."""

from __future__ import annotations

from dataclasses import dataclass

# What only the evaluator processes (the second wall) say: their kill, their limits.
_SECOND_WALL = ("evaluator was stopped", "MemoryError", "evaluator's limits", "CPU time limit")


@dataclass(frozen=True)
class Outcome:
    place: str
    stage: str  # "deploy", "api" (refused by the operation) or the instance's status
    wall: str
    message: str
    seconds: float


def wall_of(stage: str, message: str) -> str:
    """Name what stopped a payload, from where and how it was refused."""
    if stage == "deploy":
        return "deploy checks"
    if any(sign in message for sign in _SECOND_WALL):
        return "second wall (evaluator limits)"
    if stage == "api" or ": timer: " in message:
        return "engine limits (operation refused)"
    if stage != "error":
        return "NOT REFUSED (the instance runs on)"
    if "time limit" in message:
        return "first wall (deadline tick)"
    return "first wall (RestrictedPython)"


OUTCOMES: dict[str, Outcome] = {}
