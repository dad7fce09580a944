"""JSON API of the e-licence authority: departments issue and keep their licences, anyone
verifies. The rules live in licence/; this module parses, authorises, calls, serialises.

    POST /api/v1/licences                       licence:issue   the request of licence.issuance; header
                                                                Idempotency-Key (recommended): 201, or 200
                                                                with the first answer when repeated
    GET  /api/v1/licences/<id>                  licence:issue | licence:manage   record, status, history, versions
    GET  /api/v1/licences/<id>/ofd              licence:issue | licence:manage   the sealed OFD
    GET  /api/v1/licences/<id>/pdf              licence:issue | licence:manage   the PAdES-signed PDF (404 if none)
    POST /api/v1/licences/<id>/change|renew     licence:issue   {"reason", "face"?, "holder"?: {"name"}, "validity"?}
    POST /api/v1/licences/<id>/suspend|resume|revoke|annul|cancel
                                                licence:issue | licence:manage   {"reason"}
    GET  /api/v1/licences?issuer=USCC&limit=&offset=   licence:manage   listing by issuer
    POST /api/v1/licences/query                 licence:read    查询 {holder_code, type_code?, purpose, operator?}:
                                                                the holder's licences, each field as its sharing
                                                                class and the holder's consent allow
    GET|POST /api/v1/wallet/consents, DELETE …/<id>   licence:wallet (a person)   the consents of the holder
                                                                and the enterprises they represent
    GET  /api/v1/wallet/licences, …/<id>/ofd|pdf, /api/v1/wallet/uses|requests   licence:wallet (a person)
                                                                their licences and files, who used them, and
                                                                departments' requests to the issuers
    POST /api/v1/wallet/presentations            licence:wallet (a person)   亮证 {licence_id, disclose}: a
                                                                presentation good for 60 s
    POST /api/v1/licences/autofill              licence:read    辅助录入 {holder_code, type_code, purpose,
                                                                operator?}: a form's fields, with the holder's consent
    POST /api/v1/licences/requests              licence:read    {licence_id | holder_code and type_code, purpose,
                                                                reason, days?, operator?}: ask the issuing
                                                                department for the 有条件 fields (201, pending)
    GET  /api/v1/licences/requests[?status=], …/<id>   licence:read: the consumer's own; licence:manage
                                                                and the role: the officer's department's queue,
                                                                a pending request with its age
    POST /api/v1/licences/requests/<id>/approve|refuse   licence:manage and the role, an officer of the
                                                                issuing department (its registered name) {answer}
    POST /api/v1/licences/imports               licence:issue   bulk conversion as a job: multipart file
                                                                (.csv|.jsonl|.xlsx), type_code, issuer_code, source:
                                                                202 and Location (200: the unfinished job of that file)
    GET  /api/v1/licences/imports/<id>[/errors.csv]   licence:issue (its client)   progress (counts, percent,
                                                                rate, ETA) and the first errors; the error report
    POST /api/v1/licences/compare               licence:read    比对 {licence_id | holder_code and type_code, fields,
                                                                purpose, operator?}: per field match, no_match or
                                                                not_comparable (licence/sharing.py), for a consumer
    POST /api/v1/verify                         public          multipart "file" (an OFD or PDF licence), or
                                                                JSON {"licence_id"}: the verification report;
                                                                JSON {"qr": text}: a licence QR's report
                                                                (format "qr") against the registry now;
                                                                JSON {"presentation", "nonce"}: a shown licence
                                                                (亮证), format "presentation"

Departments act through their client application: the token's client must be one the
issuing organisation registered for that licence type (licence.registry.check_issuer), and
sees and changes only those licences. Officers act with scope ``licence:manage`` and the
role ``licence-admin``. Verifying is public, like the page /v/<id>: a natural person's
name and number appear only masked; roots come from the trust store (purpose "licence").
"""

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError

from api.auth import acting_officer, current_token
from api.json_body import json_object, query_int, query_text, text, time_value
from api.metrics_http import report_response
from api.seal_api import seal_status
from identity import subjects
from licence import conversion, imports, issuance, presentation, registry, share_requests, sharing
from licence.qr_online import verify_online
from licence.verify import is_pdf, verify_licence
from ofd.package import OFDFormatError
from trust import truststore
from trust.clock import iso_z, utc_now
from trust.errors import InvalidInput, NotFound, PermissionDenied

blueprint = Blueprint("licence_api", __name__, url_prefix="/api/v1")

