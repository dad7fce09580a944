"""Keeping licence PDFs verifiable for years (PAdES B-LTA, ETSI EN 319 142-1 §5.5): before the
certificate of the time-stamp authority behind a PDF's newest document time stamp expires,
the validation data for that time stamp (its TSA's chain and CRLs) goes into the DSS and a
fresh document time stamp covers everything, from a TSA whose certificate lasts longer.

A renewal is an incremental update: the signed revision, and so the registry's ``pdf_sm3``,
stays as it was. A PDF is renewed only when that extends its life: when the TSA's current
certificate expires no later than the one it would replace, nothing is written and the
outcome says that the TSA's certificate needs renewing, so running it twice renews nothing
twice.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ca import tsa
from hsm.keystore import KeyStore
from licence import pades, pdf_verify
from licence.models import licences
from licence.registry import LICENCE_SERVICE
from trust import audit
from trust.clock import iso_z, utc_now

# The TSA that stamps PDFs: SHA-256 imprints go to the ECDSA family (ca/tsa.py).
PDF_TSA_FAMILY = "ecdsa"


class Outcome(StrEnum):
    RENEWED = "renewed"
    NOT_DUE = "not_due"
    TSA_EXPIRES_TOO = "tsa_expires_too"  # due, but our TSA's certificate would not last longer


@dataclass(frozen=True)
class Renewal:
    licence_id: str
    outcome: Outcome
    stamp_expires: datetime | None  # the newest document time stamp's TSA certificate, before this run

    def to_dict(self) -> dict:
        return {"licence_id": self.licence_id, "outcome": self.outcome.value,
                "stamp_expires": iso_z(self.stamp_expires) if self.stamp_expires else None}


def with_pdf(session: Session) -> list[str]:
    """The licences that have a PDF, oldest first."""
    return list(session.execute(select(licences.c.licence_id).where(licences.c.pdf.is_not(None))
                                .order_by(licences.c.created_at, licences.c.licence_id)).scalars())


def renew(session: Session, keystore: KeyStore, licence_id: str, *, within: timedelta,
          actor: str = LICENCE_SERVICE, clock: Callable[[], datetime] = utc_now) -> Renewal:
    """Renew one licence PDF's archival time stamp if it is due; stores and audits the new
    PDF in the caller's transaction (does not commit)."""
    data = bytes(session.execute(select(licences.c.pdf).where(licences.c.licence_id == licence_id)).scalar_one())
    stamp = pdf_verify.newest_stamp_certificate(data)
    expires = stamp["tbs_certificate"]["validity"]["not_after"].native if stamp is not None else None
    if expires is not None and expires > clock() + within:
        return Renewal(licence_id, Outcome.NOT_DUE, expires)
    current = tsa.find_signer(session, keystore, PDF_TSA_FAMILY).certificate.not_after
    if expires is not None and current <= expires:
        return Renewal(licence_id, Outcome.TSA_EXPIRES_TOO, expires)
    renewed = pades.renew_archival_stamp(data, pades.KeyStoreTimeStamper(session, keystore),
                                         pades.our_revocation_data(session, keystore, PDF_TSA_FAMILY,
                                                                   (stamp.dump(),) if stamp is not None else ()))
    session.execute(update(licences).where(licences.c.licence_id == licence_id).values(pdf=renewed))
    audit.append(session, actor, "licence.pdf.renew", licence_id,
                 {"stamp_expired": iso_z(expires) if expires else None, "new_stamp_expires": iso_z(current),
                  "bytes_added": len(renewed) - len(data)})
    return Renewal(licence_id, Outcome.RENEWED, expires)


def renew_all(session: Session, keystore: KeyStore, *, within: timedelta, actor: str = LICENCE_SERVICE,
              clock: Callable[[], datetime] = utc_now) -> Iterator[Renewal]:
    """Every licence PDF, each committed on its own, so that an interrupted run keeps what it did."""
    for licence_id in with_pdf(session):
        result = renew(session, keystore, licence_id, within=within, actor=actor, clock=clock)
        session.commit()
        yield result
