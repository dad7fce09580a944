"""The keys licence QR payloads are signed with, and the signed key list offline verifiers
cache (spec §9; served at ``/.well-known/licence-keys``).

Each issuer has one current QR key in the KeyStore (usage ``qr``; SM2 by default, ES256 as an
option). Rotating makes a new one current and retires the old, which stays in the list: a QR
code it signed must never turn "invalid" because its key was rotated (the EU certificate's
verifiers did exactly that when a list missed a key). A retired key leaves the list only
when no licence it signed is valid any more (not yet done: retired keys stay).

The list is a COSE_Sign1 (licence/qr_payload.py) whose payload is deterministic CBOR

    {1: issued at, 2: ttl seconds, 3: [{1: kid, 2: COSE alg, 3: issuer code, 4: SPKI DER,
                                         5: created at, 6: retired at or null}, ...],
     4: the service's public URL, under which a QR's status list number is found}

signed by the service's list signer: a ``licence-list`` certificate of our SM2 issuing CA
(its key in the KeyStore, usage ``qr``), which travels in the x5chain header with the CA's
certificate, so a verifier needs only the root it trusts for licences.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cbor2
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ca import authority
from ca.authority import spki_of
from hsm.keystore import KeyRef, KeyStore
from licence import qr_payload
from licence.models import licence_qr_key
from licence.qr_payload import PayloadError, QrKey
from trust import audit
from trust.clock import as_utc, utc_now
from trust.errors import InvalidInput, InvalidSignature, NotFound, TrustError
from trust.path import validate_path
from trust.report import CheckName as C, CheckStatus as S
from trust.x509 import parse_certificate

LIST_TTL = timedelta(days=1)
LIST_PROFILE = "licence-list"
_ALGORITHMS = {"sm2": "SM2-with-SM3", "es256": "ecdsa-with-SHA256"}


@dataclass(frozen=True)
class ListedKey:
    key: QrKey
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True)
class KeyList:
    keys: tuple[ListedKey, ...]
    issued_at: datetime
    ttl: timedelta
    signer: str

    def stale(self, now: datetime) -> bool:
        return now - self.issued_at > self.ttl


def rotate(session: Session, keystore: KeyStore, issuer_code: str, *, algorithm: str = "sm2", actor: str,
           clock: Callable[[], datetime] = utc_now) -> QrKey:
    """A new current QR key for the issuer; the one before is retired (and stays listed).
    Audited. Does not commit."""
    if algorithm not in _ALGORITHMS:
        raise InvalidInput(f"a licence QR key is sm2 or es256, not {str(algorithm)[:20]!r}",
                           f"证照二维码密钥须为 sm2 或 es256，不能是 {str(algorithm)[:20]!r}")
    now = clock()
    name = _ALGORITHMS[algorithm]
    ref = keystore.generate(session, name, f"licence-qr/{issuer_code}/{now:%Y%m%dT%H%M%S%f}", ["qr"], actor=actor)
    spki = spki_of(keystore.public_key(session, ref))
    kid = qr_payload.kid_of(name, spki)
    session.execute(update(licence_qr_key).where((licence_qr_key.c.issuer_code == issuer_code)
                                                 & licence_qr_key.c.retired_at.is_(None)).values(retired_at=now))
    session.execute(insert(licence_qr_key).values(key_id=ref.id, issuer_code=issuer_code, algorithm=name,
                                                  kid=kid.hex(), spki=spki, created_at=now))
    audit.append(session, actor, "licence.qr_key.rotate", issuer_code, {"key_id": ref.id, "kid": kid.hex(),
                                                                       "algorithm": name})
    return QrKey(kid, name, spki, issuer_code)


def current(session: Session, keystore: KeyStore, issuer_code: str) -> KeyRef:
    """The issuer's current QR key; NotFound when it has none (``trustctl licence rotate-key``)."""
    key_id = session.execute(select(licence_qr_key.c.key_id).where(
        (licence_qr_key.c.issuer_code == issuer_code) & licence_qr_key.c.retired_at.is_(None))).scalar()
    if key_id is None:
        raise NotFound(f"issuer {issuer_code} has no licence QR key", f"颁证单位 {issuer_code} 没有证照二维码密钥")
    return keystore.get(session, key_id)


def listed(session: Session) -> list[ListedKey]:
    rows = session.execute(select(licence_qr_key).order_by(licence_qr_key.c.issuer_code, licence_qr_key.c.created_at))
    return [ListedKey(QrKey(bytes.fromhex(r.kid), r.algorithm, bytes(r.spki), r.issuer_code), as_utc(r.created_at),
                      as_utc(r.retired_at)) for r in rows]


def list_signer(session: Session, keystore: KeyStore) -> tuple[KeyRef, tuple[bytes, ...]]:
    """The newest valid ``licence-list`` certificate with a KeyStore key, and its chain."""
    try:
        found = authority.newest_keyed(session, LIST_PROFILE)
    except NotFound:
        raise NotFound("no licence list signer is configured (a licence-list certificate)",
                       "未配置证照列表签名证书（licence-list）") from None
    return keystore.get(session, found.key_id), (found.der, found.issuer_der)


