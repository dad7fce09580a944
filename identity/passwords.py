"""Secrets kept only as argon2id hashes (RFC 9106), in the PHC string format.

Used for the passwords people choose (client secrets are random 256-bit values, kept as
an SM3 digest by identity.clients: nothing to brute-force there). The parameters are
OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane); a stored hash made with weaker
parameters still verifies and ``needs_rehash`` says so, so it can be upgraded at the
next successful login.
"""

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from trust.errors import InvalidInput

MAX_SECRET_CHARS = 1024  # far above any password; bounds the hashing work per attempt

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16,
                         type=Type.ID)


def hash_secret(secret: str) -> str:
    if not _acceptable(secret):
        raise InvalidInput(f"a secret is 1 to {MAX_SECRET_CHARS} characters of valid Unicode",
                           f"口令须为 1 至 {MAX_SECRET_CHARS} 个有效字符")
    return _hasher.hash(secret)


def verify_secret(stored: str, secret: str) -> bool:
    """True when ``secret`` matches; False for a wrong, oversized or non-text secret and for
    a stored value that is not an argon2id hash (never raises for those)."""
    if not isinstance(stored, str) or not stored.startswith("$argon2id$") or not stored.isascii():
        return False
    if not _acceptable(secret):
        return False
    try:
        return _hasher.verify(stored, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _acceptable(secret) -> bool:
    if not isinstance(secret, str) or not 0 < len(secret) <= MAX_SECRET_CHARS:
        return False
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` was made with parameters other than today's."""
    if not isinstance(stored, str) or not stored.isascii():
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True
