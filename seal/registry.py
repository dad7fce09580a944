"""The seal registry (印章登记): holders, seals, their lifecycle, and who may use each seal.

Lifecycle (every change is a row of ``seal_status_history`` and an audit record)::

    applied → approved → made → active ⇄ suspended
    applied, approved, made, active, suspended → revoked
    active, suspended → expired
    made, revoked, expired → destroyed

Only an active seal inside its validity period signs. Use authorisation is per seal: the
client applications (OAuth ``client_id``) that may ask for signatures, and the operators
(subject ids) who may; a seal with no operator listed may be used by any operator of an
authorised client, one with operators listed only by them.

esID scheme (GB/T 38540 leaves it to the seal system; 19 digits)::

    RRRRRR TT YYYY NNNNNN C
    region (the holder's 6-digit administrative division code, USCC characters 3-8),
    seal type code (01 official … 06 other), year of application, 6 random digits,
    a Luhn check digit over the 18 before it.
"""

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from seal.models import seal_authorisation, seal_registry, seal_status_history
from seal.picture import Picture
from seal.status import SealStatus
from seal.verify import RegistryStatus
from trust import audit
from trust.clock import as_utc, utc_now
from trust.errors import InvalidInput, NotFound, PermissionDenied
from trust.ids import validate_uscc

MAX_NAME = 100          # characters of a seal or holder name
MAX_PRINCIPAL = 255     # a client id or subject id
MAX_REASON = 500
MAX_LIST = 1000         # seals per listing or bulk revocation


class SealType(StrEnum):
    OFFICIAL = "official"      # 公章
    CONTRACT = "contract"      # 合同专用章
    FINANCE = "finance"        # 财务专用章
    APPROVAL = "approval"      # 审批专用章
    PERSONAL = "personal"      # 个人名章
    OTHER = "other"


SEAL_TYPE_ZH = {SealType.OFFICIAL: "公章", SealType.CONTRACT: "合同专用章", SealType.FINANCE: "财务专用章",
                SealType.APPROVAL: "审批专用章", SealType.PERSONAL: "个人名章", SealType.OTHER: "其他印章"}
_TYPE_CODE = {t: f"{i:02d}" for i, t in enumerate(SealType, start=1)}


def ses_type(seal_type: "SealType") -> int:
    """SES_ESPropertyInfo.type: 1 organisation seal, 2 personal seal (eseal-gbt38540.md §4)."""
    return 2 if seal_type == SealType.PERSONAL else 1


_S = SealStatus
TRANSITIONS: dict[SealStatus, frozenset[SealStatus]] = {
    _S.APPLIED: frozenset({_S.APPROVED, _S.REVOKED}),
    _S.APPROVED: frozenset({_S.MADE, _S.REVOKED}),
    _S.MADE: frozenset({_S.ACTIVE, _S.REVOKED, _S.DESTROYED}),
    _S.ACTIVE: frozenset({_S.SUSPENDED, _S.REVOKED, _S.EXPIRED}),
    _S.SUSPENDED: frozenset({_S.ACTIVE, _S.REVOKED, _S.EXPIRED}),
    _S.REVOKED: frozenset({_S.DESTROYED}),
    _S.EXPIRED: frozenset({_S.DESTROYED}),
    _S.DESTROYED: frozenset(),
}


class SealNotActive(PermissionDenied):
    """A seal that is not active, or outside its validity period, was asked to sign."""

    code = "seal_not_active"


class IllegalTransition(InvalidInput):
    code = "illegal_transition"


