"""The demo department's official seal (公章), which `trustctl init --demo` makes after the
demo CA (ca/demo.py): drawn by seal.picture.seal_picture (name, star, seal code), applied
for by one demo officer and approved by another, made with the demo seal-maker key,
signed with the demo organisation key, active, and authorised for the demo client
application ``demo-department-app``.
"""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.demo import DEMO_DEPARTMENT
from hsm.demo import DEMO_OFFICERS
from hsm.keystore import KeyStore
from seal import making
from seal.models import seal_registry
from seal.picture import seal_picture
from trust.clock import utc_now
from trust.errors import InvalidInput

DEMO_CLIENT_ID = "demo-department-app"
DEMO_SEAL_NAME = "演示局"
MAKER_LABEL, HOLDER_LABEL = "demo/seal-maker", "demo/department-seal"
PICTURE_DPI = 200        # 42 mm at 200 dpi: a 331-pixel PNG of ~12 KB, embedded in every signature
VALIDITY = timedelta(days=3 * 365)
(APPLICANT, _, _), (APPROVER, _, _) = DEMO_OFFICERS[:2]  # one demo officer applies, another approves


def demo_seal_code(uscc: str) -> str:
    """A 13-digit seal code (印章编码) for the demo picture: the holder's region code (USCC
    digits 3-8) and a serial. Real codes come from the public-security seal filing."""
    return f"{uscc[2:8]}0000001"


def make_demo_seal(session: Session, keystore: KeyStore, client_id: str = DEMO_CLIENT_ID) -> str:
    """The esID of the demo department's official seal, made on the first call and usable by
    the client application ``client_id`` (the demo's OIDC client). Does not commit."""
    holder_key = making.find_key(session, keystore, HOLDER_LABEL)
    existing = session.execute(select(seal_registry.c.es_id).where(
        (seal_registry.c.holder_key_id == holder_key.id) & (seal_registry.c.seal_type == "official"))).scalar()
    if existing is not None:
        return existing
    holder_cert = making.certificate_for_key(session, holder_key)
    maker_key = making.find_key(session, keystore, MAKER_LABEL)
    holder = making.holder_of(holder_cert)
    if holder.uscc is None:
        raise InvalidInput("the demo holder certificate names no USCC", "演示签章者证书中没有统一社会信用代码")
    now = utc_now().replace(microsecond=0)
    record = making.make_and_register(
        session, keystore, holder_name=holder.name or DEMO_DEPARTMENT, holder_uscc=holder.uscc, seal_type="official",
        name=DEMO_SEAL_NAME,
        picture=seal_picture("official", DEMO_SEAL_NAME, code=demo_seal_code(holder.uscc), dpi=PICTURE_DPI),
        holder_key=holder_key, holder_cert=holder_cert, maker_key=maker_key,
        maker_cert=making.certificate_for_key(session, maker_key), valid_from=now, valid_to=now + VALIDITY,
        actor=APPLICANT, approver=APPROVER, client_ids=[client_id])
    return record.es_id
