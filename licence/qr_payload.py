"""RFC 8392 CBOR Web Token claims in an RFC 9052 COSE_Sign1, as RFC 9285 Base45 text: the
licence QR's offline payload, our profile of ../shared/spec/elicence-gbt369xx.md §9 [I: no
national profile exists; the design follows the EU Digital COVID Certificate].

    ZZ1:<Base45 of COSE_Sign1 = 18([protected {1: alg, 4: kid}, {}, claims, signature])>

Claims: ``iss`` (1) the issuer's credit code, ``iat`` (6), ``nbf`` (5) and ``exp`` (4) from the
licence's validity (Beijing days; no ``exp`` for 长期), and one private claim (``LICENCE_CLAIM``)
holding a map with small keys: 1 the licence identifier as [type code, serial, version] (its
constant prefix, the issuer, which is ``iss``, and the check character are rebuilt: GB/T
36904), 3 the first 16 bytes of the SM3 of its printed face (``face_digest``), 4 the holder's
name (masked for a natural person, as the public page shows it; shortened with "…" only if
the code would pass ``HARD_LIMIT``), 5 the first 16 bytes of SM3(salt ‖ holder code) and 6
its 8-byte salt, so that a verifier shown the holder's ID card can compare the number without
the QR carrying it, and 7 the status reference ``[list number, index]``: the list is
``status_list_uri(service, number)`` at the service whose key list holds the signing key
(the draft's ``{idx, uri}`` less the URI's 45 constant bytes, which alone would push every
code past version 12 [I]).

Two forms of text (the type's template chooses):

    ZZ1:<Base45>                                   the payload alone
    HTTPS://HOST/V/<licence identifier>#ZZ1:<Base45>   the licence's page, payload in the fragment

In the URL form ``iss`` and the identifier claim are signed but not sent twice: the verifier
puts them back from the URL's path before checking the signature, so the phone's camera
opens the page and the fragment (never sent to a server) still proves the licence offline.
Scheme, host and the ``V`` are upper case so that all but the ``#`` is QR alphanumeric. A
browser hands the page its URL with the fragment's spaces as %20, which Base45 may also hold
literally: ``readings`` lists what such a text may stand for and the signature decides.

Signed with a KeyStore key of usage ``qr``: SM2 with SM3 (signer ID 1234567812345678, raw
r‖s) under the private-use COSE algorithm ``ALG_SM2`` (COSE registers no SM2), or ES256 (−7,
raw r‖s). The kid is the first 8 bytes of SM3 (SM2) or SHA-256 (ES256) of the key's
SubjectPublicKeyInfo. What is signed and sent is deterministic CBOR (RFC 8949 §4.2).

Reading is bounded and strict: at most ``MAX_TEXT`` characters, every structural fault a
``format`` FAILED naming it, never an exception other than our own.
"""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from itertools import combinations
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from sqlalchemy.orm import Session

from ca.authority import spki_of
from hsm.keystore import KeyRef, KeyStore, Usage
from licence import identifier
from licence.catalogue import canonical_json
from licence.layout import qr_version
from licence.pdf_verify import licence_metadata
from licence.verify import is_pdf, read_metadata
from trust import base45
from trust.algorithms import signature_algorithm
from trust.clock import BEIJING, iso_z, utc_now
from trust.errors import InvalidInput, InvalidSignature, TrustError
from trust.hashes import sm3
from trust.keys import load_public_key
from trust.report import Check, CheckName as C, CheckStatus as S, Code, Message, Report, SignatureReport, check
from trust.sm2 import DEFAULT_ID, SM2PublicKey, signature_to_raw

