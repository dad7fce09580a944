"""三员分立 (issue #19 item 1): the system, security and audit administrators each do their
own acts and are refused, audited, for every act of the other two, on the command line
(their SM2 credentials) and through the API (tokens from a TOTP login); one person never
holds two duties, refused when a role is given and again at every use."""

import json
import re
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from api.app import create_app
from api.cli import main
from hsm import dual_control, officers
from hsm.kek import create_master_key_file
from identity import subjects, tokens
from identity.models import identity_role
from tests.custody import demo_custody
from trust import audit, db, duties
from trust.config import Settings, load_settings
from trust.duties import Duty
from trust.errors import InvalidInput, PermissionDenied

ROOT = Path(__file__).resolve().parent.parent


def test_every_act_the_code_names_has_a_duty():
    """An act missing from the table would fail at run time: find them all in the source."""
    named = set()
    for path in [*ROOT.glob("api/**/*.py"), *ROOT.glob("hsm/*.py")]:
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r'run_as\(\s*f?"([a-z_.-]+)', text))
        named |= set(re.findall(r'identify\([^)]*?"([a-z_.-]+)"', text))
        named |= set(re.findall(r'act="([a-z_.-]+)"', text))
    named = {act for act in named if not act.endswith(".")}  # f-strings: the prefix, checked below
    assert {"identity.client.register", "key.generate", "audit.export", "audit.usage", "approval.approve", "seal.make"} <= named
    for act in named:
        duties.duty_of_act(act)
    for act in ("licence.suspend", "licence.request.approve", "seal.revoke", "key.suspend"):  # the f-string ones
        duties.duty_of_act(act)
    with pytest.raises(ValueError):
        duties.duty_of_act("something.new")
    assert duties.duty_of_act("licence.issuer") is Duty.SYSTEM and duties.duty_of_act("licence.issue") is Duty.SECURITY


def test_the_table_gives_each_named_area_to_its_duty():
    assert {duties.duty_of_act(a) for a in ("identity.client.register", "licence.type.import",
                                            "licence.consumer.add", "identity.federation.add-issuer")} == {Duty.SYSTEM}
    assert {duties.duty_of_act(a) for a in ("key.destroy", "approval.reject", "ca.issue", "trust.root.import",
                                            "seal.make", "kek.rotate", "policy.change")} == {Duty.SECURITY}
    assert {duties.duty_of_act(a) for a in ("audit.search", "audit.export", "audit.usage")} == {Duty.AUDIT}
    assert duties.duties_of_roles(["seal-admin", "ca-officer", "licence-officer"]) == {Duty.SECURITY}
    duties.check_holding(["seal-admin", "ca-officer", "licence-officer"], frozenset({Duty.SECURITY}), "x")
    with pytest.raises(InvalidInput, match="separated duties"):
        duties.check_single({Duty.SECURITY, Duty.AUDIT}, "x")
    with pytest.raises(PermissionDenied, match="no other role"):
        duties.check_holding(["audit-admin", "licence-admin"], frozenset({Duty.AUDIT}), "x", PermissionDenied)


# ---------------------------------------------------------------- the command line