@dataclass(frozen=True)
class SealRecord:
    es_id: str
    holder_name: str
    holder_uscc: str
    seal_type: SealType
    name: str
    status: SealStatus
    valid_from: datetime
    valid_to: datetime
    picture_type: str
    picture: bytes
    picture_width_mm: int
    picture_height_mm: int
    holder_certificate: bytes
    holder_key_id: str | None
    maker_certificate: bytes | None
    seal: bytes | None                 # DER SES_Seal once made or imported
    origin: str                        # "made" | "imported"
    created_at: datetime
    status_changed_at: datetime
    client_ids: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()

    def summary(self) -> dict:
        """What a listing shows (no pictures, no certificates)."""
        return {"esID": self.es_id, "name": self.name, "type": str(self.seal_type),
                "type_zh": SEAL_TYPE_ZH[self.seal_type], "holder": self.holder_name, "uscc": self.holder_uscc,
                "status": str(self.status), "status_zh": self.status.zh,
                "valid_from": _iso(self.valid_from), "valid_to": _iso(self.valid_to), "origin": self.origin,
                "clients": list(self.client_ids), "operators": list(self.operators)}


@dataclass(frozen=True)
class StatusChange:
    from_status: SealStatus | None
    to_status: SealStatus
    at: datetime
    actor: str
    reason: str


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bytes(value) -> bytes | None:
    return None if value is None else bytes(value)


# ---------------------------------------------------------------- input checks

def _text(value, what: str, what_zh: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"{what} is 1 to {limit} characters of text", f"{what_zh}须为 1 至 {limit} 个字符的文本")
    return value.strip()


def _seal_type(value) -> SealType:
    try:
        return SealType(value)
    except ValueError:
        raise InvalidInput(f"unknown seal type {str(value)[:40]!r}; known: {', '.join(SealType)}",
                           f"未知的印章类型 {str(value)[:40]!r}，可用：{'、'.join(SEAL_TYPE_ZH.values())}") from None


def _status(value) -> SealStatus:
    try:
        return SealStatus(value)
    except ValueError:
        raise InvalidInput(f"unknown seal status {str(value)[:40]!r}; known: {', '.join(SealStatus)}",
                           f"未知的印章状态 {str(value)[:40]!r}") from None


