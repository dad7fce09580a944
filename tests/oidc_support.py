"""What the OIDC tests share: the app with the provider's blueprint (in Flask's test
client, served on a loopback port in this process, or by gunicorn as in production), people and clients to log in with, and a plain
HTTP client (urllib) that speaks to the server as a department application would."""

import base64
import hashlib
import json
import random
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from werkzeug.serving import make_server

from api import oidc_http
from api.app import create_app
from bench.server import free_port
from hsm import kek
from hsm.keystore import KeyStoreConfig, open_keystore
from identity import authn, clients, subjects
from trust.config import Settings
from trust.db import session_factory
from trust.ids import generate_resident_id

from tests.serving import clean_env, trustctl_serve

# For tests where the database makes no difference; the others run on SQLite and PostgreSQL.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery staple 马"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # nothing listens: the tests read the Location


def new_keystore(tmp_path):
    master = tmp_path / "master.key"
    if not master.exists():
        kek.create_master_key_file(master)
    return open_keystore(KeyStoreConfig(kek_file=master))


def make_app(engine, keystore, tmp_path, public_url="http://127.0.0.1", proxy_hops=0):
    settings = Settings(home=tmp_path, database_url=str(engine.url), host="127.0.0.1", port=0,
                        max_request_bytes=1 << 20, workers=1, public_url=public_url, proxy_hops=proxy_hops)
    app = create_app(settings, engine, keystore)
    if "oidc_http" not in app.blueprints:  # until api/app.py registers it
        app.register_blueprint(oidc_http.blueprint)
    return app


@contextmanager
def served(engine, keystore, tmp_path):
    """The app on a loopback port, its issuer the URL it is served at; yields (app, base URL)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = make_app(engine, keystore, tmp_path, public_url=base)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, base
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def served_by_gunicorn(engine, tmp_path, workers: int = 2):
    """`trustctl serve` (gunicorn, ``workers`` processes) on the test's database and key
    store (the master key file of new_keystore), its issuer the URL it is served at; yields
    the base URL. The production server, for the acceptance tests."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = tmp_path / "served-home"
    home.mkdir(mode=0o700, exist_ok=True)
    env = clean_env(TRUST_HOME=str(home), TRUST_DATABASE_URL=engine.url.render_as_string(hide_password=False),
                    TRUST_KEK_FILE=str(tmp_path / "master.key"), TRUST_PUBLIC_URL=base)
    with trustctl_serve(env, port, tmp_path / "gunicorn.log", workers=workers):
        yield base


def sessions_of(engine):
    return session_factory(engine)


def add_person(engine, keystore, *, username="citizen", totp=False, seed=1):
    """A citizen; with ``totp`` a TOTP secret enrolled and confirmed (returned)."""
    with sessions_of(engine)() as session:
        subject = subjects.create_person(session, username=username, password=PASSWORD, name="张三",
                                         resident_id=generate_resident_id(random.Random(seed)))
        session.commit()
        secret = None
        if totp:
            secret, _uri = authn.enrol_totp(session, keystore, subject.id)
            session.commit()
            authn.confirm_totp(session, keystore, subject.id, totp_code(secret))
            session.commit()
        return subjects.get_subject(session, subject.id), secret


def totp_code(secret: bytes, at: datetime | None = None) -> str:
    """A code computed by pyotp (an implementation we did not write)."""
    at = at or datetime.now(UTC)
    return pyotp.TOTP(base64.b32encode(secret).decode()).at(at)


def next_totp_code(secret: bytes) -> str:
    """The code of the next time step: the current one was spent confirming enrolment."""
    return totp_code(secret, datetime.now(UTC) + timedelta(seconds=30))


def add_client(engine, **overrides):
    arguments = dict(name=f"client-{secrets.token_hex(4)}", redirect_uris=[REDIRECT_URI],
                     grant_types=["authorization_code", "refresh_token", "client_credentials"],
                     scopes=["openid", "profile", "realname", "offline_access", "licence:read", "licence:verify",
                             "seal:sign"])
    arguments.update(overrides)
    with sessions_of(engine)() as session:
        client, secret = clients.register_client(session, **arguments)
        session.commit()
    return client, secret


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_query(client_id, challenge, *, scope="openid profile offline_access", state="xyz", nonce="n-0S6",
                    redirect_uri=REDIRECT_URI, **extra) -> str:
    params = dict(response_type="code", client_id=client_id, redirect_uri=redirect_uri, scope=scope,
                  state=state, nonce=nonce, code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


def basic(client_id, secret) -> str:
    return "Basic " + base64.b64encode(f"{urllib.parse.quote(client_id)}:{urllib.parse.quote(secret)}"
                                       .encode()).decode()


def http_post(url, form: dict, headers: dict | None = None) -> tuple[int, dict]:
    """POST a form with urllib; (status, JSON body) whatever the status."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def http_get_json(url, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def query_of(location: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
