"""`trustctl init` and `trustctl serve` end to end: real subprocesses, real gunicorn, real HTTP."""

import http.client
import json
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from asn1crypto import pem
from sqlalchemy import select

from bench.server import free_port
from ca.models import ca_certificate
from trust import audit, db

from tests.oracles import ofdrw_verify, openssl
from tests.serving import clean_env, get, trustctl, trustctl_serve

LIMIT = 1024


def make_env(tmp_path):
    return clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_MAX_REQUEST_BYTES=str(LIMIT))


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path)


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


@contextmanager
def serving(env, tmp_path):
    """`trustctl serve` on a free port after `trustctl init --demo`; always stopped."""
    port = free_port()
    env["TRUST_PUBLIC_URL"] = f"http://127.0.0.1:{port}"  # where the demo certificates point for CRL and OCSP
    assert trustctl(env, "init", "--demo").returncode == 0
    log_path = tmp_path / "serve.log"
    with trustctl_serve(env, port, log_path) as process:
        yield process, port, log_path


@pytest.fixture
def server(env, tmp_path):
    """A served demo of this test's own (the test may stop it)."""
    with serving(env, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One served demo, (env, port), shared by the tests that only read from it."""
    tmp_path = tmp_path_factory.mktemp("demo")
    env = make_env(tmp_path)
    with serving(env, tmp_path) as (_process, port, _log):
        yield env, port


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


def test_demo_sample_is_valid_once_revocation_can_be_checked(demo):
    """The sealed sample of `init --demo`: offline its revocation cannot be known
    (INDETERMINATE, exit 2); with our OCSP responder reachable it is VALID (exit 0)."""
    env, port = demo
    samples = Path(env["TRUST_HOME"]) / "samples"
    command = ["verify", str(samples / "demo-sealed.ofd"), "--trust-root", str(samples / "sm2-issuing-ca.pem"),
               "--json"]
    offline = trustctl(env, *command)
    assert offline.returncode == 2, offline.stdout + offline.stderr
    (signature,) = json.loads(offline.stdout)["signatures"]
    statuses = {c["check"]: c["status"] for c in signature["checks"]}
    assert statuses["chain"] == "PASSED" and statuses["revocation"] == "INDETERMINATE"
    (verdict,) = ofdrw_verify(samples / "demo-sealed.ofd")  # the reference Java library agrees
    assert verdict["ok"] and verdict["container"], verdict

    online = trustctl({**env, "TRUST_REVOCATION_HOSTS": f"127.0.0.1:{port}"}, *command)
    assert online.returncode == 0, online.stdout + online.stderr
    assert json.loads(online.stdout)["status"] == "VALID"


def test_demo_ca_endpoints_answer_openssl(demo, tmp_path):
    """`init --demo` as a whole: the CA certificates and CRLs of both hierarchies, the ECDSA
    issuing CA's OCSP responder and the TSA, judged by openssl."""
    env, port = demo
    base = f"http://127.0.0.1:{port}"
    for name in ("sm2-root", "sm2-issuing", "ecdsa-root", "ecdsa-issuing"):
        with urllib.request.urlopen(f"{base}/ca/{name}/cert", timeout=5) as answer:
            (tmp_path / f"{name}.pem").write_bytes(pem.armor("CERTIFICATE", answer.read()))
        with urllib.request.urlopen(f"{base}/ca/{name}/crl", timeout=5) as answer:
            crl = answer.read()
        text = openssl("crl", "-inform", "DER", "-text", "-noout", input=crl).stdout.decode()
        assert "X509v3 CRL Number" in text
        assert ("SM2-with-SM3" if name.startswith("sm2") else "ecdsa-with-SHA256") in text
        subject = openssl("x509", "-in", tmp_path / f"{name}.pem", "-noout", "-subject").stdout.decode()
        assert ("Root CA" if name.endswith("root") else "Issuing CA") in subject
    chain = tmp_path / "ecdsa-chain.pem"
    chain.write_bytes((tmp_path / "ecdsa-root.pem").read_bytes() + (tmp_path / "ecdsa-issuing.pem").read_bytes())
    crl_pem = tmp_path / "ecdsa-issuing.crl.pem"
    with urllib.request.urlopen(f"{base}/ca/ecdsa-issuing/crl", timeout=5) as answer:
        crl_pem.write_bytes(pem.armor("X509 CRL", answer.read()))
    assert b"verify OK" in openssl("crl", "-in", crl_pem, "-CAfile", chain, "-noout").stderr

    engine = db.make_engine(f"sqlite:///{Path(env['TRUST_HOME']) / 'trust.db'}")
    try:
        with engine.connect() as connection:
            tsa_der = connection.execute(select(ca_certificate.c.der).where(
                ca_certificate.c.issuer == "ecdsa-issuing", ca_certificate.c.profile == "tsa")).scalar_one()
    finally:
        engine.dispose()
    tsa_pem = tmp_path / "ecdsa-tsa.pem"
    tsa_pem.write_bytes(pem.armor("CERTIFICATE", tsa_der))
    asked = openssl("ocsp", "-issuer", tmp_path / "ecdsa-issuing.pem", "-cert", tsa_pem, "-CAfile", chain,
                    "-url", f"{base}/ocsp/ecdsa-issuing", check=False)
    out = asked.stdout.decode() + asked.stderr.decode()
    assert asked.returncode == 0 and f"{tsa_pem}: good" in out and "Response verify OK" in out, out

    (tmp_path / "message.txt").write_bytes("演示 demo document\n".encode())
    openssl("ts", "-query", "-data", tmp_path / "message.txt", "-sha256", "-cert", "-out", tmp_path / "q.tsq")
    stamp = urllib.request.Request(f"{base}/tsa", data=(tmp_path / "q.tsq").read_bytes(), method="POST",
                                   headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(stamp, timeout=5) as answer:
        assert answer.headers["Content-Type"] == "application/timestamp-reply"
        (tmp_path / "r.tsr").write_bytes(answer.read())
    assert "Status: Granted" in openssl("ts", "-reply", "-in", tmp_path / "r.tsr", "-text").stdout.decode()
    openssl("ts", "-reply", "-in", tmp_path / "r.tsr", "-token_out", "-out", tmp_path / "token.der")
    signers = openssl("pkcs7", "-inform", "DER", "-in", tmp_path / "token.der", "-print_certs", "-noout")
    assert "CN = ECDSA TSA" in signers.stdout.decode()  # a SHA-256 imprint goes to the ECDSA TSA
    verified = openssl("ts", "-verify", "-queryfile", tmp_path / "q.tsq", "-in", tmp_path / "r.tsr",
                       "-CAfile", chain, check=False)
    assert verified.returncode == 0 and b"Verification: OK" in verified.stdout, verified.stdout + verified.stderr
