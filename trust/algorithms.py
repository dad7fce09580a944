"""One API for every signature algorithm, looked up by OID or name.

    alg = signature_algorithm("1.2.156.10197.1.501")      # or "SM2-with-SM3", "ES256", ...
    key = alg.generate_key()
    sig = alg.sign(key, message)
    alg.verify(key.public_key(), message, sig)            # raises InvalidSignature

Signatures come out in the form the standards put in certificates and CMS: DER for SM2
and ECDSA, PKCS#1 bytes for RSA, 64 raw bytes for Ed25519. Hashes are in
``trust.hashes``, SM4 in ``trust.sm4``.
"""

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from trust import oids
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.sm2 import DEFAULT_ID, SM2PrivateKey, SM2PublicKey

MIN_RSA_BITS = 2048


class SignatureAlgorithm:
    name: str
    oid: str
    aliases: tuple[str, ...] = ()

    def generate_key(self):
        raise NotImplementedError

    def sign(self, key, message: bytes) -> bytes:
        raise NotImplementedError

    def verify(self, key, message: bytes, signature: bytes) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.name} {self.oid}>"


def _mismatch(alg: SignatureAlgorithm, key) -> InvalidInput:
    return InvalidInput(f"a {type(key).__name__} cannot be used with {alg.name}",
                        f"{type(key).__name__} 类型的密钥不能用于 {alg.name}")


def _invalid_signature(alg: SignatureAlgorithm) -> InvalidSignature:
    return InvalidSignature(f"{alg.name} signature does not verify", f"{alg.name} 签名验证不通过")


@dataclass(frozen=True, repr=False)
class SM2WithSM3(SignatureAlgorithm):
    name: str = "SM2-with-SM3"
    oid: str = oids.SM2_WITH_SM3
    aliases: tuple[str, ...] = ("SM2", "SM3withSM2", "sm2sign-with-sm3", oids.SM2_SIGN)

    def generate_key(self) -> SM2PrivateKey:
        return SM2PrivateKey.generate()

    def sign(self, key, message: bytes, *, signer_id=DEFAULT_ID) -> bytes:
        if not isinstance(key, SM2PrivateKey):
            raise _mismatch(self, key)
        return key.sign(message, signer_id=signer_id)

    def verify(self, key, message: bytes, signature: bytes, *, signer_id=DEFAULT_ID) -> None:
        if not isinstance(key, SM2PublicKey):
            raise _mismatch(self, key)
        key.verify(signature, message, signer_id=signer_id)


@dataclass(frozen=True, repr=False)
class ECDSA(SignatureAlgorithm):
    name: str
    oid: str
    curve: type[ec.EllipticCurve]
    hash: type[hashes.HashAlgorithm]
    aliases: tuple[str, ...] = ()

    def generate_key(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(self.curve())

    def _check(self, key, kind) -> None:
        if not isinstance(key, kind) or not isinstance(key.curve, self.curve):
            raise _mismatch(self, key)

    def sign(self, key, message: bytes) -> bytes:
        self._check(key, ec.EllipticCurvePrivateKey)
        return key.sign(_bytes(message), ec.ECDSA(self.hash()))

    def verify(self, key, message: bytes, signature: bytes) -> None:
        self._check(key, ec.EllipticCurvePublicKey)
        try:
            key.verify(_bytes(signature), _bytes(message), ec.ECDSA(self.hash()))
        except _CryptographyInvalidSignature:
            raise _invalid_signature(self) from None


@dataclass(frozen=True, repr=False)
class RSA(SignatureAlgorithm):
    name: str
    oid: str
    hash: type[hashes.HashAlgorithm]
    pss: bool
    aliases: tuple[str, ...] = ()
    generate_bits: int = 3072

    def _padding(self):
        if self.pss:
            return padding.PSS(mgf=padding.MGF1(self.hash()), salt_length=self.hash.digest_size)
        return padding.PKCS1v15()

    def _check(self, key, kind) -> None:
        if not isinstance(key, kind):
            raise _mismatch(self, key)
        if key.key_size < MIN_RSA_BITS:
            raise InvalidInput(f"RSA keys must have at least {MIN_RSA_BITS} bits, this one has {key.key_size}",
                               f"RSA 密钥至少 {MIN_RSA_BITS} 位，此密钥为 {key.key_size} 位")

    def generate_key(self) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=self.generate_bits)

    def sign(self, key, message: bytes) -> bytes:
        self._check(key, rsa.RSAPrivateKey)
        return key.sign(_bytes(message), self._padding(), self.hash())

    def verify(self, key, message: bytes, signature: bytes) -> None:
        self._check(key, rsa.RSAPublicKey)
        try:
            key.verify(_bytes(signature), _bytes(message), self._padding(), self.hash())
        except _CryptographyInvalidSignature:
            raise _invalid_signature(self) from None


