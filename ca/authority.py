"""CA hierarchies, issuance and the signing of CRLs (ca.crl publishes them).

A hierarchy is a root and one issuing (intermediate) CA in one algorithm family: SM2 with
SM3 (GM/T 0015, the default), ECDSA P-256 with SHA-256, or RSA-3072 with SHA-256. Both keys
live in the KeyStore. The root's is labelled ``root-ca/<name>``: the KeyStore lets it sign
only inside an act approved under dual control (``key.use-root``), so every signature by a
root — its own certificate, the issuing CA's, a CRL — takes the credentials of as many
security officers as the approval policy asks for (``approval``: the first opens the
request, the others approve it, all in the caller's transaction).

Nothing here commits: the caller does. A refused request (issuance, a new hierarchy)
raises after writing only its ``ca.refuse`` audit record to the session: commit it so the
attempt stays on record.
"""

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import core, crl, keys as asn1_keys, x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca import profiles
from ca.csr import parse_csr
from ca.models import ca_authority, ca_certificate
from ca.profiles import Profile
from ca.refusal import refuse
from ca.revocation import ASN1_REASONS, revoked_entries
from hsm import dual_control
from hsm.keystore import KeyRef, KeyStore, Usage, is_root_ca_key
from hsm.officers import Credential
from trust import audit, oids
from trust.clock import as_utc, utc_now
from trust.errors import InvalidInput, NotFound, TrustError, UnsupportedAlgorithm
from trust.keys import load_public_key
from trust.sm2 import SM2PublicKey
from trust.x509 import parse_certificate

# family → (KeyStore algorithm, signatureAlgorithm). SM2: parameters absent (GM/T 0015);
# ECDSA: absent (RFC 5758 §3.2); RSA PKCS#1 v1.5: NULL (RFC 4055 §5).
FAMILIES = {
    "sm2": ("SM2-with-SM3", {"algorithm": oids.SM2_WITH_SM3}),
    "ecdsa": ("ES256", {"algorithm": oids.ECDSA_SHA256}),
    "rsa": ("RS256", {"algorithm": oids.SHA256_RSA, "parameters": core.Null()}),
}
DEFAULT_ORGANIZATION = "信任服务 Trust Service"
CLOCK_SKEW = timedelta(minutes=1)
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class Authority:
    name: str
    family: str
    parent: str | None
    key_id: str
    certificate: bytes  # DER
    crl_number: int
    created_at: datetime

    @property
    def is_root(self) -> bool:
        return self.parent is None

    @property
    def signature_algorithm(self) -> dict:
        return FAMILIES[self.family][1]


@dataclass(frozen=True)
class IssuedCertificate:
    serial: int
    issuer: str
    subject: str
    profile: str
    der: bytes
    not_before: datetime
    not_after: datetime
    key_id: str | None = None


def hierarchy_names(name: str) -> tuple[str, str]:
    """The CA names of hierarchy ``name``: ``<name>-root`` and ``<name>-issuing``."""
    return f"{name}-root", f"{name}-issuing"


def root_key_label(name: str) -> str:
    return f"root-ca/{name}"


def _authority(row) -> Authority:
    return Authority(name=row.name, family=row.family, parent=row.parent, key_id=row.key_id,
                     certificate=bytes(row.certificate), crl_number=row.crl_number,
                     created_at=as_utc(row.created_at))