PREFIX = "ZZ1:"
ALG_SM2 = -65537          # private use (RFC 9053 §10.4 leaves values below -65536 to private use)
ALG_ES256 = -7
LICENCE_CLAIM = -65537    # private-use CWT claim key (RFC 8392 §9.1)
ISS, EXP, NBF, IAT = 1, 4, 5, 6
X5CHAIN = 33              # RFC 9360
COSE_SIGN1_TAG = 18
MAX_TEXT = 4296           # characters: the most any QR code holds (version 40-L, alphanumeric)
# The largest QR version at error correction M a licence code may take. The goal is 10 and is
# not reached: in the URL form the 64-byte signature, the 8-byte kid, ~13 bytes of COSE framing,
# the 16-byte face SM3, the 16-byte holder digest and its 8-byte salt (spec §9's sizes) and the
# page URL with the identifier already fill version 11 to 12; 10 would need shorter digests and
# salt, or no iat: a change of the profile, not of this code.
HARD_LIMIT = 12
BROWSER_SPACE = "%20"     # how a browser's location.href writes a space of the fragment
MAX_LITERALS = 2          # literal %20s tried in a browser-given URL form (see readings)
MAX_GAPS = 16             # %20s beyond which only the all-spaces reading is tried (a code has ~7 spaces)
_ALGORITHMS = {"SM2-with-SM3": ALG_SM2, "ecdsa-with-SHA256": ALG_ES256}
_NAMES = {ALG_SM2: "SM2-with-SM3", ALG_ES256: "ES256"}


@dataclass(frozen=True)
class Claims:
    licence_id: str
    issuer_code: str
    version: int
    issued_at: datetime
    valid_from: date
    valid_to: date | None
    face_sm3: bytes          # 16 bytes: face_digest of the printed face
    holder_name: str         # as shown: masked for a natural person
    holder_digest: bytes     # 16 bytes
    salt: bytes              # 8 bytes
    status: tuple[int, int] | None = None    # (status list number, index)

    def tocbor_value(self, *, with_id: bool = True) -> dict:
        """The CWT claims; without ``iss`` and the identifier claim for the URL form."""
        lid = identifier.parse(self.licence_id)
        private = {3: self.face_sm3, 4: self.holder_name, 5: self.holder_digest, 6: self.salt}
        if self.status is not None:
            private[7] = list(self.status)
        claims = {IAT: int(self.issued_at.timestamp()), NBF: _day_start(self.valid_from), LICENCE_CLAIM: private}
        if with_id:
            claims[ISS] = self.issuer_code
            private[1] = [lid.type_code, lid.serial, lid.version]
        if self.valid_to is not None:
            claims[EXP] = _day_start(self.valid_to + timedelta(days=1))
        return claims


def holder_digest(code: str, salt: bytes) -> bytes:
    return sm3(salt + code.strip().upper().encode())[:16]


def face_digest(face) -> bytes:
    """The first 16 bytes of SM3 over the printed face, (key, label, text) triples in order,
    as canonical JSON. The QR stands on the face it binds, so it cannot carry the file's own
    SM3 (spec §9 asks for it [I]: taken as the face's, which the file's metadata repeats)."""
    return sm3(canonical_json([list(item) for item in face]).encode())[:16]


def new_claims(*, licence_id: str, issuer_code: str, version: int, issued_at: datetime, valid_from: date,
               valid_to: date | None, face, holder_name: str, holder_code: str,
               status: tuple[int, int] | None = None) -> Claims:
    salt = secrets.token_bytes(8)
    return Claims(licence_id, issuer_code, version, issued_at, valid_from, valid_to, face_digest(face), holder_name,
                  holder_digest(holder_code, salt), salt, status)


def cose_algorithm(name: str) -> int:
    return _ALGORITHMS[name]


def algorithm_name(value) -> str:
    """Our algorithm name for a COSE algorithm value we sign with; PayloadError otherwise."""
    for name, number in _ALGORITHMS.items():
        if value == number and not isinstance(value, bool):
            return name
    raise PayloadError(f"COSE algorithm {str(value)[:20]} is not SM2 ({ALG_SM2}) or ES256 ({ALG_ES256})",
                       f"COSE 算法 {str(value)[:20]} 不是 SM2（{ALG_SM2}）或 ES256（{ALG_ES256}）")


def kid_of(algorithm: str, spki: bytes) -> bytes:
    return (sm3(spki) if algorithm == "SM2-with-SM3" else hashlib.sha256(spki).digest())[:8]


