"""Signed checkpoints of the audit chain (#19): the service's own SM2 key, kept in the
KeyStore under the label ``audit/checkpoint``, signs the chain's head (sequence number,
hash, time) every ``records`` records or ``seconds`` seconds, whichever comes first.

The chain alone (trust.audit.verify_chain) finds a record altered, deleted or moved, but
whoever can write the database can cut the newest records and move the stored head back
to match, or rewrite every record from some point on with consistent hashes. A checkpoint
made before that no longer matches: its sequence number lies beyond the chain's end, or
its hash is not the record's, and without the key nobody can sign a new one. An exported
checkpoint (``trustctl audit checkpoint --export``), kept on another system, covers even
the checkpoints being deleted too.

Findings (``Finding.kind``): ``deleted`` (a checkpoint names a record the chain no longer
has), ``rewritten`` (the record at a checkpoint has another hash), ``forged`` (a
checkpoint's signature does not verify: it was altered or not made here), ``gap`` (two
checkpoints further apart than the policy allows while records waited: checkpoints were
deleted, or the service could not make them), and ``overdue`` (records older than twice
the period without a checkpoint after them: a warning, as when no server has run since).
"""

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hsm.keystore import KeyState, KeyStore, Usage
from hsm.models import hsm_keys
from trust import audit
from trust.audit import audit_checkpoint, audit_log, checkpoint_statement
from trust.clock import as_utc, iso_z, utc_now
from trust.errors import InvalidInput, InvalidSignature, TrustError
from trust.keys import load_public_key
from trust.sm2 import SM2PublicKey

log = logging.getLogger(__name__)

LABEL = "audit/checkpoint"
ACTOR = "audit"
ALGORITHM = "SM2-with-SM3"


@dataclass(frozen=True)
class Policy:
    records: int = 1000      # TRUST_AUDIT_CHECKPOINT_RECORDS
    seconds: int = 60        # TRUST_AUDIT_CHECKPOINT_SECONDS

    @classmethod
    def from_env(cls, environ=None) -> "Policy":
        env = os.environ if environ is None else environ
        values = {}
        for field, name, default in (("records", "TRUST_AUDIT_CHECKPOINT_RECORDS", cls.records),
                                     ("seconds", "TRUST_AUDIT_CHECKPOINT_SECONDS", cls.seconds)):
            value = env.get(name, str(default)).strip()
            if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 10_000_000):
                raise InvalidInput(f"{name} is a whole number from 1, not {value[:20]!r}",
                                   f"{name} 须为不小于 1 的整数，而不是 {value[:20]!r}")
            values[field] = int(value)
        return cls(**values)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: bytes

    def statement(self) -> bytes:
        return checkpoint_statement(self.seq, self.hash, self.at)


class FindingKind(StrEnum):
    DELETED = "deleted"
    REWRITTEN = "rewritten"
    FORGED = "forged"
    GAP = "gap"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    seq: int
    zh: str
    en: str

    @property
    def fails(self) -> bool:
        return self.kind is not FindingKind.OVERDUE


def _checkpoint(row) -> Checkpoint:
    try:
        signature = base64.b64decode(row.signature, validate=True)
    except ValueError:
        signature = b""  # reported as forged by verify_checkpoints
    return Checkpoint(row.seq, row.hash, as_utc(row.at), row.key_id, signature)


def latest(session: Session) -> Checkpoint | None:
    row = session.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.seq.desc()).limit(1)).first()
    return _checkpoint(row) if row else None


def signing_key(session: Session, keystore: KeyStore):
    active = [ref for ref in keystore.list(session, label=LABEL) if ref.state == KeyState.ACTIVE]
    if active:
        return active[-1]
    return keystore.generate(session, ALGORITHM, LABEL, [Usage.AUDIT], actor=ACTOR)


def make_checkpoint(session: Session, keystore: KeyStore, *, clock: Callable[[], datetime] = utc_now) \
        -> Checkpoint | None:
    """Sign the chain's head as it is in this transaction; None when the head is checkpointed
    already (or the log is empty). The caller commits. Signing is itself a key use, audited
    after the head it signs: the next checkpoint covers that record."""
    head = audit.head(session)
    last = latest(session)
    if head.seq == 0 or (last is not None and last.seq >= head.seq):
        return None
    ref = signing_key(session, keystore)
    at = clock()
    signature = keystore.sign(session, ref, checkpoint_statement(head.seq, head.hash, at), usage=Usage.AUDIT,
                              actor=ACTOR)
    session.execute(insert(audit_checkpoint).values(seq=head.seq, hash=head.hash, at=at, key_id=ref.id,
                                                    signature=base64.b64encode(signature).decode()))
    return Checkpoint(head.seq, head.hash, at, ref.id, signature)


