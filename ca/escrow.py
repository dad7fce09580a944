"""Dual certificates and key escrow (双证书与密钥托管, GM/T 0014 practice).

An applicant who holds a signing certificate from an issuing CA here gets an encryption
certificate too. The CA generates the SM2 encryption key pair, certifies its public key,
and hands the private key back as an ``SM2EnvelopedKey`` (GM/T 0009, sm-crypto.md §3)
addressed to the applicant's signing public key:

    SM2EnvelopedKey ::= SEQUENCE {
        symAlgID               AlgorithmIdentifier,  -- SM4-ECB 1.2.156.10197.1.104.1, parameters absent
        symEncryptedKey        SM2Cipher,            -- the 16-byte SM4 key, SM2-encrypted to the recipient
        Sm2PublicKey           SM2PublicKey,         -- BIT STRING 04‖x‖y of the enveloped key pair
        Sm2EncryptedPrivateKey BIT STRING }          -- SM4-ECB(d), 32 bytes, no padding

The same private key is escrowed as a second envelope addressed to the CA's escrow key
(KeyStore label ``escrow/<ca name>``, usage ``escrow``). Recovering it for a lawful request
is the dual-control action ``key.recover``: once enough officers approve, the key is
re-enveloped to the public key named in the request, and every step is audited. Signing
keys are never escrowed: only keys this module generates for encryption certificates are.

The fresh key pair exists in this process's memory between generation and enveloping
(the KeyStore has no operation that generates a key and envelopes it to a third party).
"""

import secrets
from dataclasses import dataclass

from asn1crypto import core, x509 as asn1_x509
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ca import authority
from ca.models import ca_certificate, ca_escrow
from hsm import dual_control
from hsm.dual_control import Action
from hsm.keystore import KeyStore, Usage
from hsm.officers import Credential
from trust import audit, oids, sm4
from trust.errors import DecryptionFailed, InvalidInput, NotFound, TrustError
from trust.keys import load_public_key
from trust.sm2 import SM2PrivateKey, SM2PublicKey
from trust.x509 import parse_certificate

MAX_ENVELOPE_BYTES = 1024
SIGNING_PROFILES = ("seal-maker", "organisation-signing", "personal-signing")


class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _SM2EnvelopedKey(core.Sequence):
    _fields = [("sym_alg_id", _AlgorithmIdentifier), ("sym_encrypted_key", core.Any),
               ("sm2_public_key", core.OctetBitString), ("sm2_encrypted_private_key", core.OctetBitString)]


@dataclass(frozen=True)
class EnvelopedKey:
    """A parsed SM2EnvelopedKey."""

    sym_encrypted_key: bytes   # DER SM2Cipher
    public_key: SM2PublicKey   # of the enveloped key pair
    encrypted_private_key: bytes


@dataclass(frozen=True)
class DualCertificate:
    certificate: authority.IssuedCertificate  # the encryption certificate
    envelope: bytes                            # DER SM2EnvelopedKey to the signing public key


def envelope_key(private_key: SM2PrivateKey, recipient: SM2PublicKey) -> bytes:
    """SM2EnvelopedKey of ``private_key`` to ``recipient``."""
    sym_key = secrets.token_bytes(sm4.KEY_SIZE)
    d = bytes.fromhex(private_key.to_hex())
    return _SM2EnvelopedKey({
        "sym_alg_id": {"algorithm": oids.SM4_ECB},
        "sym_encrypted_key": core.Any.load(recipient.encrypt(sym_key)),
        "sm2_public_key": private_key.public_key().to_point(),
        "sm2_encrypted_private_key": sm4.encrypt_ecb(sym_key, d, padding=False),
    }).dump()


