"""OpenAPI 3.1 (https://spec.openapis.org/oas/v3.1.0): one document describing every JSON
endpoint of the service, and the binary ones beside them (files, OCSP, time stamps), served
at ``GET /api/openapi.json``.

Written as data here rather than derived from the views: what a client may rely on is a
contract, and tests/test_openapi.py keeps it true (every route of the app is described or
listed there as a page; schemathesis checks the answers against the schemas). The report
schema is built from trust.report's enums, so a new check name cannot be left out.

Conventions: every error of the JSON API is RFC 9457 problem+json (api/problems.py), so
each operation's ``default`` response is a Problem; OAuth endpoints answer their errors as
RFC 6749 §5.2 says. Objects allow members beyond those listed (a client must ignore what it
does not know); the listed ``required`` members are always there.
"""

from flask import Blueprint, current_app, jsonify

from trust.report import CheckName, CheckStatus, Code, Status

blueprint = Blueprint("openapi", __name__)

PATH = "/api/openapi.json"
PROBLEM_JSON = "application/problem+json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _file(media_type: str, description: str) -> dict:
    return {"description": description, "content": {media_type: {"schema": {"type": "string",
                                                                              "contentMediaType": media_type}}}}


def _problem(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}


def _body(schema: dict, media_type: str = "application/json") -> dict:
    return {"required": True, "content": {media_type: {"schema": schema}}}


def _object(required: tuple[str, ...] = (), **properties) -> dict:
    found = {"type": "object", "properties": properties}
    if required:
        found["required"] = list(required)
    return found


def _nullable(schema: dict) -> dict:
    return {**schema, "type": [schema["type"], "null"]}


