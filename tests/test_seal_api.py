"""The seal HTTP API over Flask's test client, with real access tokens, a real KeyStore and
seals made by seal.making.

Oracles: `openssl asn1parse` reads what the API returns and `openssl pkeyutl` verifies the
SM2 signature inside it against the certificate embedded in it.
"""

import base64
import io
import json
from dataclasses import replace

import pytest
from asn1crypto import pem
from hypothesis import HealthCheck, given, settings, strategies as st

from bench.server import free_port
from ca import authority
from hsm import officers
from seal import registry, signing
from seal.ses import parse_signature
from trust import truststore
from trust.hashes import sm3

from tests.fixtures.api import APP, audit_records, bearer, officer, problem
from tests.fixtures.seal import USCC, new_seal
from tests.oracles import openssl

DATA = "准予行政许可决定书 decision No. 7".encode()


def sign(client, es_id, headers, **body):
    body.setdefault("purpose", "行政许可 licensing decision")
    return client.post(f"/api/v1/seals/{es_id}/sign", json=body, headers=headers)


def verify(client, signature: bytes, **parts):
    form = {"signature": (io.BytesIO(signature), "signature.ses")}
    for name, value in parts.items():
        form[name] = (io.BytesIO(value), name) if isinstance(value, bytes) else value
    response = client.post("/api/v1/verify/ses", data=form, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def checks(report) -> dict:
    (signature,) = report["signatures"]
    return {c["check"]: c["status"] for c in signature["checks"]}


# ---------------------------------------------------------------- signing

def test_sign_a_digest_and_openssl_verifies_it(app, client, api_world, tmp_path):
    record = new_seal(api_world, clients=[APP])
    response = sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex())
    assert response.status_code == 200, response.get_data(as_text=True)
    der = base64.b64decode(response.get_json()["signature"])
    ses = parse_signature(der)
    assert ses.data_hash == sm3(DATA) and ses.seal.raw == record.seal and ses.cert == api_world.holder_cert

    (tmp_path / "sig.ses").write_bytes(der)
    openssl("asn1parse", "-inform", "DER", "-in", tmp_path / "sig.ses")
    (tmp_path / "tbs.der").write_bytes(ses.tbs_raw)
    (tmp_path / "sig.der").write_bytes(ses.signature)
    (tmp_path / "signer.pem").write_bytes(pem.armor("CERTIFICATE", ses.cert))
    openssl("x509", "-in", tmp_path / "signer.pem", "-pubkey", "-noout", "-out", tmp_path / "signer.pub")
    done = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "signer.pub", "-rawin", "-digest", "sm3",
                   "-pkeyopt", "distid:1234567812345678", "-in", tmp_path / "tbs.der", "-sigfile", tmp_path / "sig.der")
    assert b"Signature Verified Successfully" in done.stdout

    [(actor, target, detail)] = audit_records(app, "seal.sign")
    assert (actor, target) == (f"client:{APP}", record.es_id)
    assert detail["purpose"] == "行政许可 licensing decision" and detail["data_hash"] == sm3(DATA).hex()


@pytest.mark.parametrize("field, value", [
    ("data", base64.b64encode(DATA).decode()),
    ("digest", base64.b64encode(sm3(DATA)).decode()),
    ("digest", base64.urlsafe_b64encode(sm3(DATA)).decode().rstrip("=")),
    ("digest", sm3(DATA).hex().upper()),
])
def test_data_or_digest_in_each_encoding(app, client, api_world, field, value):
    record = new_seal(api_world, clients=[APP])
    response = sign(client, record.es_id, bearer(app), **{field: value})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert parse_signature(base64.b64decode(response.get_json()["signature"])).data_hash == sm3(DATA)


