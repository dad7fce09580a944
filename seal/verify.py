"""Verification of electronic seals and seal signatures (GB/T 38540 v4/v5, GM/T 0031 v1),
and of the other signed values OFD carries (GB/T 35275 SignedData, bare SM2 signatures).

Each step of eseal-gbt38540.md §6 becomes one check of the report vocabulary
(ARCHITECTURE.md): format, integrity, signature, seal, seal_binding, seal_validity,
certificate, chain, revocation, timestamp. Every signature is verified over the exact
bytes received. Nothing here knows OFD beyond "the signed data is Signature.xml".
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from seal.ses import Seal, SealFormatError, SesSignature, parse_seal, parse_signature, signature_value
from seal.status import SealStatus
from trust import oids
from trust.clock import iso_z, utc_now
from trust.cms import (
    SignedData,
    SignerResult,
    parse_signed_data,
    verify_signer,
    verify_time_stamp,
    verify_with_certificate,
)
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.hashes import hash_algorithm, sm3
from trust.path import validate_path
from trust.report import Check, CheckName as C, CheckStatus as S, Code, Message, Report, SignatureReport, check
from trust.sm2 import decode_signature
from trust.x509 import Certificate, parse_certificate

SM2_SIGNATURE_OIDS = {oids.SM2_WITH_SM3, oids.SM2_SIGN}
SIGNATURE_XML = Message(zh="Signature.xml", en="Signature.xml")
DATA = Message(zh="原文", en="the data")
NO_ROOT = Message("未配置电子印章的可信根证书，无法确认证书链", "no trusted root for seals: the chain cannot be confirmed")


@dataclass(frozen=True)
class RegistryStatus:
    """A seal's status in our registry (seal.registry.status_lookup gives them), for the
    ``seal_validity`` check; this module itself reads no database."""

    status: SealStatus
    since: datetime      # when the seal took this status


# (esID, the exact seal bytes) -> the status if the registry holds that very seal, else None
SealStatusLookup = Callable[[str, bytes], RegistryStatus | None]



# ---------------------------------------------------------------- seals

def verify_seal(seal_der: bytes, *, trusted_roots=(), at: datetime | None = None,
                seal_status: SealStatusLookup | None = None) -> Report:
    """Verify a Seal.esl on its own: structure, the maker's signature, the validity period at
    ``at`` (default now) and, with ``seal_status``, its status in our registry, the maker's
    certificate and chain. Report format "seal"."""
    try:
        seal = parse_seal(seal_der)
    except SealFormatError as exc:
        return Report("seal", (SignatureReport("s001", "Seal", (check(C.FORMAT, S.FAILED, zh=exc.zh, en=exc.en),)),))
    when = at or utc_now()
    checks = [_format_check(seal.warnings, _layout_name(seal.layout, seal.version), seal.errors),
              *_seal_checks(seal), _seal_validity(seal, when),
              *_registry_status(seal, when, seal_status, trusted_time=True)]
    maker = _certificate(seal.cert)
    checks += _maker_checks(seal, maker, trusted_roots)
    return Report("seal", (SignatureReport("s001", "Seal", tuple(checks), signer=maker.subject if maker else None,
                                           seal=seal.summary()),), warnings=seal.warnings)


def _maker_checks(seal: Seal, maker: Certificate | None, trusted_roots) -> list[Check]:
    """§6.7: the maker's certificate was valid when the seal was made, and chains."""
    if maker is None:
        return [check(C.CERTIFICATE, S.FAILED, zh="制章者证书无法解析", en="the seal maker's certificate cannot be read",
                      code=Code.FORMAT_FAILURE)]
    return _certificate_checks(maker, seal.seal_info.create_date, trusted_roots, "制章者", "seal maker")


def _layout_name(layout: int, version: int) -> str:
    return "GM/T 0031 (v1)" if layout == 1 else f"GB/T 38540 (v{version})"


