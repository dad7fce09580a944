"""The OpenID Connect provider: Authlib's authorization server wired to this service.

Authlib parses and checks the protocol (RFC 6749 grants and errors, RFC 7636 PKCE,
RFC 7662 introspection, RFC 7009 revocation, OIDC Core, RP-initiated logout); this module
supplies what it stores and signs with:

- clients come from ``identity.clients`` and authenticate only with the method they
  registered (secret in Basic or the body, ``private_key_jwt`` checked with
  ``identity.jose``, or none for public clients);
- authorization codes are stored hashed, kept after use: a second use revokes what the
  first issued (``identity.tokens.revoke_grant``, RFC 6749 §4.1.2);
- PKCE is mandatory and S256 only (RFC 9700 §2.1.1: plain is refused);
- access, ID and refresh tokens are made by ``identity.tokens``, whose signing keys live
  in the KeyStore: Authlib's token generator and ID-token encoder are replaced.

The server is built per request (``Provider(session, keystore, issuer=...)``); it is cheap.
It is framework-free: the HTTP layer builds an :class:`OAuthRequest` and turns the
``(status, body, headers)`` the server returns into a response.
"""

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode as _OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity import federation, jose, sessions, signing_keys, subjects, tokens
from identity.client_models import oauth_authorization_code, oauth_client_assertion, oauth_consent
from identity.clients import SCOPES, TOKEN_ALGS, USER_SCOPES, Client, find_client
from trust import audit
from trust.clock import as_utc, utc_now
from trust.db import GroupCommit
from trust.errors import InvalidToken, PermissionDenied, TrustError
from trust.hashes import sm3

CODE_LIFETIME = timedelta(seconds=120)  # RFC 6749 §4.1.2: short-lived; 10 minutes at most
CODE_RETENTION = timedelta(days=1)  # a used code is kept this long, to recognise its replay
ASSERTION_MAX_LIFETIME = timedelta(minutes=10)
LEEWAY = timedelta(seconds=60)
MAX_TOKEN_CHARS = 8192
MAX_BASIC_CHARS = 1024
MAX_CODE_CHARS = 128
MAX_STATE_CHARS = 1024
MAX_NONCE_CHARS = 255
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Authentication context classes (OIDC Core §2 acr): a password alone, or with a TOTP code.
ACR_PASSWORD = "urn:trust:acr:password"
ACR_MFA = "urn:trust:acr:mfa"
SECRET_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ALL_METHODS = [*SECRET_METHODS, "none"]
ECHOED_PARAMETERS = frozenset({"response_type", "redirect_uri"})  # in Authlib's error descriptions

# Where each endpoint lives, below the issuer URL; the HTTP layer routes these paths.
PATHS = {
    "discovery": "/.well-known/openid-configuration",
    "authorization": "/oauth/authorize",
    "token": "/oauth/token",
    "jwks": "/oauth/jwks",
    "userinfo": "/oauth/userinfo",
    "introspection": "/oauth/introspect",
    "revocation": "/oauth/revoke",
    "end_session": "/oauth/logout",
}


@dataclass(frozen=True)
class EndUser:
    """The person behind a login session, as the authorization endpoint hands them to Authlib."""

    subject: "subjects.Subject"
    auth_time: datetime
    acr: str
    amr: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.subject.id


class _Payload(OAuth2Payload):
    def __init__(self, params: Mapping[str, list[str]]):
        self._datalist = {key: list(values) for key, values in params.items()}
        self._data = {key: values[0] for key, values in self._datalist.items() if values}

    @property
    def data(self) -> dict:
        return self._data

    @property
    def datalist(self) -> dict:
        return self._datalist


def _known_openid_scopes(params: Mapping[str, list[str]]) -> Mapping[str, list[str]]:
    """An OpenID request's scope without the values this provider does not know: OIDC Core
    §3.1.2.1 says to ignore them (plain OAuth requests still get invalid_scope)."""
    values = params.get("scope")
    if not values or "openid" not in values[0].split():
        return params
    known = [scope for scope in values[0].split() if scope in SCOPES]
    return {**params, "scope": [" ".join(known), *values[1:]]}


