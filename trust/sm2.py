"""SM2 (GB/T 32918): keys, signatures with a signer ID, public key encryption, encodings.

The curve arithmetic runs in a provider (Tongsuo by default, see ``trust._tongsuo``);
this module owns everything around it that the standards fix: Z_A and e, the signer ID,
the DER and raw encodings of GM/T 0009, the key containers, and input validation, so a
second provider only has to sign, verify, encrypt and decrypt.

Encodings (GM/T 0009): signatures are DER ``SEQUENCE {r, s}`` or raw ``r ‖ s`` (64 bytes);
ciphertexts are DER ``SEQUENCE {x, y, hash, ciphertext}`` or raw ``C1 ‖ C3 ‖ C2`` with
C1 = 04 ‖ x ‖ y (``c1c2c3`` reads the order of the 2010 draft, still found in old code).
"""

import secrets
from typing import Literal, Protocol

from asn1crypto import core, keys as asn1_keys, pem

from trust import oids
from trust._tongsuo import TongsuoSM2
from trust.errors import InvalidInput, InvalidSignature
from trust.hashes import sm3

# sm2p256v1 (GB/T 32918.5)
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

DEFAULT_ID = b"1234567812345678"  # GM/T 0009 default signer ID
_CURVE_PREFIX = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))
_MAX_ID_BYTES = 0xFFFF // 8  # ENTL is the ID's bit length in two bytes

# asn1crypto needs the curve's key size to build PKCS#8 containers; registering the name is
# global and harmless for every other user of asn1crypto.
if oids.SM2_CURVE not in asn1_keys.NamedCurve._map:
    asn1_keys.NamedCurve.register("sm2p256v1", oids.SM2_CURVE, 32)

SignatureEncoding = Literal["der", "raw"]
CiphertextEncoding = Literal["der", "c1c3c2", "c1c2c3"]


class SM2Provider(Protocol):
    """What a provider must do; handles are opaque to everything but the provider."""

    name: str

    def private_handle(self, d: int) -> tuple[object, bytes]:
        """A handle for the private key d and its public point 04‖x‖y."""
    def public_handle(self, point: bytes): ...
    def sign_digest(self, handle, e: bytes) -> bytes: ...
    def verify_digest(self, handle, e: bytes, signature_der: bytes) -> bool: ...
    def encrypt(self, handle, plaintext: bytes) -> bytes: ...
    def decrypt(self, handle, ciphertext_der: bytes) -> bytes: ...


PROVIDER: SM2Provider = TongsuoSM2()


def _invalid(en: str, zh: str) -> InvalidInput:
    return InvalidInput(en, zh)