def _format_check(warnings, what: str, errors=()) -> Check:
    if errors:
        return check(C.FORMAT, S.FAILED, zh=f"结构（{what}）编码错误：" + "；".join(e.zh for e in errors),
                     en=f"the structure ({what}) is wrongly encoded: " + "; ".join(e.en for e in errors))
    if not warnings:
        return check(C.FORMAT, S.PASSED, zh=f"结构符合 {what}", en=f"the structure is {what}")
    return check(C.FORMAT, S.PASSED, zh=f"结构可解析（{what}），存在不规范之处：" + "；".join(w.zh for w in warnings),
                 en=f"the structure parses ({what}) with deviations: " + "; ".join(w.en for w in warnings))


def _certificate(der: bytes) -> Certificate | None:
    try:
        return parse_certificate(der)
    except InvalidInput:
        return None


def _seal_checks(seal: Seal) -> list[Check]:
    """The ``seal`` check: dates in order and the maker's signature over the seal info."""
    info = seal.seal_info
    if not info.create_date <= info.valid_end or not info.valid_start < info.valid_end:
        return [check(C.SEAL, S.FAILED, zh="印章日期顺序错误（制作日期、有效期起止）",
                      en="the seal's dates are out of order (createDate, validStart, validEnd)")]
    if info.picture_width <= 0 or info.picture_height <= 0:
        return [check(C.SEAL, S.FAILED, zh="印章图像尺寸不是正数", en="the seal picture's size is not positive")]
    if seal.sign_alg_id not in SM2_SIGNATURE_OIDS:
        # §6.3: anything but SM2-with-SM3 is rejected (no RSA policy here)
        return [check(C.SEAL, S.FAILED, zh=f"制章签名算法 {seal.sign_alg_id} 不是 SM2-with-SM3",
                      en=f"the seal signature algorithm {seal.sign_alg_id} is not SM2-with-SM3")]
    maker = _certificate(seal.cert)
    if maker is None or not maker.is_sm2:
        return [check(C.SEAL, S.FAILED, zh="制章者证书无法解析或不是 SM2 证书",
                      en="the seal maker's certificate cannot be read or is not SM2")]
    try:
        signature, encoding_note = signature_value(seal.signed_value)
    except InvalidInput as exc:
        return [check(C.SEAL, S.FAILED, zh=f"制章者签名值无法解析：{exc.zh}", en=f"the maker signature cannot be read: {exc.en}")]
    key = maker.public_key()
    for message, note in seal.maker_signed_messages():
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        notes = [n for n in (encoding_note, note) if n]
        zh = f"制章者签名有效（{maker.subject}）" + "".join(f"；{n.zh}" for n in notes)
        en = f"the seal maker's signature verifies ({maker.subject})" + "".join(f"; {n.en}" for n in notes)
        return [check(C.SEAL, S.PASSED, zh=zh, en=en)]
    return [check(C.SEAL, S.FAILED, zh="制章者签名验证不通过，印章可能被篡改",
                  en="the seal maker's signature does not verify: the seal may have been altered")]


def _seal_validity(seal: Seal, when: datetime) -> Check:
    info = seal.seal_info
    period = f"{iso_z(info.valid_start)} – {iso_z(info.valid_end)}"
    if info.valid_start <= when <= info.valid_end:
        return check(C.SEAL_VALIDITY, S.PASSED, zh=f"{iso_z(when)} 在印章有效期内（{period}）",
                     en=f"{iso_z(when)} is within the seal's validity period ({period})")
    return check(C.SEAL_VALIDITY, S.FAILED, zh=f"{iso_z(when)} 不在印章有效期内（{period}）",
                 en=f"{iso_z(when)} is outside the seal's validity period ({period})",
                 code=Code.NOT_YET_VALID if when < info.valid_start else Code.EXPIRED)


