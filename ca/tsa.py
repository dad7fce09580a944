"""The time-stamp authority (RFC 3161; the Chinese profile GM/T 0033 signs with SM2/SM3),
and a client for an external TSA.

A TimeStampReq carries a message imprint (SM3 or SHA-2), maybe a policy, a nonce and
certReq; the answer is a TimeStampResp whose token is a CMS SignedData over a TSTInfo,
signed by the TSA certificate's key in the KeyStore with signed attributes contentType,
messageDigest and signingCertificateV2 (RFC 5816; OpenSSL's ``ts -verify`` requires it).
OpenSSL cannot make SM2 tokens (``ts -reply`` fails), so they are built here.
A request we cannot serve gets a ``rejection`` status with a failInfo, never an exception.
"""

import hashlib
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import cms, core, tsp
from sqlalchemy.orm import Session

from ca import profiles
from ca.authority import FAMILIES, newest_keyed
from hsm.keystore import KeyRef, KeyStore, Usage
from trust import oids
from trust.clock import utc_now
from trust.cms import TST_INFO
from trust.errors import InvalidInput, NotFound, TrustError
from trust.hashes import hash_algorithm
from trust.x509 import Certificate, parse_certificate

MAX_REQUEST_BYTES = 4096
MAX_RESPONSE_BYTES = 1 << 20
MAX_NONCE_BITS = 256
# Imprint algorithms accepted, by OID, with their digest length.
IMPRINTS = {oids.SM3: 32, oids.SHA256: 32, oids.SHA384: 48, oids.SHA512: 64}
# The digest algorithm in the SignerInfo, by the key algorithm of a CA family (ca.authority.FAMILIES).
_SIGNER_DIGEST = {"SM2-with-SM3": oids.SM3, "ES256": oids.SHA256, "RS256": oids.SHA256}


class TimeStampResp(core.Sequence):
    """RFC 3161 §2.4.2; asn1crypto's makes timeStampToken required, but a rejection has none."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


class TimeStampRejected(InvalidInput):
    """A TimeStampReq we refuse; ``fail_info`` is the RFC 3161 PKIFailureInfo name."""

    code = "time_stamp_rejected"

    def __init__(self, fail_info: str, en: str, zh: str):
        super().__init__(en, zh)
        self.fail_info = fail_info


class TimeStampUnavailable(TrustError):
    """The external TSA cannot be reached (503, like other services that are unavailable)."""

    code = "tsa_unavailable"


@dataclass(frozen=True)
class TimeStampRequest:
    hash_algorithm: str               # OID
    hashed_message: bytes
    policy: str | None
    nonce: int | None
    cert_req: bool


@dataclass(frozen=True)
class TimeStampSigner:
    certificate: Certificate
    key: KeyRef
    family: str                       # of the issuing CA, which is the key's: "sm2" | "ecdsa" | "rsa"
    issuer_certificate: bytes         # sent with the TSA's own when certReq, so verifiers can chain


def stamping_policy() -> str:
    """The TSA policy in every TSTInfo: the TSA certificate profile's, <TRUST_POLICY_OID>.5."""
    return profiles.policy_oid(profiles.profile("tsa"))


