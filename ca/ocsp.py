"""The OCSP responder (RFC 6960) of one CA.

A request names certificates by CertID (hash of the issuer's name and key, and serial);
each is answered good, revoked (with time and reason) or, for a serial this CA never
issued, unknown (§2.2). A request naming another CA's certificate gets the unsigned
``unauthorized`` response: this responder cannot answer for it authoritatively (§2.3,
RFC 5019 §2.2.3), and a delegated signer's answer about it would not verify anyway; the
refusal is audited as ``ocsp.refused`` (identical ones coalesced, see ``_audit_refusal``). A
request that does not parse gets ``malformedRequest``, never an HTTP error, and no record.

The response is signed by the CA's newest valid ``ocsp-signer`` certificate (delegated
responder, §4.2.2.2) and its key in the KeyStore; a CA without one signs itself. The
nonce extension (§4.4.1) is echoed. Answers to requests without a nonce are cached for
``CACHE_SECONDS`` per process.
"""

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import core, ocsp
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.authority import Authority, get_authority
from ca.models import ca_certificate
from ca.revocation import ASN1_REASONS, as_utc, certificate_status
from hsm.keystore import KeyStore, Usage
from trust import audit
from trust.clock import utc_now
from trust.cms import digest
from trust.errors import InvalidInput, TrustError, UnsupportedAlgorithm
from trust.x509 import Certificate, parse_certificate

MAX_REQUEST_BYTES = 8192
MAX_CERT_IDS = 20
CACHE_SECONDS = 5
NEXT_UPDATE = timedelta(hours=1)
NONCE = "1.3.6.1.5.5.7.48.1.2"
MAX_NONCE = 128
REFUSAL_AUDIT_SECONDS = 60

@dataclass(frozen=True)
class CertID:
    der: bytes                        # as received: it is echoed in the SingleResponse
    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int


@dataclass(frozen=True)
class OCSPRequest:
    cert_ids: tuple[CertID, ...]
    nonce: bytes | None               # §4.4.1: the OCTET STRING inside the extension value


def _malformed(en: str, zh: str) -> InvalidInput:
    return InvalidInput(f"malformed OCSP request: {en}", f"OCSP 请求格式错误：{zh}")


def parse_request(der: bytes) -> OCSPRequest:
    """Raises InvalidInput for anything that is not a usable OCSPRequest."""
    if not isinstance(der, bytes) or not der:
        raise _malformed("empty", "请求为空")
    if len(der) > MAX_REQUEST_BYTES:
        raise _malformed(f"larger than {MAX_REQUEST_BYTES} bytes", f"超过 {MAX_REQUEST_BYTES} 字节")
    try:
        request = ocsp.OCSPRequest.load(der, strict=True)
        tbs = request["tbs_request"]
        items = list(tbs["request_list"])
        if not items or len(items) > MAX_CERT_IDS:
            raise _malformed(f"a request names 1 to {MAX_CERT_IDS} certificates", f"须包含 1 至 {MAX_CERT_IDS} 个证书")
        cert_ids = []
        for item in items:
            cid = item["req_cert"]
            cert_ids.append(CertID(cid.dump(), cid["hash_algorithm"]["algorithm"].dotted,
                                   cid["issuer_name_hash"].native, cid["issuer_key_hash"].native,
                                   cid["serial_number"].native))
        nonce = None
        for extension in tbs["request_extensions"] or []:
            if extension["extn_id"].dotted == NONCE:
                nonce = core.OctetString.load(extension["extn_value"].contents, strict=True).native
                if not nonce or len(nonce) > MAX_NONCE:
                    raise _malformed(f"the nonce is 1 to {MAX_NONCE} bytes", f"随机数须为 1 至 {MAX_NONCE} 字节")
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise _malformed(str(exc)[:200], "结构不合法") from None
    return OCSPRequest(tuple(cert_ids), nonce)


def error_response(status: str) -> bytes:
    """An unsigned response: malformed_request, internal_error, try_later, unauthorized…"""
    return ocsp.OCSPResponse({"response_status": status}).dump()


def _issued_by(cert_id: CertID, issuer: Certificate) -> bool:
    try:
        return (cert_id.issuer_name_hash == digest(cert_id.hash_algorithm, issuer.subject_der)
                and cert_id.issuer_key_hash == digest(cert_id.hash_algorithm, issuer.public_key_bits))
    except UnsupportedAlgorithm:  # SHA-1, SHA-2 and SM3 are known
        return False


def _responder(session: Session, keystore: KeyStore, authority: Authority):
    """(signer certificate, key ref, usage): the newest valid OCSP signer, else the CA itself."""
    now = utc_now()
    rows = session.execute(select(ca_certificate.c.der, ca_certificate.c.key_id, ca_certificate.c.not_after).where(
        ca_certificate.c.issuer == authority.name, ca_certificate.c.profile == "ocsp-signer",
        ca_certificate.c.status == "good", ca_certificate.c.key_id.is_not(None))
        .order_by(ca_certificate.c.not_before.desc()))
    for row in rows:
        if as_utc(row.not_after) > now:
            return parse_certificate(row.der), keystore.get(session, row.key_id), Usage.OCSP
    return parse_certificate(authority.certificate), keystore.get(session, authority.key_id), Usage.CERTIFICATE


