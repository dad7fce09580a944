"""JSON endpoints of the CA: check a CSR, issue from a CSR, revoke, query issued certificates.

Listing the CAs, checking a CSR and querying an issued certificate are open, like
``/ca/{name}/cert`` and OCSP: they reveal nothing that the certificates themselves do not
publish, and a check issues nothing. Issuing and revoking are authorised in one of two
ways; refusals are audited.

- A bearer access token (identity/) with the scope ``ca:issue`` whose subject is an officer
  with the role ``ca-officer``: for the officers' own tools after an OIDC login. A client
  credentials token has no person behind it and is refused.
- A security officer's signature over the exact request body, for tools that hold an
  officer's credential file: headers ``X-Officer-Fingerprint`` (the officer's key
  fingerprint) and ``X-Officer-Signature`` (hex SM2 signature, signer ID 1234567812345678, of
  ``hsm.officers.statement(decision="act", action=<"ca.issue" or "ca.revoke">, target=<ca
  name, or "<ca name>/<serial>" to revoke>, body=<hex SM3 of the body>)``). The body then
  carries ``at`` (RFC 3339, within five minutes of the server's clock) so a captured request
  stops working soon.

    GET  /api/ca                                  the CAs
    POST /api/ca/csr/check                        {"csr": PEM} → subject, algorithm (nothing issued)
    POST /api/ca/<name>/certificates              {"profile", "csr", "subject"?, "dns_names"?, "validity_days"?, "at"?}
    POST /api/ca/<name>/certificates/<serial>/revoke   {"reason"?: RFC 5280 name, "at"?}
    GET  /api/ca/<name>/certificates/<serial>     status and PEM of one issued certificate
"""

from datetime import datetime, timedelta

from asn1crypto import pem
from flask import Blueprint, current_app, jsonify, request

from api.auth import acting_officer, current_token
from api.json_body import json_object, text
from ca import authority, csr, revocation
from hsm import officers
from hsm.officers import PermissionDenied, Proof
from trust import audit
from trust.clock import utc_now
from trust.errors import InvalidInput, TrustError, Unauthenticated
from trust.hashes import sm3

blueprint = Blueprint("ca_api", __name__, url_prefix="/api/ca")
MAX_VALIDITY_DAYS = 36_525     # a hundred years: longer than any profile allows
MAX_SKEW = timedelta(minutes=5)
OFFICER_ROLE = "ca-officer"


def officer_statement(action: str, target: str, body: bytes) -> bytes:
    """What the officer signs to authorise one request: issuing ("ca.issue", target the CA's
    name) or revoking ("ca.revoke", target "<ca name>/<serial as in the URL>")."""
    return officers.statement(decision="act", action=action, target=target, body=sm3(body).hex())


def officer_headers(credential: officers.Credential, target: str, body: bytes,
                    action: str = "ca.issue") -> dict[str, str]:
    """The headers a client sends with ``body`` (for officers' tools and tests)."""
    proof = credential.prove(officer_statement(action, target, body))
    return {"X-Officer-Fingerprint": proof.fingerprint, "X-Officer-Signature": proof.signature.hex()}


def _session():
    return current_app.extensions["trust.sessions"]()


def _pem(der: bytes) -> str:
    return pem.armor("CERTIFICATE", der).decode()


@blueprint.get("")
def list_authorities():
    with _session() as session:
        return jsonify([{"name": a.name, "family": a.family, "parent": a.parent, "certificate": _pem(a.certificate)}
                        for a in authority.list_authorities(session)])


@blueprint.post("/csr/check")
def check_csr():
    request_csr = csr.parse_csr(text(json_object(), "csr"))
    return jsonify({"subject": request_csr.subject.human_friendly, "signature_algorithm": request_csr.signature_algorithm,
                    "dns_names": list(request_csr.dns_names)})


