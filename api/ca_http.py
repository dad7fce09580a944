"""The CA's public HTTP endpoints: certificates (CA issuers URL), CRLs (CRL distribution
point), the OCSP responder (RFC 6960 Appendix A) and the time-stamp authority (RFC 3161 §3.4).

OCSP and TSA clients read only their own formats, so those endpoints answer every request
they can parse the framing of with a DER response (malformedRequest, rejection…), and
keep problem+json for what is not their protocol (wrong content type, too large).
"""

import base64
import binascii

from asn1crypto import pem
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from ca import ocsp, tsa
from ca.authority import get_authority
from ca.crl import current_crl
from trust.errors import InvalidInput

blueprint = Blueprint("ca_http", __name__)

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
TSA_QUERY = "application/timestamp-query"
TSA_REPLY = "application/timestamp-reply"


def _session():
    return current_app.extensions["trust.sessions"]()


def _keystore():
    return current_app.extensions["trust.keystore"]


def _der(body: bytes, mimetype: str, max_age: int | None = None) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age else "no-store"
    return response


@blueprint.get("/ca/<name>/cert")
def ca_certificate(name: str):
    form = request.args.get("format", "der")
    if form not in ("der", "pem"):
        raise InvalidInput("format is der or pem", "format 只能是 der 或 pem")
    with _session() as session:
        authority = get_authority(session, name)
    if form == "pem":
        return _der(pem.armor("CERTIFICATE", authority.certificate), "application/x-pem-file", 3600)
    return _der(authority.certificate, "application/pkix-cert", 3600)


@blueprint.get("/ca/<name>/crl")
def ca_crl(name: str):
    with _session() as session:
        der = current_crl(session, _keystore(), get_authority(session, name))
        session.commit()
    return _der(der, "application/pkix-crl", 60)


@blueprint.get("/ocsp/<name>/<path:encoded>")
def ocsp_get(name: str, encoded: str):
    # RFC 6960 A.1: the URL-encoded base64 of the DER request (Werkzeug has undone the URL-encoding).
    try:
        der = base64.b64decode(encoded, validate=True) if len(encoded) <= 2 * ocsp.MAX_REQUEST_BYTES else b""
    except (binascii.Error, ValueError):
        der = b""
    return _ocsp(name, der)


@blueprint.post("/ocsp/<name>")
def ocsp_post(name: str):
    der = _body(OCSP_REQUEST, ocsp.MAX_REQUEST_BYTES)
    return _ocsp(name, der)


@blueprint.post("/tsa")
@blueprint.post("/tsa/<name>")
def tsa_post(name: str | None = None):
    der = _body(TSA_QUERY, tsa.MAX_REQUEST_BYTES)
    with _session() as session:
        reply = tsa.respond(session, _keystore(), der, authority=name)
        session.commit()  # the key-use audit record
    return _der(reply, TSA_REPLY)


def _ocsp(name: str, der: bytes) -> Response:
    with _session() as session:
        response = ocsp.respond(session, _keystore(), name, der)
        session.commit()  # the key-use audit record
    return _der(response, OCSP_RESPONSE)


def _body(mimetype: str, limit: int) -> bytes:
    if request.mimetype != mimetype:
        raise UnsupportedMediaType(f"the body must be {mimetype}")
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    body = request.get_data(cache=True)  # a streamed body is already bounded by the app's limit
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body
