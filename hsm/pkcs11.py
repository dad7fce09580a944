"""The PKCS#11 backend (python-pkcs11): keys generated inside a token, non-extractable,
signing inside it. SoftHSM2 in the tests; any vendor module in production.

Mechanisms (PKCS#11 v2.40, see ../shared/spec/hsm-interfaces.md §2): ECDSA hashes on the
host, then CKM_ECDSA, whose raw r‖s output is converted to DER; RSA uses CKM_SHA*_RSA_PKCS
(_PSS), or CKM_RSA_PKCS(_PSS) on a DigestInfo/hash when prehashed; Ed25519 uses CKM_EDDSA.

SM2 has no standard mechanism: vendors number their own (spec §3). A profile names them;
with none (SoftHSM), SM2 keys are kept by the software backend under a KEK in this token.
The host always computes e = SM3(Z ‖ M), so Z and the signer ID stay in our code, and a new
key is self-tested by verifying a signature in software before it is recorded.

One logged-in session per process, opened on first use (never before a fork), guarded by a
lock; a token that goes away resets it, and the next call logs in again. The PIN is read
from a file named in the configuration, never from the command line or the environment.
"""

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
from asn1crypto import core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, exceptions as p11
from pkcs11.mechanisms import MGF, GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from hsm.backend import Material
from trust import oids
from trust.errors import DecryptionFailed, InvalidInput, InvalidSignature, KeyUnavailable, UnsupportedAlgorithm
from trust.sm2 import DEFAULT_ID, SM2PublicKey, signature_from_raw

RSA_BITS = 3072
_PRIVATE = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False}
# A token that went away or a session that broke: drop the session, log in again next time.
_GONE = (p11.DeviceRemoved, p11.TokenNotPresent, p11.TokenNotRecognised, p11.DeviceError,
         p11.SessionClosed, p11.SessionHandleInvalid, p11.UserNotLoggedIn, p11.DeviceMemory)


@dataclass(frozen=True)
class SM2Profile:
    """A vendor's SM2 numbers (spec §3). ``sign_mechanism`` takes the 32-byte e."""

    name: str
    key_type: int
    keygen_mechanism: int
    sign_mechanism: int
    signature_format: str  # "raw" (r ‖ s) or "der"


# From vendor headers (spec §3); check a new device against its own header first.
SM2_PROFILES = {
    "sansec": SM2Profile("sansec", 0x80000004, 0x80008001, 0x80008105, "raw"),  # CKM_SM2_SIGN_NO_DER
    "ibm-ep11": SM2Profile("ibm-ep11", 0x80050002, 0x8005000A, 0x8005000B, "raw"),
    "mk1": SM2Profile("mk1", 0x00010001, 0x00010009, 0x00010002, "raw"),
}


def sm2_profile(name: str) -> SM2Profile | None:
    if name in ("", "none"):
        return None
    try:
        return SM2_PROFILES[name]
    except KeyError:
        raise InvalidInput(f"unknown SM2 mechanism profile {name!r}; known: none, {', '.join(SM2_PROFILES)}",
                           f"未知的 SM2 机制配置 {name!r}") from None


def _vendor(enum_type, value: int):
    """python-pkcs11 accepts only members of its enums; vendor numbers become pseudo-members."""
    try:
        return enum_type(value)
    except ValueError:
        member = int.__new__(enum_type, value)
        member._name_, member._value_ = f"VENDOR_{value:#x}", value
        return member


_LIBS: dict[str, Any] = {}  # module path -> pkcs11.lib (typed as a function by its stubs)
_LIBS_LOCK = threading.Lock()


def _library(module: str) -> Any:
    with _LIBS_LOCK:
        lib = _LIBS.get(module)
        if lib is None:
            if not os.path.isfile(module):
                raise KeyUnavailable(f"PKCS#11 module {module} is missing", f"PKCS#11 模块 {module} 不存在")
            try:
                lib = _LIBS[module] = pkcs11.lib(module)
            except (p11.PKCS11Error, OSError) as e:
                raise KeyUnavailable(f"PKCS#11 module {module} cannot be loaded: {e}",
                                     f"无法加载 PKCS#11 模块 {module}：{e}") from None
        return lib


