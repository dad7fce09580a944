"""`trustctl serve` (gunicorn, the production server) as a subprocess on a loopback port,
for the tests that judge the service as its users reach it."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

TRUSTCTL = str(Path(sys.executable).with_name("trustctl"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any TRUST_ variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUST_")}
    env.update(settings)
    return env


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.load(response)


def wait_until_healthy(process, base, log_path, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"trustctl serve exited {process.returncode}:\n{log_path.read_text()}")
        try:
            if get(base + "healthz")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"no healthy answer within {seconds} s:\n{log_path.read_text()}")


@contextmanager
def trustctl_serve(env: dict[str, str], port: int, log_path: Path, workers: int = 1):
    """`trustctl serve` with ``env`` until healthy; yields the process; always stopped."""
    with open(log_path, "w") as log:
        process = subprocess.Popen([TRUSTCTL, "serve", "--port", str(port), "--workers", str(workers)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}/", log_path)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
