"""licence/share_requests.py over HTTP (issue #17): a consumer asks the issuing department for
a licence's 有条件 fields; the request waits as pending with its age; only an officer of the
issuing department answers; an approval releases the fields for its purpose and period, a
refusal does not; every step is audited."""

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from identity import subjects
from licence import share_requests, sharing

from tests.fixtures.api import APP, audit_records, bearer
from tests.fixtures.licence import PURPOSE, person_bearer, post_licence
from tests.fixtures.seal import HOLDER
from tests.licence_support import BUSINESS, PERSON_ID, PHYSICIAN, business_request, physician_request

CONDITIONAL = {"sex", "born_on", "id_number"}


def _officer(app, department: str, roles=("licence-admin",)) -> dict:
    with app.extensions["trust.sessions"]() as session:
        number = secrets.token_hex(4)
        person = subjects.create_officer(session, username=f"officer-{number}", password="Correct-Horse-42!",
                                         name="李处长", staff_number=f"S-{number}", department=department,
                                         roles=list(roles))
        session.commit()
    return bearer(app, client_id="officer-console", subject=person.id, scopes=("licence:manage",))


def _consumer_headers(app):
    return bearer(app, scopes=("licence:read",))


def _ask(app, client, **body):
    return client.post("/api/v1/licences/requests", headers=_consumer_headers(app), json={
        "holder_code": PERSON_ID, "type_code": PHYSICIAN, "purpose": PURPOSE, "reason": "核验医师执业资格",
        "days": 7, **body})


def _released(app, client, purpose=PURPOSE) -> tuple[set[str], str | None]:
    [licence] = client.post("/api/v1/licences/query", headers=_consumer_headers(app), json={
        "holder_code": PERSON_ID, "type_code": PHYSICIAN, "purpose": purpose}).get_json()["licences"]
    return set(licence["fields"]), licence["conditional_basis"]


def test_the_issuing_departments_approval_releases_conditional_fields_for_its_purpose(app, client, consumer):
    licence_id = post_licence(app, client, physician_request()).get_json()["licence_id"]
    assert CONDITIONAL.isdisjoint(_released(app, client)[0])
    asked = _ask(app, client, operator="窗口 5 号")
    assert asked.status_code == 201, asked.get_data(as_text=True)
    request = asked.get_json()
    assert request["status"] == "pending" and request["licence_id"] == licence_id and request["age_seconds"] >= 0
    assert _ask(app, client).get_json()["id"] == request["id"]  # asked again: the same request
    assert CONDITIONAL.isdisjoint(_released(app, client)[0])  # pending releases nothing

    stranger = _officer(app, "另一个局")
    assert client.get("/api/v1/licences/requests", headers=stranger).get_json()["requests"] == []
    refused = client.post(f"/api/v1/licences/requests/{request['id']}/approve", json={"answer": "同意"},
                          headers=stranger)
    assert refused.status_code == 403
    assert client.post(f"/api/v1/licences/requests/{request['id']}/approve", json={"answer": "同意"},
                       headers=_officer(app, HOLDER, roles=("seal-admin",))).status_code == 403  # not the role
    department = _officer(app, HOLDER)
    [queued] = client.get("/api/v1/licences/requests?status=pending", headers=department).get_json()["requests"]
    assert queued["id"] == request["id"] and queued["reason"] == "核验医师执业资格" and "age_seconds" in queued
    approved = client.post(f"/api/v1/licences/requests/{request['id']}/approve", json={"answer": "同意，限本次审批使用"},
                           headers=department)
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert approved.get_json()["status"] == "approved" and approved.get_json()["active"] is True
    again = client.post(f"/api/v1/licences/requests/{request['id']}/refuse", json={"answer": "不同意"},
                        headers=department)
    assert again.status_code == 400  # answered already

    fields, basis = _released(app, client)
    assert CONDITIONAL <= fields and basis == "approval"
    assert CONDITIONAL.isdisjoint(_released(app, client, purpose="企业开办")[0])  # for its purpose only
    mine = client.get(f"/api/v1/licences/requests/{request['id']}", headers=_consumer_headers(app)).get_json()
    assert mine["status"] == "approved" and mine["answer"] == "同意，限本次审批使用"
    assert client.get(f"/api/v1/licences/requests/{request['id']}",
                      headers=bearer(app, client_id="other-app", scopes=("licence:read",))).status_code == 404

    wallet = client.get("/api/v1/wallet/requests", headers=person_bearer(app)).get_json()["requests"]
    assert [(r["id"], r["status"], r["answer"]) for r in wallet] == [(request["id"], "approved", "同意，限本次审批使用")]

    [(actor, target, details)] = audit_records(app, "licence.request")
    assert actor == f"client:{APP}" and target == licence_id
    assert details["purpose"] == PURPOSE and details["operator"] == "窗口 5 号" and details["reason"] == "核验医师执业资格"
    [(actor, _target, details)] = audit_records(app, "licence.request.approve")
    assert actor.startswith("officer:") and details["client_id"] == APP and details["purpose"] == PURPOSE
    assert len(audit_records(app, "licence.request.denied")) == 1
    last_query = audit_records(app, "licence.query")[-2][2]  # the one for PURPOSE, before 企业开办
    assert last_query["approved"] == [licence_id] and CONDITIONAL <= set(last_query["released"][licence_id])


