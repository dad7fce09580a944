"""Faults: a KEK or token that cannot be used gives KeyUnavailable naming what failed,
leaves nothing half-written, and verification keeps working; tampered wrapped keys are
caught on use."""

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select, update

from hsm.kek import SM4_GCM, FileKEK, PassphraseKEK, TokenKEK, create_master_key_file
from hsm.keystore import KeyStore, KeyStoreConfig, open_keystore
from hsm.models import hsm_keys
from hsm.pkcs11 import Pkcs11Backend, Token
from hsm.soft import SoftBackend
from trust import audit
from trust.algorithms import signature_algorithm
from trust.errors import DecryptionFailed, InvalidInput, KeyUnavailable


def file_keystore(path, **options) -> KeyStore:
    return KeyStore([SoftBackend(FileKEK(path), **options)], "soft", state_ttl=0)


def counts(session) -> tuple[int, int]:
    return (session.execute(select(func.count()).select_from(hsm_keys)).scalar(),
            session.execute(select(func.count()).select_from(audit.audit_log)).scalar())


@pytest.fixture
def made(session, tmp_path):
    """A key made with a good KEK file, committed."""
    create_master_key_file(tmp_path / "master.key")
    keystore = file_keystore(tmp_path / "master.key")
    ref = keystore.generate(session, "SM2-with-SM3", "seal", ["seal"], actor="a")
    signature = keystore.sign(session, ref, b"m", usage="seal")
    session.commit()
    return keystore, ref, signature


def assert_unavailable_and_intact(session, keystore, ref, signature, match: str):
    before = counts(session)
    with pytest.raises(KeyUnavailable, match=match):
        keystore.generate(session, "SM2-with-SM3", "another", ["seal"], actor="a")
    session.rollback()
    assert counts(session) == before  # no half-written key record, no audit record
    with pytest.raises(KeyUnavailable, match=match):
        keystore.sign(session, ref, b"m", usage="seal")
    with pytest.raises(KeyUnavailable, match=match):
        keystore.check_ready(session)
    keystore.public_key(session, ref).verify(signature, b"m")  # verification keeps working


def test_master_key_file_is_created_0600_and_never_overwritten(tmp_path):
    kek_id = create_master_key_file(tmp_path / "m.key")
    assert os.stat(tmp_path / "m.key").st_mode & 0o777 == 0o600
    assert kek_id.startswith("file:") and kek_id in (tmp_path / "m.key").read_text()
    with pytest.raises(InvalidInput, match="exists already"):
        create_master_key_file(tmp_path / "m.key")


def test_missing_kek_file(session, tmp_path, made):
    _keystore, ref, signature = made
    os.unlink(tmp_path / "master.key")
    assert_unavailable_and_intact(session, file_keystore(tmp_path / "master.key"), ref, signature,
                                  "master.key: cannot be opened")


def test_kek_file_open_to_others_is_refused(session, tmp_path, made):
    _, ref, signature = made
    os.chmod(tmp_path / "master.key", 0o644)
    assert_unavailable_and_intact(session, file_keystore(tmp_path / "master.key"), ref, signature,
                                  "mode 0644")


def test_wrong_kek_file(session, tmp_path, made):
    _, ref, signature = made
    create_master_key_file(tmp_path / "other.key")
    os.replace(tmp_path / "other.key", tmp_path / "master.key")
    assert_unavailable_and_intact(session, file_keystore(tmp_path / "master.key"), ref, signature,
                                  "does not hold KEK file:")


def test_kek_path_is_a_directory(session, tmp_path, made):
    _, ref, signature = made
    os.unlink(tmp_path / "master.key")
    os.mkdir(tmp_path / "master.key")
    assert_unavailable_and_intact(session, file_keystore(tmp_path / "master.key"), ref, signature, "master.key")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_any_kek_file_content_fails_cleanly(tmp_path, content):
    path = tmp_path / "fuzz.key"
    path.write_bytes(content)
    path.chmod(0o600)
    try:
        FileKEK(path).check_ready(None)
    except KeyUnavailable:
        pass


