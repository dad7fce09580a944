"""TEST-ONLY: mint SM2 certificates (root, intermediate, leaf) so tests can build seals,
signatures and sealed documents. Real certificates come from ca/; this helper holds its
keys in memory and must never be imported by production code.

    root = make_root("Test Root")                       # Issued(cert_der, key)
    inter = make_intermediate(root, "Test Seal CA")
    leaf = make_leaf(inter, "Seal Signer")              # key usage digitalSignature + nonRepudiation
    cert_der, key = leaf                                # it unpacks like a tuple
    leaf.sign(b"message")                               # DER SM2 signature, ID 1234567812345678

Signatures use SM2-with-SM3 (parameters absent) and the standard signer ID, so
``openssl verify -CAfile root.pem -vfyopt distid:1234567812345678`` accepts each link.
"""

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from asn1crypto import keys as asn1_keys, pem, x509

from trust import oids
from trust.sm2 import SM2PrivateKey

_serials = itertools.count(0x1000)

LEAF_KEY_USAGE = frozenset({"digital_signature", "non_repudiation"})
CA_KEY_USAGE = frozenset({"key_cert_sign", "crl_sign"})


class Issued(NamedTuple):
    cert_der: bytes
    key: SM2PrivateKey

    @property
    def pem(self) -> str:
        return pem.armor("CERTIFICATE", self.cert_der).decode()

    @property
    def subject(self) -> x509.Name:
        return x509.Certificate.load(self.cert_der).subject

    def sign(self, message: bytes) -> bytes:
        """The `sign` callable seal/ses.py builders take: bytes → DER SM2 signature."""
        return self.key.sign(message)


def _name(name: str | dict) -> x509.Name:
    if isinstance(name, str):
        name = {"country_name": "CN", "organization_name": "Trust Service Tests", "common_name": name}
    return x509.Name.build(name, use_printable=False)


def _ski(key: SM2PrivateKey) -> bytes:
    return hashlib.sha1(key.public_key().to_point()).digest()


def make_certificate(subject: str | dict, key: SM2PrivateKey, issuer: Issued | None, *,
                     ca: bool, key_usage=None, path_length: int | None = None,
                     not_before: datetime | None = None, not_after: datetime | None = None,
                     extended_key_usage: tuple[str, ...] = (), serial: int | None = None) -> Issued:
    """One certificate for ``key``, signed by ``issuer`` (self-signed when None)."""
    now = datetime.now(UTC).replace(microsecond=0)
    not_before = not_before or now - timedelta(days=30)  # room for seals and documents dated in the past
    not_after = not_after or now + timedelta(days=3650 if ca else 365)
    issuer_key = issuer.key if issuer else key
    issuer_name = x509.Certificate.load(issuer.cert_der).subject if issuer else _name(subject)
    if key_usage is None:
        key_usage = CA_KEY_USAGE if ca else LEAF_KEY_USAGE
    extensions = [
        {"extn_id": "basic_constraints", "critical": True,
         "extn_value": {"ca": ca, "path_len_constraint": path_length} if ca else {"ca": False}},
        {"extn_id": "key_identifier", "critical": False, "extn_value": _ski(key)},
        {"extn_id": "authority_key_identifier", "critical": False,
         "extn_value": {"key_identifier": _ski(issuer_key)}},
    ]
    if key_usage:
        extensions.append({"extn_id": "key_usage", "critical": True, "extn_value": set(key_usage)})
    if extended_key_usage:
        extensions.append({"extn_id": "extended_key_usage", "critical": False,
                           "extn_value": list(extended_key_usage)})
    algorithm = {"algorithm": oids.SM2_WITH_SM3}  # parameters absent (GM/T 0015)
    tbs = x509.TbsCertificate({
        "version": "v3",
        "serial_number": serial if serial is not None else next(_serials),
        "signature": algorithm,
        "issuer": issuer_name,
        "validity": {"not_before": _time(not_before),
                     "not_after": _time(not_after)},
        "subject": _name(subject),
        "subject_public_key_info": asn1_keys.PublicKeyInfo.load(key.public_key().to_der()),
        "extensions": extensions,
    })
    signature = issuer_key.sign(tbs.dump())
    cert = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": algorithm,
                             "signature_value": signature})
    return Issued(cert.dump(), key)


def _time(value: datetime) -> x509.Time:
    # RFC 5280 §4.1.2.5: UTCTime up to 2049, GeneralizedTime from 2050.
    return x509.Time(name="utc_time" if value.year < 2050 else "general_time", value=value)


def make_root(name: str | dict = "Test Root CA", **options) -> Issued:
    return make_certificate(name, SM2PrivateKey.generate(), None, ca=True, **options)


def make_intermediate(issuer: Issued, name: str | dict = "Test Intermediate CA", **options) -> Issued:
    return make_certificate(name, SM2PrivateKey.generate(), issuer, ca=True, **options)


def make_leaf(issuer: Issued, name: str | dict = "Test Signer", key_usage=LEAF_KEY_USAGE,
              key: SM2PrivateKey | None = None, **options) -> Issued:
    return make_certificate(name, key or SM2PrivateKey.generate(), issuer, ca=False,
                            key_usage=key_usage, **options)


def make_chain(leaf_name: str = "Test Signer", **leaf_options) -> tuple[Issued, Issued, Issued]:
    """root → intermediate → leaf, the usual shape."""
    root = make_root()
    inter = make_intermediate(root)
    return root, inter, make_leaf(inter, leaf_name, **leaf_options)


__all__ = [
    "CA_KEY_USAGE",
    "LEAF_KEY_USAGE",
    "Issued",
    "make_certificate",
    "make_chain",
    "make_intermediate",
    "make_leaf",
    "make_root",
]
