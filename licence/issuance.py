"""Issuing a licence (签发): from a request to a sealed OFD, its record and its audit entry.

    {"type_code": "11100000MB0143028R001", "issuer_code": "<USCC>",
     "holder": {"name": "...", "code": "...", "code_type": "001" | "111"},
     "face": {"<key>": "<value>", ...},
     "validity": {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD" | "长期"}}     (validity optional)

Everything is checked first (the type, the client's right to issue for that issuer, the
holder, every face field, the validity, that each value fits its box on the face); then,
in the caller's transaction, the serial is taken, the face laid out with the GB/T 36903
metadata, the issuer's seal applied through seal.signing (its use audited with the licence
identifier as purpose), and the record, the file, its SM3, the history entry and the audit
record written. Nothing is committed here: a failure at any step leaves nothing behind
once the caller rolls back, not even a consumed serial.

Idempotency: a client's ``Idempotency-Key`` with the same request returns the licence
issued the first time; with another request it is refused (409).
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.orm import Session

from hsm.keystore import KeyStore
from licence import face, identifier, layout, pades, qr_keys, qr_payload, registry, status_list
from licence.catalogue import LicenceType, QrForm, Source, ValidityRule, canonical_json
from licence.metadata import LONG_TERM, HolderCodeType
from licence.models import licence_idempotency, licence_issuer, licence_serial, licences
from licence.pdf import points_box, write_pdf
from licence.pdf_verify import signed_revision
from licence.registry import LICENCE_SERVICE, LicenceRecord, LicenceStatus, Operation
from licence.types import get as get_type
from licence.verify import mask_name
from ofd import layout as lm
from ofd.signature import Provider, Stamp, sign_ofd
from ofd.writer import write_ofd
from seal import registry as seals, signing
from trust import audit
from trust.clock import beijing_date, utc_now
from trust.errors import InvalidInput, NotFound, TrustError
from trust.hashes import sm3
from trust.ids import validate_resident_id, validate_uscc

MAX_NAME = 100
MAX_IDEMPOTENCY_KEY = 255
_REQUEST_MEMBERS = {"type_code", "issuer_code", "holder", "face", "validity"}


class IdempotencyConflict(TrustError):
    """The Idempotency-Key was used before with another request (HTTP 409)."""

    code = "idempotency_conflict"


@dataclass(frozen=True)
class Holder:
    name: str
    code: str
    code_type: HolderCodeType


def _member(body: dict, name: str, kind, en: str, zh: str):
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput(f"'{name}' ({en}) is missing or not {kind.__name__}",
                           f"“{name}”（{zh}）缺失或类型不对")
    return value


def parse_holder(value, licence_type: LicenceType) -> Holder:
    if not isinstance(value, dict):
        raise InvalidInput("'holder' is an object with name, code and code_type", "“holder”须为含 name、code、code_type 的对象")
    name = face.normalise_text(_member(value, "name", str, "the holder's name", "持证主体名称"))
    if not 0 < len(name) <= MAX_NAME or face.CONTROL_CHARS.search(name):
        raise InvalidInput(f"the holder's name is 1 to {MAX_NAME} characters of text",
                           f"持证主体名称须为 1 至 {MAX_NAME} 个字符")
    try:
        code_type = HolderCodeType(_member(value, "code_type", str, "the holder code type", "持证主体代码类型代码"))
    except ValueError:
        code_type = None
    if code_type not in licence_type.holder_code_types:
        allowed = ", ".join(f"{t.value} ({t.zh})" for t in licence_type.holder_code_types)
        raise InvalidInput(f"the holder code type of a {licence_type.name_en} is {allowed}",
                           f"{licence_type.name}的持证主体代码类型须为 {allowed}")
    code = _member(value, "code", str, "the holder's code", "持证主体代码")
    code = validate_uscc(code) if code_type == HolderCodeType.CREDIT_CODE else validate_resident_id(code).number
    return Holder(name, code, code_type)


def _validity(value, licence_type: LicenceType, issue_date: date) -> tuple[date, date | None]:
    if value is None:
        value = {}
    if not isinstance(value, dict) or set(value) - {"from", "to"}:
        raise InvalidInput("'validity' is an object with from and to", "“validity”须为含 from、to 的对象")
    try:
        start = face.parse_date(value["from"]) if value.get("from") else issue_date
        given = value.get("to")
        end = None if given in (None, LONG_TERM) else face.parse_date(given)
    except InvalidInput as e:
        raise InvalidInput(f"the validity {e.en}", f"有效期{e.zh}") from None
    if licence_type.validity == ValidityRule.LONG_TERM and end is not None:
        raise InvalidInput(f"a {licence_type.name_en} is valid without end (长期): give no end date",
                           f"{licence_type.name}长期有效，不应给出截止日期")
    if licence_type.validity == ValidityRule.YEARS and end is None:
        if licence_type.validity_years is None:  # the catalogue's reader requires them for this rule
            raise InvalidInput(f"the catalogue gives {licence_type.name_en} no validity in years",
                               f"目录未给出{licence_type.name}的有效年限")
        end = _add_years(start, licence_type.validity_years) - timedelta(days=1)
    if licence_type.validity == ValidityRule.GIVEN and end is None:
        raise InvalidInput(f"a {licence_type.name_en} needs the end of its validity", f"{licence_type.name}须给出有效期截止日期")
    if end is not None and end < start:
        raise InvalidInput(f"the validity ends ({end}) before it starts ({start})", f"有效期截止（{end}）早于起始（{start}）")
    return start, end


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Draft:
    """A licence checked and ready to be numbered, laid out and sealed."""

    licence_type: LicenceType
    type_version: int
    issuer: registry.Issuer
    holder: Holder
    values: dict[str, str]
    issue_date: date
    valid_from: date
    valid_to: date | None

    def printed(self) -> dict[str, str]:
        return face.printed(self.licence_type, self.values, {
            Source.HOLDER_NAME: self.holder.name, Source.HOLDER_CODE: self.holder.code,
            Source.ISSUER_NAME: self.issuer.issuer_name, Source.ISSUE_DATE: self.issue_date.isoformat(),
            Source.VALID_FROM: self.valid_from.isoformat(),
            Source.VALID_TO: self.valid_to.isoformat() if self.valid_to else None})

    def record(self, licence_id: identifier.LicenceId, supersedes: str | None) -> dict:
        printed = self.printed()
        return {
            "licence_id": str(licence_id), "version": licence_id.version,
            "type_code": self.licence_type.type_code, "type_version": self.type_version,
            "type_name": self.licence_type.name,
            "issuer": {"code": self.issuer.issuer_code, "name": self.issuer.issuer_name},
            "holder": {"name": self.holder.name, "code": self.holder.code, "code_type": self.holder.code_type.value},
            "licence_no": printed[self.licence_type.licence_no],
            "issue_date": self.issue_date.isoformat(), "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "area_code": self.issuer.area_code, "face": self.values,
            "printed": [[f.key, f.label, printed[f.key]] for f in self.licence_type.fields if printed[f.key]],
            "supersedes": supersedes,
        }


def draft(session: Session, body, *, client_id: str, clock: Callable[[], datetime] = utc_now) -> Draft:
    """Check a request completely; the client's right to issue is checked (and a refusal
    audited) before anything about the holder is looked at. Writes nothing else."""
    if not isinstance(body, dict):
        raise InvalidInput("the request is a JSON object", "请求须为 JSON 对象")
    unknown = sorted(set(body) - _REQUEST_MEMBERS)
    if unknown:
        raise InvalidInput(f"'{unknown[0][:40]}' is not a member of a licence request", f"“{unknown[0][:40]}”不是签发请求的成员")
    type_code = _member(body, "type_code", str, "the licence type code", "证照类型代码")
    issuer_code = _member(body, "issuer_code", str, "the issuing organisation's credit code", "颁证单位代码")
    version = get_type(session, type_code)
    issuer = registry.check_issuer(session, version.licence_type.type_code, issuer_code, client_id)
    return _draft(version.licence_type, version.version, issuer, body, clock)


def _draft(licence_type: LicenceType, type_version: int, issuer: registry.Issuer, body: dict,
           clock: Callable[[], datetime]) -> Draft:
    holder = parse_holder(body.get("holder"), licence_type)
    values = face.validate(licence_type, body.get("face"), holder_code=holder.code, holder_code_type=holder.code_type)
    issue_date = beijing_date(clock())
    valid_from, valid_to = _validity(body.get("validity"), licence_type, issue_date)
    result = Draft(licence_type, type_version, issuer, holder, values, issue_date, valid_from, valid_to)
    layout.page(layout.Face(licence_type, result.printed()))  # a value that does not fit fails here, named
    return result


def _next_serial(session: Session, type_code: str, issuer_code: str, year: int) -> str:
    """The issuer's next serial for the type: the year and a counter, taken in the caller's
    transaction (so a failed issue gives its number back)."""
    key = (licence_serial.c.type_code == type_code) & (licence_serial.c.issuer_code == issuer_code)
    last = session.execute(select(licence_serial.c.last).where(key).with_for_update()).scalar()
    if last is None:
        last = 0
        session.execute(insert(licence_serial).values(type_code=type_code, issuer_code=issuer_code, last=1))
    else:
        session.execute(update(licence_serial).where(key).values(last=last + 1))
    return f"{year:04d}{last + 1:07d}"


def seal_and_store(session: Session, keystore: KeyStore, ready: Draft, licence_id: identifier.LicenceId, *,
                   operation: Operation, supersedes: str | None, client_id: str, actor: str, verify_url: str,
                   with_pdf: bool = True, clock: Callable[[], datetime] = utc_now) -> LicenceRecord:
    """Lay out, seal and store one licence version with its history and audit entries; its
    PDF too unless ``with_pdf`` is False (``add_pdf`` makes it later)."""
    record = ready.record(licence_id, supersedes)
    now = clock().replace(microsecond=0)
    status_list_number, status_index = status_list.assign(session)
    qr_text, qr_kid = licence_qr(session, keystore, ready, licence_id, record, (status_list_number, status_index),
                                 public_url=verify_url, now=now)
    document = laid_out(ready, record, qr_text)
    seal = seals.get_seal(session, ready.issuer.es_id)
    stamp = Stamp(0, _seal_box(ready, seal))

    def signed_value(signature_xml: bytes, signature_loc: str) -> bytes:
        return signing.sign(session, keystore, seal.es_id, data=signature_xml, client_id=LICENCE_SERVICE,
                            operator=None, purpose=f"证照签发 licence {licence_id}", property_info=signature_loc,
                            clock=lambda: now)

    sealed = sign_ofd(write_ofd(document), signed_value, seal=seal.seal, stamps=[stamp], signing_time=now,
                      provider=Provider(name="trust-service licence", version="1.0"))
    digest = sm3(sealed).hex()
    pdf = _signed_pdf(session, keystore, ready, document, seal, licence_id) if with_pdf else None
    pdf_digest = sm3(signed_revision(pdf)).hex() if pdf is not None else None
    session.execute(insert(licences).values(
        status_list=status_list_number, status_index=status_index, qr_text=qr_text, qr_kid=qr_kid,
        licence_id=str(licence_id), base=licence_id.base, version=licence_id.version,
        type_code=ready.licence_type.type_code, type_version=ready.type_version, issuer_code=ready.issuer.issuer_code,
        holder_code=ready.holder.code, licence_no=record["licence_no"], issue_date=ready.issue_date,
        valid_from=ready.valid_from, valid_to=ready.valid_to, record=canonical_json(record),
        status=LicenceStatus.VALID.value,
        supersedes=supersedes, superseded_by=None, es_id=seal.es_id, ofd=sealed, ofd_sm3=digest,
        pdf=pdf, pdf_sm3=pdf_digest,
        client_id=client_id, created_at=now, status_changed_at=now))
    registry.add_history(session, str(licence_id), operation, None, LicenceStatus.VALID, now, actor,
                         {Operation.ISSUE: "新发", Operation.CHANGE: "变更", Operation.RENEW: "延续"}.get(operation, ""))
    audit.append(session, actor, "licence.issue", str(licence_id), {
        "operation": operation.value, "type_code": ready.licence_type.type_code, "type_version": ready.type_version,
        "issuer_code": ready.issuer.issuer_code, "es_id": seal.es_id, "ofd_sm3": digest, "pdf_sm3": pdf_digest,
        "supersedes": supersedes})
    return registry.get(session, str(licence_id))


_PDF_PICTURES = {"PNG", "JPG", "JPEG", "BMP", "GIF"}


def _seal_box(ready: Draft, seal) -> tuple[float, float, float, float]:
    """Where the seal's picture sits on the face (mm): centred where the template says."""
    centre_x, centre_y = ready.licence_type.template.seal
    return (centre_x - seal.picture_width_mm / 2, centre_y - seal.picture_height_mm / 2, seal.picture_width_mm,
            seal.picture_height_mm)


