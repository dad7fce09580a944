"""Federation: ID tokens of a trusted external issuer (signed here by PyJWT with a key
of its own, as another province's platform would) exchanged by RFC 8693 for our access
tokens, mapped to the linked local subject with the level the agreement grants; every
token that should not pass is refused."""

import time
import uuid
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import insert, select

from identity import federation, subjects
from identity.client_models import federated_identity
from trust import audit
from trust.db import session_factory
from trust.errors import PermissionDenied

from tests.oidc_support import PASSWORD, SQLITE_ONLY, add_client, add_person, basic, make_app, new_keystore

ISSUER = "https://sso.other-province.gov.cn"
AUDIENCE = "https://trust.this-province.gov.cn"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


@pytest.fixture
def keystore(tmp_path):
    return new_keystore(tmp_path)


@pytest.fixture
def app(engine, keystore, tmp_path):
    return make_app(engine, keystore, tmp_path)


@pytest.fixture
def issuer_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def setup(engine, keystore, issuer_key):
    person, _ = add_person(engine, keystore)
    jwk = ECAlgorithm.to_jwk(issuer_key.public_key(), as_dict=True)
    jwk.update(kid="other-1", alg="ES256", use="sig")
    with session_factory(engine)() as session:
        federation.add_issuer(session, issuer=ISSUER, name="外省统一身份认证平台", jwks={"keys": [jwk]},
                              audience=AUDIENCE, assurance_level="L2", scopes=["licence:read", "licence:verify"],
                              actor="test")
        federation.link_identity(session, issuer=ISSUER, external_subject="ext-123", subject_id=person.id,
                                 actor="test")
        session.commit()
    client, secret = add_client(engine, grant_types=["client_credentials", EXCHANGE],
                                scopes=["licence:read", "licence:verify", "seal:sign"])
    return person, client, secret


def id_token(key, **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ext-123", "iat": now, "exp": now + 300,
              "jti": uuid.uuid4().hex}
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="ES256",
                      headers={"kid": "other-1"})


def exchange(app, client, secret, subject_token, **extra):
    form = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": ID_TOKEN, **extra}
    return app.test_client().post("/oauth/token", data=form,
                                  headers={"Authorization": basic(client.client_id, secret)})


def test_exchange_maps_to_the_local_subject_with_the_agreed_level(app, setup, issuer_key):
    person, client, secret = setup
    response = exchange(app, client, secret, id_token(issuer_key), scope="licence:read")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["scope"] == "licence:read" and "refresh_token" not in body
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == person.id and claims["assurance_level"] == "L2" and claims["federated_iss"] == ISSUER
    introspection = app.test_client().post("/oauth/introspect", data={"token": body["access_token"]},
                                           headers={"Authorization": basic(client.client_id, secret)}).get_json()
    assert introspection["active"] is True and introspection["sub"] == person.id


def test_an_id_token_is_exchanged_once(app, setup, issuer_key):
    _, client, secret = setup
    token = id_token(issuer_key)
    assert exchange(app, client, secret, token).status_code == 200
    again = exchange(app, client, secret, token)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


@SQLITE_ONLY
@pytest.mark.parametrize("change", [
    {"aud": "https://someone-else.gov.cn"},
    {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},
    {"nbf": int(time.time()) + 3600},
    {"iat": int(time.time()) - 3600},   # not a fresh login
    {"sub": "ext-unlinked"},
    {"iss": "https://untrusted.example.cn"},
    {"sub": None},
])
def test_bad_id_tokens_are_refused(app, setup, issuer_key, change):
    _, client, secret = setup
    response = exchange(app, client, secret, id_token(issuer_key, **change))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


@SQLITE_ONLY
def test_forged_signatures_and_algorithms_are_refused(app, setup, issuer_key):
    _, client, secret = setup
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = id_token(other_key)
    header, payload, _ = id_token(issuer_key).split(".")
    unsigned = jwt.encode(jwt.decode(id_token(issuer_key), options={"verify_signature": False}), None,
                          algorithm="none")
    for token in (forged, f"{header}.{payload}.", unsigned, "x" * 9000, "not.a.jwt"):
        response = exchange(app, client, secret, token)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant", token[:40]


@SQLITE_ONLY
def test_scope_is_bounded_by_client_and_agreement(app, setup, issuer_key):
    _, client, secret = setup
    beyond = exchange(app, client, secret, id_token(issuer_key), scope="seal:sign")  # client has it, agreement not
    assert beyond.status_code == 400 and beyond.get_json()["error"] == "invalid_scope"


@SQLITE_ONLY
def test_exchange_needs_the_grant_and_the_id_token_type(app, engine, setup, issuer_key):
    _, client, secret = setup
    wrong_type = exchange(app, client, secret, id_token(issuer_key),
                          subject_token_type="urn:ietf:params:oauth:token-type:access_token")
    assert wrong_type.status_code == 400 and wrong_type.get_json()["error"] == "invalid_request"
    plain, plain_secret = add_client(engine, grant_types=["client_credentials"], scopes=["licence:read"])
    refused = exchange(app, plain, plain_secret, id_token(issuer_key))
    assert refused.status_code == 400 and refused.get_json()["error"] == "unauthorized_client"


def add_officer(engine):
    with session_factory(engine)() as session:
        officer = subjects.create_officer(session, username="officer-1", password=PASSWORD, name="李四",
                                          staff_number="S-001", department="市场监管局", roles=["seal-admin"])
        session.commit()
    return officer


@SQLITE_ONLY
def test_officers_cannot_be_linked(engine, setup):
    officer = add_officer(engine)
    with session_factory(engine)() as session:
        with pytest.raises(PermissionDenied) as refused:
            federation.link_identity(session, issuer=ISSUER, external_subject="ext-officer", subject_id=officer.id,
                                     actor="test")
        assert "TOTP" in refused.value.en and "动态口令" in refused.value.zh
        assert session.execute(select(federated_identity).where(
            federated_identity.c.subject_id == officer.id)).first() is None


@SQLITE_ONLY
def test_an_officer_linked_before_gets_no_token_without_totp(app, engine, setup, issuer_key):
    """A link written before link_identity refused officers: the exchange refuses it too."""
    _, client, secret = setup
    officer = add_officer(engine)
    with session_factory(engine)() as session:
        session.execute(insert(federated_identity).values(issuer=ISSUER, external_subject="ext-officer",
                                                          subject_id=officer.id, linked_at=datetime.now(UTC)))
        session.commit()
    response = exchange(app, client, secret, id_token(issuer_key, sub="ext-officer"), scope="licence:read")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert "access_token" not in response.get_json()
    with session_factory(engine)() as session:
        assert session.execute(select(audit.audit_log.c.action).where(
            audit.audit_log.c.target == officer.id, audit.audit_log.c.action == "federation.refused")).first()
