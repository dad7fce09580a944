"""JWS compact serialisation (RFC 7515) with our KeyStore keys, and the SM2 JWS profile.

Tokens are signed by ``keystore.sign`` (the key never leaves hsm/) and verified here, with
an explicit allow-list of algorithms, each bound to the kind of key it may use:

    ES256  ECDSA P-256 with SHA-256, raw r‖s (RFC 7518 §3.4)
    RS256  RSASSA-PKCS1-v1_5 with SHA-256, modulus of at least 2048 bits (RFC 7518 §3.3)
    SM2    SM2 with SM3, signer ID 1234567812345678, raw r‖s (sm-crypto.md §10: our profile,
           no registered name exists); JWK {"kty": "EC", "crv": "SM2", "x", "y"}

``none``, HMAC and any algorithm on the wrong kind of key are refused: SM2 only on a key
whose crv is "SM2", and no other algorithm on such a key (algorithm confusion).

Importing this module also teaches joserfc the profile (``SM2Algorithm`` in its JWS
registry, crv "SM2" in its EC keys), so anyone holding our JWKS can verify our SM2 tokens
with joserfc: ``jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["SM2"])``.
"""

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from joserfc.errors import InvalidExchangeKeyError, InvalidKeyCurveError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, JWKRegistry, KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy.orm import Session

from hsm.keystore import KeyRef, KeyStore, Usage
from trust.errors import InvalidInput, InvalidSignature, InvalidToken, UnsupportedAlgorithm
from trust.keys import PublicKey, load_private_key, load_public_key
from trust.sm2 import SM2PrivateKey, SM2PublicKey, signature_to_raw

MAX_TOKEN_BYTES = 8192
MAX_JWKS_KEYS = 100
MIN_RSA_BITS = 2048

# JWS alg -> the KeyStore's name of the signature algorithm that makes it.
KEYSTORE_ALGORITHMS = {"ES256": "ecdsa-with-SHA256", "RS256": "sha256WithRSAEncryption", "SM2": "SM2-with-SM3"}
ALGORITHMS = tuple(KEYSTORE_ALGORITHMS)

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


# ---------------------------------------------------------------- encodings

def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); anything else is InvalidInput."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidInput("not base64url text", "不是 base64url 编码")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise InvalidInput("not base64url text", "不是 base64url 编码") from None


def _int_member(jwk: dict, name: str, size: int | None = None) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"JWK member {name!r} is missing", f"JWK 缺少成员 {name!r}")
    data = b64url_decode(value)
    if size is not None and len(data) != size:
        raise InvalidInput(f"JWK member {name!r} must be {size} bytes", f"JWK 成员 {name!r} 应为 {size} 字节")
    if not data or len(data) > 1024:
        raise InvalidInput(f"JWK member {name!r} has a bad length", f"JWK 成员 {name!r} 长度不正确")
    return int.from_bytes(data, "big")


def parse_json_object(data: bytes, what: str = "claims") -> dict:
    """A JSON object (duplicate members and NaN refused); InvalidToken for anything else."""
    def no_duplicates(pairs):
        result = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate member {key!r}")
            result[key] = value
        return result

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except (ValueError, RecursionError):
        raise InvalidToken(f"the token's {what} is not a JSON object", "令牌内容不是有效的 JSON 对象") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"the token's {what} is not a JSON object", "令牌内容不是有效的 JSON 对象")
    return value


def _json_segment(value: dict) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# ---------------------------------------------------------------- JWK

def key_algorithm(public_key: PublicKey) -> str:
    """The one JWS algorithm a public key may verify."""
    if isinstance(public_key, SM2PublicKey):
        return "SM2"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    raise UnsupportedAlgorithm(f"no JWS algorithm here for a {type(public_key).__name__}",
                               f"{type(public_key).__name__} 类型的密钥没有可用的 JWS 算法")


def _key_members(public_key: PublicKey) -> dict:
    """The required members of the public JWK (RFC 7518 §6; sm-crypto.md §10 for SM2)."""
    if isinstance(public_key, SM2PublicKey):
        return {"crv": "SM2", "kty": "EC", "x": b64url_encode(public_key.x.to_bytes(32, "big")),
                "y": b64url_encode(public_key.y.to_bytes(32, "big"))}
    key_algorithm(public_key)  # refuses other kinds of key
    numbers = public_key.public_numbers()
    if isinstance(public_key, rsa.RSAPublicKey):
        return {"e": b64url_encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
                "kty": "RSA", "n": b64url_encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))}
    return {"crv": "P-256", "kty": "EC", "x": b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers.y.to_bytes(32, "big"))}


