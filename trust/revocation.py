"""Revocation status of one certificate: CRLs (RFC 5280 §5, §6.3) and OCSP (RFC 6960);
and the Fetcher that trust.path also uses to fetch missing issuers (AIA caIssuers).

The status comes from a CRL or OCSP response given by the caller, or fetched over plain
HTTP from the certificate's CRL distribution point or AIA OCSP responder. Fetching only
goes to configured hosts, all fetches of one validation share a hard time budget, and a
responder that cannot be reached gives UNKNOWN, never GOOD. Every CRL and response is
checked: signed by the issuing CA (a CRL needs cRLSign), or for OCSP by a responder the CA
delegated with id-kp-OCSPSigning; current at the validation time; the OCSP nonce echoed.
"""

import functools
import hashlib
import http.client
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp, x509 as asn1_x509

from trust.algorithms import signature_algorithm
from trust.clock import utc_now
from trust.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm
from trust.hashes import sm3
from trust.report import Message
from trust.x509 import Certificate, parse_certificate, verify_issued_by

TIME_LIMIT_S = 5.0
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
CACHE_SIZE = 256
OCSP_CACHE_S = 60
_OCSP_SIGNING = "ocsp_signing"
_KEY_COMPROMISE = {"key_compromise", "ca_compromise", "aa_compromise"}


class RevocationState(StrEnum):
    GOOD = "GOOD"
    REVOKED = "REVOKED"
    UNKNOWN = "UNKNOWN"               # could not be determined: never read as GOOD
    NOT_APPLICABLE = "NOT_APPLICABLE"  # the certificate names no service and nothing was given


@dataclass(frozen=True)
class RevocationStatus:
    state: RevocationState
    reason: Message
    revoked_at: datetime | None = None


def _status(state: RevocationState, zh: str, en: str, revoked_at=None) -> RevocationStatus:
    return RevocationStatus(state, Message(zh, en), revoked_at)


# ---------------------------------------------------------------- fetching

