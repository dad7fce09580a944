"""Fixtures shared by the whole suite: a real PostgreSQL server, and a fresh database on
SQLite and on PostgreSQL for each storage test."""

import os
import uuid

import pytest
from sqlalchemy.engine import make_url

from bench import postgres
from bench.postgres import PG_USER, admin_connection as _admin_connection
from trust.db import make_engine, session_factory, upgrade

# The fixtures that several test modules use, each module of them by its area; their asserts
# are rewritten as the tests' are (they import one another, so not all load as plugins first).
pytest.register_assert_rewrite("tests.fixtures")
pytest_plugins = ["tests.fixtures.api", "tests.fixtures.ca", "tests.fixtures.licence", "tests.fixtures.ofd", "tests.fixtures.pki",
                  "tests.fixtures.seal", "tests.fixtures.softhsm"]


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of our own for the session (bench/postgres.py, without fsync);
    yields the URL of its database `trust`."""
    try:
        with postgres.server(durable=False) as url:
            yield url
    except postgres.Unavailable as e:
        _unavailable(str(e))
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database for one test: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'trust.db'}"
        return
    port = make_url(request.getfixturevalue("postgres_url")).port
    name = f"t_{uuid.uuid4().hex}"
    with _admin_connection(port) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{name}"
    with _admin_connection(port) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def engine(db_url):
    """An engine on a fresh database migrated to head."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with session_factory(engine)() as session:
        yield session
