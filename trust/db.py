"""The database: engine, sessions, migrations and the readiness check.

SQLite (a file under ``TRUST_HOME``) is the embedded default; PostgreSQL through psycopg 3
(``postgresql+psycopg://...``) is for production. The schema is created only by the
Alembic migrations in ``trust/migrations``, run by :func:`upgrade`.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from trust.errors import StorageError

MIGRATIONS = Path(__file__).parent / "migrations"
PG_CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_MS = 30_000


class Base(DeclarativeBase):
    """Every table of the service is declared on ``Base.metadata``."""


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``. ``create=False``: an SQLite database that does not exist yet is
    an error (StorageError) rather than an empty file and directory made on the way."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not create and database not in (None, "", ":memory:") and not Path(database).exists():
            raise StorageError(f"there is no database at {database}: run `trustctl init` first",
                               f"{database} 处没有数据库，请先运行 trustctl init")
        return _sqlite_engine(url, database)
    connect_args = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the database directory: {e}",
                               f"无法创建数据库目录：{e}") from None
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control away from pysqlite (it would emit a deferred BEGIN
        # only before the first write); _on_begin below emits ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # A deferred transaction that reads and then writes must upgrade its read lock to
        # a write lock; if another writer committed in between, SQLite fails at once with
        # SQLITE_BUSY (waiting could not help: the snapshot is stale), whatever the busy
        # timeout. Taking the write lock at BEGIN makes a second writer wait on the busy
        # timeout instead, so concurrent writers queue rather than fail. The price is that
        # transactions are serialised, which suits the single-host embedded mode.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Run the migrations up to head, in one transaction (the engine's connection is
    handed to ``migrations/env.py`` through the Alembic config's attributes)."""
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as e:
        raise _unreachable(e) from None


def is_initialised(engine: Engine) -> bool:
    """True when the database has been migrated to the head revision of this code."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as e:
        raise _unreachable(e) from None
    return current == head


def check_ready(engine: Engine) -> None:
    """Raise StorageError unless the database answers and is migrated (for /readyz)."""
    if not is_initialised(engine):
        raise StorageError("the database is not initialised or not migrated to the latest "
                           "schema; run `trustctl init`",
                           "数据库尚未初始化或未迁移到最新版本，请运行 trustctl init")


def _unreachable(e: DBAPIError) -> StorageError:
    lines = str(e.orig).strip().splitlines()
    reason = lines[0] if lines else type(e.orig).__name__
    return StorageError(f"the database cannot be reached or read: {reason}",
                        f"无法连接或读取数据库：{reason}")
