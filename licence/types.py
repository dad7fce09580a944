"""Licence types in the database, versioned: the catalogue (licence.catalogue) as it stood
when each licence was issued.

A definition that differs from a type's latest version becomes the next version; the same
definition again changes nothing. Licences name the version they were issued under, so an
import never changes a licence already issued. The shipped types are stored by
``sync_shipped`` (at ``trustctl init``); an officer's import is audited.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from licence import catalogue
from licence.catalogue import LicenceType, canonical_json
from licence.models import licence_type
from trust import audit
from trust.clock import as_utc, utc_now
from trust.errors import NotFound


@dataclass(frozen=True)
class TypeVersion:
    licence_type: LicenceType
    version: int
    created_at: datetime
    actor: str


def _latest(session: Session, type_code: str):
    return session.execute(select(licence_type).where(licence_type.c.type_code == type_code)
                           .order_by(licence_type.c.version.desc()).limit(1)).one_or_none()


def _version(row) -> TypeVersion:
    return TypeVersion(catalogue.load(row.definition), row.version, as_utc(row.created_at), row.actor)


def store(session: Session, licence_type_: LicenceType, *, actor: str,
          clock: Callable[[], datetime] = utc_now) -> tuple[TypeVersion, bool]:
    """Store ``licence_type_`` as its type's next version unless the latest is the same;
    returns the version and whether it is new. Audited when new. Does not commit."""
    latest = _latest(session, licence_type_.type_code)
    definition = canonical_json(licence_type_.definition)
    if latest is not None and latest.definition == definition:
        return _version(latest), False
    version = 1 if latest is None else latest.version + 1
    session.execute(insert(licence_type).values(type_code=licence_type_.type_code, version=version,
                                                definition=definition, created_at=clock(), actor=actor))
    audit.append(session, actor, "licence.type", licence_type_.type_code,
                 {"version": version, "name": licence_type_.name})
    return _version(_latest(session, licence_type_.type_code)), True


def import_type(session: Session, data: bytes, *, actor: str,
                clock: Callable[[], datetime] = utc_now) -> tuple[TypeVersion, bool]:
    """An officer's import of one definition (JSON), checked strictly before anything is stored."""
    return store(session, catalogue.load(data), actor=actor, clock=clock)


def sync_shipped(session: Session, *, actor: str = "system") -> list[TypeVersion]:
    """Store every shipped type whose definition is not the latest version of it."""
    return [version for version, new in (store(session, t, actor=actor) for t in catalogue.shipped().values()) if new]


def get(session: Session, type_code: str, version: int | None = None) -> TypeVersion:
    """A type's given version, or its latest."""
    query = select(licence_type).where(licence_type.c.type_code == str(type_code)[:40])
    if version is not None:
        query = query.where(licence_type.c.version == version)
    row = session.execute(query.order_by(licence_type.c.version.desc()).limit(1)).one_or_none()
    if row is None:
        raise NotFound(f"no licence type {str(type_code)[:40]}" + (f" version {version}" if version else ""),
                       f"没有证照类型 {str(type_code)[:40]}" + (f" 的第 {version} 版" if version else ""))
    return _version(row)


def list_latest(session: Session) -> list[TypeVersion]:
    latest = select(licence_type.c.type_code, func.max(licence_type.c.version).label("version")) \
        .group_by(licence_type.c.type_code).subquery()
    rows = session.execute(select(licence_type).join(
        latest, (licence_type.c.type_code == latest.c.type_code) & (licence_type.c.version == latest.c.version))
        .order_by(licence_type.c.type_code)).all()
    return [_version(row) for row in rows]


def export(session: Session) -> list[dict]:
    """The catalogue as the national platform takes it: every type's latest definition."""
    return [{"type_code": v.licence_type.type_code, "version": v.version, "definition": v.licence_type.definition}
            for v in list_latest(session)]