def _bytes(value, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise _invalid(f"{what} must be bytes, not {type(value).__name__}",
                   f"{what}必须是字节串，实际为 {type(value).__name__}")


# ---------------------------------------------------------------- points

def is_on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def decode_point(data: bytes) -> tuple[int, int]:
    """Read a point: 04‖x‖y (65 bytes), compressed 02/03‖x (33 bytes), or bare x‖y (64 bytes)."""
    data = _bytes(data, "point")
    if len(data) == 65 and data[0] == 4:
        x, y = int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big")
    elif len(data) == 64:
        x, y = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big")
    elif len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        y = pow((x * x * x + A * x + B) % P, (P + 1) // 4, P)  # p ≡ 3 (mod 4)
        if y & 1 != data[0] & 1:
            y = P - y
    else:
        raise _invalid(f"an SM2 point is 65 bytes (04‖x‖y), 64 (x‖y) or 33 (compressed), got {len(data)}",
                       f"SM2 点应为 65 字节（04‖x‖y）、64 字节（x‖y）或 33 字节（压缩），实际为 {len(data)} 字节")
    if not is_on_curve(x, y):
        raise _invalid("point is not on the SM2 curve", "该点不在 SM2 曲线上")
    return x, y


def encode_point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


# ---------------------------------------------------------------- signatures

class _SM2Signature(core.Sequence):
    _fields = [("r", core.Integer), ("s", core.Integer)]


class _SM2Cipher(core.Sequence):
    _fields = [("x", core.Integer), ("y", core.Integer),
               ("hash", core.OctetString), ("ciphertext", core.OctetString)]


def _load_der(spec, data: bytes, what_en: str, what_zh: str, strict: bool):
    try:
        value = spec.load(data, strict=True)
        _ = value.native  # parse every field now, inside the try
    except (ValueError, TypeError, OverflowError) as exc:
        raise _invalid(f"{what_en} is not valid DER: {exc}", f"{what_zh}不是合法的 DER 编码：{exc}") from None
    if strict and value.dump(force=True) != data:
        raise _invalid(f"{what_en} is BER, not the distinguished encoding (DER) the standard requires",
                       f"{what_zh}不是标准要求的 DER 唯一编码")
    return value


def decode_signature(signature: bytes, *, strict: bool = True) -> tuple[int, int]:
    """DER SM2Signature → (r, s). ``strict=False`` also accepts BER (non-minimal integers)."""
    der = _bytes(signature, "signature")
    if strict:
        r, s = _read_der_signature(der)
    else:
        value = _load_der(_SM2Signature, der, "SM2 signature", "SM2 签名值", strict=False)
        r, s = value["r"].native, value["s"].native
    _check_rs(r, s)
    return r, s


def _read_der_signature(der: bytes) -> tuple[int, int]:
    """Strict DER ``SEQUENCE { INTEGER r, INTEGER s }``: verification is on the hot path, and a
    hand reader of this one fixed shape is several times faster than a general ASN.1 parse."""
    def fail(why_en: str, why_zh: str) -> InvalidInput:
        return _invalid(f"SM2 signature is not valid DER: {why_en}", f"SM2 签名值不是合法的 DER 编码：{why_zh}")

    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise fail("expected SEQUENCE {r, s} with a short definite length covering all bytes",
                   "应为长度覆盖全部字节的 SEQUENCE {r, s}")
    values, pos = [], 2
    for name in ("r", "s"):
        if pos + 2 > len(der) or der[pos] != 0x02:
            raise fail(f"{name} is not an INTEGER", f"{name} 不是 INTEGER")
        length = der[pos + 1]
        body = der[pos + 2:pos + 2 + length]
        if not 1 <= length <= 33 or len(body) != length:
            raise fail(f"{name} has a bad length", f"{name} 长度错误")
        if body[0] & 0x80 or (length > 1 and body[0] == 0 and not body[1] & 0x80):
            raise fail(f"{name} is negative or not minimally encoded", f"{name} 为负数或不是最短编码")
        values.append(int.from_bytes(body, "big"))
        pos += 2 + length
    if pos != len(der):
        raise fail("trailing bytes after s", "s 之后有多余字节")
    return values[0], values[1]


def encode_signature(r: int, s: int) -> bytes:
    _check_rs(r, s)
    return _SM2Signature({"r": r, "s": s}).dump()


def _check_rs(r: int, s: int) -> None:
    if not (1 <= r < N and 1 <= s < N):
        raise _invalid("SM2 signature values r and s must lie in [1, n-1]",
                       "SM2 签名值 r、s 必须在 [1, n-1] 范围内")


def signature_to_raw(signature: bytes, *, strict: bool = True) -> bytes:
    r, s = decode_signature(signature, strict=strict)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signature_from_raw(raw: bytes) -> bytes:
    raw = _bytes(raw, "signature")
    if len(raw) != 64:
        raise _invalid(f"a raw SM2 signature r‖s is 64 bytes, got {len(raw)}",
                       f"裸格式 SM2 签名值 r‖s 应为 64 字节，实际为 {len(raw)} 字节")
    return encode_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def _signature_der(signature: bytes, encoding: SignatureEncoding) -> bytes:
    if encoding == "raw":
        return signature_from_raw(signature)
    if encoding == "der":
        signature = _bytes(signature, "signature")
        decode_signature(signature)
        return signature
    raise _invalid(f"unknown signature encoding {encoding!r}", f"未知的签名编码 {encoding!r}")


# ---------------------------------------------------------------- ciphertexts

def ciphertext_to_raw(ciphertext: bytes, order: Literal["c1c3c2", "c1c2c3"] = "c1c3c2") -> bytes:
    der = _bytes(ciphertext, "ciphertext")
    value = _load_der(_SM2Cipher, der, "SM2 ciphertext", "SM2 密文", strict=False)
    x, y, c3, c2 = (value[k].native for k in ("x", "y", "hash", "ciphertext"))
    if x < 0 or y < 0 or not is_on_curve(x, y):
        raise _invalid("C1 of the SM2 ciphertext is not a point on the curve", "SM2 密文的 C1 不是曲线上的点")
    if len(c3) != 32:
        raise _invalid(f"C3 of an SM2 ciphertext is 32 bytes, got {len(c3)}",
                       f"SM2 密文的 C3 应为 32 字节，实际为 {len(c3)} 字节")
    c1 = encode_point(x, y)
    return c1 + (c3 + c2 if order == "c1c3c2" else c2 + c3)


def ciphertext_from_raw(raw: bytes, order: Literal["c1c3c2", "c1c2c3"] = "c1c3c2") -> bytes:
    raw = _bytes(raw, "ciphertext")
    if len(raw) < 65 + 32 + 1 or raw[0] != 4:
        raise _invalid("a raw SM2 ciphertext is 04‖x‖y‖C3‖C2 with at least one byte of C2",
                       "裸格式 SM2 密文应为 04‖x‖y‖C3‖C2，且 C2 至少 1 字节")
    x, y = decode_point(raw[:65])
    rest = raw[65:]
    c3, c2 = (rest[:32], rest[32:]) if order == "c1c3c2" else (rest[-32:], rest[:-32])
    return _SM2Cipher({"x": x, "y": y, "hash": c3, "ciphertext": c2}).dump()


def _ciphertext_der(ciphertext: bytes, encoding: CiphertextEncoding) -> bytes:
    if encoding == "der":
        # Normalise through raw: validates C1 and C3 and re-encodes minimal DER for the provider.
        return ciphertext_from_raw(ciphertext_to_raw(ciphertext))
    if encoding in ("c1c3c2", "c1c2c3"):
        return ciphertext_from_raw(ciphertext, encoding)
    raise _invalid(f"unknown ciphertext encoding {encoding!r}", f"未知的密文编码 {encoding!r}")


# ---------------------------------------------------------------- keys

def _signer_id(signer_id) -> bytes:
    if isinstance(signer_id, str):
        signer_id = signer_id.encode()
    signer_id = _bytes(signer_id, "signer ID")
    if len(signer_id) > _MAX_ID_BYTES:
        raise _invalid(f"an SM2 signer ID is at most {_MAX_ID_BYTES} bytes", f"SM2 签名者标识最长 {_MAX_ID_BYTES} 字节")
    return signer_id


class SM2PublicKey:
    """An SM2 public key. Equal keys compare equal; Z values are cached per signer ID."""

    __slots__ = ("_handle", "_z", "x", "y")

    def __init__(self, x: int, y: int):
        if not is_on_curve(x, y):
            raise _invalid("public key is not a point on the SM2 curve", "公钥不是 SM2 曲线上的点")
        self.x, self.y = x, y
        self._handle = None
        self._z: dict[bytes, bytes] = {}

    @classmethod
    def from_point(cls, data: bytes) -> "SM2PublicKey":
        return cls(*decode_point(data))

    @classmethod
    def from_hex(cls, text: str) -> "SM2PublicKey":
        return cls.from_point(_unhex(text, "public key", "公钥"))

    @classmethod
    def from_der(cls, der: bytes) -> "SM2PublicKey":
        """SubjectPublicKeyInfo with id-ecPublicKey + sm2p256v1 (or the SM2 OID as algorithm)."""
        info = _load_der(asn1_keys.PublicKeyInfo, _bytes(der, "public key"), "public key", "公钥", strict=False)
        if not is_sm2_key_algorithm(info["algorithm"]):
            raise _invalid("not an SM2 public key (algorithm or curve OID differs)",
                           "不是 SM2 公钥（算法或曲线标识不符）")
        return cls.from_point(info["public_key"].contents[1:])

    @classmethod
    def from_pem(cls, text) -> "SM2PublicKey":
        return cls.from_der(_unarmor(text, {"PUBLIC KEY"}))

    def to_point(self) -> bytes:
        return encode_point(self.x, self.y)

    def to_hex(self) -> str:
        return self.to_point().hex()

    def to_der(self) -> bytes:
        return asn1_keys.PublicKeyInfo({
            "algorithm": {"algorithm": oids.EC_PUBLIC_KEY,
                          "parameters": asn1_keys.ECDomainParameters(name="named", value=oids.SM2_CURVE)},
            "public_key": self.to_point(),
        }).dump()

    def to_pem(self) -> str:
        return pem.armor("PUBLIC KEY", self.to_der()).decode()

    def z(self, signer_id=DEFAULT_ID) -> bytes:
        """Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy ‖ x_A ‖ y_A) (GB/T 32918.2 §5.5)."""
        signer_id = _signer_id(signer_id)
        z = self._z.get(signer_id)
        if z is None:
            z = sm3((len(signer_id) * 8).to_bytes(2, "big") + signer_id + _CURVE_PREFIX
                    + self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big"))
            self._z[signer_id] = z
        return z

    def digest(self, message: bytes, signer_id=DEFAULT_ID) -> bytes:
        """e = SM3(Z_A ‖ M): what an HSM's "sign digest" call wants."""
        return sm3(self.z(signer_id) + _bytes(message, "message"))

    def verify(self, signature: bytes, message: bytes, *, signer_id=DEFAULT_ID,
               encoding: SignatureEncoding = "der") -> None:
        """Raise InvalidSignature unless ``signature`` is valid over ``message``."""
        self.verify_digest(signature, self.digest(message, signer_id), encoding=encoding)

    def verify_digest(self, signature: bytes, e: bytes, *, encoding: SignatureEncoding = "der") -> None:
        der = _signature_der(signature, encoding)
        if not PROVIDER.verify_digest(self._provider_handle(), _digest(e), der):
            raise InvalidSignature("SM2 signature does not verify", "SM2 签名验证不通过")

    def encrypt(self, plaintext: bytes, *, encoding: CiphertextEncoding = "der") -> bytes:
        plaintext = _bytes(plaintext, "plaintext")
        if not plaintext:
            raise _invalid("SM2 cannot encrypt an empty message", "SM2 不能加密空消息")
        der = PROVIDER.encrypt(self._provider_handle(), plaintext)
        return der if encoding == "der" else ciphertext_to_raw(der, encoding)

    def _provider_handle(self):
        if self._handle is None:
            self._handle = PROVIDER.public_handle(self.to_point())
        return self._handle

    def __eq__(self, other) -> bool:
        return isinstance(other, SM2PublicKey) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __repr__(self) -> str:
        return f"SM2PublicKey({self.to_hex()[:18]}…)"


class SM2PrivateKey:
    """An SM2 private key. Only ``hsm/`` may hold one; its repr never shows the secret."""

    __slots__ = ("_d", "_handle", "_public")

    def __init__(self, d: int):
        if not isinstance(d, int) or not 1 <= d <= N - 2:
            # d = n-1 is excluded because (1 + d) must be invertible mod n.
            raise _invalid("an SM2 private key must lie in [1, n-2]", "SM2 私钥必须在 [1, n-2] 范围内")
        self._d = d
        self._handle, point = PROVIDER.private_handle(d)
        self._public = SM2PublicKey.from_point(point)

    def public_key(self) -> SM2PublicKey:
        """A method, as on ``cryptography``'s keys, so callers treat every algorithm alike."""
        return self._public

    @classmethod
    def generate(cls) -> "SM2PrivateKey":
        return cls(secrets.randbelow(N - 2) + 1)

    @classmethod
    def from_hex(cls, text: str) -> "SM2PrivateKey":
        raw = _unhex(text, "private key", "私钥")
        if len(raw) != 32:
            raise _invalid(f"a raw SM2 private key is 32 bytes, got {len(raw)}",
                           f"裸格式 SM2 私钥应为 32 字节，实际为 {len(raw)} 字节")
        return cls(int.from_bytes(raw, "big"))

    @classmethod
    def from_der(cls, der: bytes) -> "SM2PrivateKey":
        """PKCS#8 PrivateKeyInfo or SEC1 ECPrivateKey on sm2p256v1."""
        der = _bytes(der, "private key")
        try:
            info = asn1_keys.PrivateKeyInfo.load(der, strict=True)
            _ = info.native
        except (ValueError, TypeError, OverflowError):
            return cls._from_sec1(der)
        if not is_sm2_key_algorithm(info["private_key_algorithm"]):
            raise _invalid("not an SM2 private key (algorithm or curve OID differs)",
                           "不是 SM2 私钥（算法或曲线标识不符）")
        return cls._from_sec1(info["private_key"].contents, curve_known=True)

    @classmethod
    def _from_sec1(cls, der: bytes, curve_known: bool = False) -> "SM2PrivateKey":
        ec_key = _load_der(asn1_keys.ECPrivateKey, der, "private key", "私钥", strict=False)
        if not curve_known and not names_sm2_curve(ec_key["parameters"]):
            raise _invalid("not an SM2 private key (curve OID absent or different)", "不是 SM2 私钥（曲线标识缺失或不符）")
        key = cls(int.from_bytes(ec_key["private_key"].contents, "big"))
        public = ec_key["public_key"]
        if public.contents and SM2PublicKey.from_point(public.contents[1:]) != key.public_key():
            raise _invalid("the public key in the container does not match the private key",
                           "密钥容器中的公钥与私钥不匹配")
        return key

    @classmethod
    def from_pem(cls, text) -> "SM2PrivateKey":
        return cls.from_der(_unarmor(text, {"PRIVATE KEY", "EC PRIVATE KEY", "SM2 PRIVATE KEY"}))

    def _ec_private_key(self, with_curve: bool) -> asn1_keys.ECPrivateKey:
        fields = {"version": "ecPrivkeyVer1", "private_key": self._d,
                  "public_key": self._public.to_point()}
        if with_curve:
            fields["parameters"] = asn1_keys.ECDomainParameters(name="named", value=oids.SM2_CURVE)
        return asn1_keys.ECPrivateKey(fields)

    def to_pkcs8_der(self) -> bytes:
        return asn1_keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": {"algorithm": oids.EC_PUBLIC_KEY,
                                      "parameters": asn1_keys.ECDomainParameters(name="named", value=oids.SM2_CURVE)},
            "private_key": self._ec_private_key(with_curve=False),
        }).dump()

    def to_pkcs8_pem(self) -> str:
        return pem.armor("PRIVATE KEY", self.to_pkcs8_der()).decode()

    def to_sec1_der(self) -> bytes:
        return self._ec_private_key(with_curve=True).dump()

    def to_sec1_pem(self) -> str:
        return pem.armor("EC PRIVATE KEY", self.to_sec1_der()).decode()

    def to_hex(self) -> str:
        return self._d.to_bytes(32, "big").hex()

    def sign(self, message: bytes, *, signer_id=DEFAULT_ID, encoding: SignatureEncoding = "der") -> bytes:
        return self.sign_digest(self._public.digest(message, signer_id), encoding=encoding)

    def sign_digest(self, e: bytes, *, encoding: SignatureEncoding = "der") -> bytes:
        der = PROVIDER.sign_digest(self._handle, _digest(e))
        if encoding == "raw":
            return signature_to_raw(der)
        if encoding != "der":
            raise _invalid(f"unknown signature encoding {encoding!r}", f"未知的签名编码 {encoding!r}")
        return der

    def decrypt(self, ciphertext: bytes, *, encoding: CiphertextEncoding = "der") -> bytes:
        return PROVIDER.decrypt(self._handle, _ciphertext_der(ciphertext, encoding))

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public!r})"