def add_pdf(session: Session, keystore: KeyStore, licence_id: str, *, actor: str) -> LicenceRecord:
    """Make and store the PDF of a licence issued without one (bulk conversion defers it;
    an issuer may get its PDF key after issuing): the face laid out again from the stored
    record and QR text, exactly as at issuance, signed now. Audited. Does not commit."""
    found = registry.get(session, licence_id)
    if found.pdf_sm3 is not None:
        return found
    r = found.record
    version = get_type(session, r["type_code"], r["type_version"])
    issuer = registry.get_issuer(session, r["type_code"], r["issuer"]["code"])
    ready = Draft(version.licence_type, version.version,
                  dataclasses.replace(issuer, issuer_name=r["issuer"]["name"], area_code=r["area_code"]),
                  Holder(r["holder"]["name"], r["holder"]["code"], HolderCodeType(r["holder"]["code_type"])),
                  dict(r["face"]), date.fromisoformat(r["issue_date"]), date.fromisoformat(r["valid_from"]),
                  found.valid_to)
    pdf = _signed_pdf(session, keystore, ready, laid_out(ready, r, found.qr_text), seals.get_seal(session, found.es_id),
                      identifier.parse(licence_id))
    if pdf is None:
        raise NotFound(en=f"the issuer {issuer.issuer_code} has no PDF key", zh=f"颁证单位 {issuer.issuer_code} 没有 PDF 签名密钥")
    digest = sm3(signed_revision(pdf)).hex()
    session.execute(update(licences).where(licences.c.licence_id == licence_id).values(pdf=pdf, pdf_sm3=digest))
    audit.append(session, actor, "licence.pdf", licence_id, {"pdf_sm3": digest})
    return registry.get(session, licence_id)


