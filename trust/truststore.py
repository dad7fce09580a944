"""The trust store: root certificates trusted per purpose (seal, licence, token, tls).

Roots are imported from PEM or DER files (bundles too), including other provinces' and
the national CA's; each import and removal is written to the audit log in the caller's
transaction. ``trusted_roots`` is what path validation reads.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import CheckConstraint, Column, CursorResult, DateTime, LargeBinary, String, Table, Text, delete, select
from sqlalchemy.orm import Session

from trust import audit
from trust.clock import utc_now
from trust.db import Base
from trust.errors import InvalidInput, NotFound
from trust.x509 import Certificate, load_certificates, parse_certificate

PURPOSES = ("seal", "licence", "token", "tls")
MAX_FILE_BYTES = 4 * 1024 * 1024

trust_roots = Table(
    "trust_roots", Base.metadata,
    Column("purpose", String(16), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("added_by", Text, nullable=False),
    CheckConstraint("purpose IN ('seal', 'licence', 'token', 'tls')", name="ck_trust_roots_purpose"),
)


@dataclass(frozen=True)
class TrustedRoot:
    purpose: str
    fingerprint: str
    subject: str
    not_after: datetime
    added_at: datetime
    added_by: str


def fingerprint(cert: Certificate) -> str:
    return hashlib.sha256(cert.der).hexdigest()


def _purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise InvalidInput(f"unknown trust purpose {purpose!r} (one of {', '.join(PURPOSES)})",
                           f"未知的信任用途 {purpose!r}（可选：{'、'.join(PURPOSES)}）")
    return purpose


def _row(row) -> TrustedRoot:
    not_after, added_at = (t.replace(tzinfo=t.tzinfo or UTC) for t in (row.not_after, row.added_at))
    return TrustedRoot(row.purpose, row.fingerprint, row.subject, not_after, added_at, row.added_by)


def import_roots(session: Session, purpose: str, data: bytes, *, actor: str,
                 clock=utc_now) -> list[TrustedRoot]:
    """Trust every certificate in ``data`` (PEM bundle or DER) for ``purpose``; already
    trusted ones are left as they are. Does not commit."""
    _purpose(purpose)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"the certificate file is larger than {MAX_FILE_BYTES} bytes",
                           f"证书文件超过 {MAX_FILE_BYTES} 字节")
    certificates = load_certificates(data)
    if not certificates:
        raise InvalidInput("no certificate in the file", "文件中没有证书")
    added = []
    for cert in certificates:
        digest = fingerprint(cert)
        if session.execute(select(trust_roots.c.fingerprint).where(
                trust_roots.c.purpose == purpose, trust_roots.c.fingerprint == digest)).first():
            continue
        now = clock()
        session.execute(trust_roots.insert().values(
            purpose=purpose, fingerprint=digest, subject=cert.subject, not_after=cert.not_after,
            der=cert.der, added_at=now, added_by=actor))
        audit.append(session, actor, "trust.root.import", f"{purpose}/{digest}",
                     {"subject": cert.subject, "not_after": cert.not_after.isoformat()}, clock=clock)
        added.append(TrustedRoot(purpose, digest, cert.subject, cert.not_after, now, actor))
    return added


def list_roots(session: Session, purpose: str | None = None) -> list[TrustedRoot]:
    query = select(trust_roots.c.purpose, trust_roots.c.fingerprint, trust_roots.c.subject,
                   trust_roots.c.not_after, trust_roots.c.added_at, trust_roots.c.added_by)
    if purpose is not None:
        query = query.where(trust_roots.c.purpose == _purpose(purpose))
    return [_row(r) for r in session.execute(query.order_by(trust_roots.c.purpose, trust_roots.c.subject))]


def remove_root(session: Session, purpose: str, fingerprint_hex: str, *, actor: str) -> None:
    """Stop trusting one root for ``purpose``. Does not commit."""
    digest = fingerprint_hex.strip().lower().replace(":", "")
    result = session.execute(delete(trust_roots).where(trust_roots.c.purpose == _purpose(purpose),
                                                       trust_roots.c.fingerprint == digest))
    if cast(CursorResult, result).rowcount == 0:
        raise NotFound(f"no trusted root {digest} for {purpose}", f"用途 {purpose} 下没有可信根 {digest}")
    audit.append(session, actor, "trust.root.remove", f"{purpose}/{digest}")


def trusted_roots(session: Session, purpose: str) -> tuple[Certificate, ...]:
    rows = session.execute(select(trust_roots.c.der).where(trust_roots.c.purpose == _purpose(purpose)))
    return tuple(parse_certificate(bytes(r.der)) for r in rows)
