"""The audit log: append-only records, each chained to the one before it by SM3.

    hash = SM3(previous hash (32 bytes) ‖ canonical record), stored as hex

The canonical record is the UTF-8 JSON (sorted keys, no whitespace, not ASCII-escaped) of
``{seq, at, actor, action, target, detail}``, with ``at`` in ISO 8601 UTC with microseconds
and ``Z``. The first record's previous hash is 64 zeros. The one-row ``audit_head`` keeps
the last seq and hash, updated with every append, so deleting the last records is
detected too. Rewriting the tail together with the head can only be caught against an
anchor kept outside the database: record ``trustctl audit head`` elsewhere from time to time.

Records are kept forever and read by auditors: ``detail`` must never carry secrets
(private keys, PINs, passwords, tokens, master secrets), only what identifies the act.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    Row,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from trust import events
from trust.clock import as_utc, utc_now
from trust.db import Base
from trust.errors import AuditChainBroken, InvalidInput
from trust.hashes import sm3

ZERO_HASH = "0" * 64

audit_log = Table(
    "audit_log", Base.metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="ck_audit_head_one_row"),
)


# Signed checkpoints of the chain's head (hsm/checkpoints.py): the service's own SM2 key
# signs checkpoint_statement(seq, hash, at), so a chain cut short and its head moved back,
# or rewritten consistently from some record on, no longer matches what was signed.
audit_checkpoint = Table(
    "audit_checkpoint", Base.metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # the last record it covers
    Column("hash", String(64), nullable=False),                      # that record's hash
    Column("at", DateTime(timezone=True), nullable=False),           # when it was signed
    Column("key_id", String(36), nullable=False),                    # hsm_keys.id of the signing key
    Column("signature", Text, nullable=False),                       # base64 of the DER SM2 signature
)


def checkpoint_statement(seq: int, digest: str, at: datetime) -> bytes:
    """The bytes a checkpoint's signature covers (also what an exported anchor carries)."""
    return canonical_json({"type": "trust-audit-checkpoint/1", "seq": seq, "hash": digest,
                           "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}).encode()


# The minute and count of refusals being coalesced, per key (append_coalesced).
audit_coalesce = Table(
    "audit_coalesce", Base.metadata,
    Column("key", String(200), primary_key=True),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records_checked: int
    first_bad_seq: int | None
    problem: str | None  # "altered" | "deleted" | "reordered"
    zh: str
    en: str


def canonical_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"audit data is not plain JSON: {e}", f"审计数据不是合法的 JSON：{e}") from None


def canonical_record(seq: int, at: datetime, actor: str, action: str, target: str,
                     detail: Any) -> bytes:
    text = canonical_json({"seq": seq, "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                           "actor": actor, "action": action, "target": target, "detail": detail})
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("audit data holds a lone surrogate, which UTF-8 cannot encode",
                           "审计数据含有无法用 UTF-8 编码的字符") from None


def record_hash(prev_hash: str, canonical: bytes) -> str:
    try:
        prev = bytes.fromhex(prev_hash)
    except ValueError:
        raise InvalidInput(f"not a hex hash: {prev_hash!r}", f"不是十六进制杂凑值：{prev_hash!r}") from None
    return sm3(prev + canonical).hex()


# Built once: each append runs these three, and building a statement costs three times
# as much as running it (SQLAlchemy's coercion and cache key; #18).
_HEAD = select(audit_head).where(audit_head.c.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_INSERT_RECORD = insert(audit_log)
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1).values(last_seq=bindparam("seq"),
                                                                    last_hash=bindparam("digest"))


def append(session: Session, actor: str, action: str, target: str = "",
           detail: dict | None = None, clock: Callable[[], datetime] = utc_now) -> AuditRecord:
    """Add a record at the end of the chain, inside the caller's transaction.

    It does not commit: the caller commits it together with the change it records, so
    both are kept or neither is. The head row is locked (FOR UPDATE on PostgreSQL; on
    SQLite every transaction holds the write lock from BEGIN) so concurrent appends queue
    instead of forking the chain. ``detail`` must never carry secrets.
    """
    for name, value in (("actor", actor), ("action", action), ("target", target)):
        if not isinstance(value, str) or "\x00" in value:
            raise InvalidInput(f"audit {name} must be text without NUL", f"审计字段 {name} 必须是不含 NUL 的文本")
    detail_json = canonical_json({} if detail is None else detail)
    detail = json.loads(detail_json)
    at = clock()
    if at.tzinfo is None:
        raise InvalidInput("the clock must give a timezone-aware time", "时钟必须给出带时区的时间")
    at = at.astimezone(UTC)

    head = _head_row(session, for_update=True)
    seq = head.last_seq + 1
    digest = record_hash(head.last_hash, canonical_record(seq, at, actor, action, target, detail))
    session.execute(_INSERT_RECORD, {"seq": seq, "at": at, "actor": actor, "action": action, "target": target,
                                     "detail": detail_json, "prev_hash": head.last_hash, "hash": digest})
    session.execute(_MOVE_HEAD, {"seq": seq, "digest": digest})
    severity = events.severity_of(action)
    if severity is not None:
        events.note(session, events.Event(action, severity, actor, target, detail, at, seq))
    return AuditRecord(seq, at, actor, action, target, detail, head.last_hash, digest)


def append_coalesced(session: Session, actor: str, action: str, target: str, detail: dict, *, key: str,
                     clock: Callable[[], datetime] = utc_now) -> None:
    """For refusals anyone can cause without logging in: one record per ``key`` (kind,
    address, …) and minute, so nobody can grow the audit log at will. The first refusal of
    a minute is recorded as it is; the repeats are only counted, and the count is recorded
    (``<action>.repeated``, with the minute and how many) when the key next comes back in a
    later minute. Records are never changed: the count lives in ``audit_coalesce`` until
    then. Does not commit."""
    at = clock().astimezone(UTC)
    minute = at.replace(second=0, microsecond=0)
    key = key[:200]
    row = session.execute(select(audit_coalesce).where(audit_coalesce.c.key == key).with_for_update()).one_or_none()
    # the column named count: Row.count reads it at run time, but is typed as tuple.count
    seen = row._mapping["count"] if row is not None else 0
    if row is not None and as_utc(row.minute) == minute:
        session.execute(update(audit_coalesce).where(audit_coalesce.c.key == key).values(count=seen + 1))
        return
    if row is not None and seen > 1:
        append(session, actor, f"{action}.repeated", target,
               {"key": key, "minute": as_utc(row.minute).strftime("%Y-%m-%dT%H:%MZ"), "repeats": seen - 1},
               clock=clock)
    if row is None:
        session.execute(insert(audit_coalesce).values(key=key, minute=minute, count=1))
    else:
        session.execute(update(audit_coalesce).where(audit_coalesce.c.key == key).values(minute=minute, count=1))
    append(session, actor, action, target, detail, clock=clock)


def head(session: Session | Connection) -> ChainHead:
    """The last seq and hash: an anchor to record outside the database."""
    row = _head_row(session, for_update=False)
    return ChainHead(row.last_seq, row.last_hash)


def verify_chain(session: Session, batch_size: int = 1000) -> ChainReport:
    """Walk the whole log in seq order and report the first record that was altered,
    deleted or reordered. Rows are streamed, so memory stays bounded for any length.

    Called with no transaction begun, on PostgreSQL it reads the head and the records in
    one REPEATABLE READ snapshot, so appends committed meanwhile are not mistaken for
    tampering (SQLite transactions are serialised already).
    """
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    head_row = session.execute(select(audit_head).where(audit_head.c.id == 1)).one_or_none()
    expected_seq, expected_prev = 1, ZERO_HASH
    rows = session.execute(select(audit_log).order_by(audit_log.c.seq)
                           .execution_options(yield_per=batch_size))
    try:
        for row in rows:
            found = _first_problem(session, row, expected_seq, expected_prev)
            if found:
                return _broken(*found)
            expected_seq, expected_prev = row.seq + 1, row.hash
    finally:
        rows.close()

    last_seq = expected_seq - 1
    if head_row is None:
        return ChainReport(False, last_seq, None, "deleted", "审计链已断裂：链头记录被删除",
                           "audit chain broken: the head row was deleted")
    if head_row.last_seq > last_seq:  # the last records are gone
        return _broken(last_seq + 1, "deleted")
    if head_row.last_seq < last_seq:  # records were added behind the head's back
        return _broken(head_row.last_seq + 1, "altered")
    if head_row.last_hash != expected_prev:  # the last record was rewritten and rehashed
        return _broken(last_seq, "altered")
    return ChainReport(True, last_seq, None, None, f"审计链完整，共 {last_seq} 条记录",
                       f"audit chain intact: {last_seq} records")


def _first_problem(session: Session, row: Row, expected_seq: int,
                   expected_prev: str) -> tuple[int, str] | None:
    if row.seq > expected_seq:  # a gap in seq
        return expected_seq, "deleted"
    if row.seq < expected_seq:  # only a seq below 1 can come first
        return row.seq, "altered"
    if row.prev_hash != expected_prev:
        # It links to another record that still exists (or to the start): it was moved.
        if row.prev_hash == ZERO_HASH or _hash_exists(session, row.prev_hash):
            return row.seq, "reordered"
        # It is intact but links to a hash no record has now: the record before it was
        # rewritten and rehashed.
        if row.seq > 1 and _self_consistent(row):
            return row.seq - 1, "altered"
        return row.seq, "altered"
    if not _self_consistent(row):
        return row.seq, "altered"
    return None


def _self_consistent(row: Row) -> bool:
    try:
        canonical = canonical_record(row.seq, as_utc(row.at), row.actor, row.action, row.target,
                                     json.loads(row.detail))
        return record_hash(row.prev_hash, canonical) == row.hash
    except (InvalidInput, ValueError, TypeError):
        return False


def _hash_exists(session: Session, digest: str) -> bool:
    return session.execute(select(audit_log.c.seq).where(audit_log.c.hash == digest).limit(1)).first() is not None


def _head_row(session: Session | Connection, for_update: bool) -> Row:
    row = session.execute(_HEAD_FOR_UPDATE if for_update else _HEAD).one_or_none()
    if row is None:
        raise AuditChainBroken("the audit head row is missing; the log has been tampered with",
                               "审计链头记录缺失，审计日志已被篡改")
    return row


_PROBLEMS = {
    "altered": ("被篡改", "was altered"),
    "deleted": ("被删除", "was deleted"),
    "reordered": ("的位置被调换", "was moved out of its place"),
}


def _broken(seq: int, problem: str) -> ChainReport:
    """Everything before the first bad record checked out."""
    zh, en = _PROBLEMS[problem]
    return ChainReport(False, max(seq - 1, 0), seq, problem, f"审计链已断裂：第 {seq} 条记录{zh}",
                       f"audit chain broken: record {seq} {en}")
