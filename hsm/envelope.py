"""The SM2 digital envelope of a key pair (GM/T 0009 ``SM2EnvelopedKey``, sm-crypto.md §3):

    SM2EnvelopedKey ::= SEQUENCE {
        symAlgID               AlgorithmIdentifier,  -- SM4-ECB 1.2.156.10197.1.104.1, parameters absent
        symEncryptedKey        SM2Cipher,            -- the 16-byte SM4 key, SM2-encrypted to the recipient
        Sm2PublicKey           SM2PublicKey,         -- BIT STRING 04‖x‖y of the enveloped key pair
        Sm2EncryptedPrivateKey BIT STRING }          -- SM4-ECB(d), 32 bytes, no padding

The KeyStore seals keys it generates or recovers (``KeyStore.generate_escrowed`` and
``recover_escrowed``); ``open_envelope`` is what a recipient does with their own key
(client side; here for tests and tools).
"""

import secrets
from dataclasses import dataclass

from asn1crypto import core

from trust import oids, sm4
from trust.errors import DecryptionFailed, InvalidInput
from trust.sm2 import SM2PrivateKey, SM2PublicKey

MAX_ENVELOPE_BYTES = 1024


class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _SM2EnvelopedKey(core.Sequence):
    _fields = [("sym_alg_id", _AlgorithmIdentifier), ("sym_encrypted_key", core.Any),
               ("sm2_public_key", core.OctetBitString), ("sm2_encrypted_private_key", core.OctetBitString)]


@dataclass(frozen=True)
class EnvelopedKey:
    """A parsed SM2EnvelopedKey."""

    sym_encrypted_key: bytes   # DER SM2Cipher
    public_key: SM2PublicKey   # of the enveloped key pair
    encrypted_private_key: bytes


def seal(private_key: SM2PrivateKey, recipient: SM2PublicKey) -> bytes:
    """DER SM2EnvelopedKey of ``private_key`` to ``recipient``."""
    if not isinstance(recipient, SM2PublicKey):
        raise InvalidInput("an SM2 envelope is addressed to an SM2 public key", "SM2 数字信封的接收方须为 SM2 公钥")
    sym_key = secrets.token_bytes(sm4.KEY_SIZE)
    return _SM2EnvelopedKey({
        "sym_alg_id": {"algorithm": oids.SM4_ECB},
        "sym_encrypted_key": core.Any.load(recipient.encrypt(sym_key)),
        "sm2_public_key": private_key.public_key().to_point(),
        "sm2_encrypted_private_key": sm4.encrypt_ecb(sym_key, bytes.fromhex(private_key.to_hex()), padding=False),
    }).dump()


def parse(data: bytes) -> EnvelopedKey:
    if not isinstance(data, (bytes, bytearray)) or not 0 < len(data) <= MAX_ENVELOPE_BYTES:
        raise InvalidInput(f"an SM2 envelope is 1-{MAX_ENVELOPE_BYTES} bytes", f"SM2 数字信封应为 1 至 {MAX_ENVELOPE_BYTES} 字节")
    try:
        parsed = _SM2EnvelopedKey.load(bytes(data), strict=True)
        algorithm = parsed["sym_alg_id"]["algorithm"].dotted
        cipher = parsed["sym_encrypted_key"].dump()
        point = parsed["sm2_public_key"].native
        encrypted = parsed["sm2_encrypted_private_key"].native
    except (ValueError, TypeError, KeyError) as e:
        raise InvalidInput(f"malformed SM2 envelope: {e}", "SM2 数字信封格式错误") from None
    if algorithm != oids.SM4_ECB:
        raise InvalidInput(f"SM2 envelope: symmetric algorithm {algorithm}, expected SM4-ECB",
                           f"SM2 数字信封：对称算法 {algorithm}，应为 SM4-ECB")
    if not isinstance(point, bytes) or not isinstance(encrypted, bytes) or len(encrypted) != 32:
        raise InvalidInput("SM2 envelope: the key fields have the wrong size", "SM2 数字信封：密钥字段长度错误")
    return EnvelopedKey(cipher, SM2PublicKey.from_point(point), encrypted)


def unseal(envelope: EnvelopedKey, sym_key: bytes) -> SM2PrivateKey:
    """The enveloped private key, given the SM4 key the recipient decrypted."""
    if len(sym_key) != sm4.KEY_SIZE:
        raise DecryptionFailed("SM2 envelope: the symmetric key has the wrong size", "SM2 数字信封：对称密钥长度错误")
    key = SM2PrivateKey.from_hex(sm4.decrypt_ecb(sym_key, envelope.encrypted_private_key, padding=False).hex())
    if key.public_key() != envelope.public_key:
        raise DecryptionFailed("SM2 envelope: the private key does not match its public key",
                               "SM2 数字信封：私钥与公钥不匹配")
    return key


def open_envelope(data: bytes, recipient_key: SM2PrivateKey) -> SM2PrivateKey:
    """What the recipient does with their own private key, outside this service."""
    envelope = parse(data)
    return unseal(envelope, recipient_key.decrypt(envelope.sym_encrypted_key))
