"""三员分立 (issue #19 item 1): the system, security and audit administrators each do their
own acts and are refused, audited, for every act of the other two, on the command line
(their SM2 credentials) and through the API (tokens from a TOTP login); one person never
holds two duties, refused when a role is given and again at every use."""

import json
import re
import secrets
from datetime import UTC
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from api.cli import main
from hsm import dual_control, officers
from identity import subjects, tokens
from identity.models import identity_role
from trust import audit, db, duties
from trust.config import load_settings
from trust.duties import Duty
from trust.errors import InvalidInput, PermissionDenied

from tests.custody import demo_custody

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


def _every_act(home: Path, tmp_path: Path) -> dict[str, Duty]:
    """Every command line act that takes a credential, with arguments that reach the duty
    check (objects need not exist: the credential is checked before anything is looked up,
    except an approval request, which is opened here)."""
    from datetime import datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "duty test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (pem := tmp_path / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (empty := tmp_path / "empty.json").write_text("{}")
    engine = db.make_engine(load_settings().database_url)
    with db.session_factory(engine)() as session:
        request = dual_control.request(session, None, "policy.change", "policy", {"threshold": 3, "ttl_seconds": 3600},
                                       credential=officers.load_credential(home / "officers" / "officer-3.pem"))
        session.commit()
    engine.dispose()
    security = [
        "key generate --algorithm SM2-with-SM3 --label l --usage seal", "key rotate l", "key suspend k",
        "key resume k", "key destroy k", f"approvals approve {request.id}", f"approvals reject {request.id}",
        "kek rotate", "ca init n", "ca issue n --profile server --generate-key l", "ca revoke n 1", "ca crl n",
        f"ca dual n --signing-cert {pem} --out-cert {tmp_path}/o1 --out-envelope {tmp_path}/o2",
        f"ca recover n 1 --recipient {pem} --reason r", f"trust import seal {pem}", "trust remove seal ab",
        "identity rotate-keys", "seal make --holder-name n --uscc 1 --holder-key k --maker-key k",
        f"seal import {empty}", "seal suspend s --reason r", "seal resume s --reason r", "seal revoke s --reason r",
        "seal destroy s --reason r", "seal authorise s",
        f"seal sign s --client c --purpose p --digest {'0' * 64} --out {tmp_path}/o3",
        "licence rotate-key --issuer i", "licence requests answer r approve --answer a",
        f"licence issue {empty} --client c", "licence suspend l --reason r", "licence resume l --reason r",
        "licence revoke l --reason r", "licence annul l --reason r", "licence cancel l --reason r",
        f"licence convert {empty} --type t --issuer i --source s"]
    system = [
        "identity add-person --username u --name n --resident-id 1",
        "identity add-enterprise --username u --name n --uscc 1",
        "identity add-officer --username u --name n --staff-number 1 --department d --role seal-admin",
        "identity authorise --enterprise e --person p --scope licence:read --until 2030-01-01",
        "identity enrol-totp u", "identity unlock u", "identity set-level u L2 --source s", "identity disable u",
        "identity enable u", "identity client register --name n --grant client_credentials --scope seal:sign",
        "identity client disable c", f"identity federation add-issuer https://i --name n --jwks {empty} --audience a "
        "--level L2", "identity federation link https://i s u", f"licence types import {empty}",
        "licence issuer t --issuer i --name n --seal s", "licence consumer add c --types t --purposes p",
        "licence consumer remove c", f"backup create {tmp_path}/backup"]
    audit_acts = ["audit search", "audit usage"]
    return ({act: Duty.SECURITY for act in security} | {act: Duty.SYSTEM for act in system}
            | {act: Duty.AUDIT for act in audit_acts})


