"""#18's load test: `make load-test`. 60 seconds of mixed traffic against `trustctl serve`
(2 workers) on SQLite and then on PostgreSQL (a server of our own with its durable
defaults), from a bounded local client: CLIENTS threads, each on its own keep-alive
connection, each taking the next operation in turn: a client-credentials token, an
introspection, a seal signature of a digest, a SES_Signature verification.

Afterwards, with the service stopped: every answer was the one expected (zero errors), the
latencies per operation (p50, p99), `trustctl audit verify` passes, and the records match
what was acknowledged: one `seal.sign` audit record per signature answered, one access
token row per token answered. Prints one JSON line; exit 1 when anything does not hold.
"""

import base64
import http.client
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from bench import postgres
from bench.server import TRUSTCTL, environment, free_port, served
from identity.token_models import oauth_access_token
from trust import audit, db
from trust.config import load_settings
from trust.hashes import sm3

SECONDS = 60
CLIENTS = 4
WORKERS = 2
OPERATIONS = ("token", "introspect", "seal", "verify")


@dataclass(frozen=True)
class DemoHome:
    """A demo TRUST_HOME (`trustctl init --demo`) to serve on ``port`` with ``env``; ``demo``
    holds its demo.env values; ``scratch`` is a directory beside it for logs."""

    env: dict[str, str]
    port: int
    demo: dict[str, str]
    scratch: Path


