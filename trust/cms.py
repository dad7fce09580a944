"""CMS SignedData: PKCS#7 / RFC 5652 and its Chinese profile GB/T 35275 (GM/T 0010), and
RFC 3161 time-stamp tokens, which are SignedData over a TSTInfo.

GB/T 35275 uses its own OIDs (1.2.156.10197.6.1.4.2.x) for the same structures; SM2
signers write SM3 as digest algorithm and SM2-1 or SM2-with-SM3 as signature algorithm,
and some write the signature as raw r‖s. Without signed attributes, SM2 signs the
content itself (e = SM3(Z_A ‖ content)); with them, it signs DER(SET OF Attribute) as
received, re-tagged from [0] to SET as RFC 5652 §5.4 says.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, core, tsp
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes as crypto_hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from trust import oids
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.hashes import hash_algorithm
from trust.path import validate_path
from trust.report import CheckStatus, Code, Message
from trust.revocation import Fetcher
from trust.sm2 import SM2PublicKey, decode_signature, signature_from_raw
from trust.x509 import Certificate, parse_certificate

PKCS7_DATA = "1.2.840.113549.1.7.1"
PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"
GM_DATA = "1.2.156.10197.6.1.4.2.1"
GM_SIGNED_DATA = "1.2.156.10197.6.1.4.2.2"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
CONTENT_TYPE = "1.2.840.113549.1.9.3"
SIGNING_TIME = "1.2.840.113549.1.9.5"
SHA1 = "1.3.14.3.2.26"


class _ContentInfo(core.Sequence):
    # asn1crypto does not know the GB/T 35275 content types, so read the content as Any.
    _fields = [("content_type", core.ObjectIdentifier), ("content", core.Any, {"explicit": 0, "optional": True})]


def _invalid(en: str, zh: str) -> InvalidInput:
    return InvalidInput(f"not a readable CMS SignedData: {en}", f"无法读取的 CMS 签名数据：{zh}")


@dataclass(frozen=True)
class SignerInfo:
    digest_algorithm: str
    signature_algorithm: str
    signature: bytes
    signed_attrs: bytes | None        # DER SET OF Attribute as signed (tag 0x31), None when absent
    message_digest: bytes | None
    content_type: str | None
    signing_time: datetime | None
    issuer_der: bytes | None          # sid: issuerAndSerialNumber …
    serial_number: int | None
    subject_key_id: bytes | None      # … or subjectKeyIdentifier


@dataclass(frozen=True)
class SignedData:
    raw: bytes
    content_type: str                 # PKCS#7 or GB/T 35275 signedData OID
    econtent_type: str
    econtent: bytes | None            # attached content; None when detached
    certificates: tuple[Certificate, ...]
    signer_infos: tuple[SignerInfo, ...]
    warnings: tuple[Message, ...] = ()   # tolerated deviations


def _starts_with_version(der: bytes) -> bool:
    """SEQUENCE whose first element is an INTEGER: a bare SignedData, not a ContentInfo."""
    if len(der) < 4 or der[0] != 0x30:
        return False
    header = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    return der[header:header + 1] == b"\x02"


def parse_signed_data(der: bytes) -> SignedData:
    """ContentInfo{signedData} (PKCS#7 or GB/T 35275), or a bare SignedData. Raises InvalidInput."""
    if not isinstance(der, (bytes, bytearray, memoryview)):
        raise _invalid("input must be bytes", "输入必须是字节串")
    der = bytes(der)
    warnings = []
    try:
        if _starts_with_version(der):
            # ofdrw-crypto 1.x writes the SignedData without its ContentInfo wrapper
            content_type = GM_SIGNED_DATA
            signed = cms.SignedData.load(der, strict=True)
            warnings.append(Message("签名数据缺少 ContentInfo 外层结构", "the SignedData has no ContentInfo wrapper"))
        else:
            info = _ContentInfo.load(der, strict=True)
            content_type = info["content_type"].dotted
            if content_type not in (PKCS7_SIGNED_DATA, GM_SIGNED_DATA):
                raise _invalid(f"content type {content_type} is not signedData", f"内容类型 {content_type} 不是签名数据")
            if isinstance(info["content"], core.Void):
                raise _invalid("the SignedData is missing", "缺少签名数据内容")
            signed = cms.SignedData.load(info["content"].dump(), explicit=0)
        encap = signed["encap_content_info"]
        econtent = None
        if not isinstance(encap["content"], core.Void):
            econtent = core.OctetString.load(encap["content"].dump(), explicit=0).native
        certificates = tuple(parse_certificate(c.chosen.dump()) for c in (signed["certificates"] or [])
                             if c.name == "certificate")
        signers = tuple(_signer_info(si) for si in signed["signer_infos"])
        result = SignedData(raw=der, content_type=content_type, econtent_type=encap["content_type"].dotted,
                            econtent=econtent, certificates=certificates, signer_infos=signers,
                            warnings=tuple(warnings))
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise _invalid(str(exc)[:200], "结构不合法") from None
    if not signers:
        raise _invalid("no SignerInfo", "没有签名者信息")
    return result


def _oid(value: core.ObjectIdentifier) -> str:
    """The dotted OID, refusing an encoding whose last arc is cut short (asn1crypto drops it)."""
    if not value.contents or value.contents[-1] & 0x80:
        raise _invalid("a malformed OBJECT IDENTIFIER", "对象标识符编码错误")
    return value.dotted


def _signer_info(si) -> SignerInfo:
    attrs = si["signed_attrs"]
    signed_attrs = message_digest = content_type = signing_time = None
    if not isinstance(attrs, core.Void):
        raw = attrs.dump()
        signed_attrs = b"\x31" + raw[1:]  # [0] IMPLICIT → SET OF, over the received bytes
        for attr in attrs:
            oid, values = attr["type"].dotted, attr["values"]
            if oid == MESSAGE_DIGEST:
                message_digest = core.OctetString.load(values[0].dump()).native
            elif oid == CONTENT_TYPE:
                content_type = core.ObjectIdentifier.load(values[0].dump()).dotted
            elif oid == SIGNING_TIME:
                signing_time = cms.Time.load(values[0].dump()).native
    sid = si["sid"]
    issuer_der = serial = ski = None
    if sid.name == "issuer_and_serial_number":
        issuer_der, serial = sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native
    else:
        ski = sid.chosen.native
    return SignerInfo(digest_algorithm=_oid(si["digest_algorithm"]["algorithm"]),
                      signature_algorithm=_oid(si["signature_algorithm"]["algorithm"]),
                      signature=si["signature"].native, signed_attrs=signed_attrs,
                      message_digest=message_digest, content_type=content_type, signing_time=signing_time,
                      issuer_der=issuer_der, serial_number=serial, subject_key_id=ski)


def signer_certificate(signed: SignedData, signer: SignerInfo,
                       extra: tuple[Certificate, ...] = ()) -> Certificate | None:
    for cert in signed.certificates + extra:
        if signer.issuer_der is not None:
            if cert.issuer_der == signer.issuer_der and cert.serial_number == signer.serial_number:
                return cert
        elif cert.subject_key_id == signer.subject_key_id:
            return cert
    return None


def digest(algorithm_oid: str, data: bytes) -> bytes:
    if algorithm_oid == SHA1:
        return hashlib.sha1(data).digest()
    return hash_algorithm(algorithm_oid).digest(data)


@dataclass(frozen=True)
class SignerResult:
    signer: Certificate | None
    digest_matches: bool | None       # messageDigest vs digest(content); None without signed attributes
    signature_valid: bool
    reason: Message
    warnings: tuple[Message, ...] = ()


def verify_signer(signed: SignedData, *, content: bytes | None = None, signer: SignerInfo | None = None,
                  certificates: tuple[Certificate, ...] = ()) -> SignerResult:
    """Check one SignerInfo (the first by default) over the attached content, or over
    ``content`` when the SignedData is detached."""
    signer = signer or signed.signer_infos[0]
    cert = signer_certificate(signed, signer, certificates)
    data = signed.econtent if signed.econtent is not None else content
    if cert is None:
        return SignerResult(None, None, False, Message("签名数据中没有签名者证书", "the signer's certificate is not in the SignedData"))
    if data is None:
        return SignerResult(cert, None, False, Message("分离式签名未提供原文", "detached signature: the content was not supplied"))
    warnings = []
    digest_matches = None
    message = data
    if signer.signed_attrs is not None:
        if signer.message_digest is None:
            return SignerResult(cert, False, False, Message("签名属性中缺少 messageDigest", "the signed attributes have no messageDigest"))
        try:
            digest_matches = digest(signer.digest_algorithm, data) == signer.message_digest
        except UnsupportedAlgorithm as exc:
            return SignerResult(cert, None, False, Message(exc.zh, exc.en))
        message = signer.signed_attrs
    try:
        warning = verify_with_certificate(cert, signer.digest_algorithm, signer.signature_algorithm,
                                          message, signer.signature)
    except (InvalidSignature, InvalidInput) as exc:
        return SignerResult(cert, digest_matches, False, Message(exc.zh, exc.en))
    if warning:
        warnings.append(warning)
    if digest_matches is False:
        return SignerResult(cert, False, True, Message("签名有效，但原文杂凑与 messageDigest 不符",
                                                       "the signature verifies but the content digest differs from messageDigest"),
                            tuple(warnings))
    return SignerResult(cert, digest_matches, True, Message("签名验证通过", "the signature verifies"), tuple(warnings))


# What producers write as the SignerInfo's signature algorithm for an SM2 key: SM2-1, SM2-with-SM3,
# and (seen in the field) the curve or the generic EC key OID.
SM2_SIGNATURE_OIDS = frozenset({oids.SM2_SIGN, oids.SM2_WITH_SM3, oids.SM2_CURVE, oids.EC_PUBLIC_KEY})

_HASHES: dict[str, Callable[[], crypto_hashes.HashAlgorithm]] = {
    oids.SHA256: crypto_hashes.SHA256, oids.SHA384: crypto_hashes.SHA384, oids.SHA512: crypto_hashes.SHA512,
    SHA1: crypto_hashes.SHA1}


def verify_with_certificate(cert: Certificate, digest_oid: str, signature_oid: str, message: bytes,
                            signature: bytes) -> Message | None:
    """Verify ``signature`` over ``message`` with the certificate's key. Raises InvalidSignature;
    returns a warning when the signature's encoding deviates (raw r‖s)."""
    key = cert.public_key()
    if isinstance(key, SM2PublicKey):
        if signature_oid not in SM2_SIGNATURE_OIDS:
            raise UnsupportedAlgorithm(f"signature algorithm {signature_oid} is not SM2",
                                       f"签名算法 {signature_oid} 不是 SM2")
        warning = None
        try:
            decode_signature(signature)
        except InvalidInput:
            if len(signature) != 64:
                raise InvalidSignature("the SM2 signature is neither DER nor 64-byte r‖s",
                                       "SM2 签名值既不是 DER 也不是 64 字节 r‖s") from None
            signature = signature_from_raw(signature)
            warning = Message("签名值为 64 字节裸格式 r‖s", "the signature is raw 64-byte r‖s")
        key.verify(signature, message)
        return warning
    hash_cls = _HASHES.get(digest_oid)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        elif hash_cls is None:
            raise UnsupportedAlgorithm(f"unsupported digest algorithm {digest_oid}", f"不支持的杂凑算法 {digest_oid}")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hash_cls()))
        elif isinstance(key, rsa.RSAPublicKey):
            pad = (padding.PSS(padding.MGF1(hash_cls()), padding.PSS.AUTO) if signature_oid == oids.RSA_PSS
                   else padding.PKCS1v15())
            key.verify(signature, message, pad, hash_cls())
        else:
            raise UnsupportedAlgorithm("unsupported signer key", "不支持的签名者密钥")
    except _CryptoInvalidSignature:
        raise InvalidSignature("the signature does not verify", "签名验证不通过") from None
    return None