def test_operator_is_the_token_subject(app, client, api_world):
    record = new_seal(api_world, clients=[APP], operators=["c" * 32])
    assert sign(client, record.es_id, bearer(app, subject="c" * 32), data=base64.b64encode(DATA).decode()) \
        .status_code == 200
    problem(sign(client, record.es_id, bearer(app, subject="d" * 32), data=base64.b64encode(DATA).decode()),
            403, "permission_denied")
    problem(sign(client, record.es_id, bearer(app), data=base64.b64encode(DATA).decode()), 403, "permission_denied")
    assert [actor for actor, _, _ in audit_records(app, "seal.sign")] == [f"client:{APP}/operator:{'c' * 32}"]
    assert len(audit_records(app, "seal.refuse")) == 2


def test_a_tsa_url_is_refused_so_the_server_fetches_nothing_a_caller_names(app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    problem(sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex(), timestamp="http://127.0.0.1:9/tsa"),
            400, "invalid_input")


def test_a_local_time_stamp_from_our_tsa(app, client, api_world):
    """With our SM2 TSA set up (as `trustctl init --demo` does), the signature carries a
    token over its signature value that verifies under the TSA's root; without it, 404."""
    record = new_seal(api_world, clients=[APP])
    body = {"digest": sm3(DATA).hex(), "purpose": "p", "timestamp": "local"}
    problem(client.post(f"/api/v1/seals/{record.es_id}/sign", json=body, headers=bearer(app)), 404, "not_found")

    session, keystore = api_world.session, api_world.keystore
    credentials = []
    for i in (1, 2):
        credential, _ = officers.new_credential()
        officers.enrol(session, f"officer-{i}", f"安全员{i}", credential.private_key.public_key().to_pem(),
                       actor="test")
        credentials.append(credential)
    root, _ = authority.create_hierarchy(session, keystore, "sm2", "sm2", approval=credentials, actor="test")
    authority.issue_with_new_key(session, keystore, "sm2-issuing", "tsa", subject={"C": "CN", "O": "Test", "CN": "TSA"},
                                 label="tsa/sm2-issuing", actor="test")
    truststore.import_roots(session, "seal", root.certificate, actor="test")
    session.commit()

    response = client.post(f"/api/v1/seals/{record.es_id}/sign", json=body, headers=bearer(app))
    assert response.status_code == 200, response.get_data(as_text=True)
    der = base64.b64decode(response.get_json()["signature"])
    assert parse_signature(der).time_stamp is not None
    report = verify(client, der, data=DATA)
    # The token verifies; its TSA's certificate names revocation services on https://trust.test,
    # which nothing here serves: as for a signer, that is INDETERMINATE, try later (#24).
    (timestamp,) = [c for c in report["signatures"][0]["checks"] if c["check"] == "timestamp"]
    assert timestamp["status"] == "INDETERMINATE" and timestamp["code"] == "TRY_LATER", report
    assert "verifies" in timestamp["reason"]["en"] and report["status"] == "INDETERMINATE"


def test_an_external_time_stamp_from_the_configured_tsa(app, client, api_world, openssl_tsa):
    """TRUST_TSA_URL names the province's TSA (here `openssl ts -reply`); "external" uses it,
    and only it: without one configured the request is 400."""
    record = new_seal(api_world, clients=[APP])
    body = {"digest": sm3(DATA).hex(), "purpose": "p", "timestamp": "external"}
    problem(client.post(f"/api/v1/seals/{record.es_id}/sign", json=body, headers=bearer(app)), 400, "invalid_input")
    settings = app.extensions["trust.settings"]
    app.extensions["trust.settings"] = replace(settings, tsa_url=f"http://127.0.0.1:{free_port()}/tsa")  # nobody there
    problem(client.post(f"/api/v1/seals/{record.es_id}/sign", json=body, headers=bearer(app)), 503, "tsa_unavailable")
    app.extensions["trust.settings"] = replace(settings, tsa_url=openssl_tsa.url)
    response = client.post(f"/api/v1/seals/{record.es_id}/sign", json=body, headers=bearer(app))
    assert response.status_code == 200, response.get_data(as_text=True)
    der = base64.b64decode(response.get_json()["signature"])
    assert parse_signature(der).time_stamp is not None and openssl_tsa.requests == 1
    truststore.import_roots(api_world.session, "seal", openssl_tsa.root_pem.encode(), actor="test")
    api_world.session.commit()
    report = verify(client, der, data=DATA)
    assert checks(report)["timestamp"] == "PASSED" and report["status"] == "VALID", report


