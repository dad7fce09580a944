"""`trustctl serve` (gunicorn, the production server) as a subprocess on a loopback port,
for the tests that judge the service as its users reach it; started as the benches start
it (bench/server.py)."""

import json
import os
import subprocess
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from bench.server import TRUSTCTL, served


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
