"""`trustctl init` and `trustctl serve` end to end: real subprocesses, real gunicorn, real HTTP."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from trust import audit, db

TRUSTCTL = str(Path(sys.executable).with_name("trustctl"))
LIMIT = 1024


@pytest.fixture
def env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUST_")}
    env.update(TRUST_HOME=str(tmp_path / "home"), TRUST_MAX_REQUEST_BYTES=str(LIMIT))
    return env


def trustctl(env, *args):
    return subprocess.run([TRUSTCTL, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.load(response)


def test_init_creates_a_private_home_and_is_idempotent(env):
    first = trustctl(env, "init", "--demo")
    assert first.returncode == 0, first.stderr
    assert "Initialised" in first.stdout
    home = Path(env["TRUST_HOME"])
    assert (home.stat().st_mode & 0o777) == 0o700
    assert (home / "trust.db").is_file()

    again = trustctl(env, "init", "--demo")
    assert again.returncode == 0, again.stderr
    assert "Already initialised" in again.stdout
    records = audit_records(home / "trust.db")
    assert records.count(("trustctl", "system.init")) == 1  # the second run wrote nothing
    assert ("trustctl", "officer.enrol") in records


def audit_records(path):
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(audit.audit_log.c.actor, audit.audit_log.c.action))
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def test_init_on_an_unreachable_database_fails_in_both_languages(env):
    env["TRUST_DATABASE_URL"] = f"postgresql+psycopg://trust@127.0.0.1:{free_port()}/trust"
    done = trustctl(env, "init")
    assert done.returncode == 1
    assert "Error:" in done.stderr and " / " in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def server(env, tmp_path):
    """`trustctl serve` on a free port after `trustctl init --demo`; always stopped."""
    port = free_port()
    env["TRUST_PUBLIC_URL"] = f"http://127.0.0.1:{port}"  # where the demo certificates point for CRL and OCSP
    assert trustctl(env, "init", "--demo").returncode == 0
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([TRUSTCTL, "serve", "--port", str(port), "--workers", "1"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_until_healthy(process, base, log_path)
        yield process, port, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


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


def test_serve_end_to_end(server):
    process, port, log_path = server
    base = f"http://127.0.0.1:{port}/"
    assert get(base + "healthz") == (200, {"status": "ok"})
    status, body = get(base + "readyz")
    assert (status, body["status"]) == (200, "ready")
    assert f"Trust service listening on {base}" in log_path.read_text()

    too_large = urllib.request.Request(base + "healthz", data=b"x" * (LIMIT + 1), method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(too_large, timeout=5)
    assert raised.value.code == 413
    assert raised.value.headers.get_content_type() == "application/problem+json"
    assert json.load(raised.value)["code"] == "request_too_large"

    # The same body streamed in chunks, with no Content-Length to check up front.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/healthz", body=iter([b"x" * 400] * 3))
        response = connection.getresponse()
        assert response.status == 413
        assert json.load(response)["code"] == "request_too_large"
    finally:
        connection.close()

    process.terminate()
    assert process.wait(timeout=15) == 0


def test_demo_sample_is_valid_once_revocation_can_be_checked(env, server):
    """The sealed sample of `init --demo`: offline its revocation cannot be known
    (INDETERMINATE, exit 2); with our OCSP responder reachable it is VALID (exit 0)."""
    _, port, _ = server
    samples = Path(env["TRUST_HOME"]) / "samples"
    command = ["verify", str(samples / "demo-sealed.ofd"), "--trust-root", str(samples / "sm2-issuing-ca.pem"),
               "--json"]
    offline = trustctl(env, *command)
    assert offline.returncode == 2, offline.stdout + offline.stderr
    (signature,) = json.loads(offline.stdout)["signatures"]
    statuses = {c["check"]: c["status"] for c in signature["checks"]}
    assert statuses["chain"] == "PASSED" and statuses["revocation"] == "INDETERMINATE"

    online = trustctl({**env, "TRUST_REVOCATION_HOSTS": f"127.0.0.1:{port}"}, *command)
    assert online.returncode == 0, online.stdout + online.stderr
    assert json.loads(online.stdout)["status"] == "VALID"
