"""Attacks on the authorization code flow and the login pages, each refused: missing,
wrong or plain PKCE, redirect URI mismatch, code replay (which revokes what the first use
issued), open redirects, forged forms (CSRF), refresh token reuse, password brute force.

Flask's test client drives the real views over a real database; the browser run is in
test_oidc_flow.py."""

import random
import re
import urllib.parse
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from identity import subjects
from trust import audit
from trust.config import load_settings
from trust.db import session_factory
from trust.errors import InvalidInput
from trust.ids import generate_uscc

from tests.oidc_support import (
    PASSWORD,
    REDIRECT_URI,
    SQLITE_ONLY,
    add_client,
    add_person,
    authorize_query,
    basic,
    make_app,
    new_keystore,
    next_totp_code,
    pkce_pair,
    query_of,
)


@pytest.fixture
def keystore(tmp_path):
    return new_keystore(tmp_path)


@pytest.fixture
def app(engine, keystore, tmp_path):
    return make_app(engine, keystore, tmp_path)


@pytest.fixture
def person(engine, keystore):
    subject, _ = add_person(engine, keystore)
    return subject


@pytest.fixture
def client(engine):
    return add_client(engine)


def csrf(http) -> str:
    """The CSRF token a page of this browser carries now (bound to its login session once it has one)."""
    page = http.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def log_in(http, username="citizen", password=PASSWORD, next_url=""):
    http.get("/login")
    return http.post("/login", data={"csrf_token": csrf(http), "username": username, "password": password,
                                     "next": next_url})


