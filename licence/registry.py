"""The licence registry (证照库): issuers, licence records, their status and history.

Status and operation codes are those the national systems use (spec elicence-gbt369xx.md
§8). A change (变更) or renewal (延续) issues a new version that names the one it
supersedes; the old version keeps its status and gains ``superseded_by``, which is how
"superseded" is reported (the tables have no code for it, spec §8 [I]).

Issuers: for each licence type, the organisations that issue it, the seal each one seals
with (a seal of the seal registry, authorised there for the licence service's client
``LICENCE_SERVICE``) and the client applications that may ask it to issue.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ca.models import ca_certificate
from licence import identifier
from licence.metadata import HolderCodeType, LicenceMetadata
from licence.models import licence_history, licence_issuer, licence_issuer_client, licences
from licence.types import get as get_type
from seal import registry as seals
from seal.making import holder_of
from trust import audit
from trust.clock import as_utc, beijing_date, iso_z, utc_now
from trust.errors import InvalidInput, NotFound, PermissionDenied
from trust.ids import validate_uscc
from trust.states import BilingualState

LICENCE_SERVICE = "licence-service"     # the client id under which the licence authority uses seals
MAX_LIST = 500
MAX_CLIENTS = 100


class LicenceStatus(BilingualState):
    VALID = "01", "有效", "valid"
    SUSPENDED = "02", "暂扣", "suspended"
    WITHDRAWN = "03", "撤销", "annulled"          # issued in error
    CANCELLED = "04", "注销", "cancelled"         # the holder ceased
    EXPIRED = "05", "失效", "expired"
    TRANSFERRED = "06", "转出", "transferred out"
    REVOKED = "07", "吊销", "revoked"             # a penalty
    OTHER = "99", "其他", "other"


class Operation(StrEnum):
    ISSUE = "01"          # 新发
    RENEW = "02"          # 延续
    SUSPEND = "03"        # 暂扣
    EXPIRE = "04"         # 过期失效
    CANCEL = "05"         # 注销
    RESUME = "06"         # 暂扣发还
    OTHER = "07"          # 其他 (撤销 and 吊销 have no code of their own)
    TRANSFER_IN = "08"    # 转入
    CHANGE = "09"         # 变更
    CANCEL_TRANSFER = "10"  # 取消转出


@dataclass(frozen=True)
class Issuer:
    type_code: str
    issuer_code: str
    issuer_name: str
    area_code: str | None
    es_id: str
    client_ids: tuple[str, ...]
    pdf_key_id: str | None = None    # its licences are also issued as PAdES-signed PDF with this key


@dataclass(frozen=True)
class HistoryEntry:
    operation: Operation
    from_status: LicenceStatus | None
    to_status: LicenceStatus
    at: datetime
    actor: str
    reason: str

    def to_dict(self) -> dict:
        return {"operation": self.operation.value, "from": self.from_status and self.from_status.value,
                "to": self.to_status.value, "to_zh": self.to_status.zh, "at": iso_z(self.at), "actor": self.actor,
                "reason": self.reason}


@dataclass(frozen=True)
class LicenceRecord:
    """A licence as decided (``record``: the canonical JSON stored with it) and its state now."""

    licence_id: str
    record: dict
    status: LicenceStatus
    supersedes: str | None
    superseded_by: str | None
    es_id: str
    ofd_sm3: str
    client_id: str
    created_at: datetime
    status_changed_at: datetime
    pdf_sm3: str | None = None  # SM3 of the PDF's signed revision (licence.pdf_verify.signed_revision)
    qr_text: str | None = None  # what its QR code holds (licence/qr_payload.py)

    @property
    def id(self) -> identifier.LicenceId:
        return identifier.parse(self.licence_id)

    @property
    def valid_to(self) -> date | None:
        return date.fromisoformat(self.record["valid_to"]) if self.record["valid_to"] else None

    def metadata(self) -> LicenceMetadata:
        return metadata_of(self.record)

    def to_dict(self) -> dict:
        return {"licence_id": self.licence_id, "version": self.record["version"], "status": self.status.value,
                "status_zh": self.status.zh, "status_en": self.status.en, "supersedes": self.supersedes,
                "superseded_by": self.superseded_by, "record": self.record, "es_id": self.es_id,
                "ofd_sm3": self.ofd_sm3, "pdf_sm3": self.pdf_sm3, "qr_text": self.qr_text,
                "created_at": iso_z(self.created_at),
                "status_changed_at": iso_z(self.status_changed_at)}


def metadata_of(record: dict) -> LicenceMetadata:
    """The GB/T 36903 metadata of a canonical licence record."""
    r = record
    return LicenceMetadata(
        licence_id=r["licence_id"], type_name=r["type_name"], type_code=r["type_code"], licence_no=r["licence_no"],
        issuer_name=r["issuer"]["name"], issuer_code=r["issuer"]["code"],
        issue_date=date.fromisoformat(r["issue_date"]),
        holder_name=r["holder"]["name"], holder_code=r["holder"]["code"],
        holder_code_type=HolderCodeType(r["holder"]["code_type"]), valid_from=date.fromisoformat(r["valid_from"]),
        valid_to=date.fromisoformat(r["valid_to"]) if r["valid_to"] else None, area_code=r.get("area_code"),
        face=tuple((key, label, text) for key, label, text in r["printed"]))


def _record(row) -> LicenceRecord:
    return LicenceRecord(
        licence_id=row.licence_id, record=json.loads(row.record), status=LicenceStatus(row.status),
        supersedes=row.supersedes, superseded_by=row.superseded_by, es_id=row.es_id, ofd_sm3=row.ofd_sm3,
        client_id=row.client_id, created_at=as_utc(row.created_at), status_changed_at=as_utc(row.status_changed_at),
        pdf_sm3=row.pdf_sm3, qr_text=row.qr_text)


_COLUMNS = [c for c in licences.c if c.name not in ("ofd", "pdf")]


def _row(session: Session, licence_id: str, *, for_update: bool = False):
    text = str(identifier.parse(licence_id))
    query = select(*_COLUMNS).where(licences.c.licence_id == text)
    row = session.execute(query.with_for_update() if for_update else query).one_or_none()
    if row is None:
        raise NotFound(f"no licence {text}", f"没有证照 {text}")
    return row


def get(session: Session, licence_id: str) -> LicenceRecord:
    return _record(_row(session, licence_id))


def pdf_signing_certificate(session: Session, key_id: str, issuer_code: str) -> tuple[bytes, str]:
    """The certificate our CA issued the organisation ``issuer_code`` for the PDF key, and the
    name of the CA that issued it. InvalidInput when there is none, or it names someone else."""
    row = session.execute(select(ca_certificate.c.der, ca_certificate.c.issuer).where(
        (ca_certificate.c.key_id == key_id) & (ca_certificate.c.status == "good"))
        .order_by(ca_certificate.c.created_at.desc())).first()
    if row is None:
        raise InvalidInput(f"our CA issued no valid certificate for PDF key {key_id}",
                           f"本系统证书机构未给 PDF 签名密钥 {key_id} 签发有效证书")
    if holder_of(bytes(row.der)).uscc != issuer_code:
        raise InvalidInput(f"the certificate of PDF key {key_id} is not {issuer_code}'s",
                           f"PDF 签名密钥 {key_id} 的证书不属于 {issuer_code}")
    return bytes(row.der), row.issuer


def pdf_file(session: Session, licence_id: str) -> bytes:
    """The licence's signed PDF; NotFound when there is no such licence or it was issued as OFD only."""
    text = str(identifier.parse(licence_id))
    data = session.execute(select(licences.c.pdf).where(licences.c.licence_id == text)).scalar()
    if data is None:
        raise NotFound(f"licence {text} has no PDF", f"证照 {text} 没有 PDF 版本")
    return bytes(data)