def without_pdf(session: Session, *, limit: int) -> list[str]:
    """Standing licences (valid, latest version) with no PDF whose issuer has a PDF key,
    oldest first: what ``add_pdf`` is for."""
    with_key = select(licence_issuer.c.type_code, licence_issuer.c.issuer_code).where(
        licence_issuer.c.pdf_key_id.is_not(None))
    return list(session.execute(select(licences.c.licence_id).where(
        licences.c.pdf_sm3.is_(None) & licences.c.superseded_by.is_(None)
        & (licences.c.status == LicenceStatus.VALID.value)
        & tuple_(licences.c.type_code, licences.c.issuer_code).in_(with_key))
        .order_by(licences.c.created_at, licences.c.licence_id).limit(limit)).scalars())


def _signed_pdf(session: Session, keystore: KeyStore, ready: Draft, document: lm.Document, seal,
                licence_id: identifier.LicenceId) -> bytes | None:
    """The same layout as a PDF, signed PAdES B-LTA with the issuer's PDF key by a visible
    signature that shows the seal's picture where the OFD stamps it; None when the issuer has
    no PDF key."""
    key_id = ready.issuer.pdf_key_id
    if key_id is None:
        return None
    certificate, ca_name = registry.pdf_signing_certificate(session, key_id, ready.issuer.issuer_code)
    long_term = pades.our_revocation_data(session, keystore, ca_name.removesuffix("-issuing"), (certificate,))
    appearance = pades.Appearance(points_box(document.pages[0], *_seal_box(ready, seal)),
                                  picture=seal.picture if seal.picture_type.upper() in _PDF_PICTURES else None)
    signer = pades.KeyStoreSigner(session, keystore, keystore.get(session, key_id), certificate,
                                  long_term.intermediates, actor=LICENCE_SERVICE)
    return pades.sign_pdf(write_pdf(document), signer, reason=f"证照签发 licence {licence_id}",
                          location=ready.issuer.issuer_name, appearance=appearance,
                          timestamper=pades.KeyStoreTimeStamper(session, keystore), long_term=long_term,
                          attachments=tuple((tag.file_name or f"Tag_{i}.xml", tag.data)  # the OFD writer's name
                                            for i, tag in enumerate(document.custom_tags)))


