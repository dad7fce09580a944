"""Using a seal (用章): SES_Signature v4 over data or its SM3 digest, signed with the holder's
key in the KeyStore (usage ``seal``).

``sign`` makes one signature with seal.ses.build_signature_v4, optionally time-stamped.
``sign_batch`` (``prepare_batch`` then ``BatchSigner.sign``) makes up to 1,000 at once and
is the hot path: the authorisation, the seal,
the certificate, the key and everything in TBS_Sign but dataHash are settled once; per
digest it costs one SM3 over the last 40-odd bytes of TBS_Sign (the hash of Z ‖ the
bytes before dataHash is computed once and copied), one SM2 signature and the DER
assembly. Every use is audited with the caller and purpose: one ``seal.sign`` record per
signature, one ``seal.sign-batch`` record per batch with the count (besides the
KeyStore's own ``key.sign`` record).
"""

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy.orm import Session

from ca import tsa
from hsm.keystore import KeyRef, KeyStore, Usage
from seal.registry import SealRecord, check_use
from seal.ses import build_signature_v4, build_tbs_sign_v4
from trust import audit, oids
from trust.ber import BIT_STRING, IA5_STRING, OCTET_STRING, OID, SEQUENCE, encode_oid, tlv
from trust.clock import utc_now
from trust.errors import InvalidInput, KeyUnavailable, UnsupportedAlgorithm
from trust.hashes import SM3, sm3
from trust.sm2 import SM2PublicKey

MAX_BATCH = 1000
MAX_PURPOSE = 200           # characters
DIGEST_SIZE = 32            # SM3
_HASH_TLV = b"\x03\x21\x00"  # BIT STRING, 33 bytes, no unused bits: dataHash


def _purpose(purpose) -> str:
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > MAX_PURPOSE or "\x00" in purpose:
        raise InvalidInput(f"the purpose of the seal use is 1 to {MAX_PURPOSE} characters",
                           f"用章事由须为 1 至 {MAX_PURPOSE} 个字符")
    return purpose.strip()


def property_info_for(purpose: str) -> str:
    """TBS_Sign.propertyInfo (an IA5String) from the purpose: ASCII kept, other characters
    percent-encoded as UTF-8, so a Chinese purpose survives and reads back with unquote."""
    return quote(purpose, safe=" !#$&'()*+,-./:;=?@[]_~")


def _digest(value, index: int | None = None) -> bytes:
    where = ("", "") if index is None else (f" (item {index})", f"（第 {index} 项）")
    if not isinstance(value, (bytes, bytearray)) or len(value) != DIGEST_SIZE:
        size = len(value) if isinstance(value, (bytes, bytearray)) else "?"
        raise InvalidInput(f"an SM3 digest is {DIGEST_SIZE} bytes, got {size}{where[0]}",
                           f"SM3 杂凑值应为 {DIGEST_SIZE} 字节，实际为 {size} 字节{where[1]}")
    return bytes(value)


@dataclass(frozen=True)
class _Template:
    """A seal's TBS_Sign split around dataHash, with SM3(Z ‖ the bytes before it) under way."""

    prefix: bytes          # TBS_Sign up to and including the dataHash BIT STRING header
    suffix: bytes          # propertyInfo (and nothing after: no extDatas)
    tail: bytes            # cert and signatureAlgID TLVs of SES_Signature
    hashed: SM3            # SM3 state over Z_A ‖ prefix


def _made(record: SealRecord) -> tuple[bytes, str]:
    """The seal and the holder's key id of a seal that check_use let through: both are set
    once a seal is made, and only a made seal is ever active."""
    if record.seal is None or record.holder_key_id is None:
        raise KeyUnavailable(f"seal {record.es_id} has no SES_Seal or signing key recorded",
                             f"印章 {record.es_id} 没有登记印章数据或签章密钥")
    return record.seal, record.holder_key_id


