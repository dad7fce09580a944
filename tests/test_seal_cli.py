"""`trustctl seal`, in this process, on a demo custody and the demo CA."""

import json
import random
import sqlite3

import pytest
from asn1crypto import pem
from click.testing import CliRunner
from sqlalchemy import select

from api.cli.seal import seal as seal_command
from api.cli.verify import verify as verify_command
from ca import authority
from ca.demo import set_up_demo_ca
from hsm import officers
from hsm.keystore import open_keystore
from seal.ses import parse_seal, parse_signature
from seal.verify import verify_ses_signature
from trust.audit import audit_log
from trust.config import load_settings
from trust.db import make_engine, session_factory
from trust.hashes import sm3
from trust.ids import generate_uscc
from trust.report import CheckName, CheckStatus, Code

from tests.certs import make_leaf, make_root
from tests.custody import demo_custody
from tests.fixtures.ca import served
from tests.oracles import openssl
from tests.test_seal_making import _foreign_seal


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """TRUST_HOME with the demo officers and the demo CA (made once for the module)."""
    monkeypatch = pytest.MonkeyPatch()
    tmp_path = tmp_path_factory.mktemp("seal-cli")
    home = demo_custody(tmp_path, monkeypatch)
    engine = make_engine(load_settings().database_url)
    credentials = [officers.load_credential(home / "officers" / f"officer-{n}.pem") for n in (1, 2)]
    with session_factory(engine)() as session:
        ca = set_up_demo_ca(session, open_keystore(load_settings()), load_settings(), credentials)
        session.commit()
        root = authority.get_authority(session, "sm2-issuing").certificate  # signatures carry no intermediates
    yield home, engine, ca.department_uscc, root
    engine.dispose()
    monkeypatch.undo()