def laid_out(ready: Draft, record: dict, qr_text: str | None) -> lm.Document:
    """The licence in the layout model that both writers draw (ofd.writer and licence.pdf)."""
    face_ = layout.Face(ready.licence_type, ready.printed(), qr_text=qr_text)
    return layout.document(face_, registry.metadata_of(record))


def licence_qr(session: Session, keystore: KeyStore, ready: Draft, licence_id: identifier.LicenceId, record: dict,
               status: tuple[int, int], *, public_url: str, now: datetime) -> tuple[str, str | None]:
    """What the licence's QR code holds, and the hex kid of the key that signed it: the
    payload signed with the issuer's current QR key, in the URL form or alone as the type's
    template says; for an issuer without a QR key, the page's URL alone (kid None)."""
    try:
        key = qr_keys.current(session, keystore, ready.issuer.issuer_code)
    except NotFound:
        return verify_url_for(public_url, licence_id), None
    person = ready.holder.code_type == HolderCodeType.ID_NUMBER
    claims = qr_payload.new_claims(
        licence_id=str(licence_id), issuer_code=ready.issuer.issuer_code, version=licence_id.version, issued_at=now,
        valid_from=ready.valid_from, valid_to=ready.valid_to, face=registry.metadata_of(record).face,
        holder_name=mask_name(ready.holder.name) if person else ready.holder.name, holder_code=ready.holder.code,
        status=status)
    url_form = ready.licence_type.template.qr_form == QrForm.URL
    text = qr_payload.sign(session, keystore, key, claims, page_url=public_url if url_form else None,
                           actor=LICENCE_SERVICE)
    return text, qr_payload.decode(text).kid.hex()