def _template(session: Session, keystore: KeyStore, record: SealRecord, ref: KeyRef, property_info: str,
              time_info: datetime) -> _Template:
    tbs = build_tbs_sign_v4(seal=_made(record)[0], data_hash=bytes(DIGEST_SIZE), property_info=property_info,
                            time_info=time_info)
    suffix = tlv(IA5_STRING, property_info.encode())
    prefix = tbs[:len(tbs) - len(suffix) - DIGEST_SIZE]
    assert prefix.endswith(_HASH_TLV) and tbs.endswith(suffix)
    public = keystore.public_key(session, ref)
    if not isinstance(public, SM2PublicKey):
        raise UnsupportedAlgorithm("a seal holder's key is SM2 (GB/T 38540)", "签章者密钥须为 SM2（GB/T 38540）")
    hashed = SM3(public.z())
    hashed.update(prefix)
    tail = tlv(OCTET_STRING, record.holder_certificate) + tlv(OID, encode_oid(oids.SM2_WITH_SM3))
    return _Template(prefix, suffix, tail, hashed)


def _caller(client_id: str, operator: str | None) -> str:
    return f"client:{client_id}" + (f"/operator:{operator}" if operator else "")


@dataclass(frozen=True)
class BatchSigner:
    """A batch use of one seal by one caller, settled once by ``prepare_batch``.

    A server should end the session's transaction between ``prepare_batch`` (reads only)
    and ``sign`` (CPU, then one audit append): SQLite holds its writer lock for a whole
    transaction (trust.db begins them IMMEDIATE), and a transaction kept open across a
    batch of signatures made the two gunicorn workers take turns (0.45 of two cores'
    raw SM2 rate; 0.75 with the read transaction ended). ``prepare_batch`` also checks the
    key's state, so the KeyStore reads nothing (opens no transaction) while signing."""

    record: SealRecord
    ref: KeyRef
    template: _Template
    client_id: str
    operator: str | None
    purpose: str

    def sign(self, session: Session, keystore: KeyStore, digests: Sequence[bytes]) -> list[bytes]:
        """One DER SES_Signature v4 per SM3 digest (1 to 1,000), in order, all with the same
        timeInfo; appends the batch's audit record. Does not commit."""
        hashes = _digests(digests)
        actor = _caller(self.client_id, self.operator)
        prefix, suffix, tail, hashed = self.template.prefix, self.template.suffix, self.template.tail, self.template.hashed
        to_sign = []
        for data_hash in hashes:
            state = hashed.copy()
            state.update(data_hash + suffix)
            to_sign.append(state.digest())  # e = SM3(Z ‖ TBS_Sign)
        values = keystore.sign_many(session, self.ref, to_sign, usage=Usage.SEAL, prehashed=True, actor=actor)
        signatures = [tlv(SEQUENCE, prefix + data_hash + suffix + tail + tlv(BIT_STRING, b"\x00" + value))
                      for data_hash, value in zip(hashes, values, strict=True)]
        audit.append(session, actor, "seal.sign-batch", self.record.es_id, {
            "client_id": self.client_id, "operator": self.operator, "purpose": self.purpose, "count": len(hashes),
            "digests_sm3": sm3(b"".join(hashes)).hex()})
        return signatures


def _digests(digests: Sequence[bytes]) -> list[bytes]:
    if not isinstance(digests, (list, tuple)) or not 0 < len(digests) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} digests", f"批量用章须有 1 至 {MAX_BATCH} 个杂凑值")
    return [_digest(d, i) for i, d in enumerate(digests)]


