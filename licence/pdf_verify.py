"""Verifying a signed PDF (PAdES, ISO 32000-2 §12.8) into the report every verifier returns
(trust/report.py): format "pdf", one entry per signature (type "PAdES") and per document time
stamp (type "DocTimeStamp"). The cryptography, the byte ranges and the difference analysis of
later revisions are pyHanko's (its validation is what PDF signers are judged by); this module
decides which roots are trusted (ours, by purpose) and says what each finding means, by the
fixed check names. The document's own DSS supplies certificates and revocation data; nothing
is fetched.
"""

import io
import logging
import warnings
import zlib
from dataclasses import replace
from datetime import UTC, datetime

from asn1crypto import x509 as asn1_x509
from cryptography.utils import CryptographyDeprecationWarning

# pyHanko imports cryptography's DSA types (never used here), which warn on every import
warnings.filterwarnings("ignore", "DSA is deprecated", CryptographyDeprecationWarning)
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from licence import metadata
from trust.errors import InvalidInput
from trust.report import Check, CheckName as C, CheckStatus as S, Code, Report, SignatureReport, check

MAX_PDF_BYTES = 32 * 1024 * 1024
# What pyHanko's reader raises on malformed input, besides its own PdfError: found by fuzzing
# (a flipped digit gives decimal.InvalidOperation, an ArithmeticError).
MAX_EMBEDDED = 1024 * 1024          # far above any licence's metadata; a Flate bomb stops here
_UNREADABLE = (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError,
               ArithmeticError, NotImplementedError, EOFError)
MAX_SIGNATURES = 50
# Changes after a signature that leave what it signed as it was (pyHanko's ModificationLevel).
_HARMLESS = {"NONE": ("没有后续修改", "nothing was changed after signing"),
             "LTA_UPDATES": ("其后只追加了长期验证数据和文档时间戳", "only validation data and document time stamps were added after it")}


def verify_pdf(data: bytes, *, trusted_roots=(), intermediates=()) -> Report:
    """The report for a PDF's signatures. InvalidInput when it is not a PDF we can read."""
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:1024]).lstrip().startswith(b"%PDF-"):
        raise InvalidInput("not a PDF file", "不是 PDF 文件")
    if len(data) > MAX_PDF_BYTES:
        raise InvalidInput(f"the PDF is larger than {MAX_PDF_BYTES // 2**20} MB", f"PDF 超过 {MAX_PDF_BYTES // 2**20} MB")
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)  # what it logs about odd input is in our report
    try:
        reader = _reader(data)
        if reader.encrypted:
            raise InvalidInput("encrypted PDFs are not verified: save it unencrypted",
                               "不验证加密的 PDF，请另存为未加密文件")
        embedded = list(reader.embedded_signatures)
        store = DocumentSecurityStore.read_dss(reader) if "/DSS" in reader.root else None
    except InvalidInput:
        raise
    except _UNREADABLE as exc:
        raise InvalidInput(f"not a readable PDF: {str(exc)[:200] or type(exc).__name__}",
                           f"无法读取的 PDF：{str(exc)[:200] or type(exc).__name__}") from None
    if len(embedded) > MAX_SIGNATURES:
        raise InvalidInput(f"more than {MAX_SIGNATURES} signatures", f"签名超过 {MAX_SIGNATURES} 个")
    roots = [asn1_x509.Certificate.load(_der(c)) for c in trusted_roots]
    others = [asn1_x509.Certificate.load(_der(c)) for c in intermediates]
    reports = [_one(signature, index, store, roots, others) for index, signature in enumerate(embedded, 1)]
    stamped = [index for index, signature in enumerate(embedded) if _is_stamp(signature)]
    evidence = store is not None and bool(store.crls or store.ocsps)
    return Report("pdf", tuple(
        replace(r, level=_level(r, evidence, any(i > index for i in stamped))) if r.type == "PAdES" else r
        for index, r in enumerate(reports)))