def consent_and_get_code(http, query: str) -> dict:
    """Go through the authorization endpoint (consenting when asked); the redirect's query."""
    response = http.get("/oauth/authorize?" + query)
    if response.status_code == 200:  # the consent page
        assert "授权确认" in response.get_data(as_text=True)
        response = http.post("/consent", data={"csrf_token": csrf(http), "request": query, "decision": "allow"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location.startswith(REDIRECT_URI + "?")
    return query_of(response.location)


def exchange(http, client, secret, code, verifier, redirect_uri=REDIRECT_URI):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return http.post("/oauth/token", data=form, headers={"Authorization": basic(client.client_id, secret)})


def introspect(http, client, secret, token) -> dict:
    return http.post("/oauth/introspect", data={"token": token},
                     headers={"Authorization": basic(client.client_id, secret)}).get_json()


def test_code_flow_with_pkce(app, person, client):
    client, secret = client
    http = app.test_client()
    assert log_in(http).status_code == 303
    verifier, challenge = pkce_pair()
    redirect = consent_and_get_code(http, authorize_query(client.client_id, challenge))
    assert redirect["state"] == "xyz"
    response = exchange(http, client, secret, redirect["code"], verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["id_token"] and body["refresh_token"] and body["token_type"] == "Bearer"
    assert introspect(http, client, secret, body["access_token"])["active"] is True
    # The person consented once: the next authorization needs no consent page.
    verifier, challenge = pkce_pair()
    again = http.get("/oauth/authorize?" + authorize_query(client.client_id, challenge, nonce="n-2"))
    assert again.status_code == 302 and "code" in query_of(again.location)
    # A nonce is accepted once, and the callback is told so in words a developer can act on.
    replayed = query_of(http.get("/oauth/authorize?" + authorize_query(client.client_id, challenge, nonce="n-2")).location)
    assert replayed["error"] == "invalid_request" and "new nonce" in replayed["error_description"]


@SQLITE_ONLY
def test_enterprise_scope_releases_the_legal_persons_a_person_may_act_for(app, engine, person):
    """经办人: what the person is authorised to do for which legal person, until when, reaches
    the relying party in the ID token and userinfo; expired authorisations and disabled
    legal persons are left out, and nothing is released without the scope."""
    now = datetime.now(UTC)
    until = (now + timedelta(days=30)).replace(microsecond=0)
    rng = random.Random(5)
    other, _ = add_person(engine, None, username="someone-else", seed=9)
    with session_factory(engine)() as session:
        def company(username, name):
            return subjects.create_legal_person(session, username=username, password=PASSWORD, name=name,
                                                uscc=generate_uscc(rng))
        acting, expired, disabled, elsewhere = (company("company-a", "甲公司"), company("company-b", "乙公司"),
                                                company("company-c", "丙公司"), company("company-d", "丁公司"))
        subjects.authorise_representative(session, legal_person_id=acting.id, person_id=person.id,
                                          scope=["seal:sign", "licence:read"], until=until)
        subjects.authorise_representative(session, legal_person_id=expired.id, person_id=person.id,
                                          scope=["licence:read"], until=now - timedelta(days=1),
                                          clock=lambda: now - timedelta(days=2))
        subjects.authorise_representative(session, legal_person_id=disabled.id, person_id=person.id,
                                          scope=["licence:read"], until=until)
        subjects.set_status(session, disabled.id, "disabled", actor="test")
        subjects.authorise_representative(session, legal_person_id=elsewhere.id, person_id=other.id,
                                          scope=["licence:read"], until=until)
        session.commit()
    expected = [{"uscc": acting.identifier, "name": "甲公司", "scope": ["licence:read", "seal:sign"],
                 "until": int(until.timestamp())}]
    client, secret = add_client(engine, scopes=["openid", "profile", "enterprise"])
    http = app.test_client()
    meta = http.get("/.well-known/openid-configuration").get_json()
    assert "enterprise" in meta["scopes_supported"] and "represents" in meta["claims_supported"]
    assert log_in(http).status_code == 303
    verifier, challenge = pkce_pair()
    query = authorize_query(client.client_id, challenge, scope="openid enterprise")
    assert "可代表办事的企业" in http.get("/oauth/authorize?" + query).get_data(as_text=True)  # consent says so
    body = exchange(http, client, secret, consent_and_get_code(http, query)["code"], verifier).get_json()
    id_token = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_token["represents"] == expected
    info = http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.get_json()["represents"] == expected
    # Without the scope, nothing about enterprises.
    verifier, challenge = pkce_pair()
    query = authorize_query(client.client_id, challenge, scope="openid profile", nonce="n-2")
    body = exchange(http, client, secret, consent_and_get_code(http, query)["code"], verifier).get_json()
    assert "represents" not in jwt.decode(body["id_token"], options={"verify_signature": False})
    info = http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).get_json()
    assert "represents" not in info and info["name"] == "张三"


@SQLITE_ONLY
@pytest.mark.parametrize("change, description", [
    ({"code_challenge": None, "code_challenge_method": None}, "PKCE missing"),
    ({"code_challenge_method": "plain"}, "plain PKCE"),
    ({"code_challenge_method": None}, "method omitted: would mean plain"),
])
def test_pkce_is_required_and_s256_only(app, person, client, change, description):
    client, _ = client
    http = app.test_client()
    log_in(http)
    _, challenge = pkce_pair()
    response = http.get("/oauth/authorize?" + authorize_query(client.client_id, challenge, **change))
    assert response.status_code == 302, description
    assert response.location.startswith(REDIRECT_URI + "?")
    error = query_of(response.location)
    assert error["error"] == "invalid_request" and error["state"] == "xyz" and "code" not in error


@SQLITE_ONLY
def test_wrong_or_missing_verifier_is_refused(app, person, client):
    client, secret = client
    http = app.test_client()
    log_in(http)
    verifier, challenge = pkce_pair()
    code = consent_and_get_code(http, authorize_query(client.client_id, challenge))["code"]
    wrong = exchange(http, client, secret, code, pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    # The code was spent by the failed attempt: the right verifier cannot use it now.
    late = exchange(http, client, secret, code, verifier)
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"
    verifier, challenge = pkce_pair()
    code = consent_and_get_code(http, authorize_query(client.client_id, challenge, nonce="n-3"))["code"]
    missing = exchange(http, client, secret, code, None)
    assert missing.status_code == 400 and missing.get_json()["error"] == "invalid_request"


@SQLITE_ONLY
def test_redirect_uri_must_match_exactly(app, person, client):
    client, secret = client
    http = app.test_client()
    log_in(http)
    verifier, challenge = pkce_pair()
    for uri in (REDIRECT_URI + "/../evil", REDIRECT_URI + "?next=https://evil.example", "https://evil.example/cb",
                REDIRECT_URI.replace("127.0.0.1", "localhost")):
        response = http.get("/oauth/authorize?" + authorize_query(client.client_id, challenge, redirect_uri=uri))
        assert response.status_code == 400, uri
        assert "Location" not in response.headers  # an error page, never a redirect to it
        assert "授权请求无效" in response.get_data(as_text=True)
    code = consent_and_get_code(http, authorize_query(client.client_id, challenge))["code"]
    other = exchange(http, client, secret, code, verifier, redirect_uri=REDIRECT_URI + "x")
    assert other.status_code == 400 and other.get_json()["error"] == "invalid_grant"


@SQLITE_ONLY
def test_unknown_client_gets_an_error_page_not_a_redirect(app, person):
    http = app.test_client()
    log_in(http)
    _, challenge = pkce_pair()
    response = http.get("/oauth/authorize?" + authorize_query("no-such-client", challenge))
    assert response.status_code == 400 and "Location" not in response.headers


def test_code_replay_revokes_what_the_first_use_issued(app, person, client):
    client, secret = client
    http = app.test_client()
    log_in(http)
    verifier, challenge = pkce_pair()
    code = consent_and_get_code(http, authorize_query(client.client_id, challenge))["code"]
    first = exchange(http, client, secret, code, verifier).get_json()
    assert introspect(http, client, secret, first["access_token"])["active"] is True
    replay = exchange(http, client, secret, code, verifier)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert introspect(http, client, secret, first["access_token"]) == {"active": False}
    refresh = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                        headers={"Authorization": basic(client.client_id, secret)})
    assert refresh.status_code == 400 and refresh.get_json()["error"] == "invalid_grant"


@SQLITE_ONLY
def test_code_of_another_client_is_refused(app, engine, person, client):
    client, _secret = client
    other, other_secret = add_client(engine)
    http = app.test_client()
    log_in(http)
    verifier, challenge = pkce_pair()
    code = consent_and_get_code(http, authorize_query(client.client_id, challenge))["code"]
    stolen = exchange(http, other, other_secret, code, verifier)
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"


def test_refresh_rotation_and_reuse_detection(app, person, client):
    client, secret = client
    http = app.test_client()
    log_in(http)
    verifier, challenge = pkce_pair()
    code = consent_and_get_code(http, authorize_query(client.client_id, challenge))["code"]
    first = exchange(http, client, secret, code, verifier).get_json()
    auth = {"Authorization": basic(client.client_id, secret)}
    rotated = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                        headers=auth)
    assert rotated.status_code == 200, rotated.get_data(as_text=True)
    second = rotated.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    reuse = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                      headers=auth)
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    # Reuse revoked the whole family: the rotated refresh token and its access token too.
    dead = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
                     headers=auth)
    assert dead.status_code == 400
    assert introspect(http, client, secret, second["access_token"]) == {"active": False}


