"""The database: engine, sessions, migrations and the readiness check.

SQLite (a file under ``TRUST_HOME``) is the embedded default; PostgreSQL through psycopg 3
(``postgresql+psycopg://...``) is for production. The schema is created only by the
Alembic migrations in ``trust/migrations``, run by :func:`upgrade`.
"""

import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
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
    engine = create_engine(url, connect_args={"factory": _QueuedConnection})

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
        if connection.get_execution_options().get(_READING):
            connection.exec_driver_sql("BEGIN")
            return
        connection.connection.dbapi_connection.queue_for_write()
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes_while_reading(connection, _cursor, statement: str, *_):
        if connection.get_execution_options().get(_READING) and \
                statement.lstrip()[:6].upper().rstrip() not in ("SELECT", "BEGIN", "PRAGMA"):
            raise StorageError(f"a write in a reading transaction (end_reading first): {statement[:60]}",
                               "只读事务中不能写入")

    return engine


_READING = "trust_reading"


def begin_reading(session: Session) -> None:
    """Begin ``session``'s transaction as a reader; call it before the session's first
    statement, and :func:`end_reading` before its first write.

    On SQLite a reader neither queues for the write lock nor takes it: in WAL mode it reads
    a snapshot while one writer works. Every other transaction holds the write lock from
    its BEGIN, so a request that reads for a while before it writes (client authentication,
    then a token) would keep every other request waiting meanwhile. A write inside a
    reading transaction is refused (it could fail on a stale snapshot). PostgreSQL is not
    affected."""
    session.connection(execution_options={_READING: True})


def is_reading(session: Session) -> bool:
    """Whether ``session`` is in a reading transaction (begin_reading)."""
    return session.in_transaction() and bool(session.connection().get_execution_options().get(_READING))


def end_reading(session: Session) -> None:
    """End the session's reading transaction, if it is in one: the next statement begins a
    writer's transaction."""
    if is_reading(session):
        session.commit()


class GroupCommit:
    """Small writes of many requests in one transaction and one commit (group commit).

    :meth:`run` hands ``work`` (a function of a Session that writes and returns quickly)
    to this process's committer thread and returns ``work``'s result once the transaction
    that ran it has committed, so whatever the caller then acknowledges is durable; or
    raises what ``work`` raised, its writes undone (a savepoint each) and the others' kept.
    While one group commits, the next gathers: one fsync and one turn of the write lock
    for up to ``max_group`` requests, where each used to take both (#18: SQLite's fsync
    under the write lock was most of a token's time under load)."""

    def __init__(self, sessions: sessionmaker, *, max_group: int = 64):
        self.sessions, self.max_group = sessions, max_group
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.SimpleQueue | None = None

    def run(self, work: Callable[[Session], object]):
        future: Future = Future()
        self._queue_of_this_process().put((work, future))
        return future.result()

    def _queue_of_this_process(self) -> queue.SimpleQueue:
        """The queue and thread of this process (made on first use: gunicorn forks workers
        after the application is built, and a thread does not survive a fork)."""
        with self._lock:
            if self._pid != os.getpid() or self._queue is None:
                self._pid, self._queue = os.getpid(), queue.SimpleQueue()
                threading.Thread(target=self._commit_groups, args=(self._queue,), name="group-commit",
                                 daemon=True).start()
            return self._queue

    def _commit_groups(self, waiting: queue.SimpleQueue) -> None:
        while True:
            group = [waiting.get()]
            while len(group) < self.max_group:
                try:
                    group.append(waiting.get_nowait())
                except queue.Empty:
                    break
            self._commit(group)

    def _commit(self, group: list[tuple[Callable, Future]]) -> None:
        outcomes = []
        try:
            with self.sessions() as session:
                for work, _ in group:
                    try:
                        with session.begin_nested():
                            outcomes.append((True, work(session)))
                    except Exception as error:  # this request's failure, not the group's
                        outcomes.append((False, error))
                session.commit()
        except BaseException as error:  # the commit failed: nothing of the group is kept
            for _, future in group:
                future.set_exception(error)
            return
        for (ok, value), (_, future) in zip(outcomes, group, strict=True):
            future.set_result(value) if ok else future.set_exception(value)


_queued = threading.local()


class _QueuedConnection(sqlite3.Connection):
    """A pysqlite connection whose transactions first queue on an exclusive ``flock`` of a
    file beside the database, held until COMMIT or ROLLBACK.

    Why: a writer that finds SQLite's lock taken sleeps in SQLite's busy handler (1, 2, 5,
    10, … 100 ms) and polls again; with a few threads in each of two workers most of the
    time went in those sleeps (CPU 55 % busy under token load, #18). A blocked ``flock``
    wakes the moment the holder releases it. A thread that already holds the queue on
    another connection does not queue again (it would wait on itself); SQLite's busy
    timeout then applies as before. In-memory databases do not queue."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._lock_path = None if str(database) in ("", ":memory:") or str(database).startswith("file:") \
            else f"{database}.writers"
        self._lock_fd: int | None = None
        self._holding = False

    def queue_for_write(self) -> None:
        if self._lock_path is None or self._holding or getattr(_queued, "depth", 0):
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holding = True
        _queued.depth = 1

    def _leave_queue(self) -> None:
        if self._holding and self._lock_fd is not None:
            self._holding = False
            _queued.depth = 0
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error:
            # A COMMIT refused (a deferred constraint, a full disk) leaves SQLite's
            # transaction open, and SQLAlchemy's pool, which saw the commit tried, does not
            # roll back on return: the next BEGIN would fail. End it, as PostgreSQL does.
            if self.in_transaction:
                try:
                    super().rollback()
                except sqlite3.Error:
                    pass  # the connection is broken; SQLAlchemy invalidates it
            raise
        finally:
            self._leave_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave_queue()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._leave_queue()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


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
