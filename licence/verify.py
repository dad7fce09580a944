"""Verifying a licence: its seal (ofd.verify) and its standing in the issuer's registry.

The report is the house's (trust.report) with a ``licence`` section and one more check on
every signature, ``licence_status``, so the licence's status decides the document's
verdict: a revoked licence under a perfect seal is INVALID. The check is

- PASSED when our registry holds this very file (same SM3) and the licence is valid now;
- FAILED when it is suspended, revoked, annulled, cancelled, expired or superseded, or when
  the registry holds another file under this identifier;
- INDETERMINATE when the registry cannot be asked;
- NOT_APPLICABLE for a licence issued elsewhere (another province): its status is kept by
  its issuer, and the report says so in a warning; the seal and its chain to a root
  trusted for purpose ``licence`` decide.

The section shows the holder masked (张*, 3201**********1234) for natural persons; a legal
person's name and credit code are public (the credit publicity system) and shown whole.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime

from licence import metadata, pdf_verify, registry
from licence.metadata import HolderCodeType, LicenceMetadata, MetadataError
from licence.pdf_verify import verify_pdf
from licence.registry import HistoryEntry, LicenceRecord, LicenceStatus
from ofd.package import Package
from ofd.reader import read_package
from ofd.verify import verify_ofd
from trust.clock import beijing_date, iso_z, utc_now
from trust.errors import NotFound, TrustError
from trust.hashes import sm3
from trust.report import Check, CheckName, CheckStatus, Code, Message, Report, check

# What the registry answers for a licence id: the record and its history, None if it is not
# ours; it raises (StorageError, …) when it cannot be asked.
Lookup = Callable[[str], tuple[LicenceRecord, list[HistoryEntry]] | None]


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)


def mask_id_number(code: str) -> str:
    return code[:4] + "*" * (len(code) - 8) + code[-4:] if len(code) > 8 else "*" * len(code)


def holder_view(name: str, code: str, code_type: HolderCodeType) -> dict:
    if code_type == HolderCodeType.ID_NUMBER:
        return {"name": mask_name(name), "code": mask_id_number(code), "code_type": code_type.value, "masked": True}
    return {"name": name, "code": code, "code_type": code_type.value, "masked": False}


def read_metadata(data: bytes) -> LicenceMetadata | None:
    """The GB/T 36903 metadata of an OFD licence: our CustomTag first, else DocInfo's
    CustomDatas (other producers write only those); None if the file carries neither."""
    package = Package.from_bytes(data)
    document = read_package(package, objects=False)
    for tag in document.custom_tags:
        if tag.namespace == metadata.NAMESPACE and tag.part and tag.part in package:
            return metadata.from_xml(package.read(tag.part))
    custom = document.info.get("CustomDatas") or {}
    if "证照标识" in custom or "ZZBS" in custom:
        return metadata.from_items(custom.items())
    return None


def standing(record: LicenceRecord, today: date) -> tuple[bool, Message]:
    """Whether the licence stands today, and why not: what the public page shows."""
    if record.superseded_by:
        return False, Message(zh=f"证照已变更，被新版本 {record.superseded_by} 取代",
                              en=f"the licence was superseded by version {record.superseded_by}")
    if record.status != LicenceStatus.VALID:
        return False, Message(zh=f"证照状态为“{record.status.zh}”（{record.status.value}），自 "
                                 f"{iso_z(record.status_changed_at)}",
                              en=f"the licence is {record.status.en} ({record.status.value}) since "
                                 f"{iso_z(record.status_changed_at)}")
    if record.valid_to is not None and record.valid_to < today:
        return False, Message(zh=f"证照有效期已于 {record.valid_to} 届满",
                              en=f"the licence's validity ended on {record.valid_to}")
    if date.fromisoformat(record.record["valid_from"]) > today:
        return False, Message(zh=f"证照自 {record.record['valid_from']} 起才有效",
                              en=f"the licence is valid only from {record.record['valid_from']}")
    return True, Message(zh="证照在颁证单位登记为有效", en="the issuer's registry holds this licence as valid")


def _status_check(record: LicenceRecord, file_sm3: str, today: date) -> Check:
    if file_sm3 not in (record.ofd_sm3, record.pdf_sm3):
        return check(CheckName.LICENCE_STATUS, CheckStatus.FAILED,
                     zh=f"登记的证照 {record.licence_id} 不是这份文件", en=f"this file is not the one registered as "
                                                                  f"licence {record.licence_id}", code=Code.HASH_FAILURE)
    ok, why = standing(record, today)
    return Check(CheckName.LICENCE_STATUS, CheckStatus.PASSED if ok else CheckStatus.FAILED, why)


def _status_at(history: list[HistoryEntry], when: datetime | None) -> str | None:
    if when is None:
        return None
    before = [h for h in history if h.at <= when]
    return before[-1].to_status.value if before else None


def _signing_time(report: Report) -> datetime | None:
    times = [s.signing_time for s in report.signatures if s.signing_time]
    return datetime.fromisoformat(times[0].replace("Z", "+00:00")) if times else None


def _section(meta: LicenceMetadata, record: LicenceRecord | None, history: list[HistoryEntry], report: Report,
             now: datetime) -> dict:
    source = record.metadata() if record is not None else meta
    section = {
        "licence_id": source.licence_id, "type_code": source.type_code, "type_name": source.type_name,
        "issuer": {"name": source.issuer_name, "code": source.issuer_code},
        "holder": holder_view(source.holder_name, source.holder_code, source.holder_code_type),
        "licence_no": source.licence_no if source.holder_code_type == HolderCodeType.CREDIT_CODE
        else mask_id_number(source.licence_no),
        "issue_date": source.issue_date.isoformat(), "valid_from": source.valid_from.isoformat(),
        "valid_to": source.valid_to.isoformat() if source.valid_to else metadata.LONG_TERM,
        "version": int(source.licence_id.split(".")[-2]) if source.licence_id.count(".") > 2 else None,
        "registered": record is not None, "checked_at": iso_z(now),
    }
    if record is not None:
        section.update({
            "status": record.status.value, "status_zh": record.status.zh, "status_en": record.status.en,
            "status_at_signing": _status_at(history, _signing_time(report)),
            "supersedes": record.supersedes, "superseded_by": record.superseded_by})
    return section


def is_pdf(data: bytes) -> bool:
    return bytes(data[:1024]).lstrip().startswith(b"%PDF-")


def verify_licence(data: bytes, *, lookup: Lookup, trusted_roots=(), seal_status=None,
                   clock: Callable[[], datetime] = utc_now) -> Report:
    """The report on an OFD or PDF licence; OFDFormatError if the file is not an OFD package
    at all, InvalidInput if it is not a readable PDF. A PDF is named in the registry by its
    signed revision (pdf_verify.signed_revision), so the document time stamps renewed after
    issue do not make it "another file"."""
    if is_pdf(data):
        report = verify_pdf(data, trusted_roots=trusted_roots)
        read, file_sm3 = pdf_verify.licence_metadata, lambda: sm3(pdf_verify.signed_revision(data)).hex()
    else:
        report = verify_ofd(data, trusted_roots=trusted_roots, seal_status=seal_status)
        read, file_sm3 = (lambda data: (read_metadata(data), False)), lambda: sm3(data).hex()
    try:
        meta, changed = read(data)
    except (MetadataError, TrustError) as e:
        return replace(report, warnings=(*report.warnings, Message(
            zh=f"文件带有无法读取的证照元数据：{e.zh}", en=f"the file's licence metadata cannot be read: {e.en}")))
    if meta is None:
        return replace(report, warnings=(*report.warnings, Message(
            zh="文件中没有电子证照元数据（GB/T 36903），仅验证了签章", en="the file carries no licence metadata "
                                                         "(GB/T 36903); only its signatures were verified")))
    now = clock()
    warnings = list(report.warnings)
    if changed:
        warnings.append(Message(zh="签名后文档信息被改写；本报告所示为签名时的证照元数据",
                                en="the document information was rewritten after signing; this report shows the "
                                   "licence metadata as signed"))
    record, history = None, list[HistoryEntry]()
    found: tuple[LicenceRecord, list[HistoryEntry]] | TrustError | None
    try:
        found = lookup(meta.licence_id)
    except NotFound:
        found = None
    except TrustError as e:
        found = e
    if isinstance(found, TrustError):
        status = check(CheckName.LICENCE_STATUS, CheckStatus.INDETERMINATE,
                       zh=f"无法查询证照登记状态：{found.zh}", en=f"the licence registry cannot be asked: {found.en}",
                       code=Code.TRY_LATER)
    elif found is None:
        status = check(CheckName.LICENCE_STATUS, CheckStatus.NOT_APPLICABLE,
                       zh="证照不是本平台签发的，其状态由颁证单位掌握", en="the licence was not issued here; its issuer "
                                                                "keeps its status")
        warnings.append(Message(zh=f"证照状态请向颁证单位 {meta.issuer_name} 核实",
                                en=f"ask the issuer, {meta.issuer_name}, whether the licence still stands"))
    else:
        record, history = found
        status = _status_check(record, file_sm3(), beijing_date(now))
    signatures = tuple(replace(s, checks=(*s.checks, status)) for s in report.signatures)
    return Report(report.format, signatures, tuple(warnings), licence=_section(meta, record, history, report, now))


def registry_lookup(session) -> Lookup:
    """Our registry, as ``verify_licence`` asks it."""
    def lookup(licence_id: str):
        try:
            return registry.get(session, licence_id), registry.history(session, licence_id)
        except NotFound:
            return None
    return lookup
