"""The sealed sample OFD that `trustctl init --demo` writes under ``TRUST_HOME/samples/``.

It is composed here, in the layer allowed to import every package: a one-page OFD
(ofd/) sealed with the demo department's official seal from the registry (seal/), each
SignedValue a SES_Signature made by ``seal.signing.sign`` as the demo client application,
so the use is authorised and audited like any other. The SM2 issuing CA's certificate is
written beside it, for `trustctl verify --trust-root` on a machine that may fetch nothing
(a signed value carries only the signer's certificate; RFC 5280 lets any CA be a trust
anchor).
"""


from pathlib import Path

from sqlalchemy.orm import Session

from ca.authority import get_authority
from hsm.keystore import KeyStore
from ofd import layout
from ofd.signature import Stamp, sign_ofd
from ofd.writer import write_ofd
from seal import registry, signing
from trust.clock import utc_now
from trust.x509 import parse_certificate

SAMPLE_NAME = "demo-sealed.ofd"
ROOT_NAME = "sm2-issuing-ca.pem"


def write_sealed_sample(session: Session, keystore: KeyStore, home: Path, es_id: str, client_id: str) -> Path:
    """Seal a sample document with the registered seal ``es_id`` as ``client_id``; write it and
    the issuing CA's certificate; returns the OFD's path."""
    record = registry.get_seal(session, es_id)
    now = utc_now().replace(microsecond=0)

    def signed_value(signature_xml: bytes, signature_loc: str) -> bytes:
        return signing.sign(session, keystore, es_id, data=signature_xml, client_id=client_id,
                            purpose="演示样例 demo sample", property_info=signature_loc, clock=lambda: now)

    document = layout.Document(
        pages=(layout.Page(items=(
            layout.Text(70, 40, "演示审批决定书", 8),
            layout.Text(25, 70, f"申请单位：{record.holder_name}", 4.5),
            layout.Text(25, 80, "事项：电子印章与电子证照信任服务演示 / Trust service demonstration", 4.5),
            layout.Text(25, 90, f"日期：{now:%Y-%m-%d}", 4.5),
        )),),
        info=layout.DocInfo(title="演示审批决定书", custom_datas=(("统一社会信用代码", record.holder_uscc),)))
    size = (record.picture_width_mm, record.picture_height_mm)
    sealed = sign_ofd(write_ofd(document), signed_value, seal=record.seal, stamps=[Stamp(0, (130, 110, *size))],
                      signing_time=now)

    samples = home / "samples"
    samples.mkdir(exist_ok=True)
    (samples / ROOT_NAME).write_text(parse_certificate(get_authority(session, "sm2-issuing").certificate).pem)
    path = samples / SAMPLE_NAME
    path.write_bytes(sealed)
    return path
