"""The auditor's tools (#19 item 3): search the audit log by time, actor, action, object,
purpose and outcome a page at a time, export it with the hashes that chain it (recomputed
here from the export alone, CSV and JSON Lines), over the API only for an officer holding
audit-admin; every reading is audited."""

import csv
import io
import itertools
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from identity import subjects, tokens
from trust import audit, audit_query
from trust.audit_query import Query
from trust.duties import Duty
from trust.errors import InvalidInput

from tests.custody import enrol_administrator

T0 = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
EVENTS = [("client:tax", "licence.query", "L-1", {"purpose": "办理贷款"}),
          ("client:tax", "licence.use.refused", "L-2", {"purpose": "未登记事由"}),
          ("client:bank", "licence.query", "L-1", {"purpose": "开立账户"}),
          ("officer:abc", "key.state", "K-9", {"from": "active", "to": "suspended"}),
          ("client:bank", "seal.sign", "S-1", {"count": 1})]


def _log(session) -> None:
    for i, (actor, action, target, detail) in enumerate(EVENTS * 3):
        audit.append(session, actor, action, target, detail, clock=lambda i=i: T0 + timedelta(minutes=i))
    session.commit()


def _seqs(session, query: Query, **page) -> list[int]:
    return [r.seq for r in audit_query.search(session, query, **page)[0]]


def test_each_criterion_selects_its_records(session):
    _log(session)
    assert _seqs(session, Query(actor="client:tax")) == [1, 2, 6, 7, 11, 12]
    assert _seqs(session, Query(actor="client:*", action="licence.*", target="L-1")) == [1, 3, 6, 8, 11, 13]
    assert _seqs(session, Query(purpose="开立账户")) == [3, 8, 13]
    assert _seqs(session, Query(outcome="refused")) == [2, 7, 12]
    assert len(_seqs(session, Query(outcome="done"))) == 12
    assert _seqs(session, Query(since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6))) == [4, 5, 6]
    assert _seqs(session, Query(actor="client_*")) == []  # "_" is a character, not a wildcard


def test_pages_continue_after_the_last_record_shown(session):
    _log(session)
    records, following = audit_query.search(session, Query(), limit=6)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6] and following == 6
    audit.append(session, "late", "test.append")  # added while the auditor pages
    session.commit()
    assert _seqs(session, Query(), after=following, limit=100) == list(range(7, 17))
    assert audit_query.search(session, Query(), after=16)[1] is None


@pytest.mark.parametrize("bad", [dict(outcome="maybe"), dict(actor=""), dict(action="x" * 201),
                                 dict(since=T0 + timedelta(days=1), until=T0), dict(since=datetime(2026, 1, 1))])
def test_bad_criteria_are_refused(bad):
    with pytest.raises(InvalidInput):
        Query(**bad)


def test_bad_pages_and_huge_exports_are_refused(session, monkeypatch):
    _log(session)
    with pytest.raises(InvalidInput, match="1 to 1000"):
        audit_query.search(session, Query(), limit=1001)
    monkeypatch.setattr(audit_query, "MAX_EXPORT", 10)
    with pytest.raises(InvalidInput, match="narrow the time range"):
        list(audit_query.export(session, Query()))


def _recomputed(record: dict) -> bool:
    at = datetime.fromisoformat(record["at"].replace("Z", "+00:00"))
    canonical = audit.canonical_record(record["seq"], at, record["actor"], record["action"], record["target"],
                                       record["detail"])
    return audit.record_hash(record["prev_hash"], canonical) == record["hash"]


def test_an_export_carries_its_chain_proof_in_json_lines_and_csv(session):
    _log(session)
    lines = [json.loads(audit_query.json_line(r)) for r in audit_query.export(session, Query())]
    assert len(lines) == 15 and all(_recomputed(line) for line in lines)
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))  # contiguous: each links back
    assert lines[-1]["hash"] == audit.head(session).hash
    rows = list(csv.DictReader(io.StringIO("".join(audit_query.csv_lines(audit_query.export(
        session, Query(actor="client:bank")))))))
    assert [int(r["seq"]) for r in rows] == [3, 5, 8, 10, 13, 15]
    assert all(_recomputed({**r, "seq": int(r["seq"]), "detail": json.loads(r["detail"])}) for r in rows)


def test_usage_counts_uses_by_month_object_and_client(session):
    _log(session)
    audit.append(session, "service", "key.sign", "K-1", {"usage": "token", "count": 40},
                 clock=lambda: datetime(2027, 1, 2, tzinfo=UTC))
    audit.append(session, "officer:x", "licence.issue", "L-9", {"type_code": "11100000MB0143028R001"},
                 clock=lambda: datetime(2027, 1, 3, tzinfo=UTC))
    session.commit()
    assert audit_query.usage(session, Query()) == [
        {"month": "2026-12", "action": "licence.query", "object": "", "client": "client:bank", "count": 3},
        {"month": "2026-12", "action": "licence.query", "object": "", "client": "client:tax", "count": 3},
        {"month": "2026-12", "action": "seal.sign", "object": "S-1", "client": "client:bank", "count": 3},
        {"month": "2027-01", "action": "key.sign", "object": "token:K-1", "client": "service", "count": 40},
        {"month": "2027-01", "action": "licence.issue", "object": "11100000MB0143028R001", "client": "officer:x",
         "count": 1}]
    assert [r["month"] for r in audit_query.usage(session, Query(since=datetime(2027, 1, 1, tzinfo=UTC)))] \
        == ["2027-01", "2027-01"]