@SQLITE_ONLY
@pytest.mark.parametrize("next_url", [
    "https://evil.example/", "//evil.example/oauth/authorize?x", "/\\evil.example", "javascript:alert(1)",
    "/oauth/authorize?x\r\nLocation: https://evil.example", "https://127.0.0.1/oauth/authorize?x",
])
def test_login_never_redirects_elsewhere(app, person, next_url):
    http = app.test_client()
    response = log_in(http, next_url=next_url)
    assert response.status_code == 303
    assert response.location == "/login/done"
    page = http.get("/login?" + urllib.parse.urlencode({"next": next_url})).get_data(as_text=True)
    assert "evil" not in page and "javascript" not in page


@SQLITE_ONLY
def test_forms_need_the_csrf_token(app, person, client):
    http = app.test_client()
    http.get("/login")
    forged = http.post("/login", data={"username": "citizen", "password": PASSWORD})
    assert forged.status_code == 401
    wrong = http.post("/login", data={"csrf_token": "x" * 43, "username": "citizen", "password": PASSWORD})
    assert wrong.status_code == 401
    client, _ = client
    log_in(http)
    _, challenge = pkce_pair()
    query = authorize_query(client.client_id, challenge)
    assert http.get("/oauth/authorize?" + query).status_code == 200
    forged_consent = http.post("/consent", data={"request": query, "decision": "allow"})
    assert forged_consent.status_code == 401 and "Location" not in forged_consent.headers


