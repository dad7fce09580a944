"""TOTP (RFC 6238) over HOTP (RFC 4226) as authenticator apps use it: HMAC-SHA-1, a
30-second step from the Unix epoch, 6 digits, and the ``otpauth://`` key URI of Google
Authenticator's key-uri format that those apps scan.

``verify`` refuses any step at or before the last one accepted for the account (RFC 6238
§5.2: a code is good once), and accepts ``window`` steps either side of now for clock drift.
"""

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote, urlencode

from trust.errors import InvalidInput

STEP_SECONDS = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits, RFC 4226 §4 R6
MAX_WINDOW = 10


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def provisioning_uri(secret: bytes, account: str, issuer: str) -> str:
    """otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30"""
    for what, value in (("account", account), ("issuer", issuer)):
        if not isinstance(value, str) or not value or ":" in value or len(value) > 200:
            raise InvalidInput(f"the TOTP {what} is 1 to 200 characters without ':'",
                               f"动态口令的{'账号' if what == 'account' else '签发方'}须为 1 至 200 个不含“:”的字符")
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": base32(secret), "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP_SECONDS}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def base32(secret: bytes) -> str:
    """The secret as apps take it typed in: RFC 4648 base32 without padding."""
    return base64.b32encode(_secret(secret)).decode("ascii").rstrip("=")


def time_step(at: datetime) -> int:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput("a TOTP time is a timezone-aware datetime", "动态口令的时间必须带时区")
    return int(at.timestamp()) // STEP_SECONDS


def code_at(secret: bytes, at: datetime) -> str:
    return _hotp(_secret(secret), time_step(at))


def verify(secret: bytes, code: str, *, at: datetime, last_step: int | None, window: int = 1) -> int | None:
    """The time step ``code`` belongs to, or None: wrong, malformed, outside the window, or
    of a step not after ``last_step`` (a replay)."""
    secret = _secret(secret)
    if not isinstance(window, int) or not 0 <= window <= MAX_WINDOW:
        raise InvalidInput(f"the TOTP window is 0 to {MAX_WINDOW} steps", f"动态口令窗口须为 0 至 {MAX_WINDOW} 个时间步")
    if not isinstance(code, str) or len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    now = time_step(at)
    matched = None
    for step in range(now - window, now + window + 1):
        # Compare every candidate, so the time taken does not tell which step matched.
        if hmac.compare_digest(_hotp(secret, step), code) and (last_step is None or step > last_step):
            matched = step if matched is None else matched
    return matched


def _hotp(secret: bytes, counter: int) -> str:
    """RFC 4226 §5.3: HMAC-SHA-1 of the 8-byte counter, dynamic truncation, mod 10^DIGITS."""
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** DIGITS).zfill(DIGITS)


def _secret(secret) -> bytes:
    if not isinstance(secret, (bytes, bytearray)) or not 16 <= len(secret) <= 64:  # RFC 4226 §4 R6: 128 bits at least
        raise InvalidInput("a TOTP secret is 16 to 64 bytes", "动态口令密钥须为 16 至 64 字节")
    return bytes(secret)
