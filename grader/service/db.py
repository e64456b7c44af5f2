"""The database: an engine for SQLite (default) or PostgreSQL, migrated to the newest schema with Alembic by
`grader db upgrade` and at the start of `grader serve`; every other command checks the schema is the newest."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from grader.errors import GraderError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_MS = 30_000  # concurrent uploads wait for SQLite's write lock instead of failing
MIGRATION_LOCK = 0x6772616465720001  # PostgreSQL advisory lock key of the schema's migrations ("grader", 1)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL for concurrent readers, durable commits, enforced foreign keys, waiting on a busy lock."""
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={SQLITE_BUSY_MS}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; a bad URL or unreachable server is one GraderError sentence."""
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ModuleNotFoundError) as exc:
        raise GraderError(f"The database URL {url!r} is not usable: {exc}.") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (`alembic upgrade head`); a second run changes nothing.

    On PostgreSQL under a transaction-level advisory lock: processes that share the database and start together
    migrate one after another, and the later ones find the schema current. SQLite's write lock does the same."""
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise GraderError(f"Cannot reach the database {_shown(engine)}: {exc.orig}.") from None


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """The database's migration and the newest one this grader has."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise GraderError(f"Cannot reach the database {_shown(engine)}: {exc.orig}.") from None
    return current, str(head)


def upgrade_database(url: str) -> sessionmaker[Session]:
    """Migrate the database to the newest schema (`grader db upgrade`, and `grader serve` at start); its sessions."""
    engine = make_engine(url)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


def open_database(url: str) -> sessionmaker[Session]:
    """The session factory of a database at the newest schema; else one sentence saying to upgrade it."""
    engine = make_engine(url)
    current, head = schema_revision(engine)
    if current != head:
        found = "no schema yet" if current is None else f"schema {current}"
        raise GraderError(f"The database {_shown(engine)} has {found}, and this grader needs schema {head}: run "
                          "`grader db upgrade` with the same --course-dir or --database first.")
    return sessionmaker(engine, expire_on_commit=False)


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string()  # with the password hidden
