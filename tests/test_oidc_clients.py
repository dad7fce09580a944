"""The client registry and the provider's public metadata: registration rules, secrets
kept hashed and shown once, exact redirect URIs, client credentials with the registered
scopes only, discovery and JWKS (read by PyJWT, which we did not write)."""

import base64
import json
import time
import uuid

import jwt
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto.algos import DSASignature
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings, strategies as st
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select

from identity import clients, signing_keys
from identity.client_models import oauth_client
from trust.db import session_factory
from trust.errors import InvalidInput, NotFound

from oracles import STANDARD_ID, openssl
from tests.oidc_support import REDIRECT_URI, SQLITE_ONLY, add_client, basic, make_app, new_keystore


@pytest.fixture
def keystore(tmp_path):
    return new_keystore(tmp_path)


@pytest.fixture
def app(engine, keystore, tmp_path):
    return make_app(engine, keystore, tmp_path)


def test_register_keeps_only_a_hash_of_the_secret(session):
    client, secret = clients.register_client(
        session, name="税务局办事系统", redirect_uris=["https://tax.example.gov.cn/cb"],
        grant_types=["authorization_code"], scopes=["openid", "profile"])
    session.commit()
    row = session.execute(select(oauth_client).where(oauth_client.c.client_id == client.client_id)).mappings().one()
    assert secret and len(secret) >= 40
    assert secret not in json.dumps({k: str(v) for k, v in row.items()})
    assert row["secret_hash"].startswith("sm3$")
    found = clients.get_client(session, client.client_id)
    assert found.check_client_secret(secret)
    assert not found.check_client_secret(secret + "x")
    assert found.check_redirect_uri("https://tax.example.gov.cn/cb")
    for near in ("https://tax.example.gov.cn/cb/", "https://tax.example.gov.cn/cb?x=1",
                 "https://TAX.example.gov.cn/cb", "https://tax.example.gov.cn/c"):
        assert not found.check_redirect_uri(near), near
    assert [c.client_id for c in clients.list_clients(session)] == [client.client_id]


@SQLITE_ONLY
@pytest.mark.parametrize("uri", [
    "http://tax.example.gov.cn/cb",         # plain http off loopback
    "https://tax.example.gov.cn/cb#frag",   # fragment
    "https://user:pw@tax.example.gov.cn/cb",
    "javascript:alert(1)",
    "/relative/cb",
    "https://exa mple.cn/cb",
    "https://" + "a" * 2100 + ".cn/",
])
def test_bad_redirect_uris_are_refused(session, uri):
    with pytest.raises(InvalidInput):
        clients.register_client(session, name="x", redirect_uris=[uri], grant_types=["authorization_code"],
                                scopes=["openid"])


@SQLITE_ONLY
def test_registration_rules(session):
    base = dict(redirect_uris=[REDIRECT_URI], grant_types=["authorization_code"], scopes=["openid"])
    with pytest.raises(InvalidInput):
        clients.register_client(session, name="a", **{**base, "scopes": ["openid", "root"]})
    with pytest.raises(InvalidInput):
        clients.register_client(session, name="b", **{**base, "grant_types": ["password"]})
    with pytest.raises(InvalidInput):
        clients.register_client(session, name="c", **{**base, "token_alg": "HS256"})
    with pytest.raises(InvalidInput):
        clients.register_client(session, name="d", redirect_uris=[], grant_types=["authorization_code"],
                                scopes=["openid"])
    with pytest.raises(InvalidInput):  # a public client cannot use client credentials
        clients.register_client(session, name="e", redirect_uris=[REDIRECT_URI], auth_method="none",
                                grant_types=["authorization_code", "client_credentials"], scopes=["openid"])
    with pytest.raises(InvalidInput):  # private_key_jwt without a key, or with a private one
        clients.register_client(session, name="f", auth_method="private_key_jwt", **base)
    with pytest.raises(InvalidInput):
        clients.register_client(session, name="g", auth_method="private_key_jwt",
                                jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, **base)
    public, secret = clients.register_client(session, name="h", auth_method="none", **base)
    assert secret is None and public.auth_method == "none"
    with pytest.raises(InvalidInput):  # names are unique
        clients.register_client(session, name="h", **base)
    with pytest.raises(NotFound):
        clients.get_client(session, "no-such-client")


