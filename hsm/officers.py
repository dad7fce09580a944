"""Security officers (安全管理员) and how they prove who they are.

Each officer holds an SM2 key pair. The private key is a PKCS#8 PEM file that only the
officer can read (mode 0600, like an SSH key; a USB key or smart card would hold it in
production); the database keeps only the public key and its fingerprint. To act, the
officer signs a *statement* naming the act: the approval request's id, action, target
and parameters and the decision. So a signature is bound to that one act and cannot be
replayed for another, and it is kept beside the decision: an auditor can re-check any
approval later against the officer's public key, and a row written into the database by
hand carries no valid signature.

Why a key pair rather than a password with TOTP: a password proves knowledge to the
server at one moment and leaves nothing anyone can re-check afterwards; a signature is
evidence that stays with the record. SM2 because it is the national algorithm officers'
USB keys carry, and ``openssl genpkey -algorithm SM2`` makes a valid credential.
"""

import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, String, Table, Text, func, insert, select, update
from sqlalchemy.orm import Session

from trust import audit, duties
from trust.audit import canonical_json
from trust.clock import utc_now
from trust.db import Base
from trust.duties import Duty
from trust.errors import InvalidInput, InvalidSignature, NotFound, PermissionDenied, TrustError
from trust.hashes import sm3
from trust.sm2 import SM2PrivateKey, SM2PublicKey

STATEMENT_CONTEXT = "trust-service/officer-statement/1"
MAX_CREDENTIAL_BYTES = 64 * 1024
ACTIVE, REVOKED = "active", "revoked"

officers = Table(
    "officers", Base.metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("public_key", Text, nullable=False),  # SubjectPublicKeyInfo, PEM
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("duty", String(16), nullable=False),  # trust.duties.Duty: one per person
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)


@dataclass(frozen=True)
class Officer:
    id: str
    name: str
    public_key: str
    fingerprint: str
    status: str
    duty: Duty
    created_at: datetime

    def verify(self, statement: bytes, signature: bytes | str) -> bool:
        """Whether this officer signed ``statement``; ``signature`` as bytes or hex (as stored)."""
        try:
            if isinstance(signature, str):
                signature = bytes.fromhex(signature)
            SM2PublicKey.from_pem(self.public_key).verify(signature, statement)
        except (InvalidSignature, InvalidInput, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Proof:
    """A statement signed by the holder of the key with this fingerprint."""

    fingerprint: str
    signature: bytes


@dataclass(frozen=True, repr=False)
class Credential:
    """An officer's private key, loaded in the officer's own process (the CLI)."""

    private_key: SM2PrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private_key.public_key())

    def prove(self, statement: bytes) -> Proof:
        return Proof(self.fingerprint, self.private_key.sign(statement))

    def __repr__(self) -> str:
        return f"Credential({self.fingerprint[:16]}…)"


def fingerprint(public_key: SM2PublicKey) -> str:
    """SM3 of the DER SubjectPublicKeyInfo, hex."""
    return sm3(public_key.to_der()).hex()


def statement(**fields) -> bytes:
    """The bytes an officer signs: canonical JSON of the act, under a context string so a
    credential's signature can never be taken for anything else."""
    return canonical_json({"context": STATEMENT_CONTEXT, **fields}).encode()


def new_credential() -> tuple[Credential, str]:
    """A fresh key pair: the credential and its PKCS#8 PEM to hand to the officer."""
    key = SM2PrivateKey.generate()
    return Credential(key), key.to_pkcs8_pem()


def write_credential(path: Path, pem_text: str) -> None:
    """Write a credential file readable by its owner only (mode 0600 whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(pem_text)


def load_credential(path: str | Path) -> Credential:
    """Read an officer's credential file. Like ssh, refuse a file others may read."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO put in the file's place cannot make us wait.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read(MAX_CREDENTIAL_BYTES + 1) if stat.S_ISREG(mode) else b""
    except OSError as e:
        raise PermissionDenied(f"cannot read the credential file {path}: {e.strerror}",
                               f"无法读取凭据文件 {path}：{e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise PermissionDenied(f"the credential {path} is not a regular file", f"凭据 {path} 不是普通文件")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionDenied(
            f"the credential file {path} is open to other users (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}",
            f"凭据文件 {path} 对其他用户可读（权限 {stat.S_IMODE(mode):o}），请执行 chmod 600 {path}")
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise InvalidInput(f"the credential file {path} is too large to be a key",
                           f"凭据文件 {path} 过大，不是密钥文件")
    try:
        return Credential(SM2PrivateKey.from_pem(data))
    except InvalidInput as e:
        raise InvalidInput(f"the credential file {path} holds no SM2 private key: {e.en}",
                           f"凭据文件 {path} 中没有 SM2 私钥：{e.zh}") from None


