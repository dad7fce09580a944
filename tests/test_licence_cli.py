"""`trustctl licence` and `trustctl verify` on licences, as an operator runs them."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from licence.identifier import parse
from licence.models import licence_request
from trust import db

from tests.licence_support import business_request
from tests.serving import clean_env, trustctl
from tests.test_cli_serve import audit_records


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("licence-cli")
    env = clean_env(TRUST_HOME=str(tmp_path / "home"))
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    officer = str(tmp_path / "home" / "officers" / "officer-1.pem")
    sysadmin = str(tmp_path / "home" / "officers" / "sysadmin-1.pem")  # the catalogue and consumers are theirs
    return {"env": env, "dir": tmp_path, "officer": officer, "sysadmin": sysadmin,
            "licence": re.search(r"Demo business licence: (\S+)", init.stdout).group(1)}


def test_types_list_show_export(demo):
    listed = trustctl(demo["env"], "licence", "types", "list", "--json")
    assert listed.returncode == 0
    assert {t["name"] for t in json.loads(listed.stdout)} == {"营业执照", "食品经营许可证", "医师执业证书"}
    shown = json.loads(trustctl(demo["env"], "licence", "types", "show", "11100000MB0143028R001", "--json").stdout)
    assert shown["version"] == 1 and shown["definition"]["name"] == "营业执照"
    out = demo["dir"] / "catalogue.json"
    assert trustctl(demo["env"], "licence", "types", "export", "--out", str(out)).returncode == 0
    assert len(json.loads(out.read_text(encoding="utf-8"))) == 3


def test_the_system_administrator_imports_a_new_version_and_a_broken_one_is_refused(demo, tmp_path):
    env, officer = demo["env"], demo["sysadmin"]
    definition = json.loads(trustctl(env, "licence", "types", "show", "11100000MB0143028R002", "--json").stdout)["definition"]
    definition["fields"][3]["max_length"] = 120
    (path := tmp_path / "food.json").write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    imported = trustctl(env, "licence", "types", "import", str(path), "--credential", officer)
    assert imported.returncode == 0 and "v2" in imported.stdout, imported.stderr
    again = trustctl(env, "licence", "types", "import", str(path), "--credential", officer)
    assert again.returncode == 0 and "unchanged" in again.stdout
    definition["fields"][3]["kind"] = "colour"
    path.write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    broken = trustctl(env, "licence", "types", "import", str(path), "--credential", officer)
    assert broken.returncode == 1 and "$.fields[3].kind" in broken.stderr
    unsigned = trustctl(env, "licence", "types", "import", str(path))
    assert unsigned.returncode == 4 and "credential" in unsigned.stderr.lower()
    records = audit_records(demo["dir"] / "home" / "trust.db")
    assert records.count(("sysadmin-1", "licence.type")) == 1  # theirs; the shipped ones are "trustctl init"
    security = trustctl(env, "licence", "types", "import", str(path), "--credential", demo["officer"])
    assert security.returncode == 1 and "system administrator" in security.stderr  # 三员分立


def test_issue_show_suspend_and_verify_from_the_command_line(demo, tmp_path):
    env, officer = demo["env"], demo["officer"]
    body = business_request(issuer_code=parse(demo["licence"]).issuer_code)
    (request := tmp_path / "request.json").write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "licence.ofd"
    issued = trustctl(env, "licence", "issue", str(request), "--client", "demo-department-app", "--idempotency-key",
                      "cli-1", "--out", str(out), "--credential", officer)
    assert issued.returncode == 0, issued.stderr
    licence_id = re.search(r"Issued: (\S+)", issued.stdout).group(1)
    assert "/v/" + licence_id in issued.stdout and out.stat().st_size > 10_000
    repeated = trustctl(env, "licence", "issue", str(request), "--client", "demo-department-app",
                        "--idempotency-key", "cli-1", "--credential", officer)
    assert f"Issued before: {licence_id}" in repeated.stdout
    refused = trustctl(env, "licence", "issue", str(request), "--client", "someone-else", "--credential", officer)
    assert refused.returncode == 1 and "someone-else" in refused.stderr

    verified = trustctl(env, "verify", str(out))  # offline: the chain's intermediate and OCSP cannot be fetched
    assert verified.returncode == 2 and "证照 Licence: 营业执照" in verified.stdout
    assert "licence_status 通过 PASSED" in re.sub(r"\s+", " ", verified.stdout)

    suspended = trustctl(env, "licence", "suspend", licence_id, "--reason", "核查", "--credential", officer)
    assert suspended.returncode == 0 and "暂扣 02" in suspended.stdout
    report = json.loads(trustctl(env, "verify", str(out), "--json").stdout)
    assert report["status"] == "INVALID" and report["licence"]["status"] == "02"
    assert trustctl(env, "verify", str(out)).returncode == 1
    shown = json.loads(trustctl(env, "licence", "show", licence_id, "--json").stdout)
    assert [h["operation"] for h in shown["history"]] == ["01", "03"]
    assert shown["history"][1]["actor"].startswith("officer:")
    assert trustctl(env, "licence", "resume", licence_id, "--reason", "核查完毕", "--credential", officer).returncode == 0
    assert trustctl(env, "licence", "resume", licence_id, "--reason", "again", "--credential", officer).returncode == 1
    expired = trustctl(env, "licence", "expire")
    assert expired.returncode == 0 and "Marked expired: 0" in expired.stdout


def test_lta_renew_from_cron(demo):
    """The demo licence's PDF is stamped by a TSA certificate of five years: not due within 90
    days; due within ten years, but our TSA's certificate lasts no longer, so nothing is
    written and the exit code tells cron (1) with the remedy, whatever the repetition."""
    env = demo["env"]
    quiet = trustctl(env, "licence", "lta-renew", "--json")
    assert quiet.returncode == 0, quiet.stderr
    summary = json.loads(quiet.stdout)
    assert summary["renewed"] == 0 and summary["not_due"] >= 1 and summary["licences"] == []
    for _ in range(2):
        due = trustctl(env, "licence", "lta-renew", "--within-days", "3650")
        assert due.returncode == 1 and "Cannot renew: 0" not in due.stdout, due.stdout
        assert "renew the TSA certificate first" in due.stderr and "请先更新时间戳服务证书" in due.stderr
    assert trustctl(env, "licence", "lta-renew", "--within-days", "-1").returncode == 4


def test_an_officer_rotates_a_qr_key_and_the_old_one_stays_listed(demo):
    env, officer = demo["env"], demo["officer"]
    issuer = parse(demo["licence"]).issuer_code
    before = json.loads(trustctl(env, "licence", "keys", "--json").stdout)
    rotated = trustctl(env, "licence", "rotate-key", "--issuer", issuer, "--algorithm", "es256", "--credential", officer)
    assert rotated.returncode == 0 and "ecdsa-with-SHA256" in rotated.stdout, rotated.stderr
    after = json.loads(trustctl(env, "licence", "keys", "--json").stdout)
    assert len(after) == len(before) + 1
    mine = [k for k in after if k["issuer_code"] == issuer]
    assert [k["retired_at"] is None for k in mine] == [False, True]
    assert trustctl(env, "licence", "rotate-key", "--issuer", issuer).returncode == 4  # no credential
    assert any(action == "licence.qr_key.rotate" and actor.startswith("officer:")
               for actor, action in audit_records(demo["dir"] / "home" / "trust.db"))


def test_the_system_administrator_registers_a_licence_consumer_for_types_and_purposes(demo):
    env, officer = demo["env"], demo["sysadmin"]
    added = trustctl(env, "licence", "consumer", "add", "demo-department-app", "--types",
                     "11100000MB0143028R001,11100000MB0143028R002", "--purposes", "企业开办，银行开户",
                     "--purposes", "招投标资格审查", "--credential", officer)
    assert added.returncode == 0, added.stderr
    [found] = json.loads(trustctl(env, "licence", "consumer", "list", "--json").stdout)
    assert found["client_id"] == "demo-department-app" and found["actor"].startswith("officer:")
    assert found["types"] == ["11100000MB0143028R001", "11100000MB0143028R002"]
    assert found["purposes"] == sorted(["企业开办", "银行开户", "招投标资格审查"])
    unknown = trustctl(env, "licence", "consumer", "add", "no-such-app", "--types", "11100000MB0143028R001",
                       "--purposes", "企业开办", "--credential", officer)
    assert unknown.returncode != 0 and "no-such-app" in unknown.stderr
    bad_type = trustctl(env, "licence", "consumer", "add", "demo-department-app", "--types", "99999999999999999999X",
                        "--purposes", "企业开办", "--credential", officer)
    assert bad_type.returncode != 0
    assert trustctl(env, "licence", "consumer", "add", "demo-department-app", "--types", "11100000MB0143028R001",
                    "--purposes", "企业开办").returncode == 4  # no credential
    counted = trustctl(env, "licence", "usage", "--by", "month", "--json")
    assert counted.returncode == 0 and json.loads(counted.stdout) == []  # no query or comparison yet
    assert trustctl(env, "licence", "consumer", "remove", "demo-department-app", "--credential", officer).returncode == 0
    assert json.loads(trustctl(env, "licence", "consumer", "list", "--json").stdout) == []
    assert {"licence.consumer.add", "licence.consumer.remove"} <= {
        action for actor, action in audit_records(demo["dir"] / "home" / "trust.db") if actor.startswith("officer:")}


def test_an_officer_lists_the_pending_requests_with_their_age_and_answers_one(demo):
    env, officer = demo["env"], demo["officer"]
    licence = parse(demo["licence"])
    engine = db.make_engine(f"sqlite:///{demo['dir'] / 'home' / 'trust.db'}")
    with engine.begin() as connection:  # as share_requests.submit stores one (its rules: test_licence_requests.py)
        connection.execute(insert(licence_request).values(
            id="0b7c2a8e-3c4f-4f55-9d0e-5a1c3c1f0001", client_id="demo-department-app", purpose="企业开办",
            reason="核验经营资格", days=3, licence_id=demo["licence"], base=licence.base, holder_code="X",
            type_code=licence.type_code, issuer_code=licence.issuer_code, status="pending",
            requested_at=datetime.now(UTC) - timedelta(days=2, hours=5)))
    engine.dispose()
    listed = trustctl(env, "licence", "requests", "list", "--status", "pending")
    assert listed.returncode == 0 and "2 d 5 h" in listed.stdout and "核验经营资格" in listed.stdout, listed.stderr
    request_id = "0b7c2a8e-3c4f-4f55-9d0e-5a1c3c1f0001"
    assert trustctl(env, "licence", "requests", "answer", request_id, "approve", "--answer", "同意").returncode == 4
    answered = trustctl(env, "licence", "requests", "answer", request_id, "approve", "--answer", "同意，三日内有效",
                        "--credential", officer)
    assert answered.returncode == 0 and "Approved" in answered.stdout, answered.stderr
    [after] = json.loads(trustctl(env, "licence", "requests", "list", "--json").stdout)
    assert after["status"] == "approved" and after["active"] and after["answered_by"].startswith("officer:")
    assert ("licence.request.approve" in {action for _actor, action in audit_records(
        demo["dir"] / "home" / "trust.db")})
