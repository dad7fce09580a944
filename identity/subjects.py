"""Subjects: natural persons (keyed by resident ID number, GB 11643), legal persons (keyed
by unified social credit code, GB 32100) with the persons authorised to act for them, and
department officers (keyed by staff number) with their roles.

Each subject records its real-name assurance level and the source that set it: L1 is
self-asserted, L2 confirmed by an identity source (``identity.sources``), L3 face to face
or by certificate (set by an operator). Services here do not commit.
"""

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hsm.officers import ACTIVE as OFFICER_ACTIVE, officers
from identity import passwords
from identity.models import LEVELS, identity_representative, identity_role, identity_subject
from identity.sources import IdentitySource
from trust import audit, duties
from trust.clock import as_utc, utc_now
from trust.duties import Duty
from trust.errors import InvalidInput, NotFound
from trust.ids import validate_resident_id, validate_uscc

MIN_PASSWORD_CHARS = 8  # NIST SP 800-63B §5.1.1.2
MAX_PASSWORD_CHARS = 256
MAX_NAME_CHARS = 100
SELF_ASSERTED = "self-asserted"

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{2,63}")
_STAFF_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_ROLE = re.compile(r"[a-z][a-z0-9-]{1,31}")
_SCOPE = re.compile(r"[a-z][a-z0-9_:.-]{0,63}")
MAX_ROLES = 20
MAX_SCOPES = 20
MAX_REPRESENTED = 20  # legal persons one natural person may act for at once


@dataclass(frozen=True)
class Subject:
    id: str
    kind: str  # "person" | "legal_person" | "officer"
    username: str
    display_name: str
    identifier: str  # resident ID number, USCC or staff number
    assurance_level: str  # "L1" | "L2" | "L3"
    assurance_source: str
    department: str | None
    status: str  # "active" | "disabled"
    totp_enrolled: bool


@dataclass(frozen=True)
class Representative:
    legal_person_id: str
    person_id: str
    scope: frozenset[str]
    until: datetime


def _subject(row) -> Subject:
    return Subject(id=row.id, kind=row.kind, username=row.username, display_name=row.display_name,
                   identifier=row.identifier, assurance_level=row.assurance_level,
                   assurance_source=row.assurance_source, department=row.department, status=row.status,
                   totp_enrolled=row.totp_confirmed_at is not None)


# ---------------------------------------------------------------- checks of input

def normalise_username(username) -> str:
    """Lower case; 3 to 64 letters, digits or . _ @ -, starting with a letter or digit."""
    if isinstance(username, str):
        username = username.strip().lower()
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise InvalidInput("a username is 3 to 64 letters, digits or . _ @ -, starting with a letter or digit",
                           "用户名须为 3 至 64 个字母、数字或 . _ @ -，并以字母或数字开头")
    return username


def _name(name, what_en: str = "name", what_zh: str = "名称") -> str:
    if isinstance(name, str):
        name = unicodedata.normalize("NFC", name.strip())
    if (not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS
            or any(unicodedata.category(ch).startswith("C") for ch in name)):
        raise InvalidInput(f"the {what_en} is 1 to {MAX_NAME_CHARS} printable characters",
                           f"{what_zh}须为 1 至 {MAX_NAME_CHARS} 个可打印字符")
    return name


