"""The licence HTTP API and the public page over Flask's test client, with real access
tokens, a real KeyStore, a seal made by seal.making and the trust store trusting its root
for licences."""

import io
import secrets
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from identity import subjects
from licence import registry
from licence.models import licences
from trust import db, truststore
from trust.hashes import sm3

from tests.fixtures.api import bearer, problem
from tests.fixtures.licence import post_licence
from tests.fixtures.seal import USCC
from tests.licence_support import (
    PERSON_ID,
    business_request,
    issue as issue_elsewhere,
    make_authority,
    physician_request,
)


def _verify_file(client, data):
    return client.post("/api/v1/verify", data={"file": (io.BytesIO(data), "licence.ofd")},
                       content_type="multipart/form-data")


def test_issue_fetch_verify_revoke_and_the_page_says_so(app, client, issuer):
    issued = post_licence(app, client, key="k-1")
    assert issued.status_code == 201, issued.get_data(as_text=True)
    body = issued.get_json()
    licence_id = body["licence_id"]
    assert issued.headers["Location"] == f"/api/v1/licences/{licence_id}"
    assert body["status"] == "01" and body["versions"] == [licence_id] and body["history"][0]["operation"] == "01"

    fetched = client.get(f"/api/v1/licences/{licence_id}/ofd", headers=bearer(app, scopes=("licence:issue",)))
    assert fetched.status_code == 200 and sm3(fetched.data).hex() == body["ofd_sm3"]
    report = _verify_file(client, fetched.data).get_json()
    assert report["status"] == "VALID", report
    assert report["licence"]["licence_id"] == licence_id
    assert [c["check"] for c in report["signatures"][0]["checks"]][-1] == "licence_status"

    page = client.get(f"/v/{licence_id}")
    assert page.status_code == 200 and "有效" in page.get_data(as_text=True)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    seal = client.get(f"/v/{licence_id}/seal")
    assert seal.status_code == 200 and seal.mimetype == "image/png"

    revoked = client.post(f"/api/v1/licences/{licence_id}/revoke", json={"reason": "严重违法"},
                          headers=bearer(app, scopes=("licence:issue",)))
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "07"
    again = _verify_file(client, fetched.data).get_json()
    assert again["status"] == "INVALID" and again["licence"]["status"] == "07"
    by_id = client.post("/api/v1/verify", json={"licence_id": licence_id}).get_json()
    assert by_id["status"] == "INVALID"
    assert "已吊销" in client.get(f"/v/{licence_id}").get_data(as_text=True)


def test_idempotency_over_http(app, client, issuer):
    first = post_licence(app, client, key="same")
    repeat = post_licence(app, client, key="same")
    assert (first.status_code, repeat.status_code) == (201, 200)
    assert repeat.get_json()["licence_id"] == first.get_json()["licence_id"]
    other = business_request(face={**business_request()["face"], "legal_representative": "李四"})
    problem(post_licence(app, client, other, key="same"), 409, "idempotency_conflict")


def test_twenty_concurrent_identical_requests_yield_one_licence(app, issuer):
    def one(_):
        with app.test_client() as c:
            return post_licence(app, c, key="burst")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(20)))
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert len({a.get_json()["licence_id"] for a in answers}) == 1
    with app.extensions["trust.sessions"]() as session:
        assert session.execute(select(func.count()).select_from(licences)).scalar() == 1


def test_bad_requests_are_problems_naming_the_fields(app, client, issuer):
    bad = problem(post_licence(app, client, business_request(face={"entity_type": "黑帮"})), 400, "invalid_face")
    fields = {e["field"] for e in bad["errors"]}
    assert {"entity_type", "established_on", "business_scope"} <= fields
    assert all(e["zh"] and e["en"] for e in bad["errors"])
    problem(post_licence(app, client, business_request(type_code="11100000MB0143028R999")), 404, "not_found")
    problem(post_licence(app, client, client_id="other-app"), 403, "permission_denied")
    problem(client.post("/api/v1/licences", json=business_request(), headers=bearer(app, scopes=("seal:sign",))),
            403, "permission_denied")
    problem(client.post("/api/v1/licences", json=business_request()), 401, "unauthenticated")
    problem(_verify_file(client, b"%PDF-1.7 not yet"), 400, "invalid_input")
    problem(_verify_file(client, b"hello"), 400, "invalid_input")
    problem(_verify_file(client, b"PK\x03\x04broken"), 400, "invalid_input")
    problem(client.post("/api/v1/verify", json={"licence_id": "1.2.156.3005.2.A.B.C.001.X"}), 400,
            "invalid_licence_id")
    with app.extensions["trust.sessions"]() as session:
        assert session.execute(select(func.count()).select_from(licences)).scalar() == 0


