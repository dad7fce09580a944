"""`trustctl serve` (gunicorn, the production server) as a subprocess on a loopback port,
for the tests that judge the service as its users reach it; started as the benches start
it (bench/server.py)."""

import json
import os
import shutil
import subprocess
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from bench.server import TRUSTCTL, free_port, served


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any TRUST_ variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUST_")}
    env.update(settings)
    return env


def trustctl(env, *args) -> subprocess.CompletedProcess:
    """`trustctl` as an operator runs it, with ``env``."""
    return subprocess.run([TRUSTCTL, *args], env=env, capture_output=True, text=True, timeout=120)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.load(response)


@contextmanager
def trustctl_serve(env: dict[str, str], port: int, log_path: Path, workers: int = 1):
    """`trustctl serve` with ``env``, once ready (bench.server: /readyz and every worker
    up); yields the process; always stopped. A server that does not start fails the test."""
    with ExitStack() as stack:
        try:
            process = stack.enter_context(served(env, port, workers, log_path))
        except SystemExit as error:
            pytest.fail(str(error))
        yield process


@contextmanager
def two_instances(tmp_path: Path, database_url: str, **settings: str):
    """Two `trustctl serve` instances on one database, each with its own home that shares only
    the KEK file (as two hosts would), one public address for both (as behind one proxy); the
    demo initialised by the first. Yields (ports, environments, the demo's values)."""
    from bench.load import _demo_values
    ports = free_port(), free_port()
    envs = [clean_env(TRUST_HOME=str(tmp_path / f"home-{i}"), TRUST_DATABASE_URL=database_url,
                      TRUST_PUBLIC_URL=f"http://127.0.0.1:{ports[0]}", **settings) for i in (0, 1)]
    init = trustctl(envs[0], "init", "--demo")
    assert init.returncode == 0, init.stderr
    (tmp_path / "home-1").mkdir(mode=0o700)
    shutil.copy(tmp_path / "home-0" / "master.key", tmp_path / "home-1" / "master.key")
    demo = _demo_values(tmp_path / "home-0")
    with trustctl_serve(envs[0], ports[0], tmp_path / "serve-0.log"), \
            trustctl_serve(envs[1], ports[1], tmp_path / "serve-1.log"):
        yield ports, envs, demo