def enrol(session: Session, officer_id: str, name: str, public_key_pem: str, *, actor: str,
          duty: Duty = Duty.SECURITY, clock: Callable[[], datetime] = utc_now) -> Officer:
    """Register an administrator's credential by public key, for their one duty. Does not commit."""
    duty = duties.parse(duty)
    if not officer_id or len(officer_id) > 64 or not officer_id.replace("-", "").replace(".", "").isalnum():
        raise InvalidInput("an officer id is 1-64 letters, digits, '-' or '.'",
                           "安全员编号应为 1-64 个字母、数字、“-”或“.”")
    public_key = SM2PublicKey.from_pem(public_key_pem)
    key_print = fingerprint(public_key)
    taken = session.execute(select(officers.c.id).where(
        (officers.c.id == officer_id) | (officers.c.fingerprint == key_print))).first()
    if taken:
        raise InvalidInput(f"officer {officer_id} or this public key is already enrolled",
                           f"安全员 {officer_id} 或此公钥已登记")
    now = clock()
    session.execute(insert(officers).values(
        id=officer_id, name=name, public_key=public_key.to_pem(), fingerprint=key_print,
        status=ACTIVE, duty=duty.value, created_at=now))
    audit.append(session, actor, "officer.enrol", f"officer:{officer_id}",
                 {"name": name, "fingerprint": key_print, "duty": duty.value}, clock=clock)
    return get(session, officer_id)


def revoke(session: Session, officer_id: str, *, actor: str,
           clock: Callable[[], datetime] = utc_now) -> Officer:
    """Take an officer's credential out of use; their pending approvals stop counting."""
    officer = get(session, officer_id)
    now = clock()
    session.execute(update(officers).where(officers.c.id == officer.id)
                    .values(status=REVOKED, revoked_at=now))
    audit.append(session, actor, "officer.revoke", f"officer:{officer_id}", clock=clock)
    return get(session, officer_id)


def get(session: Session, officer_id: str) -> Officer:
    row = session.execute(select(officers).where(officers.c.id == officer_id)).one_or_none()
    if row is None:
        raise NotFound(f"no officer {officer_id}", f"没有安全员 {officer_id}")
    return _officer(row)


def list_officers(session: Session, *, active_only: bool = True) -> list[Officer]:
    query = select(officers).order_by(officers.c.id)
    if active_only:
        query = query.where(officers.c.status == ACTIVE)
    return [_officer(row) for row in session.execute(query)]


def count_active(session: Session) -> int:
    """The active security officers: those who can approve under dual control."""
    return session.execute(select(func.count()).select_from(officers).where(
        officers.c.status == ACTIVE, officers.c.duty == Duty.SECURITY.value)).scalar_one()


def authenticate(session: Session, signed: bytes, proof: Proof, *, act: str,
                 clock: Callable[[], datetime] = utc_now) -> Officer:
    """The active officer whose key made ``proof`` over ``signed`` and whose duty is the one
    ``act`` needs (trust.duties), or PermissionDenied.

    A refusal is appended to the audit log before raising (nothing else has been
    written by then), so the caller commits the session to keep it.
    """
    row = session.execute(select(officers).where(officers.c.fingerprint == proof.fingerprint)).one_or_none()
    officer = None if row is None else _officer(row)
    if officer is None or officer.status != ACTIVE:
        raise deny(session, f"credential:{proof.fingerprint[:16]}", "officer.authenticate",
                   PermissionDenied("this credential belongs to no active security officer",
                                    "此凭据不属于任何在职安全员"), clock)
    if not officer.verify(signed, proof.signature):
        raise deny(session, officer.id, "officer.authenticate",
                   PermissionDenied("the credential's signature does not verify",
                                    "凭据签名验证不通过"), clock)
    needed = duties.duty_of_act(act)
    if officer.duty != needed:
        english, chinese = duties.NAMES[needed]
        raise deny(session, officer.id, act, PermissionDenied(
            en=f"{act} is an act of the {english}; officer {officer.id} is a {duties.NAMES[officer.duty][0]}",
            zh=f"{act} 须由{chinese}执行；{officer.id} 是{duties.NAMES[officer.duty][1]}"), clock)
    return officer


def identify(session: Session, credential: Credential, action: str, target: str, *,
             clock: Callable[[], datetime] = utc_now) -> Officer:
    """The officer acting alone (generate, rotate, suspend, resume a key): they sign a
    fresh statement of the act, checked against their registered public key."""
    signed = statement(decision="act", action=action, target=target,
                       at=clock().isoformat(), nonce=secrets.token_hex(16))
    return authenticate(session, signed, credential.prove(signed), act=action, clock=clock)


def deny(session: Session, actor: str, target: str, error: TrustError,
         clock: Callable[[], datetime] = utc_now) -> TrustError:
    """Record a refused attempt in the audit log and give back the error to raise."""
    audit.append(session, actor, "officer.denied", target, {"reason": error.en}, clock=clock)
    return error


def _officer(row) -> Officer:
    return Officer(row.id, row.name, row.public_key, row.fingerprint, row.status, Duty(row.duty), row.created_at)
