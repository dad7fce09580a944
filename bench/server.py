"""`trustctl serve` for the HTTP benches: a free loopback port, a temporary TRUST_HOME's
environment, ready once /readyz answers 200 and every gunicorn worker has started."""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

TRUSTCTL = str(Path(sys.executable).with_name("trustctl"))
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(home: Path, port: int) -> dict[str, str]:
    """This process's environment without any TRUST_* setting (`make bench` exports
    TRUST_HOME), pointed at ``home`` and at the served port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUST_")}
    env.update(TRUST_HOME=str(home), TRUST_PUBLIC_URL=f"http://127.0.0.1:{port}")
    return env


def worker_pids(master: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{master}/task").iterdir():
        found += [int(pid) for pid in (task / "children").read_text().split()]
    return found


@contextmanager
def served(env: dict[str, str], port: int, workers: int, log: Path):
    """The running server's process (gunicorn's master); always stopped."""
    with open(log, "w") as out:
        server = subprocess.Popen([TRUSTCTL, "serve", "--port", str(port), "--workers", str(workers)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(server, port, workers, log)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def _wait_until_ready(server: subprocess.Popen, port: int, workers: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench: trustctl serve exited {server.returncode}:\n{log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200 and len(worker_pids(server.pid)) == workers:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: trustctl serve was not ready within {START_TIMEOUT_S} s:\n{log.read_text()}")


def posts_per_second(port: int, path: str, body: bytes | None, headers: dict, *, seconds: float, clients: int,
                     expected: int = 200, method: str = "POST", new_connections: bool = False) -> float:
    """Requests (POSTs of ``body`` by default) to ``path`` per second from ``clients`` threads,
    each on its own keep-alive connection (``new_connections``: a new one for every request),
    for about ``seconds``; an answer other than ``expected`` ends the bench."""
    count, failures = [0] * clients, list[str]()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.perf_counter() < deadline and not failures:
                if new_connections:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != expected:
                    failures.append(f"{response.status} {answer[:300]!r}")
                count[index] += 1
        finally:
            connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"bench: {path} answered {failures[0]}")
    return sum(count) / (time.perf_counter() - start)
