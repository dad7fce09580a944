"""Sealing and verifying a one-page licence-sized OFD, and how much of it is SM2.

The document (A4, about 40 text runs with an embedded CJK font subset, a table and a
QR-sized image) is written once; "seal" is ofd.signature.sign_ofd with a GB/T 38540
SES_Signature (one SM2 signature), "verify" is ofd.verify.verify_ofd (two SM2
verifications: the signer's and the seal maker's). The SM2 share is the time of those
SM2 operations, measured alone on the same keys and message sizes, over the whole.
Certificates come from tests/certs.py (a test helper: the bench is a development tool).
"""

import io
from datetime import UTC, datetime, timedelta

from PIL import Image as PILImage

from bench.timing import rate
from ofd import layout as lm
from ofd.package import Package
from ofd.signature import Stamp, sign_ofd
from ofd.verify import verify_ofd
from ofd.writer import write_ofd
from seal.ses import build_seal_v4, build_signature_v4, parse_signature
from trust.hashes import sm3
from trust.sm2 import SM2PublicKey
from trust.x509 import parse_certificate

from tests.certs import make_leaf, make_root

SECONDS = 3


def _licence() -> lm.Document:
    qr = io.BytesIO()
    PILImage.new("1", (116, 116), 1).save(qr, "PNG")
    rows = tuple((f"字段{i}", f"福州某某科技有限公司登记事项第{i}项内容") for i in range(12))
    items = (lm.Text(70, 40, "营 业 执 照", 10, char_spacing=2),
             lm.Text(20, 60, "统一社会信用代码 91350100M000100Y43", 4),
             lm.Table(20, 75, (40, 130), 9, rows),
             lm.Image(160, 20, 30, 30, qr.getvalue()),
             *(lm.Text(20, 200 + 6 * i, f"经营范围第{i}行：软件开发、信息技术咨询服务。", 3.5) for i in range(12)),
             lm.Text(120, 280, "登记机关 福州市市场监督管理局 2025年03月01日", 3.5))
    return lm.Document(pages=(lm.Page(items=items),), info=lm.DocInfo(title="营业执照"))


def run() -> dict[str, float]:
    root = make_root("Bench Root")
    maker, signer = make_leaf(root, "Bench Maker"), make_leaf(root, "Bench Signer")
    now = datetime.now(UTC)
    seal = build_seal_v4(maker_cert=maker.cert_der, sign=maker.sign, es_id="3501000000000001", vid="bench",
                         seal_type=2, name="测试专用章", cert_list=[signer.cert_der], create_date=now - timedelta(days=1),
                         valid_start=now - timedelta(hours=1), valid_end=now + timedelta(days=30),
                         picture_type="PNG", picture_data=b"\x89PNG placeholder", picture_width=40, picture_height=40)

    def signed_value(signature_xml: bytes, loc: str) -> bytes:
        return build_signature_v4(seal=seal, data_hash=sm3(signature_xml), property_info=loc,
                                  signer_cert=signer.cert_der, sign=signer.sign)

    document = write_ofd(_licence())
    sealed = sign_ofd(document, signed_value, seal=seal, stamps=[Stamp(0, (150, 240, 40, 40))])
    roots = (root.cert_der,)
    seal_rate = rate(lambda: sign_ofd(document, signed_value, seal=seal, stamps=[Stamp(0, (150, 240, 40, 40))]),
                     SECONDS)
    verify_rate = rate(lambda: verify_ofd(sealed, trusted_roots=roots), SECONDS)

    ses = parse_signature(Package.from_bytes(sealed).read("Doc_0/Signs/Sign_0/SignedValue.dat"))
    signer_key = parse_certificate(signer.cert_der).public_key()
    maker_key = parse_certificate(maker.cert_der).public_key()
    assert isinstance(signer_key, SM2PublicKey) and isinstance(maker_key, SM2PublicKey)
    sign_rate = rate(lambda: signer.sign(ses.tbs_raw), SECONDS)
    def verify_pair() -> None:
        signer_key.verify(ses.signature, ses.tbs_raw)
        maker_key.verify(ses.seal.signed_value, ses.seal.seal_info.raw)

    sm2_verify_pair_rate = rate(verify_pair, SECONDS)
    write_rate = rate(lambda: write_ofd(_licence()), SECONDS)
    return {
        "ofd_seal_per_s": round(seal_rate, 1),
        "ofd_verify_per_s": round(verify_rate, 1),
        "ofd_seal_sm2_share": round(seal_rate / sign_rate, 3),
        "ofd_verify_sm2_share": round(verify_rate / sm2_verify_pair_rate, 3),
        "ofd_write_per_s": round(write_rate, 1),
        "ofd_write_vs_sm2_sign_ratio": round(write_rate / sign_rate, 3),  # #18's goal: 0.04
    }


if __name__ == "__main__":
    print(run())