def parse_envelope(data: bytes) -> EnvelopedKey:
    if not isinstance(data, (bytes, bytearray)) or not 0 < len(data) <= MAX_ENVELOPE_BYTES:
        raise InvalidInput(f"an SM2 envelope is 1-{MAX_ENVELOPE_BYTES} bytes", f"SM2 数字信封应为 1 至 {MAX_ENVELOPE_BYTES} 字节")
    try:
        parsed = _SM2EnvelopedKey.load(bytes(data), strict=True)
        algorithm = parsed["sym_alg_id"]["algorithm"].dotted
        cipher = parsed["sym_encrypted_key"].dump()
        point = parsed["sm2_public_key"].native
        encrypted = parsed["sm2_encrypted_private_key"].native
    except (ValueError, TypeError, KeyError) as e:
        raise InvalidInput(f"malformed SM2 envelope: {e}", "SM2 数字信封格式错误") from None
    if algorithm != oids.SM4_ECB:
        raise InvalidInput(f"SM2 envelope: symmetric algorithm {algorithm}, expected SM4-ECB",
                           f"SM2 数字信封：对称算法 {algorithm}，应为 SM4-ECB")
    if not isinstance(point, bytes) or not isinstance(encrypted, bytes) or len(encrypted) != 32:
        raise InvalidInput("SM2 envelope: the key fields have the wrong size", "SM2 数字信封：密钥字段长度错误")
    return EnvelopedKey(cipher, SM2PublicKey.from_point(point), encrypted)


def _unseal(envelope: EnvelopedKey, sym_key: bytes) -> SM2PrivateKey:
    if len(sym_key) != sm4.KEY_SIZE:
        raise DecryptionFailed("SM2 envelope: the symmetric key has the wrong size", "SM2 数字信封：对称密钥长度错误")
    key = SM2PrivateKey.from_hex(sm4.decrypt_ecb(sym_key, envelope.encrypted_private_key, padding=False).hex())
    if key.public_key() != envelope.public_key:
        raise DecryptionFailed("SM2 envelope: the private key does not match its public key",
                               "SM2 数字信封：私钥与公钥不匹配")
    return key


def open_envelope(data: bytes, recipient_key: SM2PrivateKey) -> SM2PrivateKey:
    """What the applicant does with their signing key (client side; here for tests and tools)."""
    envelope = parse_envelope(data)
    return _unseal(envelope, recipient_key.decrypt(envelope.sym_encrypted_key))


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
        raise authority.refuse(session, actor, f"{authority_name}:encryption", error) from None


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
    key = SM2PrivateKey.generate()
    issued = authority.issue(session, keystore, authority_name, "encryption",
                             subject=asn1_x509.Certificate.load(signing.der).subject,
                             public_key=key.public_key(), actor=actor)
    escrow_ref = _escrow_key(session, keystore, authority_name, actor)
    session.execute(insert(ca_escrow).values(
        issuer=authority_name, serial=str(issued.serial), signing_serial=str(signing.serial_number),
        escrow_key_id=escrow_ref.id,
        envelope=envelope_key(key, keystore.public_key(session, escrow_ref)),
        created_at=authority.utc_now()))
    audit.append(session, actor, "ca.escrow", f"{authority_name}:{issued.serial}",
                 {"signing_serial": str(signing.serial_number), "escrow_key": escrow_ref.id})
    return DualCertificate(issued, envelope_key(key, signing.public_key()))


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
    recipient, reason = _recovery_parameters(req.parameters)
    row = _escrow_row(session, req.target)
    envelope = parse_envelope(bytes(row.envelope))
    ref = keystore.get(session, row.escrow_key_id)
    key = _unseal(envelope, keystore.decrypt(session, ref, envelope.sym_encrypted_key, usage=Usage.ESCROW,
                                             actor=actor))
    session.execute(update(ca_escrow).where((ca_escrow.c.issuer == row.issuer) & (ca_escrow.c.serial == row.serial))
                    .values(recovered_at=authority.utc_now()))
    audit.append(session, actor, "ca.recover", req.target, {"reason": reason})
    return {"envelope": envelope_key(key, recipient).hex()}


dual_control.register(Action("key.recover", "恢复托管的加密密钥", "recover an escrowed encryption key",
                             _check_recovery, _recover))


def request_recovery(session: Session, keystore: KeyStore, issuer: str, serial: int, recipient_pem: str, *,
                     reason: str, credential: Credential) -> dual_control.ApprovalRequest:
    """Open the ``key.recover`` request; once approved its result holds ``envelope`` (hex
    SM2EnvelopedKey to ``recipient_pem``)."""
    return dual_control.request(session, keystore, "key.recover", f"{issuer}:{serial}",
                                {"recipient": recipient_pem, "reason": reason}, credential=credential)
