"""Issue #19 item 4: no log of a served run carries a demo person's ID number. The demo
citizen's resident ID goes in every way a caller can put it before the service — a query
string (gunicorn's access log), a path that fails and a body that is refused (the
application's warnings), a failed login (the SOC's events) — and then every log the run
wrote is searched for it: the server's output, the SOC file and its spool."""

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request

from bench.postgres import free_port
from identity.demo import CITIZEN
from trust import events

from tests.serving import clean_env, trustctl, trustctl_serve

NUMBER = CITIZEN["resident_id"]
MASKED = NUMBER[:6] + "*" * 8 + NUMBER[-4:]


def _call(url, data=None, headers=None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_filter_masks_messages_arguments_and_exceptions():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "holder %s phone %s", (NUMBER, "13812345678"), None)
    events.MaskingFilter().filter(record)
    assert record.getMessage() == f"holder {MASKED} phone 138****5678"
    try:
        raise ValueError(f"bad holder {NUMBER}")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    events.MaskingFilter().filter(record)
    assert NUMBER not in logging.Formatter().format(record) and MASKED in record.exc_text


def test_no_log_of_a_served_run_carries_the_demo_citizens_number(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    soc = tmp_path / "soc.jsonl"
    env = clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_PUBLIC_URL=base, TRUST_SOC_FILE=str(soc))
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    secret = re.search(r"client_secret=(\S+?)（", init.stdout).group(1)
    log = tmp_path / "serve.log"
    with trustctl_serve(env, port, log):
        assert _call(f"{base}/healthz?holder={NUMBER}") == 200
        assert _call(f"{base}/v/{NUMBER}") in (400, 404)
        token_body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "licence:read",
                                             "client_id": "demo-department-app", "client_secret": secret}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{base}/oauth/token", data=token_body), timeout=10) as r:
            token = json.load(r)["access_token"]
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        assert _call(f"{base}/api/v1/licences/{NUMBER}", headers=bearer) in (400, 403, 404)
        query = json.dumps({"holder_code": NUMBER, "type_code": NUMBER, "purpose": "企业开办"}).encode()
        assert _call(f"{base}/api/v1/licences/query", data=query, headers=bearer) >= 400
        refused_login = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": NUMBER,
                                                "client_secret": "wrong"}).encode()
        assert _call(f"{base}/oauth/token", data=refused_login) in (400, 401)
    logs = {path: path.read_text(encoding="utf-8", errors="replace")
            for path in (log, soc, tmp_path / "home" / "soc-spool.jsonl") if path.exists()}
    assert log in logs and soc in logs
    for path, text in logs.items():
        assert NUMBER not in text, (path, [line for line in text.splitlines() if NUMBER in line])
    assert MASKED in logs[log]  # the number went in, masked


def test_json_lines_carry_the_request_id_the_caller_was_given(tmp_path):
    """TRUST_LOG_FORMAT=json (issue #20 item 6): gunicorn's lines and ours are JSON objects,
    an access line with the X-Request-ID its response carried, numbers still masked."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(TRUST_HOME=str(tmp_path / "home"), TRUST_PUBLIC_URL=base, TRUST_LOG_FORMAT="json")
    assert trustctl(env, "init").returncode == 0
    log = tmp_path / "serve.log"
    with trustctl_serve(env, port, log):
        with urllib.request.urlopen(f"{base}/healthz?holder={NUMBER}", timeout=10) as response:
            given = response.headers["X-Request-ID"]
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    [access] = [line for line in lines if line.get("type") == "access" and line["path"] == "/healthz"]
    assert access["request_id"] == given and access["status"] == 200 and access["query"] == f"holder={MASKED}"
    assert any(line.get("logger") == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)


def test_the_json_formatter_writes_the_request_id_and_the_traceback():
    from api.cli.serve import JsonFormatter
    record = logging.LogRecord("api.problems", logging.ERROR, __file__, 1, "request %s failed", ("abc",), None)
    record.request_id = "abc"
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"], line["request_id"]) == (
        "ERROR", "api.problems", "request abc failed", "abc")