def _registry_status(seal: Seal, when: datetime, lookup: SealStatusLookup | None, *,
                     trusted_time: bool) -> list[Check]:
    """A second ``seal_validity`` check when the seal is one of our registry's: it must have
    been active at ``when``. A status taken after ``when`` leaves the signature valid only if
    ``when`` is a trusted time (given, or from a time stamp), not the signer's own claim."""
    found = lookup(seal.seal_info.es_id, seal.raw) if lookup is not None else None
    if found is None:
        return []
    name, since = found.status, iso_z(found.since)
    zh_name = name.zh
    if name == "active":
        return [check(C.SEAL_VALIDITY, S.PASSED, zh="印章在本系统登记为启用状态", en="the seal is active in our registry")]
    if name in ("applied", "approved", "made"):
        return [check(C.SEAL_VALIDITY, S.FAILED, zh=f"印章在本系统登记为“{zh_name}”，从未启用",
                      en=f"the seal is {name} in our registry and has never been in use", code=Code.SEAL_REVOKED)]
    code = {SealStatus.SUSPENDED: Code.SEAL_SUSPENDED, SealStatus.EXPIRED: Code.EXPIRED}.get(name, Code.SEAL_REVOKED)
    if when >= found.since:
        return [check(C.SEAL_VALIDITY, S.FAILED, zh=f"印章自 {since} 起在本系统登记为“{zh_name}”",
                      en=f"the seal has been {name} in our registry since {since}", code=code)]
    if trusted_time:
        return [check(C.SEAL_VALIDITY, S.PASSED, zh=f"签章时间早于印章变为“{zh_name}”的时间（{since}）",
                      en=f"the signing time precedes the seal becoming {name} in our registry ({since})")]
    return [check(C.SEAL_VALIDITY, S.INDETERMINATE,
                  zh=f"印章自 {since} 起登记为“{zh_name}”，签章时间为签章者自称且无可信时间戳，无法确认",
                  en=f"the seal has been {name} since {since}; the earlier signing time is the signer's own claim, "
                  "with no trusted time stamp", code=Code.NO_POE)]


def _certificate_checks(cert: Certificate, when: datetime, trusted_roots, whose_zh: str, whose_en: str,
                        intermediates=()) -> list[Check]:
    """certificate (validity at ``when``, signing key usage), chain to a trusted root and
    revocation of every certificate below it (trust.path: CRL or OCSP, fetched only from
    the hosts in TRUST_REVOCATION_HOSTS within the time limit)."""
    result = validate_path(cert, roots=trusted_roots, intermediates=intermediates, at=when, fetch=True)
    checks = []
    for found in result.checks:
        reason = NO_ROOT if found.check == C.CHAIN and not trusted_roots else found.reason
        checks.append(check(found.check, found.status, zh=f"{whose_zh}：{reason.zh}", en=f"{whose_en}: {reason.en}",
                            code=found.code))
    return checks


# ---------------------------------------------------------------- seal signatures

def verify_ses_signature(signature_der: bytes, *, data: bytes | None = None, data_hash: bytes | None = None,
                         trusted_roots=(), at: datetime | None = None, signature_id: str = "s001",
                         signature_type: str = "SES", seal_status: SealStatusLookup | None = None) -> SignatureReport:
    """Verify a SES_Signature against the signed ``data`` (or its SM3 ``data_hash``).
    Certificates and the seal period are judged at ``at`` if given, else at the time stamp's
    time if a valid one is present, else at the signature's timeInfo. ``seal_status``
    (seal.registry.status_lookup(session)) adds the seal's status in our registry when it is ours."""
    try:
        ses = parse_signature(signature_der)
    except SealFormatError as exc:
        return SignatureReport(signature_id, signature_type, (check(C.FORMAT, S.FAILED, zh=exc.zh, en=exc.en),))
    return _ses_report(ses, data=data, data_hash=data_hash, trusted_roots=trusted_roots, at=at,
                       signature_id=signature_id, signature_type=signature_type, seal_status=seal_status)


