"""Client-credentials tokens are written by a group commit (trust.db.GroupCommit, #18): a
token acknowledged to a client has its row and its signature's audit record on disk, even
when the whole service is killed with SIGKILL in the middle of the traffic."""

import base64
import http.client
import json
import os
import signal
import threading
import time
from urllib.parse import urlencode

from sqlalchemy import func, select

from bench.identity import token_home
from bench.server import worker_pids
from identity import clients
from identity.token_models import oauth_access_token
from trust import audit
from trust.db import make_engine, upgrade

from tests.serving import trustctl_serve

CLIENTS = 4


def _issue_until(port: int, authorization: str, stop: threading.Event, acknowledged: list[str]) -> None:
    """Tokens over one keep-alive connection until ``stop`` or the server is gone; the jti of
    every token the server answered with."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = urlencode({"grant_type": "client_credentials", "scope": "seal:sign"})
    try:
        while not stop.is_set():
            connection.request("POST", "/oauth/token", body, {
                "Authorization": authorization, "Content-Type": "application/x-www-form-urlencoded"})
            response = connection.getresponse()
            answer = response.read()
            assert response.status == 200, answer
            payload = json.loads(answer)["access_token"].split(".")[1]
            acknowledged.append(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])
    except (OSError, http.client.HTTPException):
        pass  # killed under us: what was answered before counts


def test_every_acknowledged_token_survives_sigkill(tmp_path):
    made = token_home(tmp_path / "home")
    env, port, sessions, authorization = made.env, made.port, made.sessions, made.authorization
    engine = made.engine

    acknowledged: list[str] = []
    stop = threading.Event()
    with trustctl_serve(env, port, tmp_path / "serve.log", workers=2) as server:
        threads = [threading.Thread(target=_issue_until, args=(port, authorization, stop, acknowledged))
                   for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in [server.pid, *worker_pids(server.pid)]:  # all at once, mid-traffic
            os.kill(pid, signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert len(acknowledged) >= 200

    with sessions() as session:
        stored = set(session.execute(select(oauth_access_token.c.jti)).scalars())
        assert set(acknowledged) <= stored
        assert audit.verify_chain(session).ok
        # every stored token's signature is in the audit log, committed with its row
        uses = session.execute(select(audit.audit_log.c.detail).where(
            audit.audit_log.c.action == "key.sign")).scalars()
        signed = sum(json.loads(detail)["count"] for detail in uses if json.loads(detail)["usage"] == "token")
        assert signed == session.execute(select(func.count()).select_from(oauth_access_token)).scalar()
    engine.dispose()


def test_concurrent_first_tokens_make_one_signing_key(tmp_path):
    """Requests that read before any signing key exists each find the one the first made
    (the key is made on first need, from a request that has only read so far)."""
    from concurrent.futures import ThreadPoolExecutor

    from api.app import create_app
    from hsm.kek import create_master_key_file
    from hsm.models import hsm_keys
    from trust.config import Settings

    url = f"sqlite:///{tmp_path / 'trust.db'}"
    engine = make_engine(url)
    upgrade(engine)
    create_master_key_file(tmp_path / "master.key")
    app = create_app(Settings(home=tmp_path, database_url=url, host="127.0.0.1", port=8000,
                              max_request_bytes=1 << 20, workers=1, public_url="https://trust.test"), engine)
    with app.extensions["trust.sessions"]() as session:
        client, secret = clients.register_client(session, name="first", grant_types=["client_credentials"],
                                                 scopes=["seal:sign"], token_alg="ES256")
        session.commit()

    def token(_):
        return app.test_client().post("/oauth/token", data={"grant_type": "client_credentials", "scope": "seal:sign"},
                                      auth=(client.client_id, secret)).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(token, range(16))) == [200] * 16
    with app.extensions["trust.sessions"]() as session:
        labels = session.execute(select(hsm_keys.c.label).where(hsm_keys.c.label == "token/ES256")).scalars().all()
        assert labels == ["token/ES256"]
        assert session.execute(select(func.count()).select_from(oauth_access_token)).scalar() == 16
    engine.dispose()