# A checkpoint's own key use (and its key's making) is audited after the head it signs; it
# does not call for another checkpoint, or an idle service would sign one every period.
_OWN_RECORDS = (audit_log.c.actor == ACTOR) & audit_log.c.action.in_(("key.sign", "key.generate"))


def due(session: Session, policy: Policy, *, now: datetime) -> bool:
    """Whether records wait for a checkpoint: ``policy.records`` of them, or the oldest for
    ``policy.seconds``."""
    last = latest(session)
    after = last.seq if last else 0
    waiting = session.execute(select(func.count(), func.min(audit_log.c.at)).where(
        audit_log.c.seq > after, ~_OWN_RECORDS)).one()
    if not waiting[0]:
        return False
    return waiting[0] >= policy.records or now - as_utc(waiting[1]) >= timedelta(seconds=policy.seconds)


def checkpoint_if_due(session: Session, keystore: KeyStore, policy: Policy, *,
                      clock: Callable[[], datetime] = utc_now) -> Checkpoint | None:
    return make_checkpoint(session, keystore, clock=clock) if due(session, policy, now=clock()) else None


class Checkpointer:
    """Makes the checkpoints that fall due, from a serving process: ``after_request`` looks
    at most every sixth of the period (a look is two short queries), in the thread of the
    request it follows, once that request is answered and committed. Several processes
    may look at once: the checkpoint's sequence number is its key, so one of them makes it.
    A failure is logged and never reaches the request."""

    def __init__(self, sessions: sessionmaker, keystore: KeyStore, policy: Policy):
        self.sessions, self.keystore, self.policy = sessions, keystore, policy
        self._lock = threading.Lock()
        self._next_look = 0.0

    def after_request(self, response):
        now = time.monotonic()
        if now >= self._next_look and self._lock.acquire(blocking=False):
            try:
                self._next_look = now + max(1.0, self.policy.seconds / 6)
                self.look()
            finally:
                self._lock.release()
        return response

    def look(self) -> Checkpoint | None:
        try:
            with self.sessions() as session:
                made = checkpoint_if_due(session, self.keystore, self.policy)
                session.commit()
                return made
        except IntegrityError:
            return None  # another process made this one
        except (TrustError, SQLAlchemyError) as error:
            log.warning("audit checkpoint not made: %s", error)
            return None


def verify_checkpoints(session: Session, policy: Policy, *, now: datetime | None = None) -> list[Finding]:
    """Every checkpoint against the chain as it is now, and the time between them."""
    now = now or utc_now()
    findings: list[Finding] = []
    keys: dict[str, object] = {}
    end = session.execute(select(func.max(audit_log.c.seq))).scalar() or 0
    previous = None
    for row in session.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.seq)).all():
        checkpoint = _checkpoint(row)
        findings += _check_one(session, checkpoint, end, keys)
        if previous is not None:
            findings += _gap(session, previous, checkpoint, policy)
        previous = checkpoint
    findings += _overdue(session, previous, policy, now)
    return findings


def _check_one(session: Session, checkpoint: Checkpoint, end: int, keys: dict) -> list[Finding]:
    found = []
    if checkpoint.key_id not in keys:
        row = session.execute(select(hsm_keys.c.public_key, hsm_keys.c.label).where(
            hsm_keys.c.id == checkpoint.key_id)).first()
        keys[checkpoint.key_id] = load_public_key(row.public_key) if row is not None and row.label == LABEL else None
    key = keys[checkpoint.key_id]
    try:
        if key is None:
            raise InvalidSignature("no checkpoint key", "无检查点密钥")
        key.verify(checkpoint.signature, checkpoint.statement())
    except TrustError:
        found.append(Finding(FindingKind.FORGED, checkpoint.seq,
                             f"序号 {checkpoint.seq} 处的检查点签名无效（被改动或非本服务所签）",
                             f"the checkpoint at seq {checkpoint.seq} has no valid signature of this service's "
                             "checkpoint key (altered or forged)"))
    return found + _against_chain(session, checkpoint.seq, checkpoint.hash, end)


def _against_chain(session: Session, seq: int, digest: str, end: int) -> list[Finding]:
    record = session.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).first()
    if record is None:
        where = (f"审计链止于 {end}", f"the chain now ends at {end}") if seq > end else \
            ("该记录已不存在", "that record is gone")
        return [Finding(FindingKind.DELETED, seq, f"检查点覆盖到序号 {seq}，但{where[0]}：记录被删除",
                        f"a checkpoint covers records up to seq {seq}, but {where[1]}: records were deleted")]
    if record.hash != digest:
        return [Finding(FindingKind.REWRITTEN, seq, f"序号 {seq} 的记录与检查点所签的杂凑值不同：审计链被重写",
                        f"the record at seq {seq} no longer has the hash its checkpoint signed: "
                        "the chain was rewritten")]
    return []


