"""JSON API of the e-seal authority: department systems seal (用章), anyone verifies, officers
keep the registry. The rules live in seal/; this module parses, authorises, calls, serialises.

    POST /api/v1/seals/<esID>/sign          seal:sign    {"digest": hex or base64 SM3 | "data": base64,
                                                          "purpose", "timestamp"?: "none" | "local" | "external"}
    POST /api/v1/seals/<esID>/sign-batch    seal:sign    {"digests": [hex or base64, 1 to 1,000], "purpose"}
    POST /api/v1/verify/ses                 public       multipart: "signature" (DER file: a SES_Signature,
                                                          a GB/T 35275 SignedData or a bare SM2 signature),
                                                          "data" (file) or "digest" (hex or base64 field;
                                                          SES_Signature only), "signer_cert" (PEM/DER file,
                                                          repeatable) for values that carry no certificate
    GET  /api/v1/seals                      seal:manage  ?holder=USCC&status=&type=&limit=&offset=
    GET  /api/v1/seals/<esID>               seal:manage  the seal, its picture, certificates and history
    POST /api/v1/seals/<esID>/suspend       seal:manage  {"reason"}
    POST /api/v1/seals/<esID>/resume        seal:manage  {"reason"}
    POST /api/v1/seals/<esID>/revoke        seal:manage  {"reason"}
    POST /api/v1/seals/revoke               seal:manage  {"holder_uscc"} or {"es_ids": [...]}, and "reason"
    PUT  /api/v1/seals/<esID>/authorisation seal:manage  {"clients"?: [...], "operators"?: [...]}

Signing: the client is the token's ``client_id``, the operator its ``sub`` (none for the
client credentials grant); seal.registry.check_use decides, and a refusal is audited.
A time stamp comes from our own TSA ("local") or from the external TSA the operator
configured (TRUST_TSA_URL, "external"), never from a URL the caller names: that would
make this server fetch whatever it is told. Managing needs, besides the scope, an officer's token whose
subject has the role ``seal-admin``. Verifying is public, like the verification page:
it reveals nothing a signature's holder does not already have; roots come from the trust
store (purpose "seal"), and a seal of our registry is checked for its status there.
"""

import base64
import binascii
import json

from asn1crypto import pem
from flask import Blueprint, current_app, g, jsonify, request

from api.auth import acting_officer, require_scopes
from api.json_body import json_object, query_int, query_text, text, text_list
from api.metrics_http import report_response
from seal import registry, signing
from seal.registry import SealStatus
from seal.ses import parse_signature
from seal.verify import verify_ses_signature, verify_signed_value
from trust import truststore
from trust.errors import InvalidInput, PermissionDenied
from trust.report import Report
from trust.x509 import load_certificates

blueprint = Blueprint("seal_api", __name__, url_prefix="/api/v1")

OFFICER_ROLE = "seal-admin"
MAX_DIGEST_TEXT = 100      # characters of one hex or base64 digest
MAX_SIGNATURE_BYTES = 4 * 1024 * 1024   # a SES_Signature carries the seal and its picture


def _session():
    return current_app.extensions["trust.sessions"]()


def _keystore():
    return current_app.extensions["trust.keystore"]


