"""Issue #20 item 2: two instances on a PostgreSQL primary with a synchronous streaming
standby, reached through one multi-host URL (``target_session_attrs=read-write``). Clients
sign with the seal and get tokens on both; in the middle the primary is killed and the
standby promoted. A request caught in the switch is answered 503 with Retry-After, never a
wrong answer or a 500; the instances find the new primary by themselves; afterwards every
acknowledged signature, token and licence is there and the audit chain verifies. Licences
are issued as a department system would: each with its Idempotency-Key, sent again with
the same key after a 503 or a broken connection, so none is issued twice."""

import http.client
import json
import random
import threading
import time
import uuid

import pytest
from sqlalchemy import func, select

from bench import postgres
from bench.load import _Client, _counts
from bench.postgres import free_port
from licence.demo import BUSINESS_LICENCE, DEMO_FACE
from licence.models import licences
from trust import db
from trust.config import load_settings
from trust.hashes import sm3
from trust.ids import generate_uscc

from tests.serving import trustctl, two_instances

pytestmark = pytest.mark.serial  # timing under load: alone, after the parallel part (Makefile)

SECONDS, KILL_AT, PROMOTE_AT = 30, 12, 13
OPS = ("seal", "token", "seal", "token", "licence")


@pytest.mark.postgres
def test_a_promoted_standby_takes_over_and_nothing_acknowledged_is_lost(tmp_path, capsys):
    try:
        pair_context = postgres.replicated()
        pair = pair_context.__enter__()
    except postgres.Unavailable as error:
        pytest.skip(str(error))
    try:
        with two_instances(tmp_path, pair.url) as (ports, envs, demo):
            seals_before, tokens_before = _counts(envs[0])
            token = _token(ports[0], demo)
            outcomes: list[tuple[str, int, float]] = []
            lock = threading.Lock()
            started = time.monotonic()

            issued: list[str] = []

            def run(index: int) -> None:
                op, port = OPS[index], ports[index % 2]
                client = _Client(port, demo["SECRET"], demo["ESID"], token, b"", "")
                pending = None  # a licence request not yet acknowledged: sent again as it was
                while time.monotonic() - started < SECONDS:
                    if op == "licence":
                        pending = pending or _licence_request(demo["ISSUER"], random.Random(len(outcomes)))
                        status = _issue(client, *pending, issued)
                        if status in (200, 201):
                            pending = None
                    else:
                        status = _call(client, op)
                    if status is None:  # the connection broke: counted (0), and a new one
                        client = _Client(port, demo["SECRET"], demo["ESID"], token, b"", "")
                        status = 0
                    with lock:
                        outcomes.append((op, status, time.monotonic() - started))
                    if status == 503:
                        time.sleep(0.2)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(OPS))]
            for thread in threads:
                thread.start()
            time.sleep(KILL_AT)
            pair.kill_primary()
            time.sleep(PROMOTE_AT - KILL_AT)
            pair.promote()
            for thread in threads:
                thread.join()
            missing = [licence_id for licence_id in issued if _licence_status(ports[1], token, licence_id) != 200]
        statuses = {status for _, status, _ in outcomes}
        assert statuses <= {200, 201, 503}, sorted(statuses)
        acknowledged = {op: sum(1 for o, status, _ in outcomes if o == op and status in (200, 201))
                        for op in ("seal", "token", "licence")}
        after_switch = [status for _, status, at in outcomes if at > PROMOTE_AT + 2]
        assert after_switch and after_switch.count(200) / len(after_switch) > 0.9  # found the new primary
        refused = sum(1 for _, status, _ in outcomes if status == 503)
        with capsys.disabled():
            print(f"\nfailover: {len(outcomes)} requests, {refused} answered 503 during the switch "
                  f"({100 * refused / len(outcomes):.1f} %), acknowledged {acknowledged}")
        assert issued and missing == [] and len(set(issued)) == len(issued), (missing, issued)
        assert _issued_per_holder(envs[0]) <= {1}, "a request sent again was issued twice"
        seals_after, tokens_after = _counts(envs[0])
        assert seals_after - seals_before >= acknowledged["seal"]
        assert tokens_after - tokens_before >= acknowledged["token"] + 1  # and the first token
        verified = trustctl(envs[1], "audit", "verify", "--json")
        assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout
    finally:
        pair_context.__exit__(None, None, None)


