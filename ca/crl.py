"""Publishing certificate revocation lists (RFC 5280 §5); ca.authority builds and signs them.

Each CRL gets the next cRLNumber of its CA, an authorityKeyIdentifier, thisUpdate and
nextUpdate, and a reasonCode per entry (absent for "unspecified", §5.3.1). SM2 CAs sign
with SM2-with-SM3 (1.2.156.10197.1.501, parameters absent, signer ID 1234567812345678).

An issuing CA's CRL is built on demand. A root CA's key signs only under dual control, so
its CRL (listing revoked issuing CAs, normally none) is signed with a long nextUpdate when
the hierarchy is created, or again by ``authority.sign_root_crl`` (``trustctl ca crl``) after a
revocation, and stored in ``ca_authority.crl`` for publication.
"""

import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.authority import Authority, build_crl
from ca.models import ca_authority
from ca.revocation import revocation_mark
from hsm.keystore import KeyStore
from trust.errors import NotFound

REFRESH_SECONDS = 300  # a published CRL is rebuilt after this, or at once when a revocation changes it


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