def parse_request(der: bytes) -> TimeStampRequest:
    """Raises TimeStampRejected (badDataFormat, badAlg, badRequest)."""
    if not isinstance(der, bytes) or not der or len(der) > MAX_REQUEST_BYTES:
        raise TimeStampRejected("bad_data_format", f"a TimeStampReq is 1 to {MAX_REQUEST_BYTES} bytes",
                                f"时间戳请求须为 1 至 {MAX_REQUEST_BYTES} 字节")
    try:
        request = tsp.TimeStampReq.load(der, strict=True)
        version = request["version"].native
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].dotted
        hashed = imprint["hashed_message"].native
        policy = request["req_policy"].dotted if request["req_policy"].native is not None else None
        nonce = request["nonce"].native
        cert_req = bool(request["cert_req"].native)
        extensions = request["extensions"].native
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        raise TimeStampRejected("bad_data_format", "not a readable TimeStampReq (RFC 3161 DER)",
                                "无法读取的时间戳请求（RFC 3161 DER）") from None
    if version != "v1":
        raise TimeStampRejected("bad_request", "only TimeStampReq version 1 is known", "仅支持第 1 版时间戳请求")
    if algorithm not in IMPRINTS:
        raise TimeStampRejected("bad_alg", f"unsupported imprint algorithm {algorithm}", f"不支持的杂凑算法 {algorithm}")
    if len(hashed) != IMPRINTS[algorithm]:
        raise TimeStampRejected("bad_data_format", "the imprint length does not fit its algorithm",
                                "消息印记长度与杂凑算法不符")
    if nonce is not None and (nonce < 0 or nonce.bit_length() > MAX_NONCE_BITS):
        raise TimeStampRejected("bad_request", f"the nonce is a non-negative integer of at most {MAX_NONCE_BITS} bits",
                                f"随机数须为不超过 {MAX_NONCE_BITS} 位的非负整数")
    if policy is not None and policy != stamping_policy():
        raise TimeStampRejected("unaccepted_policy", f"policy {policy} is not served here", f"不受理策略 {policy}")
    if extensions:
        raise TimeStampRejected("unaccepted_extension", "request extensions are not supported", "不支持请求扩展")
    return TimeStampRequest(algorithm, hashed, policy, nonce, cert_req)


def find_signer(session: Session, keystore: KeyStore, family: str | None = None,
                authority: str | None = None) -> TimeStampSigner:
    """The newest valid ``tsa`` certificate with a KeyStore key, of a CA family or one CA."""
    try:
        found = newest_keyed(session, "tsa", family=family, authority=authority)
    except NotFound:
        raise NotFound("no time-stamp authority certificate is configured", "未配置时间戳服务证书") from None
    return TimeStampSigner(parse_certificate(found.der), keystore.get(session, found.key_id), found.family,
                           found.issuer_der)


def _signed_attributes(tst_info: bytes, digest_oid: str, signer: Certificate) -> cms.CMSAttributes:
    return cms.CMSAttributes([
        {"type": "content_type", "values": [TST_INFO]},
        {"type": "message_digest", "values": [hash_algorithm(digest_oid).digest(tst_info)]},
        {"type": "signing_certificate_v2", "values": [{"certs": [
            {"cert_hash": hashlib.sha256(signer.der).digest()}]}]},  # hashAlgorithm: SHA-256 by default
    ])


def time_stamp_token(session: Session, keystore: KeyStore, signer: TimeStampSigner, request: TimeStampRequest, *,
                     now: datetime | None = None, actor: str = "service") -> bytes:
    """A TimeStampToken (ContentInfo of SignedData over TSTInfo) answering ``request``."""
    now = (now or utc_now()).astimezone(UTC)
    info = {
        "version": "v1",
        "policy": request.policy or stamping_policy(),
        "message_imprint": {"hash_algorithm": {"algorithm": request.hash_algorithm},
                            "hashed_message": request.hashed_message},
        "serial_number": secrets.randbits(127) + 1,  # unique without coordination between workers
        "gen_time": now.replace(microsecond=now.microsecond // 1000 * 1000),
        "accuracy": {"seconds": 1},
    }
    if request.nonce is not None:
        info["nonce"] = request.nonce
    tst_info = tsp.TSTInfo(info).dump()
    key_algorithm, algorithm = FAMILIES[signer.family]
    digest_oid = _SIGNER_DIGEST[key_algorithm]
    attributes = _signed_attributes(tst_info, digest_oid, signer.certificate)
    signature = keystore.sign(session, signer.key, attributes.dump(), usage=Usage.TIMESTAMP, actor=actor)
    cert = signer.certificate
    signer_info = {
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cms.Name.load(cert.issuer_der), "serial_number": cert.serial_number}),
        "digest_algorithm": {"algorithm": digest_oid},
        "signed_attrs": attributes,
        "signature_algorithm": algorithm,
        "signature": signature,
    }
    signed = {
        "version": "v3",
        "digest_algorithms": [{"algorithm": digest_oid}],
        "encap_content_info": {"content_type": TST_INFO, "content": core.ParsableOctetString(tst_info)},
        "signer_infos": [signer_info],
    }
    if request.cert_req:
        signed["certificates"] = [cms.CertificateChoices(name="certificate", value=cms.Certificate.load(der))
                                  for der in (cert.der, signer.issuer_certificate)]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed)}).dump()


