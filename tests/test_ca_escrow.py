"""Dual certificates: the encryption key comes back in an SM2 envelope, is escrowed, and is
recovered only under dual control."""

import pytest
from asn1crypto import pem
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from ca import authority, escrow
from ca.models import ca_escrow
from hsm import dual_control, envelope
from hsm.keystore import UsageNotPermitted
from trust import audit
from trust.errors import InvalidInput, TrustError
from trust.sm2 import SM2PrivateKey
from trust.x509 import parse_certificate

from tests.oracles import openssl


@pytest.fixture
def applicant(session, keystore, creds):
    authority.create_hierarchy(session, keystore, "sm2", approval=creds[:2])
    key = SM2PrivateKey.generate()
    cert = authority.issue(session, keystore, "sm2-issuing", "personal-signing", subject={"CN": "王五"},
                           public_key=key.public_key())
    session.commit()
    return key, cert


def test_envelope_opens_with_the_signing_key_and_recovery_needs_two_officers(session, keystore, creds, applicant,
                                                                                tmp_path):
    signing_key, signing_cert = applicant
    dual = escrow.issue_dual_certificate(session, keystore, "sm2-issuing", signing_cert.der)
    session.commit()
    enc_cert = parse_certificate(dual.certificate.der)
    assert enc_cert.key_usage == {"key_encipherment", "data_encipherment", "key_agreement"}
    recovered_by_applicant = envelope.open_envelope(dual.envelope, signing_key)
    assert recovered_by_applicant.public_key() == enc_cert.public_key()
    # openssl agrees the certificate's key is the enveloped one: encrypt to the certificate, decrypt with the key.
    (tmp_path / "enc.pem").write_bytes(pem.armor("CERTIFICATE", dual.certificate.der))
    (tmp_path / "enc.key").write_text(recovered_by_applicant.to_pkcs8_pem())
    openssl("x509", "-in", tmp_path / "enc.pem", "-pubkey", "-noout", "-out", tmp_path / "enc.pub")
    ct = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", tmp_path / "enc.pub", input=b"secret").stdout
    assert openssl("pkeyutl", "-decrypt", "-inkey", tmp_path / "enc.key", input=ct).stdout == b"secret"

    # The escrowed copy opens only through an approved act: not by decrypting with the escrow key.
    row = session.execute(select(ca_escrow)).one()
    escrow_ref = keystore.get(session, row.escrow_key_id)
    sealed = envelope.parse(bytes(row.envelope))
    assert sealed.public_key == enc_cert.public_key()
    for actor in ("ca", "service", "officer-1"):
        with pytest.raises(UsageNotPermitted):
            keystore.decrypt(session, escrow_ref, sealed.sym_encrypted_key, usage="escrow", actor=actor)
        with pytest.raises(UsageNotPermitted):
            keystore.recover_escrowed(session, escrow_ref, bytes(row.envelope),
                                      recipient=signing_key.public_key(), actor=actor)

    # Lawful recovery: to a recipient key, two officers.
    recipient = SM2PrivateKey.generate()
    req = escrow.request_recovery(session, keystore, "sm2-issuing", dual.certificate.serial,
                                  recipient.public_key().to_pem(), reason="court order 2026-001",
                                  credential=creds[0])
    session.commit()
    assert req.status == "pending" and req.still_needed == 1
    with pytest.raises(TrustError):
        dual_control.approve(session, keystore, req.id, credential=creds[0])  # not one's own request
    session.rollback()
    done = dual_control.approve(session, keystore, req.id, credential=creds[1])
    session.commit()
    assert done.status == "executed", done.error
    recovered = envelope.open_envelope(bytes.fromhex(done.result["envelope"]), recipient)
    assert recovered.to_hex() == recovered_by_applicant.to_hex()
    row = session.execute(select(ca_escrow)).one()
    assert row.recovered_at is not None
    recorded = [(r.action, r.target) for r in session.execute(select(audit.audit_log))]
    assert ("ca.recover", f"sm2-issuing:{dual.certificate.serial}") in recorded
    assert ("ca.escrow", f"sm2-issuing:{dual.certificate.serial}") in recorded
    assert audit.verify_chain(session).ok


def test_only_our_good_signing_certificates_get_a_dual_certificate(session, keystore, creds, applicant):
    _key, signing_cert = applicant
    dual = escrow.issue_dual_certificate(session, keystore, "sm2-issuing", signing_cert.der)
    session.commit()
    for der in (dual.certificate.der, signing_cert.der[:-1] + bytes([signing_cert.der[-1] ^ 1])):
        with pytest.raises(TrustError):
            escrow.issue_dual_certificate(session, keystore, "sm2-issuing", der)
        session.commit()
    assert len(session.execute(select(ca_escrow)).all()) == 1
    refused = session.execute(select(audit.audit_log).where(audit.audit_log.c.action == "ca.refuse")).all()
    assert [r.target for r in refused] == ["sm2-issuing:encryption"] * 2


def test_recovery_request_checks_its_parameters(session, keystore, creds, applicant):
    with pytest.raises(TrustError):
        escrow.request_recovery(session, keystore, "sm2-issuing", 1, SM2PrivateKey.generate().public_key().to_pem(),
                                reason="x", credential=creds[0])
    session.rollback()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_envelope_parser_fails_cleanly(data):
    try:
        envelope.parse(data)
    except InvalidInput:
        pass


def test_envelope_parser_refuses_mutations():
    key, to = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    good = envelope.seal(key, to.public_key())
    assert envelope.open_envelope(good, to).to_hex() == key.to_hex()
    for i in range(0, len(good), 7):
        bad = good[:i] + bytes([good[i] ^ 0x55]) + good[i + 1:]
        try:
            assert envelope.open_envelope(bad, to).to_hex() == key.to_hex()
        except TrustError:
            pass