class OAuthRequest(OAuth2Request):
    """An HTTP request as Authlib reads it.

    ``params`` are the protocol parameters (the query of an authorization request, the
    form of a token request), each name with all its values, so repeated parameters are
    seen; ``form`` is the body; ``login_cookie`` is the login session's cookie value,
    which logout ends.
    """

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], params: Mapping[str, list[str]],
                 form: Mapping[str, list[str]] | None = None, login_cookie: str | None = None):
        super().__init__(method, uri, headers=headers)
        self.payload = _Payload(_known_openid_scopes(params))
        self._form = _Payload(form or {}).data
        self.login_cookie = login_cookie

    @property
    def args(self) -> dict:
        return self.payload.data

    @property
    def form(self) -> dict:
        return self._form


@dataclass(frozen=True)
class AuthorizationCode:
    grant_id: str
    client_id: str
    subject_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    auth_time: datetime
    acr: str
    amr: tuple[str, ...]

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class _RefreshCredential:
    grant: "tokens.RefreshGrant"

    def check_client(self, client: Client) -> bool:
        return self.grant.client_id == client.client_id

    def get_scope(self) -> str:
        return " ".join(sorted(self.grant.scopes))


class Provider(AuthorizationServer):
    """The authorization server for one request, over one database session."""

    def __init__(self, session: Session, keystore, *, issuer: str, group: GroupCommit | None = None,
                 clock=utc_now):
        super().__init__(scopes_supported=list(SCOPES))
        self.session = session
        self.keystore = keystore
        self.issuer = issuer
        self.group = group  # writes of a request that has only read so far (trust.db.begin_reading)
        self.clock = clock
        self.register_client_auth_method("client_secret_basic", self._authenticate_client_secret_basic)
        self.register_client_auth_method("private_key_jwt", self._authenticate_private_key_jwt)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), OpenIDCode(self)])
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(federation.TokenExchangeGrant)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(EndSessionEndpoint)

    # What Authlib's AuthorizationServer asks of a framework integration.
    def query_client(self, client_id: str) -> Client | None:
        client = find_client(self.session, client_id)
        return client if client is not None and client.status == "active" else None

    def save_token(self, token: dict, request) -> None:
        """Nothing to do: identity.tokens records every token as it issues it."""

    def create_oauth2_request(self, request: OAuthRequest) -> OAuthRequest:
        """The request as built by the HTTP layer, once its parameters are plain ASCII:
        RFC 6749 Appendix A allows nothing else, and Authlib repeats some of them in its
        error descriptions, which must be ASCII without quote or backslash (§5.2)."""
        for name, values in [*request.payload.datalist.items(), *((k, [v]) for k, v in request.form.items())]:
            for value in values:
                if not value.isascii() or not value.isprintable() or (
                        name in ECHOED_PARAMETERS and ('"' in value or "\\" in value)):
                    raise InvalidRequestError("Parameters must be printable ASCII.")
        return request

    def handle_response(self, status: int, body, headers) -> tuple[int, object, list]:
        return status, body, list(headers)

    def send_signal(self, name, *args, **kwargs) -> None:
        """Authlib's signals are not used; the audit log records what matters."""

    def issue_tokens(self, request: OAuthRequest, user, scope: str | None, include_refresh_token: bool,
                     extra_claims: dict | None = None) -> dict:
        """The token response of every grant, from identity.tokens."""
        client: Client = request.client
        scopes = frozenset((scope or "").split())
        code, refresh = request.authorization_code, request.refresh_token
        grant_id = code.grant_id if code else refresh.grant.grant_id if refresh else None
        subject = user.id if user else None
        access_token, issued = tokens.issue_access_token(
            self.session, self.keystore, issuer=self.issuer, client_id=client.client_id, subject=subject,
            scopes=scopes, alg=client.token_alg, grant_id=grant_id, extra_claims=extra_claims, group=self.group)
        response = {"access_token": access_token, "token_type": "Bearer",
                    "expires_in": int((issued.expires_at - issued.issued_at).total_seconds()),
                    "scope": " ".join(sorted(scopes))}
        if include_refresh_token and subject is not None:
            response["refresh_token"] = tokens.issue_refresh_token(
                self.session, client_id=client.client_id, subject=subject, scopes=scopes, grant_id=grant_id,
                family_id=refresh.grant.family_id if refresh else None)
        return response

    def _authenticate_client_secret_basic(self, query_client, request: OAuthRequest) -> Client | None:
        """RFC 6749 §2.3.1, parsed strictly: malformed credentials are invalid_client, not a crash."""
        credentials = basic_credentials(request.headers.get("Authorization"))
        if credentials is None:
            return None
        client = query_client(credentials[0])
        if client is None:
            raise InvalidClientError(status_code=401, description="The client does not exist on this server.")
        return client if client.check_client_secret(credentials[1]) else None

    def _authenticate_private_key_jwt(self, query_client, request: OAuthRequest) -> Client | None:
        """RFC 7523 §2.2 client authentication with a JWT signed by the client's registered key."""
        if request.form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return None
        assertion = request.form.get("client_assertion") or ""
        client_id = federation.unverified_claims(assertion).get("sub")
        client = query_client(client_id) if isinstance(client_id, str) else None
        if client is None or client.auth_method != "private_key_jwt":
            raise InvalidClientError(description="Invalid client assertion.")
        try:
            _, claims = jose.verify_compact(assertion, client.jwks, algorithms=list(TOKEN_ALGS),
                                            max_bytes=MAX_TOKEN_CHARS)
        except TrustError:
            raise InvalidClientError(description="The client assertion signature does not verify.") from None
        now = self.clock()
        audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        exp, jti = claims.get("exp"), claims.get("jti")
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise InvalidClientError(description="The assertion's iss and sub must be the client id.")
        if not {self.issuer, self.issuer + PATHS["token"]} & set(a for a in audiences if isinstance(a, str)):
            raise InvalidClientError(description="The assertion is not addressed to this server.")
        if not isinstance(exp, int) or not now - LEEWAY < _at(exp) < now + ASSERTION_MAX_LIFETIME:
            raise InvalidClientError(description="The assertion is expired or lives too long.")
        if not isinstance(jti, str) or not 0 < len(jti) <= 255:
            raise InvalidClientError(description="The assertion needs a jti.")
        self.session.execute(delete(oauth_client_assertion).where(oauth_client_assertion.c.expires_at < now - LEEWAY))
        try:
            with self.session.begin_nested():
                self.session.execute(insert(oauth_client_assertion).values(
                    client_id=client_id, jti=jti, expires_at=_at(exp)))
        except IntegrityError:
            raise InvalidClientError(description="The assertion was used before.") from None
        return client

