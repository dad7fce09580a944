"""One KeyStore behaviour suite over three configurations, on SQLite and PostgreSQL:

- soft-file:   software keys under a KEK from a master key file;
- soft-token:  software keys under an AES KEK inside a SoftHSM2 token;
- pkcs11:      ECDSA/RSA/Ed25519 generated and used inside SoftHSM2, SM2 (which SoftHSM
               lacks) kept by the software backend under the token's KEK.

Signatures are checked by the openssl CLI, the oracle nobody here wrote.
"""

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from hsm import envelope
from hsm.kek import FileKEK, TokenKEK, create_master_key_file
from hsm.keystore import KeyNotActive, KeyState, KeyStore, Usage, UsageNotPermitted
from hsm.models import hsm_keys
from hsm.pkcs11 import Pkcs11Backend, Token
from hsm.soft import SoftBackend
from trust import audit
from trust.algorithms import signature_algorithm
from trust.errors import InvalidInput, NotFound, TrustError
from trust.keys import load_public_key
from trust.sm2 import SM2PrivateKey, SM2PublicKey

from oracles import STANDARD_ID, openssl

CONFIGS = ["soft-file", "soft-token", "pkcs11"]


def make_keystore(config: str, tmp_path, request, **options) -> KeyStore:
    if config == "soft-file":
        create_master_key_file(tmp_path / "master.key")
        return KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft", **options)
    hsm = request.getfixturevalue("softhsm")
    token = Token(hsm.module, hsm.token_label, hsm.pin_file)
    request.addfinalizer(token.close)
    backends = [SoftBackend(TokenKEK(token))]
    if config == "pkcs11":
        backends.append(Pkcs11Backend(token))
    return KeyStore(backends, "soft" if config == "soft-token" else "pkcs11", **options)


@pytest.fixture(params=CONFIGS)
def keystore(request, tmp_path):
    return make_keystore(request.param, tmp_path, request)


def expected_backend(keystore: KeyStore, algorithm: str) -> str:
    return "pkcs11" if keystore.default == "pkcs11" and algorithm != "SM2-with-SM3" else "soft"


def _pem(public) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def openssl_verify(keystore, session, ref, message: bytes, signature: bytes, tmp_path) -> None:
    pub = tmp_path / "pub.pem"
    public = keystore.public_key(session, ref)
    pub.write_text(public.to_pem() if isinstance(public, SM2PublicKey) else _pem(public))
    (tmp_path / "m.bin").write_bytes(message)
    (tmp_path / "sig.bin").write_bytes(signature)
    if ref.algorithm == "SM2-with-SM3":
        openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", tmp_path / "m.bin",
                "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.bin")
    elif ref.algorithm == "Ed25519":
        openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", tmp_path / "m.bin",
                "-sigfile", tmp_path / "sig.bin")
    else:
        openssl("dgst", "-sha256", "-verify", pub, "-signature", tmp_path / "sig.bin", tmp_path / "m.bin")


@pytest.mark.parametrize("algorithm", ["SM2-with-SM3", "ecdsa-with-SHA256", "sha256WithRSAEncryption"])
def test_signatures_verify_with_openssl(keystore, session, tmp_path, algorithm):
    ref = keystore.generate(session, algorithm, f"k-{algorithm}", [Usage.DOCUMENT], actor="officer-a")
    assert ref.backend == expected_backend(keystore, algorithm)
    assert (ref.version, ref.state, ref.usages, ref.exportable) == (1, KeyState.ACTIVE, {Usage.DOCUMENT}, False)
    message = "盖章 document bytes".encode() * 10
    signature = keystore.sign(session, ref, message, usage=Usage.DOCUMENT)
    session.commit()
    openssl_verify(keystore, session, ref, message, signature, tmp_path)


def test_ed25519_verifies_with_openssl(keystore, session, tmp_path):
    ref = keystore.generate(session, "Ed25519", "ed", ["token"], actor="officer-a")
    assert ref.backend == expected_backend(keystore, "Ed25519")
    signature = keystore.sign(session, ref, b"jwt header.payload", usage="token")
    assert len(signature) == 64
    openssl_verify(keystore, session, ref, b"jwt header.payload", signature, tmp_path)


def test_prehashed_signatures(keystore, session):
    sm2 = keystore.generate(session, "SM2-with-SM3", "seal-pre", ["seal"], actor="a")
    public = keystore.public_key(session, sm2)
    e = public.digest(b"message")
    public.verify(keystore.sign(session, sm2, e, usage="seal", prehashed=True), b"message")
    ecdsa = keystore.generate(session, "ES256", "es-pre", ["token"], actor="a")
    signature = keystore.sign(session, ecdsa, hashlib.sha256(b"message").digest(), usage="token", prehashed=True)
    signature_algorithm("ES256").verify(keystore.public_key(session, ecdsa), b"message", signature)