class Deadline:
    """The time budget shared by every fetch of one validation."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()


@dataclass
class Fetcher:
    """Fetches CRLs, OCSP responses and issuer certificates over http:// from ``hosts`` ("host" or "host:port")
    within ``time_limit`` seconds per validation, caching answers in process."""
    hosts: frozenset[str]
    time_limit: float = TIME_LIMIT_S
    _cache: dict = field(default_factory=dict, repr=False)

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return False
        host = parts.hostname.lower()
        return host in self.hosts or f"{host}:{parts.port or 80}" in self.hosts

    def get(self, url: str, deadline: Deadline, *, body: bytes | None = None,
            content_type: str | None = None) -> bytes:
        """The response body; raises InvalidInput on any failure or when time runs out."""
        if not self.allowed(url):
            raise _not_allowed(url)
        parts = urlsplit(url)
        if parts.hostname is None:
            raise _not_allowed(url)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _timeout(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=remaining)
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request("POST" if body is not None else "GET", path, body=body, headers=headers)
            sock = connection.sock  # http.client lets go of it once the response is read
            response = connection.getresponse()
            if response.status != 200:
                raise InvalidInput(f"{url} answered HTTP {response.status}", f"{url} 返回 HTTP {response.status}")
            chunks, size = list[bytes](), 0
            while True:
                remaining = deadline.remaining()
                if remaining <= 0:
                    raise _timeout(url)
                sock.settimeout(remaining)
                chunk = response.read1(65536)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise InvalidInput(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes",
                                       f"{url} 的应答超过 {MAX_RESPONSE_BYTES} 字节")
                chunks.append(chunk)
        except TimeoutError:
            raise _timeout(url) from None
        except (OSError, http.client.HTTPException) as exc:
            raise InvalidInput(f"{url} cannot be reached: {exc}", f"无法访问 {url}：{exc}") from None
        finally:
            connection.close()

    def cached(self, key, now: datetime):
        entry = self._cache.get(key)
        if entry is None or entry[0] < now:
            return None
        return entry[1]

    def remember(self, key, value, until: datetime) -> None:
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (until, value)


def default_fetcher() -> Fetcher:
    """The process's fetcher (and so its cache) for the hosts in TRUST_REVOCATION_HOSTS
    (comma separated "host" or "host:port"); with none configured nothing is fetched."""
    return _fetcher_for(os.environ.get("TRUST_REVOCATION_HOSTS", ""))


@functools.lru_cache(maxsize=4)
def _fetcher_for(names: str) -> Fetcher:
    return Fetcher(frozenset(h.strip().lower() for h in names.split(",") if h.strip()))


def _not_allowed(url: str) -> InvalidInput:
    return InvalidInput(f"fetching from {url} is not allowed (not a configured http:// host)",
                        f"不允许从 {url} 获取（不是已配置的 http:// 主机）")


def _timeout(url: str) -> InvalidInput:
    return InvalidInput(f"the time limit for fetching ran out at {url}", f"获取 {url} 时超出时间限制")


# ---------------------------------------------------------------- where to ask

def _uris(general_names) -> list[str]:
    return [name.native for name in general_names if name.name == "uniform_resource_identifier"]


def crl_urls(cert: Certificate) -> list[str]:
    value = cert.extension("2.5.29.31")
    return [] if value is None else list(_distribution_points(value))


# The addresses are read from an extension's bytes once: a verifier meets the same few
# certificates again and again. Bounded.
@functools.lru_cache(maxsize=512)
def _distribution_points(value: bytes) -> tuple[str, ...]:
    try:
        points = asn1_x509.CRLDistributionPoints.load(value)
        return tuple(uri for point in points if point["distribution_point"].name == "full_name"
                     for uri in _uris(point["distribution_point"].chosen))
    except (ValueError, TypeError, KeyError):
        return ()


def _access_urls(cert: Certificate, method: str) -> list[str]:
    """The URIs of one access method in the authority information access extension."""
    value = cert.extension("1.3.6.1.5.5.7.1.1")
    return [] if value is None else list(_access_locations(value, method))


@functools.lru_cache(maxsize=512)
def _access_locations(value: bytes, method: str) -> tuple[str, ...]:
    try:
        access = asn1_x509.AuthorityInfoAccessSyntax.load(value)
        return tuple(entry["access_location"].native for entry in access if entry["access_method"].native == method
                     and entry["access_location"].name == "uniform_resource_identifier")
    except (ValueError, TypeError, KeyError):
        return ()


def ocsp_urls(cert: Certificate) -> list[str]:
    return _access_urls(cert, "ocsp")


def ca_issuers_urls(cert: Certificate) -> list[str]:
    """Where the certificate of ``cert``'s issuer can be fetched (RFC 5280 §4.2.2.1)."""
    return _access_urls(cert, "ca_issuers")


# ---------------------------------------------------------------- signatures by the CA

def _verify_signed(tbs: bytes, algorithm_oid: str, signature: bytes, signer: Certificate) -> None:
    """Raise InvalidSignature (or UnsupportedAlgorithm) unless ``signer`` signed ``tbs``; SM2
    with the default signer ID."""
    try:
        signature_algorithm(algorithm_oid).verify(signer.public_key(), tbs, signature)
    except InvalidInput as exc:
        raise InvalidSignature(exc.en, exc.zh) from None


# ---------------------------------------------------------------- CRL