def cli(*args, expect=0):
    result = CliRunner().invoke(seal_command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def officer(home, n=1):
    return home / "officers" / f"officer-{n}.pem"


def make(home, uscc, *extra):
    output = cli("make", "--holder-name", "演示局 Demo Bureau", "--uscc", uscc, "--holder-key",
                 "demo/department-seal", "--maker-key", "demo/seal-maker", "--credential", officer(home),
                 "--credential", officer(home, 2), *extra)
    return output.split()[3]  # "印章 / Seal <esID> <name>"


def test_make_list_show_sign(demo, tmp_path):
    home, _engine, uscc, root = demo
    es_id = make(home, uscc, "--type", "contract", "--name", "演示局合同专用章", "--client", "app-1",
                 "--out", tmp_path / "seal.esl")
    seal = parse_seal((tmp_path / "seal.esl").read_bytes())
    assert seal.seal_info.es_id == es_id and seal.seal_info.name == "演示局合同专用章"
    openssl("asn1parse", "-inform", "DER", "-in", tmp_path / "seal.esl")
    assert es_id in cli("list") and "合同专用章" in cli("list", "--type", "contract")
    shown = json.loads(cli("show", es_id, "--json", "--picture", tmp_path / "seal.png"))
    assert shown["status"] == "active" and shown["clients"] == ["app-1"]
    assert [h["to_status"] for h in shown["history"]] == ["applied", "approved", "made", "active"]
    assert (tmp_path / "seal.png").read_bytes().startswith(b"\x89PNG")

    (tmp_path / "data.txt").write_bytes("审批决定书".encode())
    cli("sign", es_id, "--credential", officer(home), "--data", tmp_path / "data.txt", "--client", "app-1", "--purpose", "审批",
        "--timestamp", "local", "--out", tmp_path / "a.ses")
    der = (tmp_path / "a.ses").read_bytes()
    openssl("asn1parse", "-inform", "DER", "-in", tmp_path / "a.ses")
    report = verify_ses_signature(der, data="审批决定书".encode(), trusted_roots=[root])
    for name in (CheckName.INTEGRITY, CheckName.SIGNATURE, CheckName.SEAL, CheckName.SEAL_BINDING,
                 CheckName.SEAL_VALIDITY, CheckName.CHAIN):
        assert report.check_status(name) == CheckStatus.PASSED, (name, report.to_dict())
    _assert_token_verifies_but_tsa_revocation_is_try_later(report)

    cli("sign", es_id, "--credential", officer(home), "--digest", sm3(b"x").hex(), "--client", "app-1", "--purpose", "p", "--out", tmp_path / "b.ses")
    assert parse_signature((tmp_path / "b.ses").read_bytes()).data_hash == sm3(b"x")
    cli("sign", es_id, "--credential", officer(home), "--digest", "abcd", "--client", "app-1", "--purpose", "p", "--out", tmp_path / "c", expect=1)
    cli("sign", es_id, "--credential", officer(home), "--client", "app-1", "--purpose", "p", "--out", tmp_path / "c", expect=4)


def test_refusals_suspension_and_revocation(demo, tmp_path):
    home, engine, uscc, _root = demo
    es_id = make(home, uscc, "--client", "app-1")
    sign = ("sign", es_id, "--credential", officer(home), "--digest", "00" * 32, "--purpose", "p", "--out", tmp_path / "s.ses")
    cli(*sign, "--client", "intruder", expect=1)
    cli("suspend", es_id, "--reason", "调查", "--credential", officer(home))
    cli(*sign, "--client", "app-1", expect=1)
    cli("resume", es_id, "--reason", "结案", "--credential", officer(home, 2))
    cli(*sign, "--client", "app-1")
    cli("authorise", es_id, "--client", "app-2", "--operator", "op-1", "--credential", officer(home))
    cli(*sign, "--client", "app-2", expect=1)  # no operator given
    cli(*sign, "--client", "app-2", "--operator", "op-1")
    assert "Revoked 1" in cli("revoke", es_id, "--reason", "撤销", "--credential", officer(home))
    cli(*sign, "--client", "app-2", "--operator", "op-1", expect=1)
    cli("resume", es_id, "--reason", "x", "--credential", officer(home), expect=1)  # revoked is final
    cli("suspend", es_id, "--reason", "x", expect=4)  # no credential: usage error
    with session_factory(engine)() as session:
        refused = session.execute(select(audit_log.c.actor, audit_log.c.detail)
                                  .where(audit_log.c.action == "seal.refuse", audit_log.c.target == es_id)).all()
    assert [r.actor for r in refused] == ["client:intruder", "client:app-1", "client:app-2", "client:app-2"]
    assert json.loads(refused[-1].detail)["code"] == "seal_not_active"
    assert all(json.loads(r.detail)["purpose"] == "p" for r in refused)
    with session_factory(engine)() as session:
        by_cli = session.execute(select(audit_log.c.actor, audit_log.c.detail)
                                 .where(audit_log.c.action == "seal.sign-cli", audit_log.c.target == es_id)).all()
    assert {r.actor for r in by_cli} == {"officer:officer-1"} and len(by_cli) == 6  # every use, refused or not
    cli("sign", es_id, "--digest", "00" * 32, "--purpose", "p", "--client", "app-1", "--out", tmp_path / "x", expect=4)
    cli("destroy", es_id, "--reason", "销毁", "--credential", officer(home))
    assert "destroyed" in cli("show", es_id)
    assert "Expired 0" in cli("expire")


def test_making_takes_two_officers(demo):
    home, _engine, uscc, _root = demo
    base = ("make", "--holder-name", "演示局", "--uscc", uscc, "--holder-key", "demo/department-seal",
            "--maker-key", "demo/seal-maker")
    before = cli("list", "--uscc", uscc)
    cli(*base, "--credential", officer(home), expect=4)                               # one officer: usage error
    cli(*base, "--credential", officer(home), "--credential", officer(home), expect=1)  # the same one twice
    assert cli("list", "--uscc", uscc) == before
    es_id = make(home, uscc)
    history = json.loads(cli("show", es_id, "--json"))["history"]
    assert [(h["to_status"], h["actor"]) for h in history[:2]] == [("applied", "officer-1"), ("approved", "officer-2")]


def test_drawn_picture_options(demo, tmp_path):
    home, _engine, uscc, _root = demo
    plain = make(home, uscc, "--type", "approval", "--dpi", "150")
    coded = make(home, uscc, "--type", "approval", "--dpi", "150", "--purpose", "行政审批专用章", "--code", "4403000000001")
    cli("show", plain, "--picture", tmp_path / "plain.png")
    cli("show", coded, "--picture", tmp_path / "coded.png")
    assert (tmp_path / "plain.png").read_bytes() != (tmp_path / "coded.png").read_bytes()
    (tmp_path / "up.png").write_bytes((tmp_path / "plain.png").read_bytes())
    result = CliRunner().invoke(seal_command, ["make", "--holder-name", "演示局", "--uscc", uscc, "--holder-key",
                                               "demo/department-seal", "--maker-key", "demo/seal-maker",
                                               "--picture", str(tmp_path / "up.png"), "--code", "1",
                                               "--credential", str(officer(home)), "--credential", str(officer(home, 2))])
    assert result.exit_code == 4 and "--picture" in result.output
    result = CliRunner().invoke(seal_command, ["make", "--holder-name", "演示局", "--uscc", uscc, "--holder-key",
                                               "demo/department-seal", "--maker-key", "demo/seal-maker",
                                               "--code", "x" * 30, "--credential", str(officer(home)),
                                               "--credential", str(officer(home, 2))])
    assert result.exit_code == 1 and "Traceback" not in result.output and "seal code" in result.output


def test_revoke_a_holder_and_import(demo, tmp_path):
    home, _engine, uscc, _root = demo
    make(home, uscc)
    make(home, uscc, "--type", "finance")
    cli("revoke", "--holder", uscc, "--reason", "机构撤并", "--credential", officer(home))
    assert "active" not in cli("list", "--uscc", uscc)
    cli("revoke", "--reason", "x", "--credential", officer(home), expect=4)

    root = make_root("Other Root")
    holder = make_leaf(root, {"country_name": "CN", "organization_name": "外省某局",
                              "organization_identifier": generate_uscc(random.Random(3)), "common_name": "签章"})
    (tmp_path / "foreign.esl").write_bytes(_foreign_seal(root, holder, es_id="FOREIGN-CLI-1"))
    (tmp_path / "root.pem").write_text(root.pem)
    cli("import", tmp_path / "foreign.esl", "--credential", officer(home), expect=1)  # root not trusted
    output = cli("import", tmp_path / "foreign.esl", "--trust-root", tmp_path / "root.pem", "--credential",
                 officer(home))
    assert "FOREIGN-CLI-1" in output and "外省某局" in output and "imported" in output


def test_sign_with_an_external_tsa(demo, tmp_path):
    """The TSA at a URL: here our own service, on a copy of the database, so it is another
    process's as far as the signing transaction is concerned."""
    home, engine, uscc, root = demo
    es_id = make(home, uscc, "--client", "app-1")
    copy = tmp_path / "tsa.db"
    with sqlite3.connect(engine.url.database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    tsa_engine = make_engine(f"sqlite:///{copy}")
    try:
        with served(tsa_engine, open_keystore(load_settings()), tmp_path) as base:
            cli("sign", es_id, "--credential", officer(home), "--digest", "11" * 32, "--client", "app-1", "--purpose", "p", "--timestamp",
                f"{base}/tsa", "--out", tmp_path / "t.ses")
            cli("sign", es_id, "--credential", officer(home), "--digest", "11" * 32, "--client", "app-1", "--purpose", "p", "--timestamp",
                "ftp://example/tsa", "--out", tmp_path / "u.ses", expect=1)
    finally:
        tsa_engine.dispose()
    der = (tmp_path / "t.ses").read_bytes()
    assert parse_signature(der).time_stamp
    report = verify_ses_signature(der, data_hash=bytes.fromhex("11" * 32), trusted_roots=[root])
    _assert_token_verifies_but_tsa_revocation_is_try_later(report)


def _assert_token_verifies_but_tsa_revocation_is_try_later(report):
    """The demo TSA's certificate names the demo CA's CRL and OCSP, which nothing serves
    while this test verifies: the token verifies, its TSA's status is TRY_LATER (#24)."""
    (timestamp,) = [c for c in report.checks if c.check == CheckName.TIMESTAMP]
    assert timestamp.status == CheckStatus.INDETERMINATE and timestamp.code == Code.TRY_LATER, report.to_dict()
    assert "verifies" in timestamp.reason.en


def test_trustctl_verify_reports_the_registry_status(demo, tmp_path):
    """On a machine that runs the service, `trustctl verify` asks our registry: a signature made
    before its seal was revoked, with only the signer's word for its time, is no longer PASSED."""
    home, _engine, uscc, root = demo
    es_id = make(home, uscc, "--client", "app-1")
    (tmp_path / "data").write_bytes(b"decision")
    cli("sign", es_id, "--credential", officer(home), "--data", tmp_path / "data", "--client", "app-1", "--purpose", "p", "--out", tmp_path / "s.ses")
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", root))

    def registry_checks():
        result = CliRunner().invoke(verify_command, [str(tmp_path / "s.ses"), "--data", str(tmp_path / "data"),
                                                     "--trust-root", str(tmp_path / "root.pem"), "--json"])
        report = json.loads(result.output)
        validity = [c for c in report["signatures"][0]["checks"] if c["check"] == "seal_validity"]
        return validity[1:]  # the first is the seal's own period; the second, our registry's word

    assert [c["status"] for c in registry_checks()] == ["PASSED"]
    cli("revoke", es_id, "--reason", "撤销", "--credential", officer(home))
    assert [c["status"] for c in registry_checks()] == ["INDETERMINATE"]
