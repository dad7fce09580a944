"""CA hierarchies and issuance, judged by the openssl CLI."""

import json
import random

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import select

from ca import authority, profiles
from ca.models import ca_certificate
from trust import audit
from trust.algorithms import signature_algorithm
from trust.errors import InvalidInput, NotFound, UnsupportedAlgorithm
from trust.ids import generate_uscc
from trust.sm2 import SM2PrivateKey

from tests.fixtures.ca import write_pem
from tests.oracles import STANDARD_ID, openssl

USCC = generate_uscc(random.Random(4))
ORG = {"C": "CN", "O": "演示局 Demo Bureau", "CN": "演示局签章", "organizationIdentifier": USCC}


def actions(session):
    return [r.action for r in session.execute(select(audit.audit_log).order_by(audit.audit_log.c.seq))]


def test_sm2_hierarchy_issues_a_chain_openssl_verifies_link_by_link(session, keystore, creds, tmp_path):
    root, issuing = authority.create_hierarchy(session, keystore, "sm2", approval=creds[:2])
    leaf = authority.issue(session, keystore, "sm2-issuing", "organisation-signing", subject=ORG,
                           public_key=SM2PrivateKey.generate().public_key())
    session.commit()
    root_pem, inter_pem = write_pem(tmp_path / "r.pem", root.certificate), write_pem(tmp_path / "i.pem", issuing.certificate)
    leaf_pem = write_pem(tmp_path / "l.pem", leaf.der)
    openssl("verify", "-CAfile", root_pem, "-vfyopt", STANDARD_ID, inter_pem)
    openssl("verify", "-partial_chain", "-CAfile", inter_pem, "-vfyopt", STANDARD_ID, leaf_pem)
    text = openssl("x509", "-in", leaf_pem, "-noout", "-text").stdout.decode()
    assert "1.2.156.10197.1.501" in text or "SM2-with-SM3" in text
    assert "Digital Signature, Non Repudiation" in text
    assert "URI:http://127.0.0.1:8000/ca/sm2-issuing/crl" in text
    assert "OCSP - URI:http://127.0.0.1:8000/ocsp/sm2-issuing" in text
    assert "CA Issuers - URI:http://127.0.0.1:8000/ca/sm2-issuing/cert" in text
    assert USCC in text and "X509v3 Subject Key Identifier" in text and "X509v3 Authority Key Identifier" in text
    # GM/T 0015: the signature algorithm carries no parameters.
    assert leaf.der.count(bytes.fromhex("06082a811ccf5501831d0500")) == 0
    assert 0 < leaf.serial < 1 << 127
    assert {"approval.execute", "ca.create", "ca.issue"} <= set(actions(session))
    assert audit.verify_chain(session).ok


@pytest.mark.parametrize("family", ["ecdsa", "rsa"])
def test_international_chains_verify_whole(family, session, keystore, creds, tmp_path):
    root, issuing = authority.create_hierarchy(session, keystore, family, family, approval=creds[1:])
    key = signature_algorithm("ES256").generate_key()
    tsa = authority.issue(session, keystore, f"{family}-issuing", "tsa", subject={"CN": "Demo TSA"},
                          public_key=key.public_key())
    server = authority.issue(session, keystore, f"{family}-issuing", "server", subject={"CN": "trust.example"},
                             public_key=key.public_key(), dns_names=["trust.example"])
    session.commit()
    root_pem, inter_pem = write_pem(tmp_path / "r.pem", root.certificate), write_pem(tmp_path / "i.pem", issuing.certificate)
    for cert, purpose in ((tsa, "timestampsign"), (server, "sslserver")):
        leaf_pem = write_pem(tmp_path / "l.pem", cert.der)
        out = openssl("verify", "-CAfile", root_pem, "-untrusted", inter_pem, "-purpose", purpose, leaf_pem)
        assert b"OK" in out.stdout
    text = openssl("x509", "-in", write_pem(tmp_path / "t.pem", tsa.der), "-noout", "-text").stdout.decode()
    assert "X509v3 Extended Key Usage: critical" in text and "Time Stamping" in text


def test_ocsp_signer_profile_carries_nocheck(session, keystore, creds, tmp_path):
    authority.create_hierarchy(session, keystore, "sm2", approval=creds[:2])
    cert = authority.issue_with_new_key(session, keystore, "sm2-issuing", "ocsp-signer",
                                        subject={"CN": "sm2 OCSP"}, label="ocsp/sm2-issuing")
    session.commit()
    assert cert.key_id and keystore.get(session, cert.key_id).usages == {"ocsp"}
    text = openssl("x509", "-in", write_pem(tmp_path / "o.pem", cert.der), "-noout", "-text").stdout.decode()
    assert "OCSP Signing" in text and "OCSP No Check" in text and "CRL Distribution" not in text


