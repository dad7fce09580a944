"""Authentication: the password (argon2id), then TOTP as the second factor (mandatory for
officers), with throttling and lockout per account and per client address.

Failures are counted in the database (``identity_throttle``), so every worker on every
host sees the same counts. ``ACCOUNT_LIMIT`` consecutive failures on an account lock it
for ``LOCKOUT``; ``ADDRESS_LIMIT`` failures from one address within ``WINDOW`` block that
address for ``LOCKOUT`` (guessing one password across many accounts). Every refusal says
the same thing, so the answer tells nobody whether a username exists, the password was
wrong or the account is locked. Lockouts are audited.

TOTP secrets are kept SM2-encrypted to a KeyStore encryption key (label ``identity/totp``,
made on first need) and decrypted by the KeyStore only to check a code.

Services here do not commit; the caller commits failures too (their counts must stay).
"""

import functools
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hsm.keystore import KeyRef, KeyState, KeyStore, Usage
from identity import passwords, totp
from identity.models import identity_device, identity_subject, identity_throttle
from identity.subjects import Subject, get_subject, normalise_username
from trust import audit, events
from trust.clock import as_utc, utc_now
from trust.errors import InvalidInput, KeyUnavailable, Unauthenticated
from trust.hashes import sm3

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 30
TOTP_LIMIT = 5
WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
TOTP_KEY_LABEL = "identity/totp"
TOTP_ISSUER = "统一身份认证"
MAX_ADDRESS_CHARS = 64
MAX_DEVICE_CHARS = 64
DEVICE_LIFETIME = timedelta(days=180)
PURGE_BATCH = 100