@pytest.mark.parametrize("body", [
    {"digest": "ab" * 31}, {"digest": "ab" * 33}, {"digest": "not base64 at all!"}, {"digest": 42},
    {"data": "%%%"}, {"data": base64.b64encode(DATA).decode(), "digest": sm3(DATA).hex()}, {},
    {"digest": sm3(DATA).hex(), "purpose": ""}, {"digest": sm3(DATA).hex(), "purpose": "x" * 201},
])
def test_bad_sign_requests_are_400(app, client, api_world, body):
    record = new_seal(api_world, clients=[APP])
    body.setdefault("purpose", "p")
    problem(client.post(f"/api/v1/seals/{record.es_id}/sign", json=body, headers=bearer(app)), 400, "invalid_input")


NEAR_MISSES = st.sampled_from([sm3(DATA).hex(), base64.b64encode(sm3(DATA)).decode(), "ab" * 31, "ab" * 33,
                               base64.b64encode(DATA).decode(), "none", "local", "用章事由"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=80) | NEAR_MISSES,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=6)


@pytest.fixture
def seal_and_token(app, api_world):
    return new_seal(api_world, clients=[APP]).es_id, bearer(app)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["digest", "data", "digests", "purpose", "timestamp"]), JSON),
       path=st.sampled_from(["sign", "sign-batch"]))
def test_any_json_body_is_answered_never_a_crash(client, seal_and_token, body, path):
    es_id, token = seal_and_token
    response = client.post(f"/api/v1/seals/{es_id}/{path}", json=body, headers=token)
    if response.status_code == 404:  # a time stamp asked for, and no TSA set up here
        problem(response, 404, "not_found")
        assert body.get("timestamp") == "local"
    elif response.status_code != 200:
        problem(response, 400, "invalid_input")