class Token:
    """A logged-in session on one token, shared by the PKCS#11 backend and the token KEK."""

    def __init__(self, module: str, label: str, pin_file: str | os.PathLike):
        self.module, self.label, self.pin_file = module, label, Path(pin_file)
        self._lock = threading.RLock()
        self._session = None
        self._keys: dict[tuple, object] = {}

    def __repr__(self) -> str:
        return f"Token(module={self.module!r}, label={self.label!r})"

    def _unavailable(self, en: str, zh: str) -> KeyUnavailable:
        return KeyUnavailable(f"PKCS#11 token {self.label!r} ({self.module}): {en}",
                              f"PKCS#11 设备 {self.label!r}（{self.module}）：{zh}")

    def _pin(self) -> str:
        try:
            pin = self.pin_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise self._unavailable(f"the PIN file {self.pin_file} cannot be read ({e})",
                                    f"无法读取 PIN 文件 {self.pin_file}（{e}）") from None
        if not pin:
            raise self._unavailable(f"the PIN file {self.pin_file} is empty", f"PIN 文件 {self.pin_file} 为空")
        return pin

    def _open(self):
        lib = _library(self.module)
        try:
            token = lib.get_token(token_label=self.label)
        except p11.NoSuchToken:
            raise self._unavailable("no token with this label (removed or not initialised)",
                                    "找不到该标签的设备（已移除或未初始化）") from None
        except p11.PKCS11Error as e:
            raise self._unavailable(f"cannot list tokens ({type(e).__name__})", f"无法列出设备（{type(e).__name__}）") from None
        pin = self._pin()
        try:
            return token.open(user_pin=pin, rw=True)
        except p11.UserAlreadyLoggedIn:
            # PKCS#11 login is per process and token: another session here logged in already.
            return token.open(rw=True)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as e:
            raise self._unavailable(f"login refused: wrong PIN ({type(e).__name__})",
                                    f"登录被拒绝：PIN 错误（{type(e).__name__}）") from None
        except (p11.PinLocked, p11.PinExpired) as e:
            raise self._unavailable(f"login refused: the PIN is locked or expired ({type(e).__name__})",
                                    f"登录被拒绝：PIN 已锁定或过期（{type(e).__name__}）") from None
        except p11.PKCS11Error as e:
            raise self._unavailable(f"cannot open a session ({type(e).__name__})",
                                    f"无法打开会话（{type(e).__name__}）") from None

    def close(self) -> None:
        session, self._session, self._keys = self._session, None, {}
        if session is not None:
            try:
                session.close()
            except p11.PKCS11Error:
                pass

    def run(self, what: str, operation):
        """Run ``operation(session)`` under the lock; PKCS#11 failures become KeyUnavailable."""
        with self._lock:
            if self._session is None:
                self._session = self._open()
            try:
                return operation(self._session)
            except p11.PKCS11Error as e:
                if isinstance(e, _GONE):
                    self.close()
                raise self._unavailable(f"{what} failed ({type(e).__name__})",
                                        f"{what}失败（{type(e).__name__}）") from None

    def check_ready(self) -> None:
        self.run("a random-number request", lambda s: s.generate_random(64))

    # -------------------------------------------------------- objects

    def _object(self, session, object_class, **by):
        cache_key = (object_class, *sorted(by.items()))
        found = self._keys.get(cache_key)
        if found is None:
            try:
                found = session.get_key(object_class=object_class, **by)
            except p11.NoSuchKey:
                raise self._unavailable(f"no {object_class.name} object {by}", f"找不到对象 {by}") from None
            self._keys[cache_key] = found
        return found

    def find_secret_key(self, label: str):
        return self.run("finding the KEK", lambda s: self._object(s, ObjectClass.SECRET_KEY, label=label))

    def generate_aes_key(self, label: str) -> None:
        self.run("generating the KEK", lambda s: s.generate_key(
            KeyType.AES, 256, label=label, store=True,
            template={**_PRIVATE, Attribute.ENCRYPT: True, Attribute.DECRYPT: True}))

    def aes_gcm(self, label: str, encrypt: bool, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        def crypt(session):
            key = self._object(session, ObjectClass.SECRET_KEY, label=label)
            param = GCMParams(nonce, aad, 128)
            if encrypt:
                return key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=param)
            try:
                return key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=param)
            except (p11.GeneralError, p11.EncryptedDataInvalid, p11.EncryptedDataLenRange,
                    p11.FunctionFailed):
                # SoftHSM reports a GCM tag mismatch as a general error.
                raise DecryptionFailed("AES-GCM tag mismatch", "AES-GCM 认证失败") from None
        return self.run("AES-GCM key wrapping", crypt)

    def generate_key_pair(self, algorithm: str, cka_id: bytes, label: str,
                          profile: SM2Profile | None) -> bytes:
        """Generate inside the token; return the public key as SubjectPublicKeyInfo DER."""
        def generate(session):
            common = {"store": True, "id": cka_id, "label": label,
                      "private_template": {**_PRIVATE, Attribute.SIGN: True}}
            if algorithm.startswith("ecdsa"):
                curve = _EC_CURVES[algorithm]
                params = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve.name)}, local=True)
                public, _ = params.generate_keypair(**common)
                point = _ec_point(public[Attribute.EC_POINT])
                return _spki(ec.EllipticCurvePublicKey.from_encoded_point(curve(), point))
            if algorithm == "Ed25519":
                params = session.create_domain_parameters(
                    KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: encode_named_curve_parameters(oids.ED25519)},
                    local=True)
                public, _ = params.generate_keypair(mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, **common)
                return _spki(ed25519.Ed25519PublicKey.from_public_bytes(_ec_point(public[Attribute.EC_POINT])))
            if algorithm in _RSA:
                public, _ = session.generate_keypair(KeyType.RSA, RSA_BITS, **common)
                numbers = rsa.RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                                               int.from_bytes(public[Attribute.MODULUS], "big"))
                return _spki(numbers.public_key())
            # SM2 through a vendor profile
            template = {Attribute.KEY_TYPE: profile.key_type,
                        Attribute.EC_PARAMS: core.ObjectIdentifier(oids.SM2_CURVE).dump()}
            public, _ = session.generate_keypair(
                _vendor(KeyType, profile.key_type), capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                mechanism=_vendor(Mechanism, profile.keygen_mechanism), public_template=template,
                **{**common, "private_template": {**common["private_template"], **template}})
            return SM2PublicKey.from_point(_ec_point(public[Attribute.EC_POINT])).to_der()
        return self.run("key generation", generate)

    def sign(self, cka_id: bytes, mechanism, data: bytes, param=None) -> bytes:
        def sign(session):
            key = self._object(session, ObjectClass.PRIVATE_KEY, id=cka_id)
            return key.sign(data, mechanism=mechanism, mechanism_param=param)
        return self.run("signing", sign)

    def destroy(self, cka_id: bytes) -> None:
        def destroy(session):
            for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for obj in session.get_objects({Attribute.CLASS: object_class, Attribute.ID: cka_id}):
                    obj.destroy()
            self._keys = {k: v for k, v in self._keys.items() if ("id", cka_id) not in k}
        self.run("destroying the key objects", destroy)


