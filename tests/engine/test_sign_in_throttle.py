"""Throttling of failed sign-ins: growing, capped delays per (username, address), stale counters forgotten."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy.orm as so
import time_machine

import engine
from engine.sign_in_throttle import FORGET_AFTER, MAX_DELAY, delay_after

T0 = dt.datetime(2027, 2, 1, 8, 0, tzinfo=dt.UTC)


def test_the_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    assert [delay_after(n).total_seconds() for n in range(7)] == [0, 0, 0, 2, 4, 8, 16]
    assert delay_after(1000) == MAX_DELAY == dt.timedelta(minutes=5)


def test_counters_are_per_pair_and_forgotten_after_a_day(
    session_factory: so.sessionmaker[so.Session],
) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        with session_factory.begin() as s:
            for _ in range(3):
                engine.record_sign_in_failure(s, username=" Anna ", address="198.51.100.7")
        with session_factory() as s:
            pair = r"user 'anna' from 198\.51\.100\.7"
            with pytest.raises(engine.SignInThrottledError, match=pair) as refused:
                engine.check_sign_in_allowed(s, username="ANNA", address="198.51.100.7")
            assert refused.value.retry_at == T0 + dt.timedelta(seconds=2)
            engine.check_sign_in_allowed(s, username="anna", address="203.0.113.9")
            engine.check_sign_in_allowed(s, username="bert", address="198.51.100.7")
        traveller.shift(FORGET_AFTER + dt.timedelta(seconds=1))
        with session_factory.begin() as s:
            engine.record_sign_in_failure(s, username="bert", address="203.0.113.9")
            remaining = s.query(engine.models.SignInFailures).all()
        assert {(row.username, row.address) for row in remaining} == {
            ("bert", "203.0.113.9"),
            ("", "203.0.113.9"),
        }