def verify_url_for(base: str, licence_id: identifier.LicenceId | str) -> str:
    """The public verification page of a licence, which its QR code opens."""
    return f"{base.rstrip('/')}/v/{licence_id}"


def request_digest(body) -> str:
    return sm3(canonical_json(body).encode()).hex()


def _replay(session: Session, client_id: str, key: str | None, body) -> LicenceRecord | None:
    if key is None:
        return None
    if not (isinstance(key, str) and 0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable()):
        raise InvalidInput(f"the Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
                           f"Idempotency-Key 须为 1 至 {MAX_IDEMPOTENCY_KEY} 个可打印 ASCII 字符")
    row = session.execute(select(licence_idempotency).where(
        (licence_idempotency.c.client_id == client_id) & (licence_idempotency.c.key == key))).one_or_none()
    if row is None:
        return None
    if row.request_sm3 != request_digest(body):
        raise IdempotencyConflict("this Idempotency-Key was used before with another request",
                                  "此 Idempotency-Key 已用于另一个不同的请求")
    return registry.get(session, row.licence_id)


def issue(session: Session, keystore: KeyStore, body, *, client_id: str, verify_url: str,
          idempotency_key: str | None = None, clock: Callable[[], datetime] = utc_now) -> tuple[LicenceRecord, bool]:
    """Issue a licence (version 001) for ``client_id``; returns it and whether it is new
    (False: the same Idempotency-Key and request came before). Does not commit."""
    earlier = _replay(session, client_id, idempotency_key, body)
    if earlier is not None:
        return earlier, False
    ready = draft(session, body, client_id=client_id, clock=clock)
    result = issue_draft(session, keystore, ready, client_id=client_id, actor=f"client:{client_id}",
                         verify_url=verify_url, clock=clock)
    if idempotency_key is not None:
        session.execute(insert(licence_idempotency).values(client_id=client_id, key=idempotency_key,
                                                           request_sm3=request_digest(body),
                                                           licence_id=result.licence_id, created_at=clock()))
    return result, True


