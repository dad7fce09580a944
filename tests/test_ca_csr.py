"""PKCS#10 requests from openssl req are verified and issued; bad ones are refused."""

import random

import pytest
from asn1crypto import pem
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from ca import authority, csr
from ca.models import ca_certificate
from trust import audit
from trust.errors import InvalidInput, InvalidSignature, TrustError, UnsupportedAlgorithm
from trust.ids import generate_uscc

from tests.fixtures.ca import write_pem
from tests.oracles import STANDARD_ID, openssl

USCC = generate_uscc(random.Random(7))


def make_csr(tmp_path, algorithm: str, subject: str, *extra: str) -> bytes:
    key = tmp_path / f"{algorithm}.key"
    if algorithm == "sm2":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", key)
        sign = ("-sm3", "-sigopt", STANDARD_ID)
    elif algorithm == "ecdsa":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        sign = ("-sha256",)
    else:
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
        sign = ("-sha256",)
    out = tmp_path / f"{algorithm}.csr"
    openssl("req", "-new", "-key", key, *sign, "-subj", subject, "-utf8", "-outform", "DER", "-out", out, *extra)
    return out.read_bytes()


@pytest.fixture
def sm2_ca(session, keystore, creds):
    authority.create_hierarchy(session, keystore, "sm2", approval=creds[:2])
    session.commit()


def test_an_sm2_csr_from_openssl_req_is_issued(session, keystore, sm2_ca, tmp_path):
    der = make_csr(tmp_path, "sm2", f"/C=CN/O=演示单位/CN=演示单位签章/organizationIdentifier={USCC}")
    request = csr.parse_csr(der)
    assert request.signature_algorithm == "1.2.156.10197.1.501"
    issued = authority.issue(session, keystore, "sm2-issuing", "organisation-signing", csr_der=der)
    session.commit()
    inter = write_pem(tmp_path / "i.pem", authority.get_authority(session, "sm2-issuing").certificate)
    leaf = write_pem(tmp_path / "l.pem", issued.der)
    openssl("verify", "-partial_chain", "-CAfile", inter, "-vfyopt", STANDARD_ID, leaf)
    # the certificate certifies the key of the request
    assert openssl("x509", "-in", leaf, "-noout", "-pubkey").stdout == \
        openssl("req", "-in", tmp_path / "sm2.csr", "-inform", "DER", "-noout", "-pubkey").stdout
    assert USCC in issued.subject


@pytest.mark.parametrize("family", ["ecdsa", "rsa"])
def test_ecdsa_and_rsa_csrs_are_verified(family, tmp_path):
    der = make_csr(tmp_path, family, "/CN=trust.example", "-addext", "subjectAltName=DNS:trust.example")
    assert csr.parse_csr(der).dns_names == ("trust.example",)
    assert csr.parse_csr(pem.armor("CERTIFICATE REQUEST", der)).der == der


def test_bad_csrs_are_refused_nothing_issued_attempt_audited(session, keystore, sm2_ca, tmp_path):
    good = make_csr(tmp_path, "sm2", "/CN=张三")
    # the signature is the last bytes: flip one
    bad_signature = good[:-3] + bytes([good[-3] ^ 1]) + good[-2:]
    # signed with the empty ID (openssl without distid): does not verify with the standard ID
    key = tmp_path / "sm2.key"
    empty_id = tmp_path / "empty.csr"
    openssl("req", "-new", "-key", key, "-sm3", "-subj", "/CN=x", "-outform", "DER", "-out", empty_id)
    cases = [
        (bad_signature, (InvalidSignature, InvalidInput)),
        (empty_id.read_bytes(), InvalidSignature),
        (b"\x30\x03\x02\x01\x00", InvalidInput),
        (b"\x00" * (csr.MAX_CSR_BYTES + 1), InvalidInput),
        (make_csr(tmp_path, "ecdsa", "/CN=x", "-sha1"), UnsupportedAlgorithm),
        (good, InvalidInput),  # organisation profile: no USCC in the subject
    ]
    for der, error in cases:
        with pytest.raises(error):
            authority.issue(session, keystore, "sm2-issuing", "organisation-signing", csr_der=der)
        session.commit()
    assert session.execute(select(ca_certificate).where(ca_certificate.c.issuer == "sm2-issuing")).all() == []
    refused = session.execute(select(audit.audit_log).where(audit.audit_log.c.action == "ca.refuse")).all()
    assert len(refused) == len(cases)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_the_csr_parser_fails_only_with_our_errors(data):
    try:
        csr.parse_csr(data)
    except TrustError:
        pass


def test_mutated_csrs_fail_cleanly(tmp_path):
    good = make_csr(tmp_path, "sm2", "/CN=张三")
    for i in range(len(good)):
        for flip in (0x01, 0x80):
            try:
                csr.parse_csr(good[:i] + bytes([good[i] ^ flip]) + good[i + 1:])
            except TrustError:
                pass
