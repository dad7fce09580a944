"""identity.tokens: RFC 9068 access tokens, ID tokens, refresh rotation with reuse
detection, revocation (RFC 7009) and introspection (RFC 7662)."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from sqlalchemy import delete, select

from hsm.kek import FileKEK, create_master_key_file
from hsm.keystore import KeyStore
from hsm.soft import SoftBackend
from identity import jose, signing_keys, tokens
from identity.token_models import oauth_access_token, oauth_refresh_token
from trust import audit
from trust.errors import InvalidInput, InvalidToken

from oracles import openssl

ISSUER = "https://trust.example"
PERSON = "a" * 32
# Storage matters to the tests that write and revoke; the others run on SQLite only.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def keystore(tmp_path):
    create_master_key_file(tmp_path / "master.key")
    return KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft")


def issue(session, keystore, **options):
    values = {"issuer": ISSUER, "client_id": "dept-app", "subject": PERSON, "scopes": ["openid", "licence:read"],
              **options}
    return tokens.issue_access_token(session, keystore, **values)


def public_key_for(session, keystore, token):
    kid = pyjwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in signing_keys.jwks(session, keystore)["keys"] if k["kid"] == kid)
    return pyjwt.PyJWK(jwk).key


def audit_actions(session) -> list[str]:
    return session.execute(select(audit.audit_log.c.action).order_by(audit.audit_log.c.seq)).scalars().all()


# ---------------------------------------------------------------- access tokens

@pytest.mark.parametrize("alg", ["ES256", "RS256", "SM2"])
def test_issue_and_validate(session, keystore, alg):
    token, issued = issue(session, keystore, alg=alg, grant_id="g" * 32)
    session.commit()
    valid = tokens.validate_access_token(session, keystore, token, issuer=ISSUER)
    assert valid == issued
    assert valid.client_id == "dept-app" and valid.subject == PERSON
    assert valid.scopes == frozenset({"openid", "licence:read"}) and valid.audience == (ISSUER,)
    assert valid.expires_at - valid.issued_at == timedelta(seconds=600)
    assert pyjwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert set(valid.claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}


@sqlite_only
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_pyjwt_validates_access_tokens_like_a_resource_server(session, keystore, alg):
    token, issued = issue(session, keystore, alg=alg, audience=["https://dept.example", ISSUER])
    claims = pyjwt.decode(token, public_key_for(session, keystore, token), algorithms=[alg],
                          audience="https://dept.example", issuer=ISSUER, options={"require": ["exp", "iat", "jti"]})
    assert claims["client_id"] == "dept-app" and claims["sub"] == PERSON and claims["jti"] == issued.jti
    assert claims["scope"] == "licence:read openid"


@sqlite_only
def test_client_credentials_tokens_have_the_client_as_sub_and_no_subject(session, keystore):
    token, _ = issue(session, keystore, subject=None, scopes=["seal:sign"])
    valid = tokens.validate_access_token(session, keystore, token, issuer=ISSUER)
    assert valid.subject is None and valid.claims["sub"] == "dept-app" and valid.scopes == {"seal:sign"}


@sqlite_only
def test_expired_and_not_yet_valid_tokens_are_refused(session, keystore):
    now = datetime.now(UTC)
    token, issued = issue(session, keystore, lifetime=60)
    at = lambda delta: (lambda: issued.issued_at + delta)  # noqa: E731
    assert tokens.validate_access_token(session, keystore, token, issuer=ISSUER, clock=at(timedelta(seconds=80)))
    with pytest.raises(InvalidToken, match="expired"):
        tokens.validate_access_token(session, keystore, token, issuer=ISSUER, clock=at(timedelta(seconds=91)))
    future, _ = issue(session, keystore, clock=lambda: now + timedelta(minutes=5))
    with pytest.raises(InvalidToken, match="not valid yet"):
        tokens.validate_access_token(session, keystore, future, issuer=ISSUER)


@sqlite_only
def test_wrong_issuer_and_audience_are_refused(session, keystore):
    token, _ = issue(session, keystore, audience="https://dept.example")
    with pytest.raises(InvalidToken, match="audience"):
        tokens.validate_access_token(session, keystore, token, issuer=ISSUER)
    assert tokens.validate_access_token(session, keystore, token, issuer=ISSUER, audience="https://dept.example")
    with pytest.raises(InvalidToken, match="iss"):
        tokens.validate_access_token(session, keystore, token, issuer="https://other.example",
                                     audience="https://dept.example")


@sqlite_only
def test_an_id_token_is_not_an_access_token(session, keystore):
    id_token = tokens.issue_id_token(session, keystore, issuer=ISSUER, client_id=ISSUER, subject=PERSON, nonce="n",
                                     auth_time=datetime.now(UTC), acr="L2", amr=["pwd"], alg="ES256")
    with pytest.raises(InvalidToken, match="at\\+jwt"):
        tokens.validate_access_token(session, keystore, id_token, issuer=ISSUER)


@sqlite_only
def test_a_validly_signed_token_without_its_record_is_refused(session, keystore):
    token, issued = issue(session, keystore)
    session.execute(delete(oauth_access_token).where(oauth_access_token.c.jti == issued.jti))
    with pytest.raises(InvalidToken, match="not known"):
        tokens.validate_access_token(session, keystore, token, issuer=ISSUER)


@sqlite_only
def test_extra_claims_cannot_replace_registered_ones(session, keystore):
    with pytest.raises(InvalidInput):
        issue(session, keystore, extra_claims={"scope": "ca:issue"})
    token, _issued = issue(session, keystore, extra_claims={"department": "市场监管局"})
    assert tokens.validate_access_token(session, keystore, token, issuer=ISSUER).claims["department"] == "市场监管局"


@sqlite_only
@pytest.mark.parametrize("scopes", [["a b"], ['"x'], [""], ["中文"]])
def test_malformed_scopes_are_refused(session, keystore, scopes):
    with pytest.raises(InvalidInput):
        issue(session, keystore, scopes=scopes)


# ---------------------------------------------------------------- ID tokens

@sqlite_only
def test_id_token_for_pyjwt_with_at_hash(session, keystore):
    access, _ = issue(session, keystore)
    auth_time = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    id_token = tokens.issue_id_token(session, keystore, issuer=ISSUER, client_id="dept-app", subject=PERSON,
                                     nonce="n-0S6_WzA2Mj", auth_time=auth_time, acr="L2", amr=["pwd", "otp"],
                                     alg="RS256", access_token=access, extra_claims={"name": "张三"})
    claims = pyjwt.decode(id_token, public_key_for(session, keystore, id_token), algorithms=["RS256"],
                          audience="dept-app", issuer=ISSUER)
    assert claims["sub"] == PERSON and claims["nonce"] == "n-0S6_WzA2Mj" and claims["name"] == "张三"
    assert claims["auth_time"] == int(auth_time.timestamp()) and claims["amr"] == ["pwd", "otp"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(access.encode()).digest()[:16]).rstrip(b"=").decode()
    assert claims["at_hash"] == expected


@sqlite_only
def test_sm2_id_token_at_hash_uses_sm3(session, keystore, tmp_path):
    access, _ = issue(session, keystore, alg="SM2")
    id_token = tokens.issue_id_token(session, keystore, issuer=ISSUER, client_id="dept-app", subject=PERSON,
                                     nonce=None, auth_time=1_700_000_000, acr="L1", amr=["pwd"], alg="SM2",
                                     access_token=access)
    _, claims = jose.verify_compact(id_token, signing_keys.jwks(session, keystore), algorithms=["SM2"])
    (tmp_path / "at").write_bytes(access.encode())
    sm3_hex = openssl("dgst", "-sm3", "-r", tmp_path / "at").stdout.split()[0].decode()
    assert jose.b64url_decode(claims["at_hash"]) == bytes.fromhex(sm3_hex)[:16]
    assert "nonce" not in claims and claims["auth_time"] == 1_700_000_000


# ---------------------------------------------------------------- refresh tokens

def test_refresh_rotation(session, keystore):
    first = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"],
                                       grant_id="g" * 32)
    grant = tokens.use_refresh_token(session, first, client_id="dept-app")
    assert grant == tokens.RefreshGrant("dept-app", PERSON, frozenset({"openid"}), grant.family_id, "g" * 32)
    second = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=grant.scopes,
                                        grant_id=grant.grant_id, family_id=grant.family_id)
    assert second != first and len(second) >= 43
    assert tokens.use_refresh_token(session, second, client_id="dept-app").family_id == grant.family_id
    stored = session.execute(select(oauth_refresh_token.c.token_hash)).scalars().all()
    assert all(len(h) == 64 and first not in h for h in stored)  # only hashes are kept


def test_refresh_reuse_revokes_the_family_and_its_access_tokens(session, keystore):
    first = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"])
    grant = tokens.use_refresh_token(session, first, client_id="dept-app")
    access, _ = issue(session, keystore, grant_id=grant.grant_id)
    second = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=grant.scopes,
                                        grant_id=grant.grant_id, family_id=grant.family_id)
    other_access, _ = issue(session, keystore)
    session.commit()
    with pytest.raises(tokens.RefreshTokenReused):
        tokens.use_refresh_token(session, first, client_id="dept-app")
    session.commit()  # the caller commits the revocation although the use was refused
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.use_refresh_token(session, second, client_id="dept-app")
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.validate_access_token(session, keystore, access, issuer=ISSUER)
    assert tokens.validate_access_token(session, keystore, other_access, issuer=ISSUER)
    assert "token.refresh_reuse" in audit_actions(session)


@sqlite_only
def test_refresh_tokens_are_bound_to_their_client_and_expire(session):
    token = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"])
    for bad in ("", "x" * 200, "a.b", "unknown"):
        with pytest.raises(InvalidToken):
            tokens.use_refresh_token(session, bad, client_id="dept-app")
    with pytest.raises(InvalidToken, match="not known"):
        tokens.use_refresh_token(session, token, client_id="another-app")
    later = datetime.now(UTC) + tokens.REFRESH_LIFETIME + timedelta(seconds=1)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.use_refresh_token(session, token, client_id="dept-app", clock=lambda: later)


# ---------------------------------------------------------------- revocation

def test_revoking_an_access_token(session, keystore):
    token, _issued = issue(session, keystore)
    tokens.revoke_token(session, token, client_id="another-app")  # not theirs: nothing happens
    assert tokens.validate_access_token(session, keystore, token, issuer=ISSUER)
    tokens.revoke_token(session, token, client_id="dept-app")
    session.commit()
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.validate_access_token(session, keystore, token, issuer=ISSUER)
    assert "token.revoke" in audit_actions(session)


@sqlite_only
def test_revoking_a_refresh_token_takes_its_grant_along(session, keystore):
    refresh = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"],
                                         grant_id="g" * 32)
    access, _ = issue(session, keystore, grant_id="g" * 32)
    tokens.revoke_token(session, refresh, client_id="dept-app")
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.use_refresh_token(session, refresh, client_id="dept-app")
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.validate_access_token(session, keystore, access, issuer=ISSUER)


@sqlite_only
@pytest.mark.parametrize("token", ["", "unknown", "a.b.c", "x" * 10_000, "e30.e30.e30", None])
def test_revoking_unknown_tokens_is_no_error(session, token):
    tokens.revoke_token(session, token, client_id="dept-app")


def test_revoke_grant_after_code_replay(session, keystore):
    grant_id = "c" * 32
    access, _ = issue(session, keystore, grant_id=grant_id)
    refresh = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"],
                                         grant_id=grant_id)
    unrelated, _ = issue(session, keystore, grant_id="d" * 32)
    detail = tokens.revoke_grant(session, grant_id)
    assert detail["access_tokens"] == 1 and detail["refresh_tokens"] == 1
    with pytest.raises(InvalidToken):
        tokens.validate_access_token(session, keystore, access, issuer=ISSUER)
    with pytest.raises(InvalidToken):
        tokens.use_refresh_token(session, refresh, client_id="dept-app")
    assert tokens.validate_access_token(session, keystore, unrelated, issuer=ISSUER)


# ---------------------------------------------------------------- introspection

def test_introspection_of_access_tokens(session, keystore):
    token, issued = issue(session, keystore, alg="SM2", audience=["https://dept.example", "resource-server"])
    body = tokens.introspect(session, keystore, token, issuer=ISSUER, client_id="resource-server")
    assert body == {"active": True, "token_type": "Bearer", "scope": "licence:read openid", "client_id": "dept-app",
                    "sub": PERSON, "iss": ISSUER, "aud": ["https://dept.example", "resource-server"],
                    "iat": int(issued.issued_at.timestamp()), "exp": int(issued.expires_at.timestamp()),
                    "jti": issued.jti}
    tokens.revoke_token(session, token, client_id="dept-app")
    assert tokens.introspect(session, keystore, token, issuer=ISSUER, client_id="resource-server") == {"active": False}


def test_introspection_tells_a_client_nothing_of_tokens_neither_for_it_nor_its_own(session, keystore):
    token, _ = issue(session, keystore)  # dept-app's, for this service's own API
    assert tokens.introspect(session, keystore, token, issuer=ISSUER, client_id="dept-app")["active"] is True
    assert tokens.introspect(session, keystore, token, issuer=ISSUER, client_id="stranger") == {"active": False}


@sqlite_only
def test_introspection_of_refresh_tokens_only_for_their_client(session, keystore):
    refresh = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"])
    body = tokens.introspect(session, keystore, refresh, issuer=ISSUER, client_id="dept-app")
    assert body["active"] and "token_type" not in body and body["sub"] == PERSON
    assert tokens.introspect(session, keystore, refresh, issuer=ISSUER, client_id="other") == {"active": False}
    tokens.use_refresh_token(session, refresh, client_id="dept-app")
    assert tokens.introspect(session, keystore, refresh, issuer=ISSUER, client_id="dept-app") == {"active": False}


@sqlite_only
@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "e30.e30.", "x" * 9000])
def test_introspection_of_garbage_is_inactive(session, keystore, token):
    assert tokens.introspect(session, keystore, token, issuer=ISSUER, client_id="dept-app") == {"active": False}


@sqlite_only
def test_introspection_of_an_expired_token(session, keystore):
    token, issued = issue(session, keystore, lifetime=1)
    later = issued.expires_at + tokens.LEEWAY + timedelta(seconds=1)
    assert tokens.introspect(session, keystore, token, issuer=ISSUER, client_id="x",
                             clock=lambda: later) == {"active": False}


def test_purge_keeps_what_can_still_decide_something(session, keystore):
    """Expired access token rows go; a refresh family goes only once its newest token has
    expired, since its spent tokens are what recognise a stolen one presented again."""
    now = datetime.now(UTC)
    month_ago = lambda: now - tokens.REFRESH_LIFETIME - timedelta(days=1)  # noqa: E731
    issue(session, keystore, clock=lambda: now - timedelta(hours=2))  # expired an hour and more ago
    live_access, _ = issue(session, keystore)
    ended = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"], clock=month_ago)
    spent = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"], clock=month_ago)
    grant = tokens.use_refresh_token(session, spent, client_id="dept-app", clock=month_ago)
    newest = tokens.issue_refresh_token(session, client_id="dept-app", subject=PERSON, scopes=["openid"],
                                        grant_id=grant.grant_id, family_id=grant.family_id)
    session.commit()

    assert tokens.purge_expired(session) == {"access_tokens": 1, "refresh_tokens": 1}
    session.commit()
    assert tokens.validate_access_token(session, keystore, live_access, issuer=ISSUER)
    with pytest.raises(tokens.RefreshTokenReused):  # the spent token of a live family is still known
        tokens.use_refresh_token(session, spent, client_id="dept-app")
    session.commit()
    with pytest.raises(InvalidToken):
        tokens.use_refresh_token(session, ended, client_id="dept-app")
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.use_refresh_token(session, newest, client_id="dept-app")
    assert "token.purge" in audit_actions(session)