@dataclass(frozen=True, repr=False)
class Ed25519(SignatureAlgorithm):
    name: str = "Ed25519"
    oid: str = oids.ED25519
    aliases: tuple[str, ...] = ("EdDSA",)

    def generate_key(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.generate()

    def sign(self, key, message: bytes) -> bytes:
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise _mismatch(self, key)
        return key.sign(_bytes(message))

    def verify(self, key, message: bytes, signature: bytes) -> None:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise _mismatch(self, key)
        try:
            key.verify(_bytes(signature), _bytes(message))
        except _CryptographyInvalidSignature:
            raise _invalid_signature(self) from None


def _bytes(value) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidInput(f"expected bytes, got {type(value).__name__}", f"需要字节串，实际为 {type(value).__name__}")


SIGNATURE_ALGORITHMS: tuple[SignatureAlgorithm, ...] = (
    SM2WithSM3(),
    ECDSA("ecdsa-with-SHA256", oids.ECDSA_SHA256, ec.SECP256R1, hashes.SHA256, ("ES256",)),
    ECDSA("ecdsa-with-SHA384", oids.ECDSA_SHA384, ec.SECP384R1, hashes.SHA384, ("ES384",)),
    RSA("sha256WithRSAEncryption", oids.SHA256_RSA, hashes.SHA256, pss=False, aliases=("RS256",)),
    RSA("sha384WithRSAEncryption", oids.SHA384_RSA, hashes.SHA384, pss=False, aliases=("RS384",)),
    RSA("sha512WithRSAEncryption", oids.SHA512_RSA, hashes.SHA512, pss=False, aliases=("RS512",)),
    # RSASSA-PSS has one OID; its parameters name the hash. Our default is SHA-256, MGF1-SHA-256, salt 32.
    RSA("RSASSA-PSS", oids.RSA_PSS, hashes.SHA256, pss=True, aliases=("PS256",)),
    RSA("RSASSA-PSS-SHA384", "", hashes.SHA384, pss=True, aliases=("PS384",)),
    Ed25519(),
)


def _fold(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_BY_KEY: dict[str, SignatureAlgorithm] = {}
for _alg in SIGNATURE_ALGORITHMS:
    for _key in (_alg.oid, _alg.name, *_alg.aliases):
        if _key:
            _BY_KEY[_key if _key[:1].isdigit() else _fold(_key)] = _alg


def signature_algorithm(name_or_oid: str) -> SignatureAlgorithm:
    """Look up by OID (``1.2.156.10197.1.501``) or name (``SM2-with-SM3``, ``ES256``, ``Ed25519``)."""
    if not isinstance(name_or_oid, str) or not name_or_oid:
        raise UnsupportedAlgorithm("an algorithm name or OID is required", "需要算法名称或 OID")
    key = name_or_oid if name_or_oid[:1].isdigit() else _fold(name_or_oid)
    try:
        return _BY_KEY[key]
    except KeyError:
        raise UnsupportedAlgorithm(f"unknown or unsupported signature algorithm {name_or_oid!r}",
                                   f"不支持的签名算法 {name_or_oid!r}") from None