def _ses_report(ses: SesSignature, *, data, data_hash, trusted_roots, at, signature_id, signature_type,
                extra: tuple[Check, ...] = (), seal_status: SealStatusLookup | None = None) -> SignatureReport:
    signer = _certificate(ses.cert)
    timestamp, stamped_at = _timestamp_check(ses, trusted_roots)
    when = at or stamped_at or ses.time_info or utc_now()
    checks = [_format_check(ses.warnings, _layout_name(ses.layout, ses.version), ses.errors),
              _integrity(ses.data_hash, data, data_hash),
              _signer_signature(ses, signer),
              *_seal_checks(ses.seal),
              _seal_binding(ses.seal, ses.cert),
              *extra,
              _seal_validity(ses.seal, when),
              *_registry_status(ses.seal, when, seal_status, trusted_time=bool(at or stamped_at))]
    if signer is None:
        checks.append(check(C.CERTIFICATE, S.FAILED, zh="签章者证书无法解析", en="the signer's certificate cannot be read",
                            code=Code.FORMAT_FAILURE))
    else:
        checks += _certificate_checks(signer, when, trusted_roots, "签章者", "signer")
    checks += [*_maker_checks(ses.seal, _certificate(ses.seal.cert), trusted_roots), timestamp]
    return SignatureReport(signature_id, signature_type, tuple(checks),
                           signer=signer.subject if signer else None, seal=ses.seal.summary(),
                           signing_time=iso_z(ses.time_info) if ses.time_info else None)


def _integrity(signed_hash: bytes, data: bytes | None, data_hash: bytes | None) -> Check:
    if data is not None:
        actual, source = sm3(data), ("原文", "the data")
    elif data_hash is not None:
        actual, source = bytes(data_hash), ("给定的杂凑值", "the given digest")
    else:
        # Without the data the signature proves nothing about any document: not VALID.
        return check(C.INTEGRITY, S.INDETERMINATE, zh="未提供原文或其杂凑值，无法核对原文杂凑",
                     en="neither the data nor its digest was supplied, so the data hash was not checked")
    if hmac.compare_digest(actual, signed_hash):
        return check(C.INTEGRITY, S.PASSED, zh=f"{source[0]}的 SM3 杂凑与签章中的原文杂凑一致",
                     en=f"the SM3 digest of {source[1]} matches the signed data hash")
    return check(C.INTEGRITY, S.FAILED, zh=f"{source[0]}的 SM3 杂凑与签章中的原文杂凑不一致，原文可能被篡改",
                 en=f"the SM3 digest of {source[1]} differs from the signed data hash: the data may have been altered")


def _signer_signature(ses: SesSignature, signer: Certificate | None) -> Check:
    if ses.signature_alg_id not in SM2_SIGNATURE_OIDS:
        return check(C.SIGNATURE, S.FAILED, zh=f"签名算法 {ses.signature_alg_id} 不是 SM2-with-SM3",
                     en=f"the signature algorithm {ses.signature_alg_id} is not SM2-with-SM3")
    if signer is None or not signer.is_sm2:
        return check(C.SIGNATURE, S.FAILED, zh="签章者证书无法解析或不是 SM2 证书",
                     en="the signer's certificate cannot be read or is not SM2")
    try:
        signature, note = signature_value(ses.signature)
        signer.public_key().verify(signature, ses.tbs_raw)
    except (InvalidInput, InvalidSignature) as exc:
        return check(C.SIGNATURE, S.FAILED, zh=f"签章者签名验证不通过：{exc.zh}", en=f"the signer's signature does not verify: {exc.en}")
    suffix = (f"；{note.zh}", f"; {note.en}") if note else ("", "")
    return check(C.SIGNATURE, S.PASSED, zh=f"签章者签名有效（{signer.subject}）{suffix[0]}",
                 en=f"the signer's SM2 signature over TBS_Sign verifies ({signer.subject}){suffix[1]}")


def _digest(name: str, data: bytes) -> bytes | None:
    """CertDigestObj.type names the algorithm (e.g. "SM3", "SHA-1"); None when unknown."""
    name = name.strip()
    if name.lower().replace("-", "") == "sha1":
        return hashlib.sha1(data).digest()
    try:
        return hash_algorithm(name).digest(data)
    except UnsupportedAlgorithm:
        return None


