"""The algorithm registry: every algorithm by OID and name, checked against OpenSSL."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from trust import oids
from trust.algorithms import SIGNATURE_ALGORITHMS, signature_algorithm
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.keys import load_private_key, load_public_key
from trust.sm2 import SM2PrivateKey, SM2PublicKey

from oracles import STANDARD_ID, openssl

# name → (OID, openssl dgst arguments that verify it)
ORACLE = {
    "SM2-with-SM3": (oids.SM2_WITH_SM3, ["-sm3", "-sigopt", STANDARD_ID]),
    "ecdsa-with-SHA256": (oids.ECDSA_SHA256, ["-sha256"]),
    "ecdsa-with-SHA384": (oids.ECDSA_SHA384, ["-sha384"]),
    "sha256WithRSAEncryption": (oids.SHA256_RSA, ["-sha256"]),
    "RSASSA-PSS": (oids.RSA_PSS, ["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]),
    "Ed25519": (oids.ED25519, []),
}


def _public_pem(public) -> bytes:
    if isinstance(public, SM2PublicKey):
        return public.to_pem().encode()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("name", sorted(ORACLE))
def test_signatures_verify_with_openssl(tmp_path, name):
    oid, dgst_args = ORACLE[name]
    alg = signature_algorithm(oid)
    assert alg is signature_algorithm(name)
    key = alg.generate_key()
    message = "电子证照 licence".encode()
    signature = alg.sign(key, message)
    alg.verify(key.public_key(), message, signature)
    with pytest.raises(InvalidSignature):
        alg.verify(key.public_key(), message + b"!", signature)

    (tmp_path / "m.bin").write_bytes(message)
    (tmp_path / "sig").write_bytes(signature)
    (tmp_path / "pub.pem").write_bytes(_public_pem(key.public_key()))
    if name == "Ed25519":
        openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-in", tmp_path / "m.bin",
                "-sigfile", tmp_path / "sig")
    else:
        openssl("dgst", *dgst_args, "-verify", tmp_path / "pub.pem", "-signature", tmp_path / "sig", tmp_path / "m.bin")


@pytest.mark.parametrize("genpkey_args, expected", [
    (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2"], SM2PrivateKey),
    (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], None),
    (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], None),
    (["-algorithm", "ED25519"], None),
])
def test_openssl_keys_load_in_every_container(tmp_path, genpkey_args, expected):
    openssl("genpkey", *genpkey_args, "-out", tmp_path / "key.pem")
    der = openssl("pkey", "-in", tmp_path / "key.pem", "-outform", "DER").stdout
    pub_pem = openssl("pkey", "-in", tmp_path / "key.pem", "-pubout").stdout
    pub_der = openssl("pkey", "-in", tmp_path / "key.pem", "-pubout", "-outform", "DER").stdout
    key = load_private_key((tmp_path / "key.pem").read_bytes())
    assert type(load_private_key(der)) is type(key)
    if expected:
        assert isinstance(key, expected)
    assert _public_pem(key.public_key()) == _public_pem(load_public_key(pub_pem)) == _public_pem(load_public_key(pub_der))


def test_lookup_names_aliases_and_unknowns():
    assert signature_algorithm("ES256").name == "ecdsa-with-SHA256"
    assert signature_algorithm("sm2sign-with-sm3") is signature_algorithm(oids.SM2_SIGN)
    assert {a.name for a in SIGNATURE_ALGORITHMS} >= {"SM2-with-SM3", "Ed25519", "RSASSA-PSS"}
    for unknown in ("1.2.840.113549.1.1.5", "MD5withRSA", "", None):
        with pytest.raises(UnsupportedAlgorithm):
            signature_algorithm(unknown)
    assert issubclass(UnsupportedAlgorithm, InvalidInput)


def test_wrong_key_types_and_weak_rsa_are_refused():
    es256, sm2_alg, rs256 = (signature_algorithm(n) for n in ("ES256", "SM2", "RS256"))
    with pytest.raises(InvalidInput, match="cannot be used"):
        es256.sign(sm2_alg.generate_key(), b"m")
    with pytest.raises(InvalidInput, match="cannot be used"):
        sm2_alg.sign(es256.generate_key(), b"m")
    with pytest.raises(InvalidInput, match="cannot be used"):
        signature_algorithm("ES384").sign(es256.generate_key(), b"m")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidInput, match="at least 2048"):
        rs256.sign(weak, b"m")
    with pytest.raises(InvalidInput, match="at least 2048"):
        rs256.verify(weak.public_key(), b"m", bytes(128))


@pytest.mark.parametrize("bad", [b"", b"garbage", b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n",
                                 "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 42])
def test_unreadable_keys_raise_invalid_input(bad):
    with pytest.raises(InvalidInput):
        load_private_key(bad)
    with pytest.raises(InvalidInput):
        load_public_key(bad)


def test_encrypted_private_keys_are_refused(tmp_path):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:x",
            "-out", tmp_path / "enc.pem")
    with pytest.raises(InvalidInput, match="encrypted"):
        load_private_key((tmp_path / "enc.pem").read_bytes())