def test_bit_flip_in_wrapped_key_is_detected(session, tmp_path, made):
    _keystore, ref, signature = made
    wrapped = session.execute(select(hsm_keys.c.wrapped_key).where(hsm_keys.c.id == ref.id)).scalar()
    flipped = bytearray(wrapped)
    flipped[len(flipped) // 2] ^= 0x01
    session.execute(update(hsm_keys).where(hsm_keys.c.id == ref.id).values(wrapped_key=bytes(flipped)))
    session.commit()
    fresh = file_keystore(tmp_path / "master.key")  # a process that has not unwrapped it yet
    with pytest.raises(DecryptionFailed, match=r"integrity check .* altered in the database"):
        fresh.sign(session, ref, b"m", usage="seal")
    fresh.public_key(session, ref).verify(signature, b"m")


def test_wrapped_key_moved_to_another_row_fails(session, tmp_path, made):
    keystore, ref, _ = made
    other = keystore.generate(session, "SM2-with-SM3", "other", ["seal"], actor="a")
    wrapped = session.execute(select(hsm_keys.c.wrapped_key).where(hsm_keys.c.id == ref.id)).scalar()
    session.execute(update(hsm_keys).where(hsm_keys.c.id == other.id).values(wrapped_key=wrapped))
    session.commit()
    with pytest.raises(DecryptionFailed, match="moved from another row"):
        file_keystore(tmp_path / "master.key").sign(session, other, b"m", usage="seal")


def test_kek_rotation_is_all_or_nothing(session, tmp_path, made):
    keystore, ref, _ = made
    keystore.generate(session, "ES256", "b", ["token"], actor="a")
    session.commit()
    before = session.execute(select(hsm_keys.c.id, hsm_keys.c.wrapped_key, hsm_keys.c.kek_id)
                             .order_by(hsm_keys.c.id)).all()
    wrapped = session.execute(select(hsm_keys.c.wrapped_key).where(hsm_keys.c.id == ref.id)).scalar()
    session.execute(update(hsm_keys).where(hsm_keys.c.id == ref.id).values(wrapped_key=wrapped[:-1] + b"\x00"))
    session.commit()
    with pytest.raises(DecryptionFailed):
        keystore.rotate_kek(session, actor="c")
    session.rollback()
    after = session.execute(select(hsm_keys.c.id, hsm_keys.c.kek_id).order_by(hsm_keys.c.id)).all()
    assert [(r.id, r.kek_id) for r in before] == [(r.id, r.kek_id) for r in after]


def test_state_change_in_another_process_is_seen(session, tmp_path, made):
    keystore, ref, _ = made
    other_worker = file_keystore(tmp_path / "master.key")
    other_worker.set_state(session, ref, "suspended", actor="b")
    session.commit()
    with pytest.raises(InvalidInput, match="suspended"):
        keystore.sign(session, ref, b"m", usage="seal")  # state_ttl=0: read at every use


def test_sm4_gcm_wrapping(session, tmp_path):
    create_master_key_file(tmp_path / "k")
    keystore = file_keystore(tmp_path / "k", cipher=SM4_GCM)
    ref = keystore.generate(session, "SM2-with-SM3", "sm4", ["seal"], actor="a")
    assert session.execute(select(hsm_keys.c.wrap_cipher)).scalar() == "SM4-GCM"
    fresh = file_keystore(tmp_path / "k", cipher=SM4_GCM)
    fresh.public_key(session, ref).verify(fresh.sign(session, ref, b"m", usage="seal"), b"m")


def test_passphrase_kek(session, tmp_path):
    keystore = KeyStore([SoftBackend(PassphraseKEK(b"correct horse battery staple"))], "soft")
    ref = keystore.generate(session, "SM2-with-SM3", "pp", ["seal"], actor="a")
    session.commit()
    wrong = KeyStore([SoftBackend(PassphraseKEK(b"wrong horse battery staple"))], "soft")
    with pytest.raises(KeyUnavailable, match="wrong passphrase"):
        wrong.sign(session, ref, b"m", usage="seal")
    right = KeyStore([SoftBackend(PassphraseKEK(b"correct horse battery staple"))], "soft")
    right.public_key(session, ref).verify(right.sign(session, ref, b"m", usage="seal"), b"m")


def token_keystore(hsm, pin_file=None, module=None) -> KeyStore:
    token = Token(module or hsm.module, hsm.token_label, pin_file or hsm.pin_file)
    return KeyStore([SoftBackend(TokenKEK(token)), Pkcs11Backend(token)], "pkcs11", state_ttl=0)


@pytest.fixture
def token_made(session, softhsm):
    keystore = token_keystore(softhsm)
    ref = keystore.generate(session, "ES256", "p256", ["token"], actor="a")
    sm2 = keystore.generate(session, "SM2-with-SM3", "sm2", ["seal"], actor="a")
    signatures = (keystore.sign(session, ref, b"m", usage="token"), keystore.sign(session, sm2, b"m", usage="seal"))
    session.commit()
    keystore.backends["pkcs11"].token.close()  # logged out: PKCS#11 login is per process and token
    return ref, sm2, signatures


def assert_token_fault(session, keystore, made, match: str):
    ref, sm2, (signature, sm2_signature) = made
    before = counts(session)
    for algorithm in ("ES256", "SM2-with-SM3"):
        with pytest.raises(KeyUnavailable, match=match):
            keystore.generate(session, algorithm, f"new-{algorithm}", ["seal"], actor="a")
        session.rollback()
    assert counts(session) == before
    with pytest.raises(KeyUnavailable, match=match):
        keystore.sign(session, ref, b"m", usage="token")
    with pytest.raises(KeyUnavailable, match=match):
        keystore.sign(session, sm2, b"m", usage="seal")
    with pytest.raises(KeyUnavailable, match=match):
        keystore.check_ready(session)
    signature_algorithm("ES256").verify(keystore.public_key(session, ref), b"m", signature)
    keystore.public_key(session, sm2).verify(sm2_signature, b"m")


def test_wrong_pin(session, softhsm, token_made, tmp_path):
    (tmp_path / "pin").write_text("000000")
    assert_token_fault(session, token_keystore(softhsm, pin_file=tmp_path / "pin"), token_made, "wrong PIN")


def test_missing_pin_file(session, softhsm, token_made, tmp_path):
    assert_token_fault(session, token_keystore(softhsm, pin_file=tmp_path / "nope"), token_made,
                       "PIN file .*nope cannot be read")


def test_missing_module(session, softhsm, token_made, tmp_path):
    assert_token_fault(session, token_keystore(softhsm, module=str(tmp_path / "libnone.so")), token_made,
                       "libnone.so is missing")


def test_token_not_present(session, softhsm, token_made):
    token = Token(softhsm.module, "no-such-token", softhsm.pin_file)
    keystore = KeyStore([SoftBackend(TokenKEK(token)), Pkcs11Backend(token)], "pkcs11", state_ttl=0)
    assert_token_fault(session, keystore, token_made, "no token with this label")


def test_open_keystore_from_environment(session, softhsm, tmp_path, monkeypatch):
    for name, value in softhsm.env(TRUST_KEYSTORE="pkcs11").items():
        monkeypatch.setenv(name, value)
    keystore = open_keystore(KeyStoreConfig.from_env(home=tmp_path))
    assert keystore.default == "pkcs11" and set(keystore.backends) == {"soft", "pkcs11"}
    keystore.check_ready(session)
    keystore.backends["pkcs11"].token.close()
    monkeypatch.setenv("TRUST_KEYSTORE", "soft")
    monkeypatch.setenv("TRUST_KEK_SOURCE", "file")
    with pytest.raises(KeyUnavailable, match=r"master\.key"):
        open_keystore(KeyStoreConfig.from_env(home=tmp_path)).check_ready(session)
    monkeypatch.delenv("TRUST_PKCS11_PIN_FILE")
    monkeypatch.setenv("TRUST_KEYSTORE", "pkcs11")
    monkeypatch.delenv("TRUST_KEK_SOURCE")
    with pytest.raises(InvalidInput, match="TRUST_PKCS11_PIN_FILE"):
        open_keystore(KeyStoreConfig.from_env(home=tmp_path))
