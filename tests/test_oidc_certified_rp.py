"""A certified relying-party library nobody here wrote, pyoidc (`oic`, an OpenID Foundation
certified RP), with its default settings against `trustctl serve` (two workers): discovery,
the code flow with PKCE asking for `openid profile email offline_access`, its own ID token
validation (RS256, nonce, issuer, audience, the JWKS), userinfo, refresh, introspection,
revocation and logout. A person's browser is played by `requests`, reading each page as a
browser would (issue 23, point 6)."""

import html
import re
import urllib.parse

import pytest

from bench.server import free_port

from tests.serving import clean_env, trustctl, trustctl_serve

REDIRECT = "http://127.0.0.1:9/callback"   # nothing listens: the code is read from the redirect


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("certified-rp")
    port = free_port()
    env = clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_PUBLIC_URL=f"http://127.0.0.1:{port}")
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    person = re.search(r"citizen: (\S+)\s+密码 / password: (\S+)", init.stdout).groups()
    registered = trustctl(env, "identity", "client", "register", "--name", "pyoidc RP", "--redirect-uri", REDIRECT,
                          "--grant", "authorization_code", "--grant", "refresh_token", "--scope", "openid",
                          "--scope", "profile", "--scope", "email", "--scope", "offline_access",
                          "--credential", str(tmp_path / "home" / "officers" / "sysadmin-1.pem"))
    assert registered.returncode == 0, registered.stderr
    client = (re.search(r"client_id: (\S+)", registered.stdout).group(1),
              re.search(r"client_secret: (\S+?)（", registered.stdout).group(1))
    with trustctl_serve(env, port, tmp_path / "serve.log", workers=2):
        yield f"http://127.0.0.1:{port}", client, person


def _field(page: str, name: str) -> str:
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))


def _log_in_and_consent(browser, issuer: str, url: str, person) -> str:
    """What the person does in the browser; the query of the redirect back to the client."""
    login = browser.get(url)
    assert login.status_code == 200 and "/login" in login.url
    answer = browser.post(issuer + "/login", allow_redirects=False, data={
        "csrf_token": _field(login.text, "csrf_token"), "next": _field(login.text, "next"),
        "username": person[0], "password": person[1]})
    assert answer.status_code == 303
    consent = browser.get(issuer + answer.headers["Location"], allow_redirects=False)
    assert consent.status_code == 200 and "授权确认" in consent.text
    back = browser.post(issuer + "/consent", allow_redirects=False, data={
        "csrf_token": _field(consent.text, "csrf_token"), "request": _field(consent.text, "request"),
        "decision": "allow"})
    assert back.status_code == 302 and back.headers["Location"].startswith(REDIRECT)
    return urllib.parse.urlsplit(back.headers["Location"]).query


def test_pyoidc_from_discovery_to_logout(served):
    import requests
    from oic import rndstr
    from oic.extension.client import Client as OAuthClient
    from oic.oic import Client
    from oic.oic.message import AuthorizationResponse, RegistrationResponse
    from oic.utils.authn.client import CLIENT_AUTHN_METHOD

    issuer, (client_id, secret), person = served
    registration = RegistrationResponse(client_id=client_id, client_secret=secret, redirect_uris=[REDIRECT])
    rp = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(issuer)                                  # discovery, and the JWKS
    rp.store_registration_info(registration)
    rp.redirect_uris = [REDIRECT]
    pkce, verifier = rp.add_code_challenge()
    state, nonce = rndstr(), rndstr()
    url = rp.construct_AuthorizationRequest(request_args={
        "client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT, "state": state, "nonce": nonce,
        "scope": ["openid", "profile", "email", "offline_access"], **pkce}).request(rp.authorization_endpoint)

    browser = requests.Session()
    answer = rp.parse_response(AuthorizationResponse, info=_log_in_and_consent(browser, issuer, url, person),
                               sformat="urlencoded")
    assert answer["state"] == state
    tokens = rp.do_access_token_request(state=state, request_args={
        "code": answer["code"], "code_verifier": verifier, "redirect_uri": REDIRECT})
    id_token = tokens["id_token"]                               # verified by pyoidc against our JWKS
    assert id_token["iss"] == issuer and id_token["aud"] == [client_id] and id_token["nonce"] == nonce
    assert id_token.jws_header["alg"] == "RS256" and tokens["refresh_token"]

    claims = rp.do_user_info_request(state=state)
    assert claims["sub"] == id_token["sub"] and claims["preferred_username"] == person[0]

    refreshed = rp.do_access_token_refresh(state=state)
    assert "error" not in refreshed, refreshed.to_dict()
    assert refreshed["access_token"] != tokens["access_token"] and refreshed["refresh_token"]

    oauth = OAuthClient(client_authn_method=CLIENT_AUTHN_METHOD)
    oauth.provider_config(issuer)
    oauth.store_registration_info(registration)
    access = refreshed["access_token"]
    basic = {"authn_method": "client_secret_basic"}  # RFC 7662 §2.1: introspection needs the client's credentials
    introspected = oauth.do_token_introspection(request_args={"token": access}, **basic)
    assert introspected.get("active") is True, introspected.to_dict()
    assert oauth.do_token_revocation(request_args={"token": access}, **basic) == 200
    assert oauth.do_token_introspection(request_args={"token": access}, **basic)["active"] is False

    end = rp.construct_EndSessionRequest(state=state, request_args={"id_token_hint": tokens["id_token_jwt"]})
    logout = browser.get(end.request(rp.end_session_endpoint), allow_redirects=False)
    assert logout.status_code == 200 and "已退出" in logout.text
    fresh = rp.construct_AuthorizationRequest(request_args={
        "client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT, "state": rndstr(),
        "nonce": rndstr(), "scope": ["openid"], **rp.add_code_challenge()[0]}).request(rp.authorization_endpoint)
    again = browser.get(fresh, allow_redirects=False)         # the login session has ended
    assert again.status_code in (302, 303) and "/login" in again.headers["Location"]