def test_sm2_signer_id_is_passed_through(keystore, session):
    ref = keystore.generate(session, "SM2-with-SM3", "seal-id", ["seal"], actor="a")
    signature = keystore.sign(session, ref, b"m", usage="seal", signer_id=b"ALICE123@YAHOO.COM")
    keystore.public_key(session, ref).verify(signature, b"m", signer_id=b"ALICE123@YAHOO.COM")


def test_usage_is_enforced_and_named(keystore, session):
    ref = keystore.generate(session, "ES256", "seal-key", [Usage.SEAL, Usage.SEAL_MAKING], actor="a")
    with pytest.raises(UsageNotPermitted) as raised:
        keystore.sign(session, ref, b"x", usage=Usage.TOKEN)
    message = str(raised.value)
    assert ref.id in message and "token" in message and "seal, seal-making" in message
    assert raised.value.code == "usage_not_permitted" and isinstance(raised.value, InvalidInput)
    with pytest.raises(UsageNotPermitted):
        keystore.decrypt(session, ref, b"x", usage=Usage.SEAL)
    with pytest.raises(InvalidInput, match="unknown key usage"):
        keystore.sign(session, ref, b"x", usage="stamp")


def test_sm2_envelope_decrypts_only_for_its_usage(keystore, session):
    ref = keystore.generate(session, "SM2-with-SM3", "envelope", [Usage.ENCRYPTION], actor="a")
    assert ref.backend == "soft"  # SoftHSM has no SM2: the software backend under the token's KEK
    ciphertext = keystore.public_key(session, ref).encrypt("证照密钥".encode())
    assert keystore.decrypt(session, ref, ciphertext, usage=Usage.ENCRYPTION) == "证照密钥".encode()
    with pytest.raises(UsageNotPermitted):
        keystore.decrypt(session, ref, ciphertext, usage=Usage.ESCROW, actor="approval:x")
    with pytest.raises(UsageNotPermitted):
        keystore.sign(session, ref, b"x", usage=Usage.ENCRYPTION)
    with pytest.raises(InvalidInput, match="signs or decrypts"):
        keystore.generate(session, "SM2-with-SM3", "mixed", ["seal", "encryption"], actor="a")


def test_escrowed_key_is_made_and_enveloped_inside_the_keystore(keystore, session, tmp_path):
    escrow_ref = keystore.generate(session, "SM2-with-SM3", "escrow/test", ["escrow"], actor="a")
    applicant, officer = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    escrowed = keystore.generate_escrowed(session, recipient=applicant.public_key(), escrow_ref=escrow_ref,
                                          actor="ca")
    key = envelope.open_envelope(escrowed.envelope, applicant)
    # openssl derives the same public key from the enveloped private key.
    (tmp_path / "enc.key").write_text(key.to_pkcs8_pem())
    derived = openssl("pkey", "-in", tmp_path / "enc.key", "-pubout").stdout.decode()
    assert load_public_key(derived) == escrowed.public_key
    assert envelope.parse(escrowed.escrow_blob).public_key == escrowed.public_key
    with pytest.raises(TrustError):  # the escrow copy is not addressed to the applicant
        envelope.open_envelope(escrowed.escrow_blob, applicant)

    # The escrow key opens its copy only in an act approved under dual control.
    sealed = envelope.parse(escrowed.escrow_blob)
    for actor in ("service", "ca", "officer-1", "approval"):
        with pytest.raises(UsageNotPermitted, match="dual-control"):
            keystore.decrypt(session, escrow_ref, sealed.sym_encrypted_key, usage="escrow", actor=actor)
        with pytest.raises(UsageNotPermitted, match="dual-control"):
            keystore.recover_escrowed(session, escrow_ref, escrowed.escrow_blob, recipient=officer.public_key(),
                                      actor=actor)
    recovered = keystore.recover_escrowed(session, escrow_ref, escrowed.escrow_blob, recipient=officer.public_key(),
                                          actor="approval:req-1")
    assert envelope.open_envelope(recovered, officer).to_hex() == key.to_hex()
    session.commit()
    records = [(r.actor, r.action, r.target) for r in session.execute(select(audit.audit_log))]
    assert ("ca", "key.escrow", escrow_ref.id) in records
    assert ("approval:req-1", "key.decrypt", escrow_ref.id) in records
    assert key.to_hex() not in " ".join(r.detail for r in session.execute(select(audit.audit_log)))


