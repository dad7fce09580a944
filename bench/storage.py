"""Token issuance and seal signing over HTTP on SQLite and on PostgreSQL in the same run
(issue #20): the same demo home, the same two workers and the same 16 keep-alive clients,
once on the embedded SQLite file and once on a PostgreSQL server of our own with its durable
defaults (bench/postgres.py). Ratios against SQLite say what the production database costs.
"""

import base64
import http.client
import json

from bench import postgres
from bench.load import demo_home
from bench.server import posts_per_second, served
from trust.hashes import sm3

SECONDS = 3
CLIENTS = 16
WORKERS = 2


def _figures(database: str, database_url: str | None) -> dict[str, float]:
    with demo_home(f"bench-storage-{database}-", database_url) as made:
        env, port, demo = made.env, made.port, made.demo
        basic = "Basic " + base64.b64encode(f"demo-department-app:{demo['SECRET']}".encode()).decode()
        form = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}
        token_body = b"grant_type=client_credentials&scope=seal%3Asign"
        with served(env, port, WORKERS, made.scratch / "serve.log"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/oauth/token", body=token_body, headers=form)
            token = json.loads(connection.getresponse().read())["access_token"]
            connection.close()
            tokens = posts_per_second(port, "/oauth/token", token_body, form, seconds=SECONDS, clients=CLIENTS)
            seal_body = json.dumps({"digest": sm3(b"bench storage").hex(), "purpose": "bench"}).encode()
            seals = posts_per_second(port, f"/api/v1/seals/{demo['ESID']}/sign", seal_body,
                                     {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                                     seconds=SECONDS, clients=CLIENTS)
    return {f"{database}_http_client_credentials_per_s": round(tokens, 1),
            f"{database}_http_seal_sign_per_s": round(seals, 1)}


def run() -> dict[str, float]:
    figures = _figures("sqlite", None)
    with postgres.server(durable=True) as url:
        figures |= _figures("postgresql", url)
    figures["postgresql_vs_sqlite_tokens_ratio"] = round(
        figures["postgresql_http_client_credentials_per_s"] / figures["sqlite_http_client_credentials_per_s"], 3)
    figures["postgresql_vs_sqlite_seal_sign_ratio"] = round(
        figures["postgresql_http_seal_sign_per_s"] / figures["sqlite_http_seal_sign_per_s"], 3)
    return figures
