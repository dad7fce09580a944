"""The OCSP responder (RFC 6960) over real HTTP, judged by `openssl ocsp`."""

import base64
import hashlib
import json
import urllib.parse
import urllib.request

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from ca import authority, ocsp
from ca.revocation import revoke
from trust import audit
from trust.errors import InvalidInput
from trust.sm2 import SM2PrivateKey
from trust.x509 import parse_certificate

from tests.fixtures.ca import ORG, post, served, write_pem
from tests.oracles import STANDARD_ID, openssl

OCSP_REQUEST = "application/ocsp-request"


@pytest.fixture
def ecdsa_ca(session, keystore, creds, tmp_path):
    """An ECDSA hierarchy with a delegated OCSP signer and one leaf, written as PEM files."""
    root, issuing = authority.create_hierarchy(session, keystore, "ec", "ecdsa", approval=creds)
    signer = authority.issue_with_new_key(session, keystore, "ec-issuing", "ocsp-signer",
                                          subject={"C": "CN", "O": "Trust", "CN": "EC OCSP"}, label="ocsp/ec")
    leaf = authority.issue(session, keystore, "ec-issuing", "organisation-signing", subject=ORG,
                           public_key=ec.generate_private_key(ec.SECP256R1()).public_key())
    session.commit()
    return {"root": write_pem(tmp_path / "root.pem", root.certificate),
            "issuing": write_pem(tmp_path / "issuing.pem", issuing.certificate),
            "chain": write_pem(tmp_path / "chain.pem", root.certificate, issuing.certificate),
            "leaf": write_pem(tmp_path / "leaf.pem", leaf.der), "serial": leaf.serial, "signer": signer}


def ask(base, ca, *args):
    return openssl("ocsp", "-issuer", ca["issuing"], "-CAfile", ca["chain"], "-url", f"{base}/ocsp/ec-issuing",
                   "-resp_text", *args, check=False)


def test_openssl_ocsp_good_then_revoked_unknown_and_nonce(engine, session, keystore, ecdsa_ca, tmp_path):
    with served(engine, keystore, tmp_path) as base:
        good = ask(base, ecdsa_ca, "-cert", ecdsa_ca["leaf"])
        out = good.stdout.decode() + good.stderr.decode()
        assert good.returncode == 0, out
        assert f"{ecdsa_ca['leaf']}: good" in out and "Response verify OK" in out
        assert "OCSP Nonce" in out and "nonce" not in out.lower().replace("ocsp nonce", "")  # echoed, checked
        assert "EC OCSP" in out  # the delegated signer's certificate is in the response

        unknown = ask(base, ecdsa_ca, "-serial", str(ecdsa_ca["serial"] + 1)).stdout.decode()
        assert f"{ecdsa_ca['serial'] + 1}: unknown" in unknown

        revoke(session, "ec-issuing", ecdsa_ca["serial"], "keyCompromise", actor="officer-1")
        session.commit()
        revoked = ask(base, ecdsa_ca, "-cert", ecdsa_ca["leaf"]).stdout.decode()
        assert f"{ecdsa_ca['leaf']}: revoked" in revoked
        assert "Reason: keyCompromise" in revoked and "Revocation Time" in revoked


def test_get_requests_are_cached_and_another_cas_certificate_is_unauthorized(engine, session, keystore, ecdsa_ca,
                                                                           tmp_path):
    openssl("ocsp", "-issuer", ecdsa_ca["issuing"], "-cert", ecdsa_ca["leaf"], "-no_nonce",
            "-reqout", tmp_path / "leaf.der")
    # The issuing CA's own certificate was issued by the root, not by ec-issuing.
    openssl("ocsp", "-issuer", ecdsa_ca["root"], "-cert", ecdsa_ca["issuing"], "-no_nonce",
            "-reqout", tmp_path / "other.der")
    answers = []
    with served(engine, keystore, tmp_path) as base:
        for request in ("leaf.der", "leaf.der", "other.der"):
            encoded = urllib.parse.quote(base64.b64encode((tmp_path / request).read_bytes()).decode(), safe="")
            with urllib.request.urlopen(f"{base}/ocsp/ec-issuing/{encoded}") as answer:
                assert answer.headers["Content-Type"] == "application/ocsp-response"
                answers.append(answer.read())
    (tmp_path / "resp.der").write_bytes(answers[0])
    text = openssl("ocsp", "-respin", tmp_path / "resp.der", "-resp_text", "-CAfile", ecdsa_ca["chain"],
                   "-issuer", ecdsa_ca["issuing"]).stdout.decode()
    assert "Cert Status: good" in text
    assert answers[1] == answers[0]  # without a nonce, the signed answer is cached briefly
    assert asn1_ocsp.OCSPResponse.load(answers[2])["response_status"].native == "unauthorized"


