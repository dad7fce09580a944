"""Seal use (用章) through the HTTP API, against raw SM2 signing on the same two cores.

A temporary TRUST_HOME is initialised with `trustctl init --demo`; the demo department's
official seal (seal.demo, its ~12 KB picture embedded in every signature) is made and a
``seal:sign`` token issued to its client; then `trustctl serve --workers 2` runs on a
free loopback port. Clients in this process (threads, one http.client connection each)
post batches of 1,000 SM3 digests to /api/v1/seals/<esID>/sign-batch, enough of them that
each worker always has the next request waiting.

"Raw" is SM2 signing of a 32-byte e (trust.sm2 sign_digest, what the KeyStore does per
digest) in two processes at once, so it is what the two cores give. Raw and HTTP runs
alternate and each keeps its best, so a burst of other load hurts both alike.

The client shares the two cores: reading ~17 MB of JSON per batch costs CPU that the
workers then lack. So the bench also reports the client's CPU (this process, over the
HTTP run) as a share of the two cores, and the server's efficiency: signatures per CPU
second the gunicorn workers used (from /proc) over raw signatures per CPU second, a figure
the client's load and other load on the machine do not touch. HTTP throughput is taken
in the steady state, between batch completions while both workers are busy. "Verify" is
seal.verify.verify_ses_signature of a demo signature with
the demo CA trusted and no revocation fetching, in this process (one core) and through
/api/v1/verify/ses on the two workers.
"""

import base64
import http.client
import json
import multiprocessing
import os
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.server import TRUSTCTL, environment, free_port, posts_per_second, served, worker_pids
from bench.timing import rate
from ca import authority
from hsm.keystore import open_keystore
from identity import tokens
from seal.demo import DEMO_CLIENT_ID, make_demo_seal
from seal.ses import parse_signature
from seal.verify import verify_ses_signature
from trust import db, truststore
from trust.config import load_settings
from trust.hashes import sm3
from trust.sm2 import SM2PrivateKey, SM2PublicKey
from trust.x509 import parse_certificate

SECONDS = 5
HTTP_SECONDS = 12      # long enough for several 1,000-signature batches per worker
ROUNDS = 2
WORKERS = 2
BATCH = 1000
CLIENTS = 4            # connections at once: two in service, two waiting


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-seal-") as home:
        port = free_port()
        env = environment(Path(home), port)
        subprocess.run([TRUSTCTL, "init", "--demo"], env=env, check=True, capture_output=True, timeout=300)
        es_id, token, roots = _prepare(env)
        with served(env, port, WORKERS, Path(home) / "serve.log") as server:
            return _measure(server, port, es_id, token, roots)


def _prepare(env: dict[str, str]) -> tuple[str, str, tuple[bytes, ...]]:
    """The demo seal, a seal:sign token for its client, and the demo CA trusted for seals."""
    settings = load_settings(env)
    engine = db.make_engine(settings.database_url)
    try:
        sessions = db.session_factory(engine)
        keystore = open_keystore(settings, sessions)
        with sessions() as session:
            es_id = make_demo_seal(session, keystore)
            roots = tuple(a.certificate for a in authority.list_authorities(session) if a.family == "sm2")
            for root in roots:
                truststore.import_roots(session, "seal", root, actor="bench")
            token, _ = tokens.issue_access_token(session, keystore, issuer=settings.public_url,
                                                 client_id=DEMO_CLIENT_ID, subject=None, scopes=["seal:sign"],
                                                 lifetime=3600)
            session.commit()
    finally:
        engine.dispose()
    return es_id, token, roots


def _measure(server: subprocess.Popen, port: int, es_id: str, token: str, roots) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [json.dumps({"digests": [sm3(uuid.uuid4().bytes).hex() for _ in range(BATCH)],
                          "purpose": "bench 批量用章"}).encode() for _ in range(CLIENTS)]
    path = f"/api/v1/seals/{es_id}/sign-batch"
    sample = _check_batch(port, path, headers, bodies[0])

    raw, http_runs = [], []
    for _ in range(ROUNDS):
        raw.append(_raw_two_cores(SECONDS))
        http_runs.append(_http_run(server.pid, port, path, headers, bodies, HTTP_SECONDS))
    raw_rate = max(wall for wall, _ in raw)
    best = max(http_runs, key=lambda r: r["per_s"])
    efficiency = max(r["per_server_cpu_s"] for r in http_runs) / max(cpu for _, cpu in raw)

    ses = parse_signature(sample)
    verify_one = lambda: verify_ses_signature(sample, data_hash=ses.data_hash, trusted_roots=roots)  # noqa: E731
    verify_one()  # the steady state: trust/x509 keeps the certificate signatures found good
    verifications = _sm2_verifications(verify_one)
    signer_key = parse_certificate(ses.cert).public_key()
    sm2_verify_rate = rate(lambda: signer_key.verify(ses.signature, ses.tbs_raw), SECONDS)
    bound = sm2_verify_rate / verifications
    verify_rate = rate(verify_one, SECONDS)
    verify_http = _verify_http(port, sample, ses.data_hash, SECONDS)
    return {
        "seal_sm2_sign_raw_two_cores_per_s": round(raw_rate, 1),
        "seal_batch_sign_http_per_s": round(best["per_s"], 1),
        "seal_batch_sign_http_ratio": round(best["per_s"] / raw_rate, 3),
        "seal_batch_sign_client_cpu_share": round(best["client_cpu_share"], 3),
        "seal_batch_sign_server_cpu_ratio": round(efficiency, 3),
        "seal_ses_verify_per_s": round(verify_rate, 1),
        "seal_ses_verify_sm2_verifications": verifications,
        "seal_ses_verify_sm2_bound_per_s": round(bound, 1),
        "seal_ses_verify_bound_ratio": round(verify_rate / bound, 3),
        "seal_ses_verify_http_per_s": round(verify_http, 1),
    }