def _seal_binding(seal: Seal, signer_der: bytes) -> Check:
    """§6.5: the signer's certificate is one the seal lists (certListType 1) or whose digest it lists (2)."""
    info = seal.seal_info
    if any(hmac.compare_digest(c, signer_der) for c in info.cert_list):
        return check(C.SEAL_BINDING, S.PASSED, zh="签章者证书在印章的证书列表中",
                     en="the signer's certificate is in the seal's certificate list")
    digests = [(d, _digest(d.type, signer_der)) for d in info.cert_digest_list]
    for listed, actual in digests:
        if actual is not None and hmac.compare_digest(actual, listed.value):
            return check(C.SEAL_BINDING, S.PASSED, zh=f"签章者证书的 {listed.type} 杂凑在印章的证书杂凑列表中",
                         en=f"the {listed.type} digest of the signer's certificate is in the seal's list")
    if digests and all(actual is None for _, actual in digests) and not info.cert_list:
        return check(C.SEAL_BINDING, S.INDETERMINATE, zh="印章的证书杂凑算法未知，无法核对签章者",
                     en="the seal's certificate digest algorithm is unknown; the signer could not be matched")
    return check(C.SEAL_BINDING, S.FAILED, zh="签章者证书不在印章授权的证书列表中",
                 en="the signer's certificate is not among those the seal authorises")


def _timestamp_check(ses: SesSignature, trusted_roots) -> tuple[Check, datetime | None]:
    if ses.time_stamp is None:
        return check(C.TIMESTAMP, S.NOT_APPLICABLE, zh="签章不含时间戳", en="the signature carries no time stamp"), None
    # §5: the token's messageImprint is over the signature value, the BIT STRING contents as found
    result = verify_time_stamp(ses.time_stamp, ses.signature, trusted_roots=trusted_roots, fetch=True)
    # only a time stamp from a trusted TSA moves the time at which certificates are judged
    trusted_time = result.gen_time if result.status is S.PASSED else None
    return check(C.TIMESTAMP, result.status, zh=result.reason.zh, en=result.reason.en, code=result.code), trusted_time


# ---------------------------------------------------------------- what OFD carries

def verify_signed_value_for_ofd(signed_value: bytes, signature_xml_bytes: bytes, *, seal_esl: bytes | None = None,
                                sign_type: str = "Seal", trusted_roots=(), signature_id: str = "s001",
                                certificates=(), signing_time: datetime | None = None,
                                seal_status: SealStatusLookup | None = None) -> SignatureReport:
    """Verify an OFD SignedValue over its Signature.xml bytes (ofd-signature.md §4):
    a SES_Signature (dataHash = SM3(Signature.xml); Seal.esl must equal the embedded seal),
    a GB/T 35275 / PKCS#7 SignedData (content SM3(Signature.xml) attached, or Signature.xml
    detached; with or without signed attributes), or a bare SM2 signature over the raw
    Signature.xml bytes (legacy ofdrw), which needs the signer's certificate in
    ``certificates``. The container is recognised by structure, whatever ``sign_type`` says.
    ``signing_time`` (e.g. Signature.xml's SignatureDateTime) is used when the value has none.
    ``seal_status`` looks the seal up in our registry (see verify_ses_signature)."""
    kind = _container(signed_value)
    if kind == "ses":
        try:
            ses = parse_signature(signed_value)
        except SealFormatError as exc:
            return SignatureReport(signature_id, sign_type, (check(C.FORMAT, S.FAILED, zh=exc.zh, en=exc.en),))
        extra: tuple[Check, ...] = ()
        if seal_esl is not None:
            extra = (_esl_matches(seal_esl, ses.seal.raw),)
        return _ses_report(ses, data=signature_xml_bytes, data_hash=None, trusted_roots=trusted_roots, at=None,
                           signature_id=signature_id, signature_type=sign_type, extra=extra, seal_status=seal_status)
    if kind == "cms":
        try:
            signed = parse_signed_data(signed_value)
        except InvalidInput as exc:
            return SignatureReport(signature_id, sign_type, (check(C.FORMAT, S.FAILED, zh=exc.zh, en=exc.en),))
        return _cms_report(signed, signature_xml_bytes, seal_esl=seal_esl, sign_type=sign_type,
                           trusted_roots=trusted_roots, signature_id=signature_id, signing_time=signing_time,
                           certificates=certificates)
    if kind == "bare":
        return _bare_report(signed_value, signature_xml_bytes, sign_type=sign_type, trusted_roots=trusted_roots,
                            signature_id=signature_id, certificates=certificates, signing_time=signing_time)
    return SignatureReport(signature_id, sign_type, (check(
        C.FORMAT, S.FAILED, zh="签名值既不是电子签章数据、CMS 签名数据，也不是 SM2 签名值",
        en="the signed value is neither a SES_Signature, a CMS SignedData nor an SM2 signature"),))


