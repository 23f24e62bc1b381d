"""A PostgreSQL database for a benchmark: created if missing, its tables dropped and migrated afresh."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

import engine
from engine.models import Base


def fresh_database(url: str) -> sa.Engine:
    """Return an engine on *url* with an empty, migrated schema (every table in it is dropped!).

    The database is created first when it does not exist (through the server's
    ``postgres`` database), so ``make bench`` needs nothing set up by hand.
    """
    target = make_url(url)
    maintenance = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with maintenance.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    maintenance.dispose()
    db = engine.create_db_engine(url)
    with db.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.upgrade_database(db)
    return db
