"""The PKCS#11 backend on a real SoftHSM2 token, checked with tools nobody here wrote:
pkcs11-tool (OpenSC) reads the token's objects, openssl verifies the signatures."""

import hashlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, ObjectClass
from sqlalchemy import text

from hsm.kek import TokenKEK
from hsm.keystore import KeyStore
from hsm.pkcs11 import SM2_PROFILES, Pkcs11Backend, Token, sm2_profile
from hsm.soft import SoftBackend
from trust.errors import InvalidInput, KeyUnavailable

from oracles import openssl
from tests.fixtures.softhsm import PIN


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: storage is covered on both databases by test_keystore.py."""
    return f"sqlite:///{tmp_path / 'trust.db'}"


@pytest.fixture
def token(softhsm):
    token = Token(softhsm.module, softhsm.token_label, softhsm.pin_file)
    yield token
    token.close()


@pytest.fixture
def keystore(token):
    return KeyStore([SoftBackend(TokenKEK(token)), Pkcs11Backend(token)], "pkcs11")


def pkcs11_tool(softhsm, token, *args: str) -> str:
    exe = shutil.which("pkcs11-tool")
    if exe is None:
        pytest.skip("pkcs11-tool (Debian: opensc) is not installed")
    token.close()  # SoftHSM may hold a new object's attributes back from other processes until then
    done = subprocess.run([exe, "--module", softhsm.module, "--token-label", softhsm.token_label,
                           "--login", "--pin", PIN, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_keys_are_generated_inside_the_token_non_extractable(keystore, token, session, softhsm, tmp_path):
    message = b"signed by pkcs11-tool"
    (tmp_path / "m").write_bytes(message)
    (tmp_path / "h").write_bytes(hashlib.sha256(message).digest())
    for alg, mechanism, data, verify in (
            ("ES256", "ECDSA", "h", ["dgst", "-sha256", "-verify"]),
            ("sha256WithRSAEncryption", "SHA256-RSA-PKCS", "m", ["dgst", "-sha256", "-verify"]),
            ("Ed25519", "EDDSA", "m", ["pkeyutl", "-verify", "-rawin", "-in", tmp_path / "m", "-pubin", "-inkey"])):
        ref = keystore.generate(session, alg, f"tok-{alg}", ["document"], actor="a")
        assert ref.backend == "pkcs11"
        private = token.run("test", lambda s, ref=ref: s.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                                                id=bytes.fromhex(ref.handle)))
        assert private[Attribute.EXTRACTABLE] is False and private[Attribute.SENSITIVE] is True
        assert private[Attribute.NEVER_EXTRACTABLE] is True and private[Attribute.TOKEN] is True
        # OpenSC's pkcs11-tool signs with the token's key; openssl verifies with the public key
        # we recorded: the record names the key that is in the token.
        pkcs11_tool(softhsm, token, "--sign", "--id", ref.handle, "--mechanism", mechanism,
                    "--signature-format", "openssl", "-i", str(tmp_path / data), "-o", str(tmp_path / "sig"))
        (tmp_path / "pub.pem").write_bytes(keystore.public_key(session, ref).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        if verify[0] == "dgst":
            openssl(*verify, tmp_path / "pub.pem", "-signature", tmp_path / "sig", tmp_path / "m")
        else:
            openssl(*verify, tmp_path / "pub.pem", "-sigfile", tmp_path / "sig")


def test_token_kek_is_an_unextractable_aes_key(keystore, token, session):
    keystore.generate(session, "SM2-with-SM3", "under-token-kek", ["seal"], actor="a")
    kek_id = session.execute(text("select kek_id from hsm_keks")).scalar()
    assert kek_id.startswith("pkcs11:trust-kek-")
    kek = token.find_secret_key(kek_id.removeprefix("pkcs11:"))
    assert kek[Attribute.EXTRACTABLE] is False and kek[Attribute.SENSITIVE] is True
    assert kek[Attribute.VALUE_LEN] == 32


@pytest.mark.parametrize("algorithm, openssl_args", [
    ("ecdsa-with-SHA256", ["dgst", "-sha256"]),
    ("sha256WithRSAEncryption", ["dgst", "-sha256"]),
    ("RSASSA-PSS", ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]),
])
@pytest.mark.parametrize("prehashed", [False, True])
def test_token_signatures_verify_with_openssl(keystore, session, tmp_path, algorithm, openssl_args, prehashed):
    ref = keystore.generate(session, algorithm, f"sig-{algorithm}-{prehashed}", ["document"], actor="a")
    message = b"PDF byte range " * 50
    data = hashlib.sha256(message).digest() if prehashed else message
    signature = keystore.sign(session, ref, data, usage="document", prehashed=prehashed)
    public = keystore.public_key(session, ref)
    (tmp_path / "pub.pem").write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "m").write_bytes(message)
    (tmp_path / "sig").write_bytes(signature)
    openssl(*openssl_args, "-verify", tmp_path / "pub.pem", "-signature", tmp_path / "sig", tmp_path / "m")


def test_destroy_removes_the_token_objects(keystore, token, session, softhsm):
    ref = keystore.generate(session, "ES256", "to-destroy", ["token"], actor="a")
    assert f"ID:         {ref.handle}" in pkcs11_tool(softhsm, token, "--list-objects")
    keystore.destroy(session, ref, actor="b")
    session.commit()
    assert ref.handle not in pkcs11_tool(softhsm, token, "--list-objects")
    keystore.public_key(session, ref)  # the record and the public key remain


def test_exportable_keys_are_refused_by_the_token_and_go_soft(keystore, session):
    ref = keystore.generate(session, "ES256", "exportable", ["token"], exportable=True, actor="a")
    assert ref.backend == "soft"  # the token never lets a key out; the soft backend wraps it
    with pytest.raises(InvalidInput, match="never exportable"):
        Pkcs11Backend(None).create(session, ref.id, "x", 1, "ES256", exportable=True)


def test_session_is_reopened_after_the_token_session_breaks(keystore, token, session):
    ref = keystore.generate(session, "ES256", "reopen", ["token"], actor="a")
    keystore.sign(session, ref, b"m", usage="token")
    token.close()  # as if the device had dropped the session
    keystore.sign(session, ref, b"m", usage="token")


def test_sm2_profiles():
    assert sm2_profile("none") is None
    assert sm2_profile("sansec") is SM2_PROFILES["sansec"]
    with pytest.raises(InvalidInput, match="unknown SM2 mechanism profile"):
        sm2_profile("acme")
    backend = Pkcs11Backend(None, SM2_PROFILES["mk1"])
    assert backend.supports("SM2-with-SM3", decrypts=False)
    assert not backend.supports("SM2-with-SM3", decrypts=True)
    assert not Pkcs11Backend(None).supports("SM2-with-SM3", decrypts=False)


def test_sm2_profile_the_module_lacks_fails_cleanly(token, session):
    """The vendor numbers reach C_GenerateKeyPair; SoftHSM has no SM2, so it refuses them,
    and nothing is recorded."""
    keystore = KeyStore([SoftBackend(TokenKEK(token)), Pkcs11Backend(token, SM2_PROFILES["sansec"])], "pkcs11")
    with pytest.raises(KeyUnavailable, match=r"key generation failed .MechanismInvalid"):
        keystore.generate(session, "SM2-with-SM3", "vendor-sm2", ["seal"], actor="a")
    session.rollback()
    assert keystore.list(session, include_destroyed=True) == []