def test_malformed_oversized_and_misdirected_requests(engine, session, keystore, ecdsa_ca, tmp_path):
    with served(engine, keystore, tmp_path) as base:
        status, kind, body = post(base, "/ocsp/ec-issuing", b"\x30\x03\x02\x01", OCSP_REQUEST)
        assert (status, kind) == (200, "application/ocsp-response")
        assert asn1_ocsp.OCSPResponse.load(body)["response_status"].native == "malformed_request"
        (tmp_path / "bad.der").write_bytes(body)
        assert b"malformedrequest" in openssl("ocsp", "-respin", tmp_path / "bad.der", "-resp_text",
                                              check=False).stdout.lower().replace(b" ", b"")
        with urllib.request.urlopen(f"{base}/ocsp/ec-issuing/not*base64!") as answer:
            assert asn1_ocsp.OCSPResponse.load(answer.read())["response_status"].native == "malformed_request"
        status, kind, _ = post(base, "/ocsp/ec-issuing", b"\x30" * (ocsp.MAX_REQUEST_BYTES + 1), OCSP_REQUEST)
        assert (status, kind) == (413, "application/problem+json")
        status, kind, _ = post(base, "/ocsp/ec-issuing", b"\x30\x00", content_type="text/plain")
        assert (status, kind) == (415, "application/problem+json")
        openssl("ocsp", "-issuer", ecdsa_ca["issuing"], "-cert", ecdsa_ca["leaf"], "-reqout", tmp_path / "q.der")
        status, _, body = post(base, "/ocsp/nobody", (tmp_path / "q.der").read_bytes(), OCSP_REQUEST)
        assert status == 200 and asn1_ocsp.OCSPResponse.load(body)["response_status"].native == "unauthorized"


def test_a_request_for_another_ca_is_unauthorized_and_audited(engine, session, keystore, ecdsa_ca, tmp_path):
    ocsp._refused.clear()  # coalescing is per process
    # The issuing CA's own certificate was issued by the root, not by ec-issuing.
    openssl("ocsp", "-issuer", ecdsa_ca["root"], "-cert", ecdsa_ca["issuing"], "-reqout", tmp_path / "other.der")
    openssl("ocsp", "-issuer", ecdsa_ca["issuing"], "-cert", ecdsa_ca["leaf"], "-reqout", tmp_path / "leaf.der")
    with served(engine, keystore, tmp_path) as base:
        for path, request in (("/ocsp/ec-issuing", "other.der"), ("/ocsp/ec-issuing", "other.der"),
                              ("/ocsp/nobody", "leaf.der")):
            status, _, body = post(base, path, (tmp_path / request).read_bytes(), OCSP_REQUEST)
            assert status == 200 and asn1_ocsp.OCSPResponse.load(body)["response_status"].native == "unauthorized"
        for garbage in (b"\x30\x03\x02\x01", b"\x30\x00", b"junk"):
            _, _, body = post(base, "/ocsp/ec-issuing", garbage, OCSP_REQUEST)
            assert asn1_ocsp.OCSPResponse.load(body)["response_status"].native == "malformed_request"
    session.commit()  # see what the server committed
    rows = session.execute(select(audit.audit_log).where(audit.audit_log.c.action == "ocsp.refused")
                           .order_by(audit.audit_log.c.seq)).all()
    # the repeated request is coalesced into one record; the byte garbage leaves none
    assert [(r.actor, r.target, json.loads(r.detail)["reason"]) for r in rows] == [
        ("ocsp", "ec-issuing", "a certificate of another CA"), ("ocsp", "nobody", "unknown CA")]
    for row, asked in zip(rows, ("root", "issuing"), strict=True):
        issuer = parse_certificate(ecdsa_ca[asked].read_bytes())
        assert json.loads(row.detail)["issuers"] == [{
            "hash_algorithm": "1.3.14.3.2.26",  # openssl's CertID hash, SHA-1
            "issuer_name_hash": hashlib.sha1(issuer.subject_der).hexdigest(),
            "issuer_key_hash": hashlib.sha1(issuer.public_key_bits).hexdigest()}]
    assert audit.verify_chain(session).ok


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_parse_request_fails_only_with_invalid_input(data):
    try:
        ocsp.parse_request(data)
    except InvalidInput as error:
        assert error.zh and "OCSP" in error.en


def test_sm2_responses_are_signed_with_sm2_with_sm3(session, keystore, creds, tmp_path):
    _root, issuing = authority.create_hierarchy(session, keystore, "gm", approval=creds)
    signer = authority.issue_with_new_key(session, keystore, "gm-issuing", "ocsp-signer",
                                          subject={"C": "CN", "O": "Trust", "CN": "GM OCSP"}, label="ocsp/gm")
    leaf = authority.issue(session, keystore, "gm-issuing", "organisation-signing", subject=ORG,
                           public_key=SM2PrivateKey.generate().public_key())
    issuing_pem = write_pem(tmp_path / "issuing.pem", issuing.certificate)
    openssl("ocsp", "-issuer", issuing_pem, "-serial", str(leaf.serial), "-reqout", tmp_path / "q.der")
    revoke(session, "gm-issuing", leaf.serial, "affiliationChanged", actor="officer-1")
    der = ocsp.respond(session, keystore, "gm-issuing", (tmp_path / "q.der").read_bytes())
    session.commit()
    (tmp_path / "r.der").write_bytes(der)
    text = openssl("ocsp", "-respin", tmp_path / "r.der", "-resp_text", "-noverify").stdout.decode()
    assert "Cert Status: revoked" in text and "affiliationChanged" in text and "SM2-with-SM3" in text
    basic = asn1_ocsp.OCSPResponse.load(der)["response_bytes"]["response"].parsed
    (tmp_path / "tbs.der").write_bytes(basic["tbs_response_data"].dump())
    (tmp_path / "sig.der").write_bytes(basic["signature"].native)
    write_pem(tmp_path / "signer.pem", signer.der)
    openssl("x509", "-in", tmp_path / "signer.pem", "-pubkey", "-noout", "-out", tmp_path / "signer.pub")
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "signer.pub", "-rawin", "-in", tmp_path / "tbs.der",
            "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.der")