def _base64(value: str, name: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    try:
        return base64.b64decode(value.translate(_URLSAFE) + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"'{name}' is not base64", f"“{name}”不是 base64 编码") from None


_URLSAFE = str.maketrans("-_", "+/")


def _digest(value, name: str = "digest") -> bytes:
    """An SM3 digest as 64 hex digits or base64 (44 characters, or 43 unpadded)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_DIGEST_TEXT:
        raise InvalidInput(f"'{name}' is an SM3 digest in hex or base64",
                           f"“{name}”须为十六进制或 base64 的 SM3 杂凑值")
    value = value.strip()
    if len(value) == 2 * signing.DIGEST_SIZE:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    try:
        decoded = _base64(value, name)
    except InvalidInput:
        decoded = None
    if decoded is None or len(decoded) != signing.DIGEST_SIZE:
        # say what was expected, not what a misread of the text happens to give
        raise InvalidInput(f"'{name}' is an SM3 digest: 64 hexadecimal digits or 44 base64 characters, "
                           f"not {len(value)} characters of this kind",
                           f"“{name}”须为 SM3 杂凑值：64 位十六进制或 44 个 base64 字符，实际为 {len(value)} 个字符")
    return decoded


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _caller() -> tuple[str, str | None]:
    token = g.access_token
    return token.client_id, token.subject


# ---------------------------------------------------------------- using a seal (用章)

@blueprint.post("/seals/<es_id>/sign")
@require_scopes("seal:sign")
def sign(es_id: str):
    body = json_object()
    data = body.get("data")
    if data is not None:
        data = _base64(text(body, "data"), "data")
    digest = body.get("digest")
    if digest is not None:
        digest = _digest(digest)
    timestamp = body.get("timestamp", "none")
    external = current_app.extensions["trust.settings"].tsa_url
    if timestamp not in ("none", "local", "external"):
        raise InvalidInput("'timestamp' is \"none\", \"local\" (this service's time-stamp authority) or "
                           "\"external\" (the one configured)", "“timestamp”须为 none、local（本服务的时间戳）或 external（配置的外部时间戳服务）")
    if timestamp == "external":
        if external is None:
            raise InvalidInput("no external time-stamp authority is configured here (TRUST_TSA_URL)",
                               "本服务未配置外部时间戳服务（TRUST_TSA_URL）")
        timestamp = external
    client_id, operator = _caller()
    with _session() as session:
        try:
            der = signing.sign(session, _keystore(), es_id, data=data, digest=digest, client_id=client_id,
                               operator=operator, purpose=text(body, "purpose"), timestamp=timestamp)
        except PermissionDenied:
            session.commit()  # keep the audit record of the refusal
            raise
        session.commit()
    return jsonify({"esID": es_id, "signature": _b64(der)})


@blueprint.post("/seals/<es_id>/sign-batch")
@require_scopes("seal:sign")
def sign_batch(es_id: str):
    body = json_object()
    digests = body.get("digests")
    if not isinstance(digests, list) or not 0 < len(digests) <= signing.MAX_BATCH:
        raise InvalidInput(f"'digests' is a list of 1 to {signing.MAX_BATCH} SM3 digests",
                           f"“digests”须为 1 至 {signing.MAX_BATCH} 个 SM3 杂凑值的列表")
    hashes = [_digest(d, f"digests[{i}]") for i, d in enumerate(digests)]
    client_id, operator = _caller()
    with _session() as session:
        try:
            batch = signing.prepare_batch(session, _keystore(), es_id, client_id=client_id, operator=operator,
                                          purpose=text(body, "purpose"))
        except PermissionDenied:
            session.commit()  # keep the audit record of the refusal
            raise
        session.commit()  # end the read transaction before the CPU-bound part (see signing.BatchSigner)
        signatures = batch.sign(session, _keystore(), hashes)
        session.commit()
    # Written by hand: base64 needs no JSON escaping, and walking ~17 MB of signatures (each
    # carries the seal and its picture) through the JSON encoder costs about a tenth of a batch.
    listed = '","'.join(_b64(s) for s in signatures)
    return current_app.response_class(
        f'{{"esID":{json.dumps(es_id)},"count":{len(signatures)},"signatures":["{listed}"]}}',
        mimetype="application/json")


# ---------------------------------------------------------------- verifying

@blueprint.post("/verify/ses")
def verify_ses():
    part = request.files.get("signature")
    if part is None:
        raise InvalidInput("send the SES_Signature as the multipart file 'signature'",
                           "请以 multipart 文件“signature”提交电子签章数据")
    signature = part.read(MAX_SIGNATURE_BYTES + 1)
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise InvalidInput("the signature is larger than any SES_Signature we accept", "签章数据过大")
    data_part = request.files.get("data")
    digest = request.form.get("digest")
    if data_part is not None and digest is not None:
        raise InvalidInput("give either the data or its SM3 digest", "请给出原文或其 SM3 杂凑值，二选一")
    data = data_part.read() if data_part is not None else None
    data_hash = _digest(digest) if digest is not None else None
    signer_certs = tuple(cert for part in request.files.getlist("signer_cert")
                         for cert in _certificates(part.read(MAX_SIGNATURE_BYTES + 1)))
    with _session() as session:
        roots = truststore.trusted_roots(session, "seal")
    # No transaction stays open while verifying: the verifier may fetch CA certificates and OCSP
    # answers from this very service, whose SQLite writer lock an open transaction would hold.
    other = None if _is_ses_signature(signature) else _signed_value_report(signature, data, signer_certs, roots)
    if other is not None:
        if data_hash is not None:
            raise InvalidInput("a SignedData or bare signature is checked against the data itself: send 'data'",
                               "签名数据或裸签名值须以原文核验，请提交“data”")
        return report_response(other)
    # a SES_Signature, or nothing readable: its report says why (format FAILED)
    found = verify_ses_signature(signature, data=data, data_hash=data_hash, trusted_roots=roots,
                                 seal_status=seal_status)
    return report_response(Report("ses", (found,)))


def seal_status(es_id: str, seal_der: bytes):
    """The registry's answer for seal.verify, in its own short transaction."""
    with _session() as session:
        return registry.status_lookup(session)(es_id, seal_der)


def _is_ses_signature(value: bytes) -> bool:
    try:
        parse_signature(value)
        return True
    except InvalidInput:
        return False


def _signed_value_report(value: bytes, data: bytes | None, signer_certs, roots) -> Report | None:
    """The report on a SignedData or bare SM2 signature; None when it is neither."""
    try:
        return verify_signed_value(value, data=data, certificates=signer_certs, trusted_roots=roots)
    except InvalidInput:
        return None


def _certificates(data: bytes) -> tuple:
    if len(data) > MAX_SIGNATURE_BYTES:
        raise InvalidInput("the signer certificate is too large", "签名者证书过大")
    try:
        return load_certificates(data)
    except InvalidInput as e:
        raise InvalidInput(f"'signer_cert' is not a certificate: {e.en}", f"“signer_cert”不是证书：{e.zh}") from None


# ---------------------------------------------------------------- the registry, for officers

def _seal_json(record: registry.SealRecord, history=None) -> dict:
    found = {**record.summary(),
             "picture": {"type": record.picture_type, "width_mm": record.picture_width_mm,
                         "height_mm": record.picture_height_mm, "data": _b64(record.picture)},
             "holder_certificate": pem.armor("CERTIFICATE", record.holder_certificate).decode(),
             "maker_certificate": pem.armor("CERTIFICATE", record.maker_certificate).decode()
             if record.maker_certificate else None,
             "seal": _b64(record.seal) if record.seal else None}
    if history is not None:
        found["history"] = [{"from": change.from_status and str(change.from_status), "to": str(change.to_status),
                             "at": change.at.isoformat(), "actor": change.actor, "reason": change.reason}
                            for change in history]
    return found


@blueprint.get("/seals")
@require_scopes("seal:manage")
def list_seals():
    acting_officer(OFFICER_ROLE)
    with _session() as session:
        found = registry.list_seals(session, holder_uscc=query_text("holder"), status=query_text("status"),
                                    seal_type=query_text("type"), limit=query_int("limit", 100, low=1, high=1000),
                                    offset=query_int("offset", 0))
        return jsonify({"seals": [record.summary() for record in found]})


@blueprint.get("/seals/<es_id>")
@require_scopes("seal:manage")
def show_seal(es_id: str):
    acting_officer(OFFICER_ROLE)
    with _session() as session:
        return jsonify(_seal_json(registry.get_seal(session, es_id), registry.history(session, es_id)))


def _transition(es_id: str, to: SealStatus):
    actor = acting_officer(OFFICER_ROLE)
    body = json_object()
    with _session() as session:
        record = registry.transition(session, es_id, to, actor=actor, reason=text(body, "reason"))
        session.commit()
        return jsonify(record.summary())


@blueprint.post("/seals/<es_id>/suspend")
@require_scopes("seal:manage")
def suspend(es_id: str):
    return _transition(es_id, SealStatus.SUSPENDED)


@blueprint.post("/seals/<es_id>/resume")
@require_scopes("seal:manage")
def resume(es_id: str):
    return _transition(es_id, SealStatus.ACTIVE)


@blueprint.post("/seals/<es_id>/revoke")
@require_scopes("seal:manage")
def revoke(es_id: str):
    return _transition(es_id, SealStatus.REVOKED)


@blueprint.post("/seals/revoke")
@require_scopes("seal:manage")
def revoke_many():
    actor = acting_officer(OFFICER_ROLE)
    body = json_object()
    with _session() as session:
        revoked = registry.revoke_many(session, holder_uscc=text(body, "holder_uscc", required=False),
                                       es_ids=text_list(body, "es_ids"), actor=actor, reason=text(body, "reason"))
        session.commit()
    return jsonify({"revoked": revoked})


@blueprint.put("/seals/<es_id>/authorisation")
@require_scopes("seal:manage")
def authorise(es_id: str):
    actor = acting_officer(OFFICER_ROLE)
    body = json_object()
    with _session() as session:
        record = registry.authorise(session, es_id, client_ids=text_list(body, "clients"),
                                    operators=text_list(body, "operators"), actor=actor)
        session.commit()
        return jsonify(record.summary())
