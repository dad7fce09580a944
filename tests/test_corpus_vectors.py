"""Known-answer vectors from other implementations, kept in ../shared/corpus/vectors."""

import re

import pytest

from trust import sm2
from trust.errors import InvalidSignature
from trust.hashes import sm3

from oracles import shared_file


def _blocks(text: str) -> list[dict[str, str]]:
    """The OpenSSL/Tongsuo evp-test format: `Key = value` lines, blocks split by blank lines."""
    blocks, current = [], {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
        elif not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), value.strip())
    return blocks


def _pem_keys(text: str) -> dict[str, str]:
    return dict(re.findall(r"PrivateKey\s*=\s*(\S+)\n(-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----)",
                           text, re.S))


def test_tongsuo_sm2_verify_and_decrypt_vectors():
    text = shared_file("corpus", "vectors", "tongsuo__evppkey_sm2.txt").read_text()
    keys = {name: sm2.SM2PrivateKey.from_pem(pem) for name, pem in _pem_keys(text).items()}
    checked = 0
    for block in _blocks(text):
        if block.get("Ctrl", "digest:SM3") != "digest:SM3" or "Result" in block:
            continue  # SHA-512 and SHAKE blocks test OpenSSL's control errors, not SM2
        if "Verify" in block:
            public = keys[block["Verify"]].public_key()
            public.verify_digest(bytes.fromhex(block["Output"]), bytes.fromhex(block["Input"]))
            with pytest.raises(InvalidSignature):
                public.verify_digest(bytes.fromhex(block["Output"]), bytes(32))
            checked += 1
        elif "Decrypt" in block:
            plaintext = keys[block["Decrypt"]].decrypt(bytes.fromhex(block["Input"]))
            assert plaintext == block["Output"].strip('"').encode()
            checked += 1
    assert checked == 6


def test_tongsuo_sm3_vectors():
    for block in _blocks(shared_file("corpus", "vectors", "tongsuo__evpmd_sm3.txt").read_text()):
        if block.get("Digest") == "SM3":
            assert sm3(bytes.fromhex(block["Input"])).hex() == block["Output"].lower()


def test_sm3_of_the_empty_string():
    text = shared_file("corpus", "vectors", "sm3_kat.txt").read_text()
    expected = re.search(r'SM3\(""\) \(empty\)\s*=\s*([0-9a-f]{64})', text).group(1)
    assert sm3(b"").hex() == expected


def _fields(section: str) -> dict[str, str]:
    return {k: v for k, v in re.findall(r"^(\w+(?: \(DER\))?)\s*=\s*(\S+)", section, re.M)}


def test_gmsm_short_r_and_digest_vectors():
    text = shared_file("corpus", "vectors", "emmansun_gmsm_sm2_recommended_curve_vectors.txt").read_text()
    first, second = text.split("[vector 2")[0].split("[vector 1")[1], text.split("[vector 2")[1]

    v1 = _fields(first)
    key = sm2.SM2PrivateKey(int(v1["d"], 16))
    public = key.public_key()
    assert (public.x, public.y) == (int(v1["Qx"], 16), int(v1["Qy"], 16))
    message = bytes.fromhex(re.search(r"hex ([0-9a-f]+)\)", first).group(1))
    assert public.z().hex() == v1["Z"]
    signature = bytes.fromhex(v1["sig (DER)"])
    public.verify(signature, message)
    raw = sm2.signature_to_raw(signature)
    assert raw[0] == 0 and len(raw) == 64  # the 31-byte r is left-padded
    public.verify(raw, message, encoding="raw")

    v2 = _fields(second)
    key = sm2.SM2PrivateKey(int(v2["d"], 16))
    e = b"sm2 self-test message".rjust(32, b"\0")  # e given directly, as an integer
    r, s = int(v2["r"], 16), int(v2["s"], 16)
    key.public_key().verify_digest(sm2.encode_signature(r, s), e)
    with pytest.raises(InvalidSignature):
        key.public_key().verify_digest(sm2.encode_signature(r, s ^ 1), e)
    with pytest.raises(InvalidSignature):
        key.public_key().verify(sm2.encode_signature(r, s), b"sm2 self-test message")