def _crl_status(cert: Certificate, issuer: Certificate, data: bytes, at: datetime,
                now: datetime) -> RevocationStatus | None:
    """The status by this CRL, or None when it is another CA's."""
    try:
        crl = asn1_crl.CertificateList.load(data, strict=True)
        tbs = crl["tbs_cert_list"]
        issuer_der, this_update = tbs["issuer"].dump(), tbs["this_update"].native
        next_update = tbs["next_update"].native
        revoked = {entry["user_certificate"].native: entry for entry in tbs["revoked_certificates"]}
        algorithm = crl["signature_algorithm"]["algorithm"].dotted
        signature = crl["signature"].native
        tbs_bytes = tbs.dump()
    except (ValueError, TypeError, KeyError) as exc:
        return _status(RevocationState.UNKNOWN, "CRL 无法解析", f"the CRL cannot be read: {str(exc)[:120]}")
    if issuer_der != issuer.subject_der:
        return None
    if issuer.key_usage is not None and "crl_sign" not in issuer.key_usage:
        return _status(RevocationState.UNKNOWN, f"“{issuer.subject}”的密钥用法不含 CRL 签名（cRLSign）",
                       f"'{issuer.subject}' has no cRLSign in its key usage")
    try:
        _verify_signed(tbs_bytes, algorithm, signature, issuer)
    except (InvalidSignature, UnsupportedAlgorithm, InvalidInput) as exc:
        return _status(RevocationState.UNKNOWN, f"CRL 签名无效：{exc.zh}", f"the CRL signature is not valid: {exc.en}")
    if this_update > now or (next_update is not None and next_update < now):
        return _status(RevocationState.UNKNOWN, "CRL 不在有效期内（thisUpdate/nextUpdate）",
                       "the CRL is not current (thisUpdate/nextUpdate)")
    entry = revoked.get(cert.serial_number)
    if entry is None:
        return _status(RevocationState.GOOD, f"CRL（{this_update:%Y-%m-%d %H:%M:%S}Z）未列出该证书",
                       f"not listed on the CRL of {this_update:%Y-%m-%dT%H:%M:%SZ}")
    reason = None
    for extension in entry["crl_entry_extensions"]:
        if extension["extn_id"].native == "crl_reason":
            reason = extension["extn_value"].native
    return _revoked(entry["revocation_date"].native, reason, at, "CRL")


def _revoked(revoked_at: datetime, reason: str | None, at: datetime, source: str) -> RevocationStatus:
    if reason == "remove_from_crl":
        return _status(RevocationState.GOOD, f"{source}：证书已解除冻结", f"{source}: the certificate was released from hold")
    if revoked_at > at and reason not in _KEY_COMPROMISE:
        return _status(RevocationState.GOOD, f"{source}：证书于 {revoked_at:%Y-%m-%d %H:%M:%S}Z 吊销，晚于验证时间",
                       f"{source}: revoked at {revoked_at:%Y-%m-%dT%H:%M:%SZ}, after the validation time", revoked_at)
    why = f" ({reason})" if reason else ""
    return _status(RevocationState.REVOKED, f"{source}：证书已于 {revoked_at:%Y-%m-%d %H:%M:%S}Z 吊销{why}",
                   f"{source}: the certificate was revoked at {revoked_at:%Y-%m-%dT%H:%M:%SZ}{why}", revoked_at)


# ---------------------------------------------------------------- OCSP

def cert_id(cert: Certificate, issuer: Certificate) -> asn1_ocsp.CertId:
    """RFC 6960 §4.1.1 CertID with SHA-1, as every responder must accept."""
    return asn1_ocsp.CertId({
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": hashlib.sha1(issuer.subject_der).digest(),
        "issuer_key_hash": hashlib.sha1(issuer.public_key_bits).digest(),
        "serial_number": cert.serial_number,
    })


def ocsp_request(cert: Certificate, issuer: Certificate, nonce: bytes) -> bytes:
    return asn1_ocsp.OCSPRequest({"tbs_request": {
        "request_list": [{"req_cert": cert_id(cert, issuer)}],
        "request_extensions": [{"extn_id": "nonce", "extn_value": nonce}],
    }}).dump()


_CERT_ID_HASHES = {"sha1": lambda data: hashlib.sha1(data).digest(),
                   "sha256": lambda data: hashlib.sha256(data).digest(),
                   "1.2.156.10197.1.401": sm3}


def _matches(candidate: asn1_ocsp.CertId, cert: Certificate, issuer: Certificate) -> bool:
    digest = _CERT_ID_HASHES.get(candidate["hash_algorithm"]["algorithm"].native)
    return (digest is not None and candidate["serial_number"].native == cert.serial_number
            and candidate["issuer_name_hash"].native == digest(issuer.subject_der)
            and candidate["issuer_key_hash"].native == digest(issuer.public_key_bits))