def get_authority(session: Session, name: str) -> Authority:
    row = session.execute(select(ca_authority).where(ca_authority.c.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"no certificate authority named {name!r}", f"没有名为 {name!r} 的证书机构")
    return _authority(row)


def list_authorities(session: Session) -> list[Authority]:
    return [_authority(r) for r in session.execute(select(ca_authority).order_by(ca_authority.c.name))]


# ---------------------------------------------------------------- signing as a CA

def sign_as(session: Session, keystore: KeyStore, authority: Authority, data: bytes, *,
            approval: Sequence[Credential] = (), purpose: str = "", actor: str = "ca") -> bytes:
    """The CA's signature over ``data`` (a tbsCertificate, tbsCertList…). A root CA signs
    only through a ``key.use-root`` request that ``approval``'s officers open and approve."""
    ref = keystore.get(session, authority.key_id)
    if is_root_ca_key(ref):
        return _sign_with_root(session, keystore, ref, data, approval, purpose or authority.name)
    return keystore.sign(session, ref, data, usage=Usage.CERTIFICATE, actor=actor)


def _sign_with_root(session: Session, keystore: KeyStore, ref: KeyRef, data: bytes,
                    approval: Sequence[Credential], purpose: str) -> bytes:
    threshold = dual_control.policy(session).threshold
    if len(approval) < threshold:
        raise InvalidInput(
            f"a root CA key signs only with {threshold} security officers' approval; "
            f"give {threshold} officer credentials (got {len(approval)})",
            f"根 CA 密钥须经 {threshold} 名安全员批准才能签名，请提供 {threshold} 名安全员的凭据（现有 {len(approval)} 份）")
    request = dual_control.request(session, keystore, "key.use-root", ref.id,
                                   {"data": data.hex(), "usage": str(Usage.CERTIFICATE),
                                    "prehashed": False, "purpose": purpose[:200]},
                                   credential=approval[0])
    for credential in approval[1:]:
        request = dual_control.approve(session, keystore, request.id, credential=credential)
        if request.status != dual_control.PENDING:
            break
    if request.status != dual_control.EXECUTED or request.result is None:
        raise InvalidInput(f"the root CA signature was not approved ({request.status}): {request.error or ''}",
                           f"根 CA 签名未获批准（{request.status.zh}）")
    return bytes.fromhex(request.result["signature"])


# ---------------------------------------------------------------- certificates

def key_identifier(spki_der: bytes) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value."""
    return hashlib.sha1(asn1_keys.PublicKeyInfo.load(spki_der)["public_key"].contents[1:]).digest()


def spki_of(public_key) -> bytes:
    """SubjectPublicKeyInfo DER of a key object or of SPKI DER/PEM, checked to be a key we certify."""
    if isinstance(public_key, (bytes, str)):
        public_key = load_public_key(public_key)
    if isinstance(public_key, SM2PublicKey):
        return public_key.to_der()
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in ("secp256r1", "secp384r1"):
        pass
    elif isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= MIN_RSA_BITS:
        pass
    else:
        raise UnsupportedAlgorithm("certified keys are SM2, ECDSA P-256/P-384 or RSA of 2048 bits or more",
                                   "只为 SM2、ECDSA P-256/P-384 或不少于 2048 位的 RSA 公钥签发证书")
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _time(value: datetime) -> asn1_x509.Time:
    # RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    return asn1_x509.Time(name="utc_time" if value.year < 2050 else "general_time", value=value)


def _uri(url: str) -> asn1_x509.GeneralName:
    return asn1_x509.GeneralName(name="uniform_resource_identifier", value=url)


def _extensions(*, spki: bytes, issuer_spki: bytes, issuer_name: str | None, ca: bool,
                path_length: int | None, key_usage: frozenset[str], prof: Profile | None,
                dns_names: Sequence[str]) -> list[dict]:
    ext = [
        {"extn_id": "basic_constraints", "critical": True,
         "extn_value": {"ca": True, "path_len_constraint": path_length} if ca else {"ca": False}},
        {"extn_id": "key_usage", "critical": True, "extn_value": set(key_usage)},
        {"extn_id": "key_identifier", "critical": False, "extn_value": key_identifier(spki)},
        {"extn_id": "authority_key_identifier", "critical": False,
         "extn_value": {"key_identifier": key_identifier(issuer_spki)}},
    ]
    if prof and prof.extended_key_usage:
        ext.append({"extn_id": "extended_key_usage", "critical": prof.eku_critical,
                    "extn_value": list(prof.extended_key_usage)})
    if ca and path_length is not None:
        ext.append({"extn_id": "certificate_policies", "critical": False,
                    "extn_value": [{"policy_identifier": profiles.ANY_POLICY}]})
    if prof is not None:
        ext.append({"extn_id": "certificate_policies", "critical": False,
                    "extn_value": [{"policy_identifier": profiles.policy_oid(prof)}]})
    if dns_names:
        ext.append({"extn_id": "subject_alt_name", "critical": False,
                    "extn_value": [asn1_x509.GeneralName(name="dns_name", value=d) for d in dns_names]})
    if issuer_name is not None:  # not on a self-signed root
        if prof is None or prof.revocation_pointers:
            ext.append({"extn_id": "crl_distribution_points", "critical": False,
                        "extn_value": [{"distribution_point": {"full_name": [_uri(profiles.crl_url(issuer_name))]}}]})
        access = [{"access_method": "ca_issuers", "access_location": _uri(profiles.ca_issuers_url(issuer_name))}]
        if prof is not None and prof.revocation_pointers:
            access.insert(0, {"access_method": "ocsp", "access_location": _uri(profiles.ocsp_url(issuer_name))})
        ext.append({"extn_id": "authority_information_access", "critical": False, "extn_value": access})
    if prof and prof.ocsp_nocheck:
        ext.append({"extn_id": "ocsp_no_check", "critical": False, "extn_value": core.Null()})
    return ext


def _certificate(tbs: asn1_x509.TbsCertificate, algorithm: dict, signature: bytes) -> bytes:
    return asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": algorithm,
                                  "signature_value": signature}).dump()


def _tbs(*, serial: int, algorithm: dict, issuer: asn1_x509.Name, subject: asn1_x509.Name,
         not_before: datetime, not_after: datetime, spki: bytes, extensions: list[dict]) -> asn1_x509.TbsCertificate:
    return asn1_x509.TbsCertificate({
        "version": "v3", "serial_number": serial, "signature": algorithm, "issuer": issuer,
        "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
        "subject": subject, "subject_public_key_info": asn1_keys.PublicKeyInfo.load(spki),
        "extensions": extensions,
    })


def new_serial() -> int:
    """16 random bytes as a positive INTEGER (RFC 5280 §4.1.2.2: at most 20 octets)."""
    return 1 + secrets.randbelow((1 << 127) - 1)


# ---------------------------------------------------------------- hierarchies

def create_hierarchy(session: Session, keystore: KeyStore, name: str, family: str = "sm2", *,
                     approval: Sequence[Credential], organization: str = DEFAULT_ORGANIZATION,
                     actor: str = "trustctl") -> tuple[Authority, Authority]:
    """A root CA ``<name>-root`` and an issuing CA ``<name>-issuing`` under it. The root's
    signatures (its self-signed certificate, the issuing CA's, the root's first CRL, which
    is stored for publication) are approved by ``approval``."""
    try:
        _check_new_hierarchy(session, name, family)
        with session.begin_nested():
            return _create_hierarchy(session, keystore, name, family, approval, organization, actor)
    except TrustError as error:
        raise refuse(session, actor, f"ca.create:{name}", error) from None


def _check_new_hierarchy(session: Session, name: str, family: str) -> None:
    if family not in FAMILIES:
        raise UnsupportedAlgorithm(f"unknown CA family {family!r}; choose sm2, ecdsa or rsa",
                                   f"未知的 CA 算法体系 {family!r}，可选 sm2、ecdsa、rsa")
    if not isinstance(name, str) or not name.replace("-", "").isalnum() or not name.isascii() or len(name) > 40:
        raise InvalidInput("a hierarchy name is 1-40 ASCII letters, digits or '-'",
                           "CA 体系名称为 1 至 40 个 ASCII 字母、数字或“-”")
    for ca_name in hierarchy_names(name):
        if session.execute(select(ca_authority.c.name).where(ca_authority.c.name == ca_name)).first():
            raise InvalidInput(f"certificate authority {ca_name} exists already", f"证书机构 {ca_name} 已存在")


def _create_hierarchy(session, keystore, name, family, approval, organization, actor):
    root_name, issuing_name = hierarchy_names(name)
    algorithm, sig_alg = FAMILIES[family]
    now = utc_now().replace(microsecond=0)  # certificates carry whole seconds
    root_ref = keystore.generate(session, algorithm, root_key_label(name), [Usage.CERTIFICATE], actor=actor)
    issuing_ref = keystore.generate(session, algorithm, f"ca/{issuing_name}", [Usage.CERTIFICATE], actor=actor)
    root_spki = spki_of(keystore.public_key(session, root_ref))
    issuing_spki = spki_of(keystore.public_key(session, issuing_ref))
    root_subject = profiles.subject_name({"C": "CN", "O": organization, "CN": f"{name} Root CA"})
    tbs = _tbs(serial=new_serial(), algorithm=sig_alg, issuer=root_subject, subject=root_subject,
               not_before=now - CLOCK_SKEW, not_after=now + profiles.ROOT_VALIDITY, spki=root_spki,
               extensions=_extensions(spki=root_spki, issuer_spki=root_spki, issuer_name=None, ca=True,
                                      path_length=None, key_usage=profiles.CA_KEY_USAGE, prof=None,
                                      dns_names=()))
    root_der = _certificate(tbs, sig_alg, _sign_with_root(session, keystore, root_ref, tbs.dump(), approval,
                                                          f"self-signed certificate of {root_name}"))
    root = _insert_authority(session, root_name, family, None, root_ref.id, root_der, now)
    issuing_der = _sign_ca_certificate(session, keystore, root, issuing_spki, approval, organization,
                                       f"{name} Issuing CA", now)
    issuing = _insert_authority(session, issuing_name, family, root_name, issuing_ref.id, issuing_der, now)
    sign_root_crl(session, keystore, root, approval=approval, actor=actor, now=now)
    root = get_authority(session, root_name)  # with its CRL number
    audit.append(session, actor, "ca.create", name, {"family": family, "root": root_name,
                                                     "issuing": issuing_name, "root_key": root_ref.id,
                                                     "issuing_key": issuing_ref.id})
    return root, issuing


def _sign_ca_certificate(session, keystore, root: Authority, spki: bytes, approval, organization: str,
                         common_name: str, now: datetime) -> bytes:
    root_cert = asn1_x509.Certificate.load(root.certificate)
    not_after = min(now + profiles.ISSUING_VALIDITY, root_cert.not_valid_after)
    serial = new_serial()
    tbs = _tbs(serial=serial, algorithm=root.signature_algorithm, issuer=root_cert.subject,
               subject=profiles.subject_name({"C": "CN", "O": organization, "CN": common_name}),
               not_before=now - CLOCK_SKEW, not_after=not_after, spki=spki,
               extensions=_extensions(spki=spki, issuer_spki=root_cert.public_key.dump(), issuer_name=root.name,
                                      ca=True, path_length=0, key_usage=profiles.CA_KEY_USAGE, prof=None,
                                      dns_names=()))
    der = _certificate(tbs, root.signature_algorithm,
                       sign_as(session, keystore, root, tbs.dump(), approval=approval,
                               purpose=f"CA certificate of {common_name}"))
    _insert_certificate(session, root.name, serial, der, "ca", None, now)
    return der


def _insert_authority(session, name, family, parent, key_id, der, now) -> Authority:
    session.execute(insert(ca_authority).values(name=name, family=family, parent=parent, key_id=key_id,
                                                certificate=der, crl_number=0, created_at=now))
    return get_authority(session, name)


def _insert_certificate(session, issuer: str, serial: int, der: bytes, profile_name: str, key_id, now):
    parsed = parse_certificate(der)
    session.execute(insert(ca_certificate).values(
        serial=str(serial), issuer=issuer, subject=parsed.subject, profile=profile_name, der=der,
        not_before=parsed.not_before, not_after=parsed.not_after, status="good", key_id=key_id,
        created_at=now))
    return parsed


# ---------------------------------------------------------------- issuance



def issue(session: Session, keystore: KeyStore, authority_name: str, profile_name: str, *,
          subject=None, public_key=None, csr_der: bytes | None = None, validity: timedelta | None = None,
          serial: int | None = None, dns_names: Sequence[str] = (), key_id: str | None = None,
          approval: Sequence[Credential] = (), actor: str = "ca") -> IssuedCertificate:
    """Issue a certificate under a profile, for ``public_key`` (with ``subject``) or for a
    PKCS#10 ``csr_der`` (its self-signature verified; ``subject`` overrides the CSR's).

    Anything wrong (CSR, subject, key, serial, the CA's key) refuses the request: nothing
    is issued and the session holds only the ``ca.refuse`` audit record."""
    try:
        with session.begin_nested():
            return _issue(session, keystore, authority_name, profile_name, subject=subject,
                          public_key=public_key, csr_der=csr_der, validity=validity, serial=serial,
                          dns_names=dns_names, key_id=key_id, approval=approval, actor=actor)
    except TrustError as error:
        raise refuse(session, actor, f"{authority_name}:{profile_name}", error) from None


def issue_with_new_key(session: Session, keystore: KeyStore, authority_name: str, profile_name: str, *,
                       subject, label: str, actor: str = "ca", **options) -> IssuedCertificate:
    """Generate the subject's key in the KeyStore (in the CA's family), then issue for it;
    a refused issuance leaves no key behind."""
    try:
        with session.begin_nested():
            prof = profiles.profile(profile_name)
            if prof.store_usage is None:
                raise InvalidInput(f"keys for {prof.name} certificates are not kept here",
                                   f"{prof.zh}证书的密钥不在本系统保管")
            algorithm = FAMILIES[get_authority(session, authority_name).family][0]
            ref = keystore.generate(session, algorithm, label, [prof.store_usage], actor=actor)
            return _issue(session, keystore, authority_name, profile_name, subject=subject,
                          public_key=keystore.public_key(session, ref), key_id=ref.id, actor=actor, **options)
    except TrustError as error:
        raise refuse(session, actor, f"{authority_name}:{profile_name}", error) from None


def _issue(session: Session, keystore: KeyStore, authority_name: str, profile_name: str, *, subject=None,
           public_key=None, csr_der: bytes | None = None, validity: timedelta | None = None,
           serial: int | None = None, dns_names: Sequence[str] = (), key_id: str | None = None,
           approval: Sequence[Credential] = (), actor: str = "ca") -> IssuedCertificate:
    """``issue`` without its refusal record: callers run it in a savepoint and refuse."""
    authority = get_authority(session, authority_name)
    prof = profiles.profile(profile_name)
    if authority.is_root:
        raise InvalidInput(f"{authority_name} is a root CA; end-entity certificates come from an issuing CA",
                           f"{authority_name} 是根 CA，终端实体证书应由下级 CA 签发")
    if csr_der is not None:
        request = parse_csr(csr_der)
        spki = request.public_key_info
        subject = request.subject if subject is None else subject
        dns_names = tuple(dns_names) or request.dns_names
    elif public_key is not None:
        spki = spki_of(public_key)
    else:
        raise InvalidInput("give a public key or a CSR", "请提供公钥或证书签名请求")
    if subject is None:
        raise InvalidInput("a subject is required", "需要证书主体")
    name = profiles.subject_name(subject)
    profiles.check_subject(prof, name)
    dns_names = _dns_names(prof, dns_names)
    if prof.name == "encryption" and not _sm2_or_rsa(spki):
        raise UnsupportedAlgorithm("an encryption certificate certifies an SM2 or RSA key",
                                   "加密证书只能用于 SM2 或 RSA 公钥")
    if validity is not None and not timedelta(0) < validity <= prof.validity:
        raise InvalidInput(f"validity must lie between 0 and {prof.validity.days} days for {prof.name}",
                           f"{prof.zh}证书有效期须在 0 至 {prof.validity.days} 天之间")
    serial = new_serial() if serial is None else serial
    if type(serial) is not int or not 0 < serial < 1 << 159:
        raise InvalidInput("a serial number is a positive integer of at most 20 octets",
                           "序列号须为不超过 20 字节的正整数")
    if session.execute(select(ca_certificate.c.serial).where(
            (ca_certificate.c.issuer == authority_name) & (ca_certificate.c.serial == str(serial)))).first():
        raise InvalidInput(f"serial {serial:#x} was already issued by {authority_name}",
                           f"序列号 {serial:#x} 已由 {authority_name} 签发过")

    now = utc_now().replace(microsecond=0)  # certificates carry whole seconds
    issuer_cert = asn1_x509.Certificate.load(authority.certificate)
    not_after = min(now + (validity or prof.validity), issuer_cert.not_valid_after)
    tbs = _tbs(serial=serial, algorithm=authority.signature_algorithm, issuer=issuer_cert.subject, subject=name,
               not_before=now - CLOCK_SKEW, not_after=not_after, spki=spki,
               extensions=_extensions(spki=spki, issuer_spki=issuer_cert.public_key.dump(),
                                      issuer_name=authority.name, ca=False, path_length=None,
                                      key_usage=prof.key_usage, prof=prof, dns_names=dns_names))
    der = _certificate(tbs, authority.signature_algorithm,
                       sign_as(session, keystore, authority, tbs.dump(), approval=approval, actor=actor))
    try:
        parsed = _insert_certificate(session, authority.name, serial, der, prof.name, key_id, now)
    except IntegrityError:  # the savepoint around _issue is rolled back by the caller
        raise InvalidInput(f"serial {serial:#x} was issued meanwhile by {authority_name}",
                           f"序列号 {serial:#x} 已被 {authority_name} 同时签发") from None
    audit.append(session, actor, "ca.issue", f"{authority.name}:{serial}",
                 {"profile": prof.name, "subject": parsed.subject, "not_after": parsed.not_after.isoformat(),
                  "key_id": key_id})
    return IssuedCertificate(serial=serial, issuer=authority.name, subject=parsed.subject, profile=prof.name,
                             der=der, not_before=parsed.not_before, not_after=parsed.not_after, key_id=key_id)


def _dns_names(prof: Profile, dns_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dns_names)
    if prof.needs_dns_names and not names:
        raise InvalidInput("a server certificate names at least one DNS name", "服务器证书至少需要一个域名")
    if names and not prof.needs_dns_names:
        raise InvalidInput(f"{prof.name} certificates carry no DNS names", f"{prof.zh}证书不含域名")
    for dns in names:
        if not isinstance(dns, str) or not dns.isascii() or not 0 < len(dns) <= 253 or " " in dns:
            raise InvalidInput(f"not a DNS name: {dns!r}", f"不是有效的域名：{dns!r}")
    return names


def _sm2_or_rsa(spki: bytes) -> bool:
    key = load_public_key(spki)
    return isinstance(key, (SM2PublicKey, rsa.RSAPublicKey))


def certificate_row(session: Session, issuer: str, serial: int):
    row = session.execute(select(ca_certificate).where(
        (ca_certificate.c.issuer == issuer) & (ca_certificate.c.serial == str(serial)))).one_or_none()
    if row is None:
        raise NotFound(f"{issuer} issued no certificate with serial {serial:#x}",
                       f"{issuer} 未签发序列号为 {serial:#x} 的证书")
    return row


def list_certificates(session: Session, issuer: str | None = None):
    query = select(ca_certificate).order_by(ca_certificate.c.created_at)
    if issuer is not None:
        query = query.where(ca_certificate.c.issuer == issuer)
    return session.execute(query).all()


@dataclass(frozen=True)
class KeyedCertificate:
    """A certificate of ours whose key the KeyStore holds, with its issuing CA's certificate."""

    der: bytes
    key_id: str
    family: str
    issuer_der: bytes


def newest_keyed(session: Session, profile_name: str, *, family: str | None = None,
                 authority: str | None = None) -> KeyedCertificate:
    """The newest good, unexpired certificate of a profile whose key is in the KeyStore (of
    two issued in the same second, the one that lasts longer), of a CA family or one CA:
    what signs for a service role (the TSA, the licence list signer). NotFound if none."""
    query = (select(ca_certificate.c.der, ca_certificate.c.key_id, ca_certificate.c.not_after, ca_authority.c.family,
                    ca_authority.c.certificate.label("issuer_der"))
             .join(ca_authority, ca_authority.c.name == ca_certificate.c.issuer)
             .where(ca_certificate.c.profile == profile_name, ca_certificate.c.status == "good",
                    ca_certificate.c.key_id.is_not(None))
             .order_by(ca_certificate.c.not_before.desc(), ca_certificate.c.not_after.desc()))
    if family is not None:
        query = query.where(ca_authority.c.family == family)
    if authority is not None:
        query = query.where(ca_certificate.c.issuer == authority)
    now = utc_now()
    for row in session.execute(query):
        if as_utc(row.not_after) > now:
            return KeyedCertificate(bytes(row.der), row.key_id, row.family, bytes(row.issuer_der))
    raise NotFound(f"no valid {profile_name} certificate with a key here", f"没有可用的 {profile_name} 证书")


# ---------------------------------------------------------------- CRLs (RFC 5280 §5), published by ca.crl

NEXT_UPDATE = timedelta(days=1)
ROOT_NEXT_UPDATE = timedelta(days=365)


def build_crl(session: Session, keystore: KeyStore, authority: Authority, *, now: datetime | None = None,
              approval=(), actor: str = "ca") -> bytes:
    """A fresh DER CRL for ``authority``; takes the next CRL number in the caller's
    transaction (the caller commits). A root CA's CRL needs ``approval`` (dual control)."""
    now = (now or utc_now()).astimezone(UTC).replace(microsecond=0)
    ca_cert = parse_certificate(authority.certificate)
    session.execute(update(ca_authority).where(ca_authority.c.name == authority.name)
                    .values(crl_number=ca_authority.c.crl_number + 1))
    number = session.execute(select(ca_authority.c.crl_number)
                             .where(ca_authority.c.name == authority.name)).scalar_one()
    revoked = []
    for entry in revoked_entries(session, authority.name):
        item = {"user_certificate": entry.serial, "revocation_date": _time(entry.revoked_at)}
        if entry.reason != "unspecified":  # §5.3.1: absent rather than unspecified
            item["crl_entry_extensions"] = [{"extn_id": "crl_reason", "extn_value": ASN1_REASONS[entry.reason]}]
        revoked.append(item)
    signature = authority.signature_algorithm
    tbs = crl.TbsCertList({
        "version": "v2",
        "signature": signature,
        "issuer": asn1_x509.Name.load(ca_cert.subject_der),
        "this_update": _time(now),
        "next_update": _time(now + (ROOT_NEXT_UPDATE if authority.is_root else NEXT_UPDATE)),
        "crl_extensions": [
            {"extn_id": "authority_key_identifier",
             "extn_value": {"key_identifier": key_identifier(ca_cert.public_key_info)}},
            {"extn_id": "crl_number", "extn_value": number},
        ],
    })
    if revoked:  # an empty list is omitted, not encoded (§5.1.2.6)
        tbs["revoked_certificates"] = revoked
    value = sign_as(session, keystore, authority, tbs.dump(), approval=approval,
                    purpose=f"CRL {number} of {authority.name}", actor=actor)
    return crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": signature,
                                "signature": value}).dump()


def sign_root_crl(session: Session, keystore: KeyStore, authority: Authority, *, approval,
                  actor: str = "ca", now: datetime | None = None) -> bytes:
    """Sign a root CA's CRL under dual control (``approval``) and store it for publication.
    A refusal leaves only its ``ca.refuse`` audit record (no CRL number is used up)."""
    try:
        if not authority.is_root:
            raise InvalidInput(f"{authority.name} is not a root CA; its CRL is built when it is fetched",
                               f"{authority.name} 不是根 CA，其 CRL 在获取时生成")
        with session.begin_nested():
            der = build_crl(session, keystore, authority, now=now, approval=approval, actor=actor)
            session.execute(update(ca_authority).where(ca_authority.c.name == authority.name).values(crl=der))
    except TrustError as error:
        raise refuse(session, actor, f"ca.crl:{authority.name}", error) from None
    return der