def sign(session: Session, keystore: KeyStore, key: KeyRef, claims: Claims, *, page_url: str | None = None,
         actor: str = "licence") -> str:
    """The QR text for ``claims``, signed with ``key`` (usage ``qr``) in the KeyStore: the
    payload alone, or with ``page_url`` (the service's public URL) in the URL form. A holder
    name that would take the code past ``HARD_LIMIT`` is shortened first."""
    address = None if page_url is None else licence_page(page_url, claims.licence_id)
    claims = _fitted(claims, address)
    protected = protected_header(session, keystore, key)
    payload = cbor2.dumps(claims.tocbor_value(with_id=address is None), canonical=True)
    signed = cbor2.dumps(claims.tocbor_value(), canonical=True)
    der = keystore.sign(session, key, _to_be_signed(protected, signed), usage=Usage.QR, actor=actor)
    return _text(address, _message(protected, payload, _raw(key.algorithm, der)))


def licence_page(public_url: str, licence_id: str) -> str:
    """The licence's page as the QR's URL form writes it: scheme and host upper case (they
    are case-insensitive), then ``/V/<identifier>``."""
    scheme, _, rest = public_url.rstrip("/").partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.upper()}://{host.upper()}{slash}{path}/V/{licence_id}"


def _text(address: str | None, message: bytes) -> str:
    body = PREFIX + base45.encode(message)
    return body if address is None else f"{address}#{body}"


def _fitted(claims: Claims, address: str | None) -> Claims:
    """``claims`` with the holder's name shortened (a prefix and "…") as little as keeps the
    code within ``HARD_LIMIT``, sized with a placeholder signature of the real length."""
    def version(name: str) -> int:
        trial = replace(claims, holder_name=name).tocbor_value(with_id=address is None)
        placeholder = _message(cbor2.dumps({1: ALG_SM2, 4: bytes(8)}, canonical=True),
                               cbor2.dumps(trial, canonical=True), bytes(64))
        return qr_version(_text(address, placeholder))

    name = claims.holder_name
    if version(name) <= HARD_LIMIT:
        return claims
    low, high = 0, len(name) - 1          # the longest prefix that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if version(name[:middle] + "…") <= HARD_LIMIT else (low, middle - 1)
    return replace(claims, holder_name=name[:low] + "…")


def cose_sign1(session: Session, keystore: KeyStore, key: KeyRef, payload: bytes, *, x5chain: tuple[bytes, ...] = (),
               extra_header: dict | None = None, actor: str = "licence") -> bytes:
    """A tagged COSE_Sign1 over ``payload``, protected header {1: alg, 4: kid[, 33: x5chain]}
    (RFC 9360's x5chain: the signer's certificate first), deterministic CBOR."""
    protected = protected_header(session, keystore, key, {**({X5CHAIN: list(x5chain)} if x5chain else {}),
                                                         **(extra_header or {})})
    der = keystore.sign(session, key, _to_be_signed(protected, payload), usage=Usage.QR, actor=actor)
    return _message(protected, payload, _raw(key.algorithm, der))


def protected_header(session: Session, keystore: KeyStore, key: KeyRef, extra: dict | None = None) -> bytes:
    if key.algorithm not in _ALGORITHMS:
        raise InvalidInput(f"licence QR payloads and lists are signed with SM2 or ES256, not {key.algorithm}",
                           f"证照二维码载荷与列表须使用 SM2 或 ES256 签名，不能使用 {key.algorithm}")
    header = {1: _ALGORITHMS[key.algorithm], 4: kid_of(key.algorithm, spki_of(keystore.public_key(session, key)))}
    return cbor2.dumps({**header, **(extra or {})}, canonical=True)


def _message(protected: bytes, payload: bytes, raw: bytes) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, raw]), canonical=True)


def _raw(algorithm: str, der: bytes) -> bytes:
    return signature_to_raw(der) if algorithm == "SM2-with-SM3" else _ecdsa_raw(der)