def test_escrow_needs_an_active_escrow_key_and_an_sm2_recipient(keystore, session):
    recipient = SM2PrivateKey.generate().public_key()
    encryption = keystore.generate(session, "SM2-with-SM3", "enc", ["encryption"], actor="a")
    with pytest.raises(UsageNotPermitted, match="not an escrow key"):
        keystore.generate_escrowed(session, recipient=recipient, escrow_ref=encryption, actor="ca")
    escrow_ref = keystore.generate(session, "SM2-with-SM3", "escrow/x", ["escrow"], actor="a")
    ecdsa = keystore.generate(session, "ES256", "es", ["token"], actor="a")
    with pytest.raises(InvalidInput, match="SM2 public key"):
        keystore.generate_escrowed(session, recipient=keystore.public_key(session, ecdsa), escrow_ref=escrow_ref,
                                   actor="ca")
    keystore.set_state(session, escrow_ref, KeyState.SUSPENDED, actor="a")
    with pytest.raises(KeyNotActive):
        keystore.generate_escrowed(session, recipient=recipient, escrow_ref=escrow_ref, actor="ca")


def test_lifecycle_suspend_resume_and_illegal_transitions(keystore, session):
    ref = keystore.generate(session, "ES256", "ocsp", ["ocsp"], actor="a")
    keystore.sign(session, ref, b"x", usage="ocsp")
    suspended = keystore.set_state(session, ref, KeyState.SUSPENDED, actor="b", reason="audit")
    assert suspended.state == KeyState.SUSPENDED and suspended.suspended_at is not None
    with pytest.raises(KeyNotActive, match="suspended"):
        keystore.sign(session, ref, b"x", usage="ocsp")
    keystore.set_state(session, ref, KeyState.ACTIVE, actor="b")
    keystore.sign(session, ref, b"x", usage="ocsp")
    deactivated = keystore.set_state(session, ref, KeyState.DEACTIVATED, actor="b")
    with pytest.raises(InvalidInput) as raised:
        keystore.set_state(session, ref, KeyState.ACTIVE, actor="b")
    assert "deactivated" in str(raised.value) and "active" in str(raised.value)
    assert deactivated.deactivated_at is not None
    pre = keystore.generate(session, "ES256", "later", ["qr"], actor="a", state=KeyState.PRE_ACTIVE)
    with pytest.raises(KeyNotActive, match="pre-active"):
        keystore.sign(session, pre, b"x", usage="qr")
    assert keystore.set_state(session, pre, "active", actor="a").activated_at is not None


def test_rotation_keeps_old_versions_verifying(keystore, session):
    v1 = keystore.generate(session, "SM2-with-SM3", "licence-qr", ["qr"], actor="a")
    old_signature = keystore.sign(session, v1, b"payload", usage="qr")
    v2 = keystore.rotate(session, "licence-qr", actor="b")
    assert (v2.label, v2.version, v2.state, v2.usages, v2.algorithm) == ("licence-qr", 2, "active", {Usage.QR}, v1.algorithm)
    assert keystore.get(session, v1.id).state == KeyState.DEACTIVATED
    keystore.public_key(session, v1).verify(old_signature, b"payload")
    with pytest.raises(KeyNotActive, match="deactivated"):
        keystore.sign(session, v1, b"payload", usage="qr")
    keystore.public_key(session, v2).verify(keystore.sign(session, v2, b"payload", usage="qr"), b"payload")
    assert [r.version for r in keystore.list(session, label="licence-qr")] == [1, 2]
    with pytest.raises(InvalidInput, match="rotate"):
        keystore.generate(session, "SM2-with-SM3", "licence-qr", ["qr"], actor="a")


def test_destroy_wipes_the_private_key_and_keeps_the_record(keystore, session):
    ref = keystore.generate(session, "ES256", "ca-old", ["certificate"], actor="a")
    signature = keystore.sign(session, ref, b"tbs", usage="certificate")
    keystore.destroy(session, ref, actor="officer-b")
    session.commit()
    destroyed = keystore.get(session, ref.id)
    assert destroyed.state == KeyState.DESTROYED and destroyed.destroyed_at and destroyed.deactivated_at
    row = session.execute(select(hsm_keys).where(hsm_keys.c.id == ref.id)).one()
    assert row.wrapped_key is None
    signature_algorithm("ES256").verify(keystore.public_key(session, ref), b"tbs", signature)
    with pytest.raises(KeyNotActive, match="destroyed"):
        keystore.sign(session, ref, b"tbs", usage="certificate")
    assert keystore.list(session) == []
    assert [r.id for r in keystore.list(session, include_destroyed=True)] == [ref.id]
    with pytest.raises(InvalidInput, match="destroyed already"):
        keystore.destroy(session, ref, actor="officer-b")


