"""The SM2 provider backed by Tongsuo through tongsuopy.

tongsuopy's public API signs only with the default signer ID and has no SM2 encryption,
so this module uses its cffi binding (``backend._lib``), a private API: that is why
pyproject pins ``tongsuopy<1.1``. Nothing else in the service touches tongsuopy's
internals. The tests check this provider against the GB/T 32918 vectors and against the
system's OpenSSL in both directions, so an upgrade that changes behaviour fails loudly.

Handles are Tongsuo ``EVP_PKEY`` objects whose type is set to SM2: with the plain EC type,
``EVP_PKEY_sign`` would compute ECDSA on the SM2 curve, a silently wrong signature, so
every handle is checked on creation.
"""

from tongsuopy.backends.tongsuo.backend import backend as _backend
from tongsuopy.crypto.asymciphers import ec as _ec

from trust.errors import DecryptionFailed, InvalidInput, TrustError

_lib = _backend._lib
_ffi = _backend._ffi
_SM2_SIGNATURE_MAX = 72


class TongsuoSM2:
    name = "tongsuo"

    def private_handle(self, d: int) -> tuple[object, bytes]:
        key = _ec.derive_private_key(d, _ec.SM2(), _backend)
        numbers = key.public_key().public_numbers()
        point = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
        return _checked(key._evp_pkey), point

    def public_handle(self, point: bytes):
        try:
            key = _ec.EllipticCurvePublicKey.from_encoded_point(_ec.SM2(), point)
        except ValueError:
            _backend._consume_errors()
            raise InvalidInput("public key is not a point on the SM2 curve",
                               "公钥不是 SM2 曲线上的点") from None
        return _checked(key._evp_pkey)

    def sign_digest(self, handle, e: bytes) -> bytes:
        ctx = _lib.EVP_PKEY_CTX_new(handle, _ffi.NULL)
        try:
            _ok(_lib.EVP_PKEY_sign_init(ctx))
            out = _ffi.new("unsigned char[]", _SM2_SIGNATURE_MAX)
            out_len = _ffi.new("size_t *", _SM2_SIGNATURE_MAX)
            _ok(_lib.EVP_PKEY_sign(ctx, out, out_len, e, len(e)))
            return _ffi.buffer(out, out_len[0])[:]
        finally:
            _lib.EVP_PKEY_CTX_free(ctx)

    def verify_digest(self, handle, e: bytes, signature_der: bytes) -> bool:
        ctx = _lib.EVP_PKEY_CTX_new(handle, _ffi.NULL)
        try:
            _ok(_lib.EVP_PKEY_verify_init(ctx))
            result = _lib.EVP_PKEY_verify(ctx, signature_der, len(signature_der), e, len(e))
        finally:
            _lib.EVP_PKEY_CTX_free(ctx)
        if result != 1:
            _backend._consume_errors()
        return result == 1

    def encrypt(self, handle, plaintext: bytes) -> bytes:
        return _crypt(handle, plaintext, _lib.EVP_PKEY_encrypt_init, _lib.EVP_PKEY_encrypt)

    def decrypt(self, handle, ciphertext_der: bytes) -> bytes:
        try:
            return _crypt(handle, ciphertext_der, _lib.EVP_PKEY_decrypt_init, _lib.EVP_PKEY_decrypt)
        except _TongsuoFailure:
            raise DecryptionFailed(
                "SM2 decryption failed: wrong key or altered ciphertext (C3 mismatch)",
                "SM2 解密失败：密钥不符或密文被篡改（C3 校验不通过）") from None


class _TongsuoFailure(TrustError):
    code = "crypto_failure"

    def __init__(self, result: int):
        super().__init__(f"Tongsuo operation failed ({result})", f"密码运算失败（{result}）")


def _ok(result: int) -> None:
    if result != 1:
        _backend._consume_errors()
        raise _TongsuoFailure(result)


def _checked(evp_pkey):
    if _lib.EVP_PKEY_id(evp_pkey) != _lib.EVP_PKEY_SM2:
        _lib.EVP_PKEY_set_alias_type(evp_pkey, _lib.EVP_PKEY_SM2)
    if _lib.EVP_PKEY_id(evp_pkey) != _lib.EVP_PKEY_SM2:
        raise RuntimeError("Tongsuo did not mark the key as SM2; refusing to sign ECDSA by mistake")
    return evp_pkey


def _crypt(handle, data: bytes, init, op) -> bytes:
    ctx = _lib.EVP_PKEY_CTX_new(handle, _ffi.NULL)
    try:
        _ok(init(ctx))
        out_len = _ffi.new("size_t *")
        _ok(op(ctx, _ffi.NULL, out_len, data, len(data)))
        out = _ffi.new("unsigned char[]", out_len[0])
        _ok(op(ctx, out, out_len, data, len(data)))
        return _ffi.buffer(out, out_len[0])[:]
    finally:
        _lib.EVP_PKEY_CTX_free(ctx)
