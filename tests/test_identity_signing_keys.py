"""identity.signing_keys: one KeyStore label per algorithm, kids as RFC 7638 thumbprints,
rotation that keeps the old key published until its tokens have expired."""

import time
from datetime import timedelta

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import JWKRegistry

from hsm.kek import FileKEK, create_master_key_file
from hsm.keystore import KeyState, KeyStore, Usage
from hsm.soft import SoftBackend
from identity import signing_keys, tokens
from trust.errors import InvalidInput, InvalidToken, NotFound, UnsupportedAlgorithm
from trust.sm2 import SM2PublicKey

ISSUER = "https://trust.example"
# Storage matters to making and rotating keys; the other tests run on SQLite only.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def keystore(tmp_path):
    create_master_key_file(tmp_path / "master.key")
    return KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft")


def test_ensure_makes_one_token_key_per_algorithm_once(session, keystore):
    refs = signing_keys.ensure_signing_keys(session, keystore)
    assert [r.label for r in refs] == ["token/ES256", "token/RS256", "token/SM2"]
    assert all(r.usages == frozenset({Usage.TOKEN}) and r.state == KeyState.ACTIVE for r in refs)
    public = [keystore.public_key(session, r) for r in refs]
    assert isinstance(public[0], ec.EllipticCurvePublicKey) and public[0].curve.name == "secp256r1"
    assert isinstance(public[1], rsa.RSAPublicKey) and public[1].key_size >= 2048
    assert isinstance(public[2], SM2PublicKey)
    session.commit()
    assert [r.id for r in signing_keys.ensure_signing_keys(session, keystore)] == [r.id for r in refs]


@sqlite_only
def test_jwks_publishes_every_key_with_its_thumbprint_as_kid(session, keystore):
    signing_keys.ensure_signing_keys(session, keystore)
    published = signing_keys.jwks(session, keystore)["keys"]
    assert [k["alg"] for k in published] == ["ES256", "RS256", "SM2"]
    for jwk in published:
        assert "d" not in jwk and jwk["use"] == "sig"
        bare = {k: v for k, v in jwk.items() if k not in ("kid", "alg", "use")}
        assert JWKRegistry.import_key(bare).thumbprint() == jwk["kid"]
    for alg in ("ES256", "RS256", "SM2"):
        assert signing_keys.current_signing_key(session, keystore, alg)[1] in {k["kid"] for k in published}


@sqlite_only
def test_unknown_algorithms_have_no_key(session, keystore):
    for alg in ("HS256", "none", "ES384"):
        with pytest.raises(UnsupportedAlgorithm):
            signing_keys.current_signing_key(session, keystore, alg)


@pytest.mark.parametrize("alg", ["ES256", "SM2"])
def test_rotation_signs_with_the_new_key_and_old_tokens_validate_until_expiry(session, keystore, alg):
    old_token, old = tokens.issue_access_token(session, keystore, issuer=ISSUER, client_id="c", subject=None,
                                               scopes=["seal:sign"], alg=alg, lifetime=3600)
    old_ref, old_kid = signing_keys.current_signing_key(session, keystore, alg)
    new_ref, new_kid = signing_keys.rotate_signing_key(session, keystore, alg, actor="officer:li")
    session.commit()
    assert new_kid != old_kid and new_ref.version == old_ref.version + 1
    assert signing_keys.current_signing_key(session, keystore, alg) == (new_ref, new_kid)
    new_token, _ = tokens.issue_access_token(session, keystore, issuer=ISSUER, client_id="c", subject=None,
                                             scopes=["seal:sign"], alg=alg)
    assert pyjwt.get_unverified_header(new_token)["kid"] == new_kid
    kids = {k["kid"] for k in signing_keys.jwks(session, keystore)["keys"]}
    assert {old_kid, new_kid} <= kids
    assert tokens.validate_access_token(session, keystore, old_token, issuer=ISSUER).jti == old.jti
    assert tokens.validate_access_token(session, keystore, new_token, issuer=ISSUER)

    # once every token the old key can have signed has expired, it is no longer published
    deactivated_at = keystore.get(session, old_ref.id).deactivated_at
    later = deactivated_at + signing_keys.MAX_TOKEN_LIFETIME + signing_keys.LEEWAY + timedelta(seconds=1)
    assert old.expires_at < later
    still = signing_keys.MAX_TOKEN_LIFETIME - timedelta(minutes=5)
    assert old_kid in {k["kid"] for k in signing_keys.jwks(session, keystore, now=old.issued_at + still)["keys"]}
    assert old_kid not in {k["kid"] for k in signing_keys.jwks(session, keystore, now=later)["keys"]}


