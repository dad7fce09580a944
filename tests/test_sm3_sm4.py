"""SM3, HMAC-SM3 and SM4 against the standards' vectors and against OpenSSL and gmssl."""

import os

import pytest
from gmssl import sm4 as gmssl_sm4
from hypothesis import given, settings, strategies as st

from trust import sm4
from trust.errors import DecryptionFailed, InvalidInput, UnsupportedAlgorithm
from trust.hashes import SM3, hash_algorithm, hmac_sm3, sm3

from oracles import openssl

KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm3_vectors():  # GB/T 32905 Annex A
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


@settings(max_examples=200)
@given(data=st.binary(max_size=3000))
def test_sm3_through_python_openssl_equals_tongsuo(data):
    """trust.hashes takes SM3 from Python's OpenSSL where it has it; Tongsuo is the other
    implementation of the same function."""
    from tongsuopy.crypto import hashes as tongsuo_hashes
    reference = tongsuo_hashes.Hash(tongsuo_hashes.SM3())
    reference.update(data)
    assert sm3(data) == reference.finalize()


def test_the_tongsuo_fallback_passes_the_vectors(monkeypatch):
    import trust.hashes
    monkeypatch.setattr(trust.hashes, "_HASHLIB_SM3", False)
    test_sm3_vectors()
    h = SM3(b"ab")
    h.update(b"c")
    assert h.copy().hexdigest() == h.hexdigest() == sm3(b"abc").hex()


@given(data=st.binary(max_size=500), cut=st.integers(min_value=0, max_value=500))
def test_incremental_sm3_equals_one_shot(data, cut):
    h = SM3(data[:cut])
    snapshot = h.copy()
    h.update(data[cut:])
    assert h.digest() == h.digest() == sm3(data)
    assert snapshot.digest() == sm3(data[:cut])


def test_hash_lookup_by_name_and_oid():
    assert hash_algorithm("1.2.156.10197.1.401").digest(b"abc") == sm3(b"abc")
    assert hash_algorithm("sm3").name == hash_algorithm("SM3").name == "SM3"
    assert hash_algorithm("sha256").digest(b"") == hash_algorithm("SHA-256").digest(b"")
    with pytest.raises(UnsupportedAlgorithm):
        hash_algorithm("MD5")
    with pytest.raises(InvalidInput):
        sm3("text")


@pytest.mark.parametrize("key, data", [(b"key", b"data"), (b"k" * 100, b""), (os.urandom(64), os.urandom(300))],
                         ids=["short", "long-key-empty-data", "random"])  # ids: the same in every xdist worker
def test_hmac_sm3_matches_openssl(key, data):
    out = openssl("mac", "-digest", "SM3", "-macopt", "hexkey:" + key.hex(), "HMAC", input=data).stdout
    assert hmac_sm3(key, data).hex() == out.decode().strip().lower()


def test_sm4_block_vector_and_million_iterations():  # GB/T 32907 Annex A
    assert sm4.encrypt_ecb(KEY, KEY, padding=False).hex() == "681edf34d206965e86b3e94f536e4246"
    assert sm4.decrypt_ecb(KEY, bytes.fromhex("681edf34d206965e86b3e94f536e4246"), padding=False) == KEY
    from tongsuopy.crypto.ciphers import Cipher, algorithms, modes  # one context: a million calls stay fast
    encryptor = Cipher(algorithms.SM4(KEY), modes.ECB()).encryptor()
    block = KEY
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm4_gcm_rfc8998_vector():  # RFC 8998 Appendix A.1
    nonce = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                              "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
    expected = ("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
                "83DE3541E4C2B58177E065A9BF7B62EC")
    assert sm4.encrypt_gcm(KEY, nonce, plaintext, aad).hex().upper() == expected
    assert sm4.decrypt_gcm(KEY, nonce, bytes.fromhex(expected), aad) == plaintext


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000])
def test_sm4_ecb_cbc_ctr_match_openssl(size):
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(size)
    for ours, name, with_iv in [(sm4.encrypt_ecb(key, data), "sm4-ecb", False),
                                (sm4.encrypt_cbc(key, iv, data), "sm4-cbc", True),
                                (sm4.crypt_ctr(key, iv, data), "sm4-ctr", True)]:
        args = ["enc", "-" + name, "-K", key.hex()] + (["-iv", iv.hex()] if with_iv else [])
        assert openssl(*args, input=data).stdout == ours, name
    assert sm4.decrypt_cbc(key, iv, sm4.encrypt_cbc(key, iv, data)) == data
    assert sm4.crypt_ctr(key, iv, sm4.crypt_ctr(key, iv, data)) == data