@pytest.mark.parametrize("duty", list(Duty))
def test_every_act_of_the_other_two_duties_is_refused_on_the_command_line(home, tmp_path, duty):
    acts = _every_act(home, tmp_path)
    credential = str(home / "officers" / f"{CREDENTIALS[duty]}.pem")
    before = len(_audit_rows(home))
    others = [act for act, owner in acts.items() if owner is not duty]
    for act in others:
        args = act.split()
        twice = args[:2] in (["ca", "init"], ["ca", "crl"], ["seal", "make"])  # dual control: two credentials
        done = CliRunner().invoke(main, [*args, *["--credential", credential] * (2 if twice else 1)],
                                  input="Correct-Horse-42!\nCorrect-Horse-42!\n")
        assert done.exit_code == 1 and duties.NAMES[acts[act]][0] in done.output, (act, done.output)
    denied = [row for row in _audit_rows(home)[before:] if row.action == "officer.denied"]
    assert len(denied) == len(others) and {row.actor for row in denied} == {CREDENTIALS[duty]}


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

def _officer(session, roles, username=None):
    number = secrets.token_hex(4)
    return subjects.create_officer(session, username=username or f"admin-{number}", password="Correct-Horse-42!",
                                   name="钱管理", staff_number=f"A-{number}", department="省政务服务和数据管理局",
                                   roles=list(roles))


def _headers(app, person) -> dict:
    with app.extensions["trust.sessions"]() as session:
        token, _ = tokens.issue_access_token(session, app.extensions["trust.keystore"], issuer="https://trust.test",
                                             client_id="admin-console", subject=person.id,
                                             scopes=["seal:manage", "audit:read", "ca:issue"])
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


API_ACTS = {  # every administrator's act of the JSON API, by duty (the system's are all on the CLI)
    ("GET", "/api/v1/seals"): Duty.SECURITY, ("GET", "/api/v1/seals/ES-1"): Duty.SECURITY,
    ("POST", "/api/v1/seals/ES-1/suspend"): Duty.SECURITY, ("POST", "/api/v1/seals/ES-1/resume"): Duty.SECURITY,
    ("POST", "/api/v1/seals/ES-1/revoke"): Duty.SECURITY, ("POST", "/api/v1/seals/revoke"): Duty.SECURITY,
    ("PUT", "/api/v1/seals/ES-1/authorisation"): Duty.SECURITY,
    ("POST", "/api/ca/issuing/certificates"): Duty.SECURITY,
    ("POST", "/api/ca/issuing/certificates/1/revoke"): Duty.SECURITY,
    ("GET", "/api/v1/audit"): Duty.AUDIT, ("GET", "/api/v1/audit/usage"): Duty.AUDIT,
}


def test_through_the_api_each_duty_reaches_only_its_own_endpoints(app):
    client = app.test_client()
    with app.extensions["trust.sessions"]() as session:
        people = {duty: _officer(session, [duty.value]) for duty in Duty}
        seal_admin = _officer(session, ["seal-admin"])
        session.commit()
    refusals = 0
    for duty, person in people.items():
        headers = _headers(app, person)
        for (method, path), owner in API_ACTS.items():
            answer = client.open(path, method=method, headers=headers, json={"reason": "核查"})
            if owner is duty:
                assert answer.status_code != 403, (duty, path, answer.json)
            else:
                assert answer.status_code == 403 and duties.NAMES[owner][0] in answer.json["detail"], (duty, path)
                refusals += 1
    assert client.get("/api/v1/seals", headers=_headers(app, people[Duty.SECURITY])).status_code == 200
    assert client.get("/api/v1/audit", headers=_headers(app, people[Duty.AUDIT])).status_code == 200
    assert client.get("/api/v1/seals", headers=_headers(app, seal_admin)).status_code == 200
    assert client.get("/api/v1/audit", headers=_headers(app, seal_admin)).status_code == 403
    with app.extensions["trust.sessions"]() as session:
        audited = session.execute(select(audit.audit_log.c.action).where(
            audit.audit_log.c.action == "api.refused")).all()
    assert len(audited) == refusals + 1


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
