"""What a hostile or careless client found at the token endpoints and the CA API (issue 23,
point 5), each now refused as the RFCs say."""

import pytest

from tests.oidc_support import add_client, basic, make_app, new_keystore


@pytest.fixture
def app(engine, tmp_path):
    return make_app(engine, new_keystore(tmp_path), tmp_path)


def _token(http, client, secret, scope="licence:read"):
    answer = http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
                       headers={"Authorization": basic(client.client_id, secret)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["access_token"]


def test_a_repeated_parameter_is_refused(app, engine):
    client, secret = add_client(engine)
    http = app.test_client()
    for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
        answer = http.post(path, data="grant_type=client_credentials&grant_type=password&token=x",
                           content_type="application/x-www-form-urlencoded",
                           headers={"Authorization": basic(client.client_id, secret)})
        assert answer.status_code == 400 and answer.headers["Cache-Control"] == "no-store"
        body = answer.get_json()
        assert body["error"] == "invalid_request" and "grant_type" in body["error_description"]


def test_a_client_learns_nothing_of_another_clients_token(app, engine):
    owner, owner_secret = add_client(engine)
    stranger, stranger_secret = add_client(engine)
    http = app.test_client()
    token = _token(http, owner, owner_secret)

    def introspect(client, secret):
        return http.post("/oauth/introspect", data={"token": token},
                         headers={"Authorization": basic(client.client_id, secret)}).get_json()
    assert introspect(owner, owner_secret)["active"] is True
    assert introspect(stranger, stranger_secret) == {"active": False}


def test_no_credentials_at_all_is_401_with_www_authenticate(app):
    http = app.test_client()
    for path in ("/api/ca/sm2-issuing/certificates", "/api/ca/sm2-issuing/certificates/1/revoke"):
        answer = http.post(path, json={})
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.mimetype == "application/problem+json" and answer.get_json()["code"] == "unauthenticated"
    signed_badly = http.post("/api/ca/sm2-issuing/certificates", json={},
                             headers={"X-Officer-Fingerprint": "ab", "X-Officer-Signature": "zz"})
    assert signed_badly.status_code == 403  # a credential was offered and is wrong: forbidden