# ---------------------------------------------------------------- RFC 3161 time-stamp tokens

@dataclass(frozen=True)
class TimeStampResult:
    status: CheckStatus
    reason: Message
    gen_time: datetime | None = None
    code: Code | None = None     # why it did not pass, when the TSA's certificate says so


def verify_time_stamp(token: bytes, data: bytes, *, trusted_roots=(), fetch: bool | Fetcher = False) -> TimeStampResult:
    """An RFC 3161 TimeStampToken over ``data`` (its messageImprint = H(data)): FAILED when
    the imprint or the TSA signature is wrong, or the TSA's certificate was not good at
    genTime (expired, revoked: trust.path, as for a signer, revocation fetched when
    ``fetch``); INDETERMINATE when it does not chain to ``trusted_roots`` or its revocation
    status cannot be had; PASSED otherwise, with the token's genTime."""
    try:
        signed = parse_signed_data(token)
        if signed.econtent_type != TST_INFO or signed.econtent is None:
            raise _invalid("not a time-stamp token (no TSTInfo)", "不是时间戳令牌（缺少 TSTInfo）")
        info = tsp.TSTInfo.load(signed.econtent, strict=True)
        imprint = info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].dotted
        hashed = imprint["hashed_message"].native
        gen_time = info["gen_time"].native
    except (InvalidInput, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        en = getattr(exc, "en", str(exc)[:200])
        return TimeStampResult(CheckStatus.FAILED, Message(f"时间戳令牌无法读取：{getattr(exc, 'zh', en)}",
                                                           f"the time-stamp token cannot be read: {en}"))
    try:
        if digest(algorithm, data) != hashed:
            return TimeStampResult(CheckStatus.FAILED, Message("时间戳的消息印记与签名值不符",
                                                               "the time stamp's message imprint does not match the signature value"))
    except UnsupportedAlgorithm as exc:
        return TimeStampResult(CheckStatus.INDETERMINATE, Message(exc.zh, exc.en))
    result = verify_signer(signed)
    if not (result.signature_valid and result.digest_matches is not False):
        return TimeStampResult(CheckStatus.FAILED, Message(f"时间戳签名无效：{result.reason.zh}",
                                                           f"the time-stamp signature is invalid: {result.reason.en}"))
    path = validate_path(result.signer, roots=list(trusted_roots), intermediates=signed.certificates, at=gen_time,
                         fetch=fetch)
    when = gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    failed = next((c for c in path.checks if c.status is CheckStatus.FAILED), None)
    if failed is not None:
        return TimeStampResult(CheckStatus.FAILED, Message(f"时间戳服务证书无效：{failed.reason.zh}",
                                                           f"the TSA certificate is invalid: {failed.reason.en}"),
                               gen_time, failed.code)
    unsure = next((c for c in path.checks if c.status is CheckStatus.INDETERMINATE), None)
    if unsure is not None:
        return TimeStampResult(CheckStatus.INDETERMINATE, Message(
            f"时间戳签名有效（{when}），但时间戳服务证书无法确认：{unsure.reason.zh}",
            f"the time stamp ({when}) verifies but its TSA certificate cannot be confirmed: {unsure.reason.en}"),
            gen_time, unsure.code)
    return TimeStampResult(CheckStatus.PASSED, Message(f"时间戳有效，时间 {when}", f"valid time stamp at {when}"), gen_time)
