"""A refused CA request is recorded in the audit log (``ca.refuse``) before it is raised;
the caller commits the record even though the request failed."""

from sqlalchemy.orm import Session

from trust import audit
from trust.errors import TrustError


def refuse(session: Session, actor: str, target: str, error: TrustError, detail: dict | None = None) -> TrustError:
    """Record a refused CA request in the audit log; returns the error to raise."""
    audit.append(session, actor, "ca.refuse", target, {"code": error.code, "reason": error.en, **(detail or {})})
    return error