def issue_draft(session: Session, keystore: KeyStore, ready: Draft, *, client_id: str, actor: str, verify_url: str,
                with_pdf: bool = True, clock: Callable[[], datetime] = utc_now) -> LicenceRecord:
    """Version 001 of a checked request under the issuer's next serial. Does not commit."""
    serial = _next_serial(session, ready.licence_type.type_code, ready.issuer.issuer_code, ready.issue_date.year)
    licence_id = identifier.build(ready.licence_type.type_code, ready.issuer.issuer_code, serial, 1)
    return seal_and_store(session, keystore, ready, licence_id, operation=Operation.ISSUE, supersedes=None,
                          client_id=client_id, actor=actor, verify_url=verify_url, with_pdf=with_pdf, clock=clock)


_CHANGE_MEMBERS = {"holder", "face", "validity"}


def change(session: Session, keystore: KeyStore, licence_id: str, body, *, client_id: str, verify_url: str,
           reason: str, renew: bool = False, clock: Callable[[], datetime] = utc_now) -> LicenceRecord:
    """A change (变更) or renewal (延续): the next version of the licence, issued under the
    type's current version, naming the one it supersedes, which then ends. ``body`` gives
    what changes: face fields (null removes an optional one), the holder's name (never the
    holder's code: another holder is another licence), the validity. A renewal gives the
    validity a new start (by default the day after the old end, or today if that is past).
    Does not commit."""
    act = "renew" if renew else "change"
    if not isinstance(body, dict) or set(body) - _CHANGE_MEMBERS:
        raise InvalidInput("a change gives holder (name), face and validity only", "变更只能给出持证主体名称、照面信息和有效期")
    reason = registry.check_reason(reason)
    old = registry.current_for_update(session, licence_id, act)
    if old.status != LicenceStatus.VALID:
        raise registry.IllegalTransition(f"licence {old.licence_id} is {old.status.en}: only a valid licence changes",
                                         f"证照 {old.licence_id} 处于“{old.status.zh}”状态，只有有效的证照可以{registry.ACT_ZH[act]}")
    r = old.record
    version = get_type(session, r["type_code"])
    issuer = registry.check_issuer(session, r["type_code"], r["issuer"]["code"], client_id)
    holder = body.get("holder") or {}
    if not isinstance(holder, dict) or set(holder) - {"name"}:
        raise InvalidInput("a change may give the holder's new name only", "变更只能更改持证主体名称")
    face_changes = body.get("face") or {}
    if not isinstance(face_changes, dict):
        raise InvalidInput("'face' is an object", "“face”须为对象")
    merged = {k: v for k, v in {**r["face"], **face_changes}.items() if v is not None}
    validity = body.get("validity")
    if validity is None:
        validity = _renewed(version.licence_type, old, beijing_date(clock())) if renew else \
            {"from": r["valid_from"], "to": r["valid_to"] or LONG_TERM}
    request = {"holder": {**r["holder"], **holder}, "face": merged, "validity": validity}
    ready = _draft(version.licence_type, version.version, issuer, request, clock)
    new_id = old.id.with_version(old.id.version + 1)
    operation = Operation.RENEW if renew else Operation.CHANGE
    actor = f"client:{client_id}"
    result = seal_and_store(session, keystore, ready, new_id, operation=operation, supersedes=old.licence_id,
                            client_id=client_id, actor=actor, verify_url=verify_url, clock=clock)
    registry.supersede(session, old, result.licence_id, operation, actor=actor, reason=reason, at=result.created_at)
    return result


def _renewed(licence_type: LicenceType, old: LicenceRecord, today: date) -> dict:
    if licence_type.validity == ValidityRule.LONG_TERM:
        raise InvalidInput(f"a {licence_type.name_en} is valid without end: it is changed, never renewed",
                           f"{licence_type.name}长期有效，只能变更，无需延续")
    start = max(today, old.valid_to + timedelta(days=1)) if old.valid_to else today
    return {"from": start.isoformat()}
