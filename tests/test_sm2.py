"""SM2 against the GB/T 32918 vectors, OpenSSL 3 in both directions, and gmssl as a verifier."""

import pytest
from gmssl import func as gmssl_func, sm2 as gmssl_sm2, sm3 as gmssl_sm3
from hypothesis import given, settings, strategies as st

from trust import sm2
from trust.errors import DecryptionFailed, InvalidInput, InvalidSignature
from trust.hashes import sm3

from oracles import STANDARD_ID, openssl

# GB/T 32918.5-2017 Annex A (../shared/spec/sm-crypto.md §4)
D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
XA = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
YA = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
ZA = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"
E = "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640"
R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA
C1 = bytes.fromhex("04" "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
                   "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0")
C3 = bytes.fromhex("59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766")
C2 = bytes.fromhex("21886CA989CA9C7D58087307CA93092D651EFA")


@pytest.fixture(scope="module")
def key() -> sm2.SM2PrivateKey:
    return sm2.SM2PrivateKey.generate()


# ---------------------------------------------------------------- known answers

def test_standard_key_z_and_e():
    key = sm2.SM2PrivateKey(D)
    assert (key.public_key().x, key.public_key().y) == (XA, YA)
    assert key.public_key().z().hex() == ZA
    assert key.public_key().digest(b"message digest").hex() == E


def test_standard_signature_verifies_and_tampering_fails():
    public = sm2.SM2PublicKey(XA, YA)
    der = sm2.encode_signature(R, S)
    assert len(der) == 72  # both INTEGERs carry a 00 pad
    public.verify(der, b"message digest")
    public.verify(R.to_bytes(32, "big") + S.to_bytes(32, "big"), b"message digest", encoding="raw")
    with pytest.raises(InvalidSignature):
        public.verify(der, b"message digesT")
    with pytest.raises(InvalidSignature):
        public.verify(sm2.encode_signature(R, S ^ 1), b"message digest")
    with pytest.raises(InvalidSignature):
        public.verify(der, b"message digest", signer_id=b"1234567812345679")


def test_standard_ciphertext_decrypts_in_every_encoding():
    key = sm2.SM2PrivateKey(D)
    assert key.decrypt(C1 + C3 + C2, encoding="c1c3c2") == b"encryption standard"
    assert key.decrypt(C1 + C2 + C3, encoding="c1c2c3") == b"encryption standard"
    der = sm2.ciphertext_from_raw(C1 + C3 + C2)
    assert der.hex().startswith("307c0220")
    assert key.decrypt(der) == b"encryption standard"
    assert sm2.ciphertext_to_raw(der) == C1 + C3 + C2


def test_altered_ciphertext_is_refused_by_c3():
    key = sm2.SM2PrivateKey(D)
    altered = C1 + C3 + bytes([C2[0] ^ 1]) + C2[1:]
    with pytest.raises(DecryptionFailed):
        key.decrypt(altered, encoding="c1c3c2")
    with pytest.raises(DecryptionFailed):
        sm2.SM2PrivateKey.generate().decrypt(C1 + C3 + C2, encoding="c1c3c2")


# ---------------------------------------------------------------- independent verifier: gmssl

def _gmssl(public: sm2.SM2PublicKey) -> gmssl_sm2.CryptSM2:
    return gmssl_sm2.CryptSM2(private_key="", public_key=public.to_hex()[2:])


@settings(max_examples=10, deadline=None)
@given(message=st.binary(max_size=300))
def test_our_signatures_verify_with_gmssl(key, message):
    raw = key.sign(message, encoding="raw")
    assert _gmssl(key.public_key()).verify_with_sm3(raw.hex(), message)


def test_our_z_and_e_match_gmssl(key):
    public = key.public_key()
    assert _gmssl(public)._sm3_z(b"abc") == public.digest(b"abc").hex()
    assert gmssl_sm3.sm3_hash(gmssl_func.bytes_to_list(b"abc")) == sm3(b"abc").hex()


# ---------------------------------------------------------------- OpenSSL in both directions

@pytest.fixture(scope="module")
def openssl_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("openssl-sm2")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", d / "key.pem")
    openssl("pkey", "-in", d / "key.pem", "-pubout", "-out", d / "pub.pem")
    return d


def test_our_signature_verifies_with_openssl(tmp_path, key):
    message = "盖章的数据 / sealed data".encode()
    (tmp_path / "m.bin").write_bytes(message)
    (tmp_path / "pub.pem").write_text(key.public_key().to_pem())
    (tmp_path / "sig.der").write_bytes(key.sign(message))
    out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-in", tmp_path / "m.bin",
                  "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.der")
    assert b"Signature Verified Successfully" in out.stdout


