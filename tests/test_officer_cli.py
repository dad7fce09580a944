"""The officer CLI: a dual-control round trip by real `trustctl` processes, each officer
with their own credential file from `trustctl init --demo`; refusals and usage errors
through click's runner in this process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.cli.approvals import approvals as approvals_command
from api.cli.kek import kek as kek_command
from api.cli.key import key as key_command
from hsm import officers
from hsm.keystore import open_keystore
from trust import audit
from trust.config import load_settings
from trust.db import make_engine, session_factory

from custody import demo_custody

TRUSTCTL = Path(sys.executable).parent / "trustctl"


def environment(home: Path, db_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUST_")}
    return {**env, "TRUST_HOME": str(home), "TRUST_DATABASE_URL": db_url}


def credential(home: Path, n: int) -> str:
    return str(home / "officers" / f"officer-{n}.pem")


def trustctl(env: dict, *args, officer: str | None = None, expect: int = 0) -> str:
    if officer is not None:
        env = {**env, "TRUST_OFFICER_KEY": officer}
    done = subprocess.run([str(TRUSTCTL), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == expect, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def read_audit(db_url: str) -> list[tuple[str, str]]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(select(audit.audit_log).order_by(audit.audit_log.c.seq)).all()
    finally:
        engine.dispose()
    return [(r.actor, r.action) for r in rows]


def test_dual_control_round_trip(tmp_path, db_url):
    home = tmp_path / "home"
    env = environment(home, db_url)
    out = trustctl(env, "init", "--demo")
    for n in (1, 2, 3):
        assert credential(home, n) in out
        assert Path(credential(home, n)).stat().st_mode & 0o777 == 0o600
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    assert "officer-1" not in trustctl(env, "init", "--demo")  # credentials are shown once

    trustctl(env, "key", "generate", "--algorithm", "SM2-with-SM3", "--label", "demo/seal", "--usage", "seal",
             "--credential", credential(home, 1))
    [key] = [k for k in json.loads(trustctl(env, "key", "list", "--json")) if k["label"] == "demo/seal"]

    # Officer 1 alone opens a request; the key is untouched and they cannot approve it.
    out = trustctl(env, "key", "destroy", key["id"], officer=credential(home, 1))
    request_id = out.split("Approval request ")[-1].split()[0]
    assert "1 more officer(s) must approve" in out
    assert "own request" in trustctl(env, "approvals", "approve", request_id, officer=credential(home, 1), expect=1)
    # Officer 2 approves: two officers, the act runs.
    out = trustctl(env, "approvals", "approve", request_id, officer=credential(home, 2))
    assert "executed" in out
    assert json.loads(trustctl(env, "key", "show", key["id"], "--json"))["key"]["state"] == "destroyed"

    # The KEK likewise; a key made before the rotation still signs after it.
    trustctl(env, "key", "generate", "--algorithm", "ES256", "--label", "demo/token", "--usage", "token",
             officer=credential(home, 2))
    out = trustctl(env, "kek", "rotate", officer=credential(home, 3))
    rotation_id = out.split("Approval request ")[-1].split()[0]
    assert "executed" in trustctl(env, "approvals", "approve", rotation_id, officer=credential(home, 1))
    assert_signs(home, db_url, "demo/token", "token")

    assert "OK" in trustctl(env, "audit", "verify")
    steps = read_audit(db_url)
    destroy, rotate = f"approval:{request_id}", f"approval:{rotation_id}"
    first = len(steps) - 1 - steps[::-1].index(("officer-1", "approval.request"))  # after the demo CA's own
    assert steps[first:] == [
        ("officer-1", "approval.request"), ("officer-1", "officer.denied"), ("officer-2", "approval.approve"),
        (destroy, "key.state"), (destroy, "key.destroy"), (destroy, "approval.execute"),
        ("officer-2", "key.generate"), ("officer-3", "approval.request"), ("officer-1", "approval.approve"),
        (rotate, "kek.rotate"), (rotate, "approval.execute")]


def assert_signs(home: Path, db_url: str, label: str, usage: str) -> None:
    settings = load_settings({"TRUST_HOME": str(home), "TRUST_DATABASE_URL": db_url})
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            keystore = open_keystore(settings)
            [ref] = keystore.list(session, label=label)
            assert keystore.sign(session, ref, b"after the rotation", usage=usage)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- in this process

@pytest.fixture
def demo(tmp_path, db_url, monkeypatch):
    """A demo custody set up as `trustctl init --demo` does it."""
    return demo_custody(tmp_path, monkeypatch, db_url)

def cli(command, *args, expect: int = 0) -> str:
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def open_destroy_request(home: Path) -> str:
    cli(key_command, "generate", "--algorithm", "SM2-with-SM3", "--label", "k", "--usage", "seal",
        "--credential", credential(home, 1))
    [key] = json.loads(cli(key_command, "list", "--json"))
    cli(key_command, "destroy", key["id"], "--credential", credential(home, 1))
    [req] = json.loads(cli(approvals_command, "list", "--json"))
    assert req["approvals"] == ["officer-1"] and req["still_needed"] == 1 and req["status"] == "pending"
    return req["id"]


def test_credentials_that_are_not_an_officers_own_are_refused(demo, tmp_path):
    request_id = open_destroy_request(demo)
    stranger = tmp_path / "stranger.pem"
    officers.write_credential(stranger, officers.new_credential()[1])
    out = cli(approvals_command, "approve", request_id, "--credential", stranger, expect=1)
    assert "no active security officer" in out and "不属于任何在职安全员" in out
    loose = tmp_path / "loose.pem"
    shutil.copy(credential(demo, 2), loose)
    loose.chmod(0o644)
    assert "chmod 600" in cli(approvals_command, "approve", request_id, "--credential", loose, expect=3)
    [req] = json.loads(cli(approvals_command, "list", "--json"))
    assert req["status"] == "pending" and req["approvals"] == ["officer-1"]


def test_reject_ends_a_request_and_closed_requests_refuse(demo):
    request_id = open_destroy_request(demo)
    out = cli(approvals_command, "reject", request_id, "--reason", "误操作", "--credential", credential(demo, 3))
    assert "rejected" in out and "officer-3" in out
    assert "closed" in cli(approvals_command, "approve", request_id, "--credential", credential(demo, 2), expect=1)
    assert json.loads(cli(approvals_command, "list", "--json")) == []
    [closed] = json.loads(cli(approvals_command, "list", "--all", "--json"))
    assert closed["status"] == "rejected" and closed["reason"] == "误操作"
    [key] = json.loads(cli(key_command, "list", "--json"))
    assert key["state"] == "active"


def test_single_officer_lifecycle(demo):
    cli(key_command, "generate", "--algorithm", "SM2-with-SM3", "--label", "k", "--usage", "seal",
        "--credential", credential(demo, 1))
    [key] = json.loads(cli(key_command, "list", "--json"))
    assert "suspended" in cli(key_command, "suspend", key["id"], "--reason", "检查", "--credential", credential(demo, 2))
    assert "active" in cli(key_command, "resume", key["id"], "--credential", credential(demo, 3))
    cli(key_command, "rotate", "k", "--credential", credential(demo, 1))
    versions = json.loads(cli(key_command, "list", "--label", "k", "--json"))
    assert [(v["version"], v["state"]) for v in versions] == [(1, "deactivated"), (2, "active")]


def test_usage_errors_unknown_ids_and_refusals_exit_4_3_1(demo):
    cli(key_command, "destroy", "some-key", expect=4)  # no credential
    cli(approvals_command, "approve", "no-such-request", "--credential", credential(demo, 2), expect=3)
    cli(key_command, "generate", "--algorithm", "SM2-with-SM3", "--label", "x", "--usage", "nonsense",
        "--credential", credential(demo, 1), expect=4)
    cli(key_command, "generate", "--algorithm", "DSA", "--label", "x", "--usage", "seal",
        "--credential", credential(demo, 1), expect=1)  # an algorithm the service refuses
    cli(key_command, "show", "no-such-key", expect=3)
    cli(kek_command, "rotate", "--credential", "/nonexistent/officer.pem", expect=3)
