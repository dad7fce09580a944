"""Using licences instead of paper (用证): the department applications registered as licence
consumers, with the types and purposes each may use, and comparison (比对) of what an
applicant typed with the licence, field by field, that never answers a stored value.

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
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Callable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from licence import registry
from licence.catalogue import LicenceType, Sharing, Source
from licence.face import canonical
from licence.metadata import HolderCodeType
from licence.models import licence_consumer, licences
from licence.registry import LicenceRecord, LicenceStatus
from licence.types import get as get_type
from trust import audit
from trust.clock import as_utc, iso_z, utc_now
from trust.errors import InvalidInput, NotFound, PermissionDenied

MAX_PURPOSES = 50
MAX_PURPOSE = 100          # characters
MAX_FIELDS = 100           # fields compared in one request
MAX_OPERATOR = 100
HOLDER_NAME = "holder_name"   # compared like a face field: the licence's holder as recorded


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


def _purpose(value) -> str:
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
    purposes = tuple(sorted({_purpose(p) for p in purposes or ()}))
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
    if session.execute(delete(licence_consumer).where(licence_consumer.c.client_id == client_id)).rowcount == 0:
        raise NotFound(f"{client_id} is not a licence consumer", f"{client_id} 不是证照使用方")
    audit.append(session, actor, "licence.consumer.remove", client_id, {})


def consumers(session: Session) -> list[Consumer]:
    rows = session.execute(select(licence_consumer).order_by(licence_consumer.c.client_id))
    return [Consumer(r.client_id, tuple(json.loads(r.types)), tuple(json.loads(r.purposes)), as_utc(r.created_at),
                     r.actor) for r in rows]


def check_use(session: Session, client_id: str, type_code: str, purpose: str) -> None:
    """PermissionDenied, audited, unless ``client_id`` is a consumer of the type for the purpose."""
    row = session.execute(select(licence_consumer).where(licence_consumer.c.client_id == client_id)).one_or_none()
    if row is None:
        why = ("the application is not registered as a licence consumer", "该应用未登记为证照使用方")
    elif type_code not in json.loads(row.types):
        why = (f"the application is not registered to use licences of type {type_code}",
               f"该应用未登记使用类型为 {type_code} 的证照")
    elif purpose not in json.loads(row.purposes):
        why = ("the application is not registered for this purpose", "该应用未登记此使用用途")
    else:
        return
    audit.append(session, f"client:{client_id}", "licence.use.refused", type_code, {"purpose": purpose,
                                                                                     "reason": why[0]})
    raise PermissionDenied(why[0], why[1])


def comparable_key(value: str) -> str:
    """What two values of a field are compared by, after the field's canonical form."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _find(session: Session, body: dict) -> LicenceRecord:
    """The licence named by ``licence_id``, or the holder's current licence of ``type_code``."""
    if body.get("licence_id") is not None:
        if not isinstance(body["licence_id"], str):
            raise InvalidInput("'licence_id' is text", "“licence_id”须为文本")
        return registry.get(session, body["licence_id"])
    code, type_code = body.get("holder_code"), body.get("type_code")
    if not isinstance(code, str) or not isinstance(type_code, str) or len(code) > 40 or len(type_code) > 21:
        raise InvalidInput("name the licence by licence_id, or by holder_code and type_code",
                           "请以 licence_id，或以 holder_code 与 type_code 指明证照")
    found = session.execute(select(licences.c.licence_id).where(
        (licences.c.holder_code == code.strip().upper()) & (licences.c.type_code == type_code)
        & (licences.c.status == LicenceStatus.VALID.value) & licences.c.superseded_by.is_(None))
        .order_by(licences.c.created_at.desc())).scalars().first()
    if found is None:
        raise NotFound(f"the holder has no valid licence of type {type_code}", f"该持证主体没有类型为 {type_code} 的有效证照")
    return registry.get(session, found)


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
        stored = _stored(record.record, field.source) if field.source else record.record["face"].get(key)
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


def _stored(r: dict, source: Source) -> str | None:
    """The recorded value a field printed from the licence record shows (face.printed's sources)."""
    return {Source.HOLDER_NAME: r["holder"]["name"], Source.HOLDER_CODE: r["holder"]["code"],
            Source.ISSUER_NAME: r["issuer"]["name"], Source.ISSUE_DATE: r["issue_date"],
            Source.VALID_FROM: r["valid_from"], Source.VALID_TO: r["valid_to"]}.get(source)


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
    purpose = _purpose(body["purpose"])
    operator = body.get("operator")
    if operator is not None and (not isinstance(operator, str) or not 0 < len(operator) <= MAX_OPERATOR
                                 or not operator.isprintable()):
        raise InvalidInput(f"'operator' is 1 to {MAX_OPERATOR} printable characters", f"“operator”须为 1 至 {MAX_OPERATOR} 个可打印字符")
    fields = body.get("fields")
    if not isinstance(fields, dict) or not 0 < len(fields) <= MAX_FIELDS:
        raise InvalidInput(f"'fields' is an object of 1 to {MAX_FIELDS} field keys and the values to compare",
                           f"“fields”须为含 1 至 {MAX_FIELDS} 个字段及其待比对值的对象")
    record = _find(session, body)
    type_code = record.record["type_code"]
    check_use(session, client_id, type_code, purpose)
    licence_type = get_type(session, type_code, record.record["type_version"]).licence_type
    results = {str(key)[:64]: _outcome(licence_type, record, key, value) for key, value in fields.items()}
    audit.append(session, f"client:{client_id}", "licence.compare", record.licence_id, {
        "purpose": purpose, "operator": operator, "fields": {k: r["result"] for k, r in results.items()}})
    return {"licence_id": record.licence_id, "type_code": type_code, "status": record.status.value,
            "superseded": record.superseded_by is not None, "purpose": purpose, "fields": results,
            "compared_at": iso_z(clock())}