@SQLITE_ONLY
def test_demo_client_is_registered_once(session):
    client_id, secret = clients.register_demo_client(session)
    session.commit()
    assert secret
    again, no_secret = clients.register_demo_client(session)
    assert (again, no_secret) == (client_id, None)
    demo = clients.get_client(session, client_id)
    assert demo.check_client_secret(secret)
    assert {"client_credentials", "authorization_code"} <= demo.grant_types


@SQLITE_ONLY
def test_discovery_advertises_sm2_pkce_s256_and_our_endpoints(app):
    response = app.test_client().get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.get_json()
    assert meta["issuer"] == "http://127.0.0.1"
    assert meta["token_endpoint"] == "http://127.0.0.1/oauth/token"
    assert meta["jwks_uri"] == "http://127.0.0.1/oauth/jwks"
    assert set(meta["id_token_signing_alg_values_supported"]) == {"ES256", "RS256", "SM2"}
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]


@SQLITE_ONLY
def test_jwks_is_read_by_pyjwt(app, engine, keystore):
    with session_factory(engine)() as session:
        signing_keys.ensure_signing_keys(session, keystore)  # as `trustctl init` does
        session.commit()
    body = app.test_client().get("/oauth/jwks").get_json()
    assert {key["alg"] for key in body["keys"]} >= {"ES256", "RS256", "SM2"}
    for key in body["keys"]:
        assert "d" not in key and key["kid"]
        if key["alg"] in ("ES256", "RS256"):
            jwt.PyJWK(key)  # an independent parser accepts it


def test_client_credentials_only_with_registered_scopes(app, engine):
    client, secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:read", "seal:sign"])
    http = app.test_client()
    ok = http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "licence:read"},
                   headers={"Authorization": basic(client.client_id, secret)})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    body = ok.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == "licence:read" and "refresh_token" not in body
    assert ok.headers["Cache-Control"] == "no-store"
    every = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": basic(client.client_id, secret)}).get_json()
    assert set(every["scope"].split()) == {"licence:read", "seal:sign"}
    beyond = http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "ca:issue"},
                       headers={"Authorization": basic(client.client_id, secret)})
    assert beyond.status_code == 400 and beyond.get_json()["error"] == "invalid_scope"
    wrong = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": basic(client.client_id, "not-the-secret")})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    # The secret may come in the body too (RFC 6749 §2.3.1), as relying parties such as pyoidc
    # send it when refreshing; a client without a secret still cannot authenticate that way.
    post = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client.client_id,
                                           "client_secret": secret})
    assert post.status_code == 200, post.get_data(as_text=True)


@SQLITE_ONLY
def test_disabled_client_cannot_authenticate(app, engine):
    client, secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:read"])
    with session_factory(engine)() as session:
        clients.disable_client(session, client.client_id, actor="test")
        session.commit()
    refused = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                     headers={"Authorization": basic(client.client_id, secret)})
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"


