"""Requests for a licence's 有条件 fields answered by the issuing department: the second way
(beside the holder's consent) such fields are released to a consumer (licence/sharing.py).

A registered consumer asks for one licence (every version of it), for one of its purposes,
with its reason and the period it needs; the request waits as pending, its age shown, until
an officer of the issuing department approves it (until the end of the period asked) or
refuses it, each with their words. A consumer asking again while a request of the same
licence and purpose is pending or approved gets that request back, not a second one.

Who answers: on the API, an officer holding the licence role whose department is the
issuer's name as registered (licence_issuer.issuer_name); on the command line, an officer
signing with their credential, like every other licence act there. Requests, approvals and
refusals are in the audit log with the caller, the operator, the purpose and the reason.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.orm import Session

from licence.catalogue import Sharing
from licence.models import licence_issuer, licence_request
from licence.sharing import check_use, find_licence, operator_of, purpose_of
from licence.types import get as get_type
from trust import audit
from trust.clock import as_utc, iso_z, utc_now
from trust.errors import InvalidInput, NotFound, PermissionDenied

MAX_REASON = 500          # characters
MAX_ANSWER = 500
MAX_DAYS = 366
DEFAULT_DAYS = 30


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


@dataclass(frozen=True)
class ShareRequest:
    id: str
    client_id: str
    purpose: str
    operator: str | None
    reason: str
    days: int
    licence_id: str
    holder_code: str
    type_code: str
    issuer_code: str
    status: RequestStatus
    requested_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    answer: str | None
    until: datetime | None

    def active(self, now: datetime) -> bool:
        return self.status == RequestStatus.APPROVED and self.until is not None and now < self.until

    def to_dict(self, now: datetime) -> dict:
        """As a consumer or an officer sees it; a pending request with its age in seconds."""
        answered = {"answered_at": iso_z(self.answered_at), "answered_by": self.answered_by, "answer": self.answer,
                    "until": iso_z(self.until) if self.until else None} if self.answered_at else {}
        return {"id": self.id, "client_id": self.client_id, "purpose": self.purpose, "operator": self.operator,
                "reason": self.reason, "days": self.days, "licence_id": self.licence_id,
                "holder_code": self.holder_code, "type_code": self.type_code, "issuer_code": self.issuer_code,
                "status": self.status.value, "requested_at": iso_z(self.requested_at), **answered,
                **({"age_seconds": int((now - self.requested_at).total_seconds())}
                   if self.status == RequestStatus.PENDING else {"active": self.active(now)})}


def _request(row) -> ShareRequest:
    return ShareRequest(row.id, row.client_id, row.purpose, row.operator, row.reason, row.days, row.licence_id,
                        row.holder_code, row.type_code, row.issuer_code, RequestStatus(row.status),
                        as_utc(row.requested_at), as_utc(row.answered_at), row.answered_by, row.answer,
                        as_utc(row.until))


def _words(value, limit: int, *, en: str, zh: str) -> str:
    if not isinstance(value, str) or not 2 <= len(value.strip()) <= limit or not value.strip().isprintable():
        raise InvalidInput(en=f"{en}: 2 to {limit} printable characters", zh=f"{zh}须为 2 至 {limit} 个可打印字符")
    return value.strip()


def submit(session: Session, client_id: str, body, *, clock: Callable[[], datetime] = utc_now) -> ShareRequest:
    """A consumer's request for the 有条件 fields of a licence (``licence_id``, or
    ``holder_code`` and ``type_code``) for ``purpose``, with ``reason``, ``days`` (1 to 366,
    default 30) and ``operator``?. Audited. Does not commit."""
    if not isinstance(body, dict) or set(body) - {"licence_id", "holder_code", "type_code", "purpose", "operator",
                                                  "reason", "days"}:
        raise InvalidInput(en="a request gives licence_id (or holder_code and type_code), purpose, reason, days and "
                              "operator",
                           zh="申请应包含 licence_id（或 holder_code 与 type_code）、purpose、reason、days 与 operator")
    purpose, operator = purpose_of(body.get("purpose")), operator_of(body)
    reason = _words(body.get("reason"), MAX_REASON, en="the reason the fields are needed", zh="申请事由")
    days = body.get("days", DEFAULT_DAYS)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(en=f"'days' is a whole number from 1 to {MAX_DAYS}", zh=f"“days”须为 1 至 {MAX_DAYS} 的整数")
    record = find_licence(session, body)
    type_code = record.record["type_code"]
    check_use(session, client_id, type_code, purpose)
    licence_type = get_type(session, type_code, record.record["type_version"]).licence_type
    if not any(f.sharing == Sharing.CONDITIONAL for f in licence_type.fields):
        raise InvalidInput(en="this licence type has no conditionally shared field to ask for",
                           zh="该类证照没有有条件共享的字段，无须申请")
    now, base = clock(), record.id.base
    for standing in _of(session, licence_request.c.base == base, licence_request.c.client_id == client_id,
                        licence_request.c.purpose == purpose):
        if standing.status == RequestStatus.PENDING or standing.active(now):
            return standing
    request_id = str(uuid.uuid4())
    session.execute(insert(licence_request).values(
        id=request_id, client_id=client_id, purpose=purpose, operator=operator, reason=reason, days=days,
        licence_id=record.licence_id, base=base, holder_code=record.record["holder"]["code"], type_code=type_code,
        issuer_code=record.record["issuer"]["code"], status=RequestStatus.PENDING.value, requested_at=now))
    audit.append(session, f"client:{client_id}", "licence.request", record.licence_id, {
        "request": request_id, "purpose": purpose, "operator": operator, "reason": reason, "days": days})
    return get(session, request_id)


def _of(session: Session, *where, limit: int | None = None) -> list[ShareRequest]:
    query = select(licence_request).order_by(licence_request.c.requested_at, licence_request.c.id).limit(limit)
    for condition in where:
        query = query.where(condition)
    return [_request(r) for r in session.execute(query)]


def get(session: Session, request_id, *, client_id: str | None = None) -> ShareRequest:
    """One request; with ``client_id``, only that consumer's own."""
    found = _of(session, licence_request.c.id == str(request_id)[:36])
    if not found or (client_id is not None and found[0].client_id != client_id):
        raise NotFound(en="no such request", zh="没有这项申请")
    return found[0]