def ofd_file(session: Session, licence_id: str) -> bytes:
    text = str(identifier.parse(licence_id))
    data = session.execute(select(licences.c.ofd).where(licences.c.licence_id == text)).scalar()
    if data is None:
        raise NotFound(f"no licence {text}", f"没有证照 {text}")
    return bytes(data)


def versions(session: Session, licence_id: str) -> list[str]:
    """Every version's identifier of the licence, oldest first."""
    base = identifier.parse(licence_id).base
    return list(session.execute(select(licences.c.licence_id).where(licences.c.base == base)
                                .order_by(licences.c.version)).scalars())


def history(session: Session, licence_id: str) -> list[HistoryEntry]:
    row = _row(session, licence_id)
    rows = session.execute(select(licence_history).where(licence_history.c.licence_id == row.licence_id)
                           .order_by(licence_history.c.id))
    return [HistoryEntry(Operation(r.operation), r.from_status and LicenceStatus(r.from_status),
                         LicenceStatus(r.to_status), as_utc(r.at), r.actor, r.reason) for r in rows]


def list_by_issuer(session: Session, issuer_code: str, *, limit: int = 100, offset: int = 0) -> list[LicenceRecord]:
    if not (isinstance(limit, int) and 0 < limit <= MAX_LIST and isinstance(offset, int) and offset >= 0):
        raise InvalidInput(f"limit is 1 to {MAX_LIST}, offset at least 0", f"每页 1 至 {MAX_LIST} 条，偏移不小于 0")
    rows = session.execute(select(*_COLUMNS).where(licences.c.issuer_code == validate_uscc(issuer_code))
                           .order_by(licences.c.created_at, licences.c.licence_id).limit(limit).offset(offset))
    return [_record(r) for r in rows]


