"""Throttling of failed sign-ins, per (username, client address) and per client address.

A fixed "N failures lock the account" rule lets anyone lock anyone out. Here
failures count per pair of username and client address: after
``FREE_FAILURES`` wrong passwords for that pair, each further attempt from
that address must wait ``2**k`` seconds (k grows with every failure), at most
``MAX_DELAY``. The real user signing in from another address is not affected.
A coarser counter per address alone (``FREE_FAILURES_PER_ADDRESS``, same
growth) stops one client spraying many usernames.

The counters live in the database (:class:`~engine.models.SignInFailures`) so
that every web process and host sees the same ones. A counter is forgotten
``FORGET_AFTER`` after its last failure, and the pair's counter on a
successful sign-in.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.exc
import sqlalchemy.orm as so

from .db import is_postgresql
from .errors import SignInThrottledError
from .models import SignInFailures, utcnow

FREE_FAILURES = 3
FREE_FAILURES_PER_ADDRESS = 30
MAX_DELAY = dt.timedelta(minutes=5)
FORGET_AFTER = dt.timedelta(hours=24)

_ANY_USER = ""


def _username_key(username: str) -> str:
    return username.strip().lower()[:120]


def delay_after(failures: int, free: int = FREE_FAILURES) -> dt.timedelta:
    """Return how long to wait after *failures* failed attempts: none up to *free*, then 2, 4, 8 ... s."""
    if failures < free:
        return dt.timedelta(0)
    exponent = failures - free + 1
    # Past 2**9 s the cap has long been reached; don't build huge numbers.
    return min(dt.timedelta(seconds=2 ** min(exponent, 9)), MAX_DELAY)


def _row(session: so.Session, username: str, address: str, *, lock: bool = False) -> SignInFailures | None:
    stmt = sa.select(SignInFailures).where(
        SignInFailures.username == username, SignInFailures.address == address[:64]
    )
    if lock and is_postgresql(session):
        # Concurrent attempts on one pair (several web processes) queue here, so
        # each sees the failures counted before it.
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def _retry_at(row: SignInFailures | None, free: int, now: dt.datetime) -> dt.datetime | None:
    if row is None or now - row.last_failure_at > FORGET_AFTER:
        return None
    retry_at = row.last_failure_at + delay_after(row.failures, free)
    return retry_at if retry_at > now else None


def check_sign_in_allowed(session: so.Session, *, username: str, address: str) -> None:
    """Refuse a sign-in attempt that comes before the wait its earlier failures imposed.

    Call before checking the password, so that a throttled client learns nothing
    about it. Runs in the caller's transaction (on PostgreSQL it locks the pair's
    counter until that transaction ends).

    :raises SignInThrottledError: naming when the next attempt is accepted.
    """
    now = utcnow()
    key = _username_key(username)
    pair = _row(session, key, address, lock=True) if key != _ANY_USER else None
    for row, free, whom in (
        (pair, FREE_FAILURES, f"user {key!r} from {address}"),
        (_row(session, _ANY_USER, address), FREE_FAILURES_PER_ADDRESS, f"address {address}"),
    ):
        retry_at = _retry_at(row, free, now)
        if retry_at is not None:
            raise SignInThrottledError(
                f"Too many failed sign-ins for {whom}; next attempt at {retry_at.isoformat()}",
                retry_at=retry_at,
            )


def _count(session: so.Session, username: str, address: str, now: dt.datetime) -> None:
    row = _row(session, username, address)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    SignInFailures(username=username, address=address[:64], failures=1, last_failure_at=now)
                )
            return
        except sqlalchemy.exc.IntegrityError:
            # Another process counted the first failure at the same moment: its row is there now.
            row = session.scalars(
                sa.select(SignInFailures).where(
                    SignInFailures.username == username, SignInFailures.address == address[:64]
                )
            ).one()
    if now - row.last_failure_at > FORGET_AFTER:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now


def record_sign_in_failure(session: so.Session, *, username: str, address: str) -> None:
    """Count a failed sign-in for (*username*, *address*) and for *address*, and forget stale counters.

    Runs in the caller's transaction, which must be committed although the
    sign-in failed.
    """
    now = utcnow()
    if _username_key(username) != _ANY_USER:
        _count(session, _username_key(username), address, now)
    _count(session, _ANY_USER, address, now)
    session.execute(sa.delete(SignInFailures).where(SignInFailures.last_failure_at < now - FORGET_AFTER))
    session.flush()


def record_sign_in_success(session: so.Session, *, username: str, address: str) -> None:
    """Forget the failures of (*username*, *address*) after a successful sign-in (the address's stay).

    Runs in the caller's transaction.
    """
    session.execute(
        sa.delete(SignInFailures).where(
            SignInFailures.username == _username_key(username), SignInFailures.address == address[:64]
        )
    )