def _path(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


TEXT = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
TEXTS = {"type": "array", "items": TEXT}
REASON = _object(("reason",), reason={"type": "string", "description": "Why, for the audit log (原因)"})
LIMIT = _query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
OFFSET = _query("offset", "Records to skip", {"type": "integer", "minimum": 0, "default": 0})
LICENCE_ID = _path("licence_id", "The licence identifier (电子证照标识, GB/T 36904)")
ES_ID = _path("es_id", "The seal's esID (印章编码)")
CA_NAME = _path("name", "The CA's name")
BEARER: list[dict[str, list]] = [{"bearer": []}]
PUBLIC: list = []
RATE_LIMITED = _problem("Too many requests (Retry-After says when to come back)")


def _op(summary: str, tag: str, responses: dict, *, security: list | None = None, body: dict | None = None,
        parameters: list | None = None, problems: tuple[int, ...] = ()) -> dict:
    """One operation: its answers, plus the problems it names and a Problem for the rest."""
    described = {
        401: "No valid access token (WWW-Authenticate says why)",
        403: "The token lacks the scope, or its subject the role or duty",
        404: "Nothing with this identifier (or not one of yours)",
        409: "The state forbids it, or the idempotency key was used for another request",
        422: "The input was read but cannot be processed",
        503: "A dependency is unavailable for now (Retry-After)",
    }
    if security is None:
        security = BEARER
    answers = dict(responses)
    for status in (*((401, 403) if security else ()), *problems):
        answers[str(status)] = _problem(described[status])
    answers["default"] = _problem("Any other refusal or failure, as problem+json (400: the input is wrong)")
    operation = {"summary": summary, "tags": [tag], "security": security, "responses": answers}
    if body is not None:
        operation["requestBody"] = body
    if parameters:
        operation["parameters"] = parameters
    return operation


# ---------------------------------------------------------------- schemas

def _schemas() -> dict:
    message = _object(("zh", "en"), zh=TEXT, en=TEXT)
    return {
        "Problem": _object(
            ("type", "title", "status", "detail", "detail_zh", "code", "request_id"),
            type=TEXT, title=TEXT, title_zh=TEXT, status={"type": "integer", "minimum": 400, "maximum": 599},
            detail=TEXT, detail_zh=TEXT, code={"type": "string", "description": "Stable machine-readable code"},
            request_id={"type": "string", "description": "Also the X-Request-ID header; give it to the operator"},
            errors={"type": "array", "items": _object(("field", "zh", "en"), field=TEXT, zh=TEXT, en=TEXT)}),
        "OAuthError": _object(("error",), error=TEXT, error_description=TEXT),
        "Message": message,
        "Check": _object(("check", "status", "code", "reason"), check={"enum": [c.value for c in CheckName]},
                         status={"enum": [s.value for s in CheckStatus]},
                         code={"enum": [*(c.value for c in Code), None],
                               "description": "Why it did not pass, for machines (ETSI EN 319 102-1 "
                                              "sub-indications and our own); null when it passed"},
                         reason=_ref("Message")),
        "SignatureReport": _object(
            ("id", "type", "status", "signer", "seal", "signing_time", "checks"),
            id=TEXT, type={"type": "string", "description": "Seal, Sign, SES, PAdES, …"},
            status={"enum": [s.value for s in Status]}, signer=_nullable(TEXT), seal=_nullable({"type": "object"}),
            signing_time=_nullable(TEXT), level={"enum": ["B-B", "B-T", "B-LT", "B-LTA"]},
            checks={"type": "array", "items": _ref("Check")}),
        "Report": _object(
            ("status", "format", "signatures", "warnings"),
            status={"enum": [s.value for s in Status], "description": "The worst of the signatures' statuses"},
            format={"type": "string", "description": "ofd, pdf, ses, seal, cms, sm2, cert, qr or presentation"},
            licence={"type": "object", "description": "What the licence is and its status in the registry"},
            signatures={"type": "array", "items": _ref("SignatureReport")},
            warnings={"type": "array", "items": _ref("Message")}),
        "SealSummary": _object(
            ("esID", "name", "type", "status", "holder", "uscc", "valid_from", "valid_to"),
            esID=TEXT, name=TEXT, type=TEXT, type_zh=TEXT, holder=TEXT, uscc=TEXT, status=TEXT, status_zh=TEXT,
            valid_from=TEXT, valid_to=TEXT, origin=TEXT, clients=TEXTS, operators=TEXTS),
        "Seal": {"allOf": [_ref("SealSummary"), _object(
            ("picture", "holder_certificate", "history"),
            picture=_object(("type", "data"), type=TEXT, width_mm={"type": "number"}, height_mm={"type": "number"},
                            data={"type": "string", "contentEncoding": "base64"}),
            holder_certificate=TEXT, maker_certificate=_nullable(TEXT), seal=_nullable(TEXT),
            history={"type": "array", "items": _object(("to", "at", "actor"), to=TEXT, at=TEXT, actor=TEXT,
                                                        reason=_nullable(TEXT))})]},
        "Licence": _object(
            ("licence_id", "version", "status", "record", "es_id", "ofd_sm3", "created_at"),
            licence_id=TEXT, version={"type": "integer"}, status=TEXT, status_zh=TEXT, status_en=TEXT,
            supersedes=_nullable(TEXT), superseded_by=_nullable(TEXT),
            record={"type": "object", "description": "The canonical record the licence was issued from"},
            es_id=TEXT, ofd_sm3=TEXT, pdf_sm3=_nullable(TEXT), qr_text=_nullable(TEXT), created_at=TEXT,
            status_changed_at=TEXT,
            history={"type": "array", "items": _object(("operation", "to", "at", "actor"), operation=TEXT,
                                                        to=TEXT, to_zh=TEXT, at=TEXT, actor=TEXT)},
            versions=TEXTS),
        "LicenceRequest": _object(
            ("type_code", "issuer_code", "holder", "face"),
            type_code={"type": "string", "description": "The catalogue's type code"},
            issuer_code={"type": "string", "description": "The issuing department's USCC"},
            holder=_object(("name", "code"), name=TEXT, code=TEXT, code_type={"enum": ["001", "111"]}),
            face={"type": "object", "additionalProperties": TEXT, "description": "The face fields by key"},
            validity=_object(("from",), **{"from": {"type": "string", "format": "date"}, "to": TEXT})),
        "ShareRequest": _object(
            ("id", "client_id", "purpose", "status", "requested_at"),
            id=TEXT, client_id=TEXT, purpose=TEXT, operator=_nullable(TEXT), reason=TEXT, days={"type": "integer"},
            licence_id=TEXT, holder_code=TEXT, type_code=TEXT, issuer_code=TEXT,
            status={"enum": ["pending", "approved", "refused"]}, requested_at=TEXT, age_seconds={"type": "integer"},
            active={"type": "boolean"}),
        "Consent": _object(
            ("id", "holder_code", "client_id", "purpose", "until", "granted_at"),
            id=TEXT, holder_code=TEXT, client_id=TEXT, purpose=TEXT, until=TEXT, granted_at=TEXT, granted_by=TEXT,
            withdrawn_at=_nullable(TEXT)),
        "ImportJob": _object(
            ("id", "status", "progress"),
            id=TEXT, status=TEXT, type_code=TEXT, issuer_code=TEXT, source=TEXT, file_name=TEXT, file_sha256=TEXT,
            progress=_object(("total", "processed", "percent"), total={"type": "integer"},
                             processed={"type": "integer"}, converted={"type": "integer"},
                             failed={"type": "integer"}, percent={"type": "number"},
                             rows_per_s=_nullable({"type": "number"}), eta_seconds=_nullable({"type": "integer"})),
            error_report=TEXT,
            errors={"type": "array", "items": _object(("row", "message"), row={"type": "integer"},
                                                       field=_nullable(TEXT), message=_ref("Message"))}),
        "Certificate": _object(
            ("issuer", "serial", "serial_hex", "status", "certificate"),
            issuer=TEXT, serial={"type": "string", "description": "Decimal"}, serial_hex=TEXT, profile=TEXT,
            status={"enum": ["good", "revoked"]}, certificate={"type": "string", "description": "PEM"},
            revoked_at=_nullable(TEXT), revocation_reason=_nullable(TEXT)),
        "AuditRecord": _object(
            ("seq", "at", "actor", "action", "target", "detail", "prev_hash", "hash"),
            seq={"type": "integer"}, at=TEXT, actor=TEXT, action=TEXT, target=_nullable(TEXT),
            detail={"type": "object"}, prev_hash=TEXT, hash=TEXT),
        "Token": _object(("access_token", "token_type", "expires_in"), access_token=TEXT, token_type=TEXT,
                         expires_in={"type": "integer"}, scope=TEXT, id_token=TEXT, refresh_token=TEXT),
    }


def _oauth(summary: str, form: dict, ok: dict) -> dict:
    """A form endpoint of OAuth 2.0: its errors are RFC 6749 §5.2 JSON, except the HTTP
    layer's own (an oversized body, say), which are problem+json."""
    oauth_error = {"description": "An OAuth error (RFC 6749 §5.2; 401 with invalid_client, 429 when throttled)",
                   "content": {"application/json": {"schema": _ref("OAuthError")},
                               PROBLEM_JSON: {"schema": _ref("Problem")}}}
    return {"summary": summary, "tags": ["identity"], "security": PUBLIC,
            "requestBody": _body(form, "application/x-www-form-urlencoded"),
            "responses": {"200": ok, "default": oauth_error}}


# ---------------------------------------------------------------- operations

def _paths() -> dict:
    seal_list = _object(("seals",), seals={"type": "array", "items": _ref("SealSummary")})
    licence_list = _object(("licences",), licences={"type": "array", "items": _ref("Licence")})
    requests_list = _object(("requests",), requests={"type": "array", "items": _ref("ShareRequest")})
    consumer = _object(("purpose",), holder_code=TEXT, type_code=TEXT, licence_id=TEXT, purpose=TEXT, operator=TEXT)
    report = _json(_ref("Report"), "The verification report (its status is VALID, INVALID or INDETERMINATE)")
    licence = _json(_ref("Licence"), "The licence's record, status, history and versions")
    location = {"Location": {"schema": TEXT, "description": "Where the resource is"}}
    paths = {
        "/healthz": {"get": _op("Liveness: the process answers", "operations",
                                {"200": _json(_object(("status",), status={"const": "ok"}), "Alive")},
                                security=PUBLIC)},
        "/readyz": {"get": _op("Readiness: the database and the key store can be used", "operations",
                               {"200": _json(_object(("status",), status={"const": "ready"},
                                                     checks={"type": "object"}), "Ready")},
                               security=PUBLIC, problems=(503,))},
        PATH: {"get": _op("This document", "operations", {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                          security=PUBLIC)},

        # ---- seals (电子印章, GB/T 38540)
        "/api/v1/seals": {"get": _op(
            "List the seal registry (seal:manage, role seal-admin)", "seals", {"200": _json(seal_list, "Seals")},
            parameters=[_query("holder", "The holder's USCC"), _query("status", "active, suspended, revoked…"),
                        _query("type", "The seal type"), LIMIT, OFFSET])},
        "/api/v1/seals/revoke": {"post": _op(
            "Revoke every seal of a holder, or those listed (seal:manage, role seal-admin)", "seals",
            {"200": _json(_object(("revoked",), revoked=TEXTS), "The esIDs revoked")},
            body=_body(_object(("reason",), holder_uscc=TEXT, es_ids=TEXTS, reason=TEXT)))},
        "/api/v1/seals/{es_id}": {"get": _op(
            "A seal with its picture, certificates and history (seal:manage, role seal-admin)", "seals",
            {"200": _json(_ref("Seal"), "The seal")}, parameters=[ES_ID], problems=(404,))},
        "/api/v1/seals/{es_id}/sign": {"post": _op(
            "Seal (用章) data or its SM3 digest: a GB/T 38540 SES_Signature (seal:sign)", "seals",
            {"200": _json(_object(("esID", "signature"), esID=TEXT,
                                  signature={"type": "string", "contentEncoding": "base64"}), "The signature")},
            parameters=[ES_ID], problems=(404, 409, 503),
            body=_body(_object(("purpose",), purpose=TEXT,
                               digest={"type": "string", "description": "SM3, hex or base64"},
                               data={"type": "string", "contentEncoding": "base64"},
                               timestamp={"enum": ["none", "local", "external"], "default": "none"})))},
        "/api/v1/seals/{es_id}/sign-batch": {"post": _op(
            "Seal up to 1,000 digests in one call (seal:sign)", "seals",
            {"200": _json(_object(("esID", "count", "signatures"), esID=TEXT, count={"type": "integer"},
                                  signatures=TEXTS), "The signatures, in the digests' order")},
            parameters=[ES_ID], problems=(404, 409, 503),
            body=_body(_object(("digests", "purpose"), purpose=TEXT,
                               digests={"type": "array", "items": TEXT, "minItems": 1, "maxItems": 1000})))},
        "/api/v1/seals/{es_id}/authorisation": {"put": _op(
            "Set which applications and operators may use a seal (seal:manage, role seal-admin)", "seals",
            {"200": _json(_ref("SealSummary"), "The seal")}, parameters=[ES_ID], problems=(404,),
            body=_body(_object(clients=TEXTS, operators=TEXTS)))},
        "/api/v1/verify/ses": {"post": _op(
            "Verify a SES_Signature, a GB/T 35275 SignedData or a bare SM2 signature", "verification",
            {"200": report}, security=PUBLIC,
            body=_body(_object(("signature",), signature={"type": "string", "contentMediaType":
                                                          "application/octet-stream"},
                               data={"type": "string", "contentMediaType": "application/octet-stream"},
                               digest={"type": "string", "description": "SM3 of the data, hex or base64"},
                               signer_cert={"type": "array", "items": {
                                   "type": "string", "contentMediaType": "application/octet-stream"}}),
                       "multipart/form-data"))},

        # ---- licences (电子证照)
        "/api/v1/licences": {
            "post": _op("Issue a licence (签发) as a sealed OFD (licence:issue); Idempotency-Key recommended",
                        "licences", {"201": _json(_ref("Licence"), "Issued", location),
                                     "200": _json(_ref("Licence"), "Issued before under this Idempotency-Key",
                                                  location)},
                        body=_body(_ref("LicenceRequest")), problems=(409, 503),
                        parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                                     "schema": {"type": "string", "maxLength": 255}}]),
            "get": _op("List an issuer's licences (licence:manage, role licence-admin)", "licences",
                       {"200": _json(licence_list, "Licences")},
                       parameters=[{**_query("issuer", "The issuer's USCC"), "required": True},
                                   {**LIMIT, "schema": {**LIMIT["schema"], "maximum": 1000}}, OFFSET])},
        "/api/v1/licences/{licence_id}": {"get": _op(
            "A licence's record, status, history and versions (licence:issue or licence:manage)", "licences",
            {"200": licence}, parameters=[LICENCE_ID], problems=(404,))},
        "/api/v1/licences/query": {"post": _op(
            "查询: a holder's licences, each field as its sharing class and consent allow (licence:read)",
            "licence sharing", {"200": _json(_object(("holder_code", "purpose", "licences"), holder_code=TEXT,
                                                     purpose=TEXT, licences={"type": "array"}, queried_at=TEXT),
                                             "The licences found")},
            body=_body({**consumer, "required": ["holder_code", "purpose"]}), problems=(404,))},
        "/api/v1/licences/autofill": {"post": _op(
            "辅助录入: a form's fields from the holder's licence, with their consent (licence:read)",
            "licence sharing", {"200": _json(_object(("form", "labels", "provenance"), form={"type": "object"},
                                                     labels={"type": "object"}, provenance={"type": "object"}),
                                             "The fields")},
            body=_body({**consumer, "required": ["holder_code", "type_code", "purpose"]}), problems=(404,))},
        "/api/v1/licences/compare": {"post": _op(
            "比对: submitted values against the licence, per field (licence:read)", "licence sharing",
            {"200": _json(_object(("licence_id", "fields"), licence_id=TEXT, type_code=TEXT, status=TEXT,
                                  superseded={"type": "boolean"}, purpose=TEXT, fields={"type": "object"},
                                  compared_at=TEXT), "match, no_match or not_comparable per field")},
            body=_body({**consumer, "required": ["fields", "purpose"],
                        "properties": {**consumer["properties"], "fields": {"type": "object"}}}), problems=(404,))},
        "/api/v1/licences/requests": {
            "post": _op("Ask the issuer for a licence's 有条件 fields (licence:read)", "licence sharing",
                        {"201": _json(_ref("ShareRequest"), "Pending")}, problems=(404,),
                        body=_body({**consumer, "required": ["purpose", "reason"],
                                    "properties": {**consumer["properties"], "reason": TEXT,
                                                   "days": {"type": "integer", "minimum": 1}}})),
            "get": _op("A consumer's own requests; an officer's department's queue (licence:manage)",
                       "licence sharing", {"200": _json(requests_list, "Requests")},
                       parameters=[_query("status", "pending, approved or refused",
                                          {"enum": ["pending", "approved", "refused"]})])},
        "/api/v1/licences/requests/{request_id}": {"get": _op(
            "One of the consumer's requests (licence:read)", "licence sharing",
            {"200": _json(_ref("ShareRequest"), "The request")},
            parameters=[_path("request_id", "The request's id")], problems=(404,))},
        "/api/v1/licences/imports": {"post": _op(
            "Bulk conversion of existing licences as a job (licence:issue)", "licences",
            {"202": _json(_ref("ImportJob"), "Started", location),
             "200": _json(_ref("ImportJob"), "The unfinished job of the same file", location)},
            body=_body(_object(("file", "type_code", "issuer_code", "source"),
                               file={"type": "string", "contentMediaType": "application/octet-stream",
                                     "description": ".csv, .jsonl or .xlsx"},
                               type_code=TEXT, issuer_code=TEXT, source=TEXT), "multipart/form-data"),
            problems=(404,))},
        "/api/v1/licences/imports/{job_id}": {"get": _op(
            "A conversion job's progress and first errors (licence:issue, its client)", "licences",
            {"200": _json(_ref("ImportJob"), "The job")}, parameters=[_path("job_id", "The job's id")],
            problems=(404,))},
        "/api/v1/licences/imports/{job_id}/errors.csv": {"get": _op(
            "A conversion job's error report (licence:issue, its client)", "licences",
            {"200": _file("text/csv", "row, field, 说明, message")}, parameters=[_path("job_id", "The job's id")],
            problems=(404,))},
        "/api/v1/verify": {"post": _op(
            "Verify a licence: its OFD or PDF file, its identifier, its QR code or a presentation (亮证)",
            "verification", {"200": report}, security=PUBLIC, problems=(404,),
            body={"required": True, "content": {
                "multipart/form-data": {"schema": _object(("file",), file={
                    "type": "string", "contentMediaType": "application/octet-stream"})},
                "application/json": {"schema": {"oneOf": [
                    _object(("licence_id",), licence_id=TEXT),
                    _object(("qr",), qr={"type": "string", "description": "What the licence's QR code holds"}),
                    _object(("presentation", "nonce"), presentation=TEXT, nonce=TEXT)]}}}})},
        "/api/v1/status-lists/{number}": {"get": _op(
            "A Token Status List of licences", "verification",
            {"200": _file("application/statuslist+cwt", "The signed status list")}, security=PUBLIC,
            parameters=[_path("number", "The list's number", {"type": "integer", "minimum": 0})], problems=(404,))},
        "/.well-known/licence-keys": {"get": _op(
            "The signed list of licence QR keys", "verification",
            {"200": _file("application/cose", "COSE_Sign1 of the key list")}, security=PUBLIC)},

        # ---- the holder's wallet (证照夹), a person's token with licence:wallet
        "/api/v1/wallet/licences": {"get": _op(
            "The person's licences and those of the enterprises they represent", "wallet",
            {"200": _json(_object(("licences",), licences={"type": "array"}), "Latest versions")})},
        "/api/v1/wallet/uses": {"get": _op(
            "Who queried or compared the person's licences", "wallet",
            {"200": _json(_object(("uses",), uses={"type": "array"}), "Uses")})},
        "/api/v1/wallet/presentations": {"post": _op(
            "亮证: a presentation of a licence, good for a minute", "wallet",
            {"201": _json(_object(("text", "url", "expires_at"), text=TEXT, url=TEXT, expires_at=TEXT),
                          "The presentation")},
            body=_body(_object(("licence_id",), licence_id=TEXT, disclose=TEXTS)), problems=(404,))},
        "/api/v1/wallet/requests": {"get": _op(
            "Departments' requests for the 有条件 fields of the person's licences", "wallet",
            {"200": _json(requests_list, "Requests")})},
        "/api/v1/wallet/consents": {
            "get": _op("The holder's consents", "wallet",
                       {"200": _json(_object(("consents",), consents={"type": "array", "items": _ref("Consent")}),
                                     "Consents")}),
            "post": _op("Consent that a consumer receive the 有条件 fields for a purpose until a time", "wallet",
                        {"201": _json(_ref("Consent"), "Granted")},
                        body=_body(_object(("client_id", "purpose", "until"), holder_code=TEXT, client_id=TEXT,
                                           purpose=TEXT, until=TIME)))},
        "/api/v1/wallet/consents/{consent_id}": {"delete": _op(
            "Withdraw a consent", "wallet", {"200": _json(_ref("Consent"), "Withdrawn")},
            parameters=[_path("consent_id", "The consent's id")], problems=(404,))},

        # ---- audit (for the audit administrator)
        "/api/v1/audit": {"get": _op(
            "Search the audit log (audit:read, role audit-admin)", "audit",
            {"200": {"description": "A page of records (json), or every matching record (jsonl, csv)",
                     "content": {"application/json": {"schema": _object(
                         ("records", "next"), records={"type": "array", "items": _ref("AuditRecord")},
                         next=_nullable({"type": "integer"}))},
                         "application/jsonl": {"schema": TEXT}, "text/csv": {"schema": TEXT}}}},
            parameters=[_query("since", "RFC 3339 time"), _query("until", "RFC 3339 time"), _query("actor", "Who"),
                        _query("action", "What"), _query("target", "On what"), _query("purpose", "For what"),
                        _query("outcome", "How it ended"),
                        _query("after", "The sequence number to start after", {"type": "integer", "minimum": 0}),
                        LIMIT, _query("format", "json, jsonl or csv", {"enum": ["json", "jsonl", "csv"]})])},
        "/api/v1/audit/usage": {"get": _op(
            "使用频度: uses by month, action, object and client (audit:read, role audit-admin)", "audit",
            {"200": _json(_object(("usage",), usage={"type": "array", "items": _object(
                ("month", "action", "object", "client", "count"), month=TEXT, action=TEXT, object=TEXT,
                client=TEXT, count={"type": "integer"})}), "Counts")},
            parameters=[_query("since", "RFC 3339 time"), _query("until", "RFC 3339 time")])},

        # ---- the CA
        "/api/ca": {"get": _op("The certificate authorities", "ca", {"200": _json({"type": "array", "items": _object(
            ("name", "family", "certificate"), name=TEXT, family=TEXT, parent=_nullable(TEXT), certificate=TEXT)},
            "The CAs")}, security=PUBLIC)},
        "/api/ca/csr/check": {"post": _op(
            "Read a PKCS#10 request without issuing anything", "ca",
            {"200": _json(_object(("subject", "signature_algorithm"), subject=TEXT, signature_algorithm=TEXT,
                                  dns_names=TEXTS), "What the request asks for")},
            security=PUBLIC, body=_body(_object(("csr",), csr={"type": "string", "description": "PEM"})))},
        "/api/ca/{name}/certificates": {"post": _op(
            "Issue a certificate from a CSR (ca:issue and role ca-officer, or an officer's signed request)", "ca",
            {"201": _json(_ref("Certificate"), "Issued")}, parameters=[CA_NAME], problems=(404,),
            security=[{"bearer": []}, {"officerSignature": [], "officerFingerprint": []}],
            body=_body(_object(("profile", "csr"), profile=TEXT, csr=TEXT, subject=TEXT, dns_names=TEXTS,
                               validity_days={"type": "integer", "minimum": 1, "maximum": 36525}, at=TIME)))},
        "/api/ca/{name}/certificates/{serial}": {"get": _op(
            "An issued certificate and its status", "ca", {"200": _json(_ref("Certificate"), "The certificate")},
            security=PUBLIC, problems=(404,),
            parameters=[CA_NAME, _path("serial", "Decimal serial number", {"type": "integer", "minimum": 0})])},
        "/api/ca/{name}/certificates/{serial}/revoke": {"post": _op(
            "Revoke an issued certificate (as for issuing)", "ca",
            {"200": _json(_ref("Certificate"), "Revoked")}, problems=(404, 409),
            security=[{"bearer": []}, {"officerSignature": [], "officerFingerprint": []}],
            parameters=[CA_NAME, _path("serial", "Serial number, decimal or 0x-hex")],
            body=_body(_object(reason={"type": "string", "description": "An RFC 5280 reason name"}, at=TIME)))},
        "/ca/{name}/cert": {"get": _op(
            "A CA's certificate", "ca", {"200": {"description": "DER, or PEM with ?format=pem", "content": {
                "application/pkix-cert": {"schema": {"type": "string", "contentMediaType": "application/pkix-cert"}},
                "application/x-pem-file": {"schema": TEXT}}}},
            security=PUBLIC, problems=(404,),
            parameters=[CA_NAME, _query("format", "der or pem", {"enum": ["der", "pem"], "default": "der"})])},
        "/ca/{name}/crl": {"get": _op("A CA's current CRL (DER)", "ca",
                                      {"200": _file("application/pkix-crl", "DER")}, security=PUBLIC,
                                      parameters=[CA_NAME], problems=(404,))},
        "/ocsp/{name}": {"post": _op(
            "OCSP (RFC 6960) over POST", "ca", {"200": _file("application/ocsp-response", "An OCSP response")},
            security=PUBLIC, parameters=[CA_NAME],
            body=_body({"type": "string", "contentMediaType": "application/ocsp-request"},
                       "application/ocsp-request"))},
        "/ocsp/{name}/{encoded}": {"get": _op(
            "OCSP (RFC 6960 appendix A) over GET", "ca",
            {"200": _file("application/ocsp-response", "An OCSP response")}, security=PUBLIC,
            parameters=[CA_NAME, _path("encoded", "The request, base64 then URL-encoded")])},
        "/tsa": {"post": _op("Time-stamping (RFC 3161) by the default TSA", "ca",
                             {"200": _file("application/timestamp-reply", "A time-stamp response")},
                             security=PUBLIC, body=_body({"type": "string"}, "application/timestamp-query"))},
        "/tsa/{name}": {"post": _op("Time-stamping (RFC 3161) by a named TSA", "ca",
                                    {"200": _file("application/timestamp-reply", "A time-stamp response")},
                                    security=PUBLIC, parameters=[CA_NAME],
                                    body=_body({"type": "string"}, "application/timestamp-query"))},

        # ---- identity (OAuth 2.0 and OpenID Connect)
        "/.well-known/openid-configuration": {"get": _op(
            "OpenID Connect Discovery metadata", "identity",
            {"200": _json(_object(("issuer", "token_endpoint", "jwks_uri"), issuer=TEXT, token_endpoint=TEXT,
                                  jwks_uri=TEXT), "The provider's metadata")}, security=PUBLIC)},
        "/oauth/jwks": {"get": _op("The keys that sign tokens (JWK Set)", "identity", {
            "200": {"description": "RFC 7517 JWK Set", "content": {"application/jwk-set+json": {"schema": _object(
                ("keys",), keys={"type": "array", "items": {"type": "object"}})}}}}, security=PUBLIC)},
        "/oauth/token": {"post": _oauth(
            "The token endpoint (RFC 6749 §3.2): client credentials, authorization code, refresh",
            _object(("grant_type",), grant_type=TEXT, scope=TEXT, code=TEXT, redirect_uri=TEXT, code_verifier=TEXT,
                    refresh_token=TEXT, client_id=TEXT, client_secret=TEXT, client_assertion=TEXT,
                    client_assertion_type=TEXT),
            _json(_ref("Token"), "A token"))},
        "/oauth/introspect": {"post": _oauth(
            "Token introspection (RFC 7662)", _object(("token",), token=TEXT, token_type_hint=TEXT),
            _json(_object(("active",), active={"type": "boolean"}), "Whether the token is active, and its claims"))},
        "/oauth/revoke": {"post": _oauth(
            "Token revocation (RFC 7009)", _object(("token",), token=TEXT, token_type_hint=TEXT),
            {"description": "Revoked, or never valid"})},
        "/oauth/userinfo": {method: _op(
            "The UserInfo endpoint (OpenID Connect Core §5.3)", "identity",
            {"200": _json(_object(("sub",), sub=TEXT), "The claims the token's scopes allow")})
            for method in ("get", "post")},
    }
    for act, what in (("suspend", "Suspend"), ("resume", "Resume"), ("revoke", "Revoke")):
        seal_act = {"post": _op(f"{what} a seal (seal:manage, role seal-admin)", "seals",
                                {"200": _json(_ref("SealSummary"), "The seal")}, parameters=[ES_ID],
                                problems=(404, 409), body=_body(REASON))}
        paths[f"/api/v1/seals/{{es_id}}/{act}"] = seal_act
    for kind, media_type in (("ofd", "application/ofd"), ("pdf", "application/pdf")):
        paths[f"/api/v1/licences/{{licence_id}}/{kind}"] = {"get": _op(
            f"The licence's {kind.upper()} file (licence:issue or licence:manage)", "licences",
            {"200": _file(media_type, "The signed file")}, parameters=[LICENCE_ID], problems=(404,))}
        paths[f"/api/v1/wallet/licences/{{licence_id}}/{kind}"] = {"get": _op(
            f"One of the person's licences as {kind.upper()}", "wallet",
            {"200": _file(media_type, "The signed file")}, parameters=[LICENCE_ID], problems=(404,))}
    for act in ("suspend", "resume", "revoke", "annul", "cancel"):
        paths[f"/api/v1/licences/{{licence_id}}/{act}"] = {"post": _op(
            f"{act.capitalize()} a licence (licence:issue for its issuer, or licence:manage)", "licences",
            {"200": licence}, parameters=[LICENCE_ID], problems=(404, 409), body=_body(REASON))}
    for act, what in (("change", "变更: a new version with changed fields"), ("renew", "延续: a new version")):
        paths[f"/api/v1/licences/{{licence_id}}/{act}"] = {"post": _op(
            f"{what} (licence:issue)", "licences", {"201": licence}, parameters=[LICENCE_ID], problems=(404, 409),
            body=_body(_object(("reason",), reason=TEXT, face={"type": "object", "additionalProperties": TEXT},
                               holder=_object(name=TEXT), validity={"type": "object"})))}
    for decision in ("approve", "refuse"):
        paths[f"/api/v1/licences/requests/{{request_id}}/{decision}"] = {"post": _op(
            f"{decision.capitalize()} a request (licence:manage, an officer of the issuing department)",
            "licence sharing", {"200": _json(_ref("ShareRequest"), "Answered")},
            parameters=[_path("request_id", "The request's id")], problems=(404, 409),
            body=_body(_object(("answer",), answer=TEXT)))}
    return paths


def document(public_url: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Trust service: seals, licences, CA and identity",
                 "version": "1",
                 "description": "电子印章、电子证照、证书与统一身份认证服务接口。Errors are RFC 9457 "
                                "problem+json with Chinese and English details and a stable code."},
        "servers": [{"url": public_url.rstrip("/")}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "An access token of /oauth/token; each operation names its scope"},
                "officerFingerprint": {"type": "apiKey", "in": "header", "name": "X-Officer-Fingerprint"},
                "officerSignature": {"type": "apiKey", "in": "header", "name": "X-Officer-Signature"}},
            "schemas": _schemas()},
        "paths": _paths(),
    }


@blueprint.get(PATH)
def openapi_json():
    response = jsonify(document(current_app.extensions["trust.settings"].public_url))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
