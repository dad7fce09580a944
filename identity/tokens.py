"""OAuth 2.0 tokens: JWT access tokens (RFC 9068), ID tokens (OIDC Core §2), refresh
tokens with rotation and reuse detection, revocation (RFC 7009), introspection (RFC 7662).

Access and ID tokens are signed by ``identity.jose.sign_compact`` with the current key of
their algorithm (``identity.signing_keys``). Every access token is recorded by its jti,
so a valid signature is not enough: a token whose record is missing or revoked is
refused. Refresh tokens are opaque random strings, stored as their SM3 hash; each use
spends the one presented and returns its successor in the same family, and a spent one
presented again (a stolen copy, or the thief's) revokes the family and every access
token of its grant.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from hsm.keystore import KeyStore, take_key_use, write_key_use
from identity import jose, signing_keys
from identity.token_models import oauth_access_token, oauth_refresh_token
from trust import audit
from trust.clock import as_utc, utc_now
from trust.db import GroupCommit, is_reading
from trust.errors import InvalidInput, InvalidToken
from trust.hashes import sm3

ACCESS_TOKEN_TYPE = "at+jwt"                  # RFC 9068 §2.1
REFRESH_LIFETIME = timedelta(days=30)
LEEWAY = signing_keys.LEEWAY
MAX_REFRESH_TOKEN_CHARS = 128
# Claims a caller's extra_claims may not replace.
REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope",
                               "auth_time", "nonce", "acr", "amr", "azp", "at_hash"})


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _scopes(scopes) -> frozenset[str]:
    if isinstance(scopes, str):
        scopes = scopes.split()
    result = frozenset(scopes)
    if not all(isinstance(s, str) and s and s.isascii() and s.isprintable() and " " not in s and '"' not in s
               and "\\" not in s for s in result):
        raise InvalidInput("a scope is a printable ASCII word without quote or backslash (RFC 6749 §3.3)",
                           "权限范围应为不含引号和反斜杠的可打印 ASCII 单词")
    return result


def _extra(extra_claims: dict | None) -> dict:
    extra = dict(extra_claims or {})
    clash = REGISTERED_CLAIMS & set(extra)
    if clash:
        raise InvalidInput(f"extra claims may not replace {', '.join(sorted(clash))}",
                           f"附加声明不能替换 {', '.join(sorted(clash))}")
    return extra


# ---------------------------------------------------------------- access tokens

@dataclass(frozen=True)
class AccessToken:
    jti: str
    client_id: str
    subject: str | None          # None for the client credentials grant
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    claims: dict = field(compare=False, repr=False)


_INSERT_ACCESS_TOKEN = insert(oauth_access_token)  # built once: building costs more than running (#18)


def issue_access_token(session: Session, keystore: KeyStore, *, issuer: str, client_id: str,
                       subject: str | None, scopes, audience=None, alg: str = "ES256", lifetime: int = 600,
                       grant_id: str | None = None, extra_claims: dict | None = None,
                       group: GroupCommit | None = None, clock=utc_now) -> tuple[str, AccessToken]:
    """An RFC 9068 access token, recorded for introspection and revocation; the caller commits.
    With ``group``, when ``session`` has only read so far (trust.db.begin_reading), the
    token's row and its signature's audit record are committed by the group before this
    returns, and ``session`` is left without writes.

    ``audience`` defaults to the issuer (this service's own API). For the client
    credentials grant ``subject`` is None and the token's sub is the client id (§2.2)."""
    scope_set = _scopes(scopes)
    audiences = (issuer,) if audience is None else (audience,) if isinstance(audience, str) else tuple(audience)
    if not audiences or not all(isinstance(a, str) and a and " " not in a for a in audiences):
        raise InvalidInput("an audience is a non-empty URI or identifier", "受众应为非空的 URI 或标识")
    extra = _extra(extra_claims)
    issued_at = clock().replace(microsecond=0)
    expires_at = issued_at + signing_keys.check_lifetime(lifetime)
    ref, kid = signing_keys.current_signing_key(session, keystore, alg)
    jti = secrets.token_urlsafe(16)
    claims = {"iss": issuer, "sub": subject or client_id, "aud": audiences[0] if len(audiences) == 1 else list(audiences),
              "exp": _epoch(expires_at), "iat": _epoch(issued_at), "jti": jti, "client_id": client_id,
              "scope": " ".join(sorted(scope_set)), **extra}
    token = jose.sign_compact(session, keystore, ref, {"alg": alg, "typ": ACCESS_TOKEN_TYPE, "kid": kid}, claims)
    row = {"jti": jti, "client_id": client_id, "subject_id": subject, "grant_id": grant_id,
           "scopes": " ".join(sorted(scope_set)), "audience": " ".join(audiences), "issued_at": issued_at,
           "expires_at": expires_at}
    if group is None or not is_reading(session):
        session.execute(_INSERT_ACCESS_TOKEN, row)
    else:
        uses = take_key_use(session)

        def record(writer: Session) -> None:
            writer.execute(_INSERT_ACCESS_TOKEN, row)
            write_key_use(writer, uses)
        group.run(record)
    return token, AccessToken(jti, client_id, subject, scope_set, audiences, issued_at, expires_at, claims)


def _check_times(claims: dict, now: datetime) -> None:
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**35 for v in (exp, iat, nbf)):
        raise InvalidToken("the token's exp, iat or nbf is not a time", "令牌的时间声明无效")
    if _at(exp) + LEEWAY <= now:
        raise InvalidToken("the token has expired", "令牌已过期")
    if _at(max(iat, nbf)) - LEEWAY > now:
        raise InvalidToken("the token is not valid yet", "令牌尚未生效")


