"""Federation (身份互认, 全国漫游): ID tokens of trusted external issuers exchanged for
our access tokens, by OAuth 2.0 Token Exchange (RFC 8693).

A federation agreement is configured as a trusted issuer: its issuer URL, its JWK set,
the algorithms it signs with, the audience its ID tokens carry for us, the real-name
assurance level the agreement grants its identities, and the most scopes an exchanged
token may carry. An external identity is mapped to a local subject through an explicit
link (issuer, external ``sub``) -> subject id. The exchanged access token is for the
local subject, with ``assurance_level`` the level the agreement grants and ``federated_iss`` naming
where the person logged in; each external ID token is accepted once.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
    grants,
)
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity import jose, subjects
from identity.client_models import federated_identity, federated_issuer, federated_token_use
from identity.clients import GRANT_TOKEN_EXCHANGE, SCOPES, TOKEN_ALGS, USER_SCOPES
from trust import audit
from trust.clock import utc_now
from trust.errors import InvalidInput, InvalidToken, NotFound, PermissionDenied, TrustError
from trust.hashes import sm3

GRANT_TYPE = GRANT_TOKEN_EXCHANGE
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
LEVELS = ("L1", "L2", "L3")
MAX_TOKEN_CHARS = 8192
MAX_ISSUER_CHARS = 255
LEEWAY = timedelta(seconds=60)
MAX_ID_TOKEN_AGE = timedelta(minutes=10)  # an older ID token is not a fresh login


@dataclass(frozen=True)
class TrustedIssuer:
    issuer: str
    name: str
    jwks: dict
    algorithms: tuple[str, ...]
    audience: str
    assurance_level: str
    scopes: frozenset[str]
    status: str


@dataclass(frozen=True)
class FederatedLogin:
    """An accepted external ID token: who it is here, and what the agreement grants."""

    subject_id: str
    issuer: str
    external_subject: str
    assurance_level: str
    scopes: frozenset[str]


def add_issuer(session: Session, *, issuer: str, name: str, jwks: dict, audience: str,
               assurance_level: str, scopes: list[str], algorithms: list[str] = ("ES256",),
               actor: str = "system", clock=utc_now) -> TrustedIssuer:
    """Record a federation agreement's issuer. Does not commit."""
    if not isinstance(issuer, str) or not issuer.startswith("https://") or len(issuer) > MAX_ISSUER_CHARS:
        raise InvalidInput("an issuer is an https URL of at most 255 characters",
                           "签发方须为不超过 255 个字符的 https 地址")
    if assurance_level not in LEVELS:
        raise InvalidInput("the assurance level is L1, L2 or L3", "实名认证等级只能是 L1、L2 或 L3")
    if not set(algorithms) <= set(TOKEN_ALGS) or not algorithms:
        raise InvalidInput(f"algorithms must be among {', '.join(TOKEN_ALGS)}",
                           f"签名算法只能是 {', '.join(TOKEN_ALGS)}")
    if not set(scopes) <= set(SCOPES):
        raise InvalidInput("unknown scopes", "未知的权限范围")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or any(not isinstance(k, dict) or "d" in k or k.get("kty") == "oct"
                                                      for k in keys):
        raise InvalidInput("jwks must be a JWK set of public keys", "jwks 须为公钥 JWK 集")
    if not isinstance(audience, str) or not 0 < len(audience) <= 255:
        raise InvalidInput("the audience is 1 to 255 characters", "受众须为 1 至 255 个字符")
    row = dict(issuer=issuer, name=name, jwks=json.dumps(jwks), algorithms=" ".join(algorithms),
               audience=audience, assurance_level=assurance_level, scopes=" ".join(sorted(scopes)),
               status="active", created_at=clock())
    session.execute(delete(federated_issuer).where(federated_issuer.c.issuer == issuer))
    session.execute(insert(federated_issuer).values(**row))
    audit.append(session, actor, "federation.issuer.add", issuer,
                 {"name": name, "assurance_level": assurance_level, "scopes": sorted(scopes)})
    return _issuer(row)


def get_issuer(session: Session, issuer: str) -> TrustedIssuer:
    row = session.execute(select(federated_issuer).where(federated_issuer.c.issuer == issuer)).mappings().first()
    if row is None or row["status"] != "active":
        raise NotFound(f"no trusted issuer {issuer[:100]!r}", f"没有受信任的签发方 {issuer[:100]!r}")
    return _issuer(row)


def link_identity(session: Session, *, issuer: str, external_subject: str, subject_id: str,
                  actor: str = "system", clock=utc_now) -> None:
    """Map an external identity to a local subject. Does not commit.

    Officers are never linked: they sign in here, with TOTP, and a federated login would
    give them an access token without it."""
    get_issuer(session, issuer)
    if subjects.get_subject(session, subject_id).kind == "officer":
        raise PermissionDenied("an officer cannot be linked to an external identity: officers sign in here, with TOTP",
                               "工作人员不能关联外部身份：工作人员须在本平台使用动态口令登录")
    if not isinstance(external_subject, str) or not 0 < len(external_subject) <= 255:
        raise InvalidInput("the external subject is 1 to 255 characters", "外部用户标识须为 1 至 255 个字符")
    table = federated_identity
    session.execute(delete(table).where(table.c.issuer == issuer, table.c.external_subject == external_subject))
    session.execute(insert(table).values(issuer=issuer, external_subject=external_subject,
                                         subject_id=subject_id, linked_at=clock()))
    audit.append(session, actor, "federation.link", subject_id, {"issuer": issuer, "sub": external_subject})


