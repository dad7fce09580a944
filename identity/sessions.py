"""Login sessions kept on the server: the browser holds only a random cookie value (32
bytes, base64url); the database holds its SM3 hash, so a copy of the database opens no
session. A session ends after ``IDLE_TIMEOUT`` without use or ``ABSOLUTE_TIMEOUT`` after
login, whichever comes first (OWASP Session Management). Services here do not commit.
"""

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from identity.models import identity_login_session
from trust.clock import as_utc, utc_now
from trust.errors import InvalidInput
from trust.hashes import sm3

SESSION_COOKIE = "__Host-trust_session"  # RFC 6265bis: Secure, Path=/, no Domain (https only)
PLAIN_SESSION_COOKIE = "trust_session"  # over plain http (development), where __Host- is refused
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=8)
TOUCH_EVERY = timedelta(minutes=1)  # last use is written at most this often
MAX_COOKIE_CHARS = 128
PURGE_BATCH = 100
_AMR_CHARS = 16


@dataclass(frozen=True)
class LoginSession:
    id: str
    subject_id: str
    auth_time: datetime
    amr: tuple[str, ...]  # RFC 8176: "pwd", "otp"
    acr: str
    expires_at: datetime  # the absolute end; an idle session ends earlier


def cookie_name(secure: bool) -> str:
    return SESSION_COOKIE if secure else PLAIN_SESSION_COOKIE


def _hash(cookie_value: str) -> str:
    return sm3(cookie_value.encode("ascii")).hex()


def start_session(session: Session, subject_id: str, *, amr: list[str], acr: str, address: str,
                  clock: Callable[[], datetime] = utc_now) -> tuple[str, LoginSession]:
    """A new session for a subject who just authenticated; returns the cookie value (shown
    to the browser once) and the session."""
    amr = tuple(amr)
    if not amr or not all(isinstance(m, str) and 0 < len(m) <= _AMR_CHARS and m.isalnum() for m in amr):
        raise InvalidInput("amr is a non-empty list of method names (RFC 8176)", "认证方式列表不能为空")
    if not isinstance(acr, str) or not 0 < len(acr) <= 200:
        raise InvalidInput("acr is 1 to 200 characters", "认证上下文须为 1 至 200 个字符")
    purge_expired(session, clock=clock)
    now = clock()
    cookie_value = secrets.token_urlsafe(32)
    login = LoginSession(id=uuid.uuid4().hex, subject_id=subject_id, auth_time=now, amr=amr, acr=acr,
                         expires_at=now + ABSOLUTE_TIMEOUT)
    session.execute(insert(identity_login_session).values(
        id=login.id, cookie_hash=_hash(cookie_value), subject_id=subject_id, auth_time=now, last_seen_at=now,
        expires_at=login.expires_at, amr=" ".join(amr), acr=acr, address=(address or "")[:64]))
    return cookie_value, login


def load_session(session: Session, cookie_value: str, *,
                 clock: Callable[[], datetime] = utc_now) -> LoginSession | None:
    """The live session of a cookie, or None (unknown, malformed, idle too long, expired).
    Marks it used; an expired one is deleted."""
    if not isinstance(cookie_value, str) or not 0 < len(cookie_value) <= MAX_COOKIE_CHARS \
            or not cookie_value.isascii():
        return None
    table = identity_login_session
    row = session.execute(select(table).where(table.c.cookie_hash == _hash(cookie_value))).one_or_none()
    if row is None:
        return None
    now = clock()
    last_seen, expires_at = as_utc(row.last_seen_at), as_utc(row.expires_at)
    if now >= expires_at or now - last_seen >= IDLE_TIMEOUT:
        session.execute(delete(table).where(table.c.id == row.id))
        return None
    if now - last_seen >= TOUCH_EVERY:
        session.execute(update(table).where(table.c.id == row.id).values(last_seen_at=now))
    return LoginSession(id=row.id, subject_id=row.subject_id, auth_time=as_utc(row.auth_time),
                        amr=tuple(row.amr.split()), acr=row.acr, expires_at=expires_at)


def end_session(session: Session, cookie_value: str) -> None:
    """Log out: the cookie opens nothing any more (an unknown cookie is no error)."""
    if isinstance(cookie_value, str) and 0 < len(cookie_value) <= MAX_COOKIE_CHARS and cookie_value.isascii():
        session.execute(delete(identity_login_session).where(
            identity_login_session.c.cookie_hash == _hash(cookie_value)))


def end_sessions_of(session: Session, subject_id: str) -> int:
    """Log a subject out everywhere (disabled, password changed, locked); the number ended."""
    result = session.execute(delete(identity_login_session).where(
        identity_login_session.c.subject_id == subject_id))
    return result.rowcount


def purge_expired(session: Session, *, clock: Callable[[], datetime] = utc_now) -> int:
    """Delete sessions past their absolute or idle end, a bounded batch skipping rows other
    transactions hold (each login does this); the number deleted."""
    now = clock()
    table = identity_login_session
    ended = (select(table.c.id).where((table.c.expires_at <= now) | (table.c.last_seen_at <= now - IDLE_TIMEOUT))
             .limit(PURGE_BATCH).with_for_update(skip_locked=True))
    return session.execute(delete(table).where(table.c.id.in_(ended.scalar_subquery()))).rowcount
