"""Using licences instead of paper (用证): the department applications registered as licence
consumers, with the types and purposes each may use; query (查询), which releases each
field as its sharing class allows; holders' consents; and comparison (比对) of what an
applicant typed with the licence, field by field, that never answers a stored value.

Query releases 无条件 fields to a consumer for a purpose it was registered for, 有条件
fields only while the holder's consent for that consumer and purpose stands (granted in the
wallet, for a period, withdrawable) or the issuing department's approval of the consumer's
request for that licence and purpose runs (licence/share_requests.py), and 不予共享 fields
never; a field withheld is listed as
withheld with the reason, never silently missing.

A consumer states a purpose with every use; only a purpose it was registered for is
accepted, and shared data may serve only that purpose ("只能按照明确的使用用途用于本部门履行
职责需要"). Comparing tells one bit per field, so it is allowed for the fields a consumer
could be given at all (无条件 and 有条件); a 不予共享 field is never compared. Both sides go
through the same normalisation: the issuance's canonical form of the field
(licence.face.canonical: dates, amounts, credit codes and ID numbers), then Unicode NFKC
(full-width and half-width alike), no white space, upper case.

Every comparison and every refusal is in the audit log with the caller, the operator the
caller names, the purpose and the fields compared (names and outcomes, never values).
"""

import json
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import cast

from sqlalchemy import CursorResult, delete, func, insert, select, update
from sqlalchemy.orm import Session

from licence import registry
from licence.catalogue import LicenceType, Sharing, Source
from licence.face import canonical
from licence.metadata import HolderCodeType
from licence.models import licence_consent, licence_consumer, licence_request, licence_use, licences
from licence.registry import LicenceRecord, LicenceStatus
from licence.types import get as get_type
from trust import audit
from trust.clock import as_utc, iso_z, utc_now
from trust.errors import InvalidInput, NotFound, PermissionDenied

MAX_PURPOSES = 50
MAX_PURPOSE = 100          # characters
MAX_FIELDS = 100           # fields compared in one request
MAX_OPERATOR = 100
MAX_CONSENT = timedelta(days=366)
HOLDER_NAME = "holder_name"   # compared like a face field: the licence's holder as recorded


class Action(StrEnum):
    QUERY = "query"
    COMPARE = "compare"


