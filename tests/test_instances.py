"""Issue #20 item 1: two `trustctl serve` instances, each with its own home (only the KEK file
in common, as two hosts would have), on one PostgreSQL. Clients spread over both sign with
the seal and get tokens at once; afterwards every acknowledged signature and token is in the
database, the audit chain is one chain and verifies, and what one instance changes the other
sees: a token revoked at one is inactive at the other, a seal suspended by an officer is
refused by both."""

import json
import threading
import time
import uuid

import pytest
from sqlalchemy.engine import make_url

from bench.load import _Client, _counts
from bench.postgres import PG_USER, admin_connection
from trust.hashes import sm3

from tests.serving import trustctl, two_instances

pytestmark = pytest.mark.serial  # timing under load: alone, after the parallel part (Makefile)

SECONDS = 8


@pytest.mark.postgres
def test_two_instances_on_one_postgresql_share_everything_that_must_be_shared(postgres_url, tmp_path):
    server_port = make_url(postgres_url).port
    name = f"i_{uuid.uuid4().hex[:12]}"
    with admin_connection(server_port) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    database = f"postgresql+psycopg://{PG_USER}@127.0.0.1:{server_port}/{name}"
    try:
        with two_instances(tmp_path, database, TRUST_KEY_STATE_TTL="1") as (ports, envs, demo):
            seals_before, tokens_before = _counts(envs[0])
            first = _Client(ports[0], demo["SECRET"], demo["ESID"], "", b"", "")
            status, answer = first.call("POST", "/oauth/token", b"grant_type=client_credentials&scope=seal%3Asign",
                                        {"Authorization": first.basic,
                                         "Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200, answer
            token = json.loads(answer)["access_token"]
            done = {"seal": 0, "token": 0}
            errors = []
            deadline = time.monotonic() + SECONDS
            lock = threading.Lock()

            def run(index: int) -> None:
                client = _Client(ports[index % 2], demo["SECRET"], demo["ESID"], token, b"", "")
                while time.monotonic() < deadline:
                    op = ("seal", "token")[index // 2 % 2]
                    ok = getattr(client, op)()
                    with lock:
                        if ok:
                            done[op] += 1
                        else:
                            errors.append(op)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == [] and done["seal"] > 0 and done["token"] > 0

            # A token revoked at one instance is inactive at the other at once.
            revoked = _Client(ports[0], demo["SECRET"], demo["ESID"], token, b"", "")
            status, _ = revoked.call("POST", "/oauth/revoke", f"token={token}".encode(),
                                     {"Authorization": revoked.basic,
                                      "Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200
            assert _Client(ports[1], demo["SECRET"], demo["ESID"], token, b"", "").introspect() is False
            assert _Client(ports[1], demo["SECRET"], demo["ESID"], token, b"", "").seal() is False

            # A seal suspended by an officer is refused by both instances (within the key state TTL).
            first = _Client(ports[1], demo["SECRET"], demo["ESID"], "", b"", "")  # the idle one was closed
            status, answer = first.call("POST", "/oauth/token", b"grant_type=client_credentials&scope=seal%3Asign",
                                        {"Authorization": first.basic,
                                         "Content-Type": "application/x-www-form-urlencoded"})
            fresh = json.loads(answer)["access_token"]
            suspended = trustctl(envs[0], "seal", "suspend", demo["ESID"], "--reason", "核查", "--credential",
                                 str(tmp_path / "home-0" / "officers" / "officer-1.pem"))
            assert suspended.returncode == 0, suspended.stderr
            time.sleep(1.2)
            for port in ports:
                client = _Client(port, demo["SECRET"], demo["ESID"], fresh, b"", "")
                body = json.dumps({"digest": sm3(b"after").hex(), "purpose": "核查"}).encode()
                status, answer = client.call("POST", f"/api/v1/seals/{demo['ESID']}/sign", body,
                                             {"Authorization": f"Bearer {fresh}", "Content-Type": "application/json"})
                assert status in (403, 409), (port, status, answer)
        seals_after, tokens_after = _counts(envs[0])
        # the first token and the one after revoking are acknowledged too
        assert (seals_after - seals_before, tokens_after - tokens_before) == (done["seal"], done["token"] + 2)
        verified = trustctl(envs[1], "audit", "verify", "--json")
        assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout
    finally:
        with admin_connection(server_port) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
