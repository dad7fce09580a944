"""The client registry: department applications allowed to use the OIDC provider.

Each client has exact redirect URIs, the grants and scopes it may use, the algorithm its
tokens are signed with, and how it authenticates at the token endpoint: a secret (kept
only as an SM3 hash, shown once), a key pair of its own (``private_key_jwt``,
RFC 7523, its public JWK set registered here), or nothing (a public client, which PKCE
protects).
"""

import hmac
import ipaddress
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from identity.client_models import AUTH_METHODS, oauth_client
from trust import audit
from trust.clock import utc_now
from trust.errors import InvalidInput, NotFound
from trust.hashes import sm3

GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", GRANT_TOKEN_EXCHANGE)
TOKEN_ALGS = ("ES256", "RS256", "SM2")
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

# Every scope this provider knows, with what the consent page tells the person (zh, en).
SCOPES = {
    "openid": ("确认您的身份", "confirm who you are"),
    "profile": ("读取您的姓名和用户名", "read your name and username"),
    "realname": ("读取您的实名信息（证件号码与实名认证等级）",
                 "read your real-name record (ID number and assurance level)"),
    "enterprise": ("读取您可代表办事的企业（统一社会信用代码、名称、授权范围与期限）",
                   "read the enterprises you may act for (credit code, name, scope and end of the authorisation)"),
    "email": ("读取您的电子邮箱（如有登记）", "read your e-mail address (where one is registered)"),
    "phone": ("读取您的手机号码（如有登记）", "read your phone number (where one is registered)"),
    "offline_access": ("在您离开后继续访问（刷新令牌）", "keep access while you are away (a refresh token)"),
    "seal:sign": ("使用电子印章签章", "sign with electronic seals"),
    "seal:manage": ("管理电子印章", "manage electronic seals"),
    "licence:issue": ("签发电子证照", "issue electronic licences"),
    "licence:read": ("查询电子证照", "read electronic licences"),
    "licence:wallet": ("管理您的电子证照与共享授权", "see your licences and manage who may receive them"),
    "licence:manage": ("管理电子证照", "manage electronic licences"),
    "licence:verify": ("核验电子证照", "verify electronic licences"),
    "ca:issue": ("签发数字证书", "issue certificates"),
    "audit:read": ("检索与导出审计日志（审计管理员）", "search and export the audit log (audit administrators)"),
}
USER_SCOPES = frozenset({"openid", "profile", "realname", "enterprise", "email", "phone", "offline_access"})

MAX_NAME_CHARS = 200
MAX_URIS = 10
MAX_URI_CHARS = 2000
MAX_JWKS_KEYS = 10
MAX_CLIENT_ID_CHARS = 64
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered client, as Authlib's authorization server reads it."""

    client_id: str
    name: str
    auth_method: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    scopes: frozenset[str]
    token_alg: str
    jwks: dict | None
    department: str | None
    status: str
    created_at: datetime
    secret_hash: str | None = field(default=None, repr=False)

    # ClientMixin, for Authlib.
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # every authorization request names its redirect URI

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(self.secret_hash, _secret_hash(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """The registered method; a client with a secret may send it either way (RFC 6749
        §2.3.1: in the Basic header or the body), as certified relying parties mix them (pyoidc
        refreshes with client_secret_post whatever the code exchange used)."""
        if self.auth_method in SECRET_AUTH_METHODS:
            return method in SECRET_AUTH_METHODS
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    @property
    def client_metadata(self) -> dict:
        """The RFC 7591 metadata Authlib's RP-initiated logout reads."""
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris)}