def _gap(session: Session, previous: Checkpoint, checkpoint: Checkpoint, policy: Policy) -> list[Finding]:
    """Records after ``previous`` that waited longer than twice the period for ``checkpoint``."""
    first = session.execute(select(audit_log.c.seq, audit_log.c.at).where(
        audit_log.c.seq > previous.seq, audit_log.c.seq <= checkpoint.seq, ~_OWN_RECORDS)
        .order_by(audit_log.c.seq).limit(1)).first()
    if first is None:
        return []
    waited = checkpoint.at - max(as_utc(first.at), previous.at)  # none waits from before the previous one
    if waited <= timedelta(seconds=2 * policy.seconds):
        return []
    return [Finding(FindingKind.GAP, first.seq,
                    f"序号 {first.seq} 起的记录等了 {int(waited.total_seconds())} 秒才有检查点"
                    f"（应每 {policy.seconds} 秒一个）：检查点被删除，或服务未能签出",
                    f"records from seq {first.seq} waited {int(waited.total_seconds())} s for a checkpoint "
                    f"(one is due every {policy.seconds} s): checkpoints were deleted, or could not be made")]


def _overdue(session: Session, last: Checkpoint | None, policy: Policy, now: datetime) -> list[Finding]:
    after = last.seq if last else 0
    first = session.execute(select(audit_log.c.seq, audit_log.c.at).where(audit_log.c.seq > after, ~_OWN_RECORDS)
                            .order_by(audit_log.c.seq).limit(1)).first()
    if first is None:
        return []
    since = max(as_utc(first.at), last.at) if last is not None else as_utc(first.at)
    if now - since <= timedelta(seconds=2 * policy.seconds):
        return []
    return [Finding(FindingKind.OVERDUE, first.seq,
                    f"序号 {first.seq} 起的记录尚无检查点（已超过 {2 * policy.seconds} 秒）：服务是否在运行？",
                    f"records from seq {first.seq} have had no checkpoint for over {2 * policy.seconds} s: "
                    "is the service running?")]


def export(session: Session, keystore: KeyStore) -> dict:
    """The latest checkpoint with the public key that verifies it, to keep elsewhere. The
    signed statement is authoritative; ``seq``, ``hash`` and ``at`` repeat it for people."""
    checkpoint = latest(session)
    if checkpoint is None:
        raise InvalidInput("there is no checkpoint yet: `trustctl audit checkpoint` makes one",
                           "尚无检查点，可运行 trustctl audit checkpoint 生成")
    public_key = keystore.public_key(session, keystore.get(session, checkpoint.key_id))
    if not isinstance(public_key, SM2PublicKey):
        raise InvalidInput("the audit key is not SM2", "审计密钥不是 SM2 密钥")
    return {"type": "trust-audit-checkpoint/1", "seq": checkpoint.seq, "hash": checkpoint.hash,
            "at": iso_z(checkpoint.at), "statement": checkpoint.statement().decode(),
            "signature": base64.b64encode(checkpoint.signature).decode(), "public_key": public_key.to_pem()}


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    statement: bytes
    signature: bytes
    public_key: SM2PublicKey


def _audit_key(data) -> SM2PublicKey:
    """The audit key, which is SM2 (ALGORITHM); TypeError for any other."""
    key = load_public_key(data)
    if not isinstance(key, SM2PublicKey):
        raise TypeError("the audit key is SM2")
    return key


def parse_anchor(exported) -> Anchor:
    """An exported checkpoint (``export``) read back; InvalidInput if it is not one."""
    try:
        statement = exported["statement"].encode()
        signed = json.loads(statement)
        anchor = Anchor(signed["seq"], signed["hash"], statement,
                        base64.b64decode(exported["signature"], validate=True), _audit_key(exported["public_key"]))
        if not isinstance(anchor.seq, int) or not isinstance(anchor.hash, str):
            raise TypeError
        return anchor
    except (KeyError, TypeError, ValueError, AttributeError, TrustError):
        raise InvalidInput("the anchor is not an exported audit checkpoint", "锚点不是导出的审计检查点") from None


def check_anchor(session: Session, anchor: Anchor) -> list[Finding]:
    """The log against a checkpoint kept elsewhere: its signature, by the key it carries
    (which its keeper compares with the one they were given), then the chain at the
    sequence number it signed."""
    try:
        anchor.public_key.verify(anchor.signature, anchor.statement)
    except TrustError:
        return [Finding(FindingKind.FORGED, anchor.seq, "锚点的签名无效", "the anchor's signature does not verify")]
    end = session.execute(select(func.max(audit_log.c.seq))).scalar() or 0
    return _against_chain(session, anchor.seq, anchor.hash, end)