def verify_signed_value(value: bytes, *, data: bytes | None, certificates=(), trusted_roots=()) -> Report:
    """A GB/T 35275 / PKCS#7 SignedData (format "cms") or a bare SM2 signature (format "sm2") on
    its own, over ``data`` (None: not supplied), with the checks it gets inside an OFD as a
    Type="Sign" signature. ``certificates``: candidate signer certificates, which a bare value
    needs. Raises InvalidInput when the value is neither."""
    kind = _container(value)
    if kind == "cms":
        signed = parse_signed_data(value)
        return Report("cms", (_cms_report(signed, data, seal_esl=None, sign_type="Sign", trusted_roots=trusted_roots,
                                          signature_id="s001", signing_time=None, certificates=certificates,
                                          named=DATA),))
    if kind == "bare":
        return Report("sm2", (_bare_report(value, data, sign_type="Sign", trusted_roots=trusted_roots,
                                           signature_id="s001", certificates=certificates, signing_time=None,
                                           named=DATA),))
    raise InvalidInput("neither a GB/T 35275 / PKCS#7 SignedData nor an SM2 signature",
                       "既不是 GB/T 35275 / PKCS#7 签名数据，也不是 SM2 签名值")


def _container(value: bytes) -> str:
    """Tell the container apart by its first elements: SM2Signature is SEQUENCE{INTEGER, INTEGER},
    a raw r‖s is 64 bytes, SignedData starts with an OID or a version, else SES_Signature."""
    if len(value) == 64 and value[:1] != b"\x30":
        return "bare"
    try:
        decode_signature(value, strict=False)
        return "bare"
    except InvalidInput:
        pass
    if len(value) == 64:
        return "bare"
    if value[:1] != b"\x30" or len(value) < 2:
        return "unknown"
    header = 2 + (value[1] & 0x7F if value[1] & 0x80 else 0)
    # ContentInfo starts with its OID; a bare SignedData (ofdrw-crypto 1.x) with its version
    return "cms" if value[header:header + 1] in (b"\x06", b"\x02") else "ses"


def _esl_matches(seal_esl: bytes, embedded: bytes) -> Check:
    if hmac.compare_digest(bytes(seal_esl), embedded):
        return check(C.SEAL_BINDING, S.PASSED, zh="Seal.esl 与签章中内嵌的印章逐字节一致",
                     en="Seal.esl is byte-identical to the seal embedded in the signature")
    return check(C.SEAL_BINDING, S.FAILED, zh="Seal.esl 与签章中内嵌的印章不一致",
                 en="Seal.esl differs from the seal embedded in the signature")


def _cms_report(signed: SignedData, data: bytes | None, *, seal_esl, sign_type, trusted_roots, signature_id,
                signing_time, certificates=(), named: Message = SIGNATURE_XML) -> SignatureReport:
    """``data``: what the SignedData signs (``named``: Signature.xml inside an OFD); None when
    it was not supplied. ``certificates``: candidate signer certificates, for a SignedData that
    carries none."""
    candidates = tuple(c for c in (_as_certificate(c) for c in certificates) if c is not None)
    checks = [_format_check(signed.warnings, "GB/T 35275 / PKCS#7 SignedData")]
    result, integrity = _cms_integrity(signed, data, named, candidates)
    checks.append(integrity)
    warn = "".join(f"；{w.zh}" for w in result.warnings), "".join(f"; {w.en}" for w in result.warnings)
    if result.signature_valid and result.signer is not None:
        checks.append(check(C.SIGNATURE, S.PASSED, zh=f"签名有效（{result.signer.subject}）{warn[0]}",
                            en=f"the signature verifies ({result.signer.subject}){warn[1]}"))
    elif result.signer is None:
        checks.append(check(C.SIGNATURE, S.INDETERMINATE, zh="签名数据中没有签名者证书，也未提供（--signer-cert）",
                            en="the signer's certificate is neither in the SignedData nor supplied (--signer-cert)"))
    elif data is None and signed.econtent is None:
        checks.append(check(C.SIGNATURE, S.INDETERMINATE, zh=f"分离式签名，未提供{named.zh}，无法验证",
                            en=f"a detached signature: {named.en} was not supplied, so it could not be verified"))
    else:
        checks.append(check(C.SIGNATURE, S.FAILED, zh=f"签名验证不通过：{result.reason.zh}",
                            en=f"the signature does not verify: {result.reason.en}"))
    signer_info = signed.signer_infos[0]
    when = signer_info.signing_time or signing_time or utc_now()
    checks += _seal_for_plain_signature(seal_esl, result.signer, sign_type, when, trusted_roots)
    if result.signer is not None:
        checks += _certificate_checks(result.signer, when, trusted_roots, "签名者", "signer",
                                      intermediates=signed.certificates)
    checks.append(check(C.TIMESTAMP, S.NOT_APPLICABLE, zh="签名不含时间戳", en="the signature carries no time stamp"))
    return SignatureReport(signature_id, sign_type, tuple(checks),
                           signer=result.signer.subject if result.signer else None,
                           signing_time=iso_z(signer_info.signing_time) if signer_info.signing_time else None)


