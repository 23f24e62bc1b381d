"""The migrations build exactly the schema the models describe, on the suite's database."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import engine


def test_migrated_schema_has_no_difference_from_the_models(db_engine: sa.Engine) -> None:
    with db_engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), engine.models.Base.metadata)
    assert differences == []
