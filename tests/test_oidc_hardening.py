"""What a hostile or careless client found at the token endpoints and the CA API (issue 23,
point 5), each now refused as the RFCs say."""

import jwt
import pytest
from sqlalchemy import select

from identity.authn import CLIENT_LIMIT
from trust import audit

from tests.oidc_support import add_client, add_person, authorize_query, basic, make_app, new_keystore, pkce_pair
from tests.test_oidc_attacks import consent_and_get_code, csrf, exchange, log_in


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
    assert description(data={"client_id": client.client_id}) == \
        "this client authenticates with client_secret_basic, not none"
    assert description(data={"client_id": client.client_id, "client_secret": "wrong"}) == "the client secret is wrong"
    by_post = http.post("/oauth/token", data={**form, "client_id": client.client_id, "client_secret": secret})
    assert by_post.status_code == 200  # a secret in the body is as good as in the header (RFC 6749 §2.3.1)


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


def _code_flow(app, engine, scope):
    client, secret = add_client(engine)
    http = app.test_client()
    assert log_in(http).status_code == 303
    verifier, challenge = pkce_pair()
    redirect = consent_and_get_code(http, authorize_query(client.client_id, challenge, scope=scope))
    answer = exchange(http, client, secret, redirect["code"], verifier)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


@pytest.fixture
def keystore_and_app(engine, tmp_path):
    keystore = new_keystore(tmp_path)
    return keystore, make_app(engine, keystore, tmp_path)


def test_relying_party_defaults_unknown_scopes_ignored_offline_access_rs256(keystore_and_app, engine):
    keystore, app = keystore_and_app
    add_person(engine, keystore)
    body = _code_flow(app, engine, "openid profile email phone offline_access weird:thing")
    assert body["refresh_token"] and set(body["scope"].split()) == {"openid", "profile", "offline_access"}
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"  # what relying parties assume
    without = _code_flow(app, engine, "openid profile")
    assert "refresh_token" not in without
    discovery = app.test_client().get("/.well-known/openid-configuration").get_json()
    assert {"email", "phone", "offline_access"} <= set(discovery["scopes_supported"])
    assert "azp" in discovery["claims_supported"]
    plain_oauth = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials",
                                                               "scope": "weird:thing"},
                                         headers={"Authorization": basic(*_new_client(engine))})
    assert plain_oauth.status_code == 400 and plain_oauth.get_json()["error"] == "invalid_scope"


def _new_client(engine):
    client, secret = add_client(engine)
    return client.client_id, secret


def test_a_browser_that_logged_in_before_is_not_locked_out_by_strangers(keystore_and_app, engine):
    keystore, app = keystore_and_app
    add_person(engine, keystore)
    own_phone = app.test_client()
    assert log_in(own_phone).status_code == 303
    cookie = own_phone.get_cookie("trust_device")
    assert cookie is not None and cookie.http_only and cookie.max_age > 86400 * 100
    stranger = app.test_client()
    for _ in range(20):
        assert log_in(stranger, password="guess").status_code == 401
    assert log_in(app.test_client()).status_code == 401  # the account is locked for new browsers ...
    assert log_in(own_phone).status_code == 303  # ... not for the one that logged in before


def test_a_planted_csrf_cookie_does_not_make_a_valid_form_once_logged_in(keystore_and_app, engine):
    """Issue 23, point 3: the double submit let whoever could plant the CSRF cookie forge a
    consent. Once there is a login session, the form token is bound to it."""
    keystore, app = keystore_and_app
    add_person(engine, keystore)
    client, _secret = add_client(engine)
    victim = app.test_client()
    assert log_in(victim).status_code == 303
    query = authorize_query(client.client_id, pkce_pair()[1])
    assert victim.get("/oauth/authorize?" + query).status_code == 200  # the consent page
    planted = "A" * 43
    victim.set_cookie("trust_csrf", planted)  # a sibling subdomain or plain http sets it
    forged = victim.post("/consent", data={"csrf_token": planted, "request": query, "decision": "allow"})
    assert forged.status_code == 401 and "表单校验码" in forged.get_data(as_text=True)
    genuine = victim.post("/consent", data={"csrf_token": csrf(victim), "request": query, "decision": "allow"})
    assert genuine.status_code == 302 and "code=" in genuine.location
