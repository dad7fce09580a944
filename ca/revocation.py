"""Revocation of issued certificates with the reasons of RFC 5280 §5.3.1, and the
status look-ups the CRL and the OCSP responder share.

A revocation is a row change plus an audit record in the caller's transaction; a refused
one is audited as ``ca.refuse``. Nothing here commits. ``removeFromCRL`` is not a reason
to revoke (it only exists in delta CRLs).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ca.models import ca_certificate
from ca.refusal import refuse
from trust import audit
from trust.clock import as_utc, utc_now
from trust.errors import InvalidInput, NotFound, TrustError

# RFC 5280 CRLReason name -> code (value 7 is not used).
REASONS = {
    "unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
    "cessationOfOperation": 5, "certificateHold": 6, "privilegeWithdrawn": 9, "aACompromise": 10,
}
REASON_NAMES = {code: name for name, code in REASONS.items()}
# The same reasons as asn1crypto names them (CRL entries, OCSP RevokedInfo).
ASN1_REASONS = {
    "unspecified": "unspecified", "keyCompromise": "key_compromise", "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed", "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation", "certificateHold": "certificate_hold",
    "privilegeWithdrawn": "privilege_withdrawn", "aACompromise": "aa_compromise",
}


class AlreadyRevoked(InvalidInput):
    code = "already_revoked"


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str


@dataclass(frozen=True)
class CertificateStatus:
    status: str                      # "good" | "revoked" | "unknown"
    revoked_at: datetime | None = None
    reason: str | None = None


def serial_text(serial) -> str:
    """The stored form of a serial: decimal text of a positive integer (int, "123" or "0x7b")."""
    try:
        value = serial if isinstance(serial, int) and not isinstance(serial, bool) else int(str(serial).strip(), 0)
    except ValueError:
        raise InvalidInput(f"not a certificate serial number: {str(serial)[:40]!r}",
                           f"不是有效的证书序列号：{str(serial)[:40]!r}") from None
    if value <= 0 or value.bit_length() > 160:
        raise InvalidInput("a certificate serial number is a positive integer of at most 20 bytes",
                           "证书序列号必须是不超过 20 字节的正整数")
    return str(value)


def reason_name(reason: str | int) -> str:
    if isinstance(reason, int) and not isinstance(reason, bool) and reason in REASON_NAMES:
        return REASON_NAMES[reason]
    if isinstance(reason, str) and reason in REASONS:
        return reason
    shown = repr(reason)[:40]
    raise InvalidInput(f"unknown revocation reason {shown}; RFC 5280 reasons: {', '.join(REASONS)}",
                       f"未知的吊销原因 {shown}，可用：{', '.join(REASONS)}")


def revoke(session: Session, issuer: str, serial, reason: str | int = "unspecified", *, actor: str,
           at: datetime | None = None) -> RevokedEntry:
    """Mark one certificate revoked. Raises InvalidInput for a bad serial or reason,
    NotFound for an unknown issuer or serial and AlreadyRevoked for a second revocation."""
    target = f"{issuer}/{str(serial)[:64]}"
    try:
        reason = reason_name(reason)
        serial = serial_text(serial)
        row = session.execute(select(ca_certificate.c.status).where(
            ca_certificate.c.issuer == issuer, ca_certificate.c.serial == serial).with_for_update()).one_or_none()
        if row is None:
            raise NotFound(f"CA {issuer!r} issued no certificate with serial {serial}",
                           f"CA {issuer!r} 未签发序列号为 {serial} 的证书")
        if row.status == "revoked":
            raise AlreadyRevoked(f"certificate {serial} of CA {issuer!r} is already revoked",
                                 f"CA {issuer!r} 的证书 {serial} 已被吊销")
    except TrustError as error:
        raise refuse(session, actor, target, error, {"action": "revoke"}) from None
    at = (at or utc_now()).astimezone(UTC).replace(microsecond=0)
    session.execute(update(ca_certificate).where(
        ca_certificate.c.issuer == issuer, ca_certificate.c.serial == serial,
        ca_certificate.c.status == "good").values(status="revoked", revoked_at=at, revocation_reason=reason))
    audit.append(session, actor, "ca.revoke", f"{issuer}/{serial}", {"reason": reason, "revoked_at": at.isoformat()})
    return RevokedEntry(int(serial), at, reason)


def revoked_entries(session: Session, issuer: str) -> list[RevokedEntry]:
    rows = session.execute(select(ca_certificate.c.serial, ca_certificate.c.revoked_at,
                                  ca_certificate.c.revocation_reason)
                           .where(ca_certificate.c.issuer == issuer, ca_certificate.c.status == "revoked"))
    return sorted((RevokedEntry(int(r.serial), as_utc(r.revoked_at), r.revocation_reason or "unspecified")
                   for r in rows), key=lambda e: e.serial)


def revocation_mark(session: Session, issuer: str) -> tuple:
    """Changes whenever the issuer's revocations change: (count, latest revocation time)."""
    count, latest = session.execute(select(func.count(), func.max(ca_certificate.c.revoked_at)).where(
        ca_certificate.c.issuer == issuer, ca_certificate.c.status == "revoked")).one()
    return count, as_utc(latest)


def certificate_status(session: Session, issuer: str, serial: int) -> CertificateStatus:
    if serial <= 0:
        return CertificateStatus("unknown")
    row = session.execute(select(ca_certificate.c.status, ca_certificate.c.revoked_at,
                                 ca_certificate.c.revocation_reason).where(
        ca_certificate.c.issuer == issuer, ca_certificate.c.serial == str(serial))).one_or_none()
    if row is None:
        return CertificateStatus("unknown")
    if row.status == "revoked":
        return CertificateStatus("revoked", as_utc(row.revoked_at), row.revocation_reason or "unspecified")
    return CertificateStatus("good")

