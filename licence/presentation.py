"""亮证: a holder shows a licence from the wallet as a short-lived signed presentation, which a
verifier accepts only while fresh (``TTL``) and only once per verifier nonce, so that a
screenshot replayed later, or the same code checked twice by one verifier, fails with a
clear message.

    ZZP:<Base45 of COSE_Sign1 by the service's licence-list certificate (x5chain)>
    payload {1: licence identifier, 2: issued at, 3: expires at, 4: 16-byte id,
             5: {field key: value} of the 有条件 fields the holder chose to disclose}

The presentation names the licence; the verifier reads the licence's standing and its
无条件 fields from the registry at the moment of the check, so a licence revoked a second
after it was shown is reported revoked. 不予共享 fields can never be disclosed.
"""

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import cbor2
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hsm.keystore import KeyStore
from licence import qr_keys, qr_payload, registry
from licence.catalogue import Sharing
from licence.models import licence_presentation_use
from licence.qr_payload import PayloadError
from licence.registry import LicenceRecord
from licence.sharing import field_value
from licence.types import get as get_type
from licence.verify import standing
from trust import audit, base45
from trust.clock import beijing_date, iso_z, utc_now
from trust.errors import InvalidInput, NotFound
from trust.report import CheckName as C, CheckStatus as S, Report, SignatureReport, check

PREFIX = "ZZP:"
MAX_READINGS = 128  # %20s beyond which only the all-spaces reading is tried
TTL = timedelta(seconds=60)
MAX_TEXT = 4296
MAX_NONCE = 64


def _conditional(session: Session, record: LicenceRecord) -> dict:
    licence_type = get_type(session, record.record["type_code"], record.record["type_version"]).licence_type
    return {f.key: f for f in licence_type.fields if f.sharing == Sharing.CONDITIONAL}


def present(session: Session, keystore: KeyStore, record: LicenceRecord, disclose, *, actor: str,
            clock: Callable[[], datetime] = utc_now) -> tuple[str, datetime]:
    """The presentation text of ``record`` disclosing the 有条件 fields named in ``disclose``,
    and when it expires. Audited. Does not commit."""
    if not isinstance(disclose, (list, tuple)) or not all(isinstance(k, str) for k in disclose):
        raise InvalidInput("'disclose' is a list of field keys", "“disclose”须为字段名列表")
    conditional = _conditional(session, record)
    refused = sorted(set(disclose) - set(conditional))
    if refused:
        raise InvalidInput(f"only conditionally shared (有条件) fields are chosen for disclosure, not {refused[0][:40]}",
                           f"只能选择披露有条件共享的字段，不能选择 {refused[0][:40]}")
    values = {key: value for key in sorted(set(disclose))
              if (value := field_value(record.record, conditional[key])) is not None}
    now = clock().replace(microsecond=0)
    expires = now + TTL
    payload = cbor2.dumps({1: record.licence_id, 2: int(now.timestamp()), 3: int(expires.timestamp()),
                           4: secrets.token_bytes(16), 5: values}, canonical=True)
    signer, chain = qr_keys.list_signer(session, keystore)
    message = qr_payload.cose_sign1(session, keystore, signer, payload, x5chain=chain, actor="licence")
    audit.append(session, actor, "licence.present", record.licence_id, {"disclosed": sorted(values),
                                                                       "expires_at": iso_z(expires)})
    return PREFIX + base45.encode(message), expires


def _failed(check_name: C, zh: str, en: str, licence: dict | None = None) -> Report:
    return Report("presentation", (SignatureReport("s001", "COSE_Sign1", (check(check_name, S.FAILED, zh=zh, en=en),)),),
                  licence=licence)


def _open(text: str, trusted_roots):
    if not text.startswith(PREFIX):
        raise PayloadError(f"not a licence presentation (it does not start with {PREFIX})",
                           f"不是亮证码（不以 {PREFIX} 开头）")
    return qr_keys.open_signed_list(base45.decode(text[len(PREFIX):]), trusted_roots=trusted_roots,
                                    what="presentation", time_claim=2)


