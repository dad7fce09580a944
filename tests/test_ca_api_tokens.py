"""The CA's JSON API authorised by an access token: an officer with the role ca-officer and
the scope ca:issue may issue and revoke; anyone else is refused and the refusal audited."""

import pytest
from cryptography import x509 as c_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from api.app import create_app
from ca import authority
from identity import subjects, tokens
from trust.audit import audit_log
from trust.config import Settings

from tests.fixtures.ca import ORG

ISSUER = "http://127.0.0.1:8000"


@pytest.fixture
def app(engine, keystore, session, creds, tmp_path):
    authority.create_hierarchy(session, keystore, "ec", "ecdsa", approval=creds[:2])
    session.commit()
    settings = Settings(home=tmp_path, database_url=str(engine.url), host="127.0.0.1", port=0,
                        max_request_bytes=1 << 20, workers=1, public_url=ISSUER)
    return create_app(settings, engine, keystore)


def bearer(session, keystore, *, roles, scopes, person=True):
    subject = None
    if person:
        subject = subjects.create_officer(session, username=f"officer-{len(roles)}-{len(scopes)}", password="a long pass phrase",
                                          name="王五", staff_number="CA-0001", department="省数据局", roles=roles).id
    token, _ = tokens.issue_access_token(session, keystore, issuer=ISSUER, client_id="ca-console",
                                         subject=subject, scopes=scopes)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = c_x509.Name([c_x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                        c_x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG["O"]),
                        c_x509.NameAttribute(NameOID.COMMON_NAME, ORG["CN"]),
                        c_x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, ORG["organizationIdentifier"])])
    request = c_x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


def test_an_officer_token_issues_and_revokes(app, session, keystore):
    headers = bearer(session, keystore, roles=["ca-officer"], scopes=["ca:issue"])
    client = app.test_client()
    issued = client.post("/api/ca/ec-issuing/certificates", headers=headers,
                         json={"profile": "organisation-signing", "csr": csr_pem()})
    assert issued.status_code == 201, issued.json
    serial = issued.json["serial"]
    revoked = client.post(f"/api/ca/ec-issuing/certificates/{serial}/revoke", headers=headers,
                          json={"reason": "keyCompromise"})
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    actors = session.execute(select(audit_log.c.actor).where(audit_log.c.action.like("ca.%"))).scalars().all()
    assert any(actor.startswith("officer:") for actor in actors)


@pytest.mark.parametrize("roles, scopes, person, status", [
    (["seal-admin"], ["ca:issue"], True, 403),    # an officer, but not of the CA
    (["ca-officer"], ["seal:sign"], True, 403),   # the right officer without the scope
    ([], ["ca:issue"], False, 403),               # client credentials: no person behind it
])
def test_other_tokens_are_refused_and_audited(app, session, keystore, roles, scopes, person, status):
    headers = bearer(session, keystore, roles=roles, scopes=scopes, person=person)
    answer = app.test_client().post("/api/ca/ec-issuing/certificates", headers=headers,
                                    json={"profile": "organisation-signing", "csr": csr_pem()})
    assert answer.status_code == status and answer.json["code"] == "permission_denied"
    session.expire_all()
    refusals = session.execute(select(audit_log.c.action).where(
        audit_log.c.action.in_(["api.refused", "ca.refuse", "officer.denied"]))).scalars().all()
    assert refusals


def test_a_bad_token_is_401(app):
    answer = app.test_client().post("/api/ca/ec-issuing/certificates", headers={"Authorization": "Bearer x.y.z"},
                                    json={"profile": "organisation-signing", "csr": "x"})
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