def add_history(session: Session, licence_id: str, operation: Operation, from_status: LicenceStatus | None,
                to_status: LicenceStatus, at: datetime, actor: str, reason: str) -> None:
    session.execute(insert(licence_history).values(
        licence_id=licence_id, operation=operation.value, from_status=from_status and from_status.value,
        to_status=to_status.value, at=at, actor=actor, reason=reason))


# ---------------------------------------------------------------- issuers

def _clients(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    clients = tuple(dict.fromkeys(values))
    if len(clients) > MAX_CLIENTS or not all(isinstance(c, str) and 0 < len(c) <= 255 for c in clients):
        raise InvalidInput(f"up to {MAX_CLIENTS} client ids of 1 to 255 characters",
                           f"至多 {MAX_CLIENTS} 个客户端标识，每个 1 至 255 个字符")
    return clients


def register_issuer(session: Session, *, type_code: str, issuer_code: str, issuer_name: str, es_id: str,
                    client_ids: Iterable[str], area_code: str | None = None, pdf_key_id: str | None = None,
                    actor: str, clock: Callable[[], datetime] = utc_now) -> Issuer:
    """Let an organisation issue a type, sealing with its seal ``es_id``, through the clients
    given (replacing any earlier setting). The seal must be the organisation's, of the type
    the licence type names. With ``pdf_key_id`` (a KeyStore key for which our CA issued the
    organisation an ECDSA or RSA signing certificate), each licence is also a signed PDF.
    Audited. Does not commit."""
    licence_type = get_type(session, type_code).licence_type
    issuer_code = validate_uscc(issuer_code)
    if not isinstance(issuer_name, str) or not 0 < len(issuer_name.strip()) <= 100:
        raise InvalidInput("the issuer's name is 1 to 100 characters", "颁证单位名称须为 1 至 100 个字符")
    if area_code is not None and not (isinstance(area_code, str) and len(area_code) == 6 and area_code.isdigit()):
        raise InvalidInput("the area code is 6 digits (GB/T 2260)", "属地编码须为 6 位数字（GB/T 2260）")
    seal = seals.get_seal(session, es_id)
    if seal.holder_uscc != issuer_code or seal.seal_type != licence_type.seal_type:
        raise InvalidInput(f"seal {es_id} is not a {licence_type.seal_type} seal of {issuer_code}",
                           f"印章 {es_id} 不是 {issuer_code} 的{seals.SEAL_TYPE_ZH[licence_type.seal_type]}")
    clients = _clients(client_ids)
    if pdf_key_id is not None:
        pdf_signing_certificate(session, pdf_key_id, issuer_code)
    key = (licence_issuer.c.type_code == type_code) & (licence_issuer.c.issuer_code == issuer_code)
    session.execute(delete(licence_issuer).where(key))
    session.execute(insert(licence_issuer).values(type_code=type_code, issuer_code=issuer_code,
                                                  issuer_name=issuer_name.strip(), area_code=area_code,
                                                  es_id=seal.es_id, created_at=clock(), pdf_key_id=pdf_key_id))
    session.execute(delete(licence_issuer_client).where(
        (licence_issuer_client.c.type_code == type_code) & (licence_issuer_client.c.issuer_code == issuer_code)))
    if clients:
        session.execute(insert(licence_issuer_client), [
            {"type_code": type_code, "issuer_code": issuer_code, "client_id": c} for c in clients])
    audit.append(session, actor, "licence.issuer", f"{type_code}/{issuer_code}",
                 {"es_id": seal.es_id, "clients": list(clients), "name": issuer_name.strip(), "pdf_key_id": pdf_key_id})
    return get_issuer(session, type_code, issuer_code)


def get_issuer(session: Session, type_code: str, issuer_code: str) -> Issuer:
    row = session.execute(select(licence_issuer).where(
        (licence_issuer.c.type_code == type_code) & (licence_issuer.c.issuer_code == issuer_code))).one_or_none()
    if row is None:
        raise NotFound(f"{issuer_code} does not issue licence type {type_code}",
                       f"{issuer_code} 不是证照类型 {type_code} 的颁证单位")
    clients = session.execute(select(licence_issuer_client.c.client_id).where(
        (licence_issuer_client.c.type_code == type_code) & (licence_issuer_client.c.issuer_code == issuer_code))
        .order_by(licence_issuer_client.c.client_id)).scalars()
    return Issuer(row.type_code, row.issuer_code, row.issuer_name, row.area_code, row.es_id, tuple(clients),
                  row.pdf_key_id)


def check_issuer(session: Session, type_code: str, issuer_code: str, client_id: str) -> Issuer:
    """The issuer, if ``client_id`` may issue this type for it; a refusal is audited (in
    the caller's transaction: commit it) and raised."""
    try:
        issuer = get_issuer(session, type_code, issuer_code)
        if client_id in issuer.client_ids:
            return issuer
        error = PermissionDenied(f"client {client_id!r} may not issue licence type {type_code} for {issuer_code}",
                                 f"客户端 {client_id!r} 无权为 {issuer_code} 签发证照类型 {type_code}")
    except NotFound as e:
        error = PermissionDenied(e.en, e.zh)
    audit.append(session, f"client:{client_id}", "licence.refuse", f"{type_code}/{issuer_code}",
                 {"code": error.code, "reason": error.en})
    raise error


# ---------------------------------------------------------------- lifecycle

class IllegalTransition(InvalidInput):
    code = "illegal_transition"


_S = LicenceStatus
_ENDED = frozenset({_S.WITHDRAWN, _S.CANCELLED, _S.REVOKED, _S.EXPIRED})
# operation → (the statuses it applies to, the status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[LicenceStatus], LicenceStatus, Operation]] = {
    "suspend": (frozenset({_S.VALID}), _S.SUSPENDED, Operation.SUSPEND),
    "resume": (frozenset({_S.SUSPENDED}), _S.VALID, Operation.RESUME),
    "revoke": (frozenset({_S.VALID, _S.SUSPENDED}), _S.REVOKED, Operation.OTHER),       # 吊销
    "annul": (frozenset({_S.VALID, _S.SUSPENDED}), _S.WITHDRAWN, Operation.OTHER),      # 撤销
    "cancel": (frozenset({_S.VALID, _S.SUSPENDED}), _S.CANCELLED, Operation.CANCEL),    # 注销
    "expire": (frozenset({_S.VALID, _S.SUSPENDED}), _S.EXPIRED, Operation.EXPIRE),      # 过期失效
}
ACT_ZH = {"suspend": "暂扣", "resume": "发还", "revoke": "吊销", "annul": "撤销", "cancel": "注销", "expire": "失效",
          "change": "变更", "renew": "延续"}
