"""spiff-arena's script helpers, over data the engine computes and sends along with the script.

Models made in spiff-arena call ``get_current_user()``,
``get_process_initiator_user()``, ``get_group_members(group)``,
``get_localtime(datetime, timezone)`` and ``get_toplevel_process_info()`` in
their scripts. Here they answer from Procflow's own data, and return what
spiff-arena returns: a user is a dict with ``id``, ``username``, ``email``,
``display_name`` (and spiff-arena's ``service``, ``service_id``,
``created_at_in_seconds``); group members are a list of usernames; the
process info is ``{"process_instance_id", "process_model_identifier"}``.

Scripts run in an evaluator process without database access (see
:mod:`engine._evaluator`). So the caller computes each helper's data, only
when a script names the helper, in its own transaction and only from the
instance's organisation (:mod:`engine.script_context`), and sends it as plain
data with the request: a :class:`ScriptHelper` in the caller becomes a
:class:`BoundHelper` there. Nothing in the evaluator can ask for more.

This module imports nothing of the engine's database layer: the evaluator imports it.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UNSET = object()


def _copy(data: Any) -> Any:
    return copy.deepcopy(data)  # a script changing the answer must not change the next one


def _group_members(data: dict[str, list[str]], group_key: Any = _UNSET) -> list[str]:
    if group_key is _UNSET:
        raise TypeError("get_group_members() needs the group's key, e.g. get_group_members('approvers')")
    if not isinstance(group_key, str) or group_key not in data:
        raise LookupError(f"get_group_members: this organisation has no group {group_key!r}")
    return list(data[group_key])


def _localtime(time_zone: str, datetime: Any = _UNSET, timezone: Any = None) -> dt.datetime:
    if datetime is _UNSET:
        raise TypeError("get_localtime() needs the datetime to convert")
    value = datetime
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"get_localtime: {datetime!r} is not an ISO 8601 date and time") from None
    if not isinstance(value, dt.datetime):
        raise TypeError(f"get_localtime: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # the engine's times are UTC
    name = timezone if timezone is not None else time_zone
    try:
        zone = ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"get_localtime: unknown time zone {name!r}") from None
    return value.astimezone(zone)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "get_current_user": lambda data: _copy(data),
    "get_process_initiator_user": lambda data: _copy(data),
    "get_group_members": _group_members,
    "get_localtime": _localtime,
    "get_toplevel_process_info": lambda data: _copy(data),
}
SPIFF_ARENA_HELPERS: frozenset[str] = frozenset(_FUNCTIONS)


class BoundHelper:
    """A helper as the evaluator holds it: its name and the data the caller sent."""

    __slots__ = ("_data", "_name")

    def __init__(self, name: str, data: Any) -> None:
        self._name = name
        self._data = data

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _FUNCTIONS[self._name](self._data, *args, **kwargs)

    def __getstate__(self) -> tuple[str, Any]:
        return (self._name, self._data)

    def __setstate__(self, state: tuple[str, Any]) -> None:
        self._name, self._data = state

    def __repr__(self) -> str:
        return f"<helper {self._name}>"


class ScriptHelper:
    """A helper as the caller holds it: *load* computes its data on first use (once per operation).

    :meth:`shipped` is what goes to the evaluator; calling it here (a
    sandbox without an evaluator) gives the same answer.
    """

    __slots__ = ("_load", "_loaded", "_name")

    def __init__(self, name: str, load: Callable[[], Any]) -> None:
        if name not in _FUNCTIONS:
            raise ValueError(f"no script helper {name!r}")
        self._name = name
        self._load = load
        self._loaded: Any = _UNSET

    def shipped(self) -> BoundHelper:
        """Return the helper with its data, as plain data for the evaluator."""
        if self._loaded is _UNSET:
            self._loaded = self._load()
        return BoundHelper(self._name, self._loaded)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.shipped()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<helper {self._name}>"