def _sm2_verifications(work) -> int:
    """How many SM2 verifications one call of ``work`` does (signatures, seal, chain)."""
    done = 0
    original = SM2PublicKey.verify_digest

    def counted(self, *args, **kwargs):
        nonlocal done
        done += 1
        return original(self, *args, **kwargs)

    setattr(SM2PublicKey, "verify_digest", counted)  # noqa: B010 (a method swapped for the count)
    try:
        work()
    finally:
        setattr(SM2PublicKey, "verify_digest", original)  # noqa: B010
    return done


# ---------------------------------------------------------------- raw SM2 on two cores

def _sign_for(seconds: float, start, results) -> None:
    key = SM2PrivateKey.generate()
    e = os.urandom(32)
    key.sign_digest(e)
    start.wait()
    count, cpu, wall = 0, time.process_time(), time.perf_counter()
    deadline = wall + seconds
    while time.perf_counter() < deadline:
        for _ in range(16):
            key.sign_digest(e)
        count += 16
    results.put((count / (time.perf_counter() - wall), count / (time.process_time() - cpu)))


def _raw_two_cores(seconds: float) -> tuple[float, float]:
    """SM2 signatures per second of two processes signing at the same time, and per CPU
    second of one of them."""
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_sign_for, args=(seconds, start, results)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    start.set()
    found = [results.get(timeout=seconds * 10 + 30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    return sum(wall for wall, _ in found), sum(cpu for _, cpu in found) / len(found)


# ---------------------------------------------------------------- HTTP

def _post(connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> bytes:
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"bench: {path} answered {response.status}: {data[:500]!r}")
    return data


def _check_batch(port: int, path: str, headers: dict, body: bytes) -> bytes:
    """One batch, checked in full (count, order, data hashes); returns its first signature."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        answer = json.loads(_post(connection, path, body, headers))
    finally:
        connection.close()
    wanted = [bytes.fromhex(d) for d in json.loads(body)["digests"]]
    signatures = [base64.b64decode(s) for s in answer["signatures"]]
    if answer["count"] != BATCH or [parse_signature(s).data_hash for s in signatures] != wanted:
        raise SystemExit("bench: the batch came back wrong")
    return signatures[0]


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes, from /proc (clock ticks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / ticks


def _http_run(master: int, port: int, path: str, headers: dict, bodies: list[bytes], seconds: float) -> dict:
    """Batches from CLIENTS threads for ``seconds``: signatures per second, the client's CPU
    share of the two cores, and signatures per CPU second of the server's workers."""
    workers = worker_pids(master)
    finished: list[float] = []   # completion times of batches
    failures: list[BaseException] = []
    begin = threading.Barrier(len(bodies) + 1)

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            begin.wait()
            while time.perf_counter() < deadline:
                _post(connection, path, bodies[index], headers)
                finished.append(time.perf_counter())
        except BaseException as error:  # reported below, in the main thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    server_cpu, client_cpu = _cpu_seconds(workers), time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    begin.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    client_cpu, server_cpu = time.process_time() - client_cpu, _cpu_seconds(workers) - server_cpu
    if failures:
        raise SystemExit(f"bench: a client failed: {failures[0]!r}")
    # Steady state: from the first completion to the last one before the deadline both
    # workers are busy all along (the start and the tail are not).
    steady = sorted(t for t in finished if t <= deadline)
    if len(steady) < 3:
        raise SystemExit(f"bench: only {len(steady)} batches in {seconds} s; give it more time")
    return {"per_s": (len(steady) - 1) * BATCH / (steady[-1] - steady[0]),
            "client_cpu_share": client_cpu / (WORKERS * wall), "per_server_cpu_s": len(finished) * BATCH / server_cpu}


def _verify_http(port: int, signature: bytes, digest: bytes, seconds: float) -> float:
    """/api/v1/verify/ses from CLIENTS threads; verifications per second."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"s.ses\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + signature + \
        (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"digest\"\r\n\r\n{digest.hex()}\r\n"
         f"--{boundary}--\r\n").encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        report = json.loads(_post(connection, "/api/v1/verify/ses", body, headers))
    finally:
        connection.close()
    statuses = {c["check"]: c["status"] for c in report["signatures"][0]["checks"]}
    if statuses["signature"] != "PASSED" or statuses["integrity"] != "PASSED" or statuses["chain"] != "PASSED":
        raise SystemExit(f"bench: the demo signature does not verify: {statuses}")

    return posts_per_second(port, "/api/v1/verify/ses", body, headers, seconds=seconds, clients=CLIENTS)


if __name__ == "__main__":
    print(json.dumps(run()))
