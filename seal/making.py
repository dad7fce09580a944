"""Making seals (制章): SES_Seal v4 signed by the seal maker's key in the KeyStore (usage
``seal-making``), registering them, and importing seals made elsewhere after full
verification.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.models import ca_certificate
from hsm.keystore import KeyRef, KeyState, KeyStore, Usage
from seal import registry
from seal.picture import Picture, validate_picture
from seal.registry import SealRecord, SealStatus, SealType, ses_type
from seal.ses import CertDigest, build_seal_v4, parse_seal
from seal.verify import verify_seal
from trust.clock import utc_now
from trust.errors import InvalidInput, NotFound, PermissionDenied
from trust.hashes import sm3
from trust.report import CheckStatus, Report, Status
from trust.x509 import parse_certificate

VENDOR_ID = "TRUST"   # SES_Header.vid: this system


class SealRejected(InvalidInput):
    """A seal offered for import that does not verify; ``report`` says why."""

    code = "seal_rejected"

    def __init__(self, report: Report):
        failed = [c for s in report.signatures for c in s.checks
                  if c.status not in (CheckStatus.PASSED, CheckStatus.NOT_APPLICABLE)]
        super().__init__(f"the seal is {report.status}, not imported: " + "; ".join(
                             f"{c.check}: {c.reason.en}" for c in failed),
                         f"印章验证结果为 {report.status}，不予导入：" + "；".join(f"{c.check}：{c.reason.zh}" for c in failed))
        self.report = report


def find_key(session: Session, keystore: KeyStore, id_or_label: str) -> KeyRef:
    """A KeyStore key by id, or the active newest version of a label."""
    active = [r for r in keystore.list(session, label=id_or_label) if r.state == KeyState.ACTIVE]
    return active[-1] if active else keystore.get(session, id_or_label)


def certificate_for_key(session: Session, ref: KeyRef) -> bytes:
    """The newest certificate our CA issued for a KeyStore key (DER)."""
    der = session.execute(select(ca_certificate.c.der).where(ca_certificate.c.key_id == ref.id)
                          .order_by(ca_certificate.c.created_at.desc())).scalar()
    if der is None:
        raise NotFound(f"our CA issued no certificate for key {ref.label} ({ref.id})",
                       f"本系统证书机构未给密钥 {ref.label} 签发证书")
    return bytes(der)


def _same_key(keystore: KeyStore, session: Session, ref: KeyRef, cert_der: bytes, whose: str, whose_zh: str) -> None:
    if keystore.public_key(session, ref) != parse_certificate(cert_der).public_key():
        raise InvalidInput(f"the {whose} certificate does not certify key {ref.label} ({ref.id})",
                           f"{whose_zh}证书与密钥 {ref.label} 不匹配")


def make_seal(session: Session, keystore: KeyStore, *, es_id: str, maker_key: KeyRef, maker_cert: bytes,
              holder_certs: Sequence[bytes | CertDigest], name: str, seal_type, picture: Picture,
              valid_from: datetime, valid_to: datetime, cert_list_type: int = 1,
              actor: str = "service", clock: Callable[[], datetime] = utc_now) -> bytes:
    """DER SES_Seal v4. ``holder_certs``: the signers' certificates (DER), or CertDigest
    values; with ``cert_list_type`` 2 certificates are listed by their SM3 digest.
    ``seal_type``: a SealType (written as 1 organisation / 2 personal) or the integer."""
    if cert_list_type not in (1, 2):
        raise InvalidInput("certListType is 1 (certificates) or 2 (digests)", "证书列表类型须为 1（证书）或 2（杂凑）")
    if not holder_certs:
        raise InvalidInput("a seal lists at least one signer certificate", "印章至少须列出一张签章者证书")
    certs = [c for c in holder_certs if not isinstance(c, CertDigest)]
    for der in certs:
        parse_certificate(der)
    if cert_list_type == 1 and len(certs) != len(holder_certs):
        raise InvalidInput("certListType 1 lists certificates, not digests", "证书列表类型 1 须列出证书而非杂凑")
    digests = [c if isinstance(c, CertDigest) else CertDigest("SM3", sm3(c)) for c in holder_certs]
    _same_key(keystore, session, maker_key, maker_cert, "seal maker's", "制章者")
    kind = seal_type if isinstance(seal_type, int) and not isinstance(seal_type, bool) else ses_type(SealType(seal_type))
    now = clock()
    return build_seal_v4(
        maker_cert=maker_cert,
        sign=lambda info: keystore.sign(session, maker_key, info, usage=Usage.SEAL_MAKING, actor=actor),
        es_id=es_id, vid=VENDOR_ID, seal_type=kind, name=name,
        cert_list=certs if cert_list_type == 1 else (), cert_digest_list=digests if cert_list_type == 2 else (),
        create_date=min(now, valid_from), valid_start=valid_from, valid_end=valid_to,
        picture_type=picture.type, picture_data=picture.data, picture_width=picture.width_mm,
        picture_height=picture.height_mm)


def make(session: Session, keystore: KeyStore, es_id: str, *, maker_key: KeyRef, maker_cert: bytes, actor: str,
         activate: bool = True, cert_list_type: int = 1, clock: Callable[[], datetime] = utc_now) -> SealRecord:
    """Make an approved seal from its application: approved → made (→ active)."""
    record = registry.get_seal(session, es_id)
    if record.status != SealStatus.APPROVED:  # checked before the maker's key signs anything
        raise registry.IllegalTransition(f"seal {es_id} is {record.status}; only an approved seal is made",
                                         f"印章 {es_id} 处于“{record.status.zh}”状态，只有已审批的印章才能制作")
    if record.holder_key_id is not None:
        _same_key(keystore, session, keystore.get(session, record.holder_key_id), record.holder_certificate,
                  "holder's", "印章持有者")
    der = make_seal(session, keystore, es_id=record.es_id, maker_key=maker_key, maker_cert=maker_cert,
                    holder_certs=[record.holder_certificate], name=record.name, seal_type=record.seal_type,
                    picture=_picture(record), valid_from=record.valid_from, valid_to=record.valid_to,
                    cert_list_type=cert_list_type, actor=actor, clock=clock)
    record = registry.transition(session, es_id, SealStatus.MADE, actor=actor, reason="made", clock=clock,
                                 seal_der=der, maker_certificate=maker_cert)
    if activate:
        record = registry.transition(session, es_id, SealStatus.ACTIVE, actor=actor, reason="activated", clock=clock)
    return record


def _picture(record: SealRecord) -> Picture:
    return Picture(record.picture_type, record.picture, record.picture_width_mm, record.picture_height_mm, 0, 0)


def make_and_register(session: Session, keystore: KeyStore, *, holder_name: str, holder_uscc: str, seal_type,
                      name: str, picture: Picture, holder_key: KeyRef, holder_cert: bytes, maker_key: KeyRef,
                      maker_cert: bytes, valid_from: datetime, valid_to: datetime, actor: str, approver: str,
                      client_ids: Sequence[str] = (), operators: Sequence[str] = (), cert_list_type: int = 1,
                      clock: Callable[[], datetime] = utc_now) -> SealRecord:
    """Apply (``actor``), approve (``approver``, someone else), make and activate a seal in
    one go, and authorise the clients and operators given. Does not commit."""
    if approver == actor:  # registry.approve would refuse it too, after the application was written
        raise PermissionDenied(f"{actor} cannot both apply for a seal and approve it",
                               f"{actor} 不能既申请又审批同一枚印章")
    record = registry.apply(session, holder_name=holder_name, holder_uscc=holder_uscc, seal_type=seal_type,
                            name=name, picture=picture, holder_certificate=holder_cert, holder_key_id=holder_key.id,
                            valid_from=valid_from, valid_to=valid_to, actor=actor, clock=clock)
    registry.approve(session, record.es_id, actor=approver, clock=clock)
    make(session, keystore, record.es_id, maker_key=maker_key, maker_cert=maker_cert, actor=actor,
         cert_list_type=cert_list_type, clock=clock)
    if client_ids or operators:
        registry.authorise(session, record.es_id, client_ids=client_ids, operators=operators, actor=actor)
    return registry.get_seal(session, record.es_id)


# ---------------------------------------------------------------- import

@dataclass(frozen=True)
class _Holder:
    name: str | None
    uscc: str | None


def holder_of(cert_der: bytes) -> _Holder:
    """The organisation (O) and its credit code (organizationIdentifier) in a certificate's subject."""
    try:
        subject = asn1_x509.Certificate.load(cert_der).subject.native
    except (ValueError, TypeError):
        return _Holder(None, None)
    name, uscc = subject.get("organization_name"), subject.get("organization_identifier")
    return _Holder(name if isinstance(name, str) else None, uscc if isinstance(uscc, str) else None)


