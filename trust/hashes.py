"""Hash functions by name or OID: SM3 (GB/T 32905) from Tongsuo, SHA-2 from hashlib.

Every hash object has the hashlib shape (update, digest, hexdigest, copy, digest_size,
block_size), so Python's ``hmac`` module builds HMAC-SM3 on top of it.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable, Protocol

from tongsuopy.crypto import hashes as _tongsuo_hashes

from trust import oids
from trust.errors import InvalidInput, UnsupportedAlgorithm


class HashObject(Protocol):
    digest_size: int
    block_size: int

    def update(self, data: bytes) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> "HashObject": ...


class SM3:
    """Incremental SM3. ``digest()`` may be called more than once, as with hashlib."""

    name = "sm3"
    digest_size = 32
    block_size = 64

    def __init__(self, data: bytes = b"", _ctx=None):
        self._ctx = _ctx if _ctx is not None else _tongsuo_hashes.Hash(_tongsuo_hashes.SM3())
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        self._ctx.update(_as_bytes(data))

    def copy(self) -> "SM3":
        return SM3(_ctx=self._ctx.copy())

    def digest(self) -> bytes:
        return self._ctx.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()


def sm3(data: bytes) -> bytes:
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
    new: Callable[[], HashObject]

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
