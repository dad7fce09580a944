"""The audit log for auditors (#19): `GET /api/v1/audit`.

    GET /api/v1/audit?since=&until=&actor=&action=&target=&purpose=&outcome=&after=&limit=&format=
        audit:read, and the officer holds the role audit-admin

``format=json`` (the default): a page of at most ``limit`` records (1–1,000, default 100)
after the sequence number ``after``, and ``next``, the ``after`` of the following page.
``format=jsonl`` or ``csv``: every matching record with its chain hashes (at most 100,000:
narrow the range beyond), as a download. Times are ISO 8601 with their zone.

    GET /api/v1/audit/usage?since=&until=     the same caller
        使用频度: uses by month, action, object (seal, licence type, key) and client

Every reading is itself audited (trust.audit_query.record_reading).
"""

from flask import Blueprint, Response, current_app, jsonify, stream_with_context

from api.auth import acting_officer, require_scopes
from api.json_body import query_int, query_text
from trust import audit_query
from trust.audit_query import Query
from trust.errors import InvalidInput

blueprint = Blueprint("audit_api", __name__, url_prefix="/api/v1")

AUDITOR_ROLE = "audit-admin"
SCOPE = "audit:read"


def query_from_request() -> Query:
    return Query(since=audit_query.parse_time(query_text("since"), "since"),
                 until=audit_query.parse_time(query_text("until"), "until"), actor=query_text("actor"),
                 action=query_text("action"),
                 target=query_text("target"), purpose=query_text("purpose"), outcome=query_text("outcome"))


@blueprint.get("/audit")
@require_scopes(SCOPE)
def search():
    actor = acting_officer(AUDITOR_ROLE)
    query = query_from_request()
    kind = query_text("format") or "json"
    if kind not in ("json", "jsonl", "csv"):
        raise InvalidInput(en="format is json, jsonl or csv", zh="format 须为 json、jsonl 或 csv")
    sessions = current_app.extensions["trust.sessions"]
    if kind == "json":
        with sessions() as session:
            records, following = audit_query.search(session, query, after=query_int("after", 0),
                                                    limit=query_int("limit", 100, low=1, high=audit_query.MAX_PAGE))
            audit_query.record_reading(session, actor, "search", query, len(records))
            session.commit()
        return jsonify(records=[audit_query.as_json(r) for r in records], next=following)
    with sessions() as session:  # audited before the first byte goes out
        audit_query.record_reading(session, actor, "export", query)
        session.commit()

    def lines():
        with sessions() as session:
            records = audit_query.export(session, query)
            if kind == "csv":
                yield from audit_query.csv_lines(records)
            else:
                for record in records:
                    yield audit_query.json_line(record)

    media = "text/csv; charset=utf-8" if kind == "csv" else "application/jsonl"
    return Response(stream_with_context(lines()), mimetype=media, headers={
        "Content-Disposition": f'attachment; filename="audit.{kind}"'})


@blueprint.get("/audit/usage")
@require_scopes(SCOPE)
def usage():
    """使用频度: uses by month, action, object and client over ?since=&until= (and any other
    criterion of /audit)."""
    actor = acting_officer(AUDITOR_ROLE)
    query = query_from_request()
    with current_app.extensions["trust.sessions"]() as session:
        rows = audit_query.usage(session, query)
        audit_query.record_reading(session, actor, "usage", query, len(rows))
        session.commit()
    return jsonify(usage=rows)
