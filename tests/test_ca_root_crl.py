"""A root CA's CRL: signed under dual control when `trustctl ca init` makes the hierarchy,
stored, published over HTTP, re-signed by `trustctl ca crl` after an issuing CA is revoked.
Judged by the openssl CLI and by path validation fetching from the served endpoints."""

import urllib.request
from datetime import timedelta

import pytest
from asn1crypto import crl as asn1_crl, pem

from ca import authority
from ca.authority import sign_root_crl
from ca.crl import current_crl
from trust.errors import InvalidInput
from trust.path import validate_path
from trust.report import CheckName as C, CheckStatus as S
from trust.revocation import Fetcher

from tests.oracles import openssl
from tests.test_ca_cli import cli, officer
from tests.test_ca_csr import USCC


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as answer:
        assert answer.status == 200
        return answer.read()


def test_root_crl_is_published_and_resigned_after_revoking_the_issuing_ca(home, service, tmp_path):
    pair = ("--credential", officer(home, 1), "--credential", officer(home, 2))
    cli("init", "ec", "--family", "ecdsa", *pair)
    root = tmp_path / "root.pem"
    issuing = tmp_path / "issuing.pem"
    root.write_text(cli("show", "ec-root", "--pem"))
    issuing.write_text(cli("show", "ec-issuing", "--pem"))
    cli("issue", "ec-issuing", "--profile", "organisation-signing", "--generate-key", "org/test",
        "--subject", f"/C=CN/O=演示单位/CN=签章/organizationIdentifier={USCC}", "--out", tmp_path / "leaf.pem", "--credential", officer(home, 3))

    first = fetch(f"{service}/ca/ec-root/crl")
    crl_pem = tmp_path / "root-crl.pem"
    crl_pem.write_bytes(pem.armor("X509 CRL", first))
    text = openssl("crl", "-in", crl_pem, "-CAfile", root, "-text").stdout.decode()  # signature verified
    assert "No Revoked Certificates" in text and "X509v3 CRL Number" in text
    tbs = asn1_crl.CertificateList.load(first)["tbs_cert_list"]
    assert tbs["next_update"].native - tbs["this_update"].native >= timedelta(days=365)
    assert fetch(f"{service}/ca/ec-root/crl") == first  # the stored CRL, not rebuilt

    leaf = (tmp_path / "leaf.pem").read_bytes()
    result = validate_path(leaf, roots=[root.read_bytes()], intermediates=[issuing.read_bytes()],
                           fetch=Fetcher(frozenset({"127.0.0.1"})))
    assert result.status(C.CHAIN) == S.PASSED
    assert result.status(C.REVOCATION) == S.PASSED, result
    assert "ec Issuing CA" in result.checks[2].reason.en  # checked against the root's CRL
    # openssl agrees, with both CRLs as served
    crls = tmp_path / "crls.pem"
    crls.write_bytes(pem.armor("X509 CRL", first) + pem.armor("X509 CRL", fetch(f"{service}/ca/ec-issuing/crl")))
    openssl("verify", "-crl_check_all", "-CAfile", root, "-untrusted", issuing, "-CRLfile", crls,
            tmp_path / "leaf.pem")

    serial = openssl("x509", "-in", issuing, "-noout", "-serial").stdout.decode().strip().split("=")[1]
    out = cli("revoke", "ec-root", f"0x{serial}", "--reason", "cACompromise", "--credential", officer(home, 1))
    assert "trustctl ca crl ec-root" in out
    assert fetch(f"{service}/ca/ec-root/crl") == first  # published only once re-signed
    cli("crl", "ec-root", "--credential", officer(home, 1), expect=1)  # one officer is not enough: refused
    assert "CRL 2 of ec-root" in cli("crl", "ec-root", *pair)
    second = fetch(f"{service}/ca/ec-root/crl")
    crl_pem.write_bytes(pem.armor("X509 CRL", second))
    text = openssl("crl", "-in", crl_pem, "-CAfile", root, "-text").stdout.decode()
    assert serial.upper() in text.upper().replace(":", "") and "CA Compromise" in text

    result = validate_path(leaf, roots=[root.read_bytes()], intermediates=[issuing.read_bytes()],
                           fetch=Fetcher(frozenset({"127.0.0.1"})))
    assert result.status(C.REVOCATION) == S.FAILED
    crls.write_bytes(pem.armor("X509 CRL", second) + pem.armor("X509 CRL", fetch(f"{service}/ca/ec-issuing/crl")))
    refused = openssl("verify", "-crl_check_all", "-CAfile", root, "-untrusted", issuing, "-CRLfile", crls,
                      tmp_path / "leaf.pem", check=False)
    assert refused.returncode != 0 and b"certificate revoked" in refused.stdout + refused.stderr


def test_sm2_root_crl_at_creation_and_only_roots_are_resigned(session, keystore, creds):
    root, issuing = authority.create_hierarchy(session, keystore, "gm", approval=creds)
    session.commit()
    assert root.crl_number == 1
    der = current_crl(session, keystore, root)
    parsed = asn1_crl.CertificateList.load(der)
    assert parsed["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert "revoked_certificates" not in parsed["tbs_cert_list"].native or \
        not parsed["tbs_cert_list"]["revoked_certificates"].native
    assert "SM2-with-SM3" in openssl("crl", "-inform", "DER", "-text", "-noout", input=der).stdout.decode()
    with pytest.raises(InvalidInput, match="not a root CA"):
        sign_root_crl(session, keystore, issuing, approval=creds)
    with pytest.raises(InvalidInput, match="security officers' approval"):
        sign_root_crl(session, keystore, root, approval=creds[:1])
