"""X.509 certificates (RFC 5280; SM2 per GM/T 0015): parsing, signature by an issuer,
validity and key usage. Paths to trusted roots, with revocation, are trust.path's.

Certificates are parsed with asn1crypto and keep their received bytes: the issuer's
signature is checked over the exact ``tbsCertificate`` TLV, never a re-encoding. SM2
signatures use the standard signer ID; ECDSA, RSA (PKCS#1 v1.5 and PSS) and Ed25519
certificates are checked by ``cryptography``.
"""

import functools
import threading
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import core, pem, x509 as asn1_x509
from cryptography import x509 as crypto_x509
from cryptography.exceptions import (
    InvalidSignature as _CryptoInvalidSignature,
    UnsupportedAlgorithm as _CryptoUnsupported,
)

from trust import oids
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.keys import load_public_key
from trust.report import Message
from trust.sm2 import SM2PublicKey

_SM2_CURVE_PARAMETER = b"\x06\x08" + bytes.fromhex("2a811ccf5501822d")
SM2_SIGNATURE_OIDS = {oids.SM2_WITH_SM3, oids.SM2_SIGN}
MAX_PATH = 8
SIGNING_USAGES = frozenset({"digital_signature", "non_repudiation"})


@dataclass(frozen=True)
class Certificate:
    der: bytes
    tbs: bytes                       # exact received tbsCertificate, what the issuer signed
    signature_algorithm: str         # OID
    signature: bytes
    serial_number: int
    subject: str                     # human readable, RFC 4514-like
    issuer: str
    subject_der: bytes               # Name TLVs for matching
    issuer_der: bytes
    not_before: datetime
    not_after: datetime
    public_key_info: bytes           # SubjectPublicKeyInfo DER
    public_key_bits: bytes           # its BIT STRING contents (an SM2 point 04‖x‖y)
    is_sm2: bool
    key_usage: frozenset[str] | None  # None when the extension is absent
    extended_key_usage: tuple[str, ...] | None
    ca: bool | None                   # basicConstraints cA, None when absent
    path_length: int | None
    subject_key_id: bytes | None
    authority_key_id: bytes | None
    names_revocation_service: bool   # a CRL distribution point or an OCSP responder (AIA)
    signature_unused_bits: int = 0   # the signatureValue BIT STRING's count: anything but 0 is refused
    extensions: tuple[tuple[str, bool, bytes], ...] = ()   # (OID, critical, extnValue contents), as written

    def extension(self, oid: str) -> bytes | None:
        """The value of an extension (its extnValue's contents), None when absent; of a
        repeated one (RFC 5280 forbids it), the last, as the other readers here take it."""
        return next((value for found, _critical, value in reversed(self.extensions) if found == oid), None)

    def __repr__(self) -> str:
        return f"Certificate(subject={self.subject!r}, issuer={self.issuer!r}, serial={self.serial_number:#x})"

    def public_key(self):
        if self.is_sm2:
            return _sm2_key(self.public_key_bits)
        try:
            return load_public_key(self.public_key_info)
        except KeyError:  # asn1crypto on an unknown key algorithm OID (trust.keys lets it through)
            raise UnsupportedAlgorithm("unsupported public key algorithm in the certificate",
                                       "证书中的公钥算法不受支持") from None

    @property
    def self_issued(self) -> bool:
        return self.subject_der == self.issuer_der

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= at <= self.not_after

    @property
    def pem(self) -> str:
        return pem.armor("CERTIFICATE", self.der).decode()


@functools.lru_cache(maxsize=512)
def _sm2_key(point: bytes) -> SM2PublicKey:
    return SM2PublicKey.from_point(point)  # one object per key keeps its Z_A and provider handle


def _invalid(en: str, zh: str) -> InvalidInput:
    return InvalidInput(f"not a readable X.509 certificate: {en}", f"无法读取的 X.509 证书：{zh}")


