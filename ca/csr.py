"""PKCS#10 certification requests (RFC 2986): parse and verify the self-signature.

The signature is checked over the exact ``certificationRequestInfo`` bytes received. SM2
requests are signed with the default signer ID ``1234567812345678`` (what ``openssl req
-sigopt distid:1234567812345678`` writes); ECDSA and RSA (PKCS#1 v1.5) requests as usual.
"""

from dataclasses import dataclass

from asn1crypto import core, csr as asn1_csr, pem, x509 as asn1_x509

from trust import oids
from trust.algorithms import signature_algorithm
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.keys import load_public_key

MAX_CSR_BYTES = 16 * 1024
CSR_SIGNATURE_ALGORITHMS = {oids.SM2_WITH_SM3, oids.ECDSA_SHA256, oids.ECDSA_SHA384, oids.SHA256_RSA,
                            oids.SHA384_RSA, oids.SHA512_RSA}


@dataclass(frozen=True)
class CertificationRequest:
    der: bytes
    subject: asn1_x509.Name
    public_key_info: bytes      # SubjectPublicKeyInfo DER
    signature_algorithm: str    # OID
    dns_names: tuple[str, ...]  # from an extensionRequest's subjectAltName


def _invalid(en: str, zh: str) -> InvalidInput:
    return InvalidInput(f"CSR: {en}", f"证书签名请求：{zh}")


def parse_csr(data: bytes | str) -> CertificationRequest:
    """Parse a DER or PEM CSR and verify its self-signature; InvalidInput, InvalidSignature
    or UnsupportedAlgorithm otherwise."""
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    if not isinstance(data, (bytes, bytearray)):
        raise _invalid("expected bytes", "需要字节串")
    if len(data) > MAX_CSR_BYTES:
        raise _invalid(f"larger than {MAX_CSR_BYTES} bytes", f"超过 {MAX_CSR_BYTES} 字节")
    der = bytes(data)
    if pem.detect(der):
        try:
            kind, _headers, der = pem.unarmor(der)
        except (ValueError, TypeError):
            raise _invalid("unreadable PEM", "无法解析的 PEM") from None
        if kind not in ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"):
            raise _invalid(f"PEM holds a {kind}, not a CERTIFICATE REQUEST", f"PEM 内容为 {kind}，不是证书签名请求")
    try:
        request = asn1_csr.CertificationRequest.load(der, strict=True)
        info = request["certification_request_info"]
        info_der = info.dump()
        algorithm = request["signature_algorithm"]["algorithm"].dotted
        signature = request["signature"].native
        subject = info["subject"]
        _ = subject.native  # parse every attribute now
        spki = info["subject_pk_info"].dump()
        version = info["version"].native
        dns_names = _dns_names(info["attributes"])
    except (ValueError, TypeError, KeyError, OverflowError):
        raise _invalid("malformed: not a PKCS#10 CertificationRequest in DER or PEM",
                       "格式错误：不是 DER 或 PEM 格式的 PKCS#10 证书签名请求") from None
    if version != "v1":
        raise _invalid(f"version {version}, expected v1 (0)", f"版本 {version}，应为 v1（0）")
    if algorithm not in CSR_SIGNATURE_ALGORITHMS:
        raise UnsupportedAlgorithm(f"CSR: unsupported signature algorithm {algorithm}",
                                   f"证书签名请求：不支持的签名算法 {algorithm}")
    public_key = load_public_key(spki)
    try:
        signature_algorithm(algorithm).verify(public_key, info_der, signature)
    except InvalidSignature:
        raise InvalidSignature("CSR: the self-signature does not verify with the requested key",
                               "证书签名请求：自签名无法用所请求的公钥验证") from None
    except InvalidInput as e:  # key and algorithm do not match
        raise _invalid(e.en, e.zh) from None
    return CertificationRequest(der=der, subject=subject, public_key_info=spki, signature_algorithm=algorithm,
                                dns_names=dns_names)


def _dns_names(attributes) -> tuple[str, ...]:
    names = []
    if isinstance(attributes, core.Void):  # absent, though RFC 2986 requires the (possibly empty) set
        return ()
    for attribute in attributes:
        if attribute["type"].native != "extension_request":
            continue
        for extensions in attribute["values"]:
            for extension in extensions:
                if extension["extn_id"].native == "subject_alt_name":
                    names += [n.native for n in extension["extn_value"].parsed if n.name == "dns_name"]
    return tuple(names)