# The claim naming a subject's identifier, by kind: GB 11643 ID number, GB 32100 USCC, staff number.
IDENTIFIER_CLAIMS = {"person": "id_number", "legal_person": "uscc", "officer": "staff_number"}


def user_claims(session: Session, subject: "subjects.Subject", scopes: frozenset[str], *, clock=utc_now) -> dict:
    """The claims about a person that the scopes release (ID token and userinfo)."""
    claims = {}
    if "profile" in scopes:
        claims.update(name=subject.display_name, preferred_username=subject.username, subject_kind=subject.kind)
        if subject.department:
            claims["department"] = subject.department
    if "realname" in scopes:
        claims.update({IDENTIFIER_CLAIMS[subject.kind]: subject.identifier,
                       "assurance_level": subject.assurance_level,
                       "assurance_source": subject.assurance_source})
    if "enterprise" in scopes and subject.kind == "person":
        # The legal persons this natural person is authorised (经办人) to act for, now.
        claims["represents"] = [
            {"uscc": legal_person.identifier, "name": legal_person.display_name,
             "scope": sorted(authorisation.scope), "until": int(authorisation.until.timestamp())}
            for authorisation, legal_person in subjects.represented(session, subject.id, clock=clock)]
    return claims


class _IssuingGrant:
    """Tokens come from Provider.issue_tokens, not from Authlib's bearer-token generator."""

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                       include_refresh_token=True) -> dict:
        return self.server.issue_tokens(self.request, user, scope, include_refresh_token)