class _RawExtension(core.Sequence):
    """An Extension whose value stays bytes: asn1crypto would parse every known extension
    eagerly, and real CAs write malformed ones (e.g. subjectAltName) that we do not need."""
    _fields = [("extn_id", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("extn_value", core.OctetString)]


class _RawExtensions(core.SequenceOf):
    _child_spec = _RawExtension


class _AttributeTypeAndValue(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("value", core.Any)]


class _RelativeDistinguishedName(core.SetOf):
    _child_spec = _AttributeTypeAndValue


class _Name(core.SequenceOf):
    """Names read leniently: producers put UTF8String where X.520 wants other types."""
    _child_spec = _RelativeDistinguishedName


class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _SubjectPublicKeyInfo(core.Sequence):
    _fields = [("algorithm", _AlgorithmIdentifier), ("public_key", core.OctetBitString)]


class _TbsCertificate(core.Sequence):
    _fields = [
        ("version", core.Integer, {"explicit": 0, "default": 0}),
        ("serial_number", core.Integer),
        ("signature", _AlgorithmIdentifier),
        ("issuer", _Name),
        ("validity", asn1_x509.Validity),
        ("subject", _Name),
        ("subject_public_key_info", core.Any),   # SM2 keys may name the SM2 OID, unknown to asn1crypto
        ("issuer_unique_id", core.OctetBitString, {"implicit": 1, "optional": True}),
        ("subject_unique_id", core.OctetBitString, {"implicit": 2, "optional": True}),
        ("extensions", _RawExtensions, {"explicit": 3, "optional": True}),
    ]


class _Certificate(core.Sequence):
    _fields = [("tbs_certificate", _TbsCertificate), ("signature_algorithm", _AlgorithmIdentifier),
               ("signature_value", core.OctetBitString)]


_LABELS = {"2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.3": "CN", "2.5.4.8": "ST",
           "2.5.4.7": "L", "1.2.840.113549.1.9.1": "E", "2.5.4.5": "SERIALNUMBER", "2.5.4.4": "SN",
           "2.5.4.42": "GN", "2.5.4.45": "UID"}


def _name(name: _Name) -> str:
    parts = []
    for rdn in name:
        for attr in rdn:
            value = attr["value"]
            tag, body = value.tag if hasattr(value, "tag") else None, value.contents or b""
            text = body.decode("utf-16-be" if tag == 30 else "utf-8", errors="replace")
            parts.append(f"{_LABELS.get(attr['type'].dotted, attr['type'].dotted)}={text}")
    return ",".join(reversed(parts))


def parse_certificate(data: bytes | str) -> Certificate:
    """One certificate from DER or PEM. Raises InvalidInput."""
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _invalid("input must be bytes", "输入必须是字节串")
    return _parse_certificate(bytes(data))


@functools.lru_cache(maxsize=512)
def _parse_certificate(data: bytes) -> Certificate:
    # Verifiers meet the same few certificates again and again; the values are immutable.
    if pem.detect(data):
        try:
            _kind, _headers, data = pem.unarmor(data)
        except ValueError as exc:
            raise _invalid(str(exc), "PEM 格式错误") from None
    try:
        cert = _Certificate.load(data, strict=True)
        tbs = cert["tbs_certificate"]
        validity = tbs["validity"]
        not_before, not_after = validity["not_before"].native, validity["not_after"].native
        spki = tbs["subject_public_key_info"].dump()
        key_info = _SubjectPublicKeyInfo.load(spki)
        algorithm = key_info["algorithm"]
        listed = tuple((e["extn_id"].dotted, bool(e["critical"].native), e["extn_value"].native)
                       for e in tbs["extensions"]) if isinstance(tbs["extensions"], _RawExtensions) else ()
        extensions = {oid: value for oid, _critical, value in listed}
        key_usage, eku, basic, ski, aki = (
            _extension(extensions, oid) for oid in ("2.5.29.15", "2.5.29.37", "2.5.29.19", "2.5.29.14", "2.5.29.35"))
        sm2 = algorithm["algorithm"].dotted == oids.SM2_CURVE or (
            algorithm["algorithm"].dotted == oids.EC_PUBLIC_KEY
            and algorithm["parameters"].dump() == _SM2_CURVE_PARAMETER)
        result = Certificate(
            der=data, tbs=tbs.dump(), signature_algorithm=cert["signature_algorithm"]["algorithm"].dotted,
            signature=cert["signature_value"].native, serial_number=tbs["serial_number"].native,
            subject=_name(tbs["subject"]), issuer=_name(tbs["issuer"]),
            subject_der=tbs["subject"].dump(), issuer_der=tbs["issuer"].dump(),
            not_before=not_before, not_after=not_after, public_key_info=spki, is_sm2=sm2,
            public_key_bits=key_info["public_key"].native,
            key_usage=frozenset(key_usage.native) if key_usage is not None else None,
            extended_key_usage=tuple(eku.native) if eku is not None else None,
            ca=bool(basic["ca"].native) if basic is not None else None,
            path_length=basic["path_len_constraint"].native if basic is not None else None,
            subject_key_id=ski.native if ski is not None else None,
            authority_key_id=aki["key_identifier"].native if aki is not None else None,
            names_revocation_service=_names_revocation_service(extensions),
            signature_unused_bits=cert["signature_value"].contents[0], extensions=listed)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise _invalid(str(exc)[:200], "结构不合法") from None
    if result.is_sm2:
        result.public_key()  # an SM2 point off the curve makes the certificate unusable: say so now
    return result


_EXTENSION_SPECS = {"2.5.29.15": asn1_x509.KeyUsage, "2.5.29.37": asn1_x509.ExtKeyUsageSyntax,
                    "2.5.29.19": asn1_x509.BasicConstraints, "2.5.29.14": core.OctetString,
                    "2.5.29.35": asn1_x509.AuthorityKeyIdentifier}


def _extension(extensions: dict, oid: str):
    """The parsed extension, or None when absent or unreadable."""
    if oid not in extensions:
        return None
    try:
        value = _EXTENSION_SPECS[oid].load(extensions[oid])
        _ = value.native
        return value
    except (ValueError, TypeError):
        return None


_CRL_DISTRIBUTION_POINTS = "2.5.29.31"
_AUTHORITY_INFO_ACCESS = "1.3.6.1.5.5.7.1.1"
_OCSP = "1.3.6.1.5.5.7.48.1"


def _names_revocation_service(extensions: dict) -> bool:
    if _CRL_DISTRIBUTION_POINTS in extensions:
        return True
    if _AUTHORITY_INFO_ACCESS not in extensions:
        return False
    try:
        access = asn1_x509.AuthorityInfoAccessSyntax.load(extensions[_AUTHORITY_INFO_ACCESS])
        return any(entry["access_method"].dotted == _OCSP for entry in access)
    except (ValueError, TypeError):
        return True  # unreadable: assume it names one rather than skip a check


def load_certificates(data: bytes | str) -> tuple[Certificate, ...]:
    """Every certificate of a PEM bundle, or the one DER certificate."""
    if isinstance(data, str):
        data = data.encode()
    if pem.detect(data):
        try:
            return tuple(parse_certificate(der) for kind, _h, der in pem.unarmor(data, multiple=True)
                         if kind == "CERTIFICATE")
        except ValueError as exc:
            raise _invalid(str(exc), "PEM 格式错误") from None
    return (parse_certificate(data),)


def as_certificate(value) -> Certificate:
    return value if isinstance(value, Certificate) else parse_certificate(value)


def verify_issued_by(cert: Certificate, issuer: Certificate) -> None:
    """Raise InvalidSignature unless ``issuer``'s key signed ``cert`` (names must chain too)."""
    if cert.issuer_der != issuer.subject_der:
        raise InvalidSignature(f"certificate issuer '{cert.issuer}' is not '{issuer.subject}'",
                               f"证书颁发者“{cert.issuer}”不是“{issuer.subject}”")
    if cert.signature_unused_bits:
        # Seal structures tolerate this (seal/ses.py); for certificates OpenSSL and BouncyCastle
        # refuse it, and a certificate that common verifiers reject is not one to trust here.
        raise InvalidSignature(f"the certificate's signatureValue declares {cert.signature_unused_bits} unused bits",
                               f"证书签名值声明了 {cert.signature_unused_bits} 个未用位")
    key = (cert.der, issuer.der)
    if key in _SIGNATURES_CHECKED:
        return
    _check_issuer_signature(cert, issuer)
    with _SIGNATURES_LOCK:
        while _SIGNATURES_CHECKED and len(_SIGNATURES_CHECKED) >= _SIGNATURES_KEPT:
            _SIGNATURES_CHECKED.pop(next(iter(_SIGNATURES_CHECKED)))
        _SIGNATURES_CHECKED[key] = None


# Certificate signatures found good, by the two certificates' bytes: a verifier meets the same
# few chains again and again, and the answer for the same bytes never changes. Bounded.
_SIGNATURES_KEPT = 1024
_SIGNATURES_CHECKED: dict[tuple[bytes, bytes], None] = {}
_SIGNATURES_LOCK = threading.Lock()


def _check_issuer_signature(cert: Certificate, issuer: Certificate) -> None:
    if cert.signature_algorithm in SM2_SIGNATURE_OIDS:
        if not issuer.is_sm2:
            raise InvalidSignature("an SM2 signature from a non-SM2 issuer key", "签发者密钥不是 SM2，却使用了 SM2 签名")
        try:
            issuer.public_key().verify(cert.signature, cert.tbs)
        except InvalidInput:
            raise InvalidSignature("the certificate signature is malformed", "证书签名值格式错误") from None
        return
    try:
        crypto_x509.load_der_x509_certificate(cert.der).verify_directly_issued_by(
            crypto_x509.load_der_x509_certificate(issuer.der))
    except _CryptoInvalidSignature:
        raise InvalidSignature("the certificate signature does not verify", "证书签名验证不通过") from None
    except (_CryptoUnsupported, TypeError) as exc:
        raise UnsupportedAlgorithm(f"certificate signature algorithm {cert.signature_algorithm}: {exc}",
                                   f"不支持的证书签名算法 {cert.signature_algorithm}") from None
    except ValueError as exc:
        raise InvalidSignature(f"the certificate signature cannot be checked: {exc}", "无法验证证书签名") from None


def signing_usage_problem(cert: Certificate) -> Message | None:
    """Why ``cert`` may not sign documents (key usage), or None."""
    if cert.key_usage is not None and not cert.key_usage & SIGNING_USAGES:
        return Message("证书密钥用法不含数字签名或不可否认",
                       "the certificate's key usage has neither digitalSignature nor nonRepudiation")
    return None
