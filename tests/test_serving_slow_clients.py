"""`trustctl serve` with its defaults survives slow clients (issue 23, point 1): fifty
connections that send their headers or their body a byte a second for a minute, while a
normal client checks /healthz and verifies a SES_Signature every second. Every check
answers within a second, no worker is killed, and the slow clients get 408 or are closed.
The server's own refusals of malformed requests are problem+json too."""

import http.client
import json
import os
import socket
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from bench.server import free_port

from tests.serving import clean_env, trustctl, trustctl_serve

pytestmark = pytest.mark.serial  # timing under load: alone, after the parallel part (Makefile)

SLOW_CLIENTS = 50
SECONDS = float(os.environ.get("TRUST_SLOW_CLIENT_SECONDS", "60"))


def _slow_client(port: int, index: int, stop: threading.Event, outcomes: list) -> None:
    """Half send their headers a byte a second, half a complete header block and then a
    declared 100,000-byte body a byte a second; each records how the server ended it."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as error:
        outcomes.append(f"refused: {error}")
        return
    if index % 2:
        head, trickle = b"", b"POST /api/v1/verify/ses HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    else:
        head = (b"POST /api/v1/verify/ses HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: 100000\r\n\r\n")
        trickle = b"x" * 100_000
    try:
        sock.sendall(head)
        for byte in trickle:
            if stop.is_set():
                outcomes.append("still open")
                return
            sock.sendall(bytes([byte]))
            sock.settimeout(1.0)
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            outcomes.append("408" if b" 408 " in answer[:20] else "closed" if not answer else answer[:12].decode())
            return
        outcomes.append("sent everything")
    except OSError:
        outcomes.append("closed")
    finally:
        sock.close()


def _ses_body(home: Path) -> tuple[bytes, str]:
    """A multipart request verifying the demo sample's SES_Signature against its data."""
    from ofd.package import Package
    package = Package.from_bytes((home / "samples" / "demo-sealed.ofd").read_bytes())
    signed_value = package.read("Doc_0/Signs/Sign_0/SignedValue.dat")
    data = package.read("Doc_0/Signs/Sign_0/Signature.xml")
    boundary = uuid.uuid4().hex
    body = b"".join([
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"s.ses\"\r\n\r\n".encode(),
        signed_value, f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"d\"\r\n\r\n"
        .encode(), data, f"\r\n--{boundary}--\r\n".encode()])
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("serving")
    port = free_port()
    env = clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_PUBLIC_URL=f"http://127.0.0.1:{port}")
    assert trustctl(env, "init", "--demo").returncode == 0
    log = tmp_path / "serve.log"
    with trustctl_serve(env, port, log):
        yield port, tmp_path / "home", log


@pytest.mark.parametrize("request_bytes, status, code", [
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "header_fields_too_large"),
    (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "bad_request"),
])
def test_the_servers_own_refusals_are_problem_json(served, request_bytes, status, code):
    port, _home, _log = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"] == code and problem["detail_zh"]


def test_fifty_slow_clients_do_not_take_the_service_down(served):
    port, home, log = served
    body, content_type = _ses_body(home)
    stop, outcomes = threading.Event(), []
    slow = [threading.Thread(target=_slow_client, args=(port, i, stop, outcomes), daemon=True)
            for i in range(SLOW_CLIENTS)]
    for thread in slow:
        thread.start()
    time.sleep(2)  # let them all get in
    worst, checks, deadline = 0.0, 0, time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz")
        health = connection.getresponse()
        assert health.status == 200 and health.read()
        connection.request("POST", "/api/v1/verify/ses", body=body, headers={"Content-Type": content_type})
        answer = connection.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["signatures"][0]["checks"]
        connection.close()
        took = time.monotonic() - started
        worst, checks = max(worst, took), checks + 1
        time.sleep(max(0.0, 1.0 - took))
    stop.set()
    for thread in slow:
        thread.join(timeout=10)
    assert worst < 1.0, f"the slowest check took {worst:.2f} s"
    assert checks >= SECONDS * 0.8
    text = log.read_text()
    assert "WORKER TIMEOUT" not in text and "SIGKILL" not in text, text[-2000:]
    assert len(outcomes) == SLOW_CLIENTS and set(outcomes) <= {"408", "closed"}, Counter(outcomes)