class AuthorizationCodeGrant(_IssuingGrant, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                       include_refresh_token=True) -> dict:
        """A refresh token only when ``offline_access`` was asked for and granted (OIDC Core
        §11), to a client that may use the refresh_token grant."""
        offline = "offline_access" in (scope or "").split()
        return super().generate_token(user, scope, grant_type, expires_in, include_refresh_token and offline)

    def validate_authorization_request(self) -> str:
        data = self.request.payload.data
        for name, limit in (("state", MAX_STATE_CHARS), ("nonce", MAX_NONCE_CHARS)):
            if len(data.get(name) or "") > limit:
                raise InvalidRequestError(f"'{name}' is longer than {limit} characters.")
        return super().validate_authorization_request()

    def save_authorization_code(self, code: str, request: OAuthRequest) -> None:
        user: EndUser = request.user
        session, table, now = self.server.session, oauth_authorization_code, self.server.clock()
        session.execute(delete(table).where(table.c.expires_at < now - CODE_RETENTION))
        session.execute(insert(table).values(
            code_hash=_code_hash(code), grant_id=uuid.uuid4().hex, client_id=request.client.client_id,
            subject_id=user.subject.id, redirect_uri=request.payload.redirect_uri, scope=request.scope or "",
            nonce=request.payload.data.get("nonce"), code_challenge=request.payload.data["code_challenge"],
            auth_time=user.auth_time, acr=user.acr, amr=" ".join(user.amr),
            created_at=now, expires_at=now + CODE_LIFETIME))

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """Spend the code at once (one use, even under concurrent requests); a code
        presented again revokes every token its first use issued."""
        if not isinstance(code, str) or len(code) > MAX_CODE_CHARS:
            return None
        session, table, now = self.server.session, oauth_authorization_code, self.server.clock()
        spent = session.execute(update(table).where(
            table.c.code_hash == _code_hash(code), table.c.client_id == client.client_id,
            table.c.used_at.is_(None)).values(used_at=now))
        row = session.execute(select(table).where(table.c.code_hash == _code_hash(code),
                                                  table.c.client_id == client.client_id)).mappings().first()
        if row is None:
            return None
        if spent.rowcount != 1:
            tokens.revoke_grant(session, row["grant_id"])
            audit.append(session, client.client_id, "oauth.code.replayed", row["grant_id"],
                         {"subject": row["subject_id"]})
            return None
        if as_utc(row["expires_at"]) <= now:
            return None
        return AuthorizationCode(
            grant_id=row["grant_id"], client_id=row["client_id"], subject_id=row["subject_id"],
            redirect_uri=row["redirect_uri"], scope=row["scope"], nonce=row["nonce"],
            code_challenge=row["code_challenge"], auth_time=as_utc(row["auth_time"]), acr=row["acr"],
            amr=tuple(row["amr"].split()))

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Kept (marked used), so that a replay is recognised and revokes the grant."""

    def authenticate_user(self, authorization_code: AuthorizationCode):
        return active_subject(self.server.session, authorization_code.subject_id)


class S256CodeChallenge(CodeChallenge):
    """PKCE (RFC 7636) required for every client, with S256 only."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant, redirect_uri) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: 'code_challenge' is missing.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256 (plain is refused).")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> str:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: AuthorizationCode) -> str:
        return "S256"