def thumbprint(public_key: PublicKey) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace; base64url."""
    members = _key_members(public_key)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
    return b64url_encode(hashlib.sha256(canonical).digest())


def public_jwk(public_key: PublicKey, *, kid: str, alg: str) -> dict:
    if alg != key_algorithm(public_key):
        raise InvalidInput(f"a {type(public_key).__name__} cannot be published for {alg}",
                           f"{type(public_key).__name__} 类型的密钥不能用于 {alg}")
    return {**_key_members(public_key), "kid": kid, "use": "sig", "alg": alg}


def _jwk_public_key(jwk: dict) -> PublicKey | None:
    """The public key of one JWK, or None for a kind of key we do not use (RFC 7517 §5)."""
    kty = jwk.get("kty")
    if kty == "EC" and jwk.get("crv") == "SM2":
        return SM2PublicKey(_int_member(jwk, "x", 32), _int_member(jwk, "y", 32))
    if kty == "EC" and jwk.get("crv") == "P-256":
        try:
            return ec.EllipticCurvePublicNumbers(_int_member(jwk, "x", 32), _int_member(jwk, "y", 32),
                                                 ec.SECP256R1()).public_key()
        except ValueError:
            raise InvalidInput("the JWK is not a point on P-256", "JWK 不是 P-256 曲线上的点") from None
    if kty == "RSA":
        n, e = _int_member(jwk, "n"), _int_member(jwk, "e")
        if n.bit_length() < MIN_RSA_BITS:
            raise InvalidInput(f"RSA keys must have at least {MIN_RSA_BITS} bits", f"RSA 密钥至少 {MIN_RSA_BITS} 位")
        try:
            return rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            raise InvalidInput("the JWK is not an RSA public key", "JWK 不是有效的 RSA 公钥") from None
    return None


@dataclass(frozen=True)
class VerificationKey:
    kid: str | None
    alg: str
    public_key: PublicKey


def parse_jwks(jwks: dict) -> tuple[VerificationKey, ...]:
    """The signature keys of a JWK Set we can use; keys of other kinds are skipped,
    a malformed key of a kind we use, or a private key, refuses the set."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or len(keys) > MAX_JWKS_KEYS:
        raise InvalidInput(f"a JWK Set is an object with a list of at most {MAX_JWKS_KEYS} keys",
                           f"JWK 集合应为含至多 {MAX_JWKS_KEYS} 个密钥的对象")
    result = []
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if "d" in jwk or "p" in jwk:
            raise InvalidInput("a published JWK Set must not carry private keys", "公开的 JWK 集合不得包含私钥")
        public_key = _jwk_public_key(jwk)
        if public_key is None:
            continue
        alg = key_algorithm(public_key)
        if jwk.get("alg", alg) != alg:
            continue
        kid = jwk.get("kid")
        result.append(VerificationKey(kid if isinstance(kid, str) else None, alg, public_key))
    return tuple(result)


# ---------------------------------------------------------------- sign and verify

def sign_compact(session: Session, keystore: KeyStore, ref: KeyRef, header: dict, claims: dict) -> str:
    """A JWS in compact serialisation, signed by ``ref`` in the KeyStore (usage token)."""
    alg = header.get("alg")
    if alg not in KEYSTORE_ALGORITHMS:
        raise UnsupportedAlgorithm(f"tokens are signed with {', '.join(ALGORITHMS)}, not {alg!r}",
                                   f"令牌签名算法只能是 {'、'.join(ALGORITHMS)}")
    if ref.algorithm != KEYSTORE_ALGORITHMS[alg]:
        raise InvalidInput(f"key {ref.label} v{ref.version} is {ref.algorithm}: it cannot sign {alg}",
                           f"密钥 {ref.label} 第 {ref.version} 版为 {ref.algorithm}，不能用于 {alg}")
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    signature = keystore.sign(session, ref, signing_input.encode("ascii"), usage=Usage.TOKEN)
    if alg == "ES256":
        r, s = decode_dss_signature(signature)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "SM2":
        signature = signature_to_raw(signature)
    return f"{signing_input}.{b64url_encode(signature)}"


def verify_signature(alg: str, public_key: PublicKey, signing_input: bytes, signature: bytes) -> None:
    """Raise InvalidToken unless ``signature`` (JWS form) is valid; ``alg`` must fit the key."""
    if alg != key_algorithm(public_key):
        raise InvalidToken(f"the key cannot verify {alg}", f"该密钥不能验证 {alg} 签名")
    try:
        if alg == "SM2":
            public_key.verify(signature, signing_input, encoding="raw")
        elif alg == "ES256":
            if len(signature) != 64:
                raise InvalidSignature("an ES256 signature is 64 bytes", "ES256 签名应为 64 字节")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, InvalidInput, _CryptographyInvalidSignature):
        raise InvalidToken("the token's signature does not verify", "令牌签名验证不通过") from None


