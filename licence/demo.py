"""The demo licence authority that `trustctl init --demo` sets up after the demo seal
(seal/demo.py): the demo department issues the three shipped licence types with its
official seal (authorised for the licence service) through the demo client application
(the demo CA has made the SM2 root trusted for licences: ca/demo.py), and a demo 营业执照 is issued to the demo
enterprise, so its /v/ page and `trustctl verify` can be tried at once. The department gets
an SM2 key for its licences' QR payloads, and the service a signer for the key list.
"""

from sqlalchemy.orm import Session

from ca.demo import PDF_KEY_LABEL
from hsm.keystore import KeyStore
from licence import catalogue, issuance, qr_keys, registry
from licence.registry import LICENCE_SERVICE, LicenceRecord
from seal import making, registry as seals

ACTOR = "trustctl init --demo"
BUSINESS_LICENCE = "11100000MB0143028R001"
DEMO_FACE = {
    "entity_type": "有限责任公司（自然人投资或控股）", "legal_representative": "李明", "registered_capital": "5000000",
    "established_on": "2020-06-18", "term_from": "2020-06-18", "term_to": "长期",
    "domicile": "北京市海淀区示例路 88 号",
    "business_scope": "技术开发、技术咨询、技术服务；软件开发；数据处理和存储支持服务；信息系统集成服务。"
                      "（依法须经批准的项目，经相关部门批准后方可开展经营活动）"}


def set_up_demo_licences(session: Session, keystore: KeyStore, *, es_id: str, client_id: str,
                         enterprise: dict, public_url: str) -> LicenceRecord:
    """Register the demo department as issuer of every shipped type and issue the demo
    enterprise's business licence; returns it. Does not commit."""
    seal = seals.get_seal(session, es_id)
    seals.authorise(session, es_id, client_ids=sorted({*seal.client_ids, LICENCE_SERVICE}), actor=ACTOR)
    pdf_key = making.find_key(session, keystore, PDF_KEY_LABEL)  # its licences are PDFs too (ca/demo.py)
    for type_code in catalogue.shipped():
        registry.register_issuer(session, type_code=type_code, issuer_code=seal.holder_uscc,
                                 issuer_name=seal.holder_name, es_id=es_id, client_ids=[client_id],
                                 pdf_key_id=pdf_key.id, actor=ACTOR)
    qr_keys.rotate(session, keystore, seal.holder_uscc, actor=ACTOR)  # its QR payloads are signed (SM2)
    qr_keys.set_up_list_signer(session, keystore, actor=ACTOR)
    body = {"type_code": BUSINESS_LICENCE, "issuer_code": seal.holder_uscc,
            "holder": {"name": enterprise["name"], "code": enterprise["uscc"], "code_type": "001"}, "face": DEMO_FACE}
    record, _ = issuance.issue(session, keystore, body, client_id=client_id, verify_url=public_url,
                               idempotency_key="demo-business-licence")
    return record