_ACT_EN = {"suspend": "suspended", "resume": "resumed", "revoke": "revoked", "annul": "annulled",
           "cancel": "cancelled", "expire": "expired"}
MAX_REASON = 500


def check_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidInput(f"give a reason of 1 to {MAX_REASON} characters", f"请给出 1 至 {MAX_REASON} 个字符的理由")
    return reason.strip()


def current_for_update(session: Session, licence_id: str, act: str) -> LicenceRecord:
    """The licence, locked, if it is the latest version (only that one changes)."""
    record = _record(_row(session, licence_id, for_update=True))
    if record.superseded_by:
        raise IllegalTransition(f"licence {record.licence_id} is superseded by {record.superseded_by}: "
                                f"{act} that one", f"证照 {record.licence_id} 已被 {record.superseded_by} 取代，"
                                                   f"不能{ACT_ZH.get(act, act)}，请对新版本操作")
    return record


def transition(session: Session, licence_id: str, act: str, *, actor: str, reason: str,
               clock: Callable[[], datetime] = utc_now) -> LicenceRecord:
    """Suspend, resume, revoke, annul, cancel or expire a licence; an illegal move raises
    IllegalTransition. Written to its history and the audit log. Does not commit."""
    if act not in TRANSITIONS:
        raise InvalidInput(f"unknown licence operation {str(act)[:20]!r}", f"未知的证照操作 {str(act)[:20]!r}")
    reason = check_reason(reason)
    allowed, to, operation = TRANSITIONS[act]
    record = current_for_update(session, licence_id, act)
    if record.status not in allowed:
        raise IllegalTransition(f"licence {record.licence_id} is {record.status.en}: it cannot be {_ACT_EN[act]}",
                                f"证照 {record.licence_id} 处于“{record.status.zh}”状态，不能{ACT_ZH[act]}")
    now = clock()
    session.execute(update(licences).where(licences.c.licence_id == record.licence_id)
                    .values(status=to.value, status_changed_at=now))
    add_history(session, record.licence_id, operation, record.status, to, now, actor, reason)
    audit.append(session, actor, "licence.status", record.licence_id,
                 {"act": act, "operation": operation.value, "from": record.status.value, "to": to.value,
                  "reason": reason})
    return get(session, record.licence_id)


