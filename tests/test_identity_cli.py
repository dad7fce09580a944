"""`trustctl identity`: users added, listed, shown, authorised, TOTP enrolled with a real
authenticator (pyotp reading the URI printed), lockouts lifted, keys rotated."""

import json
import os
import random
import subprocess
import sys
from datetime import date

import pyotp
import pytest
from click.testing import CliRunner

from api.cli.identity import identity
from hsm.keystore import initialise_keystore, open_keystore
from identity import authn, signing_keys, subjects
from trust.config import load_settings
from trust.db import make_engine, session_factory, upgrade
from trust.duties import Duty
from trust.errors import Unauthenticated
from trust.ids import generate_resident_id, generate_uscc

from tests.custody import enrol_administrator

PASSWORD = "正确的口令 correct horse 1"
RID = generate_resident_id(random.Random(1), birth=date(1990, 5, 17))
USCC = generate_uscc(random.Random(2))


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    for name in [k for k in os.environ if k.startswith("TRUST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRUST_HOME", str(home))
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"legal_persons": [{"name": "示例科技有限公司", "uscc": USCC}]}), encoding="utf-8")
    monkeypatch.setenv("TRUST_IDENTITY_REGISTRY", str(registry))
    engine = make_engine(load_settings().database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        initialise_keystore(session, load_settings())
        session.commit()
    # Officers, clients and federation are the system administrator's acts (trust.duties).
    monkeypatch.setenv("TRUST_OFFICER_KEY", str(enrol_administrator(home, "sysadmin-1", Duty.SYSTEM)))
    yield home
    engine.dispose()


@pytest.fixture
def db(home):
    engine = make_engine(load_settings().database_url)
    yield session_factory(engine)
    engine.dispose()


def cli(*args, input=None):
    return CliRunner().invoke(identity, list(args), input=input)


def test_add_list_show_authorise(home, db):
    done = cli("add-person", "--username", "zhangsan", "--name", "张三", "--resident-id", RID,
               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.exit_code == 0, done.output
    assert "zhangsan" in done.output and "L1" in done.output and PASSWORD not in done.output
    done = cli("add-enterprise", "--username", "company", "--name", "示例科技有限公司", "--uscc", USCC,
               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.exit_code == 0 and "L2" in done.output  # confirmed by the configured registry
    done = cli("add-officer", "--username", "officer.li", "--name", "李四", "--staff-number", "GA-1",
               "--department", "省市场监督管理局", "--role", "seal-admin", "--role", "ca-officer",
               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.exit_code == 0 and "enrol-totp officer.li" in done.output
    done = cli("authorise", "--enterprise", "company", "--person", "zhangsan", "--scope", "licence:read",
               "--scope", "seal:sign", "--until", "2099-12-31")
    assert done.exit_code == 0, done.output

    listed = cli("list", "--json")
    assert [u["username"] for u in json.loads(listed.output)] == ["company", "officer.li", "zhangsan"]
    assert cli("list", "--kind", "officer").output.startswith("officer.li")
    shown = cli("show", "company")
    assert "经办人 / representative: zhangsan  licence:read seal:sign" in shown.output
    shown = json.loads(cli("show", "officer.li", "--json").output)
    assert shown["roles"] == ["ca-officer", "seal-admin"] and shown["subject"]["kind"] == "officer"
    with db() as session:
        assert authn.authenticate_password(session, "zhangsan", PASSWORD, address="127.0.0.1")
    done = cli("set-level", "zhangsan", "L3", "--source", "counter:某某区政务服务中心")
    assert done.exit_code == 0 and "L3" in done.output, done.output
    assert cli("set-level", "zhangsan", "L3", "--source", "").exit_code == 1  # refused


def test_refusals_unknown_ids_and_usage_errors_exit_1_3_4(home):
    bad = cli("add-person", "--username", "zhangsan", "--name", "张三", "--resident-id", RID[:-1] + "Y",
              input=f"{PASSWORD}\n{PASSWORD}\n")
    assert bad.exit_code == 1 and "公民身份号码" in bad.output
    assert cli("show", "nobody").exit_code == 3
    assert cli("unlock").exit_code == 4
    mismatch = cli("add-person", "--username", "zhangsan", "--name", "张三", "--resident-id", RID,
                   input=f"{PASSWORD}\nother password\n")
    assert mismatch.exit_code != 0 and json.loads(cli("list", "--json").output) == []


def test_enrol_totp_with_an_authenticator(home, db):
    with db() as session:
        subjects.create_officer(session, username="officer.li", password=PASSWORD, name="李四", staff_number="GA-1",
                                department="省市场监督管理局", roles=["seal-admin"])
        session.commit()
    # A real process: the app (pyotp) reads the URI printed, then its code is typed in.
    process = subprocess.Popen(
        [sys.executable, "-c", "from api.cli.identity import identity; identity()", "enrol-totp", "officer.li"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    uri = None
    for line in process.stdout:
        if line.startswith("otpauth://"):
            uri = line.strip()
            break
    assert uri is not None
    out, err = process.communicate(pyotp.parse_uri(uri).now() + "\n", timeout=60)
    assert process.returncode == 0, err
    assert "TOTP enrolled: officer.li" in out
    with db() as session:
        assert subjects.find_subject(session, "officer.li").totp_enrolled


def test_enrol_totp_with_a_wrong_code_changes_nothing(home, db):
    with db() as session:
        subjects.create_officer(session, username="officer.li", password=PASSWORD, name="李四", staff_number="GA-1",
                                department="省市场监督管理局", roles=["seal-admin"])
        session.commit()
    done = cli("enrol-totp", "officer.li", input="000000\n")
    assert done.exit_code == 1 and "动态口令" in done.output
    with db() as session:
        assert not subjects.find_subject(session, "officer.li").totp_enrolled


def test_unlock_disable_enable(home, db):
    with db() as session:
        subjects.create_person(session, username="zhangsan", password=PASSWORD, name="张三", resident_id=RID)
        session.commit()
        for _ in range(authn.ACCOUNT_LIMIT):
            with pytest.raises(Unauthenticated):
                authn.authenticate_password(session, "zhangsan", "wrong", address="10.0.0.1")
            session.commit()
    assert cli("unlock", "zhangsan").exit_code == 0
    assert cli("unlock", "--address", "10.0.0.1").exit_code == 0
    with db() as session:
        authn.authenticate_password(session, "zhangsan", PASSWORD, address="10.0.0.1")
        session.commit()
    assert cli("disable", "zhangsan").exit_code == 0
    with db() as session, pytest.raises(Unauthenticated):
        authn.authenticate_password(session, "zhangsan", PASSWORD, address="10.0.0.2")
    assert cli("enable", "zhangsan").exit_code == 0
    with db() as session:
        authn.authenticate_password(session, "zhangsan", PASSWORD, address="10.0.0.2")


def test_rotate_keys(home, db, monkeypatch):
    with db() as session:
        _, before = signing_keys.current_signing_key(session, open_keystore(load_settings()), "ES256")
        session.commit()
    assert cli("rotate-keys", "--alg", "ES256").exit_code == 1  # keys are not the system administrator's
    monkeypatch.setenv("TRUST_OFFICER_KEY", str(enrol_administrator(home, "security-1", Duty.SECURITY)))
    done = cli("rotate-keys", "--alg", "ES256")
    assert done.exit_code == 0, done.output
    assert "ES256: 第 2 版" in done.output and before not in done.output
    assert cli("rotate-keys", "--alg", "SM2").exit_code == 3  # none made yet: nothing to rotate


def test_client_register_list_disable(home, db, tmp_path):
    """A client registered from the command line gets a client-credentials token from the
    token endpoint with its secret, and no longer once disabled."""
    from api.app import create_app

    done = cli("client", "register", "--name", "不动产登记系统", "--grant", "client_credentials",
               "--scope", "seal:sign", "--scope", "licence:read", "--department", "省自然资源厅")
    assert done.exit_code == 0, done.output
    client_id = done.output.split("client_id: ")[1].split()[0]
    secret = done.output.split("client_secret: ")[1].split("（")[0].strip()
    listed = json.loads(cli("client", "list", "--json").output)
    assert [c["name"] for c in listed] == ["不动产登记系统"] and secret not in json.dumps(listed)

    app = create_app()
    token = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials", "scope": "seal:sign"},
                                   auth=(client_id, secret))
    assert token.status_code == 200 and token.json["token_type"].lower() == "bearer", token.json
    assert cli("client", "disable", client_id).exit_code == 0
    refused = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials", "scope": "seal:sign"},
                                     auth=(client_id, secret))
    assert refused.status_code == 401 and refused.json["error"] == "invalid_client"
    app.extensions["trust.engine"].dispose()
    assert cli("client", "register", "--name", "x", "--grant", "password", "--scope", "seal:sign").exit_code == 4


def test_federation_add_issuer_and_link(home, db, tmp_path):
    """An issuer trusted from the command line: its ID token, signed by PyJWT with the key whose
    public half was registered, maps to the linked local user at the agreed level."""
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from identity import federation

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig"}]}))
    issuer = "https://id.other-province.gov.cn"
    done = cli("federation", "add-issuer", issuer, "--name", "外省统一身份认证平台", "--jwks", tmp_path / "jwks.json",
               "--audience", "our-platform", "--level", "L2", "--scope", "licence:read")
    assert done.exit_code == 0, done.output
    assert cli("add-person", "--username", "zhangsan", "--name", "张三", "--resident-id", RID,
               input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    assert cli("federation", "link", issuer, "ext-123", "zhangsan").exit_code == 0
    assert cli("federation", "link", issuer, "ext-123", "nobody").exit_code == 3

    now = int(time.time())
    id_token = jwt.encode({"iss": issuer, "aud": "our-platform", "sub": "ext-123", "iat": now, "exp": now + 300},
                          key, algorithm="ES256", headers={"kid": "k1"})
    with db() as session:
        login = federation.accept_id_token(session, id_token)
        assert subjects.get_subject(session, login.subject_id).username == "zhangsan"
        assert login.assurance_level == "L2"


def test_purge(home, db):
    done = cli("purge")
    assert done.exit_code == 0, done.output
    assert "access_tokens 0, refresh_tokens 0, login_sessions 0" in done.output
