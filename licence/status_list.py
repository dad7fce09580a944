"""IETF OAuth Token Status List (draft-ietf-oauth-status-list) for licences: each licence has
a random index in a list (herd privacy: a verifier who fetches the list learns nothing of
which licence it checks), two bits per licence, zlib-compressed, in a signed CWT that offline
verifiers cache (spec §9).

Values: 0 valid; 1 invalid (吊销, 撤销, 注销, 失效, 转出: irreversible); 2 suspended (暂扣);
3 superseded by a change (变更; application-specific). Bits are packed least significant
first: index i is bits 2·(i mod 4) of byte i div 4.

The token is a COSE_Sign1 (licence/qr_payload.py) with ``typ`` (16) "application/statuslist+cwt",
claims ``iss`` (1) our public URL, ``sub`` (2) the list's URI, ``iat`` (6), ``ttl`` (65534) and
``status_list`` (65533) = {"bits": 2, "lst": zlib bytes} [I: the draft moved this claim's key
between revisions (65535 in early ones); 65533 is the one of its later revisions], signed by
the ``licence-list`` certificate in x5chain, as the key list. It is made from the registry on
each request, so it changes with every status change.
"""

import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import cbor2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hsm.keystore import KeyStore
from licence import qr_keys, qr_payload
from licence.models import licences
from licence.qr_payload import PayloadError
from licence.registry import LicenceStatus
from trust.clock import utc_now
from trust.errors import NotFound

SIZE = 1 << 17                     # indices per list: 32 KiB of 2-bit entries before compression
MAX_LISTS = 10_000
BITS = 2
TTL = timedelta(hours=1)
TYP = 16
MEDIA_TYPE = "application/statuslist+cwt"
SUB, TTL_CLAIM, STATUS_LIST_CLAIM = 2, 65534, 65533
VALID, INVALID, SUSPENDED, SUPERSEDED = 0, 1, 2, 3
MAX_INFLATED = SIZE * 8 // 8 * 2   # bytes a list of SIZE entries of up to 8 bits would need, doubled


def value_of(status: LicenceStatus, superseded: bool) -> int:
    if superseded:
        return SUPERSEDED
    if status == LicenceStatus.VALID:
        return VALID
    return SUSPENDED if status == LicenceStatus.SUSPENDED else INVALID


def pack(values: dict[int, int], size: int, bits: int = BITS) -> bytes:
    """The list's byte array: ``values`` (index → status) at ``bits`` each, the rest 0."""
    per_byte = 8 // bits
    data = bytearray((size + per_byte - 1) // per_byte)
    for index, value in values.items():
        data[index // per_byte] |= value << (index % per_byte * bits)
    return bytes(data)


def unpack(data: bytes, index: int, bits: int = BITS) -> int:
    per_byte = 8 // bits
    return data[index // per_byte] >> (index % per_byte * bits) & ((1 << bits) - 1)


def assign(session: Session) -> tuple[int, int]:
    """A free (list, index) for a new licence, the index drawn at random. The unique constraint
    on the pair is the backstop when two issuances draw the same slot at once."""
    in_list = licences.c.status_list == 1
    if (session.execute(select(func.count()).where(in_list)).scalar() or 0) >= SIZE // 2:  # a draw rarely collides
        raise NotFound("status list 1 is full: a second list is still to be built", "状态列表 1 已满")
    while True:
        index = secrets.randbelow(SIZE)
        if session.execute(select(licences.c.licence_id).where(in_list & (licences.c.status_index == index))).first() \
                is None:
            return 1, index


def token(session: Session, keystore: KeyStore, number: int, *, public_url: str,
          clock: Callable[[], datetime] = utc_now) -> bytes:
    """The signed Status List Token of list ``number`` as the registry stands now."""
    values = _values(session, number)
    claims = {1: public_url.rstrip("/"), SUB: qr_payload.status_list_uri(public_url, number), 6: int(clock().timestamp()),
              TTL_CLAIM: int(TTL.total_seconds()),
              STATUS_LIST_CLAIM: {"bits": BITS, "lst": zlib.compress(pack(values, SIZE), 9)}}
    signer, chain = qr_keys.list_signer(session, keystore)
    return qr_payload.cose_sign1(session, keystore, signer, cbor2.dumps(claims, canonical=True), x5chain=chain,
                                 extra_header={TYP: MEDIA_TYPE})


def _values(session: Session, number: int) -> dict[int, int]:
    """The list's set values by index, from the registry now; NotFound for a list not begun."""
    if not 1 <= number <= MAX_LISTS:  # also keeps an absurd number away from the database
        raise NotFound(f"there is no status list {str(number)[:20]}", f"没有编号为 {str(number)[:20]} 的状态列表")
    rows = session.execute(select(licences.c.status_index, licences.c.status, licences.c.superseded_by)
                           .where(licences.c.status_list == number))
    values = {row.status_index: value_of(LicenceStatus(row.status), row.superseded_by is not None) for row in rows}
    if number != 1 and not values:
        raise NotFound(f"there is no status list {number}", f"没有编号为 {number} 的状态列表")
    return values


def current(session: Session, number: int, *, public_url: str,
            clock: Callable[[], datetime] = utc_now) -> "StatusList":
    """List ``number`` as the registry stands now, unsigned: what an online check reads."""
    return StatusList(qr_payload.status_list_uri(public_url, number), clock(), TTL, BITS,
                      pack(_values(session, number), SIZE))


@dataclass(frozen=True)
class StatusList:
    uri: str
    issued_at: datetime
    ttl: timedelta
    bits: int
    lst: bytes              # inflated

    def status(self, index: int) -> int | None:
        """The value at ``index``; None when the list has no such index."""
        if not 0 <= index < len(self.lst) * 8 // self.bits:
            return None
        return unpack(self.lst, index, self.bits)

    def stale(self, now: datetime) -> bool:
        return now - self.issued_at > self.ttl


def read_token(data: bytes, *, trusted_roots) -> StatusList:
    """A Status List Token checked like the key list (its signature and its signer's chain);
    PayloadError naming what is wrong."""
    claims, issued_at = qr_keys.open_signed_list(data, trusted_roots=trusted_roots, what="status list",
                                                 time_claim=6)
    status_list = claims.get(STATUS_LIST_CLAIM)
    if not (isinstance(status_list, dict) and status_list.get("bits") in (1, 2, 4, 8)
            and isinstance(status_list.get("lst"), bytes) and isinstance(claims.get(SUB), str)):
        raise PayloadError("the status list token lacks sub or status_list {bits, lst}",
                           "状态列表令牌缺少 sub 或 status_list {bits, lst}")
    ttl = claims.get(TTL_CLAIM)
    return StatusList(claims[SUB], issued_at, timedelta(seconds=ttl if isinstance(ttl, int) and ttl > 0 else 0),
                      status_list["bits"], inflate(status_list["lst"]))


def inflate(lst: bytes) -> bytes:
    """The list's bytes, never more than ``MAX_INFLATED`` of them (a zlib bomb is refused)."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(lst, MAX_INFLATED)
    except zlib.error as e:
        raise PayloadError(f"the status list is not zlib data: {e}", f"状态列表不是 zlib 数据：{e}") from None
    if inflater.unconsumed_tail:
        raise PayloadError("the status list inflates beyond any list we make", "状态列表解压后超出上限")
    return data
