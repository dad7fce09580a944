"""Tokens: client-credentials issuance and introspection over HTTP against `trustctl serve`
(gunicorn, 2 workers, SQLite, on 127.0.0.1), beside the same operations in process, raw
ES256 signing, and the rate at which the same server answers /healthz (a request that does
nothing: the ceiling of the HTTP stack and of this Python client), all in the same run.

Every HTTP request authenticates its client with client_secret_basic (an SM3 hash of the
256-bit secret, identity.clients) as a real client does. The client signs with ES256, the
algorithm of #18's reference figure (an RS256 signature alone costs about 1 ms). The
figures without a suffix are over keep-alive connections, as real clients use them;
``_new_connection`` ones open a connection for every request. HTTP_CLIENTS connections:
fewer leave one of the two workers idle part of the time (each connection stays on the
worker that accepted it). The bench makes its own temporary TRUST_HOME; the server is
stopped at the end.
"""

import base64
import http.client
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from bench.server import environment, free_port, posts_per_second, served
from bench.timing import rate
from hsm.keystore import KeyStore, initialise_keystore, open_keystore
from identity import clients, signing_keys, tokens
from trust.config import Settings, load_settings
from trust.db import make_engine, session_factory, upgrade

SECONDS = 3
HTTP_CLIENTS = 16
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


@dataclass(frozen=True)
class TokenHome:
    """A TRUST_HOME to serve on ``port``, with its keystore, token signing keys and one ES256
    client-credentials client (scope seal:sign); ``authorization`` is its Basic header."""

    env: dict
    port: int
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    keystore: KeyStore
    authorization: str


def token_home(home: Path) -> TokenHome:
    """Make ``home`` (mode 0700) such a TRUST_HOME, on a free loopback port."""
    port = free_port()
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
                                                 scopes=["seal:sign"], token_alg="ES256")
        session.commit()
    authorization = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    return TokenHome(env, port, settings, engine, sessions, keystore, authorization)


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="trust-bench-identity-") as directory:
        made = token_home(Path(directory) / "home")
        env, port, engine, authorization = made.env, made.port, made.engine, made.authorization
        with made.sessions() as session:
            in_process = _in_process(session, made.keystore, made.settings.public_url)
        form_headers = {"Authorization": authorization, "Content-Type": "application/x-www-form-urlencoded"}
        token_form = {"grant_type": "client_credentials", "scope": "seal:sign"}
        with served(env, port, WORKERS, Path(directory) / "serve.log"):
            access_token = _post(port, "/oauth/token", token_form, authorization)["access_token"]
            if not _post(port, "/oauth/introspect", {"token": access_token}, authorization)["active"]:
                raise SystemExit("the introspection endpoint says our fresh token is inactive")
            requests = {"identity_http_client_credentials": ("/oauth/token", urlencode(token_form).encode()),
                        "identity_http_introspect": ("/oauth/introspect",
                                                     urlencode({"token": access_token}).encode())}
            http_figures = {}
            for name, (path, body) in requests.items():
                for suffix, new_connections in (("", False), ("_new_connection", True)):
                    http_figures[f"{name}{suffix}_per_s"] = round(posts_per_second(
                        port, path, body, form_headers, seconds=SECONDS, clients=HTTP_CLIENTS,
                        new_connections=new_connections), 1)
            http_figures["http_healthz_per_s"] = round(posts_per_second(
                port, "/healthz", None, {}, seconds=SECONDS, clients=HTTP_CLIENTS, method="GET"), 1)
        engine.dispose()
    tokens_per_s = http_figures["identity_http_client_credentials_per_s"]
    return {**in_process, **http_figures,
            "identity_http_client_credentials_ratio": round(tokens_per_s / in_process["identity_es256_sign_per_s"], 4),
            "identity_http_client_credentials_vs_healthz": round(tokens_per_s / http_figures["http_healthz_per_s"], 3)}


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