OFFICER_ROLE = "licence-admin"
MAX_LICENCE_FILE = 8 * 1024 * 1024       # a one-page licence is ~100 KB; ten times a large one
STATUS_ACTS = ("suspend", "resume", "revoke", "annul", "cancel")
MAX_ERRORS_SHOWN = 100                   # in the job's JSON; the CSV report has them all


def _sessions_factory():
    return current_app.extensions["trust.sessions"]


def _session():
    return _sessions_factory()()


def _settings():
    return current_app.extensions["trust.settings"]


def _actor(record: registry.LicenceRecord | None = None) -> str:
    """Who acts on a licence: an officer (licence:manage and the role), or a client
    registered to issue the licence's type for its issuer (licence:issue)."""
    token = current_token()
    if "licence:manage" in token.scopes:
        return acting_officer(OFFICER_ROLE)
    if "licence:issue" not in token.scopes:
        current_token("licence:issue")  # refused, audited, as insufficient_scope
    if record is not None:
        with _session() as session:
            try:
                registry.check_issuer(session, record.record["type_code"], record.record["issuer"]["code"],
                                      token.client_id)
            except PermissionDenied:
                session.commit()  # keep the audit record of the refusal
                raise
    return f"client:{token.client_id}"


def _record(licence_id: str) -> registry.LicenceRecord:
    with _session() as session:
        return registry.get(session, licence_id)


def _full(session, record: registry.LicenceRecord) -> dict:
    return {**record.to_dict(), "history": [h.to_dict() for h in registry.history(session, record.licence_id)],
            "versions": registry.versions(session, record.licence_id)}


def _consumer_call(work) -> Response:
    """A licence consumer's call (scope licence:read): ``work(session, client_id, body)``,
    committed; a refusal is committed too, keeping its audit record."""
    token = current_token("licence:read")
    body = json_object()
    with _session() as session:
        try:
            answer = work(session, token.client_id, body)
        except PermissionDenied:
            session.commit()
            raise
        session.commit()
    return jsonify(answer)


@blueprint.post("/licences/query")
def query():
    """查询: the holder's licences, each field as its sharing class and the holder's consent allow."""
    return _consumer_call(sharing.query)


def holder_codes(session, person) -> tuple[str, ...]:
    """The holder codes a person speaks for: their own ID number, then the credit codes of the
    enterprises they represent now (identity.subjects.represented)."""
    return person.identifier, *(lp.identifier for _a, lp in subjects.represented(session, person.id))


def _holder() -> tuple[str, tuple[str, ...]]:
    """Who speaks through the request's token (scope licence:wallet, a person's) and the
    holder codes they speak for: their own ID number and the enterprises they represent."""
    token = current_token("licence:wallet")
    with _session() as session:
        person = subjects.get_subject(session, token.subject) if token.subject else None
        if person is None or person.kind != "person":
            raise PermissionDenied("the wallet is a person's: log in as one", "证照夹属于个人，请以个人身份登录")
        codes = holder_codes(session, person)
    return f"person:{person.id}", codes


@blueprint.get("/wallet/licences")
def wallet_licences():
    """The licences of the person and of the enterprises they represent, latest versions."""
    _actor_name, codes = _holder()
    with _session() as session:
        found = sharing.licences_of(session, codes)
    return jsonify({"licences": [{
        "licence_id": r.licence_id, "type_code": r.record["type_code"], "type_name": r.record["type_name"],
        "holder": {"name": r.record["holder"]["name"], "code": r.record["holder"]["code"]},
        "issuer": r.record["issuer"]["name"], "status": r.status.value, "status_zh": r.status.zh,
        "valid_from": r.record["valid_from"], "valid_to": r.record["valid_to"] or "长期",
        "files": {"ofd": f"/api/v1/wallet/licences/{r.licence_id}/ofd",
                  **({"pdf": f"/api/v1/wallet/licences/{r.licence_id}/pdf"} if r.pdf_sm3 else {})}}
        for r in found]})


