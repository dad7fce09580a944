"""identity.jose: compact JWS signed by KeyStore keys, checked by libraries nobody here
wrote (PyJWT, joserfc once taught the SM2 profile, the openssl CLI), and refusals of the
classic JWT attacks."""

import base64
import hashlib
import hmac
import json

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings, strategies as st
from joserfc import jws as joserfc_jws, jwt as joserfc_jwt
from joserfc.errors import BadSignatureError, InvalidKeyCurveError, SecurityWarning, UnsupportedAlgorithmError
from joserfc.jwk import ECKey, JWKRegistry, KeySet, RSAKey

from hsm.kek import FileKEK, create_master_key_file
from hsm.keystore import KeyStore
from hsm.soft import SoftBackend
from identity import jose, signing_keys
from trust.db import make_engine, session_factory, upgrade
from trust.errors import InvalidInput, InvalidToken, UnsupportedAlgorithm
from trust.sm2 import SM2PrivateKey, signature_from_raw

from oracles import STANDARD_ID, openssl

ALGS = ("ES256", "RS256", "SM2")
CLAIMS = {"iss": "https://trust.example", "sub": "3f1c", "aud": "https://trust.example", "exp": 4_000_000_000,
          "iat": 1_700_000_000, "name": "张三"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One database and KeyStore with a signing key per algorithm, for the whole module."""
    home = tmp_path_factory.mktemp("jose")
    create_master_key_file(home / "master.key")
    engine = make_engine(f"sqlite:///{home / 'trust.db'}")
    upgrade(engine)
    keystore = KeyStore([SoftBackend(FileKEK(home / "master.key"))], "soft")
    with session_factory(engine)() as session:
        signing_keys.ensure_signing_keys(session, keystore)
        session.commit()
        yield session, keystore
    engine.dispose()


def sign(env, alg: str, claims: dict = CLAIMS, **header) -> tuple[str, str]:
    session, keystore = env
    ref, kid = signing_keys.current_signing_key(session, keystore, alg)
    return jose.sign_compact(session, keystore, ref, {"alg": alg, "kid": kid, **header}, claims), kid


def published(env) -> dict:
    return signing_keys.jwks(*env)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)])


# ---------------------------------------------------------------- interoperability

@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_pyjwt_verifies_our_tokens_from_our_jwks(env, alg):
    token, kid = sign(env, alg, typ="at+jwt")
    jwk = next(k for k in published(env)["keys"] if k["kid"] == kid)
    claims = pyjwt.decode(token, pyjwt.PyJWK(jwk).key, algorithms=[alg], audience=CLAIMS["aud"],
                          issuer=CLAIMS["iss"])
    assert claims == CLAIMS
    assert pyjwt.get_unverified_header(token) == {"alg": alg, "kid": kid, "typ": "at+jwt"}


@pytest.mark.parametrize("alg", ALGS)
def test_our_verifier_accepts_our_tokens(env, alg):
    token, kid = sign(env, alg)
    header, claims = jose.verify_compact(token, published(env), algorithms=list(ALGS))
    assert header == {"alg": alg, "kid": kid} and claims == CLAIMS


def test_sm2_token_signature_verifies_with_openssl(env, tmp_path):
    token, _kid = sign(env, "SM2")
    signing_input, _, signature = token.rpartition(".")
    raw = jose.b64url_decode(signature)
    assert len(raw) == 64  # raw r‖s, like ES256 (sm-crypto.md §10)
    session, keystore = env
    ref, _ = signing_keys.current_signing_key(session, keystore, "SM2")
    (tmp_path / "pub.pem").write_text(keystore.public_key(session, ref).to_pem())
    (tmp_path / "msg").write_bytes(signing_input.encode())
    (tmp_path / "sig").write_bytes(signature_from_raw(raw))
    done = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-in", tmp_path / "msg",
                   "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig")
    assert b"Signature Verified Successfully" in done.stdout
    (tmp_path / "msg").write_bytes(signing_input.encode() + b"x")
    assert openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-in",
                   tmp_path / "msg", "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig",
                   check=False).returncode != 0


@pytest.mark.parametrize("alg", ALGS)
def test_joserfc_verifies_our_tokens_from_our_jwks(env, alg):
    token, _ = sign(env, alg)
    keys = KeySet.import_key_set(published(env))
    decoded = joserfc_jwt.decode(token, keys, algorithms=[alg])
    assert decoded.claims == CLAIMS
    assert joserfc_jws.deserialize_compact(token, keys, algorithms=[alg]).payload == json.dumps(
        CLAIMS, separators=(",", ":"), ensure_ascii=False).encode()


def test_joserfc_refuses_sm2_on_other_curves_and_others_on_sm2(env):
    # without "alg" in the JWKs, so that the curve check itself is what refuses
    bare = {k.get("crv"): {n: v for n, v in k.items() if n != "alg"} for k in published(env)["keys"]}
    sm2_key, p256_key = JWKRegistry.import_key(bare["SM2"]), JWKRegistry.import_key(bare["P-256"])
    assert isinstance(sm2_key, ECKey) and sm2_key.curve_name == "SM2"
    sm2_token, _ = sign(env, "SM2")
    es_token, _ = sign(env, "ES256")
    with pytest.raises(InvalidKeyCurveError):
        joserfc_jws.deserialize_compact(sm2_token, p256_key, algorithms=["SM2"])
    with pytest.raises(InvalidKeyCurveError):
        joserfc_jws.deserialize_compact(es_token, sm2_key, algorithms=["ES256"])
    with pytest.raises(UnsupportedAlgorithmError):  # not recommended: never accepted unless asked for
        joserfc_jws.deserialize_compact(sm2_token, sm2_key)


def test_joserfc_signs_with_an_sm2_jwk_that_we_and_openssl_verify(tmp_path):
    key = JWKRegistry.generate_key("EC", "SM2", private=True, auto_kid=True)
    token = joserfc_jwt.encode({"alg": "SM2", "kid": key.kid}, {"sub": "x"}, key, algorithms=["SM2"])
    public = key.as_dict(private=False)
    assert set(public) == {"kty", "crv", "x", "y", "kid"} and public["crv"] == "SM2"
    assert jose.verify_compact(token, {"keys": [public]}, algorithms=["SM2"])[1] == {"sub": "x"}
    # the private JWK round-trips, and its PEM export is a key openssl reads
    again = JWKRegistry.import_key(key.as_dict(private=True))
    assert again.as_dict(private=True) == key.as_dict(private=True)
    (tmp_path / "key.pem").write_bytes(key.as_pem(private=True))
    assert b"SM2" in openssl("pkey", "-in", tmp_path / "key.pem", "-noout", "-text").stdout
    from_pem = JWKRegistry.import_key(openssl("pkey", "-in", tmp_path / "key.pem", "-pubout").stdout, "EC")
    assert from_pem.curve_name == "SM2" and from_pem.thumbprint() == key.thumbprint()
    with pytest.raises(BadSignatureError):
        joserfc_jwt.decode(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
                           KeySet([JWKRegistry.import_key(public)]), algorithms=["SM2"])


def test_an_sm2_jwk_whose_d_does_not_match_is_refused():
    one, other = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    jwk = JWKRegistry.import_key(one, "EC").as_dict(private=True)
    jwk["d"] = JWKRegistry.import_key(other, "EC").as_dict(private=True)["d"]
    with pytest.raises(InvalidInput):
        JWKRegistry.import_key(jwk)


def test_p256_and_rsa_keys_still_work_in_joserfc():
    for key in (JWKRegistry.generate_key("EC", "P-256"), JWKRegistry.generate_key("RSA", 2048)):
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        token = joserfc_jwt.encode({"alg": alg}, {"a": 1}, key)
        assert joserfc_jwt.decode(token, key).claims == {"a": 1}


# ---------------------------------------------------------------- JWK and thumbprints

def test_rfc7638_example_thumbprint():
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknj"
         "hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQ"
         "vRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
         "nqDKgw")
    key = jose.parse_jwks({"keys": [{"kty": "RSA", "n": n, "e": "AQAB"}]})[0].public_key
    assert jose.thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_kids_are_the_thumbprints_joserfc_computes(env):
    for jwk in published(env)["keys"]:
        assert JWKRegistry.import_key({k: v for k, v in jwk.items() if k != "kid"}).thumbprint() == jwk["kid"]
        assert jwk["use"] == "sig" and jwk["alg"] in ALGS


def test_public_jwk_refuses_an_algorithm_that_does_not_fit():
    public = SM2PrivateKey.generate().public_key()
    with pytest.raises(InvalidInput):
        jose.public_jwk(public, kid="k", alg="ES256")
    assert jose.public_jwk(public, kid="k", alg="SM2")["crv"] == "SM2"


def test_a_jwks_with_a_private_key_is_refused():
    jwk = JWKRegistry.generate_key("EC", "P-256").as_dict(private=True)
    with pytest.raises(InvalidInput):
        jose.parse_jwks({"keys": [jwk]})


def test_unknown_kinds_of_key_are_skipped():
    keys = jose.parse_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}, {"kty": "oct", "k": "AA"},
                                     {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "use": "enc"}]})
    assert keys == ()


def test_small_rsa_keys_are_refused():
    with pytest.warns(SecurityWarning):
        jwk = RSAKey.generate_key(1024).as_dict()
    with pytest.raises(InvalidInput):
        jose.parse_jwks({"keys": [jwk]})


# ---------------------------------------------------------------- refusals

def test_alg_none_is_refused(env):
    _, kid = sign(env, "ES256")
    with pytest.raises(InvalidToken):
        jose.verify_compact(forge({"alg": "none", "kid": kid}, CLAIMS), published(env), algorithms=["none", *ALGS])


@pytest.mark.parametrize("alg", ["ES256", "RS256", "SM2"])
def test_hmac_with_the_public_key_as_secret_is_refused(env, alg):
    """The classic confusion: HS256 keyed with the published public key."""
    session, keystore = env
    ref, kid = signing_keys.current_signing_key(session, keystore, alg)
    public_key = keystore.public_key(session, ref)
    pem = (public_key.to_pem().encode() if hasattr(public_key, "to_pem") else public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    jwk_json = json.dumps(next(k for k in published(env)["keys"] if k["kid"] == kid)).encode()
    for secret in (pem, jwk_json):
        head = b64(json.dumps({"alg": "HS256", "kid": kid}).encode()) + "." + b64(json.dumps(CLAIMS).encode())
        token = head + "." + b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())
        with pytest.raises(InvalidToken):
            jose.verify_compact(token, published(env), algorithms=["HS256", *ALGS])


def test_sm2_header_on_a_p256_key_and_es256_on_an_sm2_key_are_refused(env):
    session, keystore = env
    es_ref, es_kid = signing_keys.current_signing_key(session, keystore, "ES256")
    _sm2_ref, sm2_kid = signing_keys.current_signing_key(session, keystore, "SM2")
    # header says SM2 but names the P-256 key (and vice versa): refused before any signature math
    for alg, kid in (("SM2", es_kid), ("ES256", sm2_kid)):
        head = b64(json.dumps({"alg": alg, "kid": kid}).encode()) + "." + b64(json.dumps(CLAIMS).encode())
        with pytest.raises(InvalidToken, match="does not fit"):
            jose.verify_compact(head + "." + b64(bytes(64)), published(env), algorithms=list(ALGS))
    with pytest.raises(InvalidInput):  # and we never sign such a thing
        jose.sign_compact(session, keystore, es_ref, {"alg": "SM2", "kid": es_kid}, CLAIMS)


def test_an_algorithm_outside_the_allow_list_is_refused(env):
    token, _ = sign(env, "RS256")
    with pytest.raises(InvalidToken, match="not accepted"):
        jose.verify_compact(token, published(env), algorithms=["ES256", "SM2"])


def test_unknown_kid_is_refused(env):
    token, kid = sign(env, "ES256")
    _header, payload, signature = token.split(".")
    other = b64(json.dumps({"alg": "ES256", "kid": "not-" + kid}).encode())
    with pytest.raises(InvalidToken, match="unknown kid"):
        jose.verify_compact(f"{other}.{payload}.{signature}", published(env), algorithms=list(ALGS))


def test_missing_kid_is_accepted_only_with_a_single_key(env):
    session, keystore = env
    ref, kid = signing_keys.current_signing_key(session, keystore, "ES256")
    token = jose.sign_compact(session, keystore, ref, {"alg": "ES256"}, CLAIMS)
    with pytest.raises(InvalidToken, match="more than one"):
        jose.verify_compact(token, published(env), algorithms=list(ALGS))
    single = {"keys": [k for k in published(env)["keys"] if k["kid"] == kid]}
    assert jose.verify_compact(token, single, algorithms=["ES256"])[1] == CLAIMS


@pytest.mark.parametrize("alg", ALGS)
def test_altered_tokens_are_refused(env, alg):
    token, _ = sign(env, alg)
    header, payload, signature = token.split(".")
    altered = b64(json.dumps({**CLAIMS, "sub": "someone else"}, separators=(",", ":")).encode())
    for bad in (f"{header}.{altered}.{signature}", f"{header}.{payload}.{signature[:-2]}",
                f"{header}.{payload}." + b64(bytes(len(jose.b64url_decode(signature))))):
        with pytest.raises(InvalidToken):
            jose.verify_compact(bad, published(env), algorithms=list(ALGS))


def test_oversized_and_malformed_tokens_are_refused(env):
    token, _ = sign(env, "ES256")
    with pytest.raises(InvalidToken, match="larger than"):
        jose.verify_compact(token + "A" * 8192, published(env), algorithms=list(ALGS))
    with pytest.raises(InvalidToken, match="larger than"):
        jose.verify_compact(token, published(env), algorithms=list(ALGS), max_bytes=100)
    header, payload, signature = token.split(".")
    for bad in ("", "a.b", f"{header}.{payload}", f"{header}.{payload}.{signature}.x", f"{header}==.{payload}.{signature}",
                f"{header}.{payload}.{signature}+", "e30.e30.", forge(["alg"], CLAIMS),
                b64(b'{"alg":"ES256","alg":"SM2"}') + f".{payload}.{signature}",
                b64(b'{"alg":"ES256","crit":["exp"]}') + f".{payload}.{signature}"):
        with pytest.raises(InvalidToken):
            jose.verify_compact(bad, published(env), algorithms=list(ALGS))


def test_claims_that_are_not_an_object_are_refused(env):
    session, keystore = env
    ref, kid = signing_keys.current_signing_key(session, keystore, "ES256")
    # signed by our key, but the payload is a JSON array
    head = b64(json.dumps({"alg": "ES256", "kid": kid}).encode()) + "." + b64(b"[1,2]")
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s = decode_dss_signature(keystore.sign(session, ref, head.encode(), usage="token"))
    token = head + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    with pytest.raises(InvalidToken, match="JSON object"):
        jose.verify_compact(token, published(env), algorithms=list(ALGS))


def test_sign_compact_refuses_unknown_algorithms(env):
    session, keystore = env
    ref, kid = signing_keys.current_signing_key(session, keystore, "ES256")
    for alg in ("none", "HS256", "ES384", None):
        with pytest.raises(UnsupportedAlgorithm):
            jose.sign_compact(session, keystore, ref, {"alg": alg, "kid": kid}, CLAIMS)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,90}",
                                              fullmatch=True))
def test_garbage_never_raises_anything_but_invalid_token(garbage):
    keys = ({"keys": [{"kty": "EC", "crv": "SM2", "kid": "k", "x": b64(SM2_PUBLIC.x.to_bytes(32, "big")),
                       "y": b64(SM2_PUBLIC.y.to_bytes(32, "big"))}]})
    with pytest.raises(InvalidToken):
        jose.verify_compact(garbage, keys, algorithms=list(ALGS))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "x"]),
                       st.none() | st.integers() | st.text(max_size=10) | st.lists(st.text(max_size=5), max_size=3)),
       st.binary(max_size=80))
def test_fuzzed_headers_and_signatures_are_refused(header, signature):
    keys = {"keys": [{"kty": "EC", "crv": "SM2", "kid": "k", "x": b64(SM2_PUBLIC.x.to_bytes(32, "big")),
                      "y": b64(SM2_PUBLIC.y.to_bytes(32, "big"))}]}
    with pytest.raises(InvalidToken):
        jose.verify_compact(forge(header, CLAIMS, signature), keys, algorithms=list(ALGS))


SM2_PUBLIC = SM2PrivateKey.generate().public_key()


def test_a_payload_segment_that_is_not_base64url_is_refused_before_verifying(env):
    token, _ = sign(env, "SM2")
    header, payload, signature = token.split(".")
    for bad_payload in (payload[:-1] + "é", payload + "=", payload[:5] + "+" + payload[6:]):
        with pytest.raises(InvalidToken, match="base64url"):
            jose.verify_compact(f"{header}.{bad_payload}.{signature}", published(env), algorithms=list(ALGS))
