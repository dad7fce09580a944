"""Dual control (双人控制): sensitive key operations run only after M of N officers agree.

An officer asks for an act (destroy a key, rotate the KEK, export a wrapped key, use a
root CA key, change this policy) by signing a request; the request names the action,
its target and parameters, and expires (24 h by default). Other officers approve or
reject it, each by signing the request's content with their own credential
(``hsm.officers``). The act runs, in the same transaction as the approval that completes
it, once ``threshold`` distinct officers stand behind it (2 by default):

- the requester is the first of them (the signed request is their consent); they cannot
  approve their own request as well, and an officer counts once however often they sign;
- one rejection, by any officer including the requester, ends the request;
- an expired request can no longer be approved or run;
- before running, every signature behind the request is checked again against the
  officers' public keys, so rows written into the database by hand do not count, nor do
  approvals of officers revoked meanwhile.

Every request, approval, rejection, refusal, expiry, execution and failure is appended to
the audit log. The threshold and lifetime are read when a decision is made; changing them
is itself the dual-control action ``policy.change``.
"""

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from hsm import officers
from hsm.keystore import APPROVED_ACTOR_PREFIX, KeyRef, KeyState, KeyStore, is_root_ca_key
from hsm.officers import Credential, PermissionDenied
from trust import audit
from trust.audit import canonical_json
from trust.clock import as_utc, utc_now
from trust.db import Base
from trust.duties import Duty
from trust.errors import InvalidInput, NotFound, TrustError
from trust.states import BilingualState

Clock = Callable[[], datetime]

DEFAULT_THRESHOLD = 2
DEFAULT_TTL = timedelta(hours=24)
MIN_TTL, MAX_TTL = timedelta(minutes=5), timedelta(days=30)


class ApprovalStatus(BilingualState):
    PENDING = "pending", "待批准", "pending"
    EXECUTED = "executed", "已执行", "executed"
    FAILED = "failed", "执行失败", "failed"
    REJECTED = "rejected", "已拒绝", "rejected"
    EXPIRED = "expired", "已过期", "expired"


PENDING, EXECUTED, FAILED, REJECTED, EXPIRED = ApprovalStatus  # the members by their short names
APPROVE, REJECT = "approve", "reject"


approval_policy = Table(
    "approval_policy", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("threshold", Integer, nullable=False),
    Column("ttl_seconds", Integer, nullable=False),
    CheckConstraint("id = 1", name="ck_approval_policy_one_row"),
)

approval_requests = Table(
    "approval_requests", Base.metadata,
    Column("id", String(32), primary_key=True),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("parameters", Text, nullable=False),  # canonical JSON
    Column("requester", String(64), ForeignKey("officers.id"), nullable=False),
    Column("signature", Text, nullable=False),  # the requester's, hex
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("closed_at", DateTime(timezone=True)),
    Column("result", Text),  # JSON, once executed
    Column("error", Text),  # once failed
)

approval_decisions = Table(
    "approval_decisions", Base.metadata,
    Column("request_id", String(32), ForeignKey("approval_requests.id"), primary_key=True),
    Column("officer_id", String(64), ForeignKey("officers.id"), primary_key=True),
    Column("decision", String(8), nullable=False),
    Column("reason", Text, nullable=False),
    Column("signature", Text, nullable=False),  # hex
    Column("at", DateTime(timezone=True), nullable=False),
)


class RequestClosed(TrustError):
    """The approval request can no longer be decided: it expired, ran, failed or was rejected."""

    code = "request_closed"


@dataclass(frozen=True)
class Policy:
    threshold: int
    ttl: timedelta


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    action: str
    target: str
    parameters: dict
    requester: str
    created_at: datetime
    expires_at: datetime
    status: ApprovalStatus
    approvals: tuple[str, ...]  # as recorded: the requester first, then approvers in order
    threshold: int
    still_needed: int  # officers whose verified approval is still missing; 0 once closed
    rejected_by: str | None = None
    reason: str = ""
    result: dict | None = None
    error: str | None = None


@dataclass(frozen=True)
class Action:
    """A dual-control action: ``check`` refuses a bad request before anyone signs it;
    ``execute`` does the act and returns a JSON-able result kept with the request."""

    name: str
    zh: str
    en: str
    check: Callable[[Session, KeyStore, str, dict], None]
    execute: Callable[[Session, KeyStore, ApprovalRequest, str], dict] = field(repr=False)