def accept_id_token(session: Session, id_token: str, *, clock=utc_now) -> FederatedLogin:
    """Verify an external ID token against its trusted issuer and map it to a local
    subject; raise InvalidToken for anything else. Records the token as used."""
    if not isinstance(id_token, str) or len(id_token) > MAX_TOKEN_CHARS:
        raise InvalidToken("the ID token is too large", "身份令牌过长")
    issuer_url = unverified_claims(id_token).get("iss")
    if not isinstance(issuer_url, str) or len(issuer_url) > MAX_ISSUER_CHARS:
        raise InvalidToken("the ID token names no issuer", "身份令牌未注明签发方")
    try:
        issuer = get_issuer(session, issuer_url)
        _, claims = jose.verify_compact(id_token, issuer.jwks, algorithms=list(issuer.algorithms),
                                        max_bytes=MAX_TOKEN_CHARS)
    except TrustError:
        raise InvalidToken("the ID token is not from a trusted issuer or its signature does not verify",
                           "身份令牌并非来自受信任的签发方，或签名验证失败") from None
    now = clock()
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    exp, iat, nbf, sub = claims.get("exp"), claims.get("iat"), claims.get("nbf"), claims.get("sub")
    problem = None
    if claims.get("iss") != issuer.issuer:
        problem = ("the ID token's iss is not the trusted issuer", "身份令牌的签发方不符")
    elif issuer.audience not in audiences:
        problem = ("the ID token is for another audience", "身份令牌的受众不是本平台")
    elif not _number(exp) or _at(exp) + LEEWAY <= now:
        problem = ("the ID token has expired", "身份令牌已过期")
    elif not _number(iat) or _at(iat) - LEEWAY > now or now - _at(iat) > MAX_ID_TOKEN_AGE:
        problem = ("the ID token was not issued just now", "身份令牌签发时间无效")
    elif nbf is not None and (not _number(nbf) or _at(nbf) - LEEWAY > now):
        problem = ("the ID token is not valid yet", "身份令牌尚未生效")
    elif not isinstance(sub, str) or not 0 < len(sub) <= 255:
        problem = ("the ID token has no subject", "身份令牌缺少用户标识")
    if problem:
        raise InvalidToken(*problem)
    link = session.execute(select(federated_identity.c.subject_id).where(
        federated_identity.c.issuer == issuer.issuer, federated_identity.c.external_subject == sub)).first()
    if link is None:
        raise InvalidToken("no local identity is linked to this external identity",
                           "该外部身份尚未与本平台用户关联")
    try:
        with session.begin_nested():
            session.execute(insert(federated_token_use).values(
                token_hash=sm3(id_token.encode()).hex(), expires_at=_at(exp) + LEEWAY))
    except IntegrityError:
        raise InvalidToken("this ID token was exchanged before", "该身份令牌已被使用") from None
    session.execute(delete(federated_token_use).where(federated_token_use.c.expires_at < now - LEEWAY))
    return FederatedLogin(subject_id=link.subject_id, issuer=issuer.issuer, external_subject=sub,
                          assurance_level=issuer.assurance_level, scopes=issuer.scopes)


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """RFC 8693: a client presents a federated ID token (subject_token) and receives an
    access token for the mapped local subject."""

    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(GRANT_TYPE):
            raise UnauthorizedClientError("The client is not authorized to use token exchange.")
        form = self.request.form
        if form.get("subject_token_type") != ID_TOKEN_TYPE:
            raise InvalidRequestError(f"'subject_token_type' must be {ID_TOKEN_TYPE}.")
        if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"Only {ACCESS_TOKEN_TYPE} can be requested.")
        if not form.get("subject_token"):
            raise InvalidRequestError("Missing 'subject_token'.")
        if "actor_token" in form:
            raise InvalidRequestError("Delegation ('actor_token') is not supported.")
        self.request.client = client
        allowed = (client.scopes - USER_SCOPES) | {"openid"} & client.scopes
        try:
            login = accept_id_token(self.server.session, form["subject_token"], clock=self.server.clock)
        except InvalidToken as error:
            raise InvalidGrantError(error.en) from None
        allowed &= login.scopes
        requested = set((self.request.payload.scope or "").split()) or allowed
        if not requested or not requested <= allowed:
            raise InvalidScopeError("The scope requested is beyond the client's or the agreement's.")
        subject = subjects.get_subject(self.server.session, login.subject_id)
        if subject.status != "active":
            raise InvalidGrantError("The local subject is not active.")
        if subject.kind == "officer":  # a link made before link_identity refused officers
            audit.append(self.server.session, client.client_id, "federation.refused", subject.id,
                         {"issuer": login.issuer, "reason": "officer"})
            raise InvalidGrantError("Officers sign in here with TOTP; a federated login cannot act for one.")
        self.request.user = subject
        self.request.scope = " ".join(sorted(requested))
        self.login = login

    def create_token_response(self):
        login = self.login
        token = self.server.issue_tokens(
            self.request, self.request.user, self.request.scope, include_refresh_token=False,
            extra_claims={"assurance_level": login.assurance_level, "federated_iss": login.issuer})
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        audit.append(self.server.session, self.request.client.client_id, "federation.exchange",
                     login.subject_id, {"issuer": login.issuer, "assurance_level": login.assurance_level})
        return 200, token, self.TOKEN_RESPONSE_HEADER


def unverified_claims(token: str) -> dict:
    """The payload of a compact JWS read without checking its signature, only to find
    which keys check it (the issuer, the client); {} when it is not one."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _issuer(row) -> TrustedIssuer:
    return TrustedIssuer(issuer=row["issuer"], name=row["name"], jwks=json.loads(row["jwks"]),
                         algorithms=tuple(row["algorithms"].split()), audience=row["audience"],
                         assurance_level=row["assurance_level"], scopes=frozenset(row["scopes"].split()),
                         status=row["status"])


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 2**33


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