def register_client(session: Session, *, name: str, redirect_uris: Iterable[str] = (),
                    grant_types: Iterable[str], scopes: Iterable[str], token_alg: str = "RS256",
                    auth_method: str = "client_secret_basic", jwks: dict | None = None,
                    department: str | None = None, post_logout_redirect_uris: Iterable[str] = (),
                    actor: str = "system", clock=utc_now,
                    client_id: str | None = None) -> tuple[Client, str | None]:
    """Register a client; return it with its secret, which is shown this once (None when
    the client authenticates with a key or not at all). ``client_id`` is a random hex id
    unless given (the demo's is fixed, so the demo seal can name it). Does not commit."""
    name = _checked_name(name)
    redirect_uris = _checked_uris(redirect_uris, "redirect_uris")
    post_logout_redirect_uris = _checked_uris(post_logout_redirect_uris, "post_logout_redirect_uris")
    grant_types = frozenset(grant_types)
    scopes = frozenset(scopes)
    if not grant_types or not grant_types <= set(GRANT_TYPES):
        raise InvalidInput(f"grant_types must be among {', '.join(GRANT_TYPES)}",
                           f"授权类型只能是 {', '.join(GRANT_TYPES)}")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise InvalidInput("refresh_token needs authorization_code", "刷新令牌须与授权码模式一同使用")
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise InvalidInput(f"unknown scopes: {' '.join(sorted(unknown)) or '(none given)'}",
                           f"未知的权限范围：{' '.join(sorted(unknown)) or '（未指定）'}")
    if token_alg not in TOKEN_ALGS:
        raise InvalidInput(f"token_alg must be one of {', '.join(TOKEN_ALGS)}",
                           f"令牌算法只能是 {', '.join(TOKEN_ALGS)}")
    if auth_method not in AUTH_METHODS:
        raise InvalidInput(f"auth_method must be one of {', '.join(AUTH_METHODS)}",
                           f"客户端认证方式只能是 {', '.join(AUTH_METHODS)}")
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidInput("the authorization code grant needs at least one redirect URI",
                           "授权码模式至少需要一个回调地址")
    if auth_method == "none" and grant_types - {"authorization_code", "refresh_token"}:
        raise InvalidInput("a public client (auth_method none) may use only the authorization code grant",
                           "公开客户端只能使用授权码模式")
    if auth_method == "private_key_jwt":
        jwks = _checked_jwks(jwks)
    elif jwks is not None:
        raise InvalidInput("jwks is only for private_key_jwt", "仅 private_key_jwt 认证方式需要登记公钥")
    if session.execute(select(oauth_client.c.client_id).where(oauth_client.c.name == name)).first():
        raise InvalidInput(f"a client named {name!r} already exists", f"已存在名为 {name!r} 的客户端")

    secret = secrets.token_urlsafe(32) if auth_method.startswith("client_secret_") else None
    row = dict(
        client_id=client_id or uuid.uuid4().hex, name=name,
        secret_hash=_secret_hash(secret) if secret else None,
        auth_method=auth_method, redirect_uris=json.dumps(redirect_uris),
        post_logout_redirect_uris=json.dumps(post_logout_redirect_uris),
        grant_types=" ".join(sorted(grant_types)), scopes=" ".join(sorted(scopes)),
        token_alg=token_alg, jwks=json.dumps(jwks) if jwks else None, department=department,
        status="active", created_at=clock().astimezone(UTC))
    session.execute(insert(oauth_client).values(**row))
    audit.append(session, actor, "oauth.client.register", row["client_id"],
                 {"name": name, "grant_types": sorted(grant_types), "scopes": sorted(scopes),
                  "auth_method": auth_method, "token_alg": token_alg, "redirect_uris": redirect_uris})
    return _client(row), secret


def _secret_hash(secret: str) -> str:
    """A client secret is 256 random bits we generated, not a password a person chose: a fast
    hash cannot be brute-forced and keeps the token endpoint fast (argon2id here cost ~60 ms
    of CPU per request and capped client-credentials issuance near 15/s on two cores)."""
    return "sm3$" + sm3(secret.encode("utf-8", "surrogatepass")).hex()


def get_client(session: Session, client_id: str) -> Client:
    client = find_client(session, client_id)
    if client is None:
        raise NotFound(f"no client {client_id!r}", f"没有编号为 {client_id!r} 的客户端")
    return client


def find_client(session: Session, client_id: str) -> Client | None:
    if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID_CHARS:
        return None
    row = session.execute(select(oauth_client).where(oauth_client.c.client_id == client_id)).mappings().first()
    return _client(row) if row else None


def list_clients(session: Session) -> list[Client]:
    rows = session.execute(select(oauth_client).order_by(oauth_client.c.created_at)).mappings()
    return [_client(row) for row in rows]