def test_an_approval_runs_out_and_a_refusal_releases_nothing(app, client, consumer):
    post_licence(app, client, physician_request())
    now = datetime.now(UTC)
    with app.extensions["trust.sessions"]() as session:
        body = {"holder_code": PERSON_ID, "type_code": PHYSICIAN, "purpose": PURPOSE, "reason": "核验资格", "days": 1}
        asked = share_requests.submit(session, APP, body, clock=lambda: now)
        share_requests.answer(session, asked.id, approve=True, words="同意", actor="officer:x", clock=lambda: now)
        query = {"holder_code": PERSON_ID, "type_code": PHYSICIAN, "purpose": PURPOSE}
        [during] = sharing.query(session, APP, query, clock=lambda: now + timedelta(hours=23))["licences"]
        [after] = sharing.query(session, APP, query, clock=lambda: now + timedelta(days=1, seconds=1))["licences"]
        assert CONDITIONAL <= set(during["fields"]) and CONDITIONAL.isdisjoint(after["fields"])
        assert {w["field"] for w in after["withheld"]} == CONDITIONAL
        renewed = share_requests.submit(session, APP, body, clock=lambda: now + timedelta(days=2))
        assert renewed.id != asked.id and renewed.status == "pending"  # the approval ran out: a new request
        refused = share_requests.answer(session, renewed.id, approve=False, words="理由不充分", actor="officer:x",
                                        clock=lambda: now + timedelta(days=2))
        assert refused.status == "refused" and refused.until is None
        [later] = sharing.query(session, APP, query, clock=lambda: now + timedelta(days=2, hours=1))["licences"]
        assert CONDITIONAL.isdisjoint(later["fields"]) and later["conditional_basis"] is None
        session.commit()
    assert len(audit_records(app, "licence.request.refuse")) == 1


@pytest.mark.parametrize("body, status", [
    ({"reason": ""}, 400),
    ({"days": 0}, 400),
    ({"days": 367}, 400),
    ({"days": True}, 400),
    ({"purpose": "好奇"}, 403),
    ({"unexpected": 1}, 400),
    ({"type_code": BUSINESS}, 404),  # the holder has no business licence
])
def test_a_bad_request_is_refused_clearly(app, client, consumer, body, status):
    post_licence(app, client, physician_request())
    answer = _ask(app, client, **body)
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.get_json()["detail"]


def test_a_type_without_conditional_fields_needs_no_request(app, client, consumer):
    licence_id = post_licence(app, client, business_request()).get_json()["licence_id"]
    answer = client.post("/api/v1/licences/requests", headers=_consumer_headers(app), json={
        "licence_id": licence_id, "purpose": PURPOSE, "reason": "核验"})
    assert answer.status_code == 400 and "no conditionally shared field" in answer.get_data(as_text=True)
