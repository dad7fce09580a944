"""Revoking through `trustctl ca revoke` and POST /api/ca/<name>/certificates/<serial>/revoke;
the served CRL and the OCSP responder then say revoked, as the openssl CLI reads them."""

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

from asn1crypto import pem

from api.ca_api import officer_headers
from hsm import officers

from tests.oracles import openssl
from tests.test_ca_cli import cli, officer
from tests.test_ca_csr import USCC


def issue(home, tmp_path, name):
    out = tmp_path / f"{name}.pem"
    cli("issue", "ec-issuing", "--profile", "organisation-signing", "--generate-key", f"org/{name}",
        "--subject", f"/C=CN/O=演示单位/CN={name}/organizationIdentifier={USCC}", "--out", out,
        "--credential", officer(home, 3))
    return out, int(openssl("x509", "-in", out, "-noout", "-serial").stdout.decode().strip().split("=")[1], 16)


def crl_text(base, tmp_path) -> str:
    with urllib.request.urlopen(f"{base}/ca/ec-issuing/crl") as answer:
        (tmp_path / "crl.pem").write_bytes(pem.armor("X509 CRL", answer.read()))
    return openssl("crl", "-in", tmp_path / "crl.pem", "-CAfile", tmp_path / "chain.pem", "-text").stdout.decode()


def ocsp(base, tmp_path, leaf) -> str:
    return openssl("ocsp", "-issuer", tmp_path / "issuing.pem", "-CAfile", tmp_path / "chain.pem", "-cert", leaf,
                   "-url", f"{base}/ocsp/ec-issuing", "-resp_text").stdout.decode()


def post(url, body: bytes, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_revoke_through_the_cli_and_the_api(home, service, tmp_path):
    cli("init", "ec", "--family", "ecdsa", "--credential", officer(home, 1), "--credential", officer(home, 2))
    (tmp_path / "issuing.pem").write_text(cli("show", "ec-issuing", "--pem"))
    (tmp_path / "chain.pem").write_text(cli("show", "ec-root", "--pem") + cli("show", "ec-issuing", "--pem"))
    by_cli, cli_serial = issue(home, tmp_path, "cli")
    by_api, api_serial = issue(home, tmp_path, "api")
    assert f"{by_cli}: good" in ocsp(service, tmp_path, by_cli)
    assert "No Revoked Certificates" in crl_text(service, tmp_path)

    cli("revoke", "ec-issuing", cli_serial, expect=4)  # no officer credential: usage error
    cli("revoke", "ec-issuing", cli_serial, "--reason", "lostIt", "--credential", officer(home, 1), expect=4)
    out = cli("revoke", "ec-issuing", cli_serial, "--reason", "keyCompromise", "--credential", officer(home, 1))
    assert f"serial {cli_serial}" in out and "keyCompromise" in out
    cli("revoke", "ec-issuing", cli_serial, "--credential", officer(home, 1), expect=1)  # already revoked: refused
    answer = ocsp(service, tmp_path, by_cli)
    assert f"{by_cli}: revoked" in answer and "Reason: keyCompromise" in answer
    text = crl_text(service, tmp_path)
    assert f"{cli_serial:X}" in text.upper().replace(":", "") and "Key Compromise" in text

    credential = officers.load_credential(officer(home, 2))
    url = f"{service}/api/ca/ec-issuing/certificates/{api_serial}/revoke"
    body = json.dumps({"reason": "superseded", "at": datetime.now(UTC).isoformat()}).encode()
    assert post(url, body, {})[0] == 401  # unsigned: no credential at all
    issuing_signature = officer_headers(credential, "ec-issuing", body)  # an issuing authorisation
    assert post(url, body, issuing_signature)[0] == 403
    other = officer_headers(credential, f"ec-issuing/{cli_serial}", body, action="ca.revoke")
    assert post(url, body, other)[0] == 403  # signed for another certificate
    status, done = post(url, body, officer_headers(credential, f"ec-issuing/{api_serial}", body, action="ca.revoke"))
    assert status == 200, done
    assert done["status"] == "revoked" and done["revocation_reason"] == "superseded"
    again = post(url, body, officer_headers(credential, f"ec-issuing/{api_serial}", body, action="ca.revoke"))
    assert again[0] == 409 and again[1]["code"] == "already_revoked"
    answer = ocsp(service, tmp_path, by_api)
    assert f"{by_api}: revoked" in answer and "Reason: superseded" in answer
    text = crl_text(service, tmp_path).upper().replace(":", "")
    assert f"{api_serial:X}" in text and f"{cli_serial:X}" in text
    with urllib.request.urlopen(f"{service}/api/ca/ec-issuing/certificates/{api_serial}") as shown:
        assert json.loads(shown.read())["status"] == "revoked"