@blueprint.get("/wallet/licences/<licence_id>/<any(ofd, pdf):kind>")
def wallet_file(licence_id: str, kind: str):
    _actor_name, codes = _holder()
    with _session() as session:
        record = registry.get(session, licence_id)
        if record.record["holder"]["code"] not in codes:
            raise NotFound(f"no licence {licence_id} of yours", f"您没有证照 {licence_id}")
        data = registry.ofd_file(session, licence_id) if kind == "ofd" else registry.pdf_file(session, licence_id)
    return Response(data, mimetype="application/ofd" if kind == "ofd" else "application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{record.licence_id}.{kind}"', "Cache-Control": "no-store"})


@blueprint.get("/wallet/uses")
def wallet_uses():
    """Who queried or compared the person's licences and their enterprises': caller, purpose, time."""
    _actor_name, codes = _holder()
    with _session() as session:
        return jsonify({"uses": sharing.uses_of(session, codes)})


@blueprint.post("/wallet/presentations")
def wallet_present():
    """亮证: {"licence_id", "disclose": [有条件 field keys]} → a presentation good for a minute."""
    actor, codes = _holder()
    body = json_object()
    with _session() as session:
        record = registry.get(session, text(body, "licence_id"))
        if record.record["holder"]["code"] not in codes:
            raise NotFound(f"no licence {record.licence_id} of yours", f"您没有证照 {record.licence_id}")
        shown, expires = presentation.present(session, current_app.extensions["trust.keystore"], record,
                                              body.get("disclose", []), actor=actor)
        session.commit()
    response = jsonify({"text": shown, "url": f"{_settings().public_url.rstrip('/')}/v/p#{shown}",
                        "expires_at": iso_z(expires)})
    response.status_code = 201
    return response


@blueprint.get("/wallet/requests")
def wallet_requests():
    """Departments' requests to the issuers for the 有条件 fields of the person's licences."""
    _actor_name, codes = _holder()
    with _session() as session:
        found = share_requests.listed(session, holder_codes=codes)
    now = utc_now()
    return jsonify({"requests": [r.to_dict(now) for r in reversed(found)]})


@blueprint.get("/wallet/consents")
def wallet_consents():
    _actor_name, codes = _holder()
    with _session() as session:
        return jsonify({"consents": [c.to_dict() for c in sharing.consents_of(session, codes)]})


@blueprint.post("/wallet/consents")
def wallet_grant():
    """Consent that a consumer receive the 有条件 fields of the holder's licences for a purpose
    until a time: {"holder_code"? (default: one's own), "client_id", "purpose", "until"}."""
    actor, codes = _holder()
    body = json_object()
    holder_code = (text(body, "holder_code", required=False) or codes[0]).strip().upper()
    if holder_code not in codes:
        raise PermissionDenied("you may consent only for yourself and the enterprises you represent",
                               "只能为本人及所代表的企业授权")
    until = time_value(body, "until")
    with _session() as session:
        consent = sharing.grant_consent(session, holder_code, text(body, "client_id"), body.get("purpose"), until,
                                        actor=actor)
        session.commit()
    response = jsonify(consent.to_dict())
    response.status_code = 201
    return response


@blueprint.delete("/wallet/consents/<consent_id>")
def wallet_withdraw(consent_id: str):
    actor, codes = _holder()
    with _session() as session:
        consent = sharing.withdraw_consent(session, consent_id, holder_codes=codes, actor=actor)
        session.commit()
    return jsonify(consent.to_dict())


@blueprint.post("/licences/requests")
def request_fields():
    """A consumer asks the issuing department for a licence's 有条件 fields."""
    def submit(session, client_id, body):
        return share_requests.submit(session, client_id, body).to_dict(utc_now())
    response = _consumer_call(submit)
    response.status_code = 201
    return response


def _answering_officer() -> tuple[str, frozenset[str]]:
    """The officer behind the request (licence:manage, the licence role) and the issuers they
    answer for: those registered under their department's name."""
    token = current_token("licence:manage")
    actor = acting_officer(OFFICER_ROLE)
    with _session() as session:
        department = subjects.get_subject(session, token.subject or "").department  # an officer's: acting_officer
        return actor, share_requests.issuers_of_department(session, department)


@blueprint.get("/licences/requests")
def list_requests():
    """A consumer's own requests; for an officer (licence:manage), their department's queue,
    oldest first, a pending one with its age. ?status=pending|approved|refused."""
    status = query_text("status")
    if status is not None and status not in set(share_requests.RequestStatus):
        raise InvalidInput(en="status is pending, approved or refused", zh="status 须为 pending、approved 或 refused")
    if "licence:manage" in current_token().scopes:
        _actor_name, issuers = _answering_officer()
        where = {"issuer_codes": issuers}
    else:
        where = {"client_id": current_token("licence:read").client_id}
    with _session() as session:
        found = share_requests.listed(session, status=status, **where)
    now = utc_now()
    return jsonify({"requests": [r.to_dict(now) for r in found]})


@blueprint.get("/licences/requests/<request_id>")
def get_request(request_id: str):
    token = current_token("licence:read")
    with _session() as session:
        return jsonify(share_requests.get(session, request_id, client_id=token.client_id).to_dict(utc_now()))


@blueprint.post("/licences/requests/<request_id>/<any(approve, refuse):decision>")
def answer_request(request_id: str, decision: str):
    """An officer of the issuing department answers: {"answer": their words}."""
    actor, issuers = _answering_officer()
    body = json_object()
    with _session() as session:
        try:
            answered = share_requests.answer(session, request_id, approve=decision == "approve",
                                             words=body.get("answer"), actor=actor, issuer_codes=issuers)
        except PermissionDenied:
            session.commit()
            raise
        session.commit()
    return jsonify(answered.to_dict(utc_now()))


@blueprint.post("/licences/imports")
def import_licences():
    """Bulk conversion as a job: multipart "file" (.csv, .jsonl, .xlsx), "type_code",
    "issuer_code", "source". 202 with the job (Location: its progress), or 200 with the
    unfinished job of the same file."""
    token = current_token("licence:issue")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput(en="send the table as the multipart field 'file'", zh="请以 multipart 字段“file”上传转换表")
    data = upload.read(conversion.MAX_FILE + 1)
    form = {name: request.form.get(name) for name in ("type_code", "issuer_code", "source")}
    if not all(isinstance(v, str) and v for v in form.values()):
        raise InvalidInput(en="give the form fields type_code, issuer_code and source",
                           zh="请给出表单字段 type_code、issuer_code 与 source")
    with _session() as session:
        try:
            job, new = imports.submit(session, token.client_id, data=data, file_name=upload.filename, **form)
        except PermissionDenied:
            session.commit()
            raise
        session.commit()
    if job.stale(utc_now()):
        imports.start(_sessions_factory(), current_app.extensions["trust.keystore"], job.id,
                      verify_url=_settings().public_url)
    response = jsonify(_import_view(job))
    response.status_code = 202 if new else 200
    response.headers["Location"] = f"/api/v1/licences/imports/{job.id}"
    return response


def _import_view(job: imports.ImportJob) -> dict:
    return {**job.to_dict(utc_now()), "error_report": f"/api/v1/licences/imports/{job.id}/errors.csv"}


@blueprint.get("/licences/imports/<job_id>")
def import_progress(job_id: str):
    """The job's progress and its first errors; a job whose runner died is resumed here."""
    token = current_token("licence:issue")
    with _session() as session:
        job = imports.get(session, job_id, client_id=token.client_id)
        first = imports.errors(session, job.id)[:MAX_ERRORS_SHOWN]
    if job.stale(utc_now()):
        imports.start(_sessions_factory(), current_app.extensions["trust.keystore"], job.id,
                      verify_url=_settings().public_url)
    return jsonify({**_import_view(job), "errors": [
        {"row": e.row, "field": e.field, "message": {"zh": e.zh, "en": e.en}} for e in first]})


@blueprint.get("/licences/imports/<job_id>/errors.csv")
def import_errors(job_id: str):
    """The error report as `trustctl licence convert` writes it: row, field, 说明, message."""
    token = current_token("licence:issue")
    with _session() as session:
        job = imports.get(session, job_id, client_id=token.client_id)
        report = conversion.error_report(imports.errors(session, job.id))
    return Response(report, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{job.id}.errors.csv"', "Cache-Control": "no-store"})


@blueprint.post("/licences/autofill")
def autofill():
    """辅助录入: a form's fields from the holder's licence, with the holder's consent."""
    return _consumer_call(sharing.autofill)


@blueprint.post("/licences/compare")
def compare():
    """比对: the submitted values against the licence, per field, never a stored value."""
    return _consumer_call(sharing.compare)


@blueprint.post("/licences")
def issue():
    token = current_token("licence:issue")
    body = json_object()
    key = request.headers.get("Idempotency-Key")
    for attempt in (1, 2):
        with _session() as session:
            try:
                record, new = issuance.issue(session, current_app.extensions["trust.keystore"], body,
                                             client_id=token.client_id, idempotency_key=key,
                                             verify_url=_settings().public_url)
                session.commit()
            except PermissionDenied:
                session.commit()  # keep the audit record of the refusal
                raise
            except IntegrityError:
                # PostgreSQL: a concurrent request took the same idempotency key or a new
                # serial counter first; the second attempt finds its answer or the next serial.
                session.rollback()
                if attempt == 2:
                    raise
                continue
            response = jsonify(_full(session, record))
            break
    response.status_code = 201 if new else 200
    response.headers["Location"] = f"/api/v1/licences/{record.licence_id}"
    return response


@blueprint.get("/licences")
def list_licences():
    current_token("licence:manage")
    acting_officer(OFFICER_ROLE)
    limit, offset = query_int("limit", 100, low=1, high=registry.MAX_LIST), query_int("offset", 0)
    issuer = query_text("issuer")
    if not issuer:
        raise InvalidInput("give the issuer's credit code: ?issuer=USCC", "请给出颁证单位代码：?issuer=统一社会信用代码")
    with _session() as session:
        found = registry.list_by_issuer(session, issuer, limit=limit, offset=offset)
    return jsonify({"licences": [r.to_dict() for r in found]})


@blueprint.get("/licences/<licence_id>/<any(ofd, pdf):kind>")
def licence_file(licence_id: str, kind: str):
    _actor(_record(licence_id))
    with _session() as session:
        data = registry.ofd_file(session, licence_id) if kind == "ofd" else registry.pdf_file(session, licence_id)
    name = licence_id.replace(".", "_") + "." + kind
    return Response(data, mimetype="application/ofd" if kind == "ofd" else "application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@blueprint.get("/licences/<licence_id>")
def licence_record(licence_id: str):
    _actor(_record(licence_id))
    with _session() as session:
        return jsonify(_full(session, registry.get(session, licence_id)))


@blueprint.post("/licences/<licence_id>/<any(suspend, resume, revoke, annul, cancel, change, renew):act>")
def licence_act(licence_id: str, act: str):
    record = _record(licence_id)
    actor = _actor(record)
    body = json_object()
    reason = text(body, "reason")
    with _session() as session:
        if act in STATUS_ACTS:
            result = registry.transition(session, licence_id, act, actor=actor, reason=reason)
        else:
            if not actor.startswith("client:"):
                raise PermissionDenied("a change or renewal is issued by the department's application (licence:issue)",
                                       "变更和延续须由颁证部门的应用（licence:issue）签发")
            result = issuance.change(session, current_app.extensions["trust.keystore"], licence_id,
                                     {k: v for k, v in body.items() if k != "reason"},
                                     client_id=g.access_token.client_id,
                                     verify_url=_settings().public_url, reason=reason, renew=act == "renew")
        session.commit()
        return jsonify(_full(session, result)), 201 if act in ("change", "renew") else 200


# ---------------------------------------------------------------- verification (public)

def registry_lookup(licence_id: str):
    """Our registry for verify_licence, each question in its own short transaction: the
    verifier may fetch OCSP answers from this very service meanwhile."""
    with _session() as session:
        try:
            return registry.get(session, licence_id), registry.history(session, licence_id)
        except NotFound:
            return None


def verify_report(data: bytes):
    with _session() as session:
        roots = tuple(cert.der for cert in truststore.trusted_roots(session, "licence"))
    try:  # a PDF that cannot be read is InvalidInput already
        return verify_licence(data, lookup=registry_lookup, trusted_roots=roots, seal_status=seal_status)
    except OFDFormatError as e:
        raise InvalidInput(f"not a readable OFD licence: {e.en}", f"不是可读取的 OFD 证照文件：{e.zh}") from None


@blueprint.post("/verify")
def verify():
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise InvalidInput("send the licence as the multipart field 'file'", "请以 multipart 字段“file”上传证照文件")
        data = upload.read(MAX_LICENCE_FILE + 1)
        if len(data) > MAX_LICENCE_FILE:
            raise InvalidInput(f"the file is larger than {MAX_LICENCE_FILE // (1024 * 1024)} MB",
                               f"文件超过 {MAX_LICENCE_FILE // (1024 * 1024)} MB")
        if data[:4] != b"PK\x03\x04" and not is_pdf(data):
            raise InvalidInput("the file is neither an OFD nor a PDF licence", "文件既不是 OFD 证照也不是 PDF 证照")
    else:
        body = json_object()
        if "qr" in body:
            with _session() as session:
                return report_response(verify_online(session, text(body, "qr"), public_url=_settings().public_url))
        if "presentation" in body:
            with _session() as session:
                roots = tuple(cert.der for cert in truststore.trusted_roots(session, "licence"))
                report = presentation.verify(session, body["presentation"], body.get("nonce"), trusted_roots=roots)
                session.commit()  # the (presentation, nonce) pair: once per verifier nonce
            return report_response(report)
        licence_id = text(body, "licence_id")
        with _session() as session:
            data = registry.ofd_file(session, licence_id)
    return report_response(verify_report(data))