def supersede(session: Session, old: LicenceRecord, new_id: str, operation: Operation, *, actor: str, reason: str,
              at: datetime) -> None:
    """Mark ``old`` superseded by ``new_id`` (a change or renewal): it ends (失效) and names its successor."""
    session.execute(update(licences).where(licences.c.licence_id == old.licence_id)
                    .values(status=LicenceStatus.EXPIRED.value, superseded_by=new_id, status_changed_at=at))
    add_history(session, old.licence_id, operation, old.status, LicenceStatus.EXPIRED, at, actor,
                f"{reason}（由 {new_id} 取代）")


def expire_due(session: Session, *, actor: str = "system", clock: Callable[[], datetime] = utc_now,
               today: date | None = None) -> list[str]:
    """Mark expired every valid or suspended licence whose validity ended before ``today``
    (a Beijing date; default now). Run from cron. Returns the identifiers. Does not commit."""
    day = today or beijing_date(clock())
    due = session.execute(select(licences.c.licence_id).where(
        licences.c.status.in_([LicenceStatus.VALID.value, LicenceStatus.SUSPENDED.value])
        & licences.c.superseded_by.is_(None) & (licences.c.valid_to < day)).order_by(licences.c.licence_id)).scalars()
    expired = list(due)
    for licence_id in expired:
        transition(session, licence_id, "expire", actor=actor, reason=f"有效期届满 validity ended before {day}",
                   clock=clock)
    return expired