def _cms_integrity(signed: SignedData, data: bytes | None, named: Message, certificates) -> tuple[SignerResult, Check]:
    if signed.econtent is not None:
        # attached: the content is SM3(Signature.xml) (GM/T 0099 §7.2.2), or the data itself
        result = verify_signer(signed, certificates=certificates)
        if result.digest_matches is False:
            return result, check(C.INTEGRITY, S.FAILED, zh="签名属性中的 messageDigest 与原文不符",
                                 en="the messageDigest attribute does not match the content")
        if data is None:
            return result, check(C.INTEGRITY, S.PASSED, zh=f"签名的原文随签名数据附带（{len(signed.econtent)} 字节）",
                                 en=f"the signed content is attached ({len(signed.econtent)} bytes)")
        if hmac.compare_digest(signed.econtent, sm3(data)) or signed.econtent == data:
            return result, check(C.INTEGRITY, S.PASSED, zh=f"签名数据所含内容与{named.zh}一致",
                                 en=f"the signed content matches {named.en}")
        return result, check(C.INTEGRITY, S.FAILED, zh=f"签名数据所含内容既不是{named.zh}，也不是其 SM3 杂凑",
                             en=f"the signed content is neither {named.en} nor its SM3 digest")
    if data is None:
        result = verify_signer(signed, certificates=certificates)
        return result, check(C.INTEGRITY, S.INDETERMINATE, zh=f"分离式签名，未提供{named.zh}",
                             en=f"a detached signature and {named.en} was not supplied")
    result = verify_signer(signed, content=data, certificates=certificates)
    if result.digest_matches is False:  # some producers sign SM3(Signature.xml) detached
        alternative = verify_signer(signed, content=sm3(data), certificates=certificates)
        if alternative.digest_matches:
            result = alternative
    if result.digest_matches:
        return result, check(C.INTEGRITY, S.PASSED, zh=f"messageDigest 与{named.zh}一致",
                             en=f"the messageDigest attribute matches {named.en}")
    if result.digest_matches is False:
        return result, check(C.INTEGRITY, S.FAILED, zh=f"messageDigest 与{named.zh}不一致，可能被篡改",
                             en=f"the messageDigest attribute does not match {named.en}: it may have been altered")
    return result, check(C.INTEGRITY, S.PASSED if result.signature_valid else S.INDETERMINATE,
                         zh=f"签名直接覆盖{named.zh}", en=f"the signature covers {named.en} directly")