def _verified_access_token(session: Session, keystore: KeyStore, token: str, *, issuer: str,
                           now: datetime) -> AccessToken:
    """Everything validate_access_token checks but the audience."""
    kid = jose.split_compact(token)[0].get("kid")
    keys = signing_keys.verification_keys(session, keystore, now=now, kid=kid if isinstance(kid, str) else None)
    header, claims = jose.verify_compact(token, keys, algorithms=list(signing_keys.SIGNING_ALGS))
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/" + ACCESS_TOKEN_TYPE):
        raise InvalidToken("the token is not an access token (typ at+jwt)", "该令牌不是访问令牌")
    if claims.get("iss") != issuer:
        raise InvalidToken("the token was issued by someone else (iss)", "令牌的签发方不符")
    _check_times(claims, now)
    jti, aud, scope = claims.get("jti"), claims.get("aud"), claims.get("scope", "")
    row = None
    if isinstance(jti, str) and len(jti) <= 64:
        row = session.execute(select(oauth_access_token).where(oauth_access_token.c.jti == jti)).one_or_none()
    if row is None or row.client_id != claims.get("client_id"):
        raise InvalidToken("the token is not known here", "令牌未登记")
    if row.revoked_at is not None:
        raise InvalidToken("the token has been revoked", "令牌已被撤销")
    audiences = (aud,) if isinstance(aud, str) else tuple(a for a in aud if isinstance(a, str)) \
        if isinstance(aud, list) else ()
    return AccessToken(jti, row.client_id, row.subject_id, frozenset(scope.split()) if isinstance(scope, str)
                       else frozenset(), audiences, _at(claims["iat"]), _at(claims["exp"]), claims)


def validate_access_token(session: Session, keystore: KeyStore, token: str, *, issuer: str,
                          audience: str | None = None, clock=utc_now) -> AccessToken:
    """The access token if it is ours and usable now; InvalidToken otherwise: signature by a
    published key with that key's algorithm, typ at+jwt, iss, exp/nbf (with leeway), aud
    (``audience``, default the issuer), and its record neither missing nor revoked."""
    access = _verified_access_token(session, keystore, token, issuer=issuer, now=clock())
    if (audience or issuer) not in access.audience:
        raise InvalidToken("the token is meant for another audience (aud)", "令牌的受众不符")
    return access


# ---------------------------------------------------------------- ID tokens

