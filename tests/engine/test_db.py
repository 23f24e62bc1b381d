"""Pooled PostgreSQL connections: a dead one is replaced before use, not failed on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import engine


@pytest.mark.postgres
def test_a_connection_dropped_while_idle_is_replaced_before_use(db_url: str) -> None:
    db = engine.create_db_engine(db_url, ping_after_idle=0)
    admin = engine.create_db_engine(db_url)
    try:
        with db.connect() as conn:
            first = conn.scalar(sa.text("SELECT pg_backend_pid()"))
        # The server drops the idle pooled connection (a restart or an idle timeout would).
        with admin.begin() as conn:
            assert conn.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with db.connect() as conn:
            second = conn.scalar(sa.text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        db.dispose()
        admin.dispose()