def _level(report: SignatureReport, evidence: bool, stamped_after: bool) -> str:
    """The PAdES baseline level (ETSI EN 319 142-1) the signature reaches: B-T with a trusted
    signature time stamp, B-LT with revocation data in the DSS as well, B-LTA with a document
    time stamp after it. Whether the DSS holds the data for *this* chain is left to the
    checks (chain, revocation): the level says what the file carries."""
    if report.check_status(C.TIMESTAMP) is not S.PASSED:
        return "B-B"
    if not evidence:
        return "B-T"
    return "B-LTA" if stamped_after else "B-LT"


def _is_stamp(signature) -> bool:
    return signature.sig_object.get("/Type") == "/DocTimeStamp"


def _reader(data: bytes) -> PdfFileReader:
    try:
        return PdfFileReader(io.BytesIO(bytes(data)), strict=False)
    except _UNREADABLE as exc:
        raise InvalidInput(f"not a readable PDF: {str(exc)[:200] or type(exc).__name__}",
                           f"无法读取的 PDF：{str(exc)[:200] or type(exc).__name__}") from None


def signed_revision(data: bytes) -> bytes:
    """The bytes of the revision the file's first signature signed (the file up to the end of
    its byte range): what names a licence PDF in the registry, unchanged by the validation
    data and document time stamps appended after it. InvalidInput when no signature covers
    the start of the file."""
    try:
        signature = next(s for s in _reader(data).embedded_signatures if not _is_stamp(s))
        start, first, second, length = (int(v) for v in signature.sig_object["/ByteRange"])
    except StopIteration:
        raise InvalidInput("the PDF carries no signature", "PDF 中没有签名") from None
    except (*_UNREADABLE, ValueError) as exc:
        raise InvalidInput(f"the PDF's signature has no usable /ByteRange: {str(exc)[:100]}",
                           f"PDF 签名的 /ByteRange 不可用：{str(exc)[:100]}") from None
    end = second + length
    if start != 0 or not 0 < first <= second <= end <= len(data):
        raise InvalidInput("the PDF's first signature does not cover the start of the file",
                           "PDF 的第一个签名未覆盖文件开头")
    return bytes(data[:end])


def newest_stamp_certificate(data: bytes) -> asn1_x509.Certificate | None:
    """The certificate of the TSA behind the PDF's newest document time stamp (whose expiry
    B-LTA renewal watches); None when the PDF has no document time stamp."""
    try:
        stamps = [s for s in _reader(data).embedded_signatures if _is_stamp(s)]
        return stamps[-1].signer_cert if stamps else None
    except _UNREADABLE as exc:
        raise InvalidInput(f"the PDF's document time stamp cannot be read: {str(exc)[:100]}",
                           f"无法读取 PDF 的文档时间戳：{str(exc)[:100]}") from None


def newest_stamp_expiry(data: bytes) -> datetime | None:
    certificate = newest_stamp_certificate(data)
    return certificate["tbs_certificate"]["validity"]["not_after"].native if certificate is not None else None


def _information(data: bytes) -> list[tuple[str, str]]:
    try:
        trailer = _reader(data).trailer_view
        info = trailer["/Info"] if "/Info" in trailer else {}
        return [(str(name).removeprefix("/"), str(value)) for name, value in info.items()]
    except _UNREADABLE as exc:
        raise InvalidInput(f"the PDF's document information cannot be read: {str(exc)[:100]}",
                           f"无法读取 PDF 的文档信息：{str(exc)[:100]}") from None


def licence_metadata(data: bytes) -> tuple[metadata.LicenceMetadata | None, bool]:
    """The GB/T 36903 metadata of a licence PDF, read from the signed revision so that a later
    update cannot change what the report says the licence is: the embedded LicenceMeta.xml
    that licence.issuance adds in the signed update (the whole record, face included), else
    the items licence.pdf writes in the document information (None if there are neither);
    and whether a later revision shows other document information (pyHanko's policy lets an
    update change it without touching the signature: the report warns)."""
    try:
        revision = signed_revision(data)
    except InvalidInput:
        revision = bytes(data)
    items = _information(revision)
    changed = len(revision) < len(data) and _meaningful(_information(data)) != _meaningful(items)
    xml = _embedded(revision, metadata.FILE_NAME)
    if xml is not None:
        return metadata.from_xml(xml), changed
    if not any(name in ("证照标识", "ZZBS") for name, _ in items):
        return None, False
    return metadata.from_items(items), changed