@contextmanager
def demo_home(prefix: str, database_url: str | None) -> Iterator[DemoHome]:
    """A new demo home on SQLite, or on ``database_url``; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home, port = Path(tmp) / "home", free_port()
        env = environment(home, port)
        if database_url:
            env["TRUST_DATABASE_URL"] = database_url
        subprocess.run([TRUSTCTL, "init", "--demo"], env=env, check=True, capture_output=True, timeout=300)
        yield DemoHome(env, port, _demo_values(home), Path(tmp))


def _demo_values(home: Path) -> dict[str, str]:
    values = {}
    for line in (home / "demo.env").read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0] if value else ""
    return values


def _counts(env: dict[str, str]) -> tuple[int, int]:
    """The `seal.sign` audit records and the access token rows now."""
    engine = db.make_engine(load_settings(env).database_url)
    try:
        with engine.connect() as connection:
            seals = connection.execute(select(func.count()).select_from(audit.audit_log)
                                       .where(audit.audit_log.c.action == "seal.sign")).scalar()
            tokens = connection.execute(select(func.count()).select_from(oauth_access_token)).scalar()
            return seals or 0, tokens or 0
    finally:
        engine.dispose()


class _Client:
    """One keep-alive connection and the requests of the four operations."""

    def __init__(self, port: int, secret: str, es_id: str, token: str, sample: bytes, digest: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.basic = "Basic " + base64.b64encode(f"demo-department-app:{secret}".encode()).decode()
        self.es_id, self.bearer, self.sample, self.digest = es_id, token, sample, digest

    def call(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def token(self) -> bool:
        status, answer = self.call("POST", "/oauth/token", b"grant_type=client_credentials&scope=seal%3Asign",
                                   {"Authorization": self.basic, "Content-Type": "application/x-www-form-urlencoded"})
        return status == 200 and b"access_token" in answer

    def introspect(self) -> bool:
        status, answer = self.call("POST", "/oauth/introspect", f"token={self.bearer}".encode(),
                                   {"Authorization": self.basic, "Content-Type": "application/x-www-form-urlencoded"})
        return status == 200 and json.loads(answer).get("active") is True

    def seal(self) -> bool:
        body = json.dumps({"digest": sm3(uuid.uuid4().bytes).hex(), "purpose": "负载测试"}).encode()
        status, answer = self.call("POST", f"/api/v1/seals/{self.es_id}/sign", body,
                                   {"Authorization": f"Bearer {self.bearer}", "Content-Type": "application/json"})
        return status == 200 and b"signature" in answer

    def verify(self) -> bool:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"s.ses\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + self.sample + \
            (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"digest\"\r\n\r\n{self.digest}"
             f"\r\n--{boundary}--\r\n").encode()
        status, answer = self.call("POST", "/api/v1/verify/ses", body,
                                   {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return status == 200 and json.loads(answer).get("status") in ("VALID", "INDETERMINATE")


def _traffic(port: int, demo: dict[str, str], seconds: float) -> dict[str, dict]:
    first = _Client(port, demo["SECRET"], demo["ESID"], "", b"", "")
    _status, answer = first.call("POST", "/oauth/token", b"grant_type=client_credentials&scope=seal%3Asign",
                                {"Authorization": first.basic, "Content-Type": "application/x-www-form-urlencoded"})
    token = json.loads(answer)["access_token"]
    digest = sm3(b"load test").hex()
    _status, answer = first.call("POST", f"/api/v1/seals/{demo['ESID']}/sign",
                                json.dumps({"digest": digest, "purpose": "负载测试"}).encode(),
                                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    sample = base64.b64decode(json.loads(answer)["signature"])
    latencies: dict[str, list[float]] = {op: [] for op in OPERATIONS}
    errors: dict[str, list[str]] = {op: [] for op in OPERATIONS}
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        client = _Client(port, demo["SECRET"], demo["ESID"], token, sample, digest)
        step = index
        while time.monotonic() < deadline:
            op = OPERATIONS[step % len(OPERATIONS)]
            step += 1
            started = time.perf_counter()
            try:
                ok, why = getattr(client, op)(), "an answer other than the one expected"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                ok, why = False, repr(exc)[:200]
                client = _Client(port, demo["SECRET"], demo["ESID"], token, sample, digest)
            if ok:
                latencies[op].append(time.perf_counter() - started)
            else:
                errors[op].append(why)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "errors": errors}


def _percentile(values: list[float], q: int) -> float:
    return round(1000 * statistics.quantiles(values, n=100)[q - 1], 1) if len(values) >= 2 else 0.0


def _one(database: str, database_url: str | None, seconds: float) -> dict:
    with demo_home(f"load-{database}-", database_url) as made:
        env, port, demo = made.env, made.port, made.demo
        seals_before, tokens_before = _counts(env)
        with served(env, port, WORKERS, made.scratch / "serve.log"):
            started = time.monotonic()
            result = _traffic(port, demo, seconds)
            took = time.monotonic() - started
        seals_after, tokens_after = _counts(env)
        verified = subprocess.run([TRUSTCTL, "audit", "verify"], env=env, capture_output=True, text=True, timeout=600)
    done = {op: len(v) for op, v in result["latencies"].items()}
    failed = [f"{op}: {why}" for op, whys in result["errors"].items() for why in whys]
    out = {f"{database}_seconds": round(took, 1), f"{database}_errors": len(failed),
           **({f"{database}_first_errors": failed[:3]} if failed else {}),
           f"{database}_audit_verify": "ok" if verified.returncode == 0 else verified.stdout[-300:] + verified.stderr[-300:],
           # the first token and the sample signature of _traffic are acknowledged too
           f"{database}_seal_records_match": seals_after - seals_before == done["seal"] + 1,
           f"{database}_token_rows_match": tokens_after - tokens_before == done["token"] + 1}
    for op in OPERATIONS:
        out[f"{database}_{op}_per_s"] = round(done[op] / took, 1)
        out[f"{database}_{op}_p50_ms"] = _percentile(result["latencies"][op], 50)
        out[f"{database}_{op}_p99_ms"] = _percentile(result["latencies"][op], 99)
    return out


def run(seconds: float = SECONDS) -> dict:
    result = _one("sqlite", None, seconds)
    with postgres.server(durable=True) as url:
        result.update(_one("postgresql", url, seconds))
    ok = all(result[f"{d}_errors"] == 0 and result[f"{d}_audit_verify"] == "ok" and result[f"{d}_seal_records_match"]
             and result[f"{d}_token_rows_match"] for d in ("sqlite", "postgresql"))
    return {**result, "load_test": "passed" if ok else "FAILED"}


if __name__ == "__main__":
    outcome = run(float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS)
    print(json.dumps(outcome, ensure_ascii=False))
    sys.exit(0 if outcome["load_test"] == "passed" else 1)
