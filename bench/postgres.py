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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


class Replicated:
    """A primary and a synchronous streaming standby (every commit acknowledged to a client is
    on both), and the URL libpq uses to find whichever is writable."""

    def __init__(self, run, binaries: Path, primary: Path, standby: Path, ports: tuple[int, int]):
        self._run, self._binaries, self.primary, self.standby, self.ports = run, binaries, primary, standby, ports
        hosts = "&".join(f"host=127.0.0.1:{port}" for port in ports)
        self.url = f"postgresql+psycopg://{PG_USER}@/trust?{hosts}&target_session_attrs=read-write&connect_timeout=2"

    def kill_primary(self) -> None:
        """As a crash: no shutdown checkpoint, connections cut."""
        self._run(str(self._binaries / "pg_ctl"), "stop", "-D", str(self.primary), "-m", "immediate", "-w", "-t", "30")

    def promote(self) -> None:
        done = self._run(str(self._binaries / "pg_ctl"), "promote", "-D", str(self.standby), "-w", "-t", "30")
        if done.returncode != 0:
            raise RuntimeError(f"the standby was not promoted: {done.stdout}{done.stderr}")


@contextmanager
def replicated() -> Iterator[Replicated]:
    """A primary with the database ``trust`` and its standby (pg_basebackup -R), both on
    loopback; stopped and removed afterwards. Unavailable as for ``server``."""
    binaries = bin_dir()
    if binaries is None:
        raise Unavailable("no initdb on PATH or under /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="trust-pg-pair-"))
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    primary, standby, ports = root / "primary", root / "standby", (free_port(), free_port())

    def run(*args):
        return subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=60)

    def start(data: Path, port: int, extra: str = ""):
        done = run(str(binaries / "pg_ctl"), "start", "-D", str(data), "-l", str(root / f"{data.name}.log"), "-w",
                   "-t", "30", "-o", f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
                                     f"-c fsync=off {extra}")
        if done.returncode != 0:
            log = (root / f"{data.name}.log").read_text(errors="replace") if (root / f"{data.name}.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{done.stdout}\n{done.stderr}\n{log}")

    try:
        done = run(str(binaries / "initdb"), "-D", str(primary), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                   "--locale=C", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr}")
        start(primary, ports[0], "-c synchronous_commit=on")
        with admin_connection(ports[0]) as admin:
            admin.execute("CREATE DATABASE trust")
        done = run(str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(ports[0]), "-U", PG_USER,
                   "-D", str(standby), "-R", "-X", "stream", "-c", "fast")
        if done.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {done.stderr}")
        start(standby, ports[1], "-c synchronous_commit=on")
        with admin_connection(ports[0]) as admin:  # synchronous from now on: the standby is there
            admin.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            admin.execute("SELECT pg_reload_conf()")
        yield Replicated(run, binaries, primary, standby, ports)
    finally:
        for data in (primary, standby):
            if (data / "postmaster.pid").exists():
                run(str(binaries / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "30")
        shutil.rmtree(root, ignore_errors=True)