def _seal_for_plain_signature(seal_esl, signer: Certificate | None, sign_type: str, when: datetime,
                              trusted_roots=()) -> list[Check]:
    """A SignedData or bare signature has no seal inside; a Seal.esl beside it is checked on its own
    and must list the signer."""
    if seal_esl is None:
        if sign_type == "Sign":
            return [check(C.SEAL, S.NOT_APPLICABLE, zh="数字签名不含印章", en="a digital signature carries no seal")]
        return [check(C.SEAL, S.INDETERMINATE, zh="签章类型为 Seal，但签名值中没有印章且未提供 Seal.esl",
                      en="Type is Seal but the signed value holds no seal and no Seal.esl was given")]
    try:
        seal = parse_seal(seal_esl)
    except SealFormatError as exc:
        return [check(C.SEAL, S.FAILED, zh=f"Seal.esl 无法解析：{exc.zh}", en=f"Seal.esl cannot be read: {exc.en}")]
    if seal.errors:
        return [check(C.SEAL, S.FAILED, zh="Seal.esl 编码错误：" + "；".join(e.zh for e in seal.errors),
                      en="Seal.esl is wrongly encoded: " + "; ".join(e.en for e in seal.errors))]
    binding = (_seal_binding(seal, signer.der) if signer is not None else
               check(C.SEAL_BINDING, S.INDETERMINATE, zh="签名者证书未知", en="the signer's certificate is unknown"))
    return [*_seal_checks(seal), binding, _seal_validity(seal, when),
            *_maker_checks(seal, _certificate(seal.cert), trusted_roots)]


def _bare_report(value: bytes, data: bytes | None, *, sign_type, trusted_roots, signature_id, certificates,
                 signing_time, named: Message = SIGNATURE_XML) -> SignatureReport:
    checks = [check(C.FORMAT, S.PASSED, zh="裸 SM2 签名值（签名值内不含证书）",
                    en="a bare SM2 signature (no certificate inside the signed value)")]
    # the value names no signer: try the certificates the caller gave, then the trusted roots
    candidates = [c for c in (_as_certificate(c) for c in (*certificates, *trusted_roots)) if c is not None]
    signer = None
    for cert in candidates if data is not None else ():
        try:
            verify_with_certificate(cert, oids.SM3, oids.SM2_WITH_SM3, data or b"", value)
            signer = cert
            break
        except (InvalidSignature, InvalidInput, UnsupportedAlgorithm):
            continue
    if signer is not None:
        checks += [check(C.INTEGRITY, S.PASSED, zh=f"签名直接覆盖{named.zh}的字节", en=f"the signature covers the bytes of {named.en} directly"),
                   check(C.SIGNATURE, S.PASSED, zh=f"SM2 签名有效（{signer.subject}）", en=f"the SM2 signature verifies ({signer.subject})")]
    elif data is None:
        checks += [check(C.INTEGRITY, S.INDETERMINATE, zh=f"未提供{named.zh}", en=f"{named.en} was not supplied"),
                   check(C.SIGNATURE, S.INDETERMINATE, zh=f"未提供签名的{named.zh}，无法验证",
                         en=f"{named.en} the value signs was not supplied, so nothing could be verified")]
    elif candidates:
        checks += [check(C.INTEGRITY, S.INDETERMINATE, zh=f"签名未验证通过，无法确认{named.zh}未被修改",
                         en=f"the signature did not verify, so the integrity of {named.en} is unknown"),
                   check(C.SIGNATURE, S.FAILED, zh="SM2 签名不能用所给的任何证书验证",
                         en="the SM2 signature does not verify with any certificate given")]
    else:
        checks += [check(C.INTEGRITY, S.INDETERMINATE, zh="没有签名者证书，无法验证", en="no signer certificate, nothing could be verified"),
                   check(C.SIGNATURE, S.INDETERMINATE, zh="签名值中没有证书，且未提供签名者证书（--signer-cert）",
                         en="the signed value carries no certificate and none was supplied (--signer-cert)")]
    when = signing_time or utc_now()
    checks += _seal_for_plain_signature(None, signer, "Sign", when)
    if signer is not None:
        checks += _certificate_checks(signer, when, trusted_roots, "签名者", "signer")
    checks.append(check(C.TIMESTAMP, S.NOT_APPLICABLE, zh="签名不含时间戳", en="the signature carries no time stamp"))
    return SignatureReport(signature_id, sign_type, tuple(checks), signer=signer.subject if signer else None)


def _as_certificate(value) -> Certificate | None:
    return value if isinstance(value, Certificate) else _certificate(value)
