"""SM4 (GB/T 32907) in ECB, CBC, CTR and GCM, from Tongsuo.

ECB and CBC pad with PKCS#7 unless ``padding=False`` (then the input must be whole
blocks). GCM takes a 12-byte nonce (RFC 8998, NIST SP 800-38D) and returns
ciphertext ‖ 16-byte tag.
"""

from tongsuopy.crypto.ciphers import Cipher, algorithms, modes
from tongsuopy.crypto.ciphers.aead import SM4GCM
from tongsuopy.crypto.exceptions import InvalidTag

from trust.errors import DecryptionFailed, InvalidInput

BLOCK_SIZE = 16
KEY_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16


def encrypt_ecb(key: bytes, plaintext: bytes, *, padding: bool = True) -> bytes:
    return _run(Cipher(algorithms.SM4(_key(key)), modes.ECB()).encryptor(), _pad(plaintext, padding))


def decrypt_ecb(key: bytes, ciphertext: bytes, *, padding: bool = True) -> bytes:
    data = _run(Cipher(algorithms.SM4(_key(key)), modes.ECB()).decryptor(), _blocks(ciphertext))
    return _unpad(data) if padding else data


def encrypt_cbc(key: bytes, iv: bytes, plaintext: bytes, *, padding: bool = True) -> bytes:
    cipher = Cipher(algorithms.SM4(_key(key)), modes.CBC(_sized(iv, BLOCK_SIZE, "IV")))
    return _run(cipher.encryptor(), _pad(plaintext, padding))


def decrypt_cbc(key: bytes, iv: bytes, ciphertext: bytes, *, padding: bool = True) -> bytes:
    cipher = Cipher(algorithms.SM4(_key(key)), modes.CBC(_sized(iv, BLOCK_SIZE, "IV")))
    data = _run(cipher.decryptor(), _blocks(ciphertext))
    return _unpad(data) if padding else data


def crypt_ctr(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """CTR keystream XOR: the same call encrypts and decrypts."""
    cipher = Cipher(algorithms.SM4(_key(key)), modes.CTR(_sized(counter_block, BLOCK_SIZE, "counter block")))
    return _run(cipher.encryptor(), _as_bytes(data, "data"))


def encrypt_gcm(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    return SM4GCM(_key(key)).encrypt(_sized(nonce, GCM_NONCE_SIZE, "GCM nonce"),
                                      _as_bytes(plaintext, "plaintext"), _as_bytes(aad, "AAD"))


def decrypt_gcm(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    ciphertext = _as_bytes(ciphertext, "ciphertext")
    if len(ciphertext) < GCM_TAG_SIZE:
        raise InvalidInput(f"SM4-GCM ciphertext is shorter than its {GCM_TAG_SIZE}-byte tag",
                           f"SM4-GCM 密文短于 {GCM_TAG_SIZE} 字节的认证标签")
    try:
        return SM4GCM(_key(key)).decrypt(_sized(nonce, GCM_NONCE_SIZE, "GCM nonce"), ciphertext,
                                          _as_bytes(aad, "AAD"))
    except InvalidTag:
        raise DecryptionFailed("SM4-GCM authentication failed: wrong key, nonce or AAD, or altered data",
                               "SM4-GCM 认证失败：密钥、随机数或附加数据不符，或数据被篡改") from None


def _run(context, data: bytes) -> bytes:
    return context.update(data) + context.finalize()


def _as_bytes(value, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidInput(f"SM4 {what} must be bytes, not {type(value).__name__}",
                       f"SM4 {what} 必须是字节串，实际为 {type(value).__name__}")


def _sized(value, size: int, what: str) -> bytes:
    value = _as_bytes(value, what)
    if len(value) != size:
        raise InvalidInput(f"SM4 {what} must be {size} bytes, got {len(value)}",
                           f"SM4 {what} 应为 {size} 字节，实际为 {len(value)} 字节")
    return value


def _key(key) -> bytes:
    return _sized(key, KEY_SIZE, "key")


def _blocks(data) -> bytes:
    data = _as_bytes(data, "ciphertext")
    if len(data) % BLOCK_SIZE:
        raise InvalidInput(f"SM4 ciphertext length {len(data)} is not a multiple of {BLOCK_SIZE}",
                           f"SM4 密文长度 {len(data)} 不是 {BLOCK_SIZE} 的整数倍")
    return data


def _pad(data, padding: bool) -> bytes:
    data = _as_bytes(data, "plaintext")
    if not padding:
        if len(data) % BLOCK_SIZE:
            raise InvalidInput(f"without padding the plaintext must be whole {BLOCK_SIZE}-byte blocks",
                               f"不填充时明文长度必须是 {BLOCK_SIZE} 字节的整数倍")
        return data
    n = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    n = data[-1] if data else 0
    if not 1 <= n <= BLOCK_SIZE or data[-n:] != bytes([n]) * n:
        raise DecryptionFailed("SM4 decryption failed: bad padding (wrong key or altered data)",
                               "SM4 解密失败：填充错误（密钥不符或数据被篡改）")
    return data[:-n]
