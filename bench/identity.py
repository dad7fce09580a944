"""Tokens: client-credentials issuance and introspection over HTTP against `trustctl serve`
(gunicorn, 2 workers, SQLite, on 127.0.0.1), beside the same operations in process and raw
ES256 signing in the same run.

Every HTTP request authenticates its client with client_secret_basic (an SM3 hash of the
256-bit secret, identity.clients) as a real client does; the in-process figures show what
the token itself costs. The bench makes its own temporary
TRUST_HOME; the server is stopped at the end.
"""

import base64
import http.client
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bench.server import environment, free_port, served
from bench.timing import rate
from hsm.keystore import initialise_keystore, open_keystore
from identity import clients, signing_keys, tokens
from trust.config import load_settings
from trust.db import make_engine, session_factory, upgrade

SECONDS = 3
HTTP_THREADS = 4
WORKERS = 2
BATCH = 100


def _post(port: int, path: str, form: dict, authorization: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, urlencode(form), {
            "Authorization": authorization, "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise SystemExit(f"POST {path} answered {response.status}: {body[:300]!r}")
    return json.loads(body)


def _http_rate(request, seconds: float) -> float:
    """Requests per second with HTTP_THREADS clients, each on a new connection (gunicorn's
    sync workers close it after every response)."""
    request()
    counts, errors = [0] * HTTP_THREADS, []
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        try:
            while time.perf_counter() < deadline:
                request()
                counts[index] += 1
        except BaseException as error:  # reported in the main thread
            errors.append(error)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(HTTP_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    if errors:
        raise errors[0]
    return sum(counts) / (time.perf_counter() - start)


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="trust-bench-identity-") as directory:
        home, port = Path(directory) / "home", free_port()
        home.mkdir(mode=0o700)
        env = environment(home, port)
        settings = load_settings(env)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            initialise_keystore(session, settings)
            keystore = open_keystore(settings, sessions)
            signing_keys.ensure_signing_keys(session, keystore)
            client, secret = clients.register_client(session, name="bench", grant_types=["client_credentials"],
                                                     scopes=["seal:sign"])
            session.commit()

            in_process = _in_process(session, keystore, settings.public_url)

        authorization = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
        with served(env, port, WORKERS, Path(directory) / "serve.log"):
            issue = lambda: _post(port, "/oauth/token", {"grant_type": "client_credentials",  # noqa: E731
                                                        "scope": "seal:sign"}, authorization)
            access_token = issue()["access_token"]
            introspect = lambda: _post(port, "/oauth/introspect", {"token": access_token},  # noqa: E731
                                       authorization)
            if not introspect()["active"]:
                raise SystemExit("the introspection endpoint says our fresh token is inactive")
            http_figures = {"identity_http_client_credentials_per_s": round(_http_rate(issue, SECONDS), 1),
                            "identity_http_introspect_per_s": round(_http_rate(introspect, SECONDS), 1)}
        engine.dispose()
    return {**in_process, **http_figures}


def _in_process(session, keystore, issuer: str) -> dict[str, float]:
    """Issue (recording each token; a commit every BATCH) and validate, beside raw ES256 signing."""
    raw_key = ec.generate_private_key(ec.SECP256R1())
    message = os.urandom(200)  # about a token's signing input
    count = [0]

    def issue() -> str:
        token, _ = tokens.issue_access_token(session, keystore, issuer=issuer, client_id="bench", subject=None,
                                             scopes=["seal:sign"])
        count[0] += 1
        if count[0] % BATCH == 0:
            session.commit()
        return token

    token = issue()
    session.commit()
    figures = {
        "identity_es256_sign_per_s": round(rate(lambda: raw_key.sign(message, ec.ECDSA(hashes.SHA256())),
                                                SECONDS), 1),
        "identity_issue_access_token_per_s": round(rate(issue, SECONDS), 1),
        "identity_validate_access_token_per_s": round(rate(
            lambda: tokens.validate_access_token(session, keystore, token, issuer=issuer), SECONDS), 1),
    }
    session.commit()
    return figures


if __name__ == "__main__":
    print(run())