ACTS = {  # one act of each duty, as an administrator types it
    Duty.SYSTEM: ["identity", "client", "register", "--name", "不动产登记系统", "--grant", "client_credentials",
                  "--scope", "seal:sign"],
    Duty.SECURITY: ["key", "generate", "--algorithm", "SM2-with-SM3", "--label", "duty-test", "--usage", "seal"],
    Duty.AUDIT: ["audit", "search", "--format", "json"],
}
CREDENTIALS = {Duty.SYSTEM: "sysadmin-1", Duty.SECURITY: "officer-1", Duty.AUDIT: "auditor-1"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    return demo_custody(tmp_path, monkeypatch)


def _audit_rows(home: Path):
    engine = db.make_engine(f"sqlite:///{home / 'trust.db'}")
    with engine.connect() as connection:
        rows = connection.execute(select(audit.audit_log.c.actor, audit.audit_log.c.action,
                                         audit.audit_log.c.target)).all()
    engine.dispose()
    return rows


@pytest.mark.parametrize("duty", list(Duty))
def test_each_administrator_does_their_acts_and_is_refused_and_audited_for_the_others(home, duty):
    credential = str(home / "officers" / f"{CREDENTIALS[duty]}.pem")
    for act_duty, args in ACTS.items():
        done = CliRunner().invoke(main, [*args, "--credential", credential])
        if act_duty is duty:
            assert done.exit_code == 0, done.output
        else:
            assert done.exit_code == 1, done.output
            assert duties.NAMES[act_duty][0] in done.output and duties.NAMES[act_duty][1] in done.output
    refused = [(actor, target) for actor, action, target in _audit_rows(home) if action == "officer.denied"]
    assert sorted(refused) == sorted((CREDENTIALS[duty], act) for act in
                                     ("identity.client.register", "key.generate", "audit.search")
                                     if duties.duty_of_act(act) is not duty)


def test_only_security_officers_count_and_approve_under_dual_control(home):
    engine = db.make_engine(load_settings().database_url)
    with db.session_factory(engine)() as session:
        assert officers.count_active(session) == 3  # of the five demo administrators
        request = dual_control.request(session, None, "policy.change", "policy", {"threshold": 3, "ttl_seconds": 3600},
                                       credential=officers.load_credential(home / "officers" / "officer-1.pem"))
        for other in ("sysadmin-1", "auditor-1"):
            with pytest.raises(PermissionDenied, match="security administrator"):
                dual_control.approve(session, None, request.id,
                                     credential=officers.load_credential(home / "officers" / f"{other}.pem"))
        assert dual_control.get(session, request.id).status == "pending"
        with pytest.raises(PermissionDenied):
            dual_control.request(session, None, "policy.change", "policy", {"threshold": 2, "ttl_seconds": 3600},
                                 credential=officers.load_credential(home / "officers" / "auditor-1.pem"))
    engine.dispose()


# ---------------------------------------------------------------- roles given and used

@pytest.fixture
def app(tmp_path):
    url = f"sqlite:///{tmp_path / 'trust.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    create_master_key_file(tmp_path / "master.key")
    settings = Settings(home=tmp_path, database_url=url, host="127.0.0.1", port=8000,
                        max_request_bytes=1024 * 1024, workers=1, public_url="https://trust.test")
    yield create_app(settings, engine)
    engine.dispose()


def _officer(session, roles, username=None):
    number = secrets.token_hex(4)
    return subjects.create_officer(session, username=username or f"admin-{number}", password="Correct-Horse-42!",
                                   name="钱管理", staff_number=f"A-{number}", department="省政务服务和数据管理局",
                                   roles=list(roles))


def _headers(app, person) -> dict:
    with app.extensions["trust.sessions"]() as session:
        token, _ = tokens.issue_access_token(session, app.extensions["trust.keystore"], issuer="https://trust.test",
                                             client_id="admin-console", subject=person.id,
                                             scopes=["seal:manage", "audit:read"])
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_one_person_is_never_given_two_duties(app):
    with app.extensions["trust.sessions"]() as session:
        for roles in (["seal-admin", "audit-admin"], ["sys-admin", "security-admin"], ["sys-admin", "ca-officer"],
                      ["audit-admin", "licence-admin"]):
            with pytest.raises(InvalidInput):
                _officer(session, roles)
        # The SM2 credential enrolled under a username is the same person's.
        credential, _ = officers.new_credential()
        officers.enrol(session, "qian.audit", "钱审计", credential.private_key.public_key().to_pem(), actor="test",
                       duty=Duty.AUDIT)
        with pytest.raises(InvalidInput, match="separated duties"):
            _officer(session, ["security-admin"], username="qian.audit")
        assert subjects.person_duties(session, _officer(session, ["audit-admin"], username="Qian.Audit").id) == {
            Duty.AUDIT}
        with pytest.raises(InvalidInput, match="duty"):
            officers.enrol(session, "x", "x", officers.new_credential()[0].private_key.public_key().to_pem(),
                           actor="test", duty="root")


def test_through_the_api_each_duty_reaches_only_its_own_endpoints(app):
    client = app.test_client()
    with app.extensions["trust.sessions"]() as session:
        people = {duty: _officer(session, [duty.value]) for duty in Duty}
        seal_admin = _officer(session, ["seal-admin"])
        session.commit()
    endpoints = {Duty.SECURITY: "/api/v1/seals", Duty.AUDIT: "/api/v1/audit"}  # the system's acts are on the CLI
    for duty, person in people.items():
        headers = _headers(app, person)
        for owner, path in endpoints.items():
            answer = client.get(path, headers=headers)
            assert answer.status_code == (200 if owner is duty else 403), (duty, path, answer.json)
            if owner is not duty:
                assert duties.NAMES[owner][0] in answer.json["detail"]
    assert client.get("/api/v1/seals", headers=_headers(app, seal_admin)).status_code == 200
    assert client.get("/api/v1/audit", headers=_headers(app, seal_admin)).status_code == 403
    with app.extensions["trust.sessions"]() as session:
        refusals = session.execute(select(audit.audit_log.c.action).where(
            audit.audit_log.c.action == "api.refused")).all()
    assert len(refusals) == 5


def test_two_duties_written_in_by_hand_are_refused_at_every_use(app):
    client = app.test_client()
    with app.extensions["trust.sessions"]() as session:
        person = _officer(session, ["security-admin"])
        session.execute(insert(identity_role).values(subject_id=person.id, role="audit-admin"))  # behind our back
        session.commit()
    headers = _headers(app, person)
    for path in ("/api/v1/seals", "/api/v1/audit"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 403 and "separated duties" in answer.json["detail"], answer.json
    with app.extensions["trust.sessions"]() as session:
        last = session.execute(select(audit.audit_log).order_by(audit.audit_log.c.seq.desc()).limit(1)).one()
    assert (last.action, json.loads(last.detail)["code"]) == ("api.refused", "permission_denied")