def rejection(fail_info: str, error: TrustError) -> bytes:
    """A TimeStampResp refusing the request; statusString carries the reason in English and Chinese."""
    return TimeStampResp({"status": {"status": "rejection", "status_string": [error.en, error.zh],
                                     "fail_info": tsp.PKIFailureInfo({fail_info})}}).dump()


def respond(session: Session, keystore: KeyStore, request_der: bytes, *, authority: str | None = None) -> bytes:
    """The DER TimeStampResp for a DER TimeStampReq: granted, or rejection with a failInfo.
    SM3 imprints are stamped by an SM2 TSA when there is one, SHA-2 imprints by an ECDSA one.
    The caller commits (the key-use audit record)."""
    try:
        request = parse_request(request_der)
        family = None if authority else ("sm2" if request.hash_algorithm == oids.SM3 else "ecdsa")
        try:
            signer = find_signer(session, keystore, family=family, authority=authority)
        except NotFound:
            signer = find_signer(session, keystore, authority=authority)
        token = time_stamp_token(session, keystore, signer, request)
    except TimeStampRejected as exc:
        return rejection(exc.fail_info, exc)
    except TrustError as exc:  # no TSA configured, its key unavailable or suspended
        return rejection("system_failure", exc)
    return TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": cms.ContentInfo.load(token)}).dump()


# ---------------------------------------------------------------- client for an external TSA

def request_timestamp(url: str, data: bytes, hash: str = "SM3", timeout: float = 5, *,
                      policy: str | None = None) -> bytes:
    """Ask the TSA at ``url`` to stamp ``data``; return the TimeStampToken (DER ContentInfo).
    Checks the status, the imprint and the nonce; the token's signature and TSA chain are
    for trust.cms.verify_time_stamp. Raises TimeStampUnavailable or InvalidInput."""
    algorithm = hash_algorithm(hash)
    if algorithm.oid not in IMPRINTS:
        raise InvalidInput(f"{hash} is not an imprint algorithm here", f"不支持的杂凑算法 {hash}")
    nonce = secrets.randbits(64)
    imprint = algorithm.digest(data)
    fields = {"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": algorithm.oid},
                                                   "hashed_message": imprint},
              "nonce": nonce, "cert_req": True}
    if policy:
        fields["req_policy"] = policy
    body = tsp.TimeStampReq(fields).dump()
    http = urllib.request.Request(url, data=body, method="POST",
                                  headers={"Content-Type": "application/timestamp-query"})
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(http, timeout=timeout) as answer:
            raw = b""
            while chunk := answer.read(65536):  # bounded in size and, chunk by chunk, in time
                raw += chunk
                if len(raw) > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                    raise TimeStampUnavailable(f"the TSA at {url} sent too much or too slowly",
                                               f"时间戳服务 {url} 的应答过大或过慢")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TimeStampUnavailable(f"the TSA at {url} cannot be reached: {exc}",
                                   f"无法连接时间戳服务 {url}：{exc}") from None
    return token_from_response(raw, algorithm.oid, imprint, nonce)


def token_from_response(raw: bytes, hash_oid: str, imprint: bytes, nonce: int) -> bytes:
    """The TimeStampToken of a granted TimeStampResp answering (hash_oid, imprint, nonce).
    Raises InvalidInput."""
    try:
        response = TimeStampResp.load(raw, strict=True)
        status = response["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            text = "; ".join(response["status"]["status_string"].native or [])
            raise InvalidInput(f"the TSA refused: {status} {text}".strip(), f"时间戳服务拒绝：{status} {text}".strip())
        token = response["time_stamp_token"]
        info = tsp.TSTInfo.load(token["content"]["encap_content_info"]["content"].parsed.dump(), strict=True)
        echoed = (info["message_imprint"]["hash_algorithm"]["algorithm"].dotted,
                  info["message_imprint"]["hashed_message"].native, info["nonce"].native)
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise InvalidInput(f"the TSA's answer is not a readable TimeStampResp: {str(exc)[:200]}",
                           "时间戳服务的应答无法读取") from None
    if echoed != (hash_oid, imprint, nonce):
        raise InvalidInput("the TSA's token does not answer our request (imprint or nonce differ)",
                           "时间戳令牌与请求不符（消息印记或随机数不同）")
    return token.dump()
