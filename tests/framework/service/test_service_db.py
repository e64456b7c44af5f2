"""The database: Alembic's migrations build exactly the schema the ORM models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from grader.service.db import make_engine, migrate
from grader.service.tables import Base

pytestmark = pytest.mark.service


def test_the_migrations_build_the_models_schema(tmp_path: Path, database_url: str | None) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'service.db'}")
    migrate(engine)
    migrate(engine)  # every start runs it; a second run changes nothing
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