ACTIONS: dict[str, Action] = {}


def register(action: Action) -> Action:
    ACTIONS[action.name] = action
    return action


# ---------------------------------------------------------------- the policy

def policy(session: Session) -> Policy:
    row = session.execute(select(approval_policy).where(approval_policy.c.id == 1)).one()
    return Policy(row.threshold, timedelta(seconds=row.ttl_seconds))


def check_policy(session: Session, threshold: int, ttl: timedelta) -> None:
    active = officers.count_active(session)
    if not 2 <= threshold <= active:
        raise InvalidInput(
            f"the threshold must be at least 2 and at most the {active} active officers, not {threshold}",
            f"批准人数须不少于 2 且不超过在职安全员人数 {active}，而不是 {threshold}")
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidInput(f"a request's lifetime must lie between {MIN_TTL} and {MAX_TTL}",
                           f"申请有效期须在 {MIN_TTL} 与 {MAX_TTL} 之间")


# ---------------------------------------------------------------- requests and decisions

def request(session: Session, keystore: KeyStore, action: str, target: str, parameters: dict,
            *, credential: Credential, clock: Clock = utc_now) -> ApprovalRequest:
    """Open a request signed by ``credential``'s officer. Does not commit.

    Raises PermissionDenied (with the refusal already in the session's audit log: commit
    it) for a credential that is not an active officer's.
    """
    known = _action(action)
    parameters = json.loads(canonical_json(parameters))
    now = _now(clock)
    current = policy(session)
    request_id = secrets.token_hex(16)
    expires_at = now + current.ttl
    signed = _request_statement(request_id, action, target, parameters, expires_at)
    proof = credential.prove(signed)
    requester = officers.authenticate(session, signed, proof, act="approval.request", clock=clock)
    active = officers.count_active(session)
    if active < current.threshold:
        raise InvalidInput(
            f"the policy needs {current.threshold} officers but only {active} are active",
            f"审批策略需要 {current.threshold} 名安全员，但在职的只有 {active} 名")
    known.check(session, keystore, target, parameters)
    session.execute(insert(approval_requests).values(
        id=request_id, action=action, target=target, parameters=canonical_json(parameters),
        requester=requester.id, signature=proof.signature.hex(),
        created_at=now, expires_at=expires_at, status=PENDING))
    audit.append(session, requester.id, "approval.request", _audit_target(request_id),
                 {"action": action, "target": target, "parameters": parameters,
                  "expires_at": _iso(expires_at), "threshold": current.threshold}, clock=clock)
    return get(session, request_id, clock=clock)


def approve(session: Session, keystore: KeyStore, request_id: str, *, credential: Credential,
            clock: Clock = utc_now) -> ApprovalRequest:
    """Add the credential's officer to the request; run it if that completes the threshold.

    Does not commit. A refusal (PermissionDenied, RequestClosed) leaves only its audit
    record (and an expiry) in the session: commit it. If the act itself fails, the
    request is closed as failed and returned with ``error`` set.
    """
    row = _open_row(session, request_id, clock)
    signed = _decision_statement(row, APPROVE, "")
    proof = credential.prove(signed)
    officer = officers.authenticate(session, signed, proof, act="approval.approve", clock=clock)
    target = _audit_target(request_id)
    if officer.id == row.requester:
        raise officers.deny(session, officer.id, target, PermissionDenied(
            "the requester cannot approve their own request; another officer must",
            "申请人不能批准自己的申请，须由其他安全员批准"), clock)
    if _decision_of(session, request_id, officer.id) is not None:
        raise officers.deny(session, officer.id, target, PermissionDenied(
            "you have already decided on this request; an officer counts once",
            "您已对此申请作出决定，每名安全员只计一次"), clock)
    now = _now(clock)
    session.execute(insert(approval_decisions).values(
        request_id=request_id, officer_id=officer.id, decision=APPROVE, reason="",
        signature=proof.signature.hex(), at=now))
    current = policy(session)
    agreed = _verified_approvals(session, row)
    audit.append(session, officer.id, "approval.approve", target,
                 {"approvals": len(agreed), "threshold": current.threshold}, clock=clock)
    if len(agreed) >= current.threshold:
        _execute(session, keystore, get(session, request_id, clock=clock), agreed, clock)
    return get(session, request_id, clock=clock)