def test_private_key_jwt_client_authentication(app, engine):
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid="dept-1", alg="ES256", use="sig")
    client, secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:verify"],
                                auth_method="private_key_jwt", jwks={"keys": [jwk]})
    assert secret is None

    def assertion(signer=key, **changes):
        now = int(time.time())
        claims = {"iss": client.client_id, "sub": client.client_id, "aud": "http://127.0.0.1/oauth/token",
                  "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex, **changes}
        return jwt.encode(claims, signer, algorithm="ES256", headers={"kid": "dept-1"})

    def token_request(value):
        return app.test_client().post("/oauth/token", data={
            "grant_type": "client_credentials", "client_assertion": value,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})

    good = assertion()
    ok = token_request(good)
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.get_json()["scope"] == "licence:verify"
    for bad in (good,  # replayed jti
                assertion(signer=ec.generate_private_key(ec.SECP256R1())),
                assertion(aud="https://elsewhere.example/token"),
                assertion(exp=int(time.time()) - 120),
                assertion(exp=int(time.time()) + 7200),
                assertion(iss="someone-else")):
        refused = token_request(bad)
        assert refused.status_code in (400, 401) and refused.get_json()["error"] == "invalid_client"


@SQLITE_ONLY
@pytest.mark.parametrize("alg", ["SM2", "RS256"])
def test_the_client_chooses_the_token_algorithm(app, engine, keystore, alg):
    """Tokens for an SM2 client are SM2-signed and verify with joserfc (our profile registered
    by identity.jose) from the published JWKS; RS256 ones with PyJWT."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    client, secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:read"], token_alg=alg)
    http = app.test_client()
    token = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": basic(client.client_id, secret)}).get_json()["access_token"]
    jwks = http.get("/oauth/jwks").get_json()
    assert jwt.get_unverified_header(token)["alg"] == alg
    if alg == "SM2":
        decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["SM2"])
        assert decoded.claims["client_id"] == client.client_id
    else:
        key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"])
        assert jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})["scope"] == "licence:read"


@SQLITE_ONLY
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=st.dictionaries(st.sampled_from(["grant_type", "code", "client_id", "client_secret", "scope",
                                             "refresh_token", "code_verifier", "redirect_uri", "token",
                                             "client_assertion", "client_assertion_type", "subject_token",
                                             "subject_token_type"]),
                            st.text(max_size=300), max_size=8),
       authorization=st.one_of(st.none(), st.binary(max_size=80).map(lambda b: "Basic " + base64.b64encode(b).decode()),
                               st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)))
def test_token_endpoints_answer_junk_with_oauth_errors(app, form, authorization):
    http = app.test_client()
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
        response = http.post(path, data=form, headers=headers)
        assert response.status_code in (200, 400, 401), (path, response.status_code)
        body = response.get_json()
        assert isinstance(body, dict)
        if response.status_code != 200:
            assert body.get("error") or body.get("code")


@given(st.text(max_size=300))
def test_unverified_claims_never_raises(text):
    from identity import federation
    assert isinstance(federation.unverified_claims(text), dict)
    assert isinstance(federation.unverified_claims(text + "." + base64.urlsafe_b64encode(text.encode()).decode()
                                                   + ".x"), dict)


@given(st.text(max_size=300))
def test_redirect_uri_check_raises_only_invalid_input(uri):
    try:
        clients.check_redirect_uri_form(uri)
    except InvalidInput:
        pass


@SQLITE_ONLY
def test_an_issued_sm2_token_verifies_with_openssl_from_our_jwks(app, engine, tmp_path):
    """An access token of the real token endpoint, for a client registered with SM2, checked
    by `openssl pkeyutl` with the key published in our JWKS (sm-crypto.md §10: raw r‖s in the
    JWS, DER for openssl). The JWK and the signature are converted by asn1crypto, not by us."""
    client, secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:read"], token_alg="SM2")
    http = app.test_client()
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": basic(client.client_id, secret)})
    assert response.status_code == 200, response.get_data(as_text=True)
    token = response.get_json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "SM2"
    [jwk] = [k for k in http.get("/oauth/jwks").get_json()["keys"] if k["kid"] == header["kid"]]
    assert jwk["kty"] == "EC" and jwk["crv"] == "SM2"
    point = b"\x04" + b64url(jwk["x"]) + b64url(jwk["y"])
    spki = asn1_keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": asn1_keys.ECDomainParameters(
            name="named", value="1.2.156.10197.1.301")},  # sm2p256v1
        "public_key": point}).dump()
    signing_input, _, signature = token.rpartition(".")
    raw = b64url(signature)
    assert len(raw) == 64
    (tmp_path / "pub.der").write_bytes(spki)
    (tmp_path / "msg").write_bytes(signing_input.encode())
    (tmp_path / "sig").write_bytes(DSASignature.from_p1363(raw).dump())

    def verify():
        return openssl("pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", tmp_path / "pub.der",
                       "-rawin", "-in", tmp_path / "msg", "-digest", "sm3", "-pkeyopt", STANDARD_ID,
                       "-sigfile", tmp_path / "sig", check=False)

    done = verify()
    assert done.returncode == 0 and b"Signature Verified Successfully" in done.stdout, done.stderr
    (tmp_path / "msg").write_bytes(signing_input.encode() + b"x")
    assert verify().returncode != 0


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