def _single_response(session: Session, authority: Authority, cert_id: CertID, now: datetime) -> dict:
    status = certificate_status(session, authority.name, cert_id.serial)
    if status.status == "unknown":
        cert_status = ocsp.CertStatus(name="unknown", value=core.Null())
    elif status.status == "revoked":
        info: dict[str, object] = {"revocation_time": status.revoked_at}
        if status.reason is not None and status.reason != "unspecified":
            info["revocation_reason"] = ASN1_REASONS[status.reason]
        cert_status = ocsp.CertStatus(name="revoked", value=info)
    else:
        cert_status = ocsp.CertStatus(name="good", value=core.Null())
    return {"cert_id": ocsp.CertId.load(cert_id.der), "cert_status": cert_status,
            "this_update": now, "next_update": now + NEXT_UPDATE}


def build_response(session: Session, keystore: KeyStore, authority: Authority, request: OCSPRequest, *,
                   now: datetime | None = None) -> bytes:
    """A signed successful OCSPResponse for a parsed request whose CertIDs all name ``authority``."""
    now = (now or utc_now()).astimezone(UTC).replace(microsecond=0)
    signer, ref, usage = _responder(session, keystore, authority)
    data = {
        "responder_id": ocsp.ResponderId(name="by_key", value=hashlib.sha1(signer.public_key_bits).digest()),
        "produced_at": now,
        "responses": [_single_response(session, authority, cid, now) for cid in request.cert_ids],
    }
    if request.nonce is not None:
        data["response_extensions"] = [{"extn_id": "nonce", "extn_value": request.nonce}]
    tbs = ocsp.ResponseData(data)
    algorithm = authority.signature_algorithm  # the responder's key is of its CA's family
    signature = keystore.sign(session, ref, tbs.dump(), usage=usage)
    basic = {"tbs_response_data": tbs, "signature_algorithm": algorithm, "signature": signature}
    if signer.der != authority.certificate:
        basic["certs"] = [ocsp.Certificate.load(signer.der)]
    return ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": ocsp.BasicOCSPResponse(basic)}}).dump()


_cache: dict[tuple[str, bytes], tuple[float, bytes]] = {}
_cache_lock = threading.Lock()
_refused: dict[tuple, float] = {}


def _audit_refusal(session: Session, name: str, reason: str, cert_ids) -> None:
    """An ``ocsp.refused`` record naming the issuers asked about."""
    issuers = sorted({(c.hash_algorithm, c.issuer_name_hash.hex(), c.issuer_key_hash.hex()) for c in cert_ids})
    key = (name, reason, tuple(issuers))
    # The endpoint is public: byte garbage is not audited at all (it names no CA), and an
    # identical refusal (a misconfigured client polling) is recorded once a minute per process.
    with _cache_lock:
        if _refused.get(key, 0.0) > time.monotonic():
            return
        if len(_refused) > 1000:
            _refused.clear()
        _refused[key] = time.monotonic() + REFUSAL_AUDIT_SECONDS
    detail = {"reason": reason, "issuers": [{"hash_algorithm": a, "issuer_name_hash": n, "issuer_key_hash": k}
                                            for a, n, k in issuers]}
    try:
        audit.append(session, "ocsp", "ocsp.refused", name[:100], detail)
    except TrustError:  # a name the audit log cannot hold: the refusal is still answered
        pass


def respond(session: Session, keystore: KeyStore, name: str, request_der: bytes) -> bytes:
    """The DER OCSPResponse for a request to CA ``name``: every failure is an OCSP error
    status, never an exception (an unknown CA or another CA's certificate: unauthorized,
    and audited). The caller commits (the key-use or refusal audit record)."""
    try:
        request = parse_request(request_der)
    except InvalidInput:
        return error_response("malformed_request")
    key = (name, b"".join(c.der for c in request.cert_ids))
    if request.nonce is None:
        with _cache_lock:
            hit = _cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
    try:
        authority = get_authority(session, name)
    except TrustError:
        _audit_refusal(session, name, "unknown CA", request.cert_ids)
        return error_response("unauthorized")
    issuer = parse_certificate(authority.certificate)
    others = [cert_id for cert_id in request.cert_ids if not _issued_by(cert_id, issuer)]
    if others:
        _audit_refusal(session, name, "a certificate of another CA", others)
        return error_response("unauthorized")
    try:
        response = build_response(session, keystore, authority, request)
    except TrustError:  # the signing key is unavailable, suspended, or a root's under dual control
        return error_response("try_later")
    if request.nonce is None:
        with _cache_lock:
            _cache[key] = (time.monotonic() + CACHE_SECONDS, response)
            if len(_cache) > 1000:
                _cache.clear()
    return response