def _select_key(keys: tuple[VerificationKey, ...], kid, alg: str) -> VerificationKey:
    if kid is None:
        if len(keys) != 1:
            raise InvalidToken("the token names no key (kid) and the key set has more than one",
                           "令牌未指明密钥标识（kid），且密钥集合中有多个密钥")
        candidates = keys
    else:
        candidates = tuple(k for k in keys if k.kid == kid)
        if not candidates:
            raise InvalidToken("the token is signed by a key that is not published (unknown kid)",
                           "令牌签名密钥未公布（未知的 kid）")
    for key in candidates:
        if key.alg == alg:
            return key
    raise InvalidToken(f"the token's algorithm {alg} does not fit its key (algorithm confusion)",
                   f"令牌算法 {alg} 与其密钥不符")


def split_compact(token: str, *, max_bytes: int = MAX_TOKEN_BYTES) -> tuple[dict, str, str, bytes]:
    """Header, the two signed segments and the signature of a compact JWS, unverified."""
    if not isinstance(token, str) or len(token) > max_bytes:
        raise InvalidToken(f"the token is missing or larger than {max_bytes} bytes", f"令牌缺失或超过 {max_bytes} 字节")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("the token is not a compact JWS (three dot-separated parts)",
                       "令牌不是紧凑格式的 JWS（应由三段组成）")
    try:
        header_bytes, signature = b64url_decode(parts[0]), b64url_decode(parts[2])
        if not _B64URL.fullmatch(parts[1]):
            raise InvalidInput("not base64url text", "不是 base64url 编码")
    except InvalidInput:
        raise InvalidToken("the token is not base64url encoded", "令牌不是 base64url 编码") from None
    return parse_json_object(header_bytes, "header"), parts[0], parts[1], signature


def verify_compact(token: str, jwks: dict | tuple[VerificationKey, ...], *, algorithms: list[str],
                   max_bytes: int = MAX_TOKEN_BYTES) -> tuple[dict, dict]:
    """Verify a compact JWS against a JWK Set (or keys from ``parse_jwks``) and return
    (header, claims). Checks only the signature: claims (iss, exp, aud...) are the caller's."""
    header, header_segment, payload_segment, signature = split_compact(token, max_bytes=max_bytes)
    alg = header.get("alg")
    if alg not in ALGORITHMS or alg not in algorithms:
        raise InvalidToken(f"the token's algorithm {alg!r} is not accepted here", f"不接受令牌所用的算法 {alg!r}")
    if "crit" in header:
        raise InvalidToken("the token has critical header parameters we do not understand",
                       "令牌含有无法处理的关键头部参数（crit）")
    try:
        keys = jwks if isinstance(jwks, tuple) else parse_jwks(jwks)
    except InvalidInput as error:
        raise InvalidToken(f"the key set cannot be used: {error.en}", f"密钥集合无法使用：{error.zh}") from None
    key = _select_key(keys, header.get("kid"), alg)
    verify_signature(alg, key.public_key, f"{header_segment}.{payload_segment}".encode("ascii"), signature)
    try:
        payload = b64url_decode(payload_segment)
    except InvalidInput:
        raise InvalidToken("the token is not base64url encoded", "令牌不是 base64url 编码") from None
    return header, parse_json_object(payload, "claims")


# ---------------------------------------------------------------- joserfc: the SM2 profile

ECBinding = ECKey.binding  # joserfc's binding of EC JWKs to cryptography's key objects


def _is_sm2(raw) -> bool:
    return isinstance(raw, (SM2PrivateKey, SM2PublicKey))


