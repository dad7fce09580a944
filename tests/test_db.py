import multiprocessing
import socket
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

import ca.models  # noqa: F401  registers every table of the service on Base.metadata
import hsm.dual_control
import hsm.models  # noqa: F401
import identity.client_models
import identity.models
import identity.token_models  # noqa: F401
import licence.models  # noqa: F401
import seal.models  # noqa: F401
import trust.truststore  # noqa: F401
from trust import audit
from trust.db import (
    Base,
    GroupCommit,
    begin_reading,
    check_ready,
    end_reading,
    is_initialised,
    make_engine,
    session_factory,
    upgrade,
)
from trust.errors import InvalidInput, StorageError


def test_migrations_create_the_tables_and_reach_head(engine):
    assert {"audit_log", "audit_head", "alembic_version"} <= set(inspect(engine).get_table_names())
    assert is_initialised(engine)
    check_ready(engine)


def test_upgrade_twice_is_harmless(engine):
    upgrade(engine)
    assert is_initialised(engine)


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_unmigrated_database_is_not_ready(db_url):
    engine = make_engine(db_url)
    try:
        assert not is_initialised(engine)
        with pytest.raises(StorageError) as raised:
            check_ready(engine)
        assert "trustctl init" in raised.value.en and "数据库" in raised.value.zh
    finally:
        engine.dispose()


def test_unreachable_postgresql_raises_storage_error_quickly():
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://trust@127.0.0.1:{port}/trust")
    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        check_ready(engine)
    assert time.monotonic() - started < 5
    assert "cannot be reached" in raised.value.en and "无法连接" in raised.value.zh


def test_sqlite_engine_settings(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'trust.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_concurrent_appends_never_fork_the_chain(engine):
    """Two writers append at the same time; each append reads the head then writes, the
    pattern that fails with SQLITE_BUSY under a deferred BEGIN."""
    per_thread, errors = 40, []
    make_session = session_factory(engine)
    start = threading.Barrier(2)

    def writer(name):
        try:
            start.wait()
            for i in range(per_thread):
                with make_session() as session:
                    audit.append(session, name, "test.append", detail={"i": i})
                    session.commit()
        except Exception as e:  # reported below, in the test thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with make_session() as session:
        report = audit.verify_chain(session)
        seqs = session.execute(text("SELECT seq FROM audit_log ORDER BY seq")).scalars().all()
    assert report.ok and report.records_checked == 2 * per_thread
    assert seqs == list(range(1, 2 * per_thread + 1))


def _appends(url: str, name: str, threads: int, per_thread: int) -> None:
    """``threads`` threads of this process append ``per_thread`` audit records each."""
    engine = make_engine(url)
    make_session, errors = session_factory(engine), []

    def writer(index: int) -> None:
        try:
            for i in range(per_thread):
                with make_session() as session:
                    audit.append(session, f"{name}-{index}", "test.append", detail={"i": i})
                    session.commit()
        except Exception as e:  # reported below
            errors.append(e)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    engine.dispose()
    if errors:
        raise errors[0]


def test_sqlite_writers_of_several_processes_queue_and_none_is_lost(tmp_path):
    """Writers queue on the database's writer lock file (trust.db._QueuedConnection)
    across threads and processes: every append lands, once, in one chain."""
    url = f"sqlite:///{tmp_path / 'trust.db'}"
    engine = make_engine(url)
    upgrade(engine)
    context = multiprocessing.get_context("spawn")
    others = [context.Process(target=_appends, args=(url, f"p{n}", 3, 15)) for n in range(2)]
    for process in others:
        process.start()
    _appends(url, "main", 3, 15)
    for process in others:
        process.join(timeout=120)
        assert process.exitcode == 0
    with session_factory(engine)() as session:
        report = audit.verify_chain(session)
    engine.dispose()
    assert report.ok and report.records_checked == 3 * 3 * 15
    assert (tmp_path / "trust.db.writers").stat().st_mode & 0o777 == 0o600


def test_a_reading_transaction_neither_waits_for_the_writer_nor_writes(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'trust.db'}")
    upgrade(engine)
    make_session = session_factory(engine)
    with make_session() as writer, make_session() as reader:
        audit.append(writer, "alice", "test.append")  # holds the write lock until it commits
        begin_reading(reader)
        assert audit.head(reader).seq == 0  # at once, from the snapshot before the writer's change
        with pytest.raises(StorageError, match="reading transaction"):
            audit.append(reader, "bob", "test.append")
        reader.rollback()
        writer.commit()
        begin_reading(reader)
        assert audit.head(reader).seq == 1
        end_reading(reader)
        audit.append(reader, "bob", "test.append")  # a writer's transaction now
        reader.commit()
        end_reading(reader)  # outside a reading transaction: nothing to end
    with make_session() as session:
        assert audit.verify_chain(session).records_checked == 2
    engine.dispose()


def test_a_group_commit_returns_once_committed_and_undoes_only_the_failed_work(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'trust.db'}")
    upgrade(engine)
    make_session = session_factory(engine)
    group, results, errors = GroupCommit(make_session), [], []
    start = threading.Barrier(8)

    def requester(index: int) -> None:
        start.wait()
        for i in range(10):
            def work(session, i=i):
                record = audit.append(session, f"r{index}", "test.append", detail={"i": i})
                if index == 0 and i == 5:
                    raise InvalidInput("refused", "拒绝")
                return record.seq
            try:
                seq = group.run(work)
            except InvalidInput as error:
                errors.append(error)
                continue
            with make_session() as session:  # committed before run returned: another session sees it
                results.append((seq, audit.head(session).seq >= seq))

    threads = [threading.Thread(target=requester, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(errors) == 1 and len(results) == 79 and all(seen for _, seen in results)
    with make_session() as session:
        report = audit.verify_chain(session)
        actors = session.execute(text("SELECT actor, detail FROM audit_log")).all()
    assert report.ok and report.records_checked == 79
    assert ("r0", '{"i":5}') not in actors
    engine.dispose()


def test_a_group_whose_commit_fails_raises_to_its_waiter_and_the_next_group_commits(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'trust.db'}")
    upgrade(engine)
    group = GroupCommit(session_factory(engine))

    def breaks_the_commit(session):  # a deferred foreign key: checked at COMMIT
        session.execute(text("CREATE TEMP TABLE p (y INTEGER PRIMARY KEY)"))
        session.execute(text("CREATE TEMP TABLE t (x INTEGER REFERENCES p(y) DEFERRABLE INITIALLY DEFERRED)"))
        session.execute(text("INSERT INTO t VALUES (1)"))

    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        group.run(breaks_the_commit)
    assert group.run(lambda session: audit.append(session, "a", "test.append").seq) == 1  # still serving
    engine.dispose()