def disable_client(session: Session, client_id: str, *, actor: str = "system") -> None:
    """Disable a client: it can no longer authenticate or start a login. Does not commit."""
    get_client(session, client_id)
    session.execute(update(oauth_client).where(oauth_client.c.client_id == client_id).values(status="disabled"))
    audit.append(session, actor, "oauth.client.disable", client_id)


DEMO_CLIENT_ID = "demo-department-app"
DEMO_CLIENT_NAME = "示范部门应用 (demo department application)"
DEMO_REDIRECT_URI = "http://127.0.0.1:8080/callback"


def register_demo_client(session: Session) -> tuple[str, str | None]:
    """The demo department application of ``trustctl init --demo``: (client_id, secret).
    Idempotent by name: when it exists already, its id is returned with None (the secret
    was shown when it was made and is not kept). Does not commit."""
    existing = session.execute(select(oauth_client.c.client_id)
                               .where(oauth_client.c.name == DEMO_CLIENT_NAME)).scalar()
    if existing:
        return existing, None
    client, secret = register_client(
        session, name=DEMO_CLIENT_NAME, client_id=DEMO_CLIENT_ID, redirect_uris=[DEMO_REDIRECT_URI],
        post_logout_redirect_uris=["http://127.0.0.1:8080/"],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scopes=["openid", "profile", "realname", "enterprise", "offline_access", "seal:sign", "licence:issue",
                "licence:read", "licence:verify"],
        department="示范部门", actor="trustctl init --demo")
    return client.client_id, secret


def _client(row) -> Client:
    return Client(
        client_id=row["client_id"], name=row["name"], auth_method=row["auth_method"],
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        post_logout_redirect_uris=tuple(json.loads(row["post_logout_redirect_uris"])),
        grant_types=frozenset(row["grant_types"].split()), scopes=frozenset(row["scopes"].split()),
        token_alg=row["token_alg"], jwks=json.loads(row["jwks"]) if row["jwks"] else None,
        department=row["department"], status=row["status"], created_at=row["created_at"],
        secret_hash=row["secret_hash"])


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS \
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidInput(f"a client name is 1 to {MAX_NAME_CHARS} printable characters",
                           f"客户端名称须为 1 至 {MAX_NAME_CHARS} 个可打印字符")
    return name.strip()


def _checked_uris(uris: Iterable[str], what: str) -> list[str]:
    if isinstance(uris, str):
        raise InvalidInput(f"{what} is a list of URIs", f"{what} 须为地址列表")
    uris = list(uris)
    if len(uris) > MAX_URIS:
        raise InvalidInput(f"at most {MAX_URIS} {what}", f"{what} 最多 {MAX_URIS} 个")
    for uri in uris:
        check_redirect_uri_form(uri)
    return uris


def check_redirect_uri_form(uri: str) -> None:
    """An absolute https URI (http only on a loopback host), no fragment, no user info."""
    problem = None
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_CHARS or any(ord(c) <= 0x20 for c in uri):
        problem = "not a URI of at most 2000 characters without spaces"
    else:
        try:
            parts = urlsplit(uri)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or not host:
            problem = "not an absolute URI"
        elif parts.fragment or "#" in uri:
            problem = "a redirect URI must not have a fragment"
        elif parts.username is not None or parts.password is not None:
            problem = "a redirect URI must not carry user information"
        elif parts.scheme == "http" and not _loopback(host):
            problem = "http is allowed only on a loopback address; use https"
        elif parts.scheme not in ("http", "https"):
            problem = "the scheme must be https"
    if problem:
        raise InvalidInput(f"redirect URI {str(uri)[:100]!r}: {problem}", f"回调地址不合规：{problem}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked_jwks(jwks: dict | None) -> dict:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not 0 < len(keys) <= MAX_JWKS_KEYS:
        raise InvalidInput(f"private_key_jwt needs a JWK set with 1 to {MAX_JWKS_KEYS} public keys",
                           f"private_key_jwt 须登记 1 至 {MAX_JWKS_KEYS} 个公钥（JWK 集）")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA") or PRIVATE_JWK_MEMBERS & set(key):
            raise InvalidInput("each registered key is a public EC or RSA JWK (no private members)",
                               "登记的公钥须为 EC 或 RSA 公钥 JWK，不得含私钥成分")
    if len(json.dumps(jwks)) > 64 * 1024:
        raise InvalidInput("the JWK set is too large", "JWK 集过大")
    return jwks
