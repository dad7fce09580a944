"""What the CA tests share: a key store, three enrolled security officers, the app served
on a loopback port and a POST to it, PEM files for openssl. A test module imports the fixtures it uses:
``from tests.ca_fixtures import creds, keystore  # noqa: F401 (fixtures)``."""

import random
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from asn1crypto import pem
from werkzeug.serving import make_server

from api import ca_http
from api.app import create_app
from hsm import kek, officers
from hsm.keystore import KeyStoreConfig, open_keystore
from trust.config import Settings
from trust.ids import generate_uscc

ORG = {"C": "CN", "O": "演示局 Demo Bureau", "CN": "演示局签章",
       "organizationIdentifier": generate_uscc(random.Random(5))}


@pytest.fixture
def keystore(tmp_path):
    master = tmp_path / "master.key"
    kek.create_master_key_file(master)
    return open_keystore(KeyStoreConfig(kek_file=master))


@pytest.fixture
def creds(session):
    """Three officers' credentials; the default approval policy needs two of them."""
    found = []
    for i in (1, 2, 3):
        credential, _pem = officers.new_credential()
        officers.enrol(session, f"officer-{i}", f"安全员{i}", credential.private_key.public_key().to_pem(),
                       actor="test")
        found.append(credential)
    session.commit()
    return found


@contextmanager
def served(engine, keystore, tmp_path):
    """The app with the CA endpoints on a free loopback port; yields its base URL."""
    settings = Settings(home=tmp_path, database_url=str(engine.url), host="127.0.0.1", port=0,
                        max_request_bytes=1 << 20, workers=1)
    app = create_app(settings, engine, keystore)
    if "ca_http" not in app.blueprints:  # until api/app.py registers it
        app.register_blueprint(ca_http.blueprint)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def write_pem(path, *ders, kind="CERTIFICATE"):
    path.write_bytes(b"".join(pem.armor(kind, der) for der in ders))
    return path


def post(base, path, body, content_type):
    """POST ``body`` to the served app: (status, Content-Type, body), for HTTP errors too."""
    request = urllib.request.Request(f"{base}{path}", data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()