def test_who_sees_and_acts_on_a_licence(app, client, issuer):
    licence_id = post_licence(app, client).get_json()["licence_id"]
    other = bearer(app, client_id="other-app", scopes=("licence:issue",))
    problem(client.get(f"/api/v1/licences/{licence_id}", headers=other), 403, "permission_denied")
    problem(client.post(f"/api/v1/licences/{licence_id}/suspend", json={"reason": "x"}, headers=other), 403,
            "permission_denied")
    listed = client.get(f"/api/v1/licences?issuer={USCC}",
                        headers=_officer_with(app, "licence:manage"))
    assert listed.status_code == 200 and [r["licence_id"] for r in listed.get_json()["licences"]] == [licence_id]
    suspended = client.post(f"/api/v1/licences/{licence_id}/suspend", json={"reason": "核查中"},
                            headers=_officer_with(app, "licence:manage"))
    assert suspended.status_code == 200 and suspended.get_json()["status"] == "02"
    assert "已暂扣" in client.get(f"/v/{licence_id}").get_data(as_text=True)
    problem(client.post(f"/api/v1/licences/{licence_id}/suspend", json={"reason": "again"},
                        headers=bearer(app, scopes=("licence:issue",))), 400, "illegal_transition")


def _officer_with(app, scope):
    with app.extensions["trust.sessions"]() as session:
        number = secrets.token_hex(4)
        person = subjects.create_officer(session, username=f"lic-{number}", password="Correct-Horse-42!",
                                         name="李科长", staff_number=f"L-{number}", department="市场监管局",
                                         roles=["licence-admin"])
        session.commit()
    return bearer(app, client_id="officer-console", subject=person.id, scopes=(scope,))


def test_a_change_over_http_supersedes(app, client, issuer):
    first = post_licence(app, client).get_json()["licence_id"]
    changed = client.post(f"/api/v1/licences/{first}/change", json={"reason": "住所变更", "face": {"domicile": "新址1号"}},
                          headers=bearer(app, scopes=("licence:issue",)))
    assert changed.status_code == 201, changed.get_data(as_text=True)
    second = changed.get_json()
    assert second["versions"] == [first, second["licence_id"]] and second["supersedes"] == first
    old = client.post("/api/v1/verify", json={"licence_id": first}).get_json()
    assert old["status"] == "INVALID" and old["licence"]["superseded_by"] == second["licence_id"]
    page = client.get(f"/v/{first}").get_data(as_text=True)
    assert "已变更" in page and second["licence_id"] in page


def test_the_page_masks_a_person_offers_a_companys_files_and_404s_the_unknown(app, client, issuer):
    licence_id = post_licence(app, client, physician_request()).get_json()["licence_id"]
    page = client.get(f"/v/{licence_id}").get_data(as_text=True)
    assert "王*" in page and "王芳" not in page and PERSON_ID not in page and "1101**********002X" not in page
    assert "110110000012345" not in page
    assert "licence.ofd" not in page and "不提供公开下载" in page  # a person's file is not offered
    for kind in ("ofd", "pdf"):
        assert client.get(f"/v/{licence_id}/licence.{kind}").status_code == 404
    company = post_licence(app, client).get_json()["licence_id"]
    page = client.get(f"/v/{company}").get_data(as_text=True)
    assert f"/v/{company}/licence.ofd" in page and "licence.pdf" not in page  # this issuer has no PDF key
    offered = client.get(f"/v/{company}/licence.ofd")
    assert offered.status_code == 200 and offered.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"/v/{company}/licence.pdf").status_code == 404
    for unknown in ("1.2.156.3005.2.11100000MB0143028R001.X.Y.001.0", "not-an-id", "1.2.156.3005.2.A.B.C.001.X"):
        missing = client.get(f"/v/{unknown}")
        assert missing.status_code == 404 and "查无此证" in missing.get_data(as_text=True)


def test_another_provinces_licence_verifies_once_its_root_is_trusted_for_licences(app, client, issuer, tmp_path):
    """Another province: its own hierarchy, seal and registry in a database of its own."""
    (tmp_path / "other").mkdir()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'other-province.db'}")
    db.upgrade(engine)
    try:
        with db.session_factory(engine)() as session:
            other = make_authority(session, tmp_path / "other")
            record, _ = issue_elsewhere(other, business_request())
            session.commit()
            data = registry.ofd_file(session, record.licence_id)
            other_root = other.world.root
    finally:
        engine.dispose()
    before = _verify_file(client, data).get_json()
    assert before["status"] == "INDETERMINATE" and not before["licence"]["registered"]
    chain = next(c for c in before["signatures"][0]["checks"] if c["check"] == "chain")
    assert chain["status"] == "INDETERMINATE" and "Seal Test Root" in chain["reason"]["en"]
    with app.extensions["trust.sessions"]() as session:
        truststore.import_roots(session, "licence", other_root.cert_der, actor="test")
        session.commit()
    after = _verify_file(client, data).get_json()
    assert after["status"] == "VALID", after
    assert any("ask the issuer" in w["en"] for w in after["warnings"])
    statuses = {c["check"]: c["status"] for c in after["signatures"][0]["checks"]}
    assert statuses["licence_status"] == "NOT_APPLICABLE" and statuses["chain"] == "PASSED"