def listed(session: Session, *, issuer_codes=None, client_id: str | None = None, holder_codes=None,
           status: RequestStatus | None = None, limit: int = 200) -> list[ShareRequest]:
    """The queue, oldest first: of ``issuer_codes`` (every issuer when None), of one consumer
    (``client_id``), about the licences of ``holder_codes`` (what the holder's wallet shows),
    of ``status``."""
    where: list[ColumnElement[bool]] = []
    if holder_codes is not None:
        where.append(licence_request.c.holder_code.in_(list(holder_codes)))
    if issuer_codes is not None:
        where.append(licence_request.c.issuer_code.in_(list(issuer_codes)))
    if client_id is not None:
        where.append(licence_request.c.client_id == client_id)
    if status is not None:
        where.append(licence_request.c.status == RequestStatus(status).value)
    return _of(session, *where, limit=limit)


def issuers_of_department(session: Session, department: str | None) -> frozenset[str]:
    """The issuer codes registered under the name ``department`` (an officer's department)."""
    if not department:
        return frozenset()
    return frozenset(session.execute(select(licence_issuer.c.issuer_code)
                                     .where(licence_issuer.c.issuer_name == department)).scalars())


def answer(session: Session, request_id, *, approve: bool, words, actor: str, issuer_codes=None,
           clock: Callable[[], datetime] = utc_now) -> ShareRequest:
    """Approve (for the days asked, from now) or refuse a pending request, with the officer's
    ``words``; ``issuer_codes``: the issuers ``actor`` answers for (None: any). Audited.
    Does not commit."""
    found = get(session, request_id)
    if issuer_codes is not None and found.issuer_code not in set(issuer_codes):
        audit.append(session, actor, "licence.request.denied", found.id, {"reason": "not the issuing department"})
        raise PermissionDenied(en="only an officer of the issuing department answers this request",
                               zh="只有颁证部门的工作人员可以答复此申请")
    if found.status != RequestStatus.PENDING:
        raise InvalidInput(en=f"the request was {found.status.value} already", zh="该申请已答复")
    words = _words(words, MAX_ANSWER, en="the answer", zh="答复意见")
    now = clock()
    status = RequestStatus.APPROVED if approve else RequestStatus.REFUSED
    until = now + timedelta(days=found.days) if approve else None
    session.execute(update(licence_request).where(licence_request.c.id == found.id).values(
        status=status.value, answered_at=now, answered_by=actor, answer=words, until=until))
    audit.append(session, actor, "licence.request.approve" if approve else "licence.request.refuse", found.licence_id, {
        "request": found.id, "client_id": found.client_id, "purpose": found.purpose, "answer": words,
        **({"until": iso_z(until)} if until else {})})
    return get(session, found.id)