def test_digest_signature_and_custom_id_verify_with_openssl(tmp_path, key):
    signer_id = b"ALICE123@YAHOO.COM"
    e = key.public_key().digest(b"payload", signer_id)
    (tmp_path / "e.bin").write_bytes(e)
    (tmp_path / "m.bin").write_bytes(b"payload")
    (tmp_path / "pub.pem").write_text(key.public_key().to_pem())
    (tmp_path / "sig.der").write_bytes(key.sign_digest(e))
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-in", tmp_path / "e.bin",
            "-sigfile", tmp_path / "sig.der")
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-in", tmp_path / "m.bin",
            "-digest", "sm3", "-pkeyopt", "hexdistid:" + signer_id.hex(), "-sigfile", tmp_path / "sig.der")


def test_openssl_signature_key_and_ciphertext_are_accepted(tmp_path, openssl_key):
    message = b"signed by OpenSSL"
    (tmp_path / "m.bin").write_bytes(message)
    openssl("pkeyutl", "-sign", "-inkey", openssl_key / "key.pem", "-rawin", "-in", tmp_path / "m.bin",
            "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-out", tmp_path / "sig.der")
    public = sm2.SM2PublicKey.from_pem((openssl_key / "pub.pem").read_text())
    public.verify((tmp_path / "sig.der").read_bytes(), message)

    private = sm2.SM2PrivateKey.from_pem((openssl_key / "key.pem").read_text())
    assert private.public_key() == public
    openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", openssl_key / "pub.pem", "-in", tmp_path / "m.bin",
            "-out", tmp_path / "ct.der")
    assert private.decrypt((tmp_path / "ct.der").read_bytes()) == message

    sec1 = openssl("ec", "-in", openssl_key / "key.pem").stdout  # OpenSSL labels it "SM2 PRIVATE KEY"
    assert sm2.SM2PrivateKey.from_pem(sec1).public_key() == public
    der = openssl("pkey", "-in", openssl_key / "key.pem", "-outform", "DER").stdout
    assert sm2.SM2PrivateKey.from_der(der).public_key() == public


def test_our_keys_and_ciphertext_work_in_openssl(tmp_path, key):
    for name, text in [("p8.pem", key.to_pkcs8_pem()), ("sec1.pem", key.to_sec1_pem())]:
        (tmp_path / name).write_text(text)
        out = openssl("pkey", "-in", tmp_path / name, "-pubout").stdout.decode()
        assert out == key.public_key().to_pem()
    # byte-identical to what OpenSSL itself writes for the same key
    assert openssl("pkey", "-in", tmp_path / "p8.pem").stdout.decode() == key.to_pkcs8_pem()
    (tmp_path / "ct.der").write_bytes(key.public_key().encrypt(b"to OpenSSL"))
    assert openssl("pkeyutl", "-decrypt", "-inkey", tmp_path / "p8.pem", "-in", tmp_path / "ct.der").stdout \
        == b"to OpenSSL"


# ---------------------------------------------------------------- encodings: round trips

scalars = st.integers(min_value=1, max_value=sm2.N - 1)


@given(r=scalars, s=scalars)
def test_signature_der_raw_round_trip(r, s):
    der = sm2.encode_signature(r, s)
    assert sm2.decode_signature(der) == (r, s)
    assert sm2.signature_from_raw(sm2.signature_to_raw(der)) == der


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=200))
def test_ciphertext_encodings_round_trip(key, plaintext):
    der = key.public_key().encrypt(plaintext)
    for order in ("c1c3c2", "c1c2c3"):
        raw = sm2.ciphertext_to_raw(der, order)
        assert sm2.ciphertext_from_raw(raw, order) == der
        assert key.decrypt(raw, encoding=order) == plaintext


@settings(max_examples=15, deadline=None)
@given(d=st.integers(min_value=1, max_value=sm2.N - 2))
def test_key_encodings_round_trip(d):
    key = sm2.SM2PrivateKey(d)
    public = key.public_key()
    for loaded in (sm2.SM2PrivateKey.from_pem(key.to_pkcs8_pem()), sm2.SM2PrivateKey.from_der(key.to_pkcs8_der()),
                   sm2.SM2PrivateKey.from_pem(key.to_sec1_pem()), sm2.SM2PrivateKey.from_der(key.to_sec1_der()),
                   sm2.SM2PrivateKey.from_hex(key.to_hex())):
        assert loaded.to_hex() == key.to_hex()
    assert sm2.SM2PublicKey.from_der(public.to_der()) == public
    assert sm2.SM2PublicKey.from_pem(public.to_pem()) == public
    assert sm2.SM2PublicKey.from_hex(public.to_hex()) == public
    assert sm2.SM2PublicKey.from_point(public.to_point()[1:]) == public
    compressed = bytes([2 + (public.y & 1)]) + public.x.to_bytes(32, "big")
    assert sm2.SM2PublicKey.from_point(compressed) == public


def test_repr_never_shows_the_private_key(key):
    assert key.to_hex() not in repr(key) and str(key.to_hex()[:16]) not in repr(key)


# ---------------------------------------------------------------- malformed input

GOOD_DER = sm2.encode_signature(R, S)