def reject(session: Session, request_id: str, *, credential: Credential, reason: str = "",
           clock: Clock = utc_now) -> ApprovalRequest:
    """End the request: any active officer may refuse it, the requester may withdraw it."""
    row = _open_row(session, request_id, clock)
    signed = _decision_statement(row, REJECT, reason)
    proof = credential.prove(signed)
    officer = officers.authenticate(session, signed, proof, act="approval.reject", clock=clock)
    now = _now(clock)
    session.execute(approval_decisions.delete().where(
        (approval_decisions.c.request_id == request_id) & (approval_decisions.c.officer_id == officer.id)))
    session.execute(insert(approval_decisions).values(
        request_id=request_id, officer_id=officer.id, decision=REJECT, reason=reason,
        signature=proof.signature.hex(), at=now))
    _close(session, request_id, REJECTED, now)
    audit.append(session, officer.id, "approval.reject", _audit_target(request_id),
                 {"reason": reason}, clock=clock)
    return get(session, request_id, clock=clock)


def get(session: Session, request_id: str, *, clock: Clock = utc_now) -> ApprovalRequest:
    row = session.execute(select(approval_requests).where(approval_requests.c.id == request_id)).one_or_none()
    if row is None:
        raise NotFound(f"no approval request {request_id}", f"没有审批申请 {request_id}")
    return _request(session, row, policy(session).threshold, _now(clock))


def list_requests(session: Session, *, pending_only: bool = True,
                  clock: Clock = utc_now) -> list[ApprovalRequest]:
    query = select(approval_requests).order_by(approval_requests.c.created_at, approval_requests.c.id)
    if pending_only:
        query = query.where(approval_requests.c.status == PENDING)
    threshold, now = policy(session).threshold, _now(clock)
    found = [_request(session, row, threshold, now) for row in session.execute(query).all()]
    return [r for r in found if r.status == PENDING] if pending_only else found


# ---------------------------------------------------------------- inside

def _action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise InvalidInput(f"no dual-control action {name!r}; known: {', '.join(sorted(ACTIONS))}",
                           f"没有双人控制操作 {name!r}") from None


def _open_row(session: Session, request_id: str, clock: Clock):
    """The request's row, locked, if it can still be decided; else RequestClosed."""
    row = session.execute(select(approval_requests).where(approval_requests.c.id == request_id)
                          .with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"no approval request {request_id}", f"没有审批申请 {request_id}")
    if row.status == PENDING and _now(clock) >= as_utc(row.expires_at):
        _close(session, request_id, EXPIRED, _now(clock))
        audit.append(session, "trustctl", "approval.expire", _audit_target(request_id),
                     {"expired_at": _iso(as_utc(row.expires_at))}, clock=clock)
        raise RequestClosed(f"request {request_id} expired at {_iso(as_utc(row.expires_at))}; ask again",
                            f"审批申请 {request_id} 已于 {_iso(as_utc(row.expires_at))} 过期，请重新申请")
    if row.status != PENDING:
        raise RequestClosed(f"request {request_id} is closed ({row.status})",
                            f"审批申请 {request_id} 已结束（{ApprovalStatus(row.status).zh}）")
    return row


def _execute(session: Session, keystore: KeyStore, req: ApprovalRequest, agreed: list[str],
             clock: Clock) -> None:
    """Run the act in a savepoint: if it fails, its writes are undone but the approvals
    and the failure are kept, and the request is closed as failed."""
    actor = _audit_target(req.id)
    savepoint = session.begin_nested()
    try:
        result = ACTIONS[req.action].execute(session, keystore, req, actor)
        savepoint.commit()
    except TrustError as e:
        savepoint.rollback()
        _close(session, req.id, FAILED, _now(clock), error=f"{e.zh} / {e.en}")
        audit.append(session, actor, "approval.fail", f"{req.action}:{req.target}",
                     {"officers": agreed, "error": e.en, "code": e.code}, clock=clock)
        return
    _close(session, req.id, EXECUTED, _now(clock), result=result)
    audit.append(session, actor, "approval.execute", f"{req.action}:{req.target}",
                 {"officers": agreed}, clock=clock)


