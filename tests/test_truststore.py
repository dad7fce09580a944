"""The trust store (trust.truststore) on SQLite and PostgreSQL, path validation by
purpose, and `trustctl trust import|list|remove` by a security officer."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from api.cli.trust import trust as trust_command
from trust import audit, truststore
from trust.errors import InvalidInput, NotFound
from trust.path import validate_path
from trust.report import CheckName as C, CheckStatus as S
from trust.x509 import parse_certificate

from certs import make_intermediate, make_leaf, make_root
from custody import demo_custody
from oracles import openssl, shared_file


def test_import_list_remove(session):
    root, other = make_root("Province Root"), make_root("National Root")
    bundle = (root.pem + other.pem).encode()
    added = truststore.import_roots(session, "seal", bundle, actor="officer-1")
    assert {r.subject for r in added} == {parse_certificate(root.cert_der).subject, parse_certificate(other.cert_der).subject}
    assert truststore.import_roots(session, "seal", root.cert_der, actor="officer-1") == []  # DER, already there
    truststore.import_roots(session, "licence", root.cert_der, actor="officer-1")
    session.commit()
    assert len(truststore.list_roots(session)) == 3
    assert [r.purpose for r in truststore.list_roots(session, "licence")] == ["licence"]
    assert {c.der for c in truststore.trusted_roots(session, "seal")} == {root.cert_der, other.cert_der}
    assert truststore.trusted_roots(session, "tls") == ()
    fingerprint = truststore.fingerprint(parse_certificate(other.cert_der))
    truststore.remove_root(session, "seal", fingerprint.upper(), actor="officer-2")
    session.commit()
    assert [c.der for c in truststore.trusted_roots(session, "seal")] == [root.cert_der]
    with pytest.raises(NotFound):
        truststore.remove_root(session, "seal", fingerprint, actor="officer-2")
    actions = [(r.actor, r.action) for r in session.execute(select(audit.audit_log)).all()]
    assert actions.count(("officer-1", "trust.root.import")) == 3
    assert ("officer-2", "trust.root.remove") in actions
    # the read-only view shows the store without the certificate bytes
    view = session.execute(text("SELECT purpose, fingerprint FROM trust_roots_view ORDER BY purpose")).all()
    assert [tuple(v) for v in view] == [("licence", fingerprint_of(root)), ("seal", fingerprint_of(root))]


def fingerprint_of(issued) -> str:
    return truststore.fingerprint(parse_certificate(issued.cert_der))


def test_fingerprint_matches_openssl(tmp_path):
    root = make_root()
    (tmp_path / "root.pem").write_text(root.pem)
    out = openssl("x509", "-in", tmp_path / "root.pem", "-noout", "-fingerprint", "-sha256").stdout.decode()
    assert out.strip().split("=", 1)[1].replace(":", "").lower() == fingerprint_of(root)


def test_bad_input(session):
    with pytest.raises(InvalidInput):
        truststore.import_roots(session, "seals", make_root().cert_der, actor="o")
    for junk in (b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                 b"\x30" * (truststore.MAX_FILE_BYTES + 1)):
        with pytest.raises(InvalidInput):
            truststore.import_roots(session, "seal", junk, actor="o")
    assert truststore.list_roots(session) == []


def test_validate_by_purpose(session):
    root = make_root()
    inter = make_intermediate(root)
    leaf = make_leaf(inter)
    truststore.import_roots(session, "seal", root.cert_der, actor="o")
    session.commit()
    sealed = validate_path(leaf.cert_der, purpose="seal", session=session, intermediates=[inter.cert_der])
    assert sealed.status(C.CHAIN) == S.PASSED
    other_purpose = validate_path(leaf.cert_der, purpose="token", session=session, intermediates=[inter.cert_der])
    assert other_purpose.status(C.CHAIN) == S.INDETERMINATE


def test_corpus_bundle_as_roots(session):
    # another CA's bundle (root and sub CA in one PEM file) imports as it is
    bundle = shared_file("corpus", "certs", "tongsuo__sm2_chain-ca.crt").read_bytes()
    assert len(truststore.import_roots(session, "licence", bundle, actor="o")) == 2
    leaf = shared_file("corpus", "certs", "tongsuo__sm2_client_sign.crt").read_bytes()
    result = validate_path(leaf, purpose="licence", session=session, leaf_usage=None)
    assert result.status(C.CHAIN) == S.PASSED


@pytest.fixture
def officer_home(tmp_path, db_url, monkeypatch):
    return demo_custody(tmp_path, monkeypatch, db_url)

def cli(*args, expect: int = 0) -> str:
    result = CliRunner().invoke(trust_command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def test_cli(officer_home, tmp_path):
    credential = officer_home / "officers" / "officer-1.pem"
    root = make_root("CLI Root")
    (tmp_path / "root.pem").write_text(root.pem)
    (tmp_path / "root.der").write_bytes(root.cert_der)
    assert "empty" in cli("list")
    out = cli("import", "seal", tmp_path / "root.pem", "--credential", credential)
    assert fingerprint_of(root) in out
    assert "already" in cli("import", "seal", tmp_path / "root.der", "--credential", credential)
    listed = json.loads(cli("list", "--json"))
    assert [(r["purpose"], r["fingerprint"]) for r in listed] == [("seal", fingerprint_of(root))]
    assert cli("list", "--purpose", "tls", "--json").strip() == "[]"
    (tmp_path / "junk.pem").write_bytes(b"junk")
    assert "X.509" in cli("import", "seal", tmp_path / "junk.pem", "--credential", credential, expect=3)
    cli("import", "nowhere", tmp_path / "root.pem", "--credential", credential, expect=4)  # click refuses the purpose
    cli("remove", "seal", fingerprint_of(root), "--credential", credential)
    assert "empty" in cli("list")
    cli("remove", "seal", fingerprint_of(root), "--credential", credential, expect=3)