def import_seal(session: Session, der: bytes, *, trusted_roots, holder_key_id: str | None = None,
                keystore: KeyStore | None = None, holder_certificate: bytes | None = None,
                holder_name: str | None = None, holder_uscc: str | None = None, seal_type=None,
                actor: str = "service", clock: Callable[[], datetime] = utc_now) -> SealRecord:
    """Register a seal made elsewhere, once seal.verify.verify_seal finds it VALID (else
    SealRejected carrying the report). It becomes active; it can sign here only with
    ``holder_key_id`` (a KeyStore key whose certificate the seal lists; ``keystore`` to check it).
    The holder is read from the holder certificate's subject unless given."""
    report = verify_seal(der, trusted_roots=trusted_roots, at=clock())
    if report.status != Status.VALID:
        raise SealRejected(report)
    seal = parse_seal(der)
    info = seal.seal_info
    if holder_certificate is None:
        if not info.cert_list:
            raise InvalidInput("the seal lists certificate digests only: give the holder's certificate",
                               "印章只列出了证书杂凑，请提供持有者的签名证书")
        holder_certificate = info.cert_list[0]
    listed = holder_certificate in info.cert_list or any(
        d.type.upper() == "SM3" and d.value == sm3(holder_certificate) for d in info.cert_digest_list)
    if not listed:
        raise InvalidInput("the seal does not list this holder certificate", "印章未列出该持有者证书")
    if holder_key_id is not None:
        if keystore is None:
            raise InvalidInput("a holder key is checked against its certificate: give the keystore",
                               "指定持有者密钥时须提供密钥库以核对证书")
        _same_key(keystore, session, keystore.get(session, holder_key_id), holder_certificate, "holder's", "印章持有者")
    found = holder_of(holder_certificate)
    holder_name, holder_uscc = holder_name or found.name, holder_uscc or found.uscc
    if not holder_name or not holder_uscc:
        raise InvalidInput("the holder certificate names no organisation and credit code: give them",
                           "持有者证书中没有单位名称和统一社会信用代码，请提供")
    kind = seal_type or (SealType.PERSONAL if info.type == 2 else SealType.OTHER)
    # the maker signed the picture, but a registered seal must have one a viewer can show
    picture = validate_picture(info.picture_data, info.picture_type, width_mm=info.picture_width,
                               height_mm=info.picture_height)
    return registry.register(
        session, es_id=info.es_id, holder_name=holder_name, holder_uscc=holder_uscc, seal_type=kind,
        name=info.name, picture=picture, holder_certificate=holder_certificate, holder_key_id=holder_key_id,
        valid_from=info.valid_start, valid_to=info.valid_end, status=SealStatus.ACTIVE, origin="imported",
        actor=actor, reason="imported after verification", maker_certificate=seal.cert, seal=seal.raw, clock=clock)
