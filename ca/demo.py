"""The demo CA that `trustctl init --demo` sets up, so every CA endpoint can be tried at once.

Two hierarchies: ``sm2`` (SM2-with-SM3, for seals and licences) and ``ecdsa`` (P-256, for
PDF and TLS interop); under each issuing CA an OCSP signer and a TSA certificate whose
keys are in the KeyStore (labels ``ocsp/<ca>``, ``tsa/<ca>``); and for a demo department
(演示局, its unified social credit code generated) a seal-maker and an organisation-signing
certificate from the SM2 issuing CA, keys in the KeyStore too. The root signatures are
approved by the demo officers' credentials given. The department also gets an ECDSA
organisation-signing certificate, for the PDF form of its licences. The trust store trusts the
SM2 root for seals and licences and the ECDSA root for licences (their PDFs), so the demo
service verifies its own seals and licences.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ca import authority
from ca.authority import IssuedCertificate
from hsm.keystore import KeyStore
from hsm.officers import Credential
from trust import truststore
from trust.config import Settings
from trust.ids import generate_uscc

DEMO_DEPARTMENT = "演示局 Demo Bureau"
PDF_KEY_LABEL = "demo/department-pdf"
ACTOR = "trustctl"


@dataclass(frozen=True)
class DemoCA:
    authorities: tuple[str, ...]
    certificates: tuple[IssuedCertificate, ...]
    department_uscc: str

    def notice(self) -> str:
        lines = ["演示证书机构 / Demo certificate authorities: " + ", ".join(self.authorities)]
        lines += [f"  {c.profile}: {c.subject} ({c.issuer} serial {c.serial:x})" for c in self.certificates]
        return "\n".join(lines)


def set_up_demo_ca(session: Session, keystore: KeyStore, settings: Settings,
                   credentials: Sequence[Credential]) -> DemoCA:
    """Does not commit. ``settings`` is taken for symmetry with the other demo set-ups."""
    names, issued = [], []
    for family in ("sm2", "ecdsa"):
        root, issuing = authority.create_hierarchy(session, keystore, family, family, approval=credentials,
                                                   actor=ACTOR)
        names += [root.name, issuing.name]
        for purpose in ("seal", "licence") if family == "sm2" else ("licence",):  # licence PDFs are ECDSA
            truststore.import_roots(session, purpose, root.certificate, actor=ACTOR)
        for profile, label, common_name in (("ocsp-signer", "ocsp", "OCSP"), ("tsa", "tsa", "TSA")):
            issued.append(authority.issue_with_new_key(
                session, keystore, issuing.name, profile, subject={"C": "CN", "O": authority.DEFAULT_ORGANIZATION,
                                                                   "CN": f"{family.upper()} {common_name}"},
                label=f"{label}/{issuing.name}", actor=ACTOR))
    uscc = generate_uscc(random.Random(2026), department="1")
    department = {"C": "CN", "O": DEMO_DEPARTMENT, "organizationIdentifier": uscc}
    issued.append(authority.issue_with_new_key(session, keystore, "sm2-issuing", "seal-maker",
                                               subject={**department, "CN": "演示局制章 Demo seal maker"},
                                               label="demo/seal-maker", actor=ACTOR))
    issued.append(authority.issue_with_new_key(session, keystore, "sm2-issuing", "organisation-signing",
                                               subject={**department, "CN": "演示局签章 Demo department seal"},
                                               label="demo/department-seal", actor=ACTOR))
    # the same organisation's ECDSA signing certificate, for the PDF form of its licences (PAdES)
    issued.append(authority.issue_with_new_key(session, keystore, "ecdsa-issuing", "organisation-signing",
                                               subject={**department, "CN": "演示局签章 Demo department PDF signing"},
                                               label=PDF_KEY_LABEL, actor=ACTOR))
    return DemoCA(tuple(names), tuple(issued), uscc)
