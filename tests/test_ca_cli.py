"""`trustctl ca`, the CA JSON endpoints and the demo CA, in this process."""

import json
from datetime import UTC, datetime

from asn1crypto import pem
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from api import problems
from api.ca_api import blueprint, officer_headers
from api.cli.approvals import approvals as approvals_command
from api.cli.ca import ca as ca_command
from ca import authority
from ca.demo import set_up_demo_ca
from ca.models import ca_certificate
from hsm import envelope, officers
from hsm.keystore import open_keystore
from trust import audit
from trust.config import load_settings
from trust.db import make_engine, session_factory
from trust.sm2 import SM2PrivateKey
from trust.x509 import parse_certificate

from tests.oracles import STANDARD_ID, openssl
from tests.test_ca_csr import USCC, make_csr


def officer(home, n):
    return str(home / "officers" / f"officer-{n}.pem")


def cli(*args, expect=0, command=ca_command):
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def sm2_key(tmp_path, name):
    """An SM2 key pair made by openssl: (private key, public key file)."""
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", tmp_path / f"{name}.key")
    openssl("pkey", "-in", tmp_path / f"{name}.key", "-pubout", "-out", tmp_path / f"{name}.pub")
    return SM2PrivateKey.from_pem((tmp_path / f"{name}.key").read_text()), tmp_path / f"{name}.pub"


def test_cli_init_issue_show(home, tmp_path):
    cli("init", "sm2", expect=4)  # no credential: usage error
    cli("init", "sm2", "--credential", officer(home, 1), expect=1)  # one officer is not enough: refused
    cli("init", "sm2", "--credential", officer(home, 1), "--credential", officer(home, 2))
    assert "sm2-root" in cli("list") and "sm2-issuing" in cli("list")
    (tmp_path / "inter.pem").write_text(cli("show", "sm2-issuing", "--pem"))
    (tmp_path / "root.pem").write_text(cli("show", "sm2-root", "--pem"))
    openssl("verify", "-CAfile", tmp_path / "root.pem", "-vfyopt", STANDARD_ID, tmp_path / "inter.pem")
    make_csr(tmp_path, "sm2", f"/C=CN/O=演示单位/CN=签章/organizationIdentifier={USCC}")
    assert "Self-signature valid" in cli("csr", tmp_path / "sm2.csr")
    cli("issue", "sm2-issuing", "--profile", "organisation-signing", "--csr", tmp_path / "sm2.csr",
        "--out", tmp_path / "leaf.pem", "--credential", officer(home, 3))
    openssl("verify", "-partial_chain", "-CAfile", tmp_path / "inter.pem", "-vfyopt", STANDARD_ID,
            tmp_path / "leaf.pem")
    # a subject the profile refuses: exit 1, nothing issued, the refusal kept in the audit log
    cli("issue", "sm2-issuing", "--profile", "organisation-signing", "--csr", tmp_path / "sm2.csr",
        "--subject", "/CN=no credit code", "--credential", officer(home, 3), expect=1)
    engine = make_engine(load_settings().database_url)
    with session_factory(engine)() as session:
        assert len(session.execute(select(ca_certificate).where(ca_certificate.c.profile != "ca")).all()) == 1
        assert session.execute(select(audit.audit_log).where(audit.audit_log.c.action == "ca.refuse")).first()
        assert audit.verify_chain(session).ok
    engine.dispose()


def test_demo_ca_and_the_issuing_endpoint(home, tmp_path):
    settings = load_settings()
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    keystore = open_keystore(settings, sessions)
    creds = [officers.load_credential(officer(home, n)) for n in (1, 2)]
    with sessions() as session:
        demo = set_up_demo_ca(session, keystore, settings, creds)
        session.commit()
        assert set(demo.authorities) == {"sm2-root", "sm2-issuing", "ecdsa-root", "ecdsa-issuing"}
        assert {c.profile for c in demo.certificates} == {"ocsp-signer", "tsa", "seal-maker", "organisation-signing"}
        assert all(c.key_id for c in demo.certificates)
        roots = {a.name: a.certificate for a in authority.list_authorities(session)}
    for cert in demo.certificates:
        family = cert.issuer.split("-")[0]
        (tmp_path / "r.pem").write_bytes(pem.armor("CERTIFICATE", roots[f"{family}-root"]))
        (tmp_path / "i.pem").write_bytes(pem.armor("CERTIFICATE", roots[f"{family}-issuing"]))
        (tmp_path / "l.pem").write_bytes(pem.armor("CERTIFICATE", cert.der))
        if family == "ecdsa":
            openssl("verify", "-CAfile", tmp_path / "r.pem", "-untrusted", tmp_path / "i.pem", tmp_path / "l.pem")
        else:
            openssl("verify", "-partial_chain", "-CAfile", tmp_path / "i.pem", "-vfyopt", STANDARD_ID,
                    tmp_path / "l.pem")

    app = Flask(__name__)
    app.extensions.update({"trust.sessions": sessions, "trust.keystore": keystore})
    problems.register(app)
    app.register_blueprint(blueprint)
    client = app.test_client()
    assert {a["name"] for a in client.get("/api/ca").get_json()} >= {"sm2-issuing"}
    csr_pem = pem.armor("CERTIFICATE REQUEST", make_csr(tmp_path, "ecdsa", "/CN=trust.example",
                                                         "-addext", "subjectAltName=DNS:trust.example")).decode()
    assert client.post("/api/ca/csr/check", json={"csr": csr_pem}).get_json()["dns_names"] == ["trust.example"]
    body = json.dumps({"profile": "server", "csr": csr_pem,
                       "at": datetime.now(UTC).isoformat()}).encode()
    unsigned = client.post("/api/ca/ecdsa-issuing/certificates", data=body, content_type="application/json")
    assert unsigned.status_code == 401 and unsigned.get_json()["code"] == "unauthenticated"  # no credential at all
    wrong_ca = client.post("/api/ca/ecdsa-issuing/certificates", data=body, content_type="application/json",
                           headers=officer_headers(creds[0], "sm2-issuing", body))
    assert wrong_ca.status_code == 403
    done = client.post("/api/ca/ecdsa-issuing/certificates", data=body, content_type="application/json",
                       headers=officer_headers(creds[0], "ecdsa-issuing", body))
    assert done.status_code == 201, done.get_json()
    issued = done.get_json()
    (tmp_path / "s.pem").write_text(issued["certificate"])
    (tmp_path / "r.pem").write_bytes(pem.armor("CERTIFICATE", roots["ecdsa-root"]))
    (tmp_path / "i.pem").write_bytes(pem.armor("CERTIFICATE", roots["ecdsa-issuing"]))
    openssl("verify", "-CAfile", tmp_path / "r.pem", "-untrusted", tmp_path / "i.pem", "-purpose", "sslserver",
            tmp_path / "s.pem")
    shown = client.get(f"/api/ca/ecdsa-issuing/certificates/{issued['serial']}").get_json()
    assert shown["status"] == "good" and shown["certificate"] == issued["certificate"]
    assert client.get("/api/ca/ecdsa-issuing/certificates/1").status_code == 404
    engine.dispose()