def _meaningful(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Document information less what every incremental update rewrites (pyHanko sets
    /ModDate, and may set /Producer, when it appends the document time stamp of B-LTA)."""
    return sorted((name, value) for name, value in items if name not in ("ModDate", "Producer"))


def _embedded(data: bytes, name: str) -> bytes | None:
    """The embedded file ``name`` (uncompressed or Flate, at most ``MAX_EMBEDDED`` bytes
    inflated); None when there is none or it is not of that shape."""
    try:
        names = _reader(data).root["/Names"]["/EmbeddedFiles"]["/Names"]
        spec = next(names[i + 1] for i in range(0, len(names) - 1, 2) if str(names[i]) == name)
        stream = spec["/EF"]["/F"]
        raw, kind = stream.encoded_data, stream.get("/Filter")
        if isinstance(kind, list):
            kind = kind[0] if len(kind) == 1 else "several"
    except (*_UNREADABLE, StopIteration):
        return None
    if kind is None:
        return bytes(raw) if len(raw) <= MAX_EMBEDDED else None
    if str(kind) != "/FlateDecode":
        return None
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(bytes(raw), MAX_EMBEDDED)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail else out


def _der(value) -> bytes:
    return bytes(value) if isinstance(value, (bytes, bytearray)) else value.der


def _context(store, roots, others) -> ValidationContext:
    base = dict(trust_roots=roots, other_certs=others, allow_fetching=False, revocation_mode="soft-fail")
    if store is None:
        return ValidationContext(**base)
    return store.as_validation_context(base)


def _one(signature, index: int, store, roots, others) -> SignatureReport:
    identifier = f"s{index:03d}"
    is_stamp = _is_stamp(signature)
    kind = "DocTimeStamp" if is_stamp else "PAdES"
    try:
        context = _context(store, roots, others)
        status = validate_pdf_timestamp(signature, context) if is_stamp else validate_pdf_signature(signature, context)
    except (SignatureValidationError, *_UNREADABLE) as exc:
        return SignatureReport(identifier, kind, (check(C.FORMAT, S.FAILED, zh=f"签名无法解析：{str(exc)[:200]}",
                                                        en=f"the signature cannot be read: {str(exc)[:200]}"),))
    signer = status.signing_cert.subject.human_friendly if status.signing_cert is not None else None
    # a document time stamp's time is its own; a signature's is its time stamp's, else what it claims
    if isinstance(status, PdfSignatureStatus):
        stamp, when = status.timestamp_validity, status.signer_reported_dt
        when = stamp.timestamp if stamp is not None else when
    else:
        stamp, when = None, status.timestamp
    checks = [check(C.FORMAT, S.PASSED, zh=f"结构可解析（{signature.sig_object.get('/SubFilter', '?')}）",
                    en=f"the structure parses ({signature.sig_object.get('/SubFilter', '?')})"),
              _integrity(status), _signature(status), *_certificate_checks(status), _timestamp(stamp), _scope(status)]
    return SignatureReport(identifier, kind, tuple(checks), signer=signer,
                           signing_time=when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None)


def _integrity(status) -> Check:
    if status.intact:
        return check(C.INTEGRITY, S.PASSED, zh="签名覆盖的字节的杂凑值一致", en="the digest of the signed byte ranges matches")
    return check(C.INTEGRITY, S.FAILED, zh="签名覆盖的字节被修改，文件可能被篡改",
                 en="the signed byte ranges were changed: the file may have been altered")


def _signature(status) -> Check:
    if status.valid:
        return check(C.SIGNATURE, S.PASSED, zh=f"签名有效（{status.md_algorithm}）",
                     en=f"the signature verifies ({status.md_algorithm})")
    return check(C.SIGNATURE, S.FAILED, zh="签名值验证不通过", en="the signature value does not verify")


def _certificate_checks(status) -> list[Check]:
    problem = status.trust_problem_indic
    if status.revoked:
        return [check(C.CERTIFICATE, S.PASSED, zh="证书结构可用", en="the certificate is usable"),
                check(C.CHAIN, S.PASSED, zh="证书链至可信根", en="the certificate chains to a trusted root"),
                check(C.REVOCATION, S.FAILED, zh="证书已被吊销", en="the certificate has been revoked")]
    if problem is None:
        return [check(C.CERTIFICATE, S.PASSED, zh="签名时证书有效", en="the certificate was valid when it signed"),
                check(C.CHAIN, S.PASSED, zh="证书链至可信根", en="the certificate chains to a trusted root"),
                check(C.REVOCATION, S.PASSED, zh="未发现吊销（依据文件内的验证数据）",
                      en="no revocation found (from the validation data in the file)")]
    name = getattr(problem, "name", str(problem))
    if "EXPIRED" in name or "NOT_YET_VALID" in name:
        return [check(C.CERTIFICATE, S.FAILED, zh=f"证书在签名时不在有效期内（{name}）",
                      en=f"the certificate was outside its validity when it signed ({name})",
                      code=Code.NOT_YET_VALID if "NOT_YET_VALID" in name else Code.EXPIRED),
                check(C.CHAIN, S.INDETERMINATE, zh="证书无效，未确认证书链", en="the certificate is invalid; its chain was not judged",
                      code=Code.GENERIC),
                check(C.REVOCATION, S.INDETERMINATE, zh="未检查吊销状态", en="revocation was not checked", code=Code.GENERIC)]
    return [check(C.CERTIFICATE, S.PASSED, zh="证书结构可用", en="the certificate is usable"),
            check(C.CHAIN, S.INDETERMINATE, zh=f"无法确认通向可信根的证书链（{name}）",
                  en=f"no path to a trusted root could be confirmed ({name})"),
            check(C.REVOCATION, S.INDETERMINATE, zh="未建立证书链，无法确认吊销状态",
                  en="without a path, revocation could not be checked", code=Code.NO_CERTIFICATE_CHAIN_FOUND)]


def _timestamp(stamp) -> Check:
    if stamp is None:
        return check(C.TIMESTAMP, S.NOT_APPLICABLE, zh="签名不含时间戳", en="the signature carries no time stamp")
    if not (stamp.intact and stamp.valid):
        return check(C.TIMESTAMP, S.FAILED, zh="时间戳与签名不符或无效", en="the time stamp does not match the signature or is invalid")
    if stamp.trust_problem_indic is not None:
        return check(C.TIMESTAMP, S.INDETERMINATE, zh="时间戳服务的证书不受信任", en="the time-stamp authority is not trusted")
    at = stamp.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return check(C.TIMESTAMP, S.PASSED, zh=f"可信时间戳：{at}", en=f"a trusted time stamp: {at}")


def _scope(status) -> Check:
    coverage = getattr(status.coverage, "name", "")
    level = getattr(getattr(status, "modification_level", None), "name", None) or "NONE"
    if coverage == "ENTIRE_FILE":
        return check(C.SCOPE, S.PASSED, zh="签名覆盖整个文件", en="the signature covers the whole file")
    if coverage == "ENTIRE_REVISION" and level in _HARMLESS:
        zh, en = _HARMLESS[level]
        return check(C.SCOPE, S.PASSED, zh=f"签名覆盖其所签版本；{zh}", en=f"the signature covers its revision; {en}")
    if coverage == "ENTIRE_REVISION" and status.docmdp_ok is not False and level in ("FORM_FILLING", "ANNOTATIONS"):
        return check(C.SCOPE, S.INDETERMINATE, zh=f"签名后有表单填写或批注（{level}）",
                     en=f"form filling or annotations were added after signing ({level})")
    return check(C.SCOPE, S.FAILED, zh=f"签名后文件被以不允许的方式修改（{coverage} {level}）",
                 en=f"the file was changed after signing in a way that is not allowed ({coverage} {level})")