def test_root_use_needs_enough_officers(session, keystore, creds):
    with pytest.raises(InvalidInput, match="2 officer credentials"):
        authority.create_hierarchy(session, keystore, "sm2", approval=creds[:1])
    with pytest.raises(NotFound):
        authority.get_authority(session, "sm2-root")


def test_refusals_issue_nothing_and_are_audited(session, keystore, creds):
    authority.create_hierarchy(session, keystore, "sm2", approval=creds[:2])
    session.commit()
    key = SM2PrivateKey.generate().public_key()
    bad = [
        dict(profile_name="organisation-signing", subject={**ORG, "organizationIdentifier": USCC[:-1] + "0"
                                                           if USCC[-1] != "0" else USCC[:-1] + "1"}),
        dict(profile_name="organisation-signing", subject={"CN": "no organisation"}),
        dict(profile_name="nonexistent", subject={"CN": "x"}),
        dict(profile_name="server", subject={"CN": "x"}),
        dict(profile_name="personal-signing", subject={"CN": "x", "C": "US"}),
    ]
    for case in bad:
        with pytest.raises(InvalidInput):
            authority.issue(session, keystore, "sm2-issuing", case["profile_name"], subject=case["subject"],
                            public_key=key)
        session.commit()
    with pytest.raises(InvalidInput, match="root CA"):
        authority.issue(session, keystore, "sm2-root", "personal-signing", subject={"CN": "x"}, public_key=key)
    session.commit()
    first = authority.issue(session, keystore, "sm2-issuing", "personal-signing", subject={"CN": "张三"},
                            public_key=key, serial=12345)
    session.commit()
    with pytest.raises(InvalidInput, match="already issued"):
        authority.issue(session, keystore, "sm2-issuing", "personal-signing", subject={"CN": "李四"},
                        public_key=key, serial=first.serial)
    session.commit()
    issued = session.execute(select(ca_certificate).where(ca_certificate.c.issuer == "sm2-issuing")).all()
    assert [r.serial for r in issued] == ["12345"]
    assert actions(session).count("ca.refuse") == len(bad) + 2
    assert audit.verify_chain(session).ok


def test_unsupported_key_refused(session, keystore, creds):
    from cryptography.hazmat.primitives.asymmetric import ec
    authority.create_hierarchy(session, keystore, "sm2", approval=creds[:2])
    session.commit()
    weak = ec.generate_private_key(ec.SECP521R1()).public_key()
    with pytest.raises(UnsupportedAlgorithm):
        authority.issue(session, keystore, "sm2-issuing", "personal-signing", subject={"CN": "x"}, public_key=weak)
    session.commit()
    assert session.execute(select(ca_certificate).where(ca_certificate.c.issuer == "sm2-issuing")).all() == []
    refused = session.execute(select(audit.audit_log).where(audit.audit_log.c.action == "ca.refuse")).all()
    assert [(r.target, json.loads(r.detail)["code"]) for r in refused] == [
        ("sm2-issuing:personal-signing", UnsupportedAlgorithm.code)]
    assert "ca.issue" not in actions(session)


def test_unknown_family_refused(session, keystore, creds):
    with pytest.raises(UnsupportedAlgorithm, match="unknown CA family"):
        authority.create_hierarchy(session, keystore, "dsa", "dsa", approval=creds[:2])
    session.commit()
    assert authority.list_authorities(session) == []
    assert keystore.list(session) == []  # no key was generated for it
    refused = session.execute(select(audit.audit_log).where(audit.audit_log.c.action == "ca.refuse")).all()
    assert [r.target for r in refused] == ["ca.create:dsa"]


def test_subject_parsing():
    name = profiles.subject_name("/C=CN/O=Org/CN=Name")
    assert profiles.subject_fields(name) == {"country_name": "CN", "organization_name": "Org", "common_name": "Name"}
    for bad in ("C=CN", "/C=CHN", "/X=1", "/CN=", "/CN=a/CN=b"):
        with pytest.raises(InvalidInput):
            profiles.subject_name(bad)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*sorted(profiles.SHORT_NAMES), "X", "common_name"]),
                       st.text(max_size=300), max_size=6) | st.text(max_size=200))
def test_subjects_fail_only_with_our_errors(subject):
    try:
        name = profiles.subject_name(subject)
        for prof in profiles.PROFILES.values():
            try:
                profiles.check_subject(prof, name)
            except InvalidInput:
                pass
    except InvalidInput:
        pass