def _ocsp_signer(basic: asn1_ocsp.BasicOCSPResponse, issuer: Certificate, at: datetime) -> Certificate:
    """The CA itself or a responder it delegated (id-kp-OCSPSigning, issued by it)."""
    responder = basic["tbs_response_data"]["responder_id"]
    candidates = [issuer] + [parse_certificate(c.dump()) for c in (basic["certs"] or [])]
    for candidate in candidates:
        if responder.name == "by_name":
            if responder.chosen.untag().dump() != candidate.subject_der:
                continue
        elif responder.chosen.native != hashlib.sha1(candidate.public_key_bits).digest():
            continue
        if candidate is issuer or candidate.der == issuer.der:
            return issuer
        verify_issued_by(candidate, issuer)
        if _OCSP_SIGNING not in (candidate.extended_key_usage or ()):
            raise InvalidSignature("the OCSP responder certificate lacks id-kp-OCSPSigning",
                                   "OCSP 响应者证书不含 id-kp-OCSPSigning")
        if not candidate.valid_at(at):
            raise InvalidSignature("the OCSP responder certificate is not valid now", "OCSP 响应者证书当前不在有效期内")
        return candidate
    raise InvalidSignature("the OCSP response is signed neither by the CA nor by a responder it delegated",
                           "OCSP 响应既不是 CA 签署，也不是其授权的响应者签署")


def _ocsp_status(cert: Certificate, issuer: Certificate, data: bytes, at: datetime, now: datetime,
                 nonce: bytes | None) -> RevocationStatus:
    try:
        response = asn1_ocsp.OCSPResponse.load(data, strict=True)
        status = response["response_status"].native
        if status != "successful":
            return _status(RevocationState.UNKNOWN, f"OCSP 响应状态为 {status}", f"the OCSP responder answered {status}")
        basic = response["response_bytes"]["response"].parsed
        tbs = basic["tbs_response_data"]
        tbs_bytes = tbs.dump()
        extensions = {e["extn_id"].native: e["extn_value"].native for e in (tbs["response_extensions"] or [])}
        single = next((r for r in tbs["responses"] if _matches(r["cert_id"], cert, issuer)), None)
        signer = _ocsp_signer(basic, issuer, now)
        _verify_signed(tbs_bytes, basic["signature_algorithm"]["algorithm"].dotted, basic["signature"].native,
                       signer)
    except (InvalidSignature, UnsupportedAlgorithm, InvalidInput) as exc:
        return _status(RevocationState.UNKNOWN, f"OCSP 响应签名无效：{exc.zh}", f"the OCSP response signature is not valid: {exc.en}")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return _status(RevocationState.UNKNOWN, "OCSP 响应无法解析", f"the OCSP response cannot be read: {str(exc)[:120]}")
    if nonce is not None and "nonce" in extensions and extensions["nonce"] != nonce:
        return _status(RevocationState.UNKNOWN, "OCSP 响应的随机数（nonce）与请求不符", "the OCSP response nonce does not match the request")
    if single is None:
        return _status(RevocationState.UNKNOWN, "OCSP 响应不含该证书的状态", "the OCSP response has no status for this certificate")
    this_update, next_update = single["this_update"].native, single["next_update"].native
    if this_update > now + timedelta(minutes=5) or (next_update is not None and next_update < now):
        return _status(RevocationState.UNKNOWN, "OCSP 响应不在有效期内（thisUpdate/nextUpdate）",
                       "the OCSP response is not current (thisUpdate/nextUpdate)")
    answer = single["cert_status"]
    if answer.name == "good":
        return _status(RevocationState.GOOD, f"OCSP（{this_update:%Y-%m-%d %H:%M:%S}Z）：证书状态正常",
                       f"OCSP ({this_update:%Y-%m-%dT%H:%M:%SZ}): good")
    if answer.name == "revoked":
        info = answer.chosen
        return _revoked(info["revocation_time"].native, info["revocation_reason"].native, at, "OCSP")
    return _status(RevocationState.UNKNOWN, "OCSP 响应者不认识该证书（unknown）", "the OCSP responder does not know the certificate (unknown)")


# ---------------------------------------------------------------- one certificate