@SQLITE_ONLY
def test_pages_forbid_scripts_and_set_safe_cookies(app, person):
    http = app.test_client()
    page = http.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert "<script" not in page.get_data(as_text=True)
    response = log_in(http)
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("trust_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@SQLITE_ONLY
def test_https_issuer_uses_secure_host_cookies(engine, keystore, tmp_path, person):
    app = make_app(engine, keystore, tmp_path, public_url="https://sso.example.gov.cn")
    http = app.test_client()
    page = http.get("/login", base_url="https://sso.example.gov.cn")
    assert re.search(r"__Host-trust_csrf=[^;]+;.*Secure", page.headers["Set-Cookie"])
    # A real login: the session cookie is __Host- (Secure, Path=/, no Domain), HttpOnly and SameSite.
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    login = http.post("/login", base_url="https://sso.example.gov.cn",
                      data={"csrf_token": token, "username": "citizen", "password": PASSWORD, "next": ""})
    assert login.status_code == 303 and login.location == "/login/done"
    [cookie] = [c for c in login.headers.getlist("Set-Cookie") if c.startswith("__Host-trust_session=")]
    attributes = {a.strip().split("=")[0].lower(): a.strip().partition("=")[2] for a in cookie.split(";")[1:]}
    assert {"secure", "httponly"} <= attributes.keys() and attributes["samesite"] == "Lax"
    assert attributes["path"] == "/" and "domain" not in attributes
    assert http.get("/login/done", base_url="https://sso.example.gov.cn").status_code == 200  # it opens the session


def test_password_brute_force_locks_the_account(app, person):
    from identity import authn
    http = app.test_client()
    attempts = authn.ACCOUNT_LIMIT + 1
    for _ in range(attempts):
        assert log_in(http, password="guess-" + "x").status_code == 401
    locked = log_in(http)
    assert locked.status_code == 401  # the right password no longer opens the account
    assert "用户名或密码错误" in locked.get_data(as_text=True) or "锁定" in locked.get_data(as_text=True)


def log_in_from(http, address, username="citizen", password=PASSWORD):
    http.get("/login")
    return http.post("/login", data={"csrf_token": csrf(http), "username": username, "password": password,
                                     "next": ""}, headers={"X-Forwarded-For": address})


@SQLITE_ONLY
def test_behind_a_trusted_proxy_each_forwarded_address_is_throttled_alone(engine, keystore, tmp_path, person,
                                                                         monkeypatch):
    from identity import authn
    monkeypatch.setattr(authn, "ADDRESS_LIMIT", 3)
    http = make_app(engine, keystore, tmp_path, proxy_hops=1).test_client()
    for n in range(3):  # guessing across accounts from one address behind the proxy
        assert log_in_from(http, "203.0.113.7", username=f"nobody-{n}").status_code == 401
    assert log_in_from(http, "198.51.100.9", password="wrong").status_code == 401  # a failure of the account's own
    assert log_in_from(http, "203.0.113.7").status_code == 401  # that address is locked out for it
    assert log_in_from(http, "198.51.100.2").status_code == 303  # another user behind the same proxy is not
    with session_factory(engine)() as session:
        locked = session.execute(select(audit.audit_log.c.target).where(
            audit.audit_log.c.action == "identity.lockout")).scalars().all()
    assert locked == ["address:203.0.113.7"]


@SQLITE_ONLY
def test_without_trusted_proxies_x_forwarded_for_is_ignored(engine, keystore, tmp_path, person, monkeypatch):
    from identity import authn
    monkeypatch.setattr(authn, "ADDRESS_LIMIT", 3)
    http = make_app(engine, keystore, tmp_path).test_client()  # TRUST_PROXY_HOPS=0, the default
    for n in range(3):  # a new spoofed address on every attempt
        assert log_in_from(http, f"203.0.113.{n}", username=f"nobody-{n}").status_code == 401
    # The real address is locked out, whatever the header claims: once the account has a
    # failure of its own (an account without one is not locked by its neighbours' failures).
    assert log_in_from(http, "198.51.100.3", password="wrong").status_code == 401
    assert log_in_from(http, "198.51.100.2").status_code == 401


def test_trust_proxy_hops_setting():
    assert load_settings({}).proxy_hops == 0
    assert load_settings({"TRUST_PROXY_HOPS": "2"}).proxy_hops == 2
    for bad in ("-1", "one", "11", "²"):
        with pytest.raises(InvalidInput):
            load_settings({"TRUST_PROXY_HOPS": bad})


@SQLITE_ONLY
def test_totp_is_asked_after_the_password(app, engine, keystore, client):
    _subject, secret = add_person(engine, keystore, username="with-totp", totp=True, seed=7)
    client, _ = client
    http = app.test_client()
    _, challenge = pkce_pair()
    next_url = "/oauth/authorize?" + authorize_query(client.client_id, challenge)
    response = log_in(http, username="with-totp", next_url=next_url)
    assert response.status_code == 303 and response.location.startswith("/login/totp?")
    # Half logged in: the authorization endpoint still sends the browser to log in.
    assert http.get(next_url).location.startswith("/login?")
    http.get(response.location)
    bad = http.post("/login/totp", data={"csrf_token": csrf(http), "code": "000000", "next": next_url})
    assert bad.status_code == 401
    good = http.post("/login/totp", data={"csrf_token": csrf(http), "code": next_totp_code(secret),
                                          "next": next_url})
    assert good.status_code == 303 and good.location == next_url
    assert http.get(next_url).status_code == 200  # the consent page


@SQLITE_ONLY
def test_officers_must_use_totp(app, engine):
    from identity import subjects
    with session_factory(engine)() as session:
        subjects.create_officer(session, username="officer", password=PASSWORD, name="李四", staff_number="A-001",
                                department="市场监管局", roles=["seal-admin"])
        session.commit()
    http = app.test_client()
    response = log_in(http, username="officer")
    assert response.status_code == 403 and "动态口令" in response.get_data(as_text=True)
    assert http.get_cookie("trust_session") is None


@SQLITE_ONLY
def test_userinfo_needs_an_openid_token(app, engine, person):
    service, secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:read"])
    http = app.test_client()
    token = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": basic(service.client_id, secret)}).get_json()["access_token"]
    refused = http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    missing = http.get("/oauth/userinfo")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    forged = http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert forged.status_code == 401


@SQLITE_ONLY
def test_logout_without_id_token_asks_first(app, person):
    http = app.test_client()
    log_in(http)
    assert http.get_cookie("trust_session") is not None
    page = http.get("/oauth/logout?post_logout_redirect_uri=https://evil.example/")
    assert page.status_code == 200 and "确定要退出" in page.get_data(as_text=True)
    assert http.post("/oauth/logout", data={}).status_code == 401  # no CSRF token: nothing happens
    assert http.get_cookie("trust_session") is not None
    done = http.post("/oauth/logout", data={"csrf_token": csrf(http),
                                            "post_logout_redirect_uri": "https://evil.example/"})
    assert done.status_code == 200 and "Location" not in done.headers  # never to an unregistered address
    assert http.get_cookie("trust_session") is None
    assert http.get("/login/done").location == "/login"


@SQLITE_ONLY
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["response_type", "client_id", "redirect_uri", "scope", "state",
                                               "nonce", "code_challenge", "code_challenge_method", "prompt",
                                               "max_age", "next", "request"]),
                              st.text(max_size=200), max_size=8))
