"""Certificate revocation lists (RFC 5280 §5), signed with the issuing CA's key in the KeyStore.

Each CRL gets the next cRLNumber of its CA, an authorityKeyIdentifier, thisUpdate and
nextUpdate, and a reasonCode per entry (absent for "unspecified", §5.3.1). SM2 CAs sign
with SM2-with-SM3 (1.2.156.10197.1.501, parameters absent, signer ID 1234567812345678).

An issuing CA's CRL is built on demand. A root CA's key signs only under dual control, so
its CRL (listing revoked issuing CAs, normally none) is signed with a long nextUpdate when
the hierarchy is created, or again by ``sign_root_crl`` (``trustctl ca crl``) after a
revocation, and stored in ``ca_authority.crl`` for publication.
"""

import threading
import time
from datetime import datetime, timedelta, timezone

from asn1crypto import crl, x509 as asn1_x509
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ca.authority import Authority, key_identifier, refuse, sign_as
from ca.models import ca_authority
from ca.revocation import ASN1_REASONS, revocation_mark, revoked_entries
from hsm.keystore import KeyStore
from trust.clock import utc_now
from trust.errors import InvalidInput, NotFound, TrustError
from trust.x509 import parse_certificate

NEXT_UPDATE = timedelta(days=1)
ROOT_NEXT_UPDATE = timedelta(days=365)
REFRESH_SECONDS = 300  # a published CRL is rebuilt after this, or at once when a revocation changes it


def _time(value: datetime) -> asn1_x509.Time:
    return asn1_x509.Time(name="utc_time" if value.year < 2050 else "general_time", value=value)


def build_crl(session: Session, keystore: KeyStore, authority: Authority, *, now: datetime | None = None,
              approval=(), actor: str = "ca") -> bytes:
    """A fresh DER CRL for ``authority``; takes the next CRL number in the caller's
    transaction (the caller commits). A root CA's CRL needs ``approval`` (dual control)."""
    now = (now or utc_now()).astimezone(timezone.utc).replace(microsecond=0)
    ca_cert = parse_certificate(authority.certificate)
    session.execute(update(ca_authority).where(ca_authority.c.name == authority.name)
                    .values(crl_number=ca_authority.c.crl_number + 1))
    number = session.execute(select(ca_authority.c.crl_number)
                             .where(ca_authority.c.name == authority.name)).scalar_one()
    revoked = []
    for entry in revoked_entries(session, authority.name):
        item = {"user_certificate": entry.serial, "revocation_date": _time(entry.revoked_at)}
        if entry.reason != "unspecified":  # §5.3.1: absent rather than unspecified
            item["crl_entry_extensions"] = [{"extn_id": "crl_reason", "extn_value": ASN1_REASONS[entry.reason]}]
        revoked.append(item)
    signature = authority.signature_algorithm
    tbs = crl.TbsCertList({
        "version": "v2",
        "signature": signature,
        "issuer": asn1_x509.Name.load(ca_cert.subject_der),
        "this_update": _time(now),
        "next_update": _time(now + (ROOT_NEXT_UPDATE if authority.is_root else NEXT_UPDATE)),
        "crl_extensions": [
            {"extn_id": "authority_key_identifier",
             "extn_value": {"key_identifier": key_identifier(ca_cert.public_key_info)}},
            {"extn_id": "crl_number", "extn_value": number},
        ],
    })
    if revoked:  # an empty list is omitted, not encoded (§5.1.2.6)
        tbs["revoked_certificates"] = revoked
    value = sign_as(session, keystore, authority, tbs.dump(), approval=approval,
                    purpose=f"CRL {number} of {authority.name}", actor=actor)
    return crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": signature,
                                "signature": value}).dump()


def sign_root_crl(session: Session, keystore: KeyStore, authority: Authority, *, approval,
                  actor: str = "ca", now: datetime | None = None) -> bytes:
    """Sign a root CA's CRL under dual control (``approval``) and store it for publication.
    A refusal leaves only its ``ca.refuse`` audit record (no CRL number is used up)."""
    try:
        if not authority.is_root:
            raise InvalidInput(f"{authority.name} is not a root CA; its CRL is built when it is fetched",
                               f"{authority.name} 不是根 CA，其 CRL 在获取时生成")
        with session.begin_nested():
            der = build_crl(session, keystore, authority, now=now, approval=approval, actor=actor)
            session.execute(update(ca_authority).where(ca_authority.c.name == authority.name).values(crl=der))
    except TrustError as error:
        raise refuse(session, actor, f"ca.crl:{authority.name}", error) from None
    return der


_published: dict[str, tuple[float, tuple, bytes]] = {}
_published_lock = threading.Lock()


def current_crl(session: Session, keystore: KeyStore, authority: Authority) -> bytes:
    """The CRL to publish. A root's is the stored one. An issuing CA's is this process's
    last one while it is fresh and no revocation happened since, else a new one (the
    caller commits its CRL number)."""
    if authority.is_root:
        stored = session.execute(select(ca_authority.c.crl).where(ca_authority.c.name == authority.name)).scalar()
        if stored is None:
            raise NotFound(f"root CA {authority.name} has no signed CRL yet; sign one with `trustctl ca crl`",
                           f"根 CA {authority.name} 尚无已签名的 CRL，请用 `trustctl ca crl` 签发")
        return bytes(stored)
    mark = revocation_mark(session, authority.name)
    with _published_lock:
        cached = _published.get(authority.name)
    if cached is not None and cached[1] == mark and cached[0] > time.monotonic():
        return cached[2]
    der = build_crl(session, keystore, authority)
    with _published_lock:
        _published[authority.name] = (time.monotonic() + REFRESH_SECONDS, mark, der)
    return der