@pytest.mark.parametrize("bad, why", [
    (GOOD_DER[:-1], "truncated"),
    (GOOD_DER + b"\x00", "trailing byte"),
    (b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01", "huge length"),
    (b"\x30\x06\x02\x01\x00\x02\x01\x01", "r = 0"),
    (sm2.encode_signature(1, 1)[:2] + b"\x02\x02\x00\x01\x02\x01\x01", "non-minimal INTEGER (BER)"),
    (b"\x30\x00", "empty sequence"),
    (b"", "empty"),
    (b"\x04\x40" + bytes(64), "an OCTET STRING, not a SEQUENCE"),
])
def test_malformed_signatures_raise_invalid_input(bad, why):
    with pytest.raises(InvalidInput):
        sm2.SM2PublicKey(XA, YA).verify(bad, b"message digest")


def test_ber_signature_is_readable_when_not_strict():
    ber = b"\x30\x07\x02\x02\x00\x01\x02\x01\x01"
    assert sm2.decode_signature(ber, strict=False) == (1, 1)


def test_signature_values_out_of_range_are_refused():
    with pytest.raises(InvalidInput):
        sm2.signature_from_raw(sm2.N.to_bytes(32, "big") + (1).to_bytes(32, "big"))
    with pytest.raises(InvalidInput):
        sm2.signature_from_raw(bytes(63))


@pytest.mark.parametrize("point", [
    b"\x04" + XA.to_bytes(32, "big") + (YA ^ 1).to_bytes(32, "big"),  # off the curve
    b"\x04" + bytes(64),
    b"\x05" + bytes(64),
    b"\x04" + bytes(10),
    b"\x04" + b"\xff" * 64,  # coordinates ≥ p
])
def test_bad_points_raise_invalid_input(point):
    with pytest.raises(InvalidInput):
        sm2.SM2PublicKey.from_point(point)


def test_bad_private_keys_and_digests():
    for d in (0, sm2.N - 1, sm2.N, -5):
        with pytest.raises(InvalidInput):
            sm2.SM2PrivateKey(d)
    with pytest.raises(InvalidInput):
        sm2.SM2PrivateKey.from_hex("zz")
    with pytest.raises(InvalidInput):
        sm2.SM2PrivateKey.from_hex("01" * 31)
    with pytest.raises(InvalidInput):
        sm2.SM2PrivateKey(D).sign_digest(bytes(31))
    with pytest.raises(InvalidInput):
        sm2.SM2PrivateKey(D).sign("text is not bytes")
    with pytest.raises(InvalidInput):
        sm2.SM2PublicKey(XA, YA).encrypt(b"")


def test_keys_of_other_curves_are_not_sm2(tmp_path):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", tmp_path / "p256.pem")
    with pytest.raises(InvalidInput, match="not an SM2"):
        sm2.SM2PrivateKey.from_pem((tmp_path / "p256.pem").read_text())
    pub = openssl("pkey", "-in", tmp_path / "p256.pem", "-pubout").stdout
    with pytest.raises(InvalidInput, match="not an SM2"):
        sm2.SM2PublicKey.from_pem(pub)
    with pytest.raises(InvalidInput):
        sm2.SM2PublicKey.from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize("bad", [
    C1 + C3,  # no C2
    b"\x04" + XA.to_bytes(32, "big") + (YA ^ 1).to_bytes(32, "big") + C3 + C2,  # C1 off the curve
    b"\x30\x84\x7f\xff\xff\xff",
    sm2.ciphertext_from_raw(C1 + C3 + C2)[:-3],
])
def test_malformed_ciphertexts_raise_invalid_input(bad):
    encoding = "der" if bad[:1] == b"\x30" else "c1c3c2"
    with pytest.raises(InvalidInput):
        sm2.SM2PrivateKey(D).decrypt(bad, encoding=encoding)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120))
def test_fuzzed_decoders_fail_only_with_invalid_input(data):
    for decode in (sm2.decode_signature, sm2.ciphertext_to_raw, sm2.SM2PublicKey.from_der,
                   sm2.SM2PrivateKey.from_der, sm2.SM2PublicKey.from_point):
        try:
            decode(data)
        except InvalidInput:
            pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=100), position=st.integers(min_value=0))
def test_fuzzed_der_mutations_fail_only_with_invalid_input(data, position):
    der = bytearray(sm2.ciphertext_from_raw(C1 + C3 + C2))
    i = position % len(der)
    der[i:i + len(data)] = data
    try:
        sm2.ciphertext_to_raw(bytes(der))
    except InvalidInput:
        pass


@settings(max_examples=300, deadline=None)
@given(r=scalars, s=scalars, mutation=st.binary(min_size=1, max_size=3), position=st.integers(min_value=0))
def test_strict_reader_accepts_exactly_the_canonical_der(r, s, mutation, position):
    der = bytearray(sm2.encode_signature(r, s))
    i = position % len(der)
    der[i:i + len(mutation)] = mutation
    try:
        value = sm2.decode_signature(bytes(der))
    except InvalidInput:
        return
    assert sm2.encode_signature(*value) == bytes(der)  # whatever it accepts is canonical DER
