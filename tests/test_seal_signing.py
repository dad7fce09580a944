"""Seal use (用章): SES_Signature v4 signed through the KeyStore, singly and in batches.

Oracles: `openssl asn1parse` reads each signature; `openssl pkeyutl` verifies the SM2
signature over TBS_Sign with the key of the certificate embedded in it.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import pem
from sqlalchemy import select

from seal import registry, signing
from seal.ses import build_signature_v4, parse_signature
from seal.verify import verify_ses_signature
from trust.audit import audit_log
from trust.errors import InvalidInput, PermissionDenied
from trust.hashes import sm3
from trust.report import CheckName, CheckStatus, Status

from tests.fixtures.seal import new_seal
from tests.oracles import openssl

DATA = "批准文书 approval No. 42".encode()


def _sign(world, es_id, **options):
    options.setdefault("client_id", "app-1")
    options.setdefault("purpose", "审批结果 approval result")
    if "digest" not in options:
        options.setdefault("data", DATA)
    return signing.sign(world.session, world.keystore, es_id, **options)


def _audit(session, action):
    return [(r.actor, json.loads(r.detail)) for r in
            session.execute(select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq))]


def test_signature_parses_back_and_openssl_verifies_it(world, tmp_path):
    record = new_seal(world)
    der = _sign(world, record.es_id)
    world.session.commit()
    ses = parse_signature(der)
    assert ses.layout == 4 and ses.version == 4 and ses.warnings == ()
    assert ses.seal.raw == record.seal and ses.cert == world.holder_cert and ses.data_hash == sm3(DATA)
    assert ses.property_info == signing.property_info_for("审批结果 approval result")
    assert ses.time_stamp is None and ses.raw == der
    openssl("asn1parse", "-inform", "DER", "-in", str(_write(tmp_path / "sig.ses", der)))
    _write(tmp_path / "tbs.der", ses.tbs_raw)
    _write(tmp_path / "sig.der", ses.signature)
    _write(tmp_path / "signer.pem", pem.armor("CERTIFICATE", ses.cert))
    openssl("x509", "-in", tmp_path / "signer.pem", "-pubkey", "-noout", "-out", tmp_path / "signer.pub")
    done = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "signer.pub", "-rawin", "-digest", "sm3",
                   "-pkeyopt", "distid:1234567812345678", "-in", tmp_path / "tbs.der", "-sigfile",
                   tmp_path / "sig.der")
    assert b"Signature Verified Successfully" in done.stdout
    report = verify_ses_signature(der, data=DATA, trusted_roots=[world.root.cert_der])
    assert report.status == Status.VALID, report.to_dict()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_sign_a_digest_and_audit_the_use(world):
    record = new_seal(world, operators=["officer-7"])
    der = _sign(world, record.es_id, digest=sm3(DATA), operator="officer-7")
    world.session.commit()
    assert parse_signature(der).data_hash == sm3(DATA)
    [(actor, detail)] = _audit(world.session, "seal.sign")
    assert actor == "client:app-1/operator:officer-7"
    assert detail["purpose"] == "审批结果 approval result" and detail["data_hash"] == sm3(DATA).hex()


@pytest.mark.parametrize("digest", [b"", b"x" * 31, b"x" * 33, "ab" * 32])
def test_a_digest_of_the_wrong_length_is_refused(world, digest):
    record = new_seal(world)
    with pytest.raises(InvalidInput) as raised:
        _sign(world, record.es_id, digest=digest)
    assert "32" in raised.value.en and "32" in raised.value.zh
    with pytest.raises(InvalidInput):
        signing.sign_batch(world.session, world.keystore, record.es_id, [sm3(b"a"), digest], client_id="app-1",
                           purpose="p")


def test_data_or_digest_not_both(world):
    record = new_seal(world)
    with pytest.raises(InvalidInput):
        _sign(world, record.es_id, data=DATA, digest=sm3(DATA))


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_a_seal_not_active_cannot_sign(world, status):
    record = new_seal(world)
    registry.transition(world.session, record.es_id, status, actor="officer", reason="test")
    world.session.commit()
    for attempt in (lambda: _sign(world, record.es_id),
                    lambda: signing.sign_batch(world.session, world.keystore, record.es_id, [sm3(DATA)],
                                               client_id="app-1", purpose="p")):
        with pytest.raises(registry.SealNotActive) as raised:
            attempt()
        assert raised.value.code == "seal_not_active" and isinstance(raised.value, PermissionDenied)
    world.session.commit()  # the refusals are audited in the caller's transaction
    refusals = _audit(world.session, "seal.refuse")
    assert len(refusals) == 2 and refusals[0][1]["code"] == "seal_not_active"


def test_an_expired_period_cannot_sign(world):
    record = new_seal(world)
    later = lambda: datetime.now(UTC) + timedelta(days=400)  # noqa: E731
    with pytest.raises(registry.SealNotActive):
        _sign(world, record.es_id, clock=later)


@pytest.mark.parametrize("client_id, operator", [("app-2", None), ("app-1", None), ("app-1", "officer-8")])
def test_unauthorised_client_or_operator_is_refused_and_audited(world, client_id, operator):
    record = new_seal(world, clients=["app-1"], operators=["officer-7"])
    with pytest.raises(PermissionDenied) as raised:
        _sign(world, record.es_id, client_id=client_id, operator=operator)
    assert raised.value.code == "permission_denied"
    world.session.commit()
    [(actor, detail)] = _audit(world.session, "seal.refuse")
    assert actor == f"client:{client_id}" and detail["operator"] == operator
    assert _audit(world.session, "seal.sign") == []


def test_tampering_any_signed_byte_makes_it_invalid(world):
    record = new_seal(world)
    der = _sign(world, record.es_id)
    ses = parse_signature(der)
    start = der.index(ses.tbs_raw)
    picture = der.index(world.picture.data)
    # every byte of TBS_Sign outside the picture data (the picture is covered by the maker's
    # signature too, sampled), and the signature value
    positions = [p for p in range(start + 4, start + len(ses.tbs_raw))
                 if not picture <= p < picture + len(world.picture.data)]
    positions += list(range(picture, picture + len(world.picture.data), 97))
    positions += [der.index(ses.signature) + i for i in (4, 20, 40)]
    assert len(positions) > 1000
    for position in positions[::3]:
        tampered = bytearray(der)
        tampered[position] ^= 0x01
        report = verify_ses_signature(bytes(tampered), data=DATA)
        assert report.status == Status.INVALID, position


def test_batch_signatures_match_the_single_builder(world):
    record = new_seal(world)
    digests = [sm3(b"document %d" % i) for i in range(5)]
    at = datetime.now(UTC).replace(microsecond=0)  # inside the new seal's period
    batch = signing.sign_batch(world.session, world.keystore, record.es_id, digests, client_id="app-1",
                               purpose="批量 batch", clock=lambda: at)
    world.session.commit()
    assert len(batch) == 5
    for digest, der in zip(digests, batch, strict=True):
        ses = parse_signature(der)
        single = parse_signature(build_signature_v4(
            seal=record.seal, data_hash=digest, property_info=signing.property_info_for("批量 batch"),
            signer_cert=world.holder_cert, time_info=at, sign=lambda tbs, ses=ses: ses.signature))
        assert ses.tbs_raw == single.tbs_raw and der == single.raw and ses.warnings == ()
        report = verify_ses_signature(der, data_hash=digest, trusted_roots=[world.root.cert_der], at=at)
        assert report.check_status(CheckName.SIGNATURE) == CheckStatus.PASSED
        assert report.check_status(CheckName.INTEGRITY) == CheckStatus.PASSED
    [(actor, detail)] = _audit(world.session, "seal.sign-batch")
    assert actor == "client:app-1" and detail["count"] == 5 and detail["purpose"] == "批量 batch"
    [(_, key_use)] = [r for r in _audit(world.session, "key.sign") if r[1]["usage"] == "seal"]
    assert key_use["count"] == 5


def test_batch_of_a_thousand_and_no_more(world):
    record = new_seal(world)
    digests = [sm3(i.to_bytes(4, "big")) for i in range(1000)]
    batch = signing.sign_batch(world.session, world.keystore, record.es_id, digests, client_id="app-1", purpose="p")
    assert len(batch) == 1000 and parse_signature(batch[-1]).data_hash == digests[-1]
    assert verify_ses_signature(batch[777], data_hash=digests[777]).check_status(CheckName.SIGNATURE) == "PASSED"
    for bad in ([], [*digests, digests[0]]):
        with pytest.raises(InvalidInput):
            signing.sign_batch(world.session, world.keystore, record.es_id, bad, client_id="app-1", purpose="p")


def test_purpose_is_required_and_bounded(world):
    record = new_seal(world)
    for purpose in ("", " ", "x" * 201):
        with pytest.raises(InvalidInput):
            _sign(world, record.es_id, purpose=purpose)
