"""licence/sharing.py (issue #17, first slice): consumers registered for types and purposes,
and comparison (比对) over HTTP that answers match / no_match / not_comparable per field,
normalising both sides alike, and never a stored value."""

import json
from dataclasses import replace

import pytest

from licence import sharing, types
from licence.catalogue import Sharing
from licence.sharing import Outcome
from tests.licence_support import ENTERPRISE_USCC, PERSON_ID, PHYSICIAN, BUSINESS, physician_request
from tests.test_licence_api import _issue, issuer  # noqa: F401 (fixture)
from tests.test_seal_api import APP, app, audit_records, bearer, client, world  # noqa: F401 (fixtures)

PURPOSE = "医疗机构执业登记"


@pytest.fixture
def consumer(app, issuer):  # noqa: F811
    with app.extensions["trust.sessions"]() as session:
        sharing.add_consumer(session, APP, types=[PHYSICIAN, BUSINESS], purposes=[PURPOSE, "企业开办"], actor="officer-1")
        session.commit()


def _compare(app, client, body, scopes=("licence:read",)):  # noqa: F811
    return client.post("/api/v1/licences/compare", json=body, headers=bearer(app, scopes=scopes))


def _stored_values(record: dict) -> set[str]:
    values = {str(v) for v in record["face"].values()} | {record["holder"]["name"], record["holder"]["code"]}
    values |= {text for _key, _label, text in record["printed"]}
    return {v for v in values if len(v) >= 2}


def test_comparison_answers_per_field_and_never_a_stored_value(app, client, consumer):  # noqa: F811
    issued = _issue(app, client, physician_request())
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


def test_a_use_not_registered_is_refused_and_audited(app, client, consumer):  # noqa: F811
    _issue(app, client, physician_request())
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


def test_a_field_never_shared_is_never_compared(app, issuer):  # noqa: F811
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