def test_authorization_and_login_pages_survive_junk(app, person, params):
    http = app.test_client()
    for path in ("/oauth/authorize", "/login", "/login/totp", "/oauth/logout"):
        response = http.get(path + "?" + urllib.parse.urlencode(params))
        assert response.status_code in (200, 302, 303, 400, 401), (path, response.status_code)
        location = response.headers.get("Location", "")
        assert not location or location.startswith("/") or location.startswith(REDIRECT_URI), location


@SQLITE_ONLY
def test_prompt_none_and_prompt_login(app, person, client):
    client, _ = client
    http = app.test_client()
    _, challenge = pkce_pair()
    not_logged_in = http.get("/oauth/authorize?" + authorize_query(client.client_id, challenge, prompt="none"))
    assert query_of(not_logged_in.location)["error"] == "login_required"
    log_in(http)
    no_consent = http.get("/oauth/authorize?" + authorize_query(client.client_id, challenge, prompt="none",
                                                                nonce="n-a"))
    assert query_of(no_consent.location)["error"] == "consent_required"
    # A login of a moment ago answers prompt=login and max_age=0 (no loop back to the login page).
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        page = http.get("/oauth/authorize?" + authorize_query(client.client_id, challenge, nonce="n-b", **extra))
        assert page.status_code == 200 and "授权确认" in page.get_data(as_text=True)