def check_password(password, username: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(f"a password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters",
                           f"密码长度须为 {MIN_PASSWORD_CHARS} 至 {MAX_PASSWORD_CHARS} 个字符")
    if password.strip().lower() == username:
        raise InvalidInput("the password may not be the username", "密码不能与用户名相同")
    return password


def _level(level) -> str:
    if level not in LEVELS:
        raise InvalidInput(f"an assurance level is one of {', '.join(LEVELS)}", f"实名认证等级须为 {'、'.join(LEVELS)} 之一")
    return level


def _words(values, pattern: re.Pattern, limit: int, what_en: str, what_zh: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(f"the {what_en} are a list", f"{what_zh}须为列表")
    values = sorted(set(values))
    if len(values) > limit or not all(isinstance(v, str) and pattern.fullmatch(v) for v in values):
        raise InvalidInput(f"at most {limit} {what_en}, each lower-case letters, digits and - (and : for scopes)",
                           f"{what_zh}最多 {limit} 个，每个由小写字母、数字和 - 组成（权限范围可含 :）")
    return values


# ---------------------------------------------------------------- creating

def create_person(session: Session, *, username: str, password: str, name: str, resident_id: str,
                  assurance_level: str = "L1", source: IdentitySource | None = None,
                  actor: str = "system", clock: Callable[[], datetime] = utc_now) -> Subject:
    """A natural person. ``source``, when given, is asked to confirm the name and ID number:
    a confirmation raises the level to what the source grants (L2)."""
    number = validate_resident_id(resident_id).number
    name = _name(name, "name", "姓名")
    assurance = source.check_person(name, number) if source is not None else None
    return _create(session, "person", username, password, name, number, assurance_level, assurance,
                   None, actor, clock)


def create_legal_person(session: Session, *, username: str, password: str, name: str, uscc: str,
                        assurance_level: str = "L1", source: IdentitySource | None = None,
                        actor: str = "system", clock: Callable[[], datetime] = utc_now) -> Subject:
    code = validate_uscc(uscc)
    name = _name(name, "organisation name", "单位名称")
    assurance = source.check_legal_person(name, code) if source is not None else None
    return _create(session, "legal_person", username, password, name, code, assurance_level, assurance,
                   None, actor, clock)


def create_officer(session: Session, *, username: str, password: str, name: str, staff_number: str,
                   department: str, roles: list[str], actor: str = "system",
                   clock: Callable[[], datetime] = utc_now) -> Subject:
    """A department officer: known face to face by the department that registers them (L3)."""
    if not isinstance(staff_number, str) or not _STAFF_NUMBER.fullmatch(staff_number.strip()):
        raise InvalidInput("a staff number is 1 to 32 letters, digits or -", "工号须为 1 至 32 个字母、数字或 -")
    department = _name(department, "department", "部门")
    role_list = _words(roles, _ROLE, MAX_ROLES, "roles", "角色")
    duties.check_holding(role_list, duties.duties_of_roles(role_list) | _credential_duty(session, username),
                         f"officer {str(username)[:64]}")
    subject = _create(session, "officer", username, password, _name(name, "name", "姓名"), staff_number.strip(),
                      "L3", None, department, actor, clock, source_name=f"department:{department}")
    for role in role_list:
        session.execute(insert(identity_role).values(subject_id=subject.id, role=role))
    return subject


def _create(session: Session, kind: str, username, password, name: str, identifier: str, level, assurance,
            department: str | None, actor: str, clock, source_name: str | None = None) -> Subject:
    username = normalise_username(username)
    check_password(password, username)
    level = _level(level)
    now = clock()
    if assurance is not None and assurance.level > level:  # "L2" > "L1": the levels sort as they rank
        level, source_name, checked_at = assurance.level, assurance.source, assurance.checked_at
    else:
        source_name = source_name or (SELF_ASSERTED if level == "L1" else f"operator:{actor}")
        checked_at = now
    subject_id = uuid.uuid4().hex
    try:
        with session.begin_nested():
            session.execute(insert(identity_subject).values(
                id=subject_id, kind=kind, username=username, display_name=name, identifier=identifier,
                assurance_level=level, assurance_source=source_name, assurance_checked_at=checked_at,
                department=department, status="active", password_hash=passwords.hash_secret(password),
                created_at=now))
    except IntegrityError:
        raise InvalidInput(f"the username {username!r} or this {kind.replace('_', ' ')}'s identifier is registered already",
                           f"用户名 {username!r} 或该{_KIND_ZH[kind]}的证件号码已被注册") from None
    audit.append(session, actor, "identity.create", subject_id, {
        "kind": kind, "username": username, "assurance_level": level, "assurance_source": source_name})
    return get_subject(session, subject_id)


_KIND_ZH = {"person": "自然人", "legal_person": "法人", "officer": "工作人员"}


# ---------------------------------------------------------------- reading

def get_subject(session: Session, id: str) -> Subject:
    row = None
    if isinstance(id, str) and len(id) == 32:
        row = session.execute(select(identity_subject).where(identity_subject.c.id == id)).one_or_none()
    if row is None:
        raise NotFound(f"no subject with id {str(id)[:40]!r}", "找不到该用户")
    return _subject(row)


def find_subject(session: Session, username: str) -> Subject | None:
    try:
        username = normalise_username(username)
    except InvalidInput:
        return None
    row = session.execute(select(identity_subject).where(identity_subject.c.username == username)).one_or_none()
    return None if row is None else _subject(row)


def list_subjects(session: Session, kind: str | None = None) -> list[Subject]:
    query = select(identity_subject).order_by(identity_subject.c.kind, identity_subject.c.username)
    if kind is not None:
        query = query.where(identity_subject.c.kind == kind)
    return [_subject(row) for row in session.execute(query)]


def roles(session: Session, subject_id: str) -> frozenset[str]:
    """The roles of an active subject; none for a disabled one (whose tokens may still be live)."""
    query = (select(identity_role.c.role).join(identity_subject, identity_subject.c.id == identity_role.c.subject_id)
             .where(identity_role.c.subject_id == subject_id, identity_subject.c.status == "active"))
    return frozenset(session.scalars(query))


def person_duties(session: Session, subject_id: str) -> frozenset[Duty]:
    """The administrator duties of an active subject: those of their roles, and that of the
    SM2 credential enrolled under their username (hsm.officers): one person, both registers.
    More than one is refused wherever they act (trust.duties.check_single)."""
    username = session.scalar(select(identity_subject.c.username).where(
        identity_subject.c.id == subject_id, identity_subject.c.status == "active"))
    if username is None:
        return frozenset()
    return duties.duties_of_roles(roles(session, subject_id)) | _credential_duty(session, username)


def _credential_duty(session: Session, username: str) -> frozenset[Duty]:
    duty = session.scalar(select(officers.c.duty).where(officers.c.id == str(username).strip().lower(),
                                                        officers.c.status == OFFICER_ACTIVE))
    return frozenset() if duty is None else frozenset({Duty(duty)})


# ---------------------------------------------------------------- representatives (经办人授权)

def authorise_representative(session: Session, *, legal_person_id: str, person_id: str, scope: list[str],
                             until: datetime, actor: str = "system",
                             clock: Callable[[], datetime] = utc_now) -> Representative:
    """Authorise a natural person to act for a legal person within ``scope`` until ``until``;
    authorising again replaces the scope and the end."""
    legal_person, person = get_subject(session, legal_person_id), get_subject(session, person_id)
    if legal_person.kind != "legal_person" or person.kind != "person":
        raise InvalidInput("a representative is a natural person acting for a legal person",
                           "经办人须为自然人，被代表方须为法人")
    scope_list = _words(scope, _SCOPE, MAX_SCOPES, "scopes", "授权范围")
    if not scope_list:
        raise InvalidInput("an authorisation names at least one scope", "授权至少包含一项权限范围")
    if not isinstance(until, datetime) or until.tzinfo is None or until <= clock():
        raise InvalidInput("an authorisation ends at a future, timezone-aware time", "授权截止时间须为将来的时间（带时区）")
    table = identity_representative
    key = (table.c.legal_person_id == legal_person_id) & (table.c.person_id == person_id)
    session.execute(delete(table).where(key))
    current = session.execute(select(func.count()).select_from(table).where(
        (table.c.person_id == person_id) & (table.c.until > clock()))).scalar()
    if current >= MAX_REPRESENTED:
        # every current authorisation travels in the person's ID token (claim "represents")
        raise InvalidInput(f"a person may act for at most {MAX_REPRESENTED} legal persons at once",
                           f"一名经办人同时最多代表 {MAX_REPRESENTED} 个法人")
    session.execute(insert(table).values(legal_person_id=legal_person_id, person_id=person_id,
                                         scope=" ".join(scope_list), until=until, created_at=clock()))
    audit.append(session, actor, "identity.representative", legal_person_id, {
        "person": person_id, "scope": scope_list, "until": until.isoformat()})
    return Representative(legal_person_id, person_id, frozenset(scope_list), until)


def representatives(session: Session, legal_person_id: str, *,
                    clock: Callable[[], datetime] = utc_now) -> list[Representative]:
    """The persons authorised now to act for the legal person."""
    table = identity_representative
    rows = session.execute(select(table).where(table.c.legal_person_id == legal_person_id)
                           .order_by(table.c.person_id))
    now = clock()
    found = [Representative(r.legal_person_id, r.person_id, frozenset(r.scope.split()), as_utc(r.until))
             for r in rows]
    return [r for r in found if r.until > now]


def represented(session: Session, person_id: str, *,
                clock: Callable[[], datetime] = utc_now) -> list[tuple[Representative, Subject]]:
    """The active legal persons the person may act for now, each with its authorisation
    (ordered by credit code); expired authorisations are left out."""
    table = identity_representative
    now, found = clock(), []
    for r in session.execute(select(table).where(table.c.person_id == person_id)).all():
        authorisation = Representative(r.legal_person_id, r.person_id, frozenset(r.scope.split()), as_utc(r.until))
        legal_person = get_subject(session, r.legal_person_id)
        if authorisation.until > now and legal_person.status == "active":
            found.append((authorisation, legal_person))
    return sorted(found, key=lambda pair: pair[1].identifier)


def set_assurance(session: Session, subject_id: str, level: str, *, source: str, actor: str,
                  clock: Callable[[], datetime] = utc_now) -> Subject:
    """Record a new real-name check: L3 after a face-to-face check at a service counter or
    with a certificate, or a lower level when a check is withdrawn. ``source`` says who
    checked and how (e.g. "counter:某某区政务服务中心"); tokens issued later carry it."""
    level = _level(level)
    if not isinstance(source, str) or not 0 < len(source.strip()) <= 200:
        raise InvalidInput("the source of a real-name check is 1 to 200 characters", "实名核验来源须为 1 至 200 个字符")
    before = get_subject(session, subject_id)
    session.execute(update(identity_subject).where(identity_subject.c.id == subject_id).values(
        assurance_level=level, assurance_source=source.strip(), assurance_checked_at=clock()))
    audit.append(session, actor, "identity.assurance", subject_id, {
        "from": before.assurance_level, "to": level, "source": source.strip()})
    return get_subject(session, subject_id)


def set_status(session: Session, subject_id: str, status: str, *, actor: str) -> Subject:
    """Disable a subject (no login, no new tokens) or enable it again."""
    if status not in ("active", "disabled"):
        raise InvalidInput("a status is active or disabled", "状态须为 active 或 disabled")
    get_subject(session, subject_id)
    session.execute(update(identity_subject).where(identity_subject.c.id == subject_id).values(status=status))
    audit.append(session, actor, "identity.status", subject_id, {"status": status})
    return get_subject(session, subject_id)