class OpenIDCode(_OpenIDCode):
    """OIDC Core §3.1 on the code grant; the ID token is made by identity.tokens."""

    def __init__(self, provider: Provider):
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuthRequest) -> bool:
        table = oauth_authorization_code
        return self.provider.session.execute(select(table.c.code_hash).where(
            table.c.client_id == request.payload.client_id, table.c.nonce == nonce)).first() is not None

    def encode_id_token(self, token: dict, request: OAuthRequest) -> str:
        provider, code, client = self.provider, request.authorization_code, request.client
        return tokens.issue_id_token(
            provider.session, provider.keystore, issuer=provider.issuer, client_id=client.client_id,
            subject=code.subject_id, nonce=code.nonce, auth_time=code.auth_time, acr=code.acr,
            amr=list(code.amr), alg=client.token_alg, access_token=token.get("access_token"),
            extra_claims=user_claims(provider.session, request.user, frozenset(token["scope"].split()),
                                     clock=provider.clock))


class ClientCredentialsGrant(_IssuingGrant, grants.ClientCredentialsGrant):
    """A department system acting for itself, with the service scopes it was registered for."""

    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    def validate_requested_scope(self) -> None:
        allowed = self.request.client.scopes - USER_SCOPES
        requested = set((self.request.payload.scope or "").split()) or allowed
        if not requested or not requested <= allowed:
            raise InvalidScopeError("The client is not registered for the scope requested.")
        self.request.scope = " ".join(sorted(requested))

    def create_token_response(self):
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(_IssuingGrant, grants.RefreshTokenGrant):
    """Rotation: every use spends the refresh token and returns a new one of the same
    family; a spent one presented again revokes the family (identity.tokens)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshCredential | None:
        if len(refresh_token) > MAX_TOKEN_CHARS:
            return None
        try:
            return _RefreshCredential(tokens.use_refresh_token(
                self.server.session, refresh_token, client_id=self.request.client.client_id))
        except InvalidToken:
            return None

    def authenticate_user(self, refresh_token: _RefreshCredential):
        return active_subject(self.server.session, refresh_token.grant.subject)

    def revoke_old_credential(self, refresh_token: _RefreshCredential) -> None:
        """Already spent by identity.tokens.use_refresh_token."""


class IntrospectionEndpoint(_IntrospectionEndpoint):
    """RFC 7662, answered by identity.tokens.introspect for an authenticated client."""

    CLIENT_AUTH_METHODS = SECRET_METHODS

    def create_endpoint_response(self, request: OAuthRequest):
        client = self.authenticate_endpoint_client(request)
        self.check_params(request, client)
        token = request.form["token"]
        if len(token) > MAX_TOKEN_CHARS:
            return 200, {"active": False}, default_json_headers
        server = self.server
        body = tokens.introspect(server.session, server.keystore, token, issuer=server.issuer,
                                 client_id=client.client_id)
        return 200, body, default_json_headers


class RevocationEndpoint(_RevocationEndpoint):
    """RFC 7009: a client revokes its own access or refresh token; unknown tokens are no error."""

    CLIENT_AUTH_METHODS = ALL_METHODS

    def create_endpoint_response(self, request: OAuthRequest):
        client = self.authenticate_endpoint_client(request)
        self.check_params(request, client)
        token = request.form["token"]
        if len(token) <= MAX_TOKEN_CHARS:
            tokens.revoke_token(self.server.session, token, client_id=client.client_id)
        return 200, {}, default_json_headers


class EndSessionEndpoint(_EndSessionEndpoint):
    """OpenID Connect RP-Initiated Logout 1.0: ends the login session of the cookie."""

    def get_server_jwks(self) -> dict:
        return signing_keys.jwks(self.server.session, self.server.keystore)

    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        # Authlib's check decodes with joserfc's default algorithms; ours is the same
        # verifier every other token of this service goes through (SM2 included).
        try:
            _, claims = jose.verify_compact(id_token_hint, self.get_server_jwks(), algorithms=list(TOKEN_ALGS),
                                            max_bytes=MAX_TOKEN_CHARS)
        except TrustError:
            raise InvalidRequestError("The 'id_token_hint' was not issued by this server.") from None
        if claims.get("iss") != self.server.issuer:
            raise InvalidRequestError("The 'id_token_hint' was not issued by this server.")
        return claims

    def end_session(self, end_session_request) -> None:
        cookie = end_session_request.request.login_cookie
        if cookie:
            sessions.end_session(self.server.session, cookie)


def userinfo(session: Session, keystore, access_token: str, *, issuer: str) -> dict:
    """OIDC Core §5.3: the claims about the token's subject that its scopes release."""
    token = tokens.validate_access_token(session, keystore, access_token, issuer=issuer)
    if "openid" not in token.scopes or token.subject is None:
        raise PermissionDenied("the access token lacks the scope openid (insufficient_scope)",
                               "访问令牌缺少 openid 权限范围")
    subject = active_subject(session, token.subject)
    if subject is None:
        raise InvalidToken("the token's subject is no longer active", "令牌所属用户已停用")
    return {"sub": subject.id, **user_claims(session, subject, token.scopes)}