def test_reading_is_audited(session):
    _log(session)
    audit_query.record_reading(session, "officer:auditor", "search", Query(actor="client:*"), 9)
    session.commit()
    last = session.execute(select(audit.audit_log).order_by(audit.audit_log.c.seq.desc()).limit(1)).one()
    assert (last.actor, last.action, json.loads(last.detail)) == (
        "officer:auditor", "audit.search", {"query": {"actor": "client:*"}, "records": 9})


@pytest.fixture
def app(app):
    """The app of tests/fixtures/api.py with the log of _log in its database."""
    with app.extensions["trust.sessions"]() as session:
        _log(session)
    return app


def _officer(app, roles) -> tuple[dict, str]:
    with app.extensions["trust.sessions"]() as session:
        number = secrets.token_hex(4)
        person = subjects.create_officer(session, username=f"auditor-{number}", password="Correct-Horse-42!",
                                         name="赵审计", staff_number=f"A-{number}", department="省政务服务和数据管理局",
                                         roles=list(roles))
        token, _ = tokens.issue_access_token(session, app.extensions["trust.keystore"], issuer="https://trust.test",
                                             client_id="audit-console", subject=person.id, scopes=["audit:read"])
        session.commit()
    return {"Authorization": f"Bearer {token}"}, f"officer:{person.id}"


def test_the_api_serves_auditors_only_and_audits_their_reading(app):
    client = app.test_client()
    headers, auditor = _officer(app, ["audit-admin"])
    page = client.get("/api/v1/audit?actor=client:*&outcome=refused&limit=2", headers=headers)
    assert page.status_code == 200, page.json
    assert [r["seq"] for r in page.json["records"]] == [2, 7] and page.json["next"] == 7
    assert [r["seq"] for r in client.get("/api/v1/audit?actor=client:*&outcome=refused&after=7",
                                         headers=headers).json["records"]] == [12]
    exported = client.get("/api/v1/audit?format=jsonl&since=2026-12-07T08:00:00%2B08:00&until=2026-12-07T00:05:00Z",
                          headers=headers)
    assert exported.status_code == 200 and exported.mimetype == "application/jsonl"
    lines = [json.loads(line) for line in exported.get_data(as_text=True).splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5] and all(_recomputed(line) for line in lines)
    csv_export = client.get("/api/v1/audit?format=csv&target=K-9", headers=headers)
    assert csv_export.get_data(as_text=True).splitlines()[0] == ",".join(audit_query.CSV_COLUMNS)
    assert client.get("/api/v1/audit?since=yesterday", headers=headers).status_code == 400
    with app.extensions["trust.sessions"]() as session:
        readings = [r for r in audit_query.search(session, Query(action="audit.*"))[0]]
    assert [(r.actor, r.action) for r in readings] == [(auditor, "audit.search"), (auditor, "audit.search"),
                                                       (auditor, "audit.export"), (auditor, "audit.export")]

    used = client.get("/api/v1/audit/usage?until=2026-12-07T01:00:00Z", headers=headers)  # before the tokens
    assert used.status_code == 200 and {(r["action"], r["count"]) for r in used.json["usage"]} == {
        ("licence.query", 3), ("seal.sign", 3)}

    other, _ = _officer(app, ["seal-admin"])
    assert client.get("/api/v1/audit/usage", headers=other).status_code == 403
    refused = client.get("/api/v1/audit", headers=other)
    assert refused.status_code == 403
    assert client.get("/api/v1/audit").status_code == 401


def test_trustctl_audit_search_pages_exports_and_is_audited(tmp_path):
    from tests.serving import clean_env, trustctl
    env = clean_env(TRUST_HOME=str(tmp_path / "home"))
    assert trustctl(env, "init").returncode == 0
    env["TRUST_OFFICER_KEY"] = str(enrol_administrator(tmp_path / "home", "auditor-1", Duty.AUDIT))
    found = trustctl(env, "audit", "search", "--action", "system.*", "--format", "json")
    assert found.returncode == 0, found.stderr
    assert [r["action"] for r in json.loads(found.stdout)["records"]] == ["system.init"]
    exported = trustctl(env, "audit", "search", "--format", "csv", "--until", "2099-01-01T00:00:00Z")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert rows and all(_recomputed({**r, "seq": int(r["seq"]), "detail": json.loads(r["detail"])}) for r in rows)
    assert trustctl(env, "audit", "usage", "--json").returncode == 0
    readings = trustctl(env, "audit", "search", "--action", "audit.*")
    assert all(kind in readings.stdout for kind in ("audit.search", "audit.export", "audit.usage"))
    assert trustctl(env, "audit", "search", "--since", "yesterday").returncode == 1
    assert readings.stdout.count("auditor-1") >= 3  # the auditor is named, not the shell's user
    env["TRUST_OFFICER_KEY"] = str(enrol_administrator(tmp_path / "home", "sysadmin-1", Duty.SYSTEM))
    refused = trustctl(env, "audit", "search")
    assert refused.returncode == 1 and "audit administrator" in refused.stderr
