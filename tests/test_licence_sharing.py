"""licence/sharing.py (issue #17, first slice): consumers registered for types and purposes,
and comparison (比对) over HTTP that answers match / no_match / not_comparable per field,
normalising both sides alike, and never a stored value."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from licence import catalogue, sharing, types
from licence.catalogue import Sharing
from licence.sharing import Outcome

from tests.fixtures.api import APP, audit_records, bearer
from tests.fixtures.licence import PURPOSE, person_bearer, post_licence
from tests.licence_support import BUSINESS, ENTERPRISE_USCC, PERSON_ID, PHYSICIAN, physician_request


def _compare(app, client, body, scopes=("licence:read",)):
    return client.post("/api/v1/licences/compare", json=body, headers=bearer(app, scopes=scopes))


def _stored_values(record: dict) -> set[str]:
    values = {str(v) for v in record["face"].values()} | {record["holder"]["name"], record["holder"]["code"]}
    values |= {text for _key, _label, text in record["printed"]}
    return {v for v in values if len(v) >= 2}


def test_comparison_answers_per_field_and_never_a_stored_value(app, client, consumer):
    issued = post_licence(app, client, physician_request())
    assert issued.status_code == 201, issued.get_data(as_text=True)
    record = issued.get_json()["record"]
    typed = {"name": "王　芳", "holder_name": "王芳", "id_number": PERSON_ID.lower(), "born_on": "1949-12-31",
             "institution": "北京另一医院", "sex": "男", "level": "执业医师", "no_such_field": "x"}
    answer = _compare(app, client, {"holder_code": PERSON_ID.lower(), "type_code": PHYSICIAN, "fields": typed,
                                    "purpose": PURPOSE, "operator": "窗口 3 号 李科员"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    results = {key: value["result"] for key, value in body["fields"].items()}
    assert results == {"name": "match", "holder_name": "match", "id_number": "match", "born_on": "match",
                       "institution": "no_match", "sex": "no_match", "level": "match",
                       "no_such_field": "not_comparable"}
    assert body["licence_id"] == record["licence_id"] and body["status"] == "01"
    text = json.dumps(body, ensure_ascii=False)
    leaked = {value for value in _stored_values(record) if value in text}
    assert not leaked, leaked
    by_id = _compare(app, client, {"licence_id": record["licence_id"], "fields": {"born_on": "1949年12月31日"},
                                   "purpose": PURPOSE}).get_json()
    assert by_id["fields"]["born_on"]["result"] == "no_match" and "reason" in by_id["fields"]["born_on"]
    [(actor, target, details), _] = audit_records(app, "licence.compare")
    assert actor == f"client:{APP}" and target == record["licence_id"]
    assert details["purpose"] == PURPOSE and details["operator"] == "窗口 3 号 李科员"
    assert details["fields"]["institution"] == "no_match"
    assert not {value for value in _stored_values(record) if value in json.dumps(details, ensure_ascii=False)}


def test_a_use_not_registered_is_refused_and_audited(app, client, consumer):
    post_licence(app, client, physician_request())
    fields = {"name": "王芳"}
    named = {"holder_code": PERSON_ID, "type_code": PHYSICIAN, "fields": fields}
    assert _compare(app, client, named).status_code == 400  # no purpose
    refused = _compare(app, client, {**named, "purpose": "好奇"})
    assert refused.status_code == 403 and "purpose" in refused.get_data(as_text=True)
    assert _compare(app, client, {**named, "purpose": PURPOSE}, scopes=("licence:issue",)).status_code == 403
    assert _compare(app, client, {**named, "type_code": BUSINESS, "purpose": PURPOSE}).status_code == 404
    assert _compare(app, client, {"holder_code": ENTERPRISE_USCC, "fields": fields, "purpose": PURPOSE}) \
        .status_code == 400
    assert _compare(app, client, {**named, "purpose": PURPOSE, "fields": {}}).status_code == 400
    with app.extensions["trust.sessions"]() as session:
        sharing.remove_consumer(session, APP, actor="officer-1")
        session.commit()
    assert _compare(app, client, {**named, "purpose": PURPOSE}).status_code == 403
    assert len(list(audit_records(app, "licence.use.refused"))) == 2


def test_a_field_never_shared_is_never_compared(app, issuer):
    with app.extensions["trust.sessions"]() as session:
        physician = types.get(session, PHYSICIAN).licence_type
    closed = replace(physician, fields=tuple(replace(f, sharing=Sharing.NOT_SHARED) if f.key == "id_number" else f
                                             for f in physician.fields))

    class Record:
        record = {"holder": {"name": "王芳", "code": PERSON_ID, "code_type": "111"}, "face": {},
                  "issuer": {"name": "测试卫健委"}, "issue_date": "2026-12-07", "valid_from": "2026-12-07",
                  "valid_to": None}

    result = sharing._outcome(closed, Record, "id_number", PERSON_ID)
    assert result["result"] == Outcome.NOT_COMPARABLE and "never shared" in result["reason"]["en"]
    assert sharing._outcome(physician, Record, "id_number", PERSON_ID)["result"] == Outcome.MATCH


@pytest.mark.parametrize("a, b", [("ＡＢＣ１２３", "abc123"), ("福州 市", "福州市"), ("a\u3000b", "AB")])
def test_full_width_spaces_and_case_compare_alike(a, b):
    assert sharing.comparable_key(a) == sharing.comparable_key(b)


# ---------------------------------------------------------------- query and consent


def _query(app, client, **body):
    return client.post("/api/v1/licences/query", json={"holder_code": PERSON_ID, "purpose": PURPOSE, **body},
                       headers=bearer(app, scopes=("licence:read",)))


def test_conditional_fields_need_the_holders_consent_and_a_field_never_shared_never_appears(app, client, consumer):
    issued = post_licence(app, client, physician_request()).get_json()["record"]
    conditional = {"sex": "女", "born_on": "1949-12-31", "id_number": PERSON_ID}
    before = _query(app, client, operator="窗口 3 号")
    assert before.status_code == 200, before.get_data(as_text=True)
    [licence] = before.get_json()["licences"]
    assert licence["licence_id"] == issued["licence_id"] and licence["fields"]["name"]["value"] == "王芳"
    assert set(conditional).isdisjoint(licence["fields"])
    assert {w["field"]: w["sharing"] for w in licence["withheld"]} == {k: "有条件" for k in conditional}
    assert all("consent" in w["reason"]["en"] for w in licence["withheld"])
    assert "1949-12-31" not in json.dumps(before.get_json(), ensure_ascii=False)

    wallet = person_bearer(app)
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    granted = client.post("/api/v1/wallet/consents", json={"client_id": APP, "purpose": PURPOSE, "until": until},
                          headers=wallet)
    assert granted.status_code == 201, granted.get_data(as_text=True)
    after = _query(app, client).get_json()["licences"][0]
    assert {k: after["fields"][k]["value"] for k in conditional} == conditional and after["withheld"] == []
    other_purpose = _query(app, client, purpose="企业开办").get_json()["licences"][0]
    assert set(conditional).isdisjoint(other_purpose["fields"])  # consent is for one purpose

    # a new version of the type says 性别 is never shared: a licence under it never shows it
    definition = json.loads((Path(catalogue.__file__).parent / "catalogue" / "physician-licence.json").read_text())
    definition["fields"] = [{**f, "sharing": "不予共享"} if f["key"] == "sex" else f for f in definition["fields"]]
    with app.extensions["trust.sessions"]() as session:
        types.import_type(session, json.dumps(definition, ensure_ascii=False).encode(), actor="officer-1")
        session.commit()
    second = post_licence(app, client, physician_request()).get_json()["licence_id"]
    newer = next(found for found in _query(app, client).get_json()["licences"] if found["licence_id"] == second)
    assert "sex" not in newer["fields"] and {"field": "sex", "sharing": "不予共享"}.items() <= \
        next(w for w in newer["withheld"] if w["field"] == "sex").items()

    consent_id = granted.get_json()["id"]
    assert client.delete(f"/api/v1/wallet/consents/{consent_id}", headers=wallet).status_code == 200
    withdrawn = _query(app, client).get_json()["licences"]
    assert all(set(conditional).isdisjoint(licence["fields"]) for licence in withdrawn)
    listed = client.get("/api/v1/wallet/consents", headers=wallet).get_json()["consents"]
    assert [c["withdrawn_at"] is not None for c in listed] == [True]
    released = [details["released"] for _actor, _target, details in audit_records(app, "licence.query")]
    assert "id_number" in released[1][issued["licence_id"]] and "id_number" not in released[0][issued["licence_id"]]
    assert next(d["operator"] for _a, _t, d in audit_records(app, "licence.query")) == "窗口 3 号"
    assert [a for a, _t, _d in audit_records(app, "licence.consent.grant")] == [f"person:{listed[0]['granted_by'][7:]}"]


def test_consents_are_the_holders_own_and_a_query_states_a_registered_purpose(app, client, consumer):
    post_licence(app, client, physician_request())
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    stranger = person_bearer(app, resident_id="110101199003070011")
    for_other = client.post("/api/v1/wallet/consents", json={"holder_code": PERSON_ID, "client_id": APP,
                                                             "purpose": PURPOSE, "until": until}, headers=stranger)
    assert for_other.status_code == 403
    wallet = person_bearer(app)
    for body, status in (({"client_id": APP, "purpose": "好奇", "until": until}, 400),
                         ({"client_id": APP, "purpose": PURPOSE, "until": "next week"}, 400),
                         ({"client_id": APP, "purpose": PURPOSE, "until": "2099-01-01T00:00:00Z"}, 400),
                         ({"client_id": "no-such-app", "purpose": PURPOSE, "until": until}, 400)):
        assert client.post("/api/v1/wallet/consents", json=body, headers=wallet).status_code == status, body
    assert client.post("/api/v1/wallet/consents", json={"client_id": APP, "purpose": PURPOSE, "until": until},
                       headers=bearer(app, scopes=("licence:wallet",))).status_code == 403  # a client, not a person
    assert client.delete("/api/v1/wallet/consents/not-a-consent", headers=wallet).status_code == 404
    assert client.post("/api/v1/licences/query", json={"holder_code": PERSON_ID},
                       headers=bearer(app, scopes=("licence:read",))).status_code == 400
    assert _query(app, client, purpose="好奇").status_code == 403
    assert _query(app, client, type_code="11100000MB0143028R002").status_code == 403  # food: not registered


def test_the_wallet_lists_the_holders_licences_their_files_and_who_used_them(app, client, consumer):
    licence_id = post_licence(app, client, physician_request()).get_json()["licence_id"]
    _query(app, client, operator="窗口 3 号")
    _compare(app, client, {"licence_id": licence_id, "fields": {"name": "王芳"}, "purpose": PURPOSE})
    wallet = person_bearer(app)
    [mine] = client.get("/api/v1/wallet/licences", headers=wallet).get_json()["licences"]
    assert mine["licence_id"] == licence_id and mine["status_zh"] == "有效"
    ofd = client.get(mine["files"]["ofd"], headers=wallet)
    assert ofd.status_code == 200 and ofd.data[:2] == b"PK"
    stranger = person_bearer(app, resident_id="110101199003070011")
    assert client.get("/api/v1/wallet/licences", headers=stranger).get_json()["licences"] == []
    assert client.get(mine["files"]["ofd"], headers=stranger).status_code == 404
    uses = client.get("/api/v1/wallet/uses", headers=wallet).get_json()["uses"]
    assert [(u["action"], u["client_id"], u["purpose"]) for u in uses] == [("compare", APP, PURPOSE),
                                                                            ("query", APP, PURPOSE)]
    assert uses[1]["operator"] == "窗口 3 号" and uses[0]["fields"] == ["name"]
    with app.extensions["trust.sessions"]() as session:
        assert sharing.usage(session, "consumer") == [(APP, 2)]
        assert sharing.usage(session, "type") == [(PHYSICIAN, 2)]
        [(month, count)] = sharing.usage(session, "month")
        assert len(month) == 7 and count == 2


def test_autofill_needs_the_holders_consent_and_names_its_source(app, client, consumer):
    licence_id = post_licence(app, client, physician_request()).get_json()["licence_id"]
    body = {"holder_code": PERSON_ID, "type_code": PHYSICIAN, "purpose": PURPOSE}
    headers = bearer(app, scopes=("licence:read",))
    refused = client.post("/api/v1/licences/autofill", json=body, headers=headers)
    assert refused.status_code == 403 and "consent" in refused.get_data(as_text=True)
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.post("/api/v1/wallet/consents", json={"client_id": APP, "purpose": PURPOSE, "until": until},
                       headers=person_bearer(app)).status_code == 201
    filled = client.post("/api/v1/licences/autofill", json=body, headers=headers).get_json()
    assert filled["provenance"]["licence_id"] == licence_id
    assert filled["form"]["id_number"] == PERSON_ID and filled["form"]["born_on"] == "1949-12-31"
    assert filled["labels"]["name"] == "姓名"


def test_the_wallets_consent_form_needs_its_csrf_token_and_a_login(app, client):
    assert client.post("/wallet/consents", data={"consumer": f"{APP}|{PURPOSE}", "holder": PERSON_ID,
                                                 "days": "30"}).status_code == 401  # no CSRF token
    page = client.get("/wallet")
    assert page.status_code == 303 and page.headers["Location"].startswith("/login")
