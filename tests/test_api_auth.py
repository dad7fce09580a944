"""api.auth: the bearer-token gate, through a tiny Flask app that registers one protected
view, with real tokens from identity.tokens."""

import json
from datetime import timedelta

import pytest
from flask import Blueprint, Flask, g
from sqlalchemy import select

from api import problems
from api.auth import require_scopes
from hsm.kek import FileKEK, create_master_key_file
from hsm.keystore import KeyStore
from hsm.soft import SoftBackend
from identity import tokens
from trust.audit import audit_coalesce, audit_log
from trust.clock import utc_now
from trust.config import Settings
from trust.db import make_engine, session_factory, upgrade

ISSUER = "https://trust.example"


@pytest.fixture
def app(tmp_path):
    create_master_key_file(tmp_path / "master.key")
    url = f"sqlite:///{tmp_path / 'trust.db'}"
    engine = make_engine(url)
    upgrade(engine)
    app = Flask(__name__)
    app.extensions["trust.settings"] = Settings(home=tmp_path, database_url=url, host="127.0.0.1", port=0,
                                                max_request_bytes=1 << 20, workers=1, public_url=ISSUER)
    app.extensions["trust.sessions"] = session_factory(engine)
    app.extensions["trust.keystore"] = KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft")
    problems.register(app)
    blueprint = Blueprint("protected", __name__)

    @blueprint.get("/seals")
    @require_scopes("seal:sign")
    def seals():
        token = g.access_token
        return {"client_id": token.client_id, "subject": token.subject, "scopes": sorted(token.scopes)}

    app.register_blueprint(blueprint)
    yield app
    engine.dispose()


def issue(app, scopes=("seal:sign",), **options) -> str:
    with app.extensions["trust.sessions"]() as session, session.begin():
        token, _ = tokens.issue_access_token(session, app.extensions["trust.keystore"], issuer=ISSUER,
                                             client_id="dept-app", subject=None, scopes=scopes, **options)
    return token


def refusals(app) -> list[dict]:
    with app.extensions["trust.sessions"]() as session:
        rows = session.execute(select(audit_log).where(audit_log.c.action == "api.refused")
                               .order_by(audit_log.c.seq)).all()
    return [{"actor": r.actor, "target": r.target, **json.loads(r.detail)} for r in rows]


def get(app, authorization: str | None):
    headers = {"Authorization": authorization} if authorization is not None else {}
    return app.test_client().get("/seals", headers=headers)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "SM2"])
def test_a_token_with_the_scope_reaches_the_view(app, alg):
    response = get(app, "Bearer " + issue(app, scopes=("seal:sign", "licence:read"), alg=alg))
    assert response.status_code == 200
    assert response.json == {"client_id": "dept-app", "subject": None, "scopes": ["licence:read", "seal:sign"]}
    assert refusals(app) == []


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer   ", "Basic ZGVwdDpzZWNyZXQ="])
def test_no_bearer_token_is_401_with_a_bearer_challenge(app, authorization):
    response = get(app, authorization)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.mimetype == "application/problem+json" and response.json["code"] == "unauthenticated"
    assert refusals(app) == [{"actor": "anonymous", "target": "/seals", "path": "/seals", "method": "GET",
                              "code": "unauthenticated", "address": "127.0.0.1"}]


def test_bad_tokens_are_401_invalid_token(app):
    token = issue(app)
    header, payload, signature = token.split(".")
    for bad in ("garbage", f"{header}.{payload}.{signature[::-1]}", token + "x" * 9000,
                issue(app, audience="https://dept.example")):
        response = get(app, "Bearer " + bad)
        assert response.status_code == 401, bad[:40]
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json["code"] == "invalid_token" and response.json["detail_zh"]
    # anyone can cause these: one record per address, kind and minute, the repeats counted
    assert [r["code"] for r in refusals(app)] == ["invalid_token"]
    with app.extensions["trust.sessions"]() as session:
        counted = session.execute(select(audit_coalesce.c.count)).scalars().all()
    assert counted in ([4], [1, 3], [2, 2], [3, 1])  # all in one minute, or two if it turned meanwhile


def test_expired_and_revoked_tokens_are_refused(app):
    expired = issue(app, lifetime=1, clock=lambda: utc_now() - timedelta(minutes=5))
    assert get(app, "Bearer " + expired).status_code == 401
    revoked = issue(app)
    with app.extensions["trust.sessions"]() as session, session.begin():
        tokens.revoke_token(session, revoked, client_id="dept-app")
    response = get(app, "Bearer " + revoked)
    assert response.status_code == 401 and "revoked" in response.json["detail"]


def test_a_token_without_the_scope_is_403_insufficient_scope(app):
    response = get(app, "Bearer " + issue(app, scopes=("licence:read",)))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert response.json["code"] == "permission_denied" and "seal:sign" in response.json["detail"]
    assert refusals(app) == [{"actor": "dept-app", "target": "/seals", "path": "/seals", "method": "GET",
                              "code": "permission_denied"}]


def test_the_scheme_is_case_insensitive(app):
    assert get(app, "bearer " + issue(app)).status_code == 200
