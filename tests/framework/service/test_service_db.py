"""The database: Alembic's migrations build exactly the schema the ORM models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.service.db import make_engine, migrate
from grader.service.tables import Base, Person, Role

pytestmark = pytest.mark.service


# SQLite cannot reflect an index on an expression (lower(pseudonym)), so autogenerate skips it there, with these
# warnings; the test below checks what that index does instead.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_the_migrations_build_the_models_schema(tmp_path: Path, database_url: str | None) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'service.db'}")
    migrate(engine)
    migrate(engine)  # every start runs it; a second run changes nothing
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_the_database_keeps_pseudonyms_unique_in_any_case(tmp_path: Path, database_url: str | None) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'service.db'}")
    migrate(engine)
    with Session(engine) as db:
        for login, pseudonym in (("s1", "Night Owl"), ("s2", "night OWL")):
            db.add(Person(login=login, name=login, email="", role=Role.STUDENT, token_id=login, token_hash="",
                          pseudonym=pseudonym))
        with pytest.raises(IntegrityError):
            db.commit()
    engine.dispose()
