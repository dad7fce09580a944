"""The OIDC provider over HTTP: discovery, JWKS, the authorization, token, introspection,
revocation, userinfo and logout endpoints, and the login (password, then TOTP) and
consent pages, in Chinese.

Pages carry no script; every form carries a CSRF token (double submit: an HttpOnly
SameSite cookie and a hidden field, compared in constant time). The login cookie is
HttpOnly, SameSite=Lax, and Secure with the ``__Host-`` prefix when the service is
served over https. After login the browser goes back only to an authorization request
of this service (``next`` is checked), never to an address given in the request: the
only way out to a client is its registered redirect URI, matched exactly.
"""

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import cast
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Blueprint, Response, current_app, json, redirect, render_template, request

from api.auth import MAX_TOKEN_CHARS, bearer_token
from identity import authn, oidc, sessions, signing_keys
from identity.clients import SCOPES, find_client
from trust.clock import utc_now
from trust.db import begin_reading, end_reading
from trust.errors import InvalidToken, Unauthenticated

blueprint = Blueprint("oidc_http", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/identity-static")

CSRF_FIELD = "csrf_token"
MAX_USERNAME_CHARS = 64
MAX_PASSWORD_CHARS = 1024
MAX_QUERY_CHARS = 8192
RECENT_LOGIN_SECONDS = 60  # prompt=login is satisfied by a login this recent
CSP_SOURCE = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|http://\[[0-9a-fA-F:]+\](:[0-9]{1,5})?")
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'{extra}")


def _issuer() -> str:
    return current_app.extensions["trust.settings"].public_url


def _secure() -> bool:
    return _issuer().startswith("https://")


def _session():
    return current_app.extensions["trust.sessions"]()


def _keystore():
    return current_app.extensions["trust.keystore"]


def _provider(session) -> oidc.Provider:
    return oidc.Provider(session, _keystore(), issuer=_issuer(), group=current_app.extensions["trust.group_commit"])


def _login_cookie() -> str | None:
    return request.cookies.get(sessions.cookie_name(_secure()))


def _device_cookie_name() -> str:
    return "__Host-trust_device" if _secure() else "trust_device"


def _csrf_cookie_name() -> str:
    return "__Host-trust_csrf" if _secure() else "trust_csrf"


def _oauth_request(params, form=None) -> oidc.OAuthRequest:
    uri = _issuer() + request.full_path.rstrip("?")
    headers = cast(Mapping[str, str], request.headers)  # Werkzeug's Headers: a case-insensitive mapping
    return oidc.OAuthRequest(request.method, uri, headers, params, form, login_cookie=_login_cookie())


def _respond(result) -> Response:
    status, body, headers = result
    if isinstance(body, dict):
        body = json.dumps(body)
    return Response(body, status=status, headers=headers)


def _current_user(session) -> oidc.EndUser | None:
    """The person of the login cookie, once every factor they need is done."""
    login = _login_session(session)
    if login is None or not _factors_done(login[1], login[0]):
        return None
    login_session, subject = login
    return oidc.EndUser(subject=subject, auth_time=login_session.auth_time, acr=login_session.acr,
                        amr=tuple(login_session.amr))


def signed_in_subject(session):
    """The subject logged in on this browser with every factor done (our first-party pages
    use the single sign-on session, like the authorization endpoint); None otherwise."""
    user = _current_user(session)
    return user.subject if user is not None else None


def _login_session(session):
    cookie = _login_cookie()
    if not cookie or len(cookie) > 256:
        return None
    login = sessions.load_session(session, cookie, clock=utc_now)
    if login is None:
        return None
    subject = oidc.active_subject(session, login.subject_id)
    return (login, subject) if subject is not None else None


def _needs_totp(subject) -> bool:
    return subject.totp_enrolled or authn.totp_required(subject)


def _factors_done(subject, login) -> bool:
    return "otp" in login.amr or not _needs_totp(subject)


# Pages ---------------------------------------------------------------------------------

def _form_token(csrf_cookie: str) -> str:
    """What a form must carry. Once the browser has a login session, an HMAC of the CSRF
    cookie keyed with the session cookie (HttpOnly, never shown): whoever can plant a CSRF
    cookie (a sibling subdomain, plain http) still cannot make the token for the victim's
    session, so cannot obtain a consent or end a session in their name. Before login there is
    no session to bind to: the token is the cookie itself (double submit), and over https the
    cookie's __Host- prefix keeps other hosts from planting it."""
    login_cookie = _login_cookie()
    if not login_cookie:
        return csrf_cookie
    mac = hmac.new(login_cookie.encode("utf-8", "replace"), b"csrf:" + csrf_cookie.encode("utf-8", "replace"),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def form_page(template: str, status: int = 200, form_action: str = "", **context) -> Response:
    """Render a page with the CSRF token of this browser (its cookie made on first need)."""
    cookie = request.cookies.get(_csrf_cookie_name()) or ""
    fresh = len(cookie) != 43
    if fresh:
        cookie = secrets.token_urlsafe(32)
    token = _form_token(cookie)
    response = Response(render_template(template, csrf_token=token, csrf_field=CSRF_FIELD, **context),
                        status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP.format(extra=f" {form_action}" if form_action else "")
    response.headers["Cache-Control"] = "no-store"
    if fresh:
        response.set_cookie(_csrf_cookie_name(), cookie, httponly=True, secure=_secure(), samesite="Lax", path="/")
    return response


def csrf_refused() -> Response | None:
    """None when the form carries this browser's CSRF token; else the page that says so."""
    cookie = request.cookies.get(_csrf_cookie_name(), "")
    field = request.form.get(CSRF_FIELD, "")
    if cookie and hmac.compare_digest(_form_token(cookie).encode("utf-8", "replace"),
                                      field.encode("utf-8", "replace")):
        return None
    return _error_page("页面已过期", "表单校验码缺失或不正确，请返回上一页刷新后重试。",
                       "The form's CSRF token is missing or wrong; reload the page.", 401)


def _error_page(title_zh: str, detail_zh: str, detail_en: str, status: int = 400) -> Response:
    return form_page("identity/error.html", status, title_zh=title_zh, detail_zh=detail_zh, detail_en=detail_en)


FIRST_PARTY_PAGES = ("/wallet",)  # pages of this service that send a person to log in and back


def _safe_next(value: str | None) -> str | None:
    """Only an authorization request or a first-party page of this service: a path, never an
    address elsewhere."""
    if value in FIRST_PARTY_PAGES:
        return value
    if not value or len(value) > MAX_QUERY_CHARS or not value.startswith(oidc.PATHS["authorization"] + "?"):
        return None
    if any(c in value for c in "\\\r\n\t") or value.startswith("//"):
        return None
    return value


def _client_origin(query: str | None, session) -> str:
    """The origin of a registered redirect URI of the pending authorization request: the
    page's CSP lets the form's redirect chain end there (form-action)."""
    if not query:
        return ""
    params = parse_qs(query.split("?", 1)[-1][:MAX_QUERY_CHARS])
    client = find_client(session, (params.get("client_id") or [""])[0])
    redirect_uri = (params.get("redirect_uri") or [""])[0]
    if client is None or redirect_uri not in client.redirect_uris:
        return ""
    origin = f"{urlsplit(redirect_uri).scheme}://{urlsplit(redirect_uri).netloc}"
    return origin if CSP_SOURCE.fullmatch(origin) else ""


def _set_login_cookie(response: Response, value: str) -> None:
    response.set_cookie(sessions.cookie_name(_secure()), value, httponly=True, secure=_secure(),
                        samesite="Lax", path="/")


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/login", methods=["GET"])
def login_page():
    next_url = _safe_next(request.args.get("next"))
    with _session() as session:
        return form_page("identity/login.html", next=next_url or "", form_action=_client_origin(next_url, session))


@blueprint.route("/login", methods=["POST"])
def login_submit():
    if refused := csrf_refused():
        return refused
    next_url = _safe_next(request.form.get("next"))
    username = request.form.get("username", "")[:MAX_USERNAME_CHARS]
    password = request.form.get("password", "")[:MAX_PASSWORD_CHARS]
    with _session() as session:
        origin = _client_origin(next_url, session)
        try:
            subject = authn.authenticate_password(session, username, password, address=request.remote_addr or "",
                                                  device=request.cookies.get(_device_cookie_name()))
        except Unauthenticated as error:
            session.commit()  # keep the failure count: throttling and lockout
            return form_page("identity/login.html", 401, next=next_url or "", username=username, error=error.zh,
                         form_action=origin)
        if authn.totp_required(subject) and not subject.totp_enrolled:
            session.commit()
            return _error_page("需要动态口令", "您的账号必须使用动态口令登录，但尚未绑定。请联系管理员绑定后再登录。",
                               "This account must use TOTP and has none enrolled; ask an administrator.", 403)
        old = _login_cookie()
        if old and len(old) <= 256:
            sessions.end_session(session, old)
        factor_done = not _needs_totp(subject)
        cookie, _ = sessions.start_session(session, subject.id, amr=["pwd"],
                                           acr=oidc.ACR_PASSWORD, address=request.remote_addr or "")
        device = authn.remember_device(session, subject.id)
        session.commit()
    target = next_url if factor_done else "/login/totp" + (f"?{urlencode({'next': next_url})}" if next_url else "")
    response = redirect(target or "/login/done", 303)
    _set_login_cookie(response, cookie)
    # OWASP's device cookie: this browser is not locked out by strangers' failures on the account
    response.set_cookie(_device_cookie_name(), device, max_age=int(authn.DEVICE_LIFETIME.total_seconds()),
                        httponly=True, secure=_secure(), samesite="Lax", path="/")
    return _no_store(response)


@blueprint.route("/login/totp", methods=["GET"])
def totp_page():
    next_url = _safe_next(request.args.get("next"))
    with _session() as session:
        if _login_session(session) is None:
            return redirect("/login" + (f"?{urlencode({'next': next_url})}" if next_url else ""), 303)
        session.commit()
        return form_page("identity/totp.html", next=next_url or "", form_action=_client_origin(next_url, session))


@blueprint.route("/login/totp", methods=["POST"])
def totp_submit():
    if refused := csrf_refused():
        return refused
    next_url = _safe_next(request.form.get("next"))
    code = request.form.get("code", "").strip()[:16]
    with _session() as session:
        login = _login_session(session)
        if login is None:
            return redirect("/login" + (f"?{urlencode({'next': next_url})}" if next_url else ""), 303)
        _login, subject = login
        try:
            authn.verify_totp(session, _keystore(), subject.id, code)
        except Unauthenticated as error:
            session.commit()
            return form_page("identity/totp.html", 401, next=next_url or "", error=error.zh,
                         form_action=_client_origin(next_url, session))
        # A new session for the stronger login: the cookie changes with the privilege.
        sessions.end_session(session, _login_cookie())
        cookie, _ = sessions.start_session(session, subject.id, amr=["pwd", "otp"], acr=oidc.ACR_MFA,
                                           address=request.remote_addr or "")
        session.commit()
    response = redirect(next_url or "/login/done", 303)
    _set_login_cookie(response, cookie)
    return _no_store(response)


@blueprint.get("/login/done")
def login_done():
    with _session() as session:
        user = _current_user(session)
        session.commit()
    if user is None:
        return redirect("/login", 303)
    return form_page("identity/done.html", name=user.subject.display_name)


# The authorization endpoint and consent --------------------------------------------------

def _prompts(oauth_request: oidc.OAuthRequest) -> set[str]:
    return set((oauth_request.payload.data.get("prompt") or "").split())


def _login_too_old(user: oidc.EndUser, oauth_request: oidc.OAuthRequest) -> bool:
    """prompt=login or max_age (OIDC Core §3.1.2.1) ask for a login; one within the last
    RECENT_LOGIN_SECONDS answers them (else the browser would loop back to the login page)."""
    age = (utc_now() - user.auth_time).total_seconds()
    max_age = oauth_request.payload.data.get("max_age", "")
    limit = int(max_age) if max_age.isdigit() and len(max_age) < 10 else None
    if "login" in _prompts(oauth_request):
        limit = 0
    return limit is not None and age > max(limit, RECENT_LOGIN_SECONDS)


# Authlib's descriptions that say too little to the developer reading them at the callback
# (RFC 6749 §4.1.2.1 keeps error_description to ASCII, so it cannot be Chinese).
_CLEARER = {"Replay attack": "this nonce was used in an earlier request: start the sign-in again with a new nonce"}


def _authorization_error(provider: oidc.Provider, oauth_request, error: OAuth2Error) -> Response:
    error.description = _CLEARER.get(error.description, error.description)
    if error.redirect_uri:  # set by Authlib only once the redirect URI matched the client's
        return _no_store(_respond(provider.handle_error_response(oauth_request, error)))
    return _error_page("授权请求无效", "应用发来的授权请求无效，无法继续。请返回应用重试。",
                       f"{error.error}: {error.description or ''}")


@blueprint.get(oidc.PATHS["authorization"])
def authorize():
    params = request.args.to_dict(flat=False)
    with _session() as session:
        provider = _provider(session)
        oauth_request = _oauth_request(params)
        user = _current_user(session)
        try:
            grant = provider.get_consent_grant(oauth_request, end_user=user)
            prompts = _prompts(oauth_request)
            if user is not None and "none" in prompts and _login_too_old(user, oauth_request):
                raise LoginRequiredError(redirect_uri=grant.redirect_uri, state=oauth_request.payload.state)
            if user is not None and "none" in prompts and not oidc.has_consent(
                    session, user.id, grant.client.client_id, _scopes(oauth_request)):
                raise ConsentRequiredError(redirect_uri=grant.redirect_uri, state=oauth_request.payload.state)
        except OAuth2Error as error:
            error.state = oauth_request.payload.state
            return _authorization_error(provider, oauth_request, error)
        if user is None or _login_too_old(user, oauth_request):
            session.commit()
            return redirect("/login?" + urlencode({"next": request.full_path}), 303)
        scopes = _scopes(oauth_request)
        if "consent" not in _prompts(oauth_request) and oidc.has_consent(session, user.id, grant.client.client_id,
                                                                       scopes):
            response = provider.create_authorization_response(oauth_request, grant_user=user, grant=grant)
            session.commit()
            return _no_store(_respond(response))
        client = grant.client
        origin = _client_origin(request.full_path, session)
        session.commit()  # the login session's last use
        return form_page("identity/consent.html", client=client, user=user.subject,
                     scopes=[(s, *SCOPES[s]) for s in sorted(scopes)],
                     request_query=request.query_string.decode("ascii", "replace"), form_action=origin)


def _scopes(oauth_request: oidc.OAuthRequest) -> frozenset[str]:
    return frozenset((oauth_request.scope or "").split())


@blueprint.post("/consent")
def consent():
    if refused := csrf_refused():
        return refused
    query = request.form.get("request", "")[:MAX_QUERY_CHARS]
    params = parse_qs(query, keep_blank_values=True)
    with _session() as session:
        provider = _provider(session)
        oauth_request = oidc.OAuthRequest("GET", _issuer() + oidc.PATHS["authorization"] + "?" + query,
                                          request.headers, params, login_cookie=_login_cookie())
        user = _current_user(session)
        if user is None:
            return redirect("/login?" + urlencode({"next": oidc.PATHS["authorization"] + "?" + query}), 303)
        try:
            grant = provider.get_consent_grant(oauth_request, end_user=user)
        except OAuth2Error as error:
            error.state = oauth_request.payload.state
            return _authorization_error(provider, oauth_request, error)
        allowed = request.form.get("decision") == "allow"
        if allowed:
            oidc.record_consent(session, user.id, grant.client.client_id, _scopes(oauth_request))
        response = provider.create_authorization_response(oauth_request, grant_user=user if allowed else None,
                                                          grant=grant)
        session.commit()
    return _no_store(_respond(response))


# Machine endpoints -------------------------------------------------------------------------

@blueprint.get(oidc.PATHS["discovery"])
def discovery():
    response = Response(json.dumps(oidc.discovery(_issuer())), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@blueprint.get(oidc.PATHS["jwks"])
def jwks():
    with _session() as session:
        body = signing_keys.jwks(session, _keystore())
        session.commit()
    response = Response(json.dumps(body), mimetype="application/jwk-set+json")
    response.headers["Cache-Control"] = "public, max-age=60"  # new keys appear before they sign
    return response


def _oauth_error(status: int, error: str, description: str, headers: dict | None = None) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return _no_store(Response(body, status=status, mimetype="application/json", headers=headers))


def _claimed_client(form: dict) -> tuple[str, str] | None:
    """(client id, authentication method) a token-endpoint request claims, before checking it."""
    try:
        basic = oidc.basic_credentials(request.headers.get("Authorization"))
    except OAuth2Error:
        return None
    if basic is not None:
        return basic[0], "client_secret_basic"
    if form.get("client_assertion"):
        return None  # private_key_jwt: Authlib's descriptions say what is wrong already
    client_id = (form.get("client_id") or [""])[0]
    return (client_id, "client_secret_post" if form.get("client_secret") else "none") if client_id else None


def _client_failure(session, claimed: tuple[str, str] | None) -> str:
    """What to tell a client whose authentication failed: Authlib names every method it
    tried ("cannot authenticate with methods: …") whatever went wrong."""
    if claimed is None:
        return ("no client authentication: send the client id and secret (HTTP Basic, client_secret_basic) "
                "or a client assertion (private_key_jwt)")
    client = find_client(session, claimed[0])
    if client is None or client.status != "active":
        return "the client does not exist here or is disabled"
    if not client.check_endpoint_auth_method(claimed[1], "token"):
        return f"this client authenticates with {client.auth_method}, not {claimed[1]}"
    return "the client secret is wrong"


def _form_endpoint(run, *, reads_first: bool = False) -> Response:
    """Token, introspection and revocation: the form is the protocol's parameters.
    The session is committed whatever the answer: a refused replay has revoked tokens.
    Failed client authentications are counted per client and address (identity.authn).
    ``reads_first``: everything up to the first write only reads (client credentials,
    introspection), so it runs in a reading transaction (trust.db.begin_reading)."""
    form = request.form.to_dict(flat=False)
    repeated = sorted(name for name, values in form.items() if len(values) > 1)
    if repeated:  # RFC 6749 §3.1, §3.2: parameters must not be included more than once
        return _oauth_error(400, "invalid_request", f"the parameter {repeated[0][:40]} is given more than once")
    claimed, address = _claimed_client(form), request.remote_addr or ""
    with _session() as session:
        if reads_first and "client_assertion" not in form:  # an assertion's jti is recorded against replay
            begin_reading(session)
        if claimed is not None:
            retry = authn.client_auth_retry_after(session, claimed[0], address)
            if retry is not None:
                return _oauth_error(429, "temporarily_unavailable", "too many failed client authentications from "
                                    f"this address; retry after {retry} seconds", {"Retry-After": str(retry)})
        provider = _provider(session)
        oauth_request = _oauth_request(form, form)
        try:
            result = run(provider, oauth_request)
        except OAuth2Error as error:  # raised before Authlib's own handling: malformed parameters
            result = provider.handle_error_response(oauth_request, error)
        status, body, headers = result
        if status == 401 and isinstance(body, dict) and body.get("error") == "invalid_client":
            body = {**body, "error_description": _client_failure(session, claimed)}
            headers = [(k, v) for k, v in headers if k.lower() != "www-authenticate"] + \
                [("WWW-Authenticate", 'Basic error="invalid_client"')]
            if claimed is not None and find_client(session, claimed[0]) is not None:
                end_reading(session)
                authn.count_client_auth_failure(session, claimed[0], address)
            result = (status, body, headers)
        session.commit()
    return _respond(result)


@blueprint.post(oidc.PATHS["token"])
def token():
    return _form_endpoint(lambda provider, oauth_request: provider.create_token_response(oauth_request),
                          reads_first=request.form.get("grant_type") == "client_credentials")


@blueprint.post(oidc.PATHS["introspection"])
def introspect():
    return _form_endpoint(lambda provider, oauth_request:
                          provider.create_endpoint_response("introspection", oauth_request), reads_first=True)


@blueprint.post(oidc.PATHS["revocation"])
def revoke():
    return _form_endpoint(lambda provider, oauth_request:
                          provider.create_endpoint_response("revocation", oauth_request))


@blueprint.route(oidc.PATHS["userinfo"], methods=["GET", "POST"])
def userinfo():
    # OIDC Core §5.3.1: the token in the Authorization header, or in a form-encoded POST body
    # (RFC 6750 §2.2), as some certified relying parties (pyoidc) send it by default.
    form_tokens = request.form.getlist("access_token") if request.method == "POST" else []
    if len(form_tokens) == 1 and not request.headers.get("Authorization") and \
            request.mimetype == "application/x-www-form-urlencoded":
        access_token = form_tokens[0]
        if len(access_token) > MAX_TOKEN_CHARS:
            raise InvalidToken("the access token is too large", "访问令牌过长")
    else:
        access_token = bearer_token()
    with _session() as session:
        claims = oidc.userinfo(session, _keystore(), access_token, issuer=_issuer())
    return _no_store(Response(json.dumps(claims), mimetype="application/json"))


@blueprint.route(oidc.PATHS["end_session"], methods=["GET", "POST"])
def logout():
    if request.method == "POST" and (refused := csrf_refused()):
        return refused
    params = (request.args if request.method == "GET" else request.form).to_dict(flat=False)
    params.pop(CSRF_FIELD, None)
    with _session() as session:
        provider = _provider(session)
        oauth_request = _oauth_request(params)
        try:
            end_session_request = provider.validate_endpoint_request("end_session", oauth_request)
        except OAuth2Error as error:
            return _error_page("退出请求无效", "退出登录的请求无效。", f"{error.error}: {error.description or ''}")
        if end_session_request.needs_confirmation and request.method == "GET":
            return form_page("identity/logout.html", fields=[(k, v) for k, values in params.items() for v in values])
        result = provider.create_endpoint_response("end_session", end_session_request)
        session.commit()
    response = _respond(result) if result else form_page("identity/logged_out.html")
    response.delete_cookie(sessions.cookie_name(_secure()), path="/", secure=_secure(), httponly=True,
                           samesite="Lax")
    return _no_store(response)
