"""Load keys of every algorithm from PEM or DER, telling SM2 from the others by OID.

SM2 keys become ``trust.sm2`` objects; ECDSA, RSA and Ed25519 keys become
``cryptography`` objects. Encrypted private keys are refused: private keys live in
``hsm/``, which wraps them itself.
"""

from asn1crypto import keys as asn1_keys, pem
from cryptography.exceptions import UnsupportedAlgorithm as _CryptographyUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trust.errors import InvalidInput, UnsupportedAlgorithm
from trust.sm2 import SM2PrivateKey, SM2PublicKey, is_sm2_key_algorithm, names_sm2_curve

PrivateKey = SM2PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = SM2PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_PRIVATE_PEM = {"PRIVATE KEY", "EC PRIVATE KEY", "SM2 PRIVATE KEY", "RSA PRIVATE KEY"}
_PUBLIC_PEM = {"PUBLIC KEY", "RSA PUBLIC KEY"}


def load_private_key(data: bytes | str) -> PrivateKey:
    kind, der = _der(data, _PRIVATE_PEM)
    if kind == "ENCRYPTED PRIVATE KEY":
        raise InvalidInput("encrypted private keys are not accepted here; import keys through the key store",
                           "此处不接受加密的私钥，请通过密钥库导入")
    if _private_key_is_sm2(der):
        return SM2PrivateKey.from_der(der)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, _CryptographyUnsupported) as exc:
        raise InvalidInput(f"not a readable private key: {exc}", "无法读取的私钥") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not used here (SM2, ECDSA, RSA or Ed25519)",
                                   "不支持此类密钥（仅 SM2、ECDSA、RSA、Ed25519）")
    return key


def load_public_key(data: bytes | str) -> PublicKey:
    _kind, der = _der(data, _PUBLIC_PEM)
    try:
        is_sm2 = is_sm2_key_algorithm(asn1_keys.PublicKeyInfo.load(der, strict=True)["algorithm"])
    except (ValueError, TypeError, KeyError):  # KeyError: asn1crypto on an unknown algorithm OID
        is_sm2 = False
    if is_sm2:
        return SM2PublicKey.from_der(der)
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, _CryptographyUnsupported) as exc:
        raise InvalidInput(f"not a readable public key: {exc}", "无法读取的公钥") from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not used here (SM2, ECDSA, RSA or Ed25519)",
                                   "不支持此类密钥（仅 SM2、ECDSA、RSA、Ed25519）")
    return key


def _private_key_is_sm2(der: bytes) -> bool:
    """True for PKCS#8 or SEC1 on sm2p256v1; parse errors fall through to the general loader."""
    try:
        return is_sm2_key_algorithm(asn1_keys.PrivateKeyInfo.load(der, strict=True)["private_key_algorithm"])
    except (ValueError, TypeError, KeyError):
        pass
    try:
        return names_sm2_curve(asn1_keys.ECPrivateKey.load(der, strict=True)["parameters"])
    except (ValueError, TypeError):
        return False


def _der(data, pem_types: set[str]) -> tuple[str | None, bytes]:
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"a key must be bytes or text, not {type(data).__name__}",
                           f"密钥必须是字节串或文本，实际为 {type(data).__name__}")
    data = bytes(data)
    if not pem.detect(data):
        return None, data
    try:
        kind, _headers, der = pem.unarmor(data)
    except ValueError as exc:
        raise InvalidInput(f"not a PEM block: {exc}", f"不是 PEM 格式：{exc}") from None
    if kind not in pem_types | {"ENCRYPTED PRIVATE KEY"}:
        raise InvalidInput(f"PEM type {kind} is not a key of the kind expected here",
                           f"PEM 类型 {kind} 不是此处需要的密钥")
    return kind, der