@blueprint.post("/<name>/certificates")
def issue(name: str):
    raw = request.get_data(cache=True)
    with _session() as session:
        try:
            actor = _authorised_actor(session, "ca.issue", name, raw)
            body = json_object()
            days = body.get("validity_days")
            if days is not None and (type(days) is not int or not 1 <= days <= MAX_VALIDITY_DAYS):
                raise InvalidInput(f"'validity_days' is a whole number from 1 to {MAX_VALIDITY_DAYS}",
                                   f"“validity_days”须为 1 至 {MAX_VALIDITY_DAYS} 的整数")
            dns_names = body.get("dns_names", [])
            if not isinstance(dns_names, list) or not all(isinstance(d, str) for d in dns_names):
                raise InvalidInput("'dns_names' is a list of text", "“dns_names”须为文本列表")
            issued = authority.issue(
                session, current_app.extensions["trust.keystore"], name, text(body, "profile"),
                csr_der=text(body, "csr").encode("ascii", "replace"), subject=text(body, "subject", False),
                dns_names=dns_names, validity=timedelta(days=days) if days else None, actor=actor)
        except TrustError:
            session.commit()  # keep the audit record of the refusal
            raise
        session.commit()
    return jsonify(_certificate_json(issued.issuer, issued.serial, issued.profile, "good", issued.der)), 201


@blueprint.post("/<name>/certificates/<serial>/revoke")
def revoke(name: str, serial: str):
    raw = request.get_data(cache=True)
    with _session() as session:
        try:
            actor = _authorised_actor(session, "ca.revoke", f"{name}/{serial}", raw)
            body = json_object()
            entry = revocation.revoke(session, name, serial, body.get("reason", "unspecified"), actor=actor)
        except TrustError:
            session.commit()  # keep the audit record of the refusal
            raise
        session.commit()
    return jsonify({"issuer": name, "serial": str(entry.serial), "serial_hex": f"{entry.serial:x}",
                    "status": "revoked", "revoked_at": entry.revoked_at.isoformat(),
                    "revocation_reason": entry.reason})


@blueprint.get("/<name>/certificates/<int:serial>")
def show(name: str, serial: int):
    with _session() as session:
        row = authority.certificate_row(session, name, serial)
        return jsonify({**_certificate_json(row.issuer, int(row.serial), row.profile, row.status, bytes(row.der)),
                        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                        "revocation_reason": row.revocation_reason})


def _certificate_json(issuer: str, serial: int, profile: str, status: str, der: bytes) -> dict:
    return {"issuer": issuer, "serial": str(serial), "serial_hex": f"{serial:x}", "profile": profile,
            "status": status, "certificate": _pem(der)}


def _authorised_actor(session, action: str, target: str, raw: bytes) -> str:
    """Who may do ``action``: a ca-officer's token, or a fresh body signed by a security officer."""
    if request.headers.get("Authorization"):
        current_token("ca:issue")
        return acting_officer(OFFICER_ROLE)
    officer = _authorised_officer(session, action, target, raw)
    _check_time(text(json_object(), "at"))
    return officer.id


def _authorised_officer(session, action: str, target: str, raw: bytes) -> officers.Officer:
    fingerprint = request.headers.get("X-Officer-Fingerprint", "")
    signature = request.headers.get("X-Officer-Signature", "")
    try:
        proof = Proof(fingerprint, bytes.fromhex(signature))
    except ValueError:
        proof = None
    if not fingerprint and not signature:  # no credential of any kind: 401 saying how (RFC 6750 §3)
        error = Unauthenticated(
            "a bearer access token (scope ca:issue) or a security officer's signature (X-Officer-Fingerprint, "
            "X-Officer-Signature) is required",
            "需要访问令牌（ca:issue）或安全员签名（X-Officer-Fingerprint、X-Officer-Signature）")
        address = request.remote_addr or ""
        audit.append_coalesced(session, "anonymous", "officer.denied", f"{action}:{target}",
                               {"reason": error.en, "address": address}, key=f"officer.denied:{address}:{action}")
        raise error
    if not fingerprint or not proof:
        raise officers.deny(session, "anonymous", f"{action}:{target}", PermissionDenied(
            "this request needs a security officer's signature (X-Officer-Fingerprint, X-Officer-Signature)",
            "此请求需要安全员签名（X-Officer-Fingerprint、X-Officer-Signature）"))
    return officers.authenticate(session, officer_statement(action, target, raw), proof, act=action)


def _check_time(at: str) -> None:
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("'at' is an RFC 3339 time", "“at”须为 RFC 3339 时间") from None
    if when.tzinfo is None or abs(utc_now() - when) > MAX_SKEW:
        raise InvalidInput("'at' is more than five minutes from the server's time; sign a fresh request",
                           "“at”与服务器时间相差超过五分钟，请重新签名")