def set_up_list_signer(session: Session, keystore: KeyStore, *, actor: str, ca_name: str = "sm2-issuing"):
    """Issue the list signer's certificate, its key made in the KeyStore. Does not commit."""
    return authority.issue_with_new_key(session, keystore, ca_name, LIST_PROFILE,
                                        subject={"C": "CN", "O": authority.DEFAULT_ORGANIZATION,
                                                 "CN": "证照密钥与状态列表 Licence key and status lists"},
                                        label=f"licence/list-signer/{utc_now():%Y%m%dT%H%M%S}", actor=actor)


def key_list(session: Session, keystore: KeyStore, *, public_url: str,
             clock: Callable[[], datetime] = utc_now) -> bytes:
    """The signed key list (COSE_Sign1), as served at ``public_url``."""
    entries = [{1: k.key.kid, 2: qr_payload.cose_algorithm(k.key.algorithm), 3: k.key.issuer_code, 4: k.key.spki,
                5: int(k.created_at.timestamp()), 6: int(k.retired_at.timestamp()) if k.retired_at else None}
               for k in listed(session)]
    payload = cbor2.dumps({1: int(clock().timestamp()), 2: int(LIST_TTL.total_seconds()), 3: entries,
                           4: public_url.rstrip("/")}, canonical=True)
    signer, chain = list_signer(session, keystore)
    return qr_payload.cose_sign1(session, keystore, signer, payload, x5chain=chain, actor="licence")


def open_signed_list(data: bytes, *, trusted_roots, what: str, time_claim: int) -> tuple[dict, datetime]:
    """A list we sign (the key list, a status list): its signature by the certificate it
    carries, that certificate's chain to one of ``trusted_roots`` (the roots trusted for
    licences) at the list's time; the payload and that time. PayloadError naming the fault."""
    signed = qr_payload.open_cose_sign1(bytes(data))
    if not signed.x5chain:
        raise PayloadError(f"the {what} carries no signer certificate (x5chain)", f"{what} 未携带签名证书（x5chain）")
    try:
        leaf = parse_certificate(signed.x5chain[0])
        qr_payload.verify_raw(qr_payload.algorithm_name(signed.algorithm), leaf.public_key_info,
                              signed.to_be_signed, signed.signature)
    except (InvalidSignature, TrustError, ValueError) as e:
        raise PayloadError(f"the {what}'s signature does not verify: {str(e)[:120]}",
                           f"{what} 的签名验证不通过：{str(e)[:120]}") from None
    value = qr_payload.cbor_value(signed.payload, what)
    issued = _int(value, time_claim, "issued at")
    if not 0 < issued < 2**33:
        raise PayloadError(f"the {what}'s time is out of range", f"{what} 的时间超出范围")
    issued_at = datetime.fromtimestamp(issued, tz=UTC)
    chain = validate_path(leaf, roots=tuple(trusted_roots), intermediates=signed.x5chain[1:], at=issued_at,
                          leaf_usage=None)
    if chain.status(C.CHAIN) not in (S.PASSED, S.WARNING):
        raise PayloadError(f"the {what}'s signer does not chain to a trusted root",
                           f"{what} 的签名者无法链接到可信根证书")
    return value, issued_at


def read_key_list(data: bytes, *, trusted_roots) -> KeyList:
    """A key list checked by ``open_signed_list``; entries that cannot be read are skipped."""
    value, issued_at = open_signed_list(data, trusted_roots=trusted_roots, what="key list", time_claim=1)
    service = value.get(4) if isinstance(value.get(4), str) else None
    keys = []
    listed = value.get(3)
    for entry in listed if isinstance(listed, list) else []:
        if not isinstance(entry, dict):
            continue
        try:
            key = QrKey(entry[1], qr_payload.algorithm_name(entry[2]), entry[4], entry[3], service)
            if not (isinstance(key.kid, bytes) and isinstance(key.spki, bytes) and isinstance(key.issuer_code, str)):
                continue
            retired = entry.get(6)
            keys.append(ListedKey(key, datetime.fromtimestamp(_int(entry, 5, "created at"), tz=UTC),
                                  None if retired is None else datetime.fromtimestamp(int(retired), tz=UTC)))
        except (KeyError, PayloadError, ValueError, TypeError, OverflowError, OSError):
            continue  # an entry we cannot read is skipped, never fatal to the others
    signer = parse_certificate(qr_payload.open_cose_sign1(bytes(data)).x5chain[0]).subject
    return KeyList(tuple(keys), issued_at, timedelta(seconds=_int(value, 2, "ttl")), signer)


def _int(mapping, key, name: str) -> int:
    item = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(item, int) or isinstance(item, bool):
        raise PayloadError(f"the list's {name} is missing", f"列表缺少{name}")
    return item