def _to_be_signed(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 §4.4 Sig_structure for COSE_Sign1, no external data."""
    return cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)


def _ecdsa_raw(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _day_start(day: date) -> int:
    return int(datetime.combine(day, time(0), tzinfo=BEIJING).timestamp())


# ---------------------------------------------------------------- reading and verifying

@dataclass(frozen=True)
class QrKey:
    """A licence-signing public key as a verifier's key list holds it."""

    kid: bytes
    algorithm: str           # "SM2-with-SM3" | "ecdsa-with-SHA256"
    spki: bytes
    issuer_code: str
    service: str | None = None   # the public URL of the service whose key list holds it


@dataclass(frozen=True)
class Decoded:
    algorithm: int
    kid: bytes
    to_be_signed: bytes
    signature: bytes
    claims: Claims


class PayloadError(InvalidInput):
    code = "qr_payload"


def decode(text: str) -> Decoded:
    """Parse the QR text (the payload alone, or in the URL form); PayloadError naming the
    first fault."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise PayloadError(f"a licence QR payload is a text of at most {MAX_TEXT} characters",
                           f"证照二维码载荷应为不超过 {MAX_TEXT} 个字符的文本")
    address, _, text = base45.trim(text).rpartition("#")
    if not text.startswith(PREFIX):
        raise PayloadError(f"not a licence QR payload (it does not start with {PREFIX})",
                           f"不是证照二维码载荷（不以 {PREFIX} 开头）")
    try:
        message = base45.decode(text[len(PREFIX):])
    except InvalidInput as e:
        raise PayloadError(f"the payload is not Base45: {e.en}", f"载荷不是 Base45 编码：{e.zh}") from None
    signed = open_cose_sign1(message)
    value = cbor_value(signed.payload, "claims")
    in_url = _licence_in(address)
    if isinstance(value, dict) and ISS not in value and isinstance(value.get(LICENCE_CLAIM), dict):
        if in_url is None:
            raise PayloadError("the payload names no licence and no licence page URL comes with it",
                               "载荷未写明证照标识，也没有附带证照页面网址")
        value = {**value, ISS: in_url.issuer_code,
                 LICENCE_CLAIM: {**value[LICENCE_CLAIM], 1: [in_url.type_code, in_url.serial, in_url.version]}}
    claims = _claims(value)
    if in_url is not None and str(in_url) != claims.licence_id:
        raise PayloadError(f"the URL names licence {in_url}, the payload {claims.licence_id}",
                           f"网址中的证照 {in_url} 与载荷中的证照 {claims.licence_id} 不一致")
    return Decoded(signed.algorithm, signed.kid, _to_be_signed(signed.protected, cbor2.dumps(value, canonical=True)),
                   signed.signature, claims)


def _licence_in(address: str) -> identifier.LicenceId | None:
    """The licence identifier ending a ``…/v/<identifier>`` page URL; None for anything else."""
    head, _, last = address.rstrip("/").rpartition("/")
    if not head.lower().endswith("/v"):
        return None
    try:
        return identifier.parse(last)
    except InvalidInput:
        return None


@dataclass(frozen=True)
class Sign1:
    algorithm: int
    kid: bytes
    x5chain: tuple[bytes, ...]
    protected: bytes
    signature: bytes
    payload: bytes

    @property
    def to_be_signed(self) -> bytes:
        return _to_be_signed(self.protected, self.payload)


def open_cose_sign1(message: bytes) -> Sign1:
    """The parts of a tagged COSE_Sign1 as ``cose_sign1`` writes it; PayloadError otherwise."""
    tagged = cbor_value(message, "COSE_Sign1")
    if not (isinstance(tagged, cbor2.CBORTag) and tagged.tag == COSE_SIGN1_TAG and isinstance(tagged.value, list)
            and len(tagged.value) == 4):
        raise PayloadError("the payload is not a tagged COSE_Sign1 of four items", "载荷不是带标签的四项 COSE_Sign1")
    protected, _unprotected, payload, signature = tagged.value
    if not all(isinstance(v, bytes) for v in (protected, payload, signature)):
        raise PayloadError("COSE_Sign1's protected header, payload and signature must be byte strings",
                           "COSE_Sign1 的受保护头、载荷和签名必须是字节串")
    header = cbor_value(protected, "protected header")
    if not isinstance(header, dict) or header.get(1) not in _NAMES or not isinstance(header.get(4), bytes) \
            or len(header[4]) != 8:
        raise PayloadError("the protected header must name SM2 or ES256 (1) and an 8-byte kid (4)",
                           "受保护头须指明 SM2 或 ES256 算法（1）和 8 字节密钥标识（4）")
    chain = header.get(X5CHAIN, [])
    if isinstance(chain, bytes):
        chain = [chain]
    if not isinstance(chain, list) or not all(isinstance(c, bytes) for c in chain) or len(chain) > 5:
        raise PayloadError("x5chain (33) is up to five DER certificates", "x5chain（33）应为至多五个 DER 证书")
    if len(signature) != 64:
        raise PayloadError(f"the signature is {len(signature)} bytes, not the 64 of r‖s",
                           f"签名长度为 {len(signature)} 字节，不是 r‖s 的 64 字节")
    return Sign1(header[1], header[4], tuple(chain), protected, signature, payload)


def cbor_value(data: bytes, what: str):
    """``data`` decoded, if it is deterministically encoded CBOR; PayloadError otherwise."""
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise PayloadError(f"the {what} is not CBOR: {str(exc)[:120]}", f"{what} 不是 CBOR：{str(exc)[:120]}") from None
    try:
        canonical = cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError, RecursionError):
        canonical = None
    if canonical != data:
        raise PayloadError(f"the {what} is not deterministically encoded CBOR", f"{what} 不是确定性编码的 CBOR")
    return value


def _claims(value) -> Claims:
    def need(mapping, key, kind, name):
        item = mapping.get(key) if isinstance(mapping, dict) else None
        if not isinstance(item, kind) or isinstance(item, bool):
            raise PayloadError(f"the claim {name} is missing or not a {kind.__name__}",
                               f"声明 {name} 缺失或类型错误")
        return item

    private = need(value, LICENCE_CLAIM, dict, "licence")
    status = private.get(7)
    if status is not None:
        if not (isinstance(status, list) and len(status) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in status)):
            raise PayloadError("the status reference is [list number, index]", "状态引用应为 [列表编号, 序号]")
        status = tuple(status)
    expires = value.get(EXP) if isinstance(value, dict) else None
    try:
        issued_at = datetime.fromtimestamp(need(value, IAT, int, "iat"), BEIJING)
        valid_from = datetime.fromtimestamp(need(value, NBF, int, "nbf"), BEIJING).date()
        valid_to = None if expires is None else (datetime.fromtimestamp(expires, BEIJING) - timedelta(days=1)).date()
    except (OverflowError, OSError, ValueError, TypeError):
        raise PayloadError("a time claim (iat, nbf, exp) is out of range", "时间声明（iat、nbf、exp）超出范围") from None
    issuer = need(value, ISS, str, "iss")
    parts = need(private, 1, list, "licence id")
    if len(parts) != 3 or not (isinstance(parts[0], str) and isinstance(parts[1], str) and isinstance(parts[2], int)):
        raise PayloadError("the licence id claim is [type code, serial, version]", "证照标识声明应为 [类型代码, 序号, 版本]")
    try:
        licence_id = identifier.build(parts[0], issuer, parts[1], parts[2])
    except InvalidInput as e:
        raise PayloadError(f"the licence id claim is not a GB/T 36904 identifier: {e.en}",
                           f"证照标识声明不是 GB/T 36904 证照标识：{e.zh}") from None
    claims = Claims(str(licence_id), issuer, licence_id.version, issued_at, valid_from, valid_to, need(private, 3, bytes, "face SM3"),
                    need(private, 4, str, "holder"), need(private, 5, bytes, "holder digest"),
                    need(private, 6, bytes, "salt"), status)
    if len(claims.face_sm3) != 16 or len(claims.holder_digest) != 16 or len(claims.salt) != 8:
        raise PayloadError("the face SM3 and the holder digest are 16 bytes, the salt 8",
                           "照面 SM3 与持证主体摘要须为 16 字节，盐值 8 字节")
    return claims


def verify(text: str, keys: Iterable[QrKey], *, file: bytes | None = None, holder_code: str | None = None,
           statuses=None, clock=utc_now) -> Report:
    """The report (format "qr") on a licence QR's payload, from the key list given and, with
    ``statuses`` (a licence.status_list.StatusList), the licence's status as that list says,
    with its age: a list older than its ttl is a warning, never by itself INVALID."""
    keys = list(keys)
    reports = (_verify(reading, keys, file, holder_code, statuses, clock) for reading in readings(text))
    first = next(reports)
    if first.signatures[0].check_status(C.SIGNATURE) is S.PASSED:
        return first
    return next((r for r in reports if r.signatures[0].check_status(C.SIGNATURE) is S.PASSED), first)


def readings(text: str) -> list[str]:
    """What a QR text may stand for. A browser's location.href writes a space of the fragment
    as %20 and leaves a %20 of Base45 as it is (about one code in three hundred holds one), so
    in the URL form each %20 may be either: the readings with at most ``MAX_LITERALS`` of them
    literal, fewest first; the signature decides which is the code."""
    address, hash_, payload = base45.trim(text).rpartition("#") if isinstance(text, str) else ("", "", text)
    parts = payload.split(BROWSER_SPACE) if address else [payload]
    if len(parts) == 1:
        return [text]
    gaps = range(len(parts) - 1)
    found = []
    for literals in range(min(MAX_LITERALS if len(gaps) <= MAX_GAPS else 0, len(gaps)) + 1):
        for kept in combinations(gaps, literals):
            joined = parts[0] + "".join((BROWSER_SPACE if i in kept else " ") + part
                                        for i, part in enumerate(parts[1:]))
            found.append(address + hash_ + joined)
    return found


def decode_any(text: str) -> Decoded:
    """``decode`` of the first reading of ``text`` that parses (see ``readings``)."""
    for reading in readings(text)[:-1]:
        try:
            return decode(reading)
        except PayloadError:
            continue
    return decode(readings(text)[-1])


def _verify(text: str, keys, file, holder_code, statuses, clock) -> Report:
    try:
        decoded = decode(text)
    except PayloadError as e:
        return Report("qr", (SignatureReport("s001", "COSE_Sign1", (check(C.FORMAT, S.FAILED, zh=e.zh, en=e.en),)),))
    claims = decoded.claims
    candidates = [k for k in keys if k.kid == decoded.kid and _ALGORITHMS.get(k.algorithm) == decoded.algorithm]
    signature_checks, signer = _signature_checks(decoded, candidates)
    checks = [check(C.FORMAT, S.PASSED, zh=f"载荷结构可解析（{_NAMES[decoded.algorithm]}）",
                    en=f"the payload parses ({_NAMES[decoded.algorithm]})"),
              *signature_checks, _integrity(claims, file), _status(claims, statuses, signer)]
    now = clock()
    section: dict[str, Any] = {"licence_id": claims.licence_id, "issuer": {"code": claims.issuer_code}, "version": claims.version,
               "holder": {"name": claims.holder_name}, "valid_from": claims.valid_from.isoformat(),
               "valid_to": claims.valid_to.isoformat() if claims.valid_to else "长期",
               "kid": decoded.kid.hex(), "checked_at": iso_z(now)}
    warnings = []
    if statuses is not None and statuses.stale(now):
        age = now - statuses.issued_at
        warnings.append(Message(zh=f"状态列表已缓存 {age}，超过其有效时长 {statuses.ttl}，请尽快更新",
                                en=f"the status list is {age} old, past its ttl of {statuses.ttl}: fetch a new one"))
    if statuses is not None:
        section["status_list_issued_at"] = iso_z(statuses.issued_at)
    if holder_code is not None:
        matches = holder_digest(holder_code, claims.salt) == claims.holder_digest
        section["holder"]["code_matches"] = matches
        if not matches:
            warnings.append(Message(zh="输入的持证主体证件号码与证照不符", en="the holder code given is not this licence's"))
    return Report("qr", (SignatureReport("s001", "COSE_Sign1", tuple(checks), signer=claims.issuer_code,
                                         signing_time=iso_z(claims.issued_at)),), tuple(warnings), licence=section)


def _signature_checks(decoded: Decoded, candidates: list[QrKey]) -> tuple[list[Check], QrKey | None]:
    if not candidates:
        reason = Message(zh=f"密钥列表中没有标识为 {decoded.kid.hex()} 的密钥", en=f"no key with kid {decoded.kid.hex()} is "
                                                                         f"in the key list")
        return [Check(C.SIGNATURE, S.INDETERMINATE, reason, Code.NO_SIGNING_CERTIFICATE_FOUND),
                Check(C.CHAIN, S.INDETERMINATE, reason)], None
    for key in candidates:  # a verifier must try every key with the kid (spec §9)
        if key.issuer_code != decoded.claims.issuer_code:
            continue
        try:
            verify_raw(key.algorithm, key.spki, decoded.to_be_signed, decoded.signature)
        except (InvalidSignature, TrustError, ValueError):
            continue
        return [check(C.SIGNATURE, S.PASSED, zh="签名有效", en="the signature verifies"),
                check(C.CHAIN, S.PASSED, zh=f"签名密钥 {key.kid.hex()} 在密钥列表中，属于颁证单位 {key.issuer_code}",
                      en=f"the signing key {key.kid.hex()} is in the key list, for issuer {key.issuer_code}")], key
    return [check(C.SIGNATURE, S.FAILED, zh="签名验证不通过：载荷可能被篡改", en="the signature does not verify: the payload "
                                                               "may have been altered"),
            check(C.CHAIN, S.PASSED, zh="密钥列表中有此密钥标识", en="the key list holds this kid")], None


def verify_raw(algorithm: str, spki: bytes, message: bytes, raw: bytes) -> None:
    """Raise InvalidSignature unless ``raw`` (r‖s) verifies over ``message`` with the key."""
    public = load_public_key(spki)
    if algorithm == "SM2-with-SM3":
        if not isinstance(public, SM2PublicKey):
            raise InvalidSignature("the key is not an SM2 key", "该密钥不是 SM2 密钥")
        public.verify(raw, message, signer_id=DEFAULT_ID, encoding="raw")
        return
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    signature_algorithm("ES256").verify(public, message, der)


_STATUS_TEXT = {1: ("已吊销、撤销、注销或失效", "revoked, annulled, cancelled or expired"), 2: ("已暂扣", "suspended"),
                3: ("已变更，被新版本取代", "superseded by a new version")}


def status_list_uri(service: str, number: int) -> str:
    """Where status list ``number`` of the service at ``service`` (its public URL) is served."""
    return f"{service.rstrip('/')}/api/v1/status-lists/{number}"


def _status(claims: Claims, statuses, signer: QrKey | None) -> Check:
    if statuses is None:
        return check(C.LICENCE_STATUS, S.INDETERMINATE, zh="未提供状态列表，无法确认证照现在的状态",
                     en="no status list was given: whether the licence still stands is not known")
    number = claims.status[0] if claims.status else None
    if signer is not None and signer.service:
        ours = number is not None and statuses.uri == status_list_uri(signer.service, number)
    else:  # keys given without their list's service: the list's number alone
        ours = number is not None and statuses.uri.endswith(f"/status-lists/{number}")
    if not ours or claims.status is None:
        return check(C.LICENCE_STATUS, S.INDETERMINATE, zh="二维码未指向所给的状态列表",
                     en="the QR does not refer to the status list given")
    index = claims.status[1]
    value = statuses.status(index)
    if value is None:
        return check(C.LICENCE_STATUS, S.INDETERMINATE, zh=f"状态列表中没有序号 {index}",
                     en=f"the status list has no index {index}")
    at = iso_z(statuses.issued_at)
    if value == 0:
        return check(C.LICENCE_STATUS, S.PASSED, zh=f"状态列表（{at}）记为有效", en=f"the status list of {at} holds it valid")
    zh, en = _STATUS_TEXT.get(value, ("状态未知", f"of unknown status {value}"))
    return check(C.LICENCE_STATUS, S.FAILED, zh=f"状态列表（{at}）记为{zh}", en=f"the status list of {at} says it is {en}")


def _integrity(claims: Claims, file: bytes | None) -> Check:
    """The licence file given (OFD or PDF) is the licence the QR names, with the face it records.
    The file's own seal is judged by verifying the file."""
    if file is None:
        return check(C.INTEGRITY, S.NOT_APPLICABLE, zh="未提供证照文件", en="no licence file was given")
    try:
        meta = licence_metadata(file)[0] if is_pdf(file) else read_metadata(file)
    except (TrustError, ValueError) as e:
        meta, why = None, str(e)[:120]
    else:
        why = "no licence metadata"
    if meta is None or not meta.face:
        return check(C.INTEGRITY, S.INDETERMINATE, zh=f"无法从文件读取证照照面（{why}）",
                     en=f"the licence face cannot be read from the file ({why})")
    if meta.licence_id == claims.licence_id and face_digest(meta.face) == claims.face_sm3:
        return check(C.INTEGRITY, S.PASSED, zh="证照文件即二维码所指证照，照面一致",
                     en="the file is the licence the QR names, with the same face")
    return check(C.INTEGRITY, S.FAILED, zh="证照文件与二维码所指证照或照面不符",
                 en="the file is not the licence the QR names, or its face differs")
