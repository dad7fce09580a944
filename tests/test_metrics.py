"""``/metrics`` (issue #20 item 4): the Prometheus text format, read by prometheus_client's own
parser; loopback and the configured networks only; served by two gunicorn workers, the
requests each answered added up whichever worker is scraped."""

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from bench.postgres import free_port
from hsm.kek import create_master_key_file
from trust import db
from trust.config import Settings, metrics_allow

from tests.serving import clean_env, trustctl, trustctl_serve


def _samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _app(tmp_path, allow=()):
    url = f"sqlite:///{tmp_path / 'trust.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    create_master_key_file(tmp_path / "master.key")
    settings = Settings(home=tmp_path, database_url=url, host="127.0.0.1", port=8000, max_request_bytes=1 << 20,
                        workers=1, metrics_allow=allow)
    return create_app(settings, engine)


def test_metrics_answer_loopback_and_the_configured_networks_only(tmp_path):
    app = _app(tmp_path)
    client = app.test_client()
    client.get("/healthz")
    keystore = app.extensions["trust.keystore"]
    with app.extensions["trust.sessions"]() as session:
        key = keystore.generate(session, "SM2-with-SM3", "metrics/test", ["seal"], actor="test")
        keystore.sign(session, key, b"counted", usage="seal")
        session.commit()
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    found = _samples(answer.get_data(as_text=True))
    assert found[("trust_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))] >= 1
    assert found[("trust_keystore_ready", ())] == 1 and found[("trust_database_ready", ())] == 1
    assert found[("trust_approvals_pending", ())] == 0
    assert found[("trust_signatures_total", (("usage", "seal"),))] >= 1
    assert found[("trust_audit_records_unsigned", ())] > 0  # no checkpoint signed yet
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", environ_base=outside).status_code == 404
    (tmp_path / "second").mkdir()
    allowed = _app(tmp_path / "second", allow=metrics_allow({"TRUST_METRICS_ALLOW": "203.0.113.0/24, 2001:db8::1"}))
    assert allowed.test_client().get("/metrics", environ_base=outside).status_code == 200


def test_a_bad_allow_list_is_refused_with_its_setting_named():
    with pytest.raises(Exception, match="TRUST_METRICS_ALLOW"):
        metrics_allow({"TRUST_METRICS_ALLOW": "10.0.0.0/8, the office"})


def test_two_workers_count_together_and_signatures_and_verdicts_are_counted(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_PUBLIC_URL=base)
    assert trustctl(env, "init").returncode == 0
    with trustctl_serve(env, port, tmp_path / "serve.log", workers=2):
        for _ in range(20):
            urllib.request.urlopen(f"{base}/healthz", timeout=10).read()
        boundary = "x7"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"s\"\r\n\r\n"
                f"not a signature\r\n--{boundary}--\r\n").encode()
        verify = urllib.request.Request(f"{base}/api/v1/verify/ses", data=body,
                                        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        urllib.request.urlopen(verify, timeout=10).read()
        scrapes = [_samples(urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()) for _ in range(4)]
    healthz = ("trust_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))
    assert all(found[healthz] == 20 for found in scrapes)  # both workers' counts, from either
    assert any(name == "trust_verifications_total" and dict(labels).get("status") for name, labels in scrapes[-1])
    assert scrapes[-1][("trust_http_request_duration_seconds_count", (("method", "GET"), ("route", "/healthz")))] == 20