def has_consent(session: Session, subject_id: str, client_id: str, scopes: frozenset[str]) -> bool:
    row = session.execute(select(oauth_consent.c.scopes).where(
        oauth_consent.c.subject_id == subject_id, oauth_consent.c.client_id == client_id)).first()
    return row is not None and scopes <= set(row.scopes.split())


def record_consent(session: Session, subject_id: str, client_id: str, scopes: frozenset[str],
                   clock=utc_now) -> None:
    """Remember what the person allowed this client (the union with what they allowed before)."""
    table = oauth_consent
    row = session.execute(select(table.c.scopes).where(
        table.c.subject_id == subject_id, table.c.client_id == client_id)).first()
    allowed = scopes | (set(row.scopes.split()) if row else set())
    session.execute(delete(table).where(table.c.subject_id == subject_id, table.c.client_id == client_id))
    session.execute(insert(table).values(subject_id=subject_id, client_id=client_id,
                                         scopes=" ".join(sorted(allowed)), granted_at=clock()))
    audit.append(session, subject_id, "oauth.consent", client_id, {"scopes": sorted(scopes)})


def discovery(issuer: str) -> dict:
    """OpenID Connect Discovery 1.0 §3 metadata (also RFC 8414)."""
    endpoints = {f"{name}_endpoint": issuer + path for name, path in PATHS.items()
                 if name not in ("discovery", "jwks")}
    return {
        "issuer": issuer,
        **endpoints,
        "jwks_uri": issuer + PATHS["jwks"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  federation.GRANT_TYPE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(TOKEN_ALGS),
        "token_endpoint_auth_methods_supported": ALL_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(TOKEN_ALGS),
        "introspection_endpoint_auth_methods_supported": SECRET_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SCOPES),
        "claims_supported": ["sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
                             "name", "preferred_username", "subject_kind", "department",
                             *IDENTIFIER_CLAIMS.values(), "assurance_level", "assurance_source", "represents"],
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "ui_locales_supported": ["zh-CN"],
    }


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) of an HTTP Basic Authorization header, each form-urlencoded
    (RFC 6749 §2.3.1); None without one; InvalidClientError when it cannot be read."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        if len(value) > MAX_BASIC_CHARS:
            raise ValueError
        client_id, colon, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidClientError(status_code=401, description="Malformed HTTP Basic credentials.") from None
    if not colon or not client_id:
        raise InvalidClientError(status_code=401, description="Malformed HTTP Basic credentials.")
    return unquote_plus(client_id), unquote_plus(secret)


def active_subject(session: Session, subject_id: str):
    try:
        subject = subjects.get_subject(session, subject_id)
    except TrustError:
        return None
    return subject if subject.status == "active" else None


def _code_hash(code: str) -> str:
    return sm3(code.encode()).hex()


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if abs(seconds) < 2**33 else datetime.max.replace(
        tzinfo=UTC)