def test_sm4_ecb_cbc_match_gmssl():
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(100)
    theirs = gmssl_sm4.CryptSM4()
    theirs.set_key(key, gmssl_sm4.SM4_ENCRYPT)
    assert theirs.crypt_ecb(data) == sm4.encrypt_ecb(key, data)
    assert theirs.crypt_cbc(iv, data) == sm4.encrypt_cbc(key, iv, data)


def _independent_gcm(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """SM4-GCM from gmssl's SM4 block function and a GHASH written here (NIST SP 800-38D)."""
    block = gmssl_sm4.CryptSM4(padding_mode=-1)  # no padding
    block.set_key(key, gmssl_sm4.SM4_ENCRYPT)
    enc = lambda b: block.crypt_ecb(b)  # noqa: E731
    h = int.from_bytes(enc(bytes(16)), "big")

    def gmul(x: int, y: int) -> int:
        z, r = 0, 0xE1 << 120
        for i in range(127, -1, -1):
            if (x >> i) & 1:
                z ^= y
            y = (y >> 1) ^ r if y & 1 else y >> 1
        return z

    def ghash(data: bytes) -> int:
        acc = 0
        for i in range(0, len(data), 16):
            acc = gmul(acc ^ int.from_bytes(data[i:i + 16].ljust(16, b"\0"), "big"), h)
        return acc

    j0 = nonce + b"\0\0\0\1"
    out = bytearray()
    for i in range(0, len(plaintext), 16):
        counter = (int.from_bytes(j0, "big") + 1 + i // 16) % (1 << 128)
        stream = enc(counter.to_bytes(16, "big"))
        out += bytes(a ^ b for a, b in zip(plaintext[i:i + 16], stream, strict=False))
    pad = lambda b: b + bytes(-len(b) % 16)  # noqa: E731
    s = ghash(pad(aad) + pad(bytes(out)) + (len(aad) * 8).to_bytes(8, "big") + (len(out) * 8).to_bytes(8, "big"))
    tag = (s ^ int.from_bytes(enc(j0), "big")).to_bytes(16, "big")
    return bytes(out) + tag


@settings(max_examples=15, deadline=None)
@given(plaintext=st.binary(max_size=80), aad=st.binary(max_size=40))
def test_sm4_gcm_matches_an_independent_implementation(plaintext, aad):
    key, nonce = os.urandom(16), os.urandom(12)
    sealed = sm4.encrypt_gcm(key, nonce, plaintext, aad)
    assert sealed == _independent_gcm(key, nonce, plaintext, aad)
    assert sm4.decrypt_gcm(key, nonce, sealed, aad) == plaintext


@given(data=st.binary(max_size=100))
def test_sm4_round_trips(data):
    key, iv = os.urandom(16), os.urandom(16)
    assert sm4.decrypt_ecb(key, sm4.encrypt_ecb(key, data)) == data
    assert sm4.decrypt_cbc(key, iv, sm4.encrypt_cbc(key, iv, data)) == data


def test_sm4_gcm_tampering_and_bad_sizes():
    key, nonce = os.urandom(16), os.urandom(12)
    sealed = bytearray(sm4.encrypt_gcm(key, nonce, b"wrapped key", b"row 7"))
    with pytest.raises(DecryptionFailed):
        sm4.decrypt_gcm(key, nonce, bytes(sealed), b"row 8")
    sealed[0] ^= 1
    with pytest.raises(DecryptionFailed):
        sm4.decrypt_gcm(key, nonce, bytes(sealed), b"row 7")
    with pytest.raises(InvalidInput):
        sm4.decrypt_gcm(key, nonce, b"short", b"")
    with pytest.raises(InvalidInput):
        sm4.encrypt_gcm(key, bytes(8), b"x")
    with pytest.raises(InvalidInput):
        sm4.encrypt_cbc(bytes(15), bytes(16), b"x")
    with pytest.raises(InvalidInput):
        sm4.decrypt_cbc(key, bytes(16), bytes(17))
    with pytest.raises(InvalidInput):
        sm4.encrypt_ecb(key, b"x", padding=False)


def test_altered_padding_is_refused():
    key, iv = os.urandom(16), os.urandom(16)
    ciphertext = bytearray(sm4.encrypt_cbc(key, iv, b"sixteen byte msg"))  # second block is all padding
    ciphertext[15] ^= 1  # flips the last byte of the padding block: 0x10 becomes 0x11
    with pytest.raises(DecryptionFailed):
        sm4.decrypt_cbc(key, iv, bytes(ciphertext))
