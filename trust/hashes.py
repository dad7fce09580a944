"""Hash functions by name or OID: SM3 (GB/T 32905) from Python's OpenSSL where it has it,
else from Tongsuo; SHA-2 from hashlib.

Every hash object has the hashlib shape (update, digest, hexdigest, copy, digest_size,
block_size), so Python's ``hmac`` module builds HMAC-SM3 on top of it.
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tongsuopy.crypto import hashes as _tongsuo_hashes

from trust import oids
from trust.errors import InvalidInput, UnsupportedAlgorithm

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class HashObject(Protocol):
    @property
    def digest_size(self) -> int: ...
    @property
    def block_size(self) -> int: ...

    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> "HashObject": ...


def _openssl_has_sm3() -> bool:
    try:
        return hashlib.new("sm3", b"abc").hexdigest() == \
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # GB/T 32905 A.1
    except ValueError:
        return False


# Python's own OpenSSL has SM3 where it is OpenSSL 1.1.1 or later with SM3 enabled (Debian's
# is); one call costs 1 µs there against 6 µs through tongsuopy's Python wrapper, and a
# sealed OFD is hashed a dozen times (#18). Tongsuo otherwise; both pass the same vectors.
_HASHLIB_SM3 = _openssl_has_sm3()


class SM3:
    """Incremental SM3. ``digest()`` may be called more than once, as with hashlib."""

    name = "sm3"
    digest_size = 32
    block_size = 64

    def __init__(self, data: bytes = b"", _ctx=None):
        if _ctx is None:
            _ctx = hashlib.new("sm3") if _HASHLIB_SM3 else _tongsuo_hashes.Hash(_tongsuo_hashes.SM3())
        self._ctx = _ctx
        if data:
            self.update(data)

    def update(self, data: "ReadableBuffer", /) -> None:
        self._ctx.update(_as_bytes(data))

    def copy(self) -> "SM3":
        return SM3(_ctx=self._ctx.copy())

    def digest(self) -> bytes:
        return self._ctx.digest() if _HASHLIB_SM3 else self._ctx.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()


def sm3(data: bytes) -> bytes:
    if _HASHLIB_SM3:
        return hashlib.new("sm3", _as_bytes(data)).digest()
    ctx = _tongsuo_hashes.Hash(_tongsuo_hashes.SM3())
    ctx.update(_as_bytes(data))
    return ctx.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    return hmac.new(_as_bytes(key), _as_bytes(data), SM3).digest()


@dataclass(frozen=True)
class HashAlgorithm:
    name: str
    oid: str
    digest_size: int
    new: Callable[..., HashObject]  # called with no argument: SM3, hashlib.sha256…

    def digest(self, data: bytes) -> bytes:
        h = self.new()
        h.update(_as_bytes(data))
        return h.digest()


_ALGORITHMS = [
    HashAlgorithm("SM3", oids.SM3, 32, SM3),
    HashAlgorithm("SHA-256", oids.SHA256, 32, hashlib.sha256),
    HashAlgorithm("SHA-384", oids.SHA384, 48, hashlib.sha384),
    HashAlgorithm("SHA-512", oids.SHA512, 64, hashlib.sha512),
]


def _fold(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_BY_KEY = {k: a for a in _ALGORITHMS for k in (a.oid, _fold(a.name))}


def hash_algorithm(name_or_oid: str) -> HashAlgorithm:
    """Look a hash up by OID (``1.2.156.10197.1.401``) or name (``SM3``, ``sha-256``, ``sha256``)."""
    try:
        return _BY_KEY[name_or_oid] if name_or_oid[:1].isdigit() else _BY_KEY[_fold(name_or_oid)]
    except KeyError:
        raise UnsupportedAlgorithm(f"unknown hash algorithm {name_or_oid!r}",
                                   f"不支持的杂凑算法 {name_or_oid!r}") from None


def _as_bytes(data) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise InvalidInput(f"expected bytes, got {type(data).__name__}", f"需要字节串，实际为 {type(data).__name__}")