@sqlite_only
def test_a_compromised_key_is_dropped_at_once(session, keystore):
    token, _ = tokens.issue_access_token(session, keystore, issuer=ISSUER, client_id="c", subject=None,
                                         scopes=["seal:sign"], alg="ES256")
    ref, kid = signing_keys.current_signing_key(session, keystore, "ES256")
    signing_keys.rotate_signing_key(session, keystore, "ES256", actor="officer:li")
    keystore.set_state(session, keystore.get(session, ref.id), KeyState.COMPROMISED, actor="officer:li",
                       reason="test")
    assert kid not in {k["kid"] for k in signing_keys.jwks(session, keystore)["keys"]}
    with pytest.raises(InvalidToken, match="unknown kid"):
        tokens.validate_access_token(session, keystore, token, issuer=ISSUER)


@sqlite_only
def test_rotating_a_missing_key_and_signing_without_an_active_one(session, keystore):
    with pytest.raises(NotFound):
        signing_keys.rotate_signing_key(session, keystore, "RS256", actor="officer:li")
    ref, _ = signing_keys.current_signing_key(session, keystore, "RS256")
    keystore.set_state(session, ref, KeyState.SUSPENDED, actor="officer:li", reason="test")
    with pytest.raises(NotFound, match="rotate"):
        signing_keys.current_signing_key(session, keystore, "RS256")


@sqlite_only
@pytest.mark.parametrize("lifetime", [0, -1, 3601, 1.5, True])
def test_token_lifetimes_are_bounded(session, keystore, lifetime):
    with pytest.raises(InvalidInput):
        tokens.issue_access_token(session, keystore, issuer=ISSUER, client_id="c", subject=None,
                                  scopes=["seal:sign"], lifetime=lifetime)


@sqlite_only
def test_another_workers_new_key_is_seen_at_once_and_a_compromise_within_state_ttl(session, tmp_path):
    """Two KeyStores on one database stand for two gunicorn workers."""
    create_master_key_file(tmp_path / "master.key")
    worker_a, worker_b = (KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft", state_ttl=0.3)
                          for _ in range(2))
    first, _ = tokens.issue_access_token(session, worker_a, issuer=ISSUER, client_id="c", subject=None,
                                         scopes=["seal:sign"])
    session.commit()
    assert tokens.validate_access_token(session, worker_a, first, issuer=ISSUER)  # A's key versions now cached
    old_ref, _ = signing_keys.current_signing_key(session, worker_b, "ES256")
    signing_keys.rotate_signing_key(session, worker_b, "ES256", actor="officer:li")
    session.commit()
    second, _ = tokens.issue_access_token(session, worker_b, issuer=ISSUER, client_id="c", subject=None,
                                          scopes=["seal:sign"])
    session.commit()
    assert tokens.validate_access_token(session, worker_a, second, issuer=ISSUER)  # unknown kid: re-read

    worker_b.set_state(session, worker_b.get(session, old_ref.id), KeyState.COMPROMISED, actor="officer:li",
                       reason="test")
    session.commit()
    time.sleep(0.4)
    with pytest.raises(InvalidToken, match="unknown kid"):
        tokens.validate_access_token(session, worker_a, first, issuer=ISSUER)
