"""Fixtures shared by the whole suite: a real PostgreSQL server, and a fresh database on
SQLite and on PostgreSQL for each storage test."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from trust.db import make_engine, session_factory, upgrade

PG_USER = "trust"


def _pg_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    return max(versions, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin_connection(port: int) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=PG_USER, dbname="postgres",
                           autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of our own in a temp dir, on a free loopback port, trusting
    local connections; yields the URL of its database `trust`."""
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        _unavailable("no initdb on PATH or under /usr/lib/postgresql/*/bin "
                     "(Debian: apt-get install postgresql)")
    run_as = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no `postgres` user to run the server as")
        run_as = ["runuser", "-u", "postgres", "--"]

    root = Path(tempfile.mkdtemp(prefix="trust-pg-"))
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    data, log, port = root / "data", root / "server.log", _free_port()
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")

    def run(*args):
        return subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=60)

    try:
        done = run(str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
                   "-E", "UTF8", "--locale=C", "--no-sync")
        if done.returncode == 0:
            done = run(str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-l", str(log),
                       "-w", "-t", "30", "-o", options)
        if done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start:\n{done.stdout}\n{done.stderr}\n{server_log}")
        with _admin_connection(port) as admin:
            admin.execute("CREATE DATABASE trust")
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/trust"
    finally:
        if (data / "postmaster.pid").exists():
            run(str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "30")
        shutil.rmtree(root, ignore_errors=True)


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