def test_a_body_that_is_not_a_json_object_is_400(app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    for body in (b"[1]", b"{", b"\xff"):
        problem(client.post(f"/api/v1/seals/{record.es_id}/sign", data=body, content_type="application/json",
                            headers=bearer(app)), 400, "invalid_input")


# ---------------------------------------------------------------- who may sign

def test_no_token_is_401(app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    response = sign(client, record.es_id, {}, digest=sm3(DATA).hex())
    problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_client_without_seal_sign_is_403_and_audited(app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    response = sign(client, record.es_id, bearer(app, scopes=("licence:read",)), digest=sm3(DATA).hex())
    problem(response, 403, "permission_denied")
    assert "insufficient_scope" in response.headers["WWW-Authenticate"]
    [(actor, target, detail)] = audit_records(app, "api.refused")
    assert actor == APP and target == f"/api/v1/seals/{record.es_id}/sign" and detail["code"] == "permission_denied"
    assert audit_records(app, "seal.sign") == []


def test_a_client_not_authorised_for_the_seal_is_403_and_audited(app, client, api_world):
    record = new_seal(api_world, clients=["other-app"])
    problem(sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex()), 403, "permission_denied")
    batch = client.post(f"/api/v1/seals/{record.es_id}/sign-batch", json={"digests": [sm3(DATA).hex()],
                                                                          "purpose": "p"}, headers=bearer(app))
    problem(batch, 403, "permission_denied")
    refusals = audit_records(app, "seal.refuse")
    assert [(actor, target) for actor, target, _ in refusals] == [(f"client:{APP}", record.es_id)] * 2
    assert refusals[0][2]["code"] == "permission_denied"


@pytest.mark.parametrize("status", ["revoked", "suspended"])
def test_a_revoked_or_suspended_seal_cannot_sign(app, client, api_world, status):
    record = new_seal(api_world, clients=[APP])
    action = "revoke" if status == "revoked" else "suspend"
    done = client.post(f"/api/v1/seals/{record.es_id}/{action}", json={"reason": "机构撤并 merged"},
                       headers=officer(app))
    assert done.status_code == 200 and done.get_json()["status"] == status
    problem(sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex()), 403, "seal_not_active")
    [(_, _, detail)] = audit_records(app, "seal.refuse")
    assert detail["code"] == "seal_not_active"


def test_an_unknown_seal_is_404(app, client, api_world):
    problem(sign(client, "3501000000000000001", bearer(app), digest=sm3(DATA).hex()), 404, "not_found")


# ---------------------------------------------------------------- batches

def test_a_batch_of_1000(app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    digests = [sm3(i.to_bytes(4, "big")) for i in range(signing.MAX_BATCH)]
    response = client.post(f"/api/v1/seals/{record.es_id}/sign-batch", headers=bearer(app),
                           json={"digests": [d.hex() for d in digests], "purpose": "批量办结 batch results"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["count"] == len(body["signatures"]) == signing.MAX_BATCH
    signatures = [parse_signature(base64.b64decode(s)) for s in body["signatures"]]
    assert [s.data_hash for s in signatures] == digests
    assert len({s.signature for s in signatures}) == signing.MAX_BATCH
    for index in (0, 499, 999):
        report = verify(client, signatures[index].raw, digest=digests[index].hex())
        assert report["status"] == "VALID", report
    [(actor, _, detail)] = audit_records(app, "seal.sign-batch")
    assert actor == f"client:{APP}" and detail["count"] == signing.MAX_BATCH
    assert detail["purpose"] == "批量办结 batch results"


def test_batch_refusal_and_revocation_on_each_database(db_url, app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    digests = [sm3(bytes([i])).hex() for i in range(10)]
    batch = client.post(f"/api/v1/seals/{record.es_id}/sign-batch", headers=bearer(app),
                        json={"digests": digests, "purpose": "p"})
    assert batch.status_code == 200 and batch.get_json()["count"] == 10
    problem(client.post(f"/api/v1/seals/{record.es_id}/sign-batch", headers=bearer(app, client_id="intruder"),
                        json={"digests": digests, "purpose": "p"}), 403, "permission_denied")
    done = client.post("/api/v1/seals/revoke", json={"es_ids": [record.es_id], "reason": "撤并 merged"},
                       headers=officer(app))
    assert done.get_json()["revoked"] == [record.es_id]
    problem(client.post(f"/api/v1/seals/{record.es_id}/sign-batch", headers=bearer(app),
                        json={"digests": digests, "purpose": "p"}), 403, "seal_not_active")
    assert [detail["code"] for _, _, detail in audit_records(app, "seal.refuse")] == \
        ["permission_denied", "seal_not_active"]
    assert [detail["count"] for _, _, detail in audit_records(app, "seal.sign-batch")] == [10]


@pytest.mark.parametrize("digests", [[], ["ab" * 32] * 1001, "ab" * 32, ["ab" * 32, "ab" * 31]])
def test_bad_batches_are_400(app, client, api_world, digests):
    record = new_seal(api_world, clients=[APP])
    response = client.post(f"/api/v1/seals/{record.es_id}/sign-batch", headers=bearer(app),
                           json={"digests": digests, "purpose": "p"})
    problem(response, 400, "invalid_input")


# ---------------------------------------------------------------- verifying

def test_verify_with_data_digest_and_neither(app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    der = base64.b64decode(sign(client, record.es_id, bearer(app), data=base64.b64encode(DATA).decode())
                           .get_json()["signature"])
    report = verify(client, der, data=DATA)
    assert report["status"] == "VALID" and report["format"] == "ses", report
    assert report["signatures"][0]["seal"]["esID"] == record.es_id
    assert verify(client, der, digest=base64.b64encode(sm3(DATA)).decode())["status"] == "VALID"

    altered = verify(client, der, data=DATA + b".")
    assert altered["status"] == "INVALID" and checks(altered)["integrity"] == "FAILED"
    neither = verify(client, der)
    assert neither["status"] == "INDETERMINATE" and checks(neither)["integrity"] == "INDETERMINATE"

    tampered = bytearray(der)
    tampered[-10] ^= 1  # inside the signature value
    assert verify(client, bytes(tampered), data=DATA)["status"] == "INVALID"


def test_verify_checks_the_status_of_our_seals(app, client, api_world):
    record = new_seal(api_world, clients=[APP])
    der = base64.b64decode(sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex()).get_json()["signature"])
    assert verify(client, der, data=DATA)["status"] == "VALID"
    client.post(f"/api/v1/seals/{record.es_id}/revoke", json={"reason": "丢失 lost"}, headers=officer(app))
    report = verify(client, der, data=DATA)
    # signed before the revocation, but that time is the signer's own claim (no time stamp)
    assert report["status"] == "INDETERMINATE", report
    (signature,) = report["signatures"]
    assert [c["status"] for c in signature["checks"] if c["check"] == "seal_validity"] == ["PASSED", "INDETERMINATE"]


def test_verify_needs_no_token_and_reads_garbage_as_invalid(app, client):
    report = verify(client, b"\x30\x03\x02\x01\x04", data=DATA)
    assert report["status"] == "INVALID" and checks(report)["format"] == "FAILED"


def test_verify_bad_requests(app, client):
    problem(client.post("/api/v1/verify/ses", data={"data": (io.BytesIO(DATA), "d")},
                        content_type="multipart/form-data"), 400, "invalid_input")
    form = {"signature": (io.BytesIO(b"\x30\x00"), "s"), "data": (io.BytesIO(DATA), "d"), "digest": sm3(DATA).hex()}
    problem(client.post("/api/v1/verify/ses", data=form, content_type="multipart/form-data"), 400, "invalid_input")
    problem(client.post("/api/v1/verify/ses", data=b"x" * (1024 * 1024 + 1)), 413, "request_too_large")


# ---------------------------------------------------------------- the registry, for officers

def test_officer_lists_shows_suspends_resumes_and_authorises(app, client, api_world):
    record = new_seal(api_world, clients=["other-app"])
    headers = officer(app)
    listed = client.get(f"/api/v1/seals?holder={USCC}&status=active", headers=headers)
    assert listed.status_code == 200
    assert [s["esID"] for s in listed.get_json()["seals"]] == [record.es_id]

    shown = client.get(f"/api/v1/seals/{record.es_id}", headers=headers).get_json()
    assert shown["status"] == "active" and shown["clients"] == ["other-app"]
    assert base64.b64decode(shown["seal"]) == record.seal and base64.b64decode(shown["picture"]["data"]) == \
        api_world.picture.data
    assert pem.unarmor(shown["holder_certificate"].encode())[2] == api_world.holder_cert
    assert [h["to"] for h in shown["history"]][-1] == "active"

    authorised = client.put(f"/api/v1/seals/{record.es_id}/authorisation", json={"clients": [APP, "other-app"]},
                            headers=headers)
    assert authorised.status_code == 200 and authorised.get_json()["clients"] == sorted([APP, "other-app"])
    assert sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex()).status_code == 200

    assert client.post(f"/api/v1/seals/{record.es_id}/suspend", json={"reason": "审查 review"},
                       headers=headers).status_code == 200
    problem(sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex()), 403, "seal_not_active")
    assert client.post(f"/api/v1/seals/{record.es_id}/resume", json={"reason": "审查结束 reviewed"},
                       headers=headers).get_json()["status"] == "active"
    assert sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex()).status_code == 200

    history = client.get(f"/api/v1/seals/{record.es_id}", headers=headers).get_json()["history"]
    assert [(h["from"], h["to"]) for h in history[-2:]] == [("active", "suspended"), ("suspended", "active")]
    assert history[-1]["actor"].startswith("officer:") and history[-1]["reason"] == "审查结束 reviewed"


def test_bulk_revocation_by_holder(app, client, api_world):
    first, second = new_seal(api_world, clients=[APP]), new_seal(api_world, clients=[APP], seal_type="finance")
    headers = officer(app)
    done = client.post("/api/v1/seals/revoke", json={"holder_uscc": USCC, "reason": "审批局成立 merged"},
                       headers=headers)
    assert done.status_code == 200 and sorted(done.get_json()["revoked"]) == sorted([first.es_id, second.es_id])
    for record in (first, second):
        problem(sign(client, record.es_id, bearer(app), digest=sm3(DATA).hex()), 403, "seal_not_active")
    problem(client.post(f"/api/v1/seals/{first.es_id}/resume", json={"reason": "x"}, headers=headers),
            400, "illegal_transition")


def test_bulk_revocation_by_list(app, client, api_world):
    first, second = new_seal(api_world), new_seal(api_world)
    done = client.post("/api/v1/seals/revoke", json={"es_ids": [second.es_id], "reason": "丢失 lost"},
                       headers=officer(app))
    assert done.get_json()["revoked"] == [second.es_id]
    listed = client.get("/api/v1/seals", headers=officer(app, roles=("seal-admin", "ca-officer"))).get_json()
    statuses = {s["esID"]: s["status"] for s in listed["seals"]}
    assert statuses == {first.es_id: "active", second.es_id: "revoked"}


def test_managing_needs_the_scope_and_an_officer_with_the_role(app, client, api_world):
    record = new_seal(api_world)
    path = f"/api/v1/seals/{record.es_id}/suspend"
    problem(client.post(path, json={"reason": "x"}), 401, "unauthenticated")
    problem(client.post(path, json={"reason": "x"}, headers=bearer(app)), 403, "permission_denied")  # seal:sign only
    problem(client.post(path, json={"reason": "x"}, headers=bearer(app, scopes=("seal:manage",))),
            403, "permission_denied")  # a client alone
    problem(client.post(path, json={"reason": "x"}, headers=officer(app, roles=("ca-officer",))),
            403, "permission_denied")
    refused = audit_records(app, "api.refused")
    assert len(refused) == 4 and {target for _, target, _ in refused} == {path}
    with app.extensions["trust.sessions"]() as session:
        assert registry.get_seal(session, record.es_id).status == "active"


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "status=lost", "holder=123", "type=round"])
def test_bad_listing_queries_are_400(app, client, api_world, query):
    problem(client.get(f"/api/v1/seals?{query}", headers=officer(app)), 400, "invalid_input")


def test_unknown_seal_and_missing_reason(app, client, api_world):
    headers = officer(app)
    problem(client.get("/api/v1/seals/3501000000000000001", headers=headers), 404, "not_found")
    record = new_seal(api_world)
    problem(client.post(f"/api/v1/seals/{record.es_id}/suspend", json={}, headers=headers), 400, "invalid_input")
    problem(client.put(f"/api/v1/seals/{record.es_id}/authorisation", json={"clients": "app"}, headers=headers),
            400, "invalid_input")


@pytest.mark.parametrize("digest", ["zz", "ab" * 31, base64.b64encode(b"\0" * 31).decode()])
def test_a_digest_of_the_wrong_form_is_named_as_such(app, client, api_world, digest):
    """Not "32 bytes, got 1": what a digest must look like, and how long the text was."""
    record = new_seal(api_world, clients=[APP])
    answer = client.post(f"/api/v1/seals/{record.es_id}/sign", json={"digest": digest, "purpose": "p"},
                         headers=bearer(app))
    assert answer.status_code == 400
    text = json.dumps(answer.get_json(), ensure_ascii=False)
    assert "64 hexadecimal digits or 44 base64 characters" in text and f"not {len(digest)} characters" in text
    assert "64 位十六进制" in text
