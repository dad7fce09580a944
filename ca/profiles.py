"""Certificate profiles (RFC 5280 for all; GM/T 0015 conventions for SM2).

A profile fixes what an issued certificate says besides its subject and key: key usage,
extended key usage, validity, the rules the subject must follow, and the pointers every
relying party needs (SKI/AKI, CRL distribution point, AIA with the OCSP responder and the
CA issuers URL). The URLs are built from ``TRUST_PUBLIC_URL`` (default
``http://127.0.0.1:8000``) and the issuing CA's name: ``/ca/{name}/crl``,
``/ca/{name}/cert``, ``/ocsp/{name}``.

Each leaf profile asserts one certificate policy under the arc ``TRUST_POLICY_OID`` (read
at call time): ``<arc>.1`` seal maker … ``<arc>.7`` server, the number in its Profile; the
CAs assert anyPolicy.
"""

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from asn1crypto import x509 as asn1_x509

from trust.config import public_url
from trust.errors import InvalidInput
from trust.ids import validate_resident_id, validate_uscc

OCSP_NOCHECK = "1.3.6.1.5.5.7.48.1.5"  # id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1
ANY_POLICY = "2.5.29.32.0"
MAX_SUBJECT_VALUE = 256
# Under the example arc of ITU-T X.660 (2.999), which identifies nothing. A province
# must set TRUST_POLICY_OID to the arc it registered; `trustctl ca init` warns while it has not.
DEFAULT_POLICY_ARC = "2.999.86.1"
_OID = re.compile(r"[012](\.(0|[1-9][0-9]{0,8})){1,20}")


def crl_url(ca_name: str) -> str:
    return f"{public_url()}/ca/{ca_name}/crl"


def ca_issuers_url(ca_name: str) -> str:
    return f"{public_url()}/ca/{ca_name}/cert"


def ocsp_url(ca_name: str) -> str:
    return f"{public_url()}/ocsp/{ca_name}"


def policy_arc() -> str:
    """``TRUST_POLICY_OID``, the arc under which the profiles' policies are numbered."""
    arc = os.environ.get("TRUST_POLICY_OID", DEFAULT_POLICY_ARC).strip()
    if not _OID.fullmatch(arc):
        raise InvalidInput(f"TRUST_POLICY_OID is not a dotted object identifier: {arc[:60]!r}",
                           f"TRUST_POLICY_OID 不是点分形式的对象标识符：{arc[:60]!r}")
    return arc


def policy_oid(prof: "Profile") -> str:
    return f"{policy_arc()}.{prof.policy_number}"


def _invalid(en: str, zh: str) -> InvalidInput:
    return InvalidInput(f"subject: {en}", f"证书主体：{zh}")


def _require(fields: dict, name: str, en: str, zh: str) -> str:
    value = fields.get(name)
    if not value:
        raise _invalid(f"this profile requires {en} ({name})", f"此模板要求填写{zh}（{name}）")
    return value


def _named_entity(fields: dict) -> None:
    _require(fields, "common_name", "a common name", "通用名称")


def _organisation(fields: dict) -> None:
    """单位签章 / seal maker: the organisation and its unified social credit code (GB 32100)
    in organizationIdentifier (2.5.4.97)."""
    _require(fields, "organization_name", "the organisation's name", "单位名称")
    _require(fields, "common_name", "a common name", "通用名称")
    validate_uscc(_require(fields, "organization_identifier", "the unified social credit code",
                           "统一社会信用代码"))


def _person(fields: dict) -> None:
    """个人签名: a name; a resident ID number in serialNumber (GB 11643) when given."""
    _require(fields, "common_name", "the person's name", "姓名")
    if fields.get("serial_number"):
        validate_resident_id(fields["serial_number"])


@dataclass(frozen=True)
class Profile:
    name: str
    zh: str
    key_usage: frozenset[str]            # asn1crypto KeyUsage bit names
    extended_key_usage: tuple[str, ...]  # asn1crypto KeyPurposeId names
    eku_critical: bool
    validity: timedelta
    check_subject: Callable[[dict], None]
    policy_number: int                   # the certificate policy is <TRUST_POLICY_OID>.<policy_number>
    ocsp_nocheck: bool = False
    revocation_pointers: bool = True     # CRL distribution point and the AIA OCSP URL
    needs_dns_names: bool = False
    store_usage: str | None = None       # hsm Usage of the key when the KeyStore holds it


SIGNING = frozenset({"digital_signature", "non_repudiation"})

PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("seal-maker", "制章者", SIGNING, (), False, timedelta(days=5 * 365), _organisation, 1,
            store_usage="seal-making"),
    Profile("organisation-signing", "单位签章", SIGNING, (), False, timedelta(days=2 * 365), _organisation, 2,
            store_usage="seal"),
    Profile("personal-signing", "个人签名", SIGNING, (), False, timedelta(days=2 * 365), _person, 3,
            store_usage="document"),
    Profile("encryption", "加密", frozenset({"key_encipherment", "data_encipherment", "key_agreement"}), (),
            False, timedelta(days=2 * 365), _named_entity, 4, store_usage="encryption"),
    Profile("tsa", "时间戳服务", SIGNING, ("time_stamping",), True, timedelta(days=5 * 365), _named_entity, 5,
            store_usage="timestamp"),
    # An OCSP signer is trusted for its validity without revocation checking (RFC 6960 §4.2.2.2.1).
    Profile("ocsp-signer", "OCSP 签名", frozenset({"digital_signature"}), ("ocsp_signing",), False,
            timedelta(days=365), _named_entity, 6, ocsp_nocheck=True, revocation_pointers=False, store_usage="ocsp"),
    Profile("server", "服务器", frozenset({"digital_signature"}), ("server_auth",), False,
            timedelta(days=397), _named_entity, 7, needs_dns_names=True),
    # Signs the licence QR key list and status lists that offline verifiers cache (licence/qr_keys.py).
    Profile("licence-list", "证照密钥与状态列表签名", frozenset({"digital_signature"}), (), False,
            timedelta(days=2 * 365), _named_entity, 8, store_usage="qr"),
)}

# The CAs themselves.
ROOT_VALIDITY = timedelta(days=20 * 365)
ISSUING_VALIDITY = timedelta(days=10 * 365)
CA_KEY_USAGE = frozenset({"key_cert_sign", "crl_sign"})


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidInput(f"no certificate profile {name!r}; known: {', '.join(PROFILES)}",
                           f"没有证书模板 {name!r}，可用：{'、'.join(PROFILES)}") from None


# Short names a user types (/C=CN/O=…/CN=…) → asn1crypto attribute names.
SHORT_NAMES = {"C": "country_name", "ST": "state_or_province_name", "L": "locality_name",
               "O": "organization_name", "OU": "organizational_unit_name", "CN": "common_name",
               "serialNumber": "serial_number", "organizationIdentifier": "organization_identifier",
               "emailAddress": "email_address"}


def subject_name(subject) -> asn1_x509.Name:
    """An asn1crypto Name from a Name, a dict (short or asn1crypto names) or "/C=CN/O=…/CN=…"."""
    if isinstance(subject, asn1_x509.Name):
        return subject
    if isinstance(subject, str):
        subject = _parse_slashes(subject)
    if not isinstance(subject, dict) or not subject:
        raise _invalid("give the subject as /C=CN/O=…/CN=… or a mapping", "主体应写作 /C=CN/O=…/CN=… 或映射")
    fields = {}
    for key, value in subject.items():
        name = SHORT_NAMES.get(key, key)
        if name not in SHORT_NAMES.values():
            raise _invalid(f"unsupported attribute {key!r}", f"不支持的属性 {key!r}")
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_SUBJECT_VALUE:
            raise _invalid(f"{key} must be 1-{MAX_SUBJECT_VALUE} characters", f"{key} 应为 1 至 {MAX_SUBJECT_VALUE} 个字符")
        fields[name] = value.strip()
    country = fields.get("country_name")
    if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise _invalid("C is a two-letter country code", "C 应为两个字母的国家代码")
    try:
        return asn1_x509.Name.build(fields, use_printable=False)
    except (ValueError, TypeError, UnicodeError) as e:  # e.g. emailAddress is IA5String: ASCII only
        raise _invalid(f"cannot encode the name: {e}", "无法编码该名称") from None


def _parse_slashes(text: str) -> dict:
    if not text.startswith("/"):
        raise _invalid("write the subject as /C=CN/O=…/CN=…", "主体应写作 /C=CN/O=…/CN=…")
    fields = {}
    for part in text[1:].split("/"):
        key, sep, value = part.partition("=")
        if not sep or key in fields:
            raise _invalid(f"cannot read {part!r}", f"无法解析 {part!r}")
        fields[key] = value
    return fields


def subject_fields(name: asn1_x509.Name) -> dict[str, str]:
    """One value per attribute (a repeated attribute is refused: profiles name one of each)."""
    fields: dict[str, str] = {}
    try:
        for rdn in name.chosen:
            for attribute in rdn:
                key = attribute["type"].native
                value = attribute["value"].native
                if key in fields:
                    raise _invalid(f"{key} appears twice", f"{key} 出现了两次")
                if not isinstance(value, str) or len(value) > MAX_SUBJECT_VALUE:
                    raise _invalid(f"{key} is not a text of at most {MAX_SUBJECT_VALUE} characters",
                                   f"{key} 不是不超过 {MAX_SUBJECT_VALUE} 个字符的文本")
                fields[key] = value
    except (ValueError, TypeError) as e:
        raise _invalid(f"unreadable name: {e}", "无法解析的名称") from None
    return fields


def check_subject(prof: Profile, name: asn1_x509.Name) -> dict[str, str]:
    fields = subject_fields(name)
    unknown = set(fields) - set(SHORT_NAMES.values())
    if unknown:
        raise _invalid(f"attributes not allowed: {', '.join(sorted(unknown))}", f"不允许的属性：{'、'.join(sorted(unknown))}")
    if fields.get("country_name", "CN") != "CN":
        raise _invalid("certificates here are issued in China: C=CN", "本 CA 只签发 C=CN 的证书")
    prof.check_subject(fields)
    return fields