def test_cli_dual_certificate_and_recovery_by_two_officers(home, tmp_path):
    cli("init", "sm2", "--credential", officer(home, 1), "--credential", officer(home, 2))
    signing_key, signing_pub = sm2_key(tmp_path, "signing")
    cli("issue", "sm2-issuing", "--profile", "personal-signing", "--public-key", signing_pub, "--subject", "/CN=王五",
        "--out", tmp_path / "signing.pem", "--credential", officer(home, 3))
    out = cli("dual", "sm2-issuing", "--signing-cert", tmp_path / "signing.pem", "--out-cert", tmp_path / "enc.pem",
              "--out-envelope", tmp_path / "enc.env", "--credential", officer(home, 3))
    assert "Issued and escrowed" in out
    enc_cert = parse_certificate((tmp_path / "enc.pem").read_bytes())
    assert f"serial {enc_cert.serial_number}" in out
    # The applicant opens the envelope with the signing key; openssl agrees it is the certificate's key.
    enc_key = envelope.open_envelope((tmp_path / "enc.env").read_bytes(), signing_key)
    assert enc_key.public_key() == enc_cert.public_key()
    (tmp_path / "enc.key").write_text(enc_key.to_pkcs8_pem())
    openssl("x509", "-in", tmp_path / "enc.pem", "-pubkey", "-noout", "-out", tmp_path / "enc.pub")
    ct = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", tmp_path / "enc.pub", input=b"secret").stdout
    assert openssl("pkeyutl", "-decrypt", "-inkey", tmp_path / "enc.key", input=ct).stdout == b"secret"
    # a signing certificate is never escrowed: asking dual for the encryption certificate is refused
    cli("dual", "sm2-issuing", "--signing-cert", tmp_path / "enc.pem", "--out-cert", tmp_path / "x.pem",
        "--out-envelope", tmp_path / "x.env", "--credential", officer(home, 3), expect=1)

    # Recovery: one officer opens the request, the key comes out only after a second one approves.
    recipient_key, recipient_pub = sm2_key(tmp_path, "recipient")
    out = cli("recover", "sm2-issuing", enc_cert.serial_number, "--recipient", recipient_pub, "--reason",
              "法院令 court order 2026-001", "--credential", officer(home, 1))
    assert "pending" in out and "1 more officer(s) must approve" in out
    [req] = json.loads(cli("list", "--json", command=approvals_command))
    assert (req["action"], req["target"]) == ("key.recover", f"sm2-issuing:{enc_cert.serial_number}")
    assert req["status"] == "pending" and req["still_needed"] == 1 and req["result"] is None
    assert "own request" in cli("approve", req["id"], "--credential", officer(home, 1), expect=1,
                                command=approvals_command)
    assert "executed" in cli("approve", req["id"], "--credential", officer(home, 2), command=approvals_command)
    done = json.loads(cli("show", req["id"], "--json", command=approvals_command))
    recovered = envelope.open_envelope(bytes.fromhex(done["result"]["envelope"]), recipient_key)
    assert recovered.to_hex() == enc_key.to_hex()
    engine = make_engine(load_settings().database_url)
    with session_factory(engine)() as session:
        recorded = [(r.actor, r.action, r.target) for r in session.execute(select(audit.audit_log))]
        assert (f"approval:{req['id']}", "ca.recover", f"sm2-issuing:{enc_cert.serial_number}") in recorded
        assert ("officer-3", "ca.escrow", f"sm2-issuing:{enc_cert.serial_number}") in recorded
        assert audit.verify_chain(session).ok
    engine.dispose()
