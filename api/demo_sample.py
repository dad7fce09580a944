"""The sealed sample OFD that `trustctl init --demo` writes under ``TRUST_HOME/samples/``.

It is composed here, in the layer allowed to import every package: the demo department's
seal is made (SES_Seal v4, signed by the seal-maker key) and applied to a one-page OFD
(SES_Signature v4, signed by the department's seal key); both keys sign inside the
KeyStore. The SM2 issuing CA's certificate is written beside it, for `trustctl verify
--trust-root`: the signed value carries only the signer's certificate, and until
intermediates are fetched from AIA the issuing CA is the anchor to give (RFC 5280 lets
any CA be a trust anchor).
Seal pictures proper (ring, star, arc text) arrive with the seal authority; this one is a
plain red ring.
"""

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from ca.authority import get_authority
from ca.demo import DEMO_DEPARTMENT, DemoCA
from hsm.keystore import KeyStore
from ofd import layout
from ofd.signature import Stamp, sign_ofd
from ofd.writer import write_ofd
from seal.ses import build_seal_v4, build_signature_v4
from trust.hashes import sm3
from trust.x509 import parse_certificate

SAMPLE_NAME = "demo-sealed.ofd"
ROOT_NAME = "sm2-issuing-ca.pem"
SEAL_MM = 40


def _ring_picture(size_px: int = 472) -> bytes:
    """A transparent PNG with a red ring: 40 mm at 300 dpi."""
    image = Image.new("RGBA", (size_px, size_px), (0, 0, 0, 0))
    width = size_px // 30
    ImageDraw.Draw(image).ellipse((width, width, size_px - width, size_px - width),
                                  outline=(220, 0, 0, 255), width=width)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _certificate(demo_ca: DemoCA, profile: str):
    return next(c for c in demo_ca.certificates if c.profile == profile)


def write_sealed_sample(session: Session, keystore: KeyStore, home: Path, demo_ca: DemoCA) -> Path:
    """Make the demo seal, seal a sample document with it, write both files; returns the OFD's path."""
    maker = _certificate(demo_ca, "seal-maker")
    signer = _certificate(demo_ca, "organisation-signing")
    maker_key = keystore.get(session, maker.key_id)
    signer_key = keystore.get(session, signer.key_id)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    seal = build_seal_v4(
        maker_cert=maker.der,
        sign=lambda data: keystore.sign(session, maker_key, data, usage="seal-making", actor="trustctl"),
        es_id=f"{demo_ca.department_uscc}0001", vid="UIA", seal_type=1, name="演示局审批专用章",
        cert_list=[signer.der], create_date=now, valid_start=now, valid_end=min(now + timedelta(days=365),
                                                                               signer.not_after),
        picture_type="PNG", picture_data=_ring_picture(), picture_width=SEAL_MM, picture_height=SEAL_MM)

    def signed_value(signature_xml: bytes, signature_loc: str) -> bytes:
        return build_signature_v4(
            seal=seal, data_hash=sm3(signature_xml), property_info=signature_loc, signer_cert=signer.der,
            sign=lambda tbs: keystore.sign(session, signer_key, tbs, usage="seal", actor="trustctl"))

    document = layout.Document(
        pages=(layout.Page(items=(
            layout.Text(70, 40, "演示审批决定书", 8),
            layout.Text(25, 70, f"申请单位：{DEMO_DEPARTMENT}", 4.5),
            layout.Text(25, 80, "事项：电子印章与电子证照信任服务演示 / Trust service demonstration", 4.5),
            layout.Text(25, 90, f"日期：{now:%Y-%m-%d}", 4.5),
        )),),
        info=layout.DocInfo(title="演示审批决定书", custom_datas=(("统一社会信用代码", demo_ca.department_uscc),)))
    sealed = sign_ofd(write_ofd(document), signed_value, seal=seal,
                      stamps=[Stamp(0, (130, 110, SEAL_MM, SEAL_MM))], signing_time=now)

    samples = home / "samples"
    samples.mkdir(exist_ok=True)
    (samples / ROOT_NAME).write_text(parse_certificate(get_authority(session, "sm2-issuing").certificate).pem)
    path = samples / SAMPLE_NAME
    path.write_bytes(sealed)
    return path