def verify(session: Session, text, nonce, *, trusted_roots, clock: Callable[[], datetime] = utc_now) -> Report:
    """The report (format "presentation") on a shown licence for the verifier whose one-time
    ``nonce`` comes with it; records the (presentation, nonce) pair, so commit."""
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= MAX_NONCE or not nonce.isascii() \
            or not nonce.isprintable():
        raise InvalidInput(f"the verifier's nonce is 16 to {MAX_NONCE} printable ASCII characters, new for each check",
                           f"核验方随机数须为 16 至 {MAX_NONCE} 个可打印 ASCII 字符，每次核验都重新生成")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return _failed(C.FORMAT, "亮证码过长或不是文本", "the presentation is not a text of a presentation's length")
    payload = base45.trim(text).rpartition("#")[2]
    # A browser writes the fragment's spaces as %20 (the page sends location.hash), but "%20" is
    # Base45 too: about one code in three hundred holds one. So every %20 is read as a space,
    # then each in turn as itself (a bounded number of tries; a wrong reading fails at Base45 or
    # CBOR, before any signature); the signature decides.
    parts = payload.split("%20")
    readings = [" ".join(parts)]
    if 1 < len(parts) <= MAX_READINGS:
        readings += [" ".join(parts[:gap + 1]) + "%20" + " ".join(parts[gap + 1:]) for gap in range(len(parts) - 1)]
    try:
        for reading in readings:
            try:
                value, issued_at = _open(reading, trusted_roots)
                break
            except InvalidInput as error:
                refused = error
        else:
            raise refused
        licence_id, expires, ident, disclosed = value.get(1), value.get(3), value.get(4), value.get(5)
        if not (isinstance(licence_id, str) and isinstance(expires, int) and isinstance(ident, bytes)
                and isinstance(disclosed, dict)):
            raise PayloadError("the presentation lacks its licence, expiry, id or disclosed fields",
                               "亮证码缺少证照标识、有效期、编号或披露字段")
    except InvalidInput as e:
        return _failed(C.FORMAT, e.zh, e.en)
    now = clock()
    age = int((now - issued_at).total_seconds())
    if now.timestamp() > expires:
        return _failed(C.TIMESTAMP, f"亮证码已过期：出示于 {age} 秒前，有效 {int(TTL.total_seconds())} 秒；请持证人重新出示",
                       f"the presentation has expired: shown {age} s ago, good for {int(TTL.total_seconds())} s; "
                       f"ask the holder to show it again", {"licence_id": licence_id})
    try:
        with session.begin_nested():
            session.execute(insert(licence_presentation_use).values(presentation=ident.hex(), nonce=nonce,
                                                                    used_at=now))
    except IntegrityError:
        return _failed(C.TIMESTAMP, "此亮证码已用同一核验随机数核验过：可能是重放", "this presentation was already checked "
                       "with this verifier nonce: it may be a replay", {"licence_id": licence_id})
    try:
        record = registry.get(session, licence_id)
    except (NotFound, InvalidInput):
        return _failed(C.LICENCE_STATUS, "亮证码所指证照不在本平台登记", "the licence shown is not in this registry")
    ok, why = standing(record, beijing_date(now))
    checks = (check(C.FORMAT, S.PASSED, zh="亮证码结构可解析", en="the presentation parses"),
              check(C.SIGNATURE, S.PASSED, zh="签名有效", en="the signature verifies"),
              check(C.CHAIN, S.PASSED, zh="签名证书链接到可信根证书", en="the signer chains to a root trusted for licences"),
              check(C.TIMESTAMP, S.PASSED, zh=f"出示于 {age} 秒前，仍在有效期内，且首次以此随机数核验",
                    en=f"shown {age} s ago, still fresh, and first checked with this nonce"),
              check(C.LICENCE_STATUS, S.PASSED if ok else S.FAILED, zh=why.zh, en=why.en))
    r = record.record
    conditional = _conditional(session, record)
    public = {f.key: {"label": f.label, "value": v}
              for f in get_type(session, r["type_code"], r["type_version"]).licence_type.fields
              if f.sharing == Sharing.UNCONDITIONAL and (v := field_value(r, f)) is not None}
    shown = {k: {"label": conditional[k].label, "value": v} for k, v in disclosed.items()
             if k in conditional and isinstance(v, str)}
    section = {"licence_id": licence_id, "type_name": r["type_name"], "issuer": {"name": r["issuer"]["name"]},
               "holder": {"name": r["holder"]["name"]}, "status": record.status.value, "status_zh": record.status.zh,
               "fields": {**public, **shown}, "disclosed": sorted(shown),
               "shown_at": iso_z(issued_at), "checked_at": iso_z(now)}
    return Report("presentation", (SignatureReport("s001", "COSE_Sign1", checks, signing_time=iso_z(issued_at)),),
                  licence=section)