def _ec_point(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point (or, from some modules, the bare point)."""
    try:
        return core.OctetString.load(value, strict=True).native
    except ValueError:
        return value


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


_EC_CURVES = {"ecdsa-with-SHA256": ec.SECP256R1, "ecdsa-with-SHA384": ec.SECP384R1}
_HASHES = {"ecdsa-with-SHA256": hashlib.sha256, "ecdsa-with-SHA384": hashlib.sha384}
# algorithm → (mechanism on the message, mechanism on a hash, hash name, PSS)
_RSA = {
    "sha256WithRSAEncryption": (Mechanism.SHA256_RSA_PKCS, Mechanism.RSA_PKCS, "sha256", False),
    "sha384WithRSAEncryption": (Mechanism.SHA384_RSA_PKCS, Mechanism.RSA_PKCS, "sha384", False),
    "sha512WithRSAEncryption": (Mechanism.SHA512_RSA_PKCS, Mechanism.RSA_PKCS, "sha512", False),
    "RSASSA-PSS": (Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.RSA_PKCS_PSS, "sha256", True),
}
_DIGEST_INFO = {  # DER DigestInfo prefixes (RFC 8017 §9.2 note 1)
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS = {"sha256": (Mechanism.SHA256, MGF.SHA256, 32)}


def _sm2_profile_of(profile: "SM2Profile | None") -> "SM2Profile":
    """The vendor's SM2 mechanisms, which every SM2 key of a token is used with."""
    if profile is None:
        raise UnsupportedAlgorithm("this token has no SM2 profile configured (TRUST_PKCS11_SM2_PROFILE)",
                                   "该设备未配置 SM2 机制（TRUST_PKCS11_SM2_PROFILE）")
    return profile


class TokenKey:
    """A private key inside the token, by CKA_ID; signs there."""

    __slots__ = ("algorithm", "cka_id", "profile", "public", "token")

    def __init__(self, token: Token, cka_id: bytes, algorithm: str, public, profile: SM2Profile | None):
        self.token, self.cka_id, self.algorithm, self.public, self.profile = (
            token, cka_id, algorithm, public, profile)

    def __repr__(self) -> str:
        return f"TokenKey({self.algorithm}, id={self.cka_id.hex()})"

    def sign(self, data: bytes, prehashed: bool, signer_id) -> bytes:
        alg = self.algorithm
        if alg in _HASHES:
            digest = data if prehashed else _HASHES[alg](data).digest()
            raw = self.token.sign(self.cka_id, Mechanism.ECDSA, digest)
            half = len(raw) // 2
            return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
        if alg in _RSA:
            on_message, on_hash, hash_name, pss = _RSA[alg]
            param = _PSS[hash_name] if pss else None
            if not prehashed:
                return self.token.sign(self.cka_id, on_message, data, param)
            return self.token.sign(self.cka_id, on_hash, data if pss else _DIGEST_INFO[hash_name] + data, param)
        if alg == "Ed25519":
            if prehashed:
                raise UnsupportedAlgorithm("Ed25519 signs the whole message; it has no prehashed form",
                                           "Ed25519 只能对完整消息签名，不支持预先杂凑")
            return self.token.sign(self.cka_id, Mechanism.EDDSA, data)
        profile = _sm2_profile_of(self.profile)
        e = data if prehashed else self.public.digest(data, signer_id)
        out = self.token.sign(self.cka_id, _vendor(Mechanism, profile.sign_mechanism), e)
        return signature_from_raw(out) if profile.signature_format == "raw" else out

    def decrypt(self, ciphertext: bytes) -> bytes:
        raise UnsupportedAlgorithm("keys in the PKCS#11 token only sign here", "PKCS#11 设备中的密钥在此仅用于签名")


class Pkcs11Backend:
    name = "pkcs11"

    def __init__(self, token: Token, profile: SM2Profile | None = None):
        self.token, self.profile = token, profile

    def supports(self, algorithm: str, decrypts: bool) -> bool:
        if decrypts:
            return False
        return algorithm in _EC_CURVES or algorithm in _RSA or algorithm == "Ed25519" or (
            algorithm == "SM2-with-SM3" and self.profile is not None)

    def create(self, session, key_id: str, label: str, version: int, algorithm: str, exportable: bool):
        if exportable:
            raise InvalidInput("keys generated inside a PKCS#11 token are never exportable",
                               "在 PKCS#11 设备内生成的密钥不可导出")
        cka_id = bytes.fromhex(key_id.replace("-", ""))
        public_der = self.token.generate_key_pair(algorithm, cka_id, f"{label}/v{version}", self.profile)
        if algorithm == "SM2-with-SM3":
            self._self_test(cka_id, public_der)
        return Material(handle=cka_id.hex(), public_key=public_der)

    def _self_test(self, cka_id: bytes, public_der: bytes) -> None:
        """A new vendor profile must prove itself: sign and verify in software."""
        public, profile = SM2PublicKey.from_der(public_der), _sm2_profile_of(self.profile)
        key = TokenKey(self.token, cka_id, "SM2-with-SM3", public, profile)
        message = secrets.token_bytes(32)
        try:
            public.verify(key.sign(message, False, DEFAULT_ID), message)
        except (InvalidSignature, InvalidInput):
            self.token.destroy(cka_id)
            raise KeyUnavailable(f"the SM2 profile {profile.name!r} made a signature that does not "
                                 "verify; check the vendor's mechanism numbers",
                                 f"SM2 机制配置 {profile.name!r} 生成的签名验证不通过，请核对厂商机制编号") from None

    def discard(self, handle: str) -> None:
        self.token.destroy(bytes.fromhex(handle))

    def load(self, session, row) -> TokenKey:
        public = SM2PublicKey.from_der(row.public_key) if row.algorithm == "SM2-with-SM3" else None
        return TokenKey(self.token, bytes.fromhex(row.handle), row.algorithm, public, self.profile)

    def wipe(self, session, row) -> dict:
        self.token.destroy(bytes.fromhex(row.handle))
        return {}

    def check_ready(self, session) -> None:
        self.token.check_ready()
