"""Acceptance: an independent client against the running server, `trustctl serve`
(gunicorn, two workers) on the test's database.

- Authorization code + PKCE in Debian's headless Chromium driven by Playwright: login
  page, TOTP, consent, redirect to the client's callback; the client exchanges the code
  over HTTP and validates the ID token with PyJWT, fetching our JWKS; userinfo; then
  RP-initiated logout ends the login session.
- Client credentials -> access token -> introspection active -> revocation ->
  introspection inactive, over HTTP.

Only the Debian browser is used (never a downloaded one). Without /usr/bin/chromium the
browser test is skipped with the reason, unless CI=true, where that is a failure.
"""

import base64
import hashlib
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest

from tests.oidc_support import (
    PASSWORD,
    SQLITE_ONLY,
    add_client,
    add_person,
    authorize_query,
    basic,
    http_get_json,
    http_post,
    new_keystore,
    next_totp_code,
    pkce_pair,
    served_by_gunicorn,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
STEP_TIMEOUT_MS = 20_000


@pytest.fixture
def keystore(tmp_path):
    return new_keystore(tmp_path)


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"Chromium is required in CI: {message}")
    pytest.skip(message)


class Callback:
    """The department application's redirect endpoint: records what the browser brings."""

    def __init__(self):
        self.queries: list[dict] = []
        self.arrived = threading.Event()
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/callback":  # not the browser's /favicon.ico
                    callback.queries.append(dict(urllib.parse.parse_qsl(url.query)))
                    callback.arrived.set()
                body = b"<!doctype html><title>callback</title><p id=done>ok</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


@SQLITE_ONLY
def test_code_flow_with_pkce_in_chromium(engine, keystore, tmp_path):
    require_chromium()
    from playwright.sync_api import sync_playwright

    subject, totp_secret = add_person(engine, keystore, username="citizen", totp=True)
    with Callback() as callback, served_by_gunicorn(engine, tmp_path) as base:
        client, secret = add_client(engine, name="示范部门应用", redirect_uris=[callback.url],
                                    post_logout_redirect_uris=[callback.url + "?logged-out"])
        verifier, challenge = pkce_pair()
        query = authorize_query(client.client_id, challenge, scope="openid profile realname",
                                state="s-42", nonce="n-42", redirect_uri=callback.url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                 headless=True, timeout=60_000)
            try:
                page = browser.new_page()
                page.set_default_timeout(STEP_TIMEOUT_MS)
                page.set_default_navigation_timeout(STEP_TIMEOUT_MS)
                page.goto(f"{base}/oauth/authorize?{query}")
                page.wait_for_url("**/login?**")
                assert "登录" in page.title()
                page.fill("#username", "citizen")
                page.fill("#password", PASSWORD)
                page.click("#login")
                page.wait_for_url("**/login/totp**")
                page.fill("#code", next_totp_code(totp_secret))
                page.click("#verify")
                page.wait_for_selector("#allow")
                assert page.inner_text("#client-name") == "示范部门应用"
                page.click("#allow")
                page.wait_for_url(callback.url + "?**")
                assert callback.arrived.wait(10)
                redirect = callback.queries[-1]
                assert redirect["state"] == "s-42" and redirect["code"]

                # The client, over HTTP: the code and the PKCE verifier for tokens.
                status, tokens = http_post(f"{base}/oauth/token", {
                    "grant_type": "authorization_code", "code": redirect["code"], "redirect_uri": callback.url,
                    "code_verifier": verifier}, headers={"Authorization": basic(client.client_id, secret)})
                assert status == 200, tokens

                # PyJWT (not ours) validates the ID token from our JWKS.
                signing_key = jwt.PyJWKClient(f"{base}/oauth/jwks").get_signing_key_from_jwt(tokens["id_token"])
                claims = jwt.decode(tokens["id_token"], signing_key.key, algorithms=["RS256"],
                                    audience=client.client_id, issuer=base)
                assert claims["sub"] == subject.id and claims["nonce"] == "n-42"
                assert "otp" in claims["amr"] and claims["auth_time"] <= claims["iat"]
                assert claims["name"] == "张三" and claims["assurance_level"] == subject.assurance_level
                header = jwt.get_unverified_header(tokens["id_token"])
                assert header["kid"] == signing_key.key_id
                assert claims["at_hash"] == _at_hash(tokens["access_token"])

                status, info = http_get_json(f"{base}/oauth/userinfo",
                                             {"Authorization": f"Bearer {tokens['access_token']}"})
                assert status == 200 and info["sub"] == subject.id and info["id_number"] == subject.identifier

                # RP-initiated logout ends the login: the next authorization asks to log in again.
                page.goto(f"{base}/oauth/logout?" + urllib.parse.urlencode({
                    "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": callback.url + "?logged-out",
                    "state": "bye"}))
                page.wait_for_url(callback.url + "?logged-out**")
                fresh = authorize_query(client.client_id, pkce_pair()[1], state="s-43", nonce="n-43",
                                        redirect_uri=callback.url)
                page.goto(f"{base}/oauth/authorize?{fresh}")
                page.wait_for_url("**/login?**")
                # A nonce is accepted once: the same authorization request again is refused.
                page.goto(f"{base}/oauth/authorize?{query}")
                page.wait_for_url(callback.url + "?**")
                assert callback.queries[-1]["error"] == "invalid_request"
            finally:
                browser.close()


def _at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6, computed here for RS256 (SHA-256), the default."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def test_client_credentials_introspection_revocation_over_http(engine, keystore, tmp_path):
    client, secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:read", "licence:verify"])
    auth = {"Authorization": basic(client.client_id, secret)}
    with served_by_gunicorn(engine, tmp_path) as base:
        status, token = http_post(f"{base}/oauth/token", {"grant_type": "client_credentials",
                                                          "scope": "licence:read"}, auth)
        assert status == 200, token
        assert token["token_type"] == "Bearer" and token["expires_in"] > 0
        status, active = http_post(f"{base}/oauth/introspect", {"token": token["access_token"]}, auth)
        assert status == 200 and active["active"] is True
        assert active["client_id"] == client.client_id and active["scope"] == "licence:read"
        status, body = http_post(f"{base}/oauth/revoke", {"token": token["access_token"]}, auth)
        assert status == 200 and body == {}
        status, inactive = http_post(f"{base}/oauth/introspect", {"token": token["access_token"]}, auth)
        assert status == 200 and inactive == {"active": False}
        # Without client authentication, introspection answers nothing.
        status, refused = http_post(f"{base}/oauth/introspect", {"token": token["access_token"]})
        assert status == 401 and refused["error"] == "invalid_client"
        # PyJWT reads the access token (RFC 9068) with our JWKS.
        key = jwt.PyJWKClient(f"{base}/oauth/jwks").get_signing_key_from_jwt(token["access_token"])
        claims = jwt.decode(token["access_token"], key.key, algorithms=["RS256"], issuer=base,
                            options={"verify_aud": False})
        assert claims["client_id"] == client.client_id and jwt.get_unverified_header(token["access_token"])["typ"] \
            == "at+jwt"