def _token(port: int, demo: dict) -> str:
    client = _Client(port, demo["SECRET"], demo["ESID"], "", b"", "")
    status, answer = client.call("POST", "/oauth/token",
                                 b"grant_type=client_credentials&scope=seal%3Asign+licence%3Aissue",
                                 {"Authorization": client.basic, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, answer
    return json.loads(answer)["access_token"]


def _licence_request(issuer: str, rng: random.Random) -> tuple[bytes, str]:
    """A business licence for a new enterprise, and the Idempotency-Key it is sent with."""
    body = {"type_code": BUSINESS_LICENCE, "issuer_code": issuer, "face": DEMO_FACE,
            "holder": {"name": "切换测试科技有限公司", "code": generate_uscc(rng), "code_type": "001"}}
    return json.dumps(body, ensure_ascii=False).encode(), uuid.uuid4().hex


def _issue(client: _Client, body: bytes, key: str, issued: list[str]) -> int | None:
    """The status of one licence request; the licence acknowledged is kept in ``issued``."""
    try:
        status, answer = client.call("POST", "/api/v1/licences", body, {
            "Authorization": f"Bearer {client.bearer}", "Content-Type": "application/json", "Idempotency-Key": key})
    except (OSError, http.client.HTTPException):
        return None
    if status in (200, 201):  # 200: issued by an earlier attempt whose answer was lost
        licence_id = json.loads(answer)["licence_id"]
        if status == 201 or licence_id not in issued:
            issued.append(licence_id)
    return status


def _issued_per_holder(env: dict) -> set[int]:
    """How many licences each holder has: one each (every request names a new enterprise)."""
    engine = db.make_engine(load_settings(env).database_url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(select(func.count()).select_from(licences)
                                          .group_by(licences.c.holder_code)).scalars())
    finally:
        engine.dispose()


def _licence_status(port: int, token: str, licence_id: str) -> int:
    client = _Client(port, "", "", token, b"", "")
    return client.call("GET", f"/api/v1/licences/{licence_id}", b"", {"Authorization": f"Bearer {token}"})[0]


def _call(client: _Client, op: str) -> int | None:
    """The status of one seal signature or token request (-1: a 200 without what it promises);
    None if the connection broke."""
    try:
        if op == "seal":
            body = json.dumps({"digest": sm3(uuid.uuid4().bytes).hex(), "purpose": "切换测试"}).encode()
            status, answer = client.call("POST", f"/api/v1/seals/{client.es_id}/sign", body,
                                         {"Authorization": f"Bearer {client.bearer}",
                                          "Content-Type": "application/json"})
            return status if status != 200 or b"signature" in answer else -1
        status, answer = client.call("POST", "/oauth/token", b"grant_type=client_credentials&scope=seal%3Asign",
                                     {"Authorization": client.basic,
                                      "Content-Type": "application/x-www-form-urlencoded"})
        return status if status != 200 or b"access_token" in answer else -1
    except (OSError, http.client.HTTPException):
        return None


def test_a_database_that_does_not_answer_is_503_with_retry_after(tmp_path):
    from api.app import create_app
    from hsm.kek import create_master_key_file
    from trust.config import Settings
    create_master_key_file(tmp_path / "master.key")
    nowhere = f"postgresql+psycopg://trust@127.0.0.1:{free_port()}/trust?connect_timeout=2"
    client = create_app(Settings(home=tmp_path, database_url=nowhere, host="127.0.0.1", port=8000,
                                 max_request_bytes=1 << 20, workers=1)).test_client()
    for answer in (client.get("/readyz"),
                   client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers={"Authorization": "Basic ZGVtbzpzZWNyZXQ="})):
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "2", answer.get_data(as_text=True)
        assert answer.json["code"] == "storage_error"