def check_revocation(cert: Certificate, issuer: Certificate, *, at: datetime, now: datetime | None = None,
                     crls=(), ocsp_responses=(), fetcher: Fetcher | None = None,
                     deadline: Deadline | None = None) -> RevocationStatus:
    """The status of ``cert`` at ``at``: given OCSP responses and CRLs first, then fetched
    ones (OCSP from the AIA, then the CRL distribution points). The first definite answer
    (GOOD or REVOKED) wins; otherwise UNKNOWN says what was tried."""
    now = now or utc_now()
    tried: list[Message] = []
    for data in ocsp_responses:
        result = _ocsp_status(cert, issuer, bytes(data), at, now, None)
        if result.state != RevocationState.UNKNOWN:
            return result
        tried.append(result.reason)
    for data in crls:
        listed = _crl_status(cert, issuer, bytes(data), at, now)
        if listed is not None and listed.state != RevocationState.UNKNOWN:
            return listed
        if listed is not None:
            tried.append(listed.reason)
    ocsp, crl = ocsp_urls(cert), crl_urls(cert)
    if not ocsp and not crl and not cert.names_revocation_service:
        if tried:
            return _unknown(tried)
        return _status(RevocationState.NOT_APPLICABLE, "证书未声明吊销服务（无 CRL 分发点或 OCSP 地址）",
                       "the certificate names no revocation service (no CRL distribution point or OCSP responder)")
    if fetcher is None:
        tried.append(Message("未启用在线获取 CRL/OCSP", "fetching CRLs and OCSP responses is disabled"))
        return _unknown(tried)
    deadline = deadline or Deadline(fetcher.time_limit)
    for url in ocsp:
        result = _fetch_ocsp(cert, issuer, url, at, now, fetcher, deadline)
        if result.state != RevocationState.UNKNOWN:
            return result
        tried.append(result.reason)
    for url in crl:
        result = _fetch_crl(cert, issuer, url, at, now, fetcher, deadline)
        if result.state != RevocationState.UNKNOWN:
            return result
        tried.append(result.reason)
    if not ocsp and not crl:
        tried.append(Message("吊销服务扩展无法读取", "the revocation service extension cannot be read"))
    return _unknown(tried)


def _unknown(tried: list[Message]) -> RevocationStatus:
    return _status(RevocationState.UNKNOWN, "无法确定吊销状态：" + "；".join(m.zh for m in tried),
                   "the revocation status cannot be determined: " + "; ".join(m.en for m in tried))


def _fetch_ocsp(cert, issuer, url, at, now, fetcher: Fetcher, deadline: Deadline) -> RevocationStatus:
    # The response is cached, not the verdict: the verdict depends on ``at``.
    key = ("ocsp", url, cert.serial_number, issuer.public_key_bits)
    cached = fetcher.cached(key, now)
    if cached is not None:
        return _ocsp_status(cert, issuer, cached, at, now, None)  # its nonce was checked when fetched
    if not fetcher.allowed(url):  # before building a request: that costs more than the SM2 checks
        refused = _not_allowed(url)
        return RevocationStatus(RevocationState.UNKNOWN, Message(refused.zh, refused.en))
    nonce = secrets.token_bytes(16)
    try:
        data = fetcher.get(url, deadline, body=ocsp_request(cert, issuer, nonce),
                           content_type="application/ocsp-request")
    except InvalidInput as exc:
        return RevocationStatus(RevocationState.UNKNOWN, Message(exc.zh, exc.en))
    result = _ocsp_status(cert, issuer, data, at, now, nonce)
    if result.state != RevocationState.UNKNOWN:
        fetcher.remember(key, data, now + timedelta(seconds=OCSP_CACHE_S))
    return result


def _fetch_crl(cert, issuer, url, at, now, fetcher: Fetcher, deadline: Deadline) -> RevocationStatus:
    key = ("crl", url, issuer.public_key_bits)
    data = fetcher.cached(key, now)
    if data is None:
        try:
            data = fetcher.get(url, deadline)
        except InvalidInput as exc:
            return RevocationStatus(RevocationState.UNKNOWN, Message(exc.zh, exc.en))
    result = _crl_status(cert, issuer, data, at, now) or _status(
        RevocationState.UNKNOWN, f"{url} 上的 CRL 不是该证书颁发者签发的", f"the CRL at {url} is not by the certificate's issuer")
    if result.state != RevocationState.UNKNOWN:
        next_update = _crl_next_update(data)
        if next_update is not None:
            fetcher.remember(key, data, next_update)
    return result


def _crl_next_update(data: bytes) -> datetime | None:
    try:
        return asn1_crl.CertificateList.load(data)["tbs_cert_list"]["next_update"].native
    except (ValueError, TypeError, KeyError):
        return None