def _close(session: Session, request_id: str, status: str, now: datetime, *, result: dict | None = None,
           error: str | None = None) -> None:
    session.execute(update(approval_requests).where(approval_requests.c.id == request_id).values(
        status=status, closed_at=now, error=error,
        result=None if result is None else canonical_json(result)))


def _verified_approvals(session: Session, row) -> list[str]:
    """The active officers whose signatures behind this request still verify, requester
    first. Anything that does not verify is left out, so it cannot count."""
    parameters = json.loads(row.parameters)
    agreed = []
    requester = _active_officer(session, row.requester)
    signed = _request_statement(row.id, row.action, row.target, parameters, as_utc(row.expires_at))
    if requester and requester.verify(signed, row.signature):
        agreed.append(requester.id)
    decisions = session.execute(select(approval_decisions).where(
        (approval_decisions.c.request_id == row.id) & (approval_decisions.c.decision == APPROVE))
        .order_by(approval_decisions.c.at, approval_decisions.c.officer_id)).all()
    for decision in decisions:
        officer = _active_officer(session, decision.officer_id)
        if (officer and officer.id not in agreed
                and officer.verify(_decision_statement(row, APPROVE, ""), decision.signature)):
            agreed.append(officer.id)
    return agreed


def _active_officer(session: Session, officer_id: str) -> officers.Officer | None:
    try:
        officer = officers.get(session, officer_id)
    except NotFound:
        return None
    return officer if officer.status == officers.ACTIVE and officer.duty == Duty.SECURITY else None


def _decision_of(session: Session, request_id: str, officer_id: str):
    return session.execute(select(approval_decisions).where(
        (approval_decisions.c.request_id == request_id)
        & (approval_decisions.c.officer_id == officer_id))).one_or_none()


def _request(session: Session, row, threshold: int, now: datetime) -> ApprovalRequest:
    decisions = session.execute(select(approval_decisions).where(approval_decisions.c.request_id == row.id)
                                .order_by(approval_decisions.c.at, approval_decisions.c.officer_id)).all()
    rejection = next((d for d in decisions if d.decision == REJECT), None)
    status = ApprovalStatus(row.status)
    if status == PENDING and now >= as_utc(row.expires_at):
        status = EXPIRED  # not yet recorded: the next attempt to decide records it
    approvals = (row.requester, *(d.officer_id for d in decisions if d.decision == APPROVE))
    # Only signatures that verify count towards the threshold.
    still_needed = max(0, threshold - len(_verified_approvals(session, row))) if status == PENDING else 0
    return ApprovalRequest(
        id=row.id, action=row.action, target=row.target, parameters=json.loads(row.parameters),
        requester=row.requester, created_at=as_utc(row.created_at), expires_at=as_utc(row.expires_at),
        status=status,
        approvals=approvals, threshold=threshold,
        still_needed=still_needed, rejected_by=rejection.officer_id if rejection else None,
        reason=rejection.reason if rejection else "",
        result=None if row.result is None else json.loads(row.result), error=row.error)


def _request_statement(request_id: str, action: str, target: str, parameters: dict,
                       expires_at: datetime) -> bytes:
    return officers.statement(decision="request", request=request_id, action=action, target=target,
                              parameters=parameters, expires_at=_iso(expires_at))


def _decision_statement(row, decision: str, reason: str) -> bytes:
    return officers.statement(decision=decision, request=row.id, action=row.action, target=row.target,
                              parameters=json.loads(row.parameters), reason=reason)


def _audit_target(request_id: str) -> str:
    return f"{APPROVED_ACTOR_PREFIX}{request_id}"


def _now(clock: Clock) -> datetime:
    """Whole seconds in UTC: the same instant reads back alike from SQLite and PostgreSQL."""
    now = clock()
    if now.tzinfo is None:
        raise InvalidInput("the clock must give a timezone-aware time", "时钟必须给出带时区的时间")
    return now.astimezone(UTC).replace(microsecond=0)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- the actions

def _live_key(session: Session, keystore: KeyStore, key_id: str) -> KeyRef:
    ref = keystore.get(session, key_id)
    if ref.state == KeyState.DESTROYED:
        raise InvalidInput(f"key {key_id} is already destroyed", f"密钥 {key_id} 已销毁")
    return ref