def test_kek_rotation_rewraps_every_software_key(keystore, session):
    refs = [keystore.generate(session, "SM2-with-SM3", f"seal-{i}", ["seal"], actor="a") for i in range(3)]
    session.commit()
    before = {r.id: r.kek_id for r in session.execute(select(hsm_keys.c.id, hsm_keys.c.kek_id))}
    detail = keystore.rotate_kek(session, actor="officer-c")
    session.commit()
    after = {r.id: r.kek_id for r in session.execute(select(hsm_keys.c.id, hsm_keys.c.kek_id))}
    assert detail["keys"] == 3 and set(after.values()) == {detail["to"]} != set(before.values())
    fresh = KeyStore(keystore.backends.values(), keystore.default)  # no cached keys: unwraps again
    for ref in refs:
        keystore.public_key(session, ref).verify(fresh.sign(session, ref, b"m", usage="seal"), b"m")


def test_export_only_when_exportable(keystore, session):
    kept = keystore.generate(session, "SM2-with-SM3", "kept", ["escrow"], actor="a")
    with pytest.raises(InvalidInput, match="exportable"):
        keystore.export_wrapped(session, kept, actor="a")
    ref = keystore.generate(session, "SM2-with-SM3", "backup", ["escrow"], exportable=True, actor="a")
    envelope = json.loads(keystore.export_wrapped(session, ref, actor="a"))
    assert envelope["id"] == ref.id and envelope["format"] == "trust-wrapped-key/1"
    assert load_public_key(base64.b64decode(envelope["public_key"])) == keystore.public_key(session, ref)


def test_every_operation_is_audited_without_secrets(keystore, session):
    data = b"secret-looking document 0123456789"
    ref = keystore.generate(session, "SM2-with-SM3", "audited", ["seal"], actor="officer-a")
    session.commit()
    for _ in range(3):
        keystore.sign(session, ref, data, usage="seal", actor="seal-service")
    session.commit()
    keystore.get(session, ref.id)  # a transaction is open...
    keystore.sign(session, ref, data, usage="seal", actor="seal-service")
    session.rollback()  # ...and rolled back: its signature is not recorded, like its other changes
    keystore.set_state(session, ref, "suspended", actor="officer-b", reason="investigation")
    keystore.destroy(session, ref, actor="officer-c")
    session.commit()
    records = session.execute(select(audit.audit_log).order_by(audit.audit_log.c.seq)).all()
    assert [(r.actor, r.action) for r in records] == [
        ("officer-a", "key.generate"), ("seal-service", "key.sign"), ("officer-b", "key.state"),
        ("officer-c", "key.state"), ("officer-c", "key.destroy")]
    assert all(r.target == ref.id for r in records)
    assert json.loads(records[1].detail)["count"] == 3
    text = " ".join(r.detail for r in records)
    assert data.hex() not in text and data.decode() not in text and "wrapped" not in text
    assert audit.verify_chain(session).ok


def test_keyref_never_carries_key_material(keystore, session):
    ref = keystore.generate(session, "SM2-with-SM3", "repr", ["seal"], actor="a")
    row = session.execute(select(hsm_keys).where(hsm_keys.c.id == ref.id)).one()
    assert not any(isinstance(getattr(ref, f), bytes) for f in ref.__dataclass_fields__)
    if row.wrapped_key is not None:
        assert row.wrapped_key.hex() not in repr(ref)
    with pytest.raises(NotFound):
        keystore.get(session, "no-such-key")


def test_sign_many_checks_once_audits_the_count_and_reads_nothing_after_check_usable(keystore, session):
    ref = keystore.generate(session, "SM2-with-SM3", "batch", ["seal"], actor="a")
    session.commit()
    items = [bytes([i]) * 32 for i in range(5)]
    keystore.check_usable(session, ref, usage="seal")
    session.commit()  # no transaction is open from here on...
    values = keystore.sign_many(session, ref, items, usage="seal", prehashed=True, actor="batch-service")
    assert not session.in_transaction()  # ...and signing opened none
    public = keystore.public_key(session, ref)
    for e, value in zip(items, values, strict=True):
        public.verify_digest(value, e)
    session.commit()
    counted = session.execute(select(audit.audit_log.c.detail).where(audit.audit_log.c.actor == "batch-service")).scalars()
    assert [json.loads(d)["count"] for d in counted] == [5]
    assert keystore.sign_many(session, ref, [], usage="seal") == []
    with pytest.raises(UsageNotPermitted):
        keystore.check_usable(session, ref, usage="document")
    keystore.set_state(session, ref, "suspended", actor="a")
    with pytest.raises(KeyNotActive):
        keystore.sign_many(session, ref, items, usage="seal", prehashed=True)