def _refused() -> Unauthenticated:
    minutes = int(LOCKOUT.total_seconds() // 60)
    return Unauthenticated(f"wrong username or password; after repeated failures logins are refused for up to "
                           f"{minutes} minutes, except from a browser that has logged in to the account before",
                           f"用户名或密码错误；多次错误后将暂停登录，最长 {minutes} 分钟（曾在本浏览器登录过此账号的除外）")


def _totp_refused() -> Unauthenticated:
    return Unauthenticated("the one-time code is wrong, expired or used already",
                           "动态口令错误、已过期或已被使用")


@functools.cache
def _dummy_hash() -> str:
    """Checked against when there is no account to check, so that takes as long as a real one."""
    return passwords.hash_secret("no such account: timing only")


# ---------------------------------------------------------------- throttling

def _locked(session: Session, key: str, now: datetime) -> bool:
    row = session.execute(select(identity_throttle.c.locked_until).where(identity_throttle.c.key == key)).first()
    return row is not None and row.locked_until is not None and as_utc(row.locked_until) > now


def _count_failure(session: Session, key: str, limit: int, now: datetime) -> bool:
    """Count one failure under ``key``; True when this one locks it."""
    table = identity_throttle
    for _ in range(2):  # a concurrent first failure may insert the row between our read and insert
        row = session.execute(select(table).where(table.c.key == key).with_for_update()).one_or_none()
        if row is None:
            try:
                with session.begin_nested():
                    session.execute(insert(table).values(key=key, failures=1, first_failure_at=now))
            except IntegrityError:
                continue
            failures, first = 1, now
        else:
            locked_until = as_utc(row.locked_until)
            if locked_until is not None and locked_until > now:
                return False  # locked already: the lock is not extended (that would be a denial of service)
            failures, first = row.failures + 1, as_utc(row.first_failure_at)
            if now - first > WINDOW or locked_until is not None:
                failures, first = 1, now
        locks = failures >= limit
        session.execute(update(table).where(table.c.key == key).values(
            failures=0 if locks else failures, first_failure_at=first, locked_until=now + LOCKOUT if locks else None))
        return locks
    return False


def _purge_stale(session: Session, now: datetime) -> None:
    """Forget counts that can no longer lock anything (a bounded batch, skipping rows other
    transactions hold), so addresses tried once do not pile up."""
    table = identity_throttle
    stale = (select(table.c.key).where(table.c.first_failure_at < now - WINDOW,
                                       table.c.locked_until.is_(None) | (table.c.locked_until < now))
             .limit(PURGE_BATCH).with_for_update(skip_locked=True))
    session.execute(delete(table).where(table.c.key.in_(stale.scalar_subquery())))


def _clear(session: Session, *keys: str) -> None:
    session.execute(delete(identity_throttle).where(identity_throttle.c.key.in_(keys)))


def _address_key(address: str) -> str | None:
    if not isinstance(address, str) or not address:
        return None
    return f"address:{address[:MAX_ADDRESS_CHARS]}"


# ---------------------------------------------------------------- password

def _device_key(session: Session, device: str | None, subject_id: str, now: datetime) -> str | None:
    """The throttle key of a browser that has logged in to ``subject_id`` before, or None."""
    if not isinstance(device, str) or not 0 < len(device) <= MAX_DEVICE_CHARS or not device.isascii():
        return None
    token_hash = sm3(device.encode("ascii")).hex()
    row = session.execute(select(identity_device.c.subject_id, identity_device.c.expires_at).where(
        identity_device.c.token_hash == token_hash)).one_or_none()
    if row is None or row.subject_id != subject_id or as_utc(row.expires_at) <= now:
        return None
    return f"device:{token_hash[:40]}"


def _has_failures(session: Session, key: str | None) -> bool:
    return key is not None and session.execute(select(identity_throttle.c.key).where(
        identity_throttle.c.key == key)).first() is not None


def remember_device(session: Session, subject_id: str, *, clock: Callable[[], datetime] = utc_now) -> str:
    """A device cookie value for the browser that just logged in to ``subject_id`` (shown
    once; the database keeps its SM3 hash). Does not commit."""
    token = secrets.token_urlsafe(32)
    now = clock()
    session.execute(delete(identity_device).where(identity_device.c.expires_at < now))
    session.execute(insert(identity_device).values(token_hash=sm3(token.encode("ascii")).hex(), subject_id=subject_id,
                                                   created_at=now, expires_at=now + DEVICE_LIFETIME))
    return token


def authenticate_password(session: Session, username: str, password: str, *, address: str,
                          device: str | None = None, clock: Callable[[], datetime] = utc_now) -> Subject:
    """The active subject whose password this is, or Unauthenticated with one message for
    every cause (unknown user, wrong password, disabled, locked account, device or address).

    Throttling after OWASP's device cookie: a browser that has logged in to the account
    before (``device``, from remember_device) is throttled on its own failures only, never
    by strangers' failures on the account or from its address; from other browsers, failures
    lock the account and the address, but a locked address still lets through an account
    with no failures of its own from anywhere (its neighbours behind one NAT do not lock it)."""
    now = clock()
    address = address if isinstance(address, str) else ""
    try:
        username = normalise_username(username)
    except InvalidInput:
        username = None
    address_key = _address_key(address)
    row = None
    if username is not None:
        row = session.execute(select(identity_subject).where(identity_subject.c.username == username)).one_or_none()
    account_key = f"account:{username}" if row is not None else None
    device_key = _device_key(session, device, row.id, now) if row is not None else None

    if device_key is not None:
        blocked = _locked(session, device_key, now)
    else:
        blocked = ((account_key is not None and _locked(session, account_key, now))
                   or (address_key is not None and _locked(session, address_key, now)
                       and (row is None or _has_failures(session, account_key))))
    if blocked or row is None:
        passwords.verify_secret(_dummy_hash(), password if isinstance(password, str) else "")
        ok = False
    else:
        ok = passwords.verify_secret(row.password_hash, password) and row.status == "active"
    if not ok:
        if device_key is not None:
            if not blocked and _count_failure(session, device_key, ACCOUNT_LIMIT, now):
                audit.append(session, "identity", "identity.lockout", device_key,
                             {"username": username, "until": (now + LOCKOUT).isoformat()})
            _fail(session, None, address_key, username, address, now, count_account=False)
        else:
            _fail(session, account_key, address_key, username, address, now, count_account=not blocked)
        raise _refused()

    _clear(session, account_key)
    if device_key is not None:
        _clear(session, device_key)
    if passwords.needs_rehash(row.password_hash):
        session.execute(update(identity_subject).where(identity_subject.c.id == row.id)
                        .values(password_hash=passwords.hash_secret(password)))
    audit.append(session, row.id, "identity.login", row.id, {"method": "pwd", "address": address[:MAX_ADDRESS_CHARS]},
                 clock=clock)
    return get_subject(session, row.id)


def _fail(session: Session, account_key: str | None, address_key: str | None, username: str | None,
          address: str, now: datetime, *, count_account: bool) -> None:
    events.emit("identity.login.failed", events.Severity.WARNING, "anonymous", (username or "")[:MAX_ADDRESS_CHARS],
                {"address": address[:MAX_ADDRESS_CHARS]})
    # Only existing accounts are counted by name: counting every name tried would let anyone grow the table.
    if account_key is not None and count_account and _count_failure(session, account_key, ACCOUNT_LIMIT, now):
        audit.append(session, "identity", "identity.lockout", account_key,
                     {"username": username, "address": address[:MAX_ADDRESS_CHARS], "until": (now + LOCKOUT).isoformat()})
    if address_key is not None and _count_failure(session, address_key, ADDRESS_LIMIT, now):
        audit.append(session, "identity", "identity.lockout", address_key,
                     {"address": address[:MAX_ADDRESS_CHARS], "until": (now + LOCKOUT).isoformat()})
    _purge_stale(session, now)


def unlock(session: Session, subject_id: str, *, actor: str) -> None:
    """Lift a lockout of the account (password and TOTP) before it ends by itself."""
    subject = get_subject(session, subject_id)
    _clear(session, f"account:{subject.username}", f"totp:{subject.id}")
    audit.append(session, actor, "identity.unlock", subject.id, {"username": subject.username})


def unlock_address(session: Session, address: str, *, actor: str) -> None:
    key = _address_key(address)
    if key is None:
        raise InvalidInput("an address is needed", "需要给出地址")
    _clear(session, key)
    audit.append(session, actor, "identity.unlock", key, {})


# ---------------------------------------------------------------- TOTP

def totp_required(subject: Subject) -> bool:
    """Officers must use a second factor."""
    return subject.kind == "officer"


def _totp_key(session: Session, keystore: KeyStore, actor: str) -> KeyRef:
    refs = keystore.list(session, label=TOTP_KEY_LABEL)
    if not refs:
        return keystore.generate(session, "SM2-with-SM3", TOTP_KEY_LABEL, [Usage.ENCRYPTION], actor=actor)
    active = [ref for ref in refs if ref.state == KeyState.ACTIVE]
    if not active:
        raise KeyUnavailable(f"no active key labelled {TOTP_KEY_LABEL}", f"没有可用的 {TOTP_KEY_LABEL} 密钥")
    return active[-1]


def enrol_totp(session: Session, keystore: KeyStore, subject_id: str, *,
               actor: str = "system") -> tuple[bytes, str]:
    """A new TOTP secret for the subject, and its otpauth:// URI to show as a QR code. It
    replaces any earlier one and counts only once a first code confirms it (confirm_totp)."""
    subject = get_subject(session, subject_id)
    ref = _totp_key(session, keystore, actor)
    secret = totp.new_secret()
    sealed = keystore.public_key(session, ref).encrypt(secret)
    session.execute(update(identity_subject).where(identity_subject.c.id == subject.id).values(
        totp_secret=sealed, totp_key_id=ref.id, totp_confirmed_at=None, totp_last_step=None))
    audit.append(session, actor, "identity.totp.enrol", subject.id, {"key": ref.id})
    return secret, totp.provisioning_uri(secret, subject.username, TOTP_ISSUER)


def confirm_totp(session: Session, keystore: KeyStore, subject_id: str, code: str, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
    """The first code from the subject's app: the secret is enrolled from now on."""
    _check_totp(session, keystore, subject_id, code, clock, confirming=True)


def verify_totp(session: Session, keystore: KeyStore, subject_id: str, code: str, *,
                clock: Callable[[], datetime] = utc_now) -> None:
    """Accept a code once (a replayed step is refused), or raise Unauthenticated."""
    _check_totp(session, keystore, subject_id, code, clock, confirming=False)


def _check_totp(session: Session, keystore: KeyStore, subject_id: str, code, clock, confirming: bool) -> None:
    now = clock()
    subject = get_subject(session, subject_id)
    key = f"totp:{subject.id}"
    table = identity_subject
    row = session.execute(select(table.c.totp_secret, table.c.totp_key_id, table.c.totp_confirmed_at,
                                 table.c.totp_last_step).where(table.c.id == subject.id)).one()
    usable = row.totp_secret is not None and (confirming or row.totp_confirmed_at is not None)
    step = None
    if usable and subject.status == "active" and not _locked(session, key, now):
        secret = keystore.decrypt(session, keystore.get(session, row.totp_key_id), row.totp_secret,
                                  usage=Usage.ENCRYPTION, actor="identity")
        step = totp.verify(secret, code, at=now, last_step=row.totp_last_step)
    if step is not None:
        # Conditional on the step, so two workers given the same code accept it once.
        values = {"totp_last_step": step}
        if row.totp_confirmed_at is None:
            values["totp_confirmed_at"] = now
        accepted = session.execute(update(table).where(
            table.c.id == subject.id,
            (table.c.totp_last_step.is_(None)) | (table.c.totp_last_step < step)).values(**values)).rowcount
        if accepted == 1:
            _clear(session, key)
            if confirming and row.totp_confirmed_at is None:
                audit.append(session, subject.id, "identity.totp.confirm", subject.id, {}, clock=clock)
            return
    if usable and _count_failure(session, key, TOTP_LIMIT, now):
        audit.append(session, "identity", "identity.lockout", key, {"username": subject.username,
                                                                  "until": (now + LOCKOUT).isoformat()})
    raise _totp_refused()


# ---------------------------------------------------------------- client authentication

CLIENT_LIMIT = 10                 # failed client authentications from one address for one client
CLIENT_LOCKOUT = timedelta(minutes=1)


def _client_key(client_id: str, address: str) -> str:
    """Per client *and* address: a stranger's failures never lock the department's own
    server out (its client id is no secret), and client secrets are 256-bit random values,
    so the throttle is about noise and load, not guessing."""
    return f"client:{client_id[:MAX_ADDRESS_CHARS]}@{address[:MAX_ADDRESS_CHARS]}"


def client_auth_retry_after(session: Session, client_id: str, address: str, *,
                            clock: Callable[[], datetime] = utc_now) -> int | None:
    """Seconds until ``client_id`` may try to authenticate again from ``address``, or None."""
    row = session.execute(select(identity_throttle.c.locked_until).where(
        identity_throttle.c.key == _client_key(client_id, address))).first()
    until = as_utc(row.locked_until) if row is not None else None
    now = clock()
    return max(1, int((until - now).total_seconds()) + 1) if until is not None and until > now else None


def count_client_auth_failure(session: Session, client_id: str, address: str, *,
                              clock: Callable[[], datetime] = utc_now) -> None:
    """One failed client authentication; the CLIENT_LIMIT-th within WINDOW locks that client
    from that address for CLIENT_LOCKOUT (audited once, when it locks). Does not commit."""
    now = clock()
    key = _client_key(client_id, address)
    if _count_failure(session, key, CLIENT_LIMIT, now):
        session.execute(update(identity_throttle).where(identity_throttle.c.key == key)
                        .values(locked_until=now + CLIENT_LOCKOUT))
        audit.append(session, f"client:{client_id[:MAX_ADDRESS_CHARS]}", "client.throttled",
                     address[:MAX_ADDRESS_CHARS], {"failures": CLIENT_LIMIT, "seconds": CLIENT_LOCKOUT.seconds})
