"""Certificate policies under TRUST_POLICY_OID, judged by `openssl x509 -text` and
`openssl verify -policy … -explicit_policy`; path validation still accepts the chains."""

import pytest
from asn1crypto import tsp, x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from ca import authority, profiles, tsa
from ca.models import ca_certificate
from trust.errors import InvalidInput
from trust.path import validate_path
from trust.report import CheckName as C, CheckStatus as S
from trust.sm2 import SM2PrivateKey

from tests.fixtures.ca import ORG, write_pem
from tests.oracles import openssl
from tests.test_ca_cli import cli, officer

ARC = "1.2.156.99999.7"  # any arc a province might register
NAMED = {"C": "CN", "O": "Trust", "CN": "Named"}
SUBJECTS = {"seal-maker": ORG, "organisation-signing": ORG, "personal-signing": {"C": "CN", "CN": "张三"},
            "encryption": NAMED, "tsa": NAMED, "ocsp-signer": NAMED, "server": NAMED}


def policies(der: bytes) -> list[str]:
    cert = asn1_x509.Certificate.load(der)
    return [p["policy_identifier"].dotted for p in cert.certificate_policies_value or []]


def test_each_leaf_profile_carries_its_policy_under_the_configured_arc(session, keystore, creds, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("TRUST_POLICY_OID", ARC)
    root, issuing = authority.create_hierarchy(session, keystore, "ec", "ecdsa", approval=creds)
    assert policies(root.certificate) == [] and policies(issuing.certificate) == ["2.5.29.32.0"]
    expected = {"seal-maker": 1, "organisation-signing": 2, "personal-signing": 3, "encryption": 4,
                "tsa": 5, "ocsp-signer": 6, "server": 7}
    for name, number in expected.items():
        key = rsa.generate_private_key(65537, 2048) if name == "encryption" else ec.generate_private_key(ec.SECP256R1())
        leaf = authority.issue(session, keystore, "ec-issuing", name, subject=SUBJECTS[name],
                               public_key=key.public_key(), dns_names=("trust.example.cn",) if name == "server" else ())
        assert policies(leaf.der) == [f"{ARC}.{number}"]
        text = openssl("x509", "-noout", "-text", "-in", write_pem(tmp_path / f"{name}.pem", leaf.der)).stdout.decode()
        assert f"Policy: {ARC}.{number}" in text


def test_openssl_verify_requires_the_policy_explicitly(session, keystore, creds, tmp_path):
    root, issuing = authority.create_hierarchy(session, keystore, "ec", "ecdsa", approval=creds)
    leaf = authority.issue(session, keystore, "ec-issuing", "organisation-signing", subject=ORG,
                           public_key=ec.generate_private_key(ec.SECP256R1()).public_key())
    session.commit()
    oid = f"{profiles.policy_arc()}.2"
    assert policies(leaf.der) == [oid]
    chain = [str(write_pem(tmp_path / "root.pem", root.certificate)), "-untrusted",
             str(write_pem(tmp_path / "issuing.pem", issuing.certificate)), str(write_pem(tmp_path / "l.pem", leaf.der))]
    openssl("verify", "-policy", oid, "-explicit_policy", "-CAfile", *chain)
    other = f"{profiles.policy_arc()}.3"  # personal signing: not what this certificate is for
    refused = openssl("verify", "-policy", other, "-explicit_policy", "-CAfile", *chain, check=False)
    assert refused.returncode != 0 and b"policy" in (refused.stdout + refused.stderr).lower()

    result = validate_path(leaf.der, roots=[root.certificate], intermediates=[issuing.certificate])
    assert (result.status(C.CERTIFICATE), result.status(C.CHAIN)) == (S.PASSED, S.PASSED)


def test_sm2_chains_carry_the_policy_and_still_validate(session, keystore, creds):
    root, issuing = authority.create_hierarchy(session, keystore, "gm", approval=creds)
    leaf = authority.issue(session, keystore, "gm-issuing", "seal-maker", subject=ORG,
                           public_key=SM2PrivateKey.generate().public_key())
    assert policies(leaf.der) == [f"{profiles.policy_arc()}.1"]
    result = validate_path(leaf.der, roots=[root.certificate], intermediates=[issuing.certificate])
    assert result.status(C.CHAIN) == S.PASSED


def test_the_default_arc_is_the_example_arc(monkeypatch):
    monkeypatch.delenv("TRUST_POLICY_OID", raising=False)
    assert profiles.policy_arc() == "2.999.86.1" and tsa.stamping_policy() == "2.999.86.1.5"


def test_the_tsa_stamps_under_its_certificate_policy(session, keystore, creds, monkeypatch):
    monkeypatch.setenv("TRUST_POLICY_OID", ARC)
    authority.create_hierarchy(session, keystore, "ec", "ecdsa", approval=creds)
    signer_cert = authority.issue_with_new_key(session, keystore, "ec-issuing", "tsa", subject=NAMED, label="tsa/ec")
    assert policies(signer_cert.der) == [f"{ARC}.5"] and tsa.stamping_policy() == f"{ARC}.5"
    query = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 32}}).dump()
    answer = tsa.TimeStampResp.load(tsa.respond(session, keystore, query))
    info = answer["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["policy"].dotted == f"{ARC}.5"
    asking_for_the_old_placeholder = tsp.TimeStampReq({"version": "v1", "req_policy": "2.999.3161.1", "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 32}}).dump()
    refused = tsa.TimeStampResp.load(tsa.respond(session, keystore, asking_for_the_old_placeholder))
    assert refused["status"]["status"].native == "rejection"


@pytest.mark.parametrize("arc", ["", "2.999.", "3.1", "2.999.x", "1.2.01", "1." + ".".join(["1"] * 30)])
def test_a_malformed_arc_refuses_issuance(session, keystore, creds, monkeypatch, arc):
    authority.create_hierarchy(session, keystore, "ec", "ecdsa", approval=creds)
    session.commit()
    monkeypatch.setenv("TRUST_POLICY_OID", arc)
    with pytest.raises(InvalidInput, match="TRUST_POLICY_OID"):
        authority.issue(session, keystore, "ec-issuing", "organisation-signing", subject=ORG,
                        public_key=ec.generate_private_key(ec.SECP256R1()).public_key())
    session.commit()
    assert session.execute(select(ca_certificate).where(ca_certificate.c.profile != "ca")).first() is None


def test_ca_init_warns_while_the_example_arc_is_in_use(home, monkeypatch):  # home clears TRUST_*
    officers_ = ("--credential", officer(home, 1), "--credential", officer(home, 2))
    assert "TRUST_POLICY_OID" in cli("init", "sm2", *officers_)
    monkeypatch.setenv("TRUST_POLICY_OID", ARC)
    assert "TRUST_POLICY_OID" not in cli("init", "ecdsa", "--family", "ecdsa", *officers_)