def _principals(values: Iterable[str], what: str, what_zh: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    result = tuple(dict.fromkeys(_text(v, what, what_zh, MAX_PRINCIPAL) for v in values))
    if len(result) > MAX_LIST:
        raise InvalidInput(f"at most {MAX_LIST} {what}s per seal", f"每枚印章最多 {MAX_LIST} 个{what_zh}")
    return result


def _period(valid_from: datetime, valid_to: datetime) -> tuple[datetime, datetime]:
    if not all(isinstance(v, datetime) and v.tzinfo is not None for v in (valid_from, valid_to)):
        raise InvalidInput("the validity period is two times with a time zone", "有效期须为两个带时区的时间")
    if not valid_from < valid_to:
        raise InvalidInput("the validity period must end after it starts", "有效期终止须晚于起始")
    return valid_from.astimezone(UTC), valid_to.astimezone(UTC)


def check_es_id(es_id) -> str:
    """Any esID we may hold: 1-32 printable ASCII characters (imported seals use other schemes)."""
    if not isinstance(es_id, str) or not 0 < len(es_id) <= 32 or not es_id.isascii() or not es_id.isprintable():
        raise InvalidInput("an esID is 1 to 32 printable ASCII characters", "电子印章标识须为 1 至 32 个可打印 ASCII 字符")
    return es_id


# ---------------------------------------------------------------- esID

def _luhn(digits: str) -> str:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str(-total % 10)


def new_es_id(holder_uscc: str, seal_type: SealType, year: int) -> str:
    """A fresh esID in the scheme of the module docstring."""
    body = f"{validate_uscc(holder_uscc)[2:8]}{_TYPE_CODE[SealType(seal_type)]}{year:04d}{secrets.randbelow(10**6):06d}"
    return body + _luhn(body)


def es_id_ok(es_id: str) -> bool:
    """True if ``es_id`` is one of ours (19 digits with a valid check digit)."""
    return len(es_id) == 19 and es_id.isdigit() and _luhn(es_id[:-1]) == es_id[-1]


# ---------------------------------------------------------------- reading

def _row(session: Session, es_id: str, *, for_update: bool = False):
    query = select(seal_registry).where(seal_registry.c.es_id == check_es_id(es_id))
    row = session.execute(query.with_for_update() if for_update else query).one_or_none()
    if row is None:
        raise NotFound(f"no seal with esID {es_id}", f"找不到电子印章标识为 {es_id} 的印章")
    return row


def _authorisations(session: Session, es_ids: Sequence[str]) -> dict[str, tuple[list, list]]:
    found: dict[str, tuple[list, list]] = {es_id: ([], []) for es_id in es_ids}
    rows = session.execute(select(seal_authorisation).where(seal_authorisation.c.es_id.in_(list(es_ids)))
                           .order_by(seal_authorisation.c.principal))
    for row in rows:
        found[row.es_id][0 if row.kind == "client" else 1].append(row.principal)
    return found


def _record(row, clients=(), operators=()) -> SealRecord:
    return SealRecord(
        es_id=row.es_id, holder_name=row.holder_name, holder_uscc=row.holder_uscc,
        seal_type=SealType(row.seal_type), name=row.name, status=SealStatus(row.status),
        valid_from=as_utc(row.valid_from), valid_to=as_utc(row.valid_to),
        picture_type=row.picture_type, picture=bytes(row.picture), picture_width_mm=row.picture_width_mm,
        picture_height_mm=row.picture_height_mm, holder_certificate=bytes(row.holder_certificate),
        holder_key_id=row.holder_key_id, maker_certificate=_bytes(row.maker_certificate),
        seal=_bytes(row.seal_der), origin=row.origin, created_at=as_utc(row.created_at),
        status_changed_at=as_utc(row.status_changed_at), client_ids=tuple(clients), operators=tuple(operators))


def get_seal(session: Session, es_id: str) -> SealRecord:
    row = _row(session, es_id)
    clients, operators = _authorisations(session, [row.es_id])[row.es_id]
    return _record(row, clients, operators)


def find_seal(session: Session, es_id: str) -> SealRecord | None:
    """The seal if it is in our registry, else None (for verification of any seal)."""
    try:
        return get_seal(session, es_id)
    except (NotFound, InvalidInput):
        return None


def list_seals(session: Session, *, holder_uscc: str | None = None, status: str | None = None,
               seal_type: str | None = None, limit: int = 100, offset: int = 0) -> list[SealRecord]:
    if not (isinstance(limit, int) and 0 < limit <= MAX_LIST and isinstance(offset, int) and offset >= 0):
        raise InvalidInput(f"limit is 1 to {MAX_LIST}, offset at least 0", f"每页 1 至 {MAX_LIST} 条，偏移不小于 0")
    query = select(seal_registry).order_by(seal_registry.c.created_at, seal_registry.c.es_id)
    if holder_uscc is not None:
        query = query.where(seal_registry.c.holder_uscc == validate_uscc(holder_uscc))
    if status is not None:
        query = query.where(seal_registry.c.status == _status(status).value)
    if seal_type is not None:
        query = query.where(seal_registry.c.seal_type == _seal_type(seal_type).value)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    found = _authorisations(session, [r.es_id for r in rows])
    return [_record(r, *found[r.es_id]) for r in rows]


def history(session: Session, es_id: str) -> list[StatusChange]:
    _row(session, es_id)
    rows = session.execute(select(seal_status_history).where(seal_status_history.c.es_id == es_id)
                           .order_by(seal_status_history.c.id))
    return [StatusChange(SealStatus(r.from_status) if r.from_status else None, SealStatus(r.to_status),
                         as_utc(r.at), r.actor, r.reason) for r in rows]


# ---------------------------------------------------------------- lifecycle

def _history(session: Session, es_id: str, from_status, to_status, at: datetime, actor: str, reason: str) -> None:
    session.execute(insert(seal_status_history).values(
        es_id=es_id, from_status=from_status and str(from_status), to_status=str(to_status), at=at,
        actor=actor, reason=reason))


def register(session: Session, *, es_id: str, holder_name: str, holder_uscc: str, seal_type, name: str,
             picture: Picture, holder_certificate: bytes, holder_key_id: str | None, valid_from: datetime,
             valid_to: datetime, status: SealStatus, origin: str, actor: str, reason: str,
             maker_certificate: bytes | None = None, seal: bytes | None = None,
             clock: Callable[[], datetime] = utc_now) -> SealRecord:
    """Insert a seal row in its first status (for apply, and for import_seal in seal.making)."""
    es_id = check_es_id(es_id)
    if session.execute(select(seal_registry.c.es_id).where(seal_registry.c.es_id == es_id)).first():
        raise InvalidInput(f"a seal with esID {es_id} is registered already", f"电子印章标识 {es_id} 已登记")
    if not isinstance(picture, Picture):
        raise InvalidInput("the seal picture must be validated first (seal.picture)", "印章图像须先经校验")
    if not isinstance(holder_certificate, (bytes, bytearray)) or not holder_certificate:
        raise InvalidInput("the holder's signing certificate is required (DER)", "需要印章持有者的签名证书（DER）")
    valid_from, valid_to = _period(valid_from, valid_to)
    now = clock()
    values = dict(
        es_id=es_id, holder_name=_text(holder_name, "holder name", "持有单位名称", MAX_NAME),
        holder_uscc=validate_uscc(holder_uscc), seal_type=_seal_type(seal_type).value,
        name=_text(name, "seal name", "印章名称", MAX_NAME), picture_type=picture.type, picture=picture.data,
        picture_width_mm=picture.width_mm, picture_height_mm=picture.height_mm,
        holder_certificate=bytes(holder_certificate), holder_key_id=holder_key_id,
        maker_certificate=maker_certificate, seal_der=seal, valid_from=valid_from, valid_to=valid_to,
        status=SealStatus(status).value, origin=origin, created_at=now, status_changed_at=now)
    session.execute(insert(seal_registry).values(**values))
    _history(session, es_id, None, status, now, actor, reason)
    audit.append(session, actor, "seal.register", es_id, {
        "status": str(status), "origin": origin, "holder": values["holder_uscc"], "type": values["seal_type"],
        "name": values["name"], "reason": reason})
    return get_seal(session, es_id)


def apply(session: Session, *, holder_name: str, holder_uscc: str, seal_type, name: str, picture: Picture,
          holder_certificate: bytes, holder_key_id: str | None, valid_from: datetime, valid_to: datetime,
          actor: str, reason: str = "", clock: Callable[[], datetime] = utc_now) -> SealRecord:
    """An application for a new seal (申请): everything the seal will hold but the maker's
    signature. ``picture`` is a seal.picture.Picture."""
    uscc = validate_uscc(holder_uscc)
    kind = _seal_type(seal_type)
    for _ in range(8):  # a random serial: collisions are rare, and retried
        es_id = new_es_id(uscc, kind, clock().year)
        if not session.execute(select(seal_registry.c.es_id).where(seal_registry.c.es_id == es_id)).first():
            break
    return register(session, es_id=es_id, holder_name=holder_name, holder_uscc=uscc, seal_type=kind, name=name,
                    picture=picture, holder_certificate=holder_certificate, holder_key_id=holder_key_id,
                    valid_from=valid_from, valid_to=valid_to, status=SealStatus.APPLIED, origin="made",
                    actor=actor, reason=reason or "application", clock=clock)


def transition(session: Session, es_id: str, to, *, actor: str, reason: str = "",
               clock: Callable[[], datetime] = utc_now, **values) -> SealRecord:
    """Move a seal to status ``to``; an illegal move raises IllegalTransition. ``values``
    are further columns to set in the same update (seal.making sets the made seal)."""
    to = _status(to)
    reason = "" if reason is None else str(reason)[:MAX_REASON]
    row = _row(session, es_id, for_update=True)
    current = SealStatus(row.status)
    if to not in TRANSITIONS[current]:
        raise IllegalTransition(f"seal {es_id} cannot go from {current} to {to}",
                                f"印章 {es_id} 不能从“{current.zh}”变为“{to.zh}”")
    now = clock()
    session.execute(update(seal_registry).where(seal_registry.c.es_id == row.es_id)
                    .values(status=to.value, status_changed_at=now, **values))
    _history(session, row.es_id, current, to, now, actor, reason)
    audit.append(session, actor, "seal.status", row.es_id, {"from": str(current), "to": str(to), "reason": reason})
    return get_seal(session, row.es_id)


def approve(session: Session, es_id: str, *, actor: str, reason: str = "",
            clock: Callable[[], datetime] = utc_now) -> SealRecord:
    """Approve an application (审批); whoever applied for the seal may not approve it."""
    history_of = seal_status_history.c
    applicant = session.execute(select(history_of.actor).where(
        (history_of.es_id == check_es_id(es_id)) & (history_of.to_status == SealStatus.APPLIED.value))
        .order_by(history_of.id)).scalar()
    if applicant is not None and applicant == actor:
        error = PermissionDenied(f"{actor} applied for seal {es_id} and cannot also approve it",
                                 f"{actor} 是印章 {es_id} 的申请人，不能同时审批")
        audit.append(session, actor, "seal.refuse", es_id, {"code": error.code, "reason": error.en})
        raise error
    return transition(session, es_id, SealStatus.APPROVED, actor=actor, reason=reason or "approved", clock=clock)


_REVOCABLE = frozenset(s for s, targets in TRANSITIONS.items() if SealStatus.REVOKED in targets)


def revoke_many(session: Session, *, holder_uscc: str | None = None, es_ids: Sequence[str] | None = None,
                actor: str, reason: str, clock: Callable[[], datetime] = utc_now) -> list[str]:
    """Revoke every revocable seal of a holder, or the seals listed (all must exist; those
    already revoked, expired or destroyed are left as they are). Returns the esIDs revoked."""
    if (holder_uscc is None) == (es_ids is None):
        raise InvalidInput("give either a holder's USCC or a list of esIDs", "请给出持有单位的统一社会信用代码或印章标识列表，二选一")
    if holder_uscc is not None:
        query = select(seal_registry.c.es_id, seal_registry.c.status).where(
            seal_registry.c.holder_uscc == validate_uscc(holder_uscc))
        rows = session.execute(query.order_by(seal_registry.c.es_id)).all()
    else:
        wanted = list(dict.fromkeys(check_es_id(e) for e in es_ids or ()))
        if not 0 < len(wanted) <= MAX_LIST:
            raise InvalidInput(f"list 1 to {MAX_LIST} seals", f"请列出 1 至 {MAX_LIST} 枚印章")
        rows = session.execute(select(seal_registry.c.es_id, seal_registry.c.status)
                               .where(seal_registry.c.es_id.in_(wanted)).order_by(seal_registry.c.es_id)).all()
        missing = sorted(set(wanted) - {r.es_id for r in rows})
        if missing:
            raise NotFound(f"no seal with esID {', '.join(missing[:10])}", f"找不到印章：{'、'.join(missing[:10])}")
    revoked = [r.es_id for r in rows if SealStatus(r.status) in _REVOCABLE]
    for es_id in revoked:
        transition(session, es_id, SealStatus.REVOKED, actor=actor, reason=reason, clock=clock)
    audit.append(session, actor, "seal.revoke-many", holder_uscc or "list",
                 {"count": len(revoked), "es_ids": revoked[:MAX_LIST], "reason": str(reason)[:MAX_REASON]})
    return revoked


def expire_due(session: Session, *, actor: str, clock: Callable[[], datetime] = utc_now) -> list[str]:
    """Mark expired every active or suspended seal whose validity period has ended (run from
    cron; signing checks the period itself, so this only makes the registry say so).
    Returns the esIDs expired. Does not commit."""
    now = clock()
    due = session.execute(select(seal_registry.c.es_id).where(
        seal_registry.c.status.in_([SealStatus.ACTIVE.value, SealStatus.SUSPENDED.value])
        & (seal_registry.c.valid_to < now)).order_by(seal_registry.c.es_id)).scalars().all()
    for es_id in due:
        transition(session, es_id, SealStatus.EXPIRED, actor=actor, reason="validity period ended", clock=clock)
    return list(due)


# ---------------------------------------------------------------- use authorisation

def authorise(session: Session, es_id: str, *, client_ids: Iterable[str] | None = None,
              operators: Iterable[str] | None = None, actor: str = "service") -> SealRecord:
    """Set who may use the seal: each list given replaces the one kept (None leaves it)."""
    row = _row(session, es_id, for_update=True)
    changes = {}
    for kind, values, what, what_zh in (("client", client_ids, "client id", "客户端标识"),
                                        ("operator", operators, "operator", "操作员")):
        if values is None:
            continue
        principals = _principals(values, what, what_zh)
        session.execute(delete(seal_authorisation).where(
            (seal_authorisation.c.es_id == row.es_id) & (seal_authorisation.c.kind == kind)))
        if principals:
            session.execute(insert(seal_authorisation), [
                {"es_id": row.es_id, "kind": kind, "principal": p} for p in principals])
        changes[kind + "s"] = list(principals)
    audit.append(session, actor, "seal.authorise", row.es_id, changes)
    return get_seal(session, row.es_id)


def check_use(session: Session, es_id: str, *, client_id: str, operator: str | None = None,
              purpose: str | None = None, clock: Callable[[], datetime] = utc_now) -> SealRecord:
    """The seal, if ``client_id`` (and ``operator``) may sign with it now; else the refusal
    is written to the audit log with the purpose given (in the caller's transaction: commit
    it) and raised."""
    record = get_seal(session, es_id)
    now = clock()
    error = None
    if client_id not in record.client_ids:
        error = PermissionDenied(f"client {client_id!r} is not authorised to use seal {record.es_id}",
                                 f"客户端 {client_id!r} 未获授权使用印章 {record.es_id}")
    elif record.operators and operator not in record.operators:
        error = PermissionDenied(f"operator {operator!r} is not authorised to use seal {record.es_id}",
                                 f"操作员 {operator!r} 未获授权使用印章 {record.es_id}")
    elif record.status != SealStatus.ACTIVE:
        error = SealNotActive(f"seal {record.es_id} is {record.status}, not active: it cannot sign",
                              f"印章 {record.es_id} 处于“{record.status.zh}”状态，不能用章")
    elif not record.valid_from <= now <= record.valid_to:
        error = SealNotActive(f"seal {record.es_id} is valid from {_iso(record.valid_from)} to "
                              f"{_iso(record.valid_to)}, not now", f"印章 {record.es_id} 不在有效期内")
    elif record.holder_key_id is None or record.seal is None:
        error = SealNotActive(f"seal {record.es_id} has no signing key here (imported for verification only)",
                              f"印章 {record.es_id} 在本系统没有签章密钥（仅供验证）")
    if error is not None:
        audit.append(session, f"client:{client_id}", "seal.refuse", record.es_id,
                     {"operator": operator, "purpose": purpose, "code": error.code, "reason": error.en})
        raise error
    return record


# ---------------------------------------------------------------- for verification

def status_lookup(session: Session) -> Callable[[str, bytes], RegistryStatus | None]:
    """For seal.verify's ``seal_status``: the status of a seal if our registry holds that
    very seal (same esID and the same bytes), else None."""
    def lookup(es_id: str, seal_der: bytes) -> RegistryStatus | None:
        try:
            row = session.execute(select(seal_registry.c.seal_der, seal_registry.c.status,
                                         seal_registry.c.status_changed_at)
                                  .where(seal_registry.c.es_id == check_es_id(es_id))).one_or_none()
        except InvalidInput:
            return None
        if row is None or row.seal_der is None or bytes(row.seal_der) != seal_der:
            return None
        return RegistryStatus(SealStatus(row.status), as_utc(row.status_changed_at))
    return lookup