def _digest(e: bytes) -> bytes:
    e = _bytes(e, "digest")
    if len(e) != 32:
        raise _invalid(f"an SM2 digest e is 32 bytes (SM3), got {len(e)}",
                       f"SM2 待签摘要 e 应为 32 字节（SM3），实际为 {len(e)} 字节")
    return e


def is_sm2_key_algorithm(algorithm) -> bool:
    """True for a key AlgorithmIdentifier naming sm2p256v1: id-ecPublicKey with the SM2 curve,
    or the SM2 curve OID itself as the algorithm, as some producers write it."""
    oid = algorithm["algorithm"].dotted
    return oid == oids.SM2_CURVE or (oid == oids.EC_PUBLIC_KEY and names_sm2_curve(algorithm["parameters"]))


def names_sm2_curve(parameters) -> bool:
    """True if EC domain parameters (possibly absent) name sm2p256v1."""
    return (isinstance(parameters, asn1_keys.ECDomainParameters) and parameters.name == "named"
            and parameters.chosen.dotted == oids.SM2_CURVE)


def _unhex(text: str, what_en: str, what_zh: str) -> bytes:
    if not isinstance(text, str):
        raise _invalid(f"{what_en} hex must be text", f"{what_zh}的十六进制表示必须是文本")
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        raise _invalid(f"{what_en} is not valid hex", f"{what_zh}不是合法的十六进制") from None


def _unarmor(text, types: set[str]) -> bytes:
    data = text.encode() if isinstance(text, str) else _bytes(text, "PEM")
    try:
        kind, _headers, der = pem.unarmor(data)
    except (ValueError, TypeError) as exc:
        raise _invalid(f"not a PEM block: {exc}", f"不是 PEM 格式：{exc}") from None
    if kind not in types:
        raise _invalid(f"expected PEM {' or '.join(sorted(types))}, got {kind}",
                       f"需要 PEM 类型 {'或'.join(sorted(types))}，实际为 {kind}")
    return der

