"""A PostgreSQL server of our own in a temporary directory, on a free loopback port, trusting
local connections: for the test suite (tests/conftest.py, without fsync: tests need speed,
not durability) and the load test (bench/load.py, with PostgreSQL's own durable defaults).
Run as the ``postgres`` user when we are root, since initdb refuses root."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg

PG_USER = "trust"
_FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class Unavailable(Exception):
    """No PostgreSQL server can be started here (and why)."""


def bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    return max(versions, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_connection(port: int) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=PG_USER, dbname="postgres",
                           autocommit=True, connect_timeout=5)


@contextmanager
def server(*, durable: bool) -> Iterator[str]:
    """The URL of the database ``trust`` on a new server, stopped and removed afterwards.
    Unavailable when PostgreSQL is not installed or cannot run here; RuntimeError, with its
    log, when it does not start."""
    binaries = bin_dir()
    if binaries is None:
        raise Unavailable("no initdb on PATH or under /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")
    run_as = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no `postgres` user to run the server as") from None
        run_as = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="trust-pg-"))
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    data, log, port = root / "data", root / "server.log", free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root}" + \
        ("" if durable else f" {_FAST}")

    def run(*args):
        return subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=60)

    try:
        done = run(str(binaries / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                   "--locale=C", *([] if durable else ["--no-sync"]))
        if done.returncode == 0:
            done = run(str(binaries / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "30",
                       "-o", options)
        if done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{done.stdout}\n{done.stderr}\n{server_log}")
        with admin_connection(port) as admin:
            admin.execute("CREATE DATABASE trust")
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/trust"
    finally:
        if (data / "postmaster.pid").exists():
            run(str(binaries / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "30")
        shutil.rmtree(root, ignore_errors=True)