class Outcome(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    NOT_COMPARABLE = "not_comparable"


@dataclass(frozen=True)
class Consumer:
    client_id: str
    types: tuple[str, ...]
    purposes: tuple[str, ...]
    created_at: datetime
    actor: str

    def to_dict(self) -> dict:
        return {"client_id": self.client_id, "types": list(self.types), "purposes": list(self.purposes),
                "created_at": iso_z(self.created_at), "actor": self.actor}


def purpose_of(value) -> str:
    if not isinstance(value, str) or not 2 <= len(value.strip()) <= MAX_PURPOSE or not value.strip().isprintable():
        raise InvalidInput(f"a purpose is 2 to {MAX_PURPOSE} printable characters saying what the data is used for",
                           f"使用用途须为 2 至 {MAX_PURPOSE} 个可打印字符，说明数据用于何事")
    return unicodedata.normalize("NFC", value.strip())


def add_consumer(session: Session, client_id: str, *, types, purposes, actor: str,
                 clock: Callable[[], datetime] = utc_now) -> Consumer:
    """Register ``client_id`` (an application of identity/, checked by the caller) as a
    consumer of ``types`` for ``purposes``; registering it again replaces both. Audited.
    Does not commit."""
    types = tuple(sorted(set(types or ())))
    purposes = tuple(sorted({purpose_of(p) for p in purposes or ()}))
    if not types or not purposes or len(purposes) > MAX_PURPOSES:
        raise InvalidInput(f"a consumer is registered for at least one type and 1 to {MAX_PURPOSES} purposes",
                           f"使用方须登记至少一个证照类型和 1 至 {MAX_PURPOSES} 项使用用途")
    for type_code in types:
        get_type(session, type_code)  # NotFound for a type not in the catalogue
    session.execute(delete(licence_consumer).where(licence_consumer.c.client_id == client_id))
    now = clock()
    session.execute(insert(licence_consumer).values(client_id=client_id, types=json.dumps(types),
                                                    purposes=json.dumps(purposes, ensure_ascii=False),
                                                    created_at=now, actor=actor))
    audit.append(session, actor, "licence.consumer.add", client_id, {"types": list(types), "purposes": list(purposes)})
    return Consumer(client_id, types, purposes, now, actor)


def remove_consumer(session: Session, client_id: str, *, actor: str) -> None:
    removed = cast(CursorResult, session.execute(delete(licence_consumer).where(licence_consumer.c.client_id == client_id)))
    if removed.rowcount == 0:
        raise NotFound(f"{client_id} is not a licence consumer", f"{client_id} 不是证照使用方")
    audit.append(session, actor, "licence.consumer.remove", client_id, {})


def consumers(session: Session) -> list[Consumer]:
    rows = session.execute(select(licence_consumer).order_by(licence_consumer.c.client_id))
    return [Consumer(r.client_id, tuple(json.loads(r.types)), tuple(json.loads(r.purposes)), as_utc(r.created_at),
                     r.actor) for r in rows]


def check_use(session: Session, client_id: str, type_code: str | None, purpose: str) -> frozenset[str]:
    """The types ``client_id`` may use for ``purpose`` (``type_code`` among them when given);
    PermissionDenied, audited, when it is not a consumer, not for the purpose or the type."""
    row = session.execute(select(licence_consumer).where(licence_consumer.c.client_id == client_id)).one_or_none()
    if row is None:
        why = ("the application is not registered as a licence consumer", "该应用未登记为证照使用方")
    elif type_code is not None and type_code not in json.loads(row.types):
        why = (f"the application is not registered to use licences of type {type_code}",
               f"该应用未登记使用类型为 {type_code} 的证照")
    elif purpose not in json.loads(row.purposes):
        why = ("the application is not registered for this purpose", "该应用未登记此使用用途")
    else:
        return frozenset(json.loads(row.types))
    audit.append(session, f"client:{client_id}", "licence.use.refused", type_code or "", {"purpose": purpose,
                                                                                         "reason": why[0]})
    raise PermissionDenied(why[0], why[1])


def operator_of(body: dict) -> str | None:
    """Who at the consumer asks (for the audit log), when the consumer says."""
    operator = body.get("operator")
    if operator is not None and (not isinstance(operator, str) or not 0 < len(operator) <= MAX_OPERATOR
                                 or not operator.isprintable()):
        raise InvalidInput(f"'operator' is 1 to {MAX_OPERATOR} printable characters",
                           f"“operator”须为 1 至 {MAX_OPERATOR} 个可打印字符")
    return operator


def comparable_key(value: str) -> str:
    """What two values of a field are compared by, after the field's canonical form."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _current(session: Session, holder_code: str, type_code: str | None = None) -> list[str]:
    """The holder's licences that stand now (valid, not superseded), newest first."""
    where = (licences.c.holder_code == holder_code.strip().upper()) & \
        (licences.c.status == LicenceStatus.VALID.value) & licences.c.superseded_by.is_(None)
    if type_code is not None:
        where &= licences.c.type_code == type_code
    return list(session.execute(select(licences.c.licence_id).where(where)
                                .order_by(licences.c.created_at.desc(), licences.c.licence_id.desc())).scalars())


def _holder_code(body: dict) -> str:
    code = body.get("holder_code")
    if not isinstance(code, str) or not 0 < len(code.strip()) <= 18:
        raise InvalidInput("'holder_code' is the holder's credit code or ID number", "“holder_code”须为持证主体代码")
    return code.strip().upper()


def find_licence(session: Session, body: dict) -> LicenceRecord:
    """The licence named by ``licence_id``, or the holder's current licence of ``type_code``."""
    if body.get("licence_id") is not None:
        if not isinstance(body["licence_id"], str):
            raise InvalidInput("'licence_id' is text", "“licence_id”须为文本")
        return registry.get(session, body["licence_id"])
    type_code = body.get("type_code")
    if not isinstance(body.get("holder_code"), str) or not isinstance(type_code, str) or len(type_code) > 21:
        raise InvalidInput("name the licence by licence_id, or by holder_code and type_code",
                           "请以 licence_id，或以 holder_code 与 type_code 指明证照")
    found = _current(session, _holder_code(body), type_code)
    if not found:
        raise NotFound(f"the holder has no valid licence of type {type_code}", f"该持证主体没有类型为 {type_code} 的有效证照")
    return registry.get(session, found[0])


def _outcome(licence_type: LicenceType, record: LicenceRecord, key, value) -> dict:
    def result(outcome: Outcome, zh: str = "", en: str = "") -> dict:
        return {"result": outcome.value, **({"reason": {"zh": zh, "en": en}} if en else {})}

    holder = record.record["holder"]
    if key == HOLDER_NAME:
        stored, field = holder["name"], None
    else:
        field = next((f for f in licence_type.fields if f.key == key), None)
        if field is None:
            return result(Outcome.NOT_COMPARABLE, "该证照类型没有此字段", "the licence type has no such field")
        if field.sharing == Sharing.NOT_SHARED:
            return result(Outcome.NOT_COMPARABLE, "此字段不予共享，不提供比对", "the field is never shared, nor compared")
        stored = field_value(record.record, field)
        if stored is None:
            return result(Outcome.NOT_COMPARABLE, "证照未记载此字段", "the licence does not record this field")
    if not isinstance(value, str):
        return result(Outcome.NOT_COMPARABLE, "提交的值须为文本", "the value submitted is not text")
    try:
        submitted = canonical(field, value, HolderCodeType(holder["code_type"])) if field else value
    except InvalidInput as e:
        return result(Outcome.NO_MATCH, f"提交的值不是此字段的有效值（{e.zh}）", f"the value submitted is not one this field "
                                                                     f"can hold ({e.en})")
    same = comparable_key(submitted) == comparable_key(stored)
    return result(Outcome.MATCH if same else Outcome.NO_MATCH)


def field_value(r: dict, field) -> str | None:
    """What a licence record holds for a face field: typed in, or printed from the record
    (face.printed's sources)."""
    if field.source is None:
        return r["face"].get(field.key)
    return {Source.HOLDER_NAME: r["holder"]["name"], Source.HOLDER_CODE: r["holder"]["code"],
            Source.ISSUER_NAME: r["issuer"]["name"], Source.ISSUE_DATE: r["issue_date"],
            Source.VALID_FROM: r["valid_from"], Source.VALID_TO: r["valid_to"]}.get(field.source)


def compare(session: Session, client_id: str, body, *, clock: Callable[[], datetime] = utc_now) -> dict:
    """Compare (比对) the submitted values with the licence: per field match / no_match /
    not_comparable, never a stored value. ``body``: ``licence_id`` or ``holder_code`` and
    ``type_code``; ``fields`` {key: value} (face field keys, and ``holder_name``);
    ``purpose``; ``operator`` (who at the caller asks, for the audit log). Audited. Does not
    commit."""
    if not isinstance(body, dict) or set(body) - {"licence_id", "holder_code", "type_code", "fields", "purpose",
                                                  "operator"}:
        raise InvalidInput("a comparison gives licence_id (or holder_code and type_code), fields, purpose and "
                           "operator", "比对请求应包含 licence_id（或 holder_code 与 type_code）、fields、purpose 与 operator")
    if "purpose" not in body:
        raise InvalidInput("a comparison states its purpose", "比对须说明使用用途")
    purpose = purpose_of(body["purpose"])
    operator = operator_of(body)
    fields = body.get("fields")
    if not isinstance(fields, dict) or not 0 < len(fields) <= MAX_FIELDS:
        raise InvalidInput(f"'fields' is an object of 1 to {MAX_FIELDS} field keys and the values to compare",
                           f"“fields”须为含 1 至 {MAX_FIELDS} 个字段及其待比对值的对象")
    record = find_licence(session, body)
    type_code = record.record["type_code"]
    check_use(session, client_id, type_code, purpose)
    licence_type = get_type(session, type_code, record.record["type_version"]).licence_type
    results = {str(key)[:64]: _outcome(licence_type, record, key, value) for key, value in fields.items()}
    audit.append(session, f"client:{client_id}", "licence.compare", record.licence_id, {
        "purpose": purpose, "operator": operator, "fields": {k: r["result"] for k, r in results.items()}})
    _record_use(session, client_id, Action.COMPARE, record.record["holder"]["code"], record, purpose, operator,
                sorted(results), clock())
    return {"licence_id": record.licence_id, "type_code": type_code, "status": record.status.value,
            "superseded": record.superseded_by is not None, "purpose": purpose, "fields": results,
            "compared_at": iso_z(clock())}


# ---------------------------------------------------------------- consents and query

@dataclass(frozen=True)
class Consent:
    id: str
    holder_code: str
    client_id: str
    purpose: str
    until: datetime
    granted_at: datetime
    granted_by: str
    withdrawn_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.withdrawn_at is None and now < self.until

    def to_dict(self) -> dict:
        return {"id": self.id, "holder_code": self.holder_code, "client_id": self.client_id, "purpose": self.purpose,
                "until": iso_z(self.until), "granted_at": iso_z(self.granted_at), "granted_by": self.granted_by,
                "withdrawn_at": iso_z(self.withdrawn_at) if self.withdrawn_at else None}


def _consent(row) -> Consent:
    return Consent(row.id, row.holder_code, row.client_id, row.purpose, as_utc(row.until), as_utc(row.granted_at),
                   row.granted_by, as_utc(row.withdrawn_at))


def grant_consent(session: Session, holder_code: str, client_id: str, purpose, until: datetime, *, actor: str,
                  clock: Callable[[], datetime] = utc_now) -> Consent:
    """The holder's consent that ``client_id`` receive its licences' 有条件 fields for
    ``purpose`` until ``until`` (at most a year on). The caller has established that
    ``actor`` may speak for the holder. Audited. Does not commit."""
    purpose, now = purpose_of(purpose), clock()
    row = session.execute(select(licence_consumer).where(licence_consumer.c.client_id == client_id)).one_or_none()
    if row is None or purpose not in json.loads(row.purposes):
        raise InvalidInput("the application is not a licence consumer registered for this purpose",
                           "该应用不是登记了此用途的证照使用方")
    if not now < until <= now + MAX_CONSENT:
        raise InvalidInput("a consent lasts from now until a time within a year", "授权期限须在今后一年之内")
    consent = Consent(str(uuid.uuid4()), holder_code.strip().upper(), client_id, purpose, until, now, actor, None)
    session.execute(insert(licence_consent).values(
        id=consent.id, holder_code=consent.holder_code, client_id=client_id, purpose=purpose, until=until,
        granted_at=now, granted_by=actor))
    audit.append(session, actor, "licence.consent.grant", consent.holder_code, {
        "consent": consent.id, "client_id": client_id, "purpose": purpose, "until": iso_z(until)})
    return consent


def withdraw_consent(session: Session, consent_id: str, *, holder_codes, actor: str,
                     clock: Callable[[], datetime] = utc_now) -> Consent:
    """Withdraw a consent of one of ``holder_codes`` (those ``actor`` speaks for). Audited."""
    row = session.execute(select(licence_consent).where(licence_consent.c.id == str(consent_id)[:36])).one_or_none()
    if row is None or row.holder_code not in set(holder_codes):
        raise NotFound("no such consent of yours", "没有这项授权")
    consent = _consent(row)
    if consent.withdrawn_at is None:
        now = clock()
        session.execute(update(licence_consent).where(licence_consent.c.id == consent.id).values(withdrawn_at=now))
        audit.append(session, actor, "licence.consent.withdraw", consent.holder_code, {"consent": consent.id})
        consent = _consent(session.execute(select(licence_consent).where(licence_consent.c.id == consent.id)).one())
    return consent


def consents_of(session: Session, holder_codes) -> list[Consent]:
    rows = session.execute(select(licence_consent).where(licence_consent.c.holder_code.in_(list(holder_codes)))
                           .order_by(licence_consent.c.granted_at.desc()))
    return [_consent(r) for r in rows]


def _consented(session: Session, holder_code: str, client_id: str, purpose: str, now: datetime) -> bool:
    rows = session.execute(select(licence_consent).where(
        (licence_consent.c.holder_code == holder_code) & (licence_consent.c.client_id == client_id)
        & (licence_consent.c.purpose == purpose)))
    return any(_consent(r).active(now) for r in rows)


def _approved(session: Session, record: LicenceRecord, client_id: str, purpose: str, now: datetime) -> bool:
    """Whether the issuing department approved this consumer's request for the licence (any
    version) and purpose, and the approval still runs (licence/share_requests.py)."""
    untils = session.execute(select(licence_request.c.until).where(
        (licence_request.c.base == record.id.base) & (licence_request.c.client_id == client_id)
        & (licence_request.c.purpose == purpose) & (licence_request.c.status == "approved"))).scalars()
    return any(now < as_utc(until) for until in untils)


_WITHHELD = {
    Sharing.CONDITIONAL: ("有条件共享：需持证人授权或颁证部门批准", "conditionally shared: needs the holder's consent or "
                                                      "the issuing department's approval"),
    Sharing.NOT_SHARED: ("不予共享", "never shared"),
}


def _released(licence_type: LicenceType, record: LicenceRecord, consented: bool) -> tuple[dict, list[dict]]:
    fields, withheld = {}, []
    for f in licence_type.fields:
        value = field_value(record.record, f)
        if value is None:
            continue
        if f.sharing == Sharing.UNCONDITIONAL or (f.sharing == Sharing.CONDITIONAL and consented):
            fields[f.key] = {"label": f.label, "value": value}
        else:
            zh, en = _WITHHELD[f.sharing]
            withheld.append({"field": f.key, "label": f.label, "sharing": f.sharing.value, "reason": {"zh": zh, "en": en}})
    return fields, withheld


def query(session: Session, client_id: str, body, *, clock: Callable[[], datetime] = utc_now) -> dict:
    """查询: the holder's licences that stand now, of ``type_code`` or of every type the
    consumer may use, each field released as its sharing class allows. ``body``:
    ``holder_code``, ``type_code``?, ``purpose``, ``operator``?. Audited with the fields
    released. Does not commit."""
    if not isinstance(body, dict) or set(body) - {"holder_code", "type_code", "purpose", "operator"}:
        raise InvalidInput("a query gives holder_code, type_code (optional), purpose and operator",
                           "查询请求应包含 holder_code、type_code（可选）、purpose 与 operator")
    if "purpose" not in body:
        raise InvalidInput("a query states its purpose", "查询须说明使用用途")
    purpose, operator, holder_code = purpose_of(body["purpose"]), operator_of(body), _holder_code(body)
    type_code = body.get("type_code")
    if type_code is not None and not isinstance(type_code, str):
        raise InvalidInput("'type_code' is text", "“type_code”须为文本")
    allowed = check_use(session, client_id, type_code, purpose)
    now = clock()
    consented = _consented(session, holder_code, client_id, purpose, now)
    answers, released, approved = [], {}, []
    for licence_id in _current(session, holder_code, type_code):
        record = registry.get(session, licence_id)
        if record.record["type_code"] not in allowed:
            continue
        licence_type = get_type(session, record.record["type_code"], record.record["type_version"]).licence_type
        basis = "consent" if consented else "approval" if _approved(session, record, client_id, purpose, now) else None
        if basis == "approval":
            approved.append(licence_id)
        fields, withheld = _released(licence_type, record, basis is not None)
        released[licence_id] = sorted(fields)
        answers.append({"licence_id": licence_id, "type_code": record.record["type_code"],
                        "type_name": record.record["type_name"], "status": record.status.value,
                        "valid_from": record.record["valid_from"], "valid_to": record.record["valid_to"] or "长期",
                        "conditional_basis": basis, "fields": fields, "withheld": withheld})
    audit.append(session, f"client:{client_id}", "licence.query", holder_code, {
        "purpose": purpose, "operator": operator, "consent": consented, "approved": approved, "released": released})
    for licence_id, keys in released.items():
        _record_use(session, client_id, Action.QUERY, holder_code, registry.get(session, licence_id), purpose,
                    operator, keys, now)
    return {"holder_code": holder_code, "purpose": purpose, "licences": answers, "queried_at": iso_z(now)}


def licences_of(session: Session, holder_codes) -> list[LicenceRecord]:
    """The latest version of every licence of the holders, whatever its status: the wallet."""
    ids = session.execute(select(licences.c.licence_id).where(
        licences.c.holder_code.in_(list(holder_codes)) & licences.c.superseded_by.is_(None))
        .order_by(licences.c.created_at.desc(), licences.c.licence_id.desc())).scalars()
    return [registry.get(session, licence_id) for licence_id in ids]


def autofill(session: Session, client_id: str, body, *, clock: Callable[[], datetime] = utc_now) -> dict:
    """辅助录入: the fields of the holder's standing licence of ``type_code`` keyed for a form,
    with the licence as provenance; only with the holder's consent for this consumer and
    purpose (PermissionDenied, audited, otherwise). Recorded like a query. Does not commit."""
    if not isinstance(body, dict) or not isinstance(body.get("type_code"), str):
        raise InvalidInput("auto-fill names the licence type (type_code)", "辅助录入须指明证照类型（type_code）")
    purpose, holder_code = purpose_of(body.get("purpose")), _holder_code(body)
    check_use(session, client_id, body["type_code"], purpose)
    if not _consented(session, holder_code, client_id, purpose, clock()):
        audit.append(session, f"client:{client_id}", "licence.use.refused", body["type_code"], {
            "purpose": purpose, "reason": "auto-fill without the holder's consent"})
        raise PermissionDenied("auto-fill needs the holder's consent for this application and purpose",
                               "辅助录入须经持证人对该应用及用途的授权")
    found = query(session, client_id, body, clock=clock)["licences"]
    if not found:
        raise NotFound(f"the holder has no valid licence of type {body['type_code']}",
                       f"该持证主体没有类型为 {body['type_code']} 的有效证照")
    licence = found[0]
    return {"form": {key: field["value"] for key, field in licence["fields"].items()},
            "labels": {key: field["label"] for key, field in licence["fields"].items()},
            "provenance": {"licence_id": licence["licence_id"], "type_name": licence["type_name"],
                           "status": licence["status"]}}


# ---------------------------------------------------------------- uses: the wallet's history, usage counts

def _record_use(session: Session, client_id: str, action: Action, holder_code: str, record: LicenceRecord,
                purpose: str, operator: str | None, fields: list[str], at: datetime) -> None:
    session.execute(insert(licence_use).values(
        at=at, client_id=client_id, action=action.value, holder_code=holder_code, licence_id=record.licence_id,
        type_code=record.record["type_code"], purpose=purpose, operator=operator, fields=json.dumps(fields)))


def uses_of(session: Session, holder_codes, *, limit: int = 200) -> list[dict]:
    """Who queried or compared the holders' licences, newest first: what the wallet shows."""
    rows = session.execute(select(licence_use).where(licence_use.c.holder_code.in_(list(holder_codes)))
                           .order_by(licence_use.c.id.desc()).limit(limit))
    return [{"at": iso_z(as_utc(r.at)), "client_id": r.client_id, "action": r.action, "licence_id": r.licence_id,
             "purpose": r.purpose, "operator": r.operator, "fields": json.loads(r.fields)} for r in rows]


USAGE_GROUPS = ("consumer", "type", "month")


def usage(session: Session, by: str) -> list[tuple[str, int]]:
    """使用频度: how many uses (queries and comparisons of a licence) by consumer, by licence
    type or by month (UTC), most used first (months in order)."""
    if by not in USAGE_GROUPS:
        raise InvalidInput(f"usage is counted by {', '.join(USAGE_GROUPS)}", f"使用频度按 {'、'.join(USAGE_GROUPS)} 统计")
    if by == "month":
        counts: dict[str, int] = {}
        for (at,) in session.execute(select(licence_use.c.at)):
            month = as_utc(at).strftime("%Y-%m")
            counts[month] = counts.get(month, 0) + 1
        return sorted(counts.items())
    column = licence_use.c.client_id if by == "consumer" else licence_use.c.type_code
    rows = session.execute(select(column, func.count()).group_by(column).order_by(func.count().desc(), column))
    return [(str(key), count) for key, count in rows]
