import socket
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import ca.models  # noqa: F401  registers every table of the service on Base.metadata
import hsm.dual_control  # noqa: F401
import hsm.models  # noqa: F401
import identity.client_models  # noqa: F401
import identity.models  # noqa: F401
import identity.token_models  # noqa: F401
import licence.models  # noqa: F401
import seal.models  # noqa: F401
import trust.truststore  # noqa: F401
from trust import audit
from trust.db import Base, check_ready, is_initialised, make_engine, session_factory, upgrade
from trust.errors import StorageError


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