def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the hash of the access token, base64url; the
    hash is the one of the ID token's alg (SHA-256 for ES256/RS256, SM3 for SM2)."""
    data = access_token.encode("ascii")
    digest = sm3(data) if alg == "SM2" else hashlib.sha256(data).digest()
    return jose.b64url_encode(digest[:len(digest) // 2])


def issue_id_token(session: Session, keystore: KeyStore, *, issuer: str, client_id: str, subject: str,
                   nonce: str | None, auth_time, acr: str, amr: list[str], alg: str, lifetime: int = 600,
                   access_token: str | None = None, extra_claims: dict | None = None, clock=utc_now) -> str:
    issued_at = clock().replace(microsecond=0)
    expires_at = issued_at + signing_keys.check_lifetime(lifetime)
    auth_epoch = _epoch(as_utc(auth_time)) if isinstance(auth_time, datetime) else auth_time
    if not isinstance(auth_epoch, int) or isinstance(auth_epoch, bool):
        raise InvalidInput("auth_time is a datetime or seconds since the epoch", "auth_time 应为时间")
    claims = {"iss": issuer, "sub": subject, "aud": client_id, "azp": client_id, "exp": _epoch(expires_at),
              "iat": _epoch(issued_at), "auth_time": auth_epoch, "acr": acr, "amr": list(amr)}
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["at_hash"] = at_hash(access_token, alg)
    claims.update(_extra(extra_claims))
    ref, kid = signing_keys.current_signing_key(session, keystore, alg)
    return jose.sign_compact(session, keystore, ref, {"alg": alg, "typ": "JWT", "kid": kid}, claims)


# ---------------------------------------------------------------- refresh tokens

@dataclass(frozen=True)
class RefreshGrant:
    client_id: str
    subject: str
    scopes: frozenset[str]
    family_id: str
    grant_id: str


class RefreshTokenReused(InvalidToken):
    """A spent refresh token was presented again: its family and the access tokens of its
    grant are revoked in the caller's transaction, which must be committed all the same."""


def _refresh_hash(token: str) -> str:
    return sm3(token.encode("ascii")).hex()


def _is_refresh_token(token) -> bool:
    return isinstance(token, str) and 0 < len(token) <= MAX_REFRESH_TOKEN_CHARS and token.isascii() and "." not in token


def issue_refresh_token(session: Session, *, client_id: str, subject: str, scopes, grant_id: str | None = None,
                        family_id: str | None = None, clock=utc_now) -> str:
    """An opaque refresh token (256 random bits); a new family unless ``family_id`` is given.
    A family that no authorization code made is its own grant (grant_id = family_id)."""
    scope_set = _scopes(scopes)
    token = secrets.token_urlsafe(32)
    family_id = family_id or uuid.uuid4().hex
    issued_at = clock()
    session.execute(insert(oauth_refresh_token).values(
        token_hash=_refresh_hash(token), family_id=family_id, grant_id=grant_id or family_id, client_id=client_id,
        subject_id=subject, scopes=" ".join(sorted(scope_set)), issued_at=issued_at,
        expires_at=issued_at + REFRESH_LIFETIME))
    return token


def _revoke(session: Session, *, grant_id: str, family_id: str | None, now: datetime) -> dict:
    """Revoke the refresh tokens of a family (or of a whole grant) and the access tokens of the grant."""
    refresh = oauth_refresh_token
    which = refresh.c.family_id == family_id if family_id is not None else refresh.c.grant_id == grant_id
    refreshed = session.execute(update(refresh).where(which, refresh.c.revoked_at.is_(None))
                                .values(revoked_at=now)).rowcount
    accessed = session.execute(update(oauth_access_token).where(
        oauth_access_token.c.grant_id == grant_id, oauth_access_token.c.revoked_at.is_(None))
        .values(revoked_at=now)).rowcount
    return {"grant_id": grant_id, "family_id": family_id, "refresh_tokens": refreshed, "access_tokens": accessed}


def use_refresh_token(session: Session, token: str, *, client_id: str, clock=utc_now) -> RefreshGrant:
    """Spend a refresh token (rotation: the caller issues its successor in the same family).
    A spent one presented again raises RefreshTokenReused after revoking the family."""
    now = clock()
    if not _is_refresh_token(token):
        raise InvalidToken("the refresh token is malformed", "刷新令牌格式不正确")
    table = oauth_refresh_token
    row = session.execute(select(table).where(table.c.token_hash == _refresh_hash(token))).one_or_none()
    if row is None or row.client_id != client_id:
        raise InvalidToken("the refresh token is not known for this client", "刷新令牌无效")
    if row.revoked_at is not None:
        raise InvalidToken("the refresh token has been revoked", "刷新令牌已被撤销")
    spent = session.execute(update(table).where(table.c.token_hash == row.token_hash, table.c.used_at.is_(None))
                            .values(used_at=now)).rowcount
    if not spent:
        detail = _revoke(session, grant_id=row.grant_id, family_id=row.family_id, now=now)
        audit.append(session, client_id, "token.refresh_reuse", row.family_id, {**detail, "subject": row.subject_id})
        raise RefreshTokenReused("the refresh token was already used: its whole family is revoked",
                                 "刷新令牌已被使用过，同一授权下的令牌已全部撤销")
    if as_utc(row.expires_at) <= now:
        raise InvalidToken("the refresh token has expired", "刷新令牌已过期")
    return RefreshGrant(row.client_id, row.subject_id, frozenset(row.scopes.split()), row.family_id, row.grant_id)


# ---------------------------------------------------------------- revocation and introspection

def _unverified_jti(token: str) -> str | None:
    try:
        _, _, payload_segment, _ = jose.split_compact(token)
        claims = jose.parse_json_object(jose.b64url_decode(payload_segment))
    except (InvalidToken, InvalidInput):
        return None
    jti = claims.get("jti")
    return jti if isinstance(jti, str) else None


def revoke_token(session: Session, token: str, *, client_id: str, clock=utc_now) -> None:
    """RFC 7009: revoke an access or refresh token issued to ``client_id`` (a refresh token
    takes its family and the access tokens of its grant along, §2.1). Unknown tokens, and
    tokens of other clients, are no error and change nothing (§2.2)."""
    now = clock()
    if _is_refresh_token(token):
        table = oauth_refresh_token
        row = session.execute(select(table).where(table.c.token_hash == _refresh_hash(token))).one_or_none()
        if row is not None and row.client_id == client_id:
            detail = _revoke(session, grant_id=row.grant_id, family_id=row.family_id, now=now)
            audit.append(session, client_id, "token.revoke", row.family_id, {"token_type": "refresh_token", **detail})
        return
    jti = _unverified_jti(token) if isinstance(token, str) else None
    if jti is None:
        return
    table = oauth_access_token
    revoked = session.execute(update(table).where(table.c.jti == jti, table.c.client_id == client_id,
                                                  table.c.revoked_at.is_(None)).values(revoked_at=now)).rowcount
    if revoked:
        audit.append(session, client_id, "token.revoke", jti, {"token_type": "access_token"})


def revoke_grant(session: Session, grant_id: str, *, actor: str = "identity", clock=utc_now) -> dict:
    """Revoke everything issued from one authorization code (a replayed code, RFC 6749 §4.1.2)."""
    detail = _revoke(session, grant_id=grant_id, family_id=None, now=clock())
    audit.append(session, actor, "token.revoke_grant", grant_id, detail)
    return detail


def introspect(session: Session, keystore: KeyStore, token: str, *, issuer: str, client_id: str,
               clock=utc_now) -> dict:
    """RFC 7662 for an authenticated client: an access token issued to it or for it (its
    client id among the token's audiences: it is the resource server the token is for), a
    refresh token only of the asking client. Anything invalid, revoked, expired, unknown or
    none of the caller's business is just {"active": false}, so a client learns nothing
    about another's tokens."""
    inactive = {"active": False}
    if _is_refresh_token(token):
        table = oauth_refresh_token
        row = session.execute(select(table).where(table.c.token_hash == _refresh_hash(token))).one_or_none()
        if (row is None or row.client_id != client_id or row.used_at is not None or row.revoked_at is not None
                or as_utc(row.expires_at) <= clock()):
            return inactive
        # token_type is for OAuth token types (RFC 7662 §2.2); a refresh token has none
        return {"active": True, "scope": row.scopes, "client_id": row.client_id,
                "sub": row.subject_id, "iss": issuer, "iat": _epoch(as_utc(row.issued_at)),
                "exp": _epoch(as_utc(row.expires_at))}
    try:
        access = _verified_access_token(session, keystore, token, issuer=issuer, now=clock())
    except InvalidToken:
        return inactive
    if client_id != access.client_id and client_id not in access.audience:
        return inactive
    claims = access.claims
    return {"active": True, "token_type": "Bearer", "scope": " ".join(sorted(access.scopes)),
            "client_id": access.client_id, "sub": claims["sub"], "iss": issuer, "aud": claims["aud"],
            "iat": claims["iat"], "exp": claims["exp"], "jti": access.jti}


def purge_expired(session: Session, *, actor: str = "system", clock=utc_now) -> dict[str, int]:
    """Delete the records of tokens that can no longer decide anything (`trustctl identity
    purge`): an access token's row after its expiry and the leeway; a refresh token family
    once its newest token has expired (until then its spent tokens are what recognise a
    stolen one presented again). The numbers deleted, also audited. Does not commit."""
    now = clock()
    refresh = oauth_refresh_token
    ended_families = (select(refresh.c.family_id).group_by(refresh.c.family_id)
                      .having(func.max(refresh.c.expires_at) < now))
    counts = {
        "access_tokens": session.execute(delete(oauth_access_token).where(
            oauth_access_token.c.expires_at < now - LEEWAY)).rowcount,
        "refresh_tokens": session.execute(delete(refresh).where(
            refresh.c.family_id.in_(ended_families.scalar_subquery()))).rowcount,
    }
    audit.append(session, actor, "token.purge", "", counts)
    return counts
