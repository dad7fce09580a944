"""What a hostile or careless client found at the token endpoints and the CA API (issue 23,
point 5), each now refused as the RFCs say."""

import pytest
from sqlalchemy import select

from identity.authn import CLIENT_LIMIT
from tests.oidc_support import add_client, basic, make_app, new_keystore
from trust import audit


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


def test_client_authentication_errors_say_what_is_wrong(app, engine):
    client, secret = add_client(engine)
    http = app.test_client()
    form = {"grant_type": "client_credentials", "scope": "licence:read"}

    def description(**options):
        answer = http.post("/oauth/token", data={**form, **options.pop("data", {})}, **options)
        assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client"
        assert answer.headers["WWW-Authenticate"] == 'Basic error="invalid_client"'
        return answer.get_json()["error_description"]
    assert description().startswith("no client authentication")
    assert description(headers={"Authorization": basic(client.client_id, "wrong")}) == "the client secret is wrong"
    assert description(headers={"Authorization": basic("nobody", "x")}).startswith("the client does not exist")
    assert description(data={"client_id": client.client_id, "client_secret": secret}) == \
        "this client authenticates with client_secret_basic, not client_secret_post"


def test_failed_client_authentications_are_throttled_per_client_and_address(app, engine):
    client, secret = add_client(engine)
    http = app.test_client()
    form = {"grant_type": "client_credentials", "scope": "licence:read"}
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(CLIENT_LIMIT):
        assert http.post("/oauth/token", data=form, environ_base=attacker,
                         headers={"Authorization": basic(client.client_id, "guess")}).status_code == 401
    refused = http.post("/oauth/token", data=form, environ_base=attacker,
                        headers={"Authorization": basic(client.client_id, secret)})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"] == "temporarily_unavailable"
    own_server = http.post("/oauth/token", data=form, environ_base={"REMOTE_ADDR": "198.51.100.1"},
                           headers={"Authorization": basic(client.client_id, secret)})
    assert own_server.status_code == 200  # a stranger's failures never lock the department out
    with engine.connect() as connection:
        actions = connection.execute(select(audit.audit_log.c.action)).scalars().all()
    assert actions.count("client.throttled") == 1