def prepare_batch(session: Session, keystore: KeyStore, es_id: str, *, client_id: str, operator: str | None = None,
                  purpose: str, property_info: str | None = None,
                  clock: Callable[[], datetime] = utc_now) -> BatchSigner:
    """Check the caller may use the seal (a refusal is audited) and settle everything but the
    digests. Reads only."""
    purpose = _purpose(purpose)
    record = check_use(session, es_id, client_id=client_id, operator=operator, purpose=purpose, clock=clock)
    ref = keystore.get(session, _made(record)[1])
    keystore.check_usable(session, ref, usage=Usage.SEAL)  # so that signing soon after reads nothing
    template = _template(session, keystore, record, ref, property_info or property_info_for(purpose),
                         clock().replace(microsecond=0))
    return BatchSigner(record, ref, template, client_id, operator, purpose)


def sign_batch(session: Session, keystore: KeyStore, es_id: str, digests: Sequence[bytes], *, client_id: str,
               operator: str | None = None, purpose: str, property_info: str | None = None,
               clock: Callable[[], datetime] = utc_now) -> list[bytes]:
    """``prepare_batch`` and ``BatchSigner.sign`` in one transaction. Does not commit."""
    _digests(digests)  # bad input is refused before the seal is even looked up
    return prepare_batch(session, keystore, es_id, client_id=client_id, operator=operator, purpose=purpose,
                         property_info=property_info, clock=clock).sign(session, keystore, digests)


def sign(session: Session, keystore: KeyStore, es_id: str, *, data: bytes | None = None,
         digest: bytes | None = None, client_id: str, operator: str | None = None, purpose: str,
         timestamp: str = "none", property_info: str | None = None,
         clock: Callable[[], datetime] = utc_now) -> bytes:
    """A DER SES_Signature v4 over ``data`` or its 32-byte SM3 ``digest``. ``timestamp``:
    "none", "local" (our SM2 TSA, in-process) or the URL of an RFC 3161 TSA; the token is
    over the signature value (GB/T 38540, eseal-gbt38540.md §5). Does not commit."""
    purpose = _purpose(purpose)
    if (data is None) == (digest is None):
        raise InvalidInput("give either the data or its SM3 digest", "请给出原文或其 SM3 杂凑值，二选一")
    if data is not None and not isinstance(data, (bytes, bytearray)):
        raise InvalidInput("the data to seal must be bytes", "待签原文必须是字节串")
    data_hash = sm3(bytes(data)) if data is not None else _digest(digest)
    record = check_use(session, es_id, client_id=client_id, operator=operator, purpose=purpose, clock=clock)
    stamper = _time_stamper(session, keystore, timestamp)
    seal, key_id = _made(record)
    ref = keystore.get(session, key_id)
    actor = _caller(client_id, operator)
    result = build_signature_v4(
        seal=seal, data_hash=data_hash, property_info=property_info or property_info_for(purpose),
        signer_cert=record.holder_certificate, time_info=clock().replace(microsecond=0),
        sign=lambda tbs: keystore.sign(session, ref, tbs, usage=Usage.SEAL, actor=actor), time_stamp=stamper)
    audit.append(session, actor, "seal.sign", record.es_id, {
        "client_id": client_id, "operator": operator, "purpose": purpose, "data_hash": data_hash.hex(),
        "timestamp": "none" if stamper is None else ("local" if timestamp == "local" else timestamp)})
    return result


def _time_stamper(session: Session, keystore: KeyStore, timestamp) -> Callable[[bytes], bytes] | None:
    if timestamp in (None, "none"):
        return None
    if timestamp == "local":
        signer = tsa.find_signer(session, keystore, family="sm2")

        def local(signature: bytes) -> bytes:
            request = tsa.TimeStampRequest(oids.SM3, sm3(signature), None, secrets.randbits(64), True)
            return tsa.time_stamp_token(session, keystore, signer, request, now=utc_now())
        return local
    if isinstance(timestamp, str) and timestamp.startswith(("http://", "https://")) and len(timestamp) <= 2000:
        return lambda signature: tsa.request_timestamp(timestamp, signature, "SM3")
    raise InvalidInput("timestamp is \"none\", \"local\" or the http(s) URL of a time-stamp authority",
                       "时间戳参数须为 none、local 或时间戳服务的 http(s) 地址")