class SM2ECBinding(ECBinding):
    """joserfc's EC key binding, also for crv "SM2" (``trust.sm2`` key objects).

    Private SM2 JWKs are read for other parties and tests; this service's own keys stay
    in hsm/ and are never exported as JWKs."""

    @classmethod
    def generate_private_key(cls, name: str):
        return SM2PrivateKey.generate() if name == "SM2" else super().generate_private_key(name)

    @classmethod
    def import_private_key(cls, obj):
        if obj.get("crv") != "SM2":
            return super().import_private_key(obj)
        key = SM2PrivateKey(_int_member(obj, "d", 32))
        if key.public_key() != cls.import_public_key(obj):
            raise InvalidInput("the SM2 JWK's d does not match its x and y", "SM2 JWK 的私钥与公钥不匹配")
        return key

    @classmethod
    def import_public_key(cls, obj):
        if obj.get("crv") != "SM2":
            return super().import_public_key(obj)
        return SM2PublicKey(_int_member(obj, "x", 32), _int_member(obj, "y", 32))

    @classmethod
    def export_private_key(cls, key):
        if not isinstance(key, SM2PrivateKey):
            return super().export_private_key(key)
        return {**cls.export_public_key(key.public_key()), "d": b64url_encode(bytes.fromhex(key.to_hex()))}

    @classmethod
    def export_public_key(cls, key):
        if not isinstance(key, SM2PublicKey):
            return super().export_public_key(key)
        members = _key_members(key)
        return {"crv": members["crv"], "x": members["x"], "y": members["y"]}

    @classmethod
    def import_from_bytes(cls, value: bytes, password=None):
        try:
            key = load_public_key(value)
        except InvalidInput:
            key = None
        if key is None and password is None:
            try:
                key = load_private_key(value)
            except InvalidInput:
                key = None
        return key if _is_sm2(key) else super().import_from_bytes(value, password)

    @staticmethod
    def as_bytes(key, encoding=None, private=False, password=None) -> bytes:
        raw = key.raw_value
        if not _is_sm2(raw):
            return ECBinding.as_bytes(key, encoding, private, password)
        if private and password is not None:
            raise InvalidInput("SM2 keys are exported without a password here", "此处导出 SM2 密钥不支持口令加密")
        if private:
            return raw.to_pkcs8_der() if encoding == "DER" else raw.to_pkcs8_pem().encode()
        public = key.public_key
        return public.to_der() if encoding == "DER" else public.to_pem().encode()


class ECKeyWithSM2(ECKey):
    """joserfc's ECKey that also holds SM2 keys; registered for kty "EC"."""

    binding = SM2ECBinding

    @property
    def is_private(self) -> bool:
        return isinstance(self.raw_value, SM2PrivateKey) or super().is_private

    @cached_property
    def public_key(self):
        if isinstance(self.raw_value, SM2PrivateKey):
            return self.raw_value.public_key()
        if isinstance(self.raw_value, SM2PublicKey):
            return self.raw_value
        return super().public_key

    @property
    def private_key(self):
        if _is_sm2(self.raw_value):
            return self.raw_value if isinstance(self.raw_value, SM2PrivateKey) else None
        return super().private_key

    @property
    def curve_name(self) -> str:
        return "SM2" if _is_sm2(self.raw_value) else super().curve_name

    @property
    def curve_key_size(self) -> int:
        return 256 if _is_sm2(self.raw_value) else super().curve_key_size

    def exchange_derive_key(self, key) -> bytes:
        if _is_sm2(self.raw_value):
            raise InvalidExchangeKeyError("SM2 keys are not used for ECDH here")
        return super().exchange_derive_key(key)

    @classmethod
    def import_key(cls, value, parameters=None, password=None):
        if _is_sm2(value):
            return cls(value, value, parameters)
        return super().import_key(value, parameters, password)


class SM2Algorithm(JWSAlgModel):
    """JWS alg "SM2": SM2 with SM3 and the default signer ID, raw r‖s (sm-crypto.md §10)."""

    name = "SM2"
    description = "SM2 signature with SM3, signer ID 1234567812345678 (GB/T 32918.2)"
    key_type = "EC"
    algorithm_security = 256

    def check_key(self, key) -> None:
        super().check_key(key)
        if key.curve_name != "SM2":
            raise InvalidKeyCurveError("Key for 'SM2' not supported, only 'SM2' allowed")

    def sign(self, msg: bytes, key) -> bytes:
        return key.get_op_key("sign").sign(msg, encoding="raw")

    def verify(self, msg: bytes, sig: bytes, key) -> bool:
        try:
            key.get_op_key("verify").verify(sig, msg, encoding="raw")
        except (InvalidSignature, InvalidInput):
            return False
        return True


def register_with_joserfc() -> None:
    """Teach joserfc alg "SM2" and EC keys with crv "SM2" (idempotent). Other curves keep
    joserfc's own checks: ES256 refuses an SM2 key because its curve is not P-256."""
    JWSRegistry.register(SM2Algorithm())
    KeySet.algorithm_keys["SM2"] = ["EC"]
    JWKRegistry.key_types["EC"] = ECKeyWithSM2


register_with_joserfc()
