"""Dual certificates and key escrow (双证书与密钥托管, GM/T 0014 practice).

An applicant who holds a signing certificate from an issuing CA here gets an encryption
certificate too. The KeyStore generates the SM2 encryption key pair and hands back only its
public key, which the CA certifies, and two ``SM2EnvelopedKey`` envelopes of the private key
(GM/T 0009, sm-crypto.md §3; ``hsm.envelope``): one addressed to the applicant's signing
public key, returned to the applicant, and one addressed to the CA's escrow key (KeyStore
label ``escrow/<ca name>``, usage ``escrow``), kept here. The private key never exists
outside hsm/. Recovering it for a lawful request is the dual-control action
``key.recover``: once enough officers approve, the KeyStore re-envelopes it to the public
key named in the request (the escrow key decrypts only for an approved act), and every step
is audited. Signing keys are never escrowed: only keys generated for encryption
certificates are.
"""

from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ca import authority
from ca.models import ca_certificate, ca_escrow
from ca.refusal import refuse
from hsm import dual_control
from hsm.dual_control import Action
from hsm.keystore import KeyStore, Usage
from hsm.officers import Credential
from trust import audit
from trust.clock import utc_now
from trust.errors import InvalidInput, NotFound, TrustError
from trust.keys import load_public_key
from trust.sm2 import SM2PublicKey
from trust.x509 import parse_certificate

SIGNING_PROFILES = ("seal-maker", "organisation-signing", "personal-signing")


@dataclass(frozen=True)
class DualCertificate:
    certificate: authority.IssuedCertificate  # the encryption certificate
    envelope: bytes                            # DER SM2EnvelopedKey to the signing public key


def _escrow_key(session: Session, keystore: KeyStore, ca_name: str, actor: str):
    found = keystore.list(session, label=f"escrow/{ca_name}")
    active = [ref for ref in found if ref.state == "active"]
    if active:
        return active[-1]
    return keystore.generate(session, "SM2-with-SM3", f"escrow/{ca_name}", [Usage.ESCROW], actor=actor)


def issue_dual_certificate(session: Session, keystore: KeyStore, authority_name: str, signing_certificate: bytes,
                           *, actor: str = "ca") -> DualCertificate:
    """The encryption certificate for the holder of ``signing_certificate`` (issued by
    ``authority_name`` here, good, SM2, of a signing profile). Does not commit."""
    try:
        signing = _our_signing_certificate(session, authority_name, signing_certificate)
        with session.begin_nested():
            return _issue_dual(session, keystore, authority_name, signing, actor)
    except TrustError as error:
        raise refuse(session, actor, f"{authority_name}:encryption", error) from None


def _our_signing_certificate(session: Session, authority_name: str, der: bytes):
    signing = parse_certificate(der)
    row = session.execute(select(ca_certificate).where(
        (ca_certificate.c.issuer == authority_name)
        & (ca_certificate.c.serial == str(signing.serial_number)))).one_or_none()
    if row is None or bytes(row.der) != signing.der:
        raise InvalidInput(f"the signing certificate was not issued by {authority_name}",
                           f"签名证书不是由 {authority_name} 签发的")
    if row.status != "good" or row.profile not in SIGNING_PROFILES or not signing.is_sm2:
        raise InvalidInput("a dual certificate needs a good SM2 signing certificate",
                           "双证书需要一张有效的 SM2 签名证书")
    return signing


def _issue_dual(session, keystore, authority_name, signing, actor) -> DualCertificate:
    escrow_ref = _escrow_key(session, keystore, authority_name, actor)
    escrowed = keystore.generate_escrowed(session, recipient=signing.public_key(), escrow_ref=escrow_ref, actor=actor)
    issued = authority.issue(session, keystore, authority_name, "encryption",
                             subject=asn1_x509.Certificate.load(signing.der).subject,
                             public_key=escrowed.public_key, actor=actor)
    session.execute(insert(ca_escrow).values(
        issuer=authority_name, serial=str(issued.serial), signing_serial=str(signing.serial_number),
        escrow_key_id=escrow_ref.id, envelope=escrowed.escrow_blob, created_at=utc_now()))
    audit.append(session, actor, "ca.escrow", f"{authority_name}:{issued.serial}",
                 {"signing_serial": str(signing.serial_number), "escrow_key": escrow_ref.id})
    return DualCertificate(issued, escrowed.envelope)


# ---------------------------------------------------------------- recovery under dual control

def _recovery_parameters(parameters: dict) -> tuple[SM2PublicKey, str]:
    recipient, reason = parameters.get("recipient"), parameters.get("reason")
    if set(parameters) != {"recipient", "reason"} or not isinstance(recipient, str) or not isinstance(reason, str):
        raise InvalidInput("key.recover takes 'recipient' (SM2 public key PEM) and 'reason'",
                           "key.recover 需要参数 recipient（SM2 公钥 PEM）与 reason")
    key = load_public_key(recipient)
    if not isinstance(key, SM2PublicKey):
        raise InvalidInput("the recipient of a recovered key is an SM2 public key", "恢复密钥的接收方须为 SM2 公钥")
    if not reason.strip():
        raise InvalidInput("a lawful recovery states its reason", "密钥恢复须说明依据")
    return key, reason


def _escrow_row(session: Session, target: str):
    issuer, _, serial = target.partition(":")
    row = session.execute(select(ca_escrow).where(
        (ca_escrow.c.issuer == issuer) & (ca_escrow.c.serial == serial))).one_or_none()
    if row is None:
        raise NotFound(f"no escrowed key for {target}", f"没有托管的密钥 {target}")
    return row


def _check_recovery(session, keystore, target, parameters):
    _recovery_parameters(parameters)
    _escrow_row(session, target)


def _recover(session, keystore, req, actor):
    """Runs as the approved act (actor ``approval:<request id>``), the only actor the
    escrow key decrypts for."""
    recipient, reason = _recovery_parameters(req.parameters)
    row = _escrow_row(session, req.target)
    envelope = keystore.recover_escrowed(session, keystore.get(session, row.escrow_key_id), bytes(row.envelope),
                                         recipient=recipient, actor=actor)
    session.execute(update(ca_escrow).where((ca_escrow.c.issuer == row.issuer) & (ca_escrow.c.serial == row.serial))
                    .values(recovered_at=utc_now()))
    audit.append(session, actor, "ca.recover", req.target, {"reason": reason})
    return {"envelope": envelope.hex()}


dual_control.register(Action("key.recover", "恢复托管的加密密钥", "recover an escrowed encryption key",
                             _check_recovery, _recover))


def request_recovery(session: Session, keystore: KeyStore, issuer: str, serial: int, recipient_pem: str, *,
                     reason: str, credential: Credential) -> dual_control.ApprovalRequest:
    """Open the ``key.recover`` request; once approved its result holds ``envelope`` (hex
    SM2EnvelopedKey to ``recipient_pem``)."""
    return dual_control.request(session, keystore, "key.recover", f"{issuer}:{serial}",
                                {"recipient": recipient_pem, "reason": reason}, credential=credential)