def _no_parameters(parameters: dict) -> None:
    if parameters:
        raise InvalidInput("this action takes no parameters", "此操作不接受参数")


def _check_key(session, keystore, target, parameters):
    _no_parameters(parameters)
    _live_key(session, keystore, target)


def _destroy_key(session, keystore, req, actor):
    keystore.destroy(session, keystore.get(session, req.target), actor=actor)
    return {"state": "destroyed"}


def _check_kek(session, keystore, target, parameters):
    _no_parameters(parameters)
    if target != "kek":
        raise InvalidInput("the target of kek.rotate is 'kek'", "kek.rotate 的对象应为 kek")


def _rotate_kek(session, keystore, req, actor):
    return keystore.rotate_kek(session, actor=actor)


def _check_export(session, keystore, target, parameters):
    _no_parameters(parameters)
    if not _live_key(session, keystore, target).exportable:
        raise InvalidInput(f"key {target} was not generated exportable", f"密钥 {target} 生成时未设为可导出")


def _export_key(session, keystore, req, actor):
    wrapped = keystore.export_wrapped(session, keystore.get(session, req.target), actor=actor)
    return {"wrapped": json.loads(wrapped)}


def _policy_parameters(parameters: dict) -> tuple[int, timedelta]:
    threshold, ttl = parameters.get("threshold"), parameters.get("ttl_seconds")
    if (set(parameters) != {"threshold", "ttl_seconds"} or type(threshold) is not int
            or type(ttl) is not int):
        raise InvalidInput("policy.change takes integers 'threshold' and 'ttl_seconds'",
                           "policy.change 需要整数参数 threshold 与 ttl_seconds")
    return threshold, timedelta(seconds=ttl)


def _check_policy_change(session, keystore, target, parameters):
    if target != "policy":
        raise InvalidInput("the target of policy.change is 'policy'", "policy.change 的对象应为 policy")
    check_policy(session, *_policy_parameters(parameters))


def _change_policy(session, keystore, req, actor):
    threshold, ttl = _policy_parameters(req.parameters)
    check_policy(session, threshold, ttl)  # officers may have been revoked meanwhile
    session.execute(update(approval_policy).where(approval_policy.c.id == 1).values(
        threshold=threshold, ttl_seconds=int(ttl.total_seconds())))
    return {"threshold": threshold, "ttl_seconds": int(ttl.total_seconds())}


def _root_parameters(parameters: dict) -> tuple[bytes, str, bool]:
    data, usage, prehashed = (parameters.get(k) for k in ("data", "usage", "prehashed"))
    if (not set(parameters) <= {"data", "usage", "prehashed", "purpose"} or not isinstance(data, str)
            or not isinstance(usage, str) or type(prehashed) is not bool):
        raise InvalidInput("key.use-root takes 'data' (hex), 'usage', 'prehashed' and an optional 'purpose'",
                           "key.use-root 需要参数 data（十六进制）、usage、prehashed，可选 purpose")
    try:
        return bytes.fromhex(data), usage, prehashed
    except ValueError:
        raise InvalidInput("key.use-root: 'data' is not hex", "key.use-root：data 不是十六进制") from None


def _check_root_use(session, keystore, target, parameters):
    _root_parameters(parameters)
    if not is_root_ca_key(_live_key(session, keystore, target)):
        raise InvalidInput(f"key {target} is not a root CA key", f"密钥 {target} 不是根 CA 密钥")


def _use_root(session, keystore, req, actor):
    data, usage, prehashed = _root_parameters(req.parameters)
    signature = keystore.sign(session, keystore.get(session, req.target), data, usage=usage,
                              prehashed=prehashed, actor=actor)
    return {"signature": signature.hex()}


register(Action("key.destroy", "销毁密钥", "destroy a key", _check_key, _destroy_key))
register(Action("kek.rotate", "轮换密钥加密密钥", "rotate the key-encryption key", _check_kek, _rotate_kek))
register(Action("key.export", "导出封装的密钥", "export a wrapped key", _check_export, _export_key))
register(Action("policy.change", "修改审批策略", "change the approval policy", _check_policy_change,
                _change_policy))
register(Action("key.use-root", "使用根 CA 密钥签名", "sign with a root CA key", _check_root_use, _use_root))
