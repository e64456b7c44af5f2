"""The database: Alembic's migrations build exactly the schema the ORM models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import uuid
from multiprocessing.synchronize import Barrier
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.service.db import MIGRATIONS_DIR, make_engine, migrate, schema_revision
from grader.service.tables import Base, Person, Role

pytestmark = pytest.mark.service


# SQLite cannot reflect an index on an expression (lower(pseudonym)), so autogenerate skips it there, with these
# warnings; the test below checks what that index does instead.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_the_migrations_build_the_models_schema(tmp_path: Path, database_url: str | None) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'service.db'}")
    migrate(engine)
    migrate(engine)  # `grader db upgrade` and every `grader serve` start run it; a second run changes nothing
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


BEFORE_METRIC_VALUE = (
    "INSERT INTO people (id, login, name, email, role, token_id, token_hash, created_at) "
    "VALUES (1, 's1', 'Ann', '', 'student', 't1', '', '2026-12-01 10:00:00+00:00')",
    "INSERT INTO submissions (id, person_id, assignment_id, filename, sha256, stored_name, size, submitted_at) "
    "VALUES (1, 1, 'a4_autoencoder', 'autoencoder.py', '', 'x', 1, '2026-12-01 10:00:00+00:00')",
    "INSERT INTO gradings (id, submission_id, state, stage, requested_at, total, max_total, accuracy) "
    "VALUES (1, 1, 'done', 'graded', '2026-12-01 10:00:00+00:00', 100, 100, 0.0028)",
)


def test_a_grading_keeps_its_metric_through_the_accuracy_columns_rename(tmp_path: Path,
                                                                         database_url: str | None) -> None:
    """Revision 0006 renames gradings.accuracy to metric_value (it holds an error too): a grading recorded under
    0005 keeps its value."""
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'service.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        for statement in BEFORE_METRIC_VALUE:
            connection.execute(text(statement))
    migrate(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT metric_value FROM gradings")).scalars().all() == [0.0028]
    engine.dispose()


def _upgrade_at_once(url: str, start: Barrier) -> None:
    """One process's `grader db upgrade`: its engine made, then the migration started with the other process's."""
    engine = make_engine(url)
    start.wait(timeout=60)
    migrate(engine)


@pytest.mark.postgres
def test_two_upgrades_at_once_both_succeed_and_leave_one_schema_version(postgres_server: str) -> None:
    url = f"{postgres_server}/t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.replace("postgresql+psycopg", "postgresql") + "/postgres",
                         autocommit=True) as server:
        server.execute(f"CREATE DATABASE {url.rsplit('/', 1)[1]}")
    fork = multiprocessing.get_context("fork")  # each process runs Alembic, which keeps global state, on its own
    start = fork.Barrier(2)
    upgrades = [fork.Process(target=_upgrade_at_once, args=(url, start)) for _ in range(2)]
    for process in upgrades:
        process.start()
    for process in upgrades:
        process.join(timeout=120)
    assert [process.exitcode for process in upgrades] == [0, 0]
    engine = make_engine(url)
    current, head = schema_revision(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert current == head and compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
