"""trust/x509.py: corpus SM2 certificates chain as MANIFEST.tsv says; our test certificates
(tests/certs.py) pass `openssl verify` link by link; path rules (CA flag, keyCertSign,
validity, same-DN trap) are enforced."""

import csv
import re
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from hypothesis import given, settings, strategies as st

from seal.verify import _certificate_checks
from trust.errors import InvalidInput, InvalidSignature
from trust.path import validate_path
from trust.report import CheckName, CheckName as C, CheckStatus as S, Code
from trust.x509 import load_certificates, parse_certificate, signing_usage_problem, verify_issued_by

from tests.certs import make_intermediate, make_leaf, make_root
from tests.oracles import STANDARD_ID, openssl, shared_file


def _corpus() -> dict[str, object]:
    certs = {}
    for path in sorted(shared_file("corpus", "certs").iterdir()):
        for index, cert in enumerate(load_certificates(path.read_bytes())):
            certs[f"certs/{path.name}" + (f"#{index}" if index else "")] = cert
    return certs


def _claims():
    """(subject file, issuer file, verifies?) from the manifest's CHAIN notes."""
    claims = []
    with shared_file("corpus", "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if not row["path"].startswith("certs/"):
                continue
            for note in re.findall(r"CHAIN: (cert(?:#\d)? signature (?:VERIFIES|does NOT verify) with key of "
                                   r"(?:same-DN cert )?certs/\S+?)(?: \(|;|$)", row["what_it_is"]):
                index = re.match(r"cert(#\d)?", note).group(1) or ""
                issuer = re.search(r"(certs/\S+)$", note).group(1)
                claims.append((row["path"] + index, issuer, "VERIFIES" in note))
    return claims


CLAIMS = _claims()


@pytest.fixture(scope="module")
def corpus():
    return _corpus()


def test_every_corpus_certificate_parses(corpus):
    assert len(corpus) >= 35
    for name, cert in corpus.items():
        assert cert.subject and cert.is_sm2, name


@pytest.mark.parametrize("subject,issuer,verifies", CLAIMS, ids=[f"{s}<-{i}" for s, i, _ in CLAIMS])
def test_corpus_links_as_the_manifest_says(corpus, subject, issuer, verifies):
    if verifies:
        verify_issued_by(corpus[subject], corpus[issuer])
    else:
        with pytest.raises(InvalidSignature):
            verify_issued_by(corpus[subject], corpus[issuer])


def _chain(leaf, roots=(), intermediates=(), at=None):
    """The chain check of trust.path, the one validator (its certificate and revocation
    checks are tested in test_path_validation.py)."""
    result = validate_path(leaf, roots=list(roots), intermediates=intermediates, at=at, leaf_usage=None)
    (chain,) = [c for c in result.checks if c.check == C.CHAIN]
    return chain, result.path


def test_same_dn_is_not_proof_of_issuance(corpus):
    """Tongsuo's sm2-cert.pem has its issuer's DN but is not self-signed."""
    leaf, root = corpus["certs/tongsuo__sm2-cert.pem"], corpus["certs/tongsuo__sm2-root-cert.pem"]
    at = datetime(2024, 1, 1, tzinfo=UTC)
    assert leaf.subject_der == leaf.issuer_der
    assert _chain(leaf, [root], at=at)[0].status is S.PASSED
    # trusting an end entity directly anchors it (RFC 5280 §6.1: the relying party chose it)
    assert _chain(leaf, [leaf], at=at)[0].status is S.PASSED
    impostor, _ = _chain(corpus["certs/tongsuo__sm2_client_sign.crt"], [root], at=at)
    assert impostor.status is S.INDETERMINATE and impostor.code is Code.NO_CERTIFICATE_CHAIN_FOUND


def test_tongsuo_chain_and_expired_certificates(corpus):
    root, sub = corpus["certs/tongsuo__sm2_chain-ca.crt"], corpus["certs/tongsuo__sm2_chain-ca.crt#1"]
    at = datetime(2024, 1, 1, tzinfo=UTC)
    good, path = _chain(corpus["certs/tongsuo__sm2_client_sign.crt"], [root], [sub], at=at)
    assert good.status is S.PASSED and len(path) == 3
    expired, _ = _chain(corpus["certs/tongsuo__sm2_client_sign_expire.crt"], [root], [sub], at=at)
    assert expired.status is S.FAILED and "not valid" in expired.reason.en
    assert _chain(corpus["certs/tongsuo__sm2_client_sign.crt"], [root], at=at)[0].status is S.INDETERMINATE
    assert _chain(corpus["certs/tongsuo__sm2_client_sign.crt"])[0].status is S.INDETERMINATE  # no roots


def test_noza_certificates_are_rejected(corpus):
    """Signed without Z_A: not SM2 as GM/T 0009 defines it."""
    with pytest.raises(InvalidSignature):
        verify_issued_by(corpus["certs/tongsuo__sm2-noza-cert.pem"], corpus["certs/tongsuo__sm2-noza-root-cert.pem"])


def test_ofdrw_root_without_key_cert_sign_is_a_warning(corpus):
    """The ofdrw test roots are CA:TRUE with KeyUsage lacking keyCertSign. As trust anchors
    (RFC 5280 §6.1: an anchor is a name and a key the relying party chose) they still anchor
    the path, with a WARNING naming the defect; `openssl verify` refuses it outright, which
    is what we do for an intermediate with the same defect (test below)."""
    root = corpus["certs/ofdrw__ROOT_p12_cert_0x1719d2bdec7.pem"]
    user = corpus["certs/ofdrw__USER_p12_cert_0x1719d2dab60.pem"]
    result, _ = _chain(user, [root], at=datetime(2021, 1, 1, tzinfo=UTC))
    assert result.status is S.WARNING and "keyCertSign" in result.reason.en
    late, _ = _chain(user, [root], at=datetime(2023, 1, 1, tzinfo=UTC))
    assert late.status is S.FAILED  # the user certificate expired in 2022


def test_unknown_issuers_are_indeterminate(corpus):
    roots = [c for c in corpus.values() if c.self_issued]
    for name in ("certs/realworld__antchain_v4__ses-signer_16030000101c.cer",
                 "certs/realworld__dianju_v4__ses-signer_778800000023.cer"):
        at = corpus[name].not_before + timedelta(days=1)
        assert _chain(corpus[name], roots, at=at)[0].status is S.INDETERMINATE


def test_our_certificates_pass_openssl_link_by_link(tmp_path):
    root = make_root("Oracle Root")
    inter = make_intermediate(root, "Oracle CA")
    leaf = make_leaf(inter, "Oracle Leaf")
    for name, issued in (("root", root), ("inter", inter), ("leaf", leaf)):
        (tmp_path / f"{name}.pem").write_text(issued.pem)
    openssl("verify", "-CAfile", tmp_path / "root.pem", "-vfyopt", STANDARD_ID, tmp_path / "inter.pem")
    openssl("verify", "-partial_chain", "-CAfile", tmp_path / "inter.pem", "-vfyopt", STANDARD_ID, tmp_path / "leaf.pem")
    ours, path = _chain(leaf.cert_der, [root.cert_der], [inter.cert_der])
    assert ours.status is S.PASSED and len(path) == 3
    parsed = parse_certificate(leaf.pem)
    assert parsed.key_usage == {"digital_signature", "non_repudiation"} and parsed.ca is False
    assert signing_usage_problem(parsed) is None


def test_path_rules_agree_with_openssl(tmp_path):
    root = make_root("Rule Root")
    no_sign = make_intermediate(root, "CA Without keyCertSign", key_usage={"digital_signature"})
    leaf = make_leaf(no_sign, "Leaf Under Bad CA")
    (tmp_path / "ca.pem").write_text(no_sign.pem)
    (tmp_path / "leaf.pem").write_text(leaf.pem)
    refused = openssl("verify", "-partial_chain", "-CAfile", tmp_path / "ca.pem", "-vfyopt", STANDARD_ID,
                      tmp_path / "leaf.pem", check=False)
    assert refused.returncode != 0
    result, _ = _chain(leaf.cert_der, [root.cert_der], [no_sign.cert_der])
    assert result.status is S.FAILED and "keyCertSign" in result.reason.en
    not_ca = make_leaf(root, "End Entity")
    under = make_leaf(not_ca, "Issued By End Entity")
    assert _chain(under.cert_der, [root.cert_der], [not_ca.cert_der])[0].status is S.FAILED
    now = datetime.now(UTC)
    future = make_leaf(root, "Not Yet", not_before=now + timedelta(days=1), not_after=now + timedelta(days=2))
    assert _chain(future.cert_der, [root.cert_der])[0].status is S.FAILED
    forged = bytearray(leaf.cert_der)
    forged[-5] ^= 1
    with pytest.raises(InvalidSignature):
        verify_issued_by(parse_certificate(bytes(forged)), parse_certificate(no_sign.cert_der))


def test_international_certificates_through_openssl(tmp_path):
    for algorithm in (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-newkey", "rsa:2048"]):
        openssl("req", "-x509", *algorithm, "-nodes", "-keyout", tmp_path / "k.pem", "-out", tmp_path / "c.pem",
                "-subj", "/CN=International", "-days", "2")
        cert = parse_certificate((tmp_path / "c.pem").read_bytes())
        assert not cert.is_sm2
        verify_issued_by(cert, cert)
        assert _chain(cert, [cert])[0].status is S.PASSED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_invalid_input(data):
    try:
        parse_certificate(data)
    except InvalidInput:
        pass


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000))
def test_bit_flips_are_invalid_input_or_parse(position):
    der = bytearray(_FUZZ_CERT)
    der[position % len(der)] ^= 0x10
    try:
        parse_certificate(bytes(der))
    except InvalidInput:
        pass


_FUZZ_CERT = make_root("Fuzz Root").cert_der



def test_a_certificate_naming_a_crl_leaves_revocation_open():
    """Revocation is NOT_APPLICABLE only for a trusted certificate that names no service;
    one that names a CRL stays INDETERMINATE until CRL/OCSP checking exists."""
    root = make_root()
    plain = make_leaf(root)
    assert not parse_certificate(plain.cert_der).names_revocation_service
    cert = asn1_x509.Certificate.load(plain.cert_der)
    tbs = cert["tbs_certificate"]
    tbs["extensions"].append({"extn_id": "crl_distribution_points", "critical": False, "extn_value": [
        {"distribution_point": asn1_x509.DistributionPointName(
            name="full_name", value=[asn1_x509.GeneralName(name="uniform_resource_identifier",
                                                            value="http://127.0.0.1/ca.crl")])}]})
    tbs_der = tbs.dump(force=True)
    signed = asn1_x509.Certificate({"tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
                                    "signature_algorithm": cert["signature_algorithm"],
                                    "signature_value": root.sign(tbs_der)}).dump()
    with_crl = parse_certificate(signed)
    assert with_crl.names_revocation_service
    now = datetime.now(UTC)
    for certificate, expected in ((parse_certificate(plain.cert_der), S.NOT_APPLICABLE),
                                  (with_crl, S.INDETERMINATE)):
        checks = {c.check: c.status for c in _certificate_checks(certificate, now, (root.cert_der,), "签名者", "signer")}
        assert checks[CheckName.CHAIN] is S.PASSED
        assert checks[CheckName.REVOCATION] is expected


def test_a_certificate_signature_found_good_is_not_checked_again_and_a_changed_one_still_fails(monkeypatch):
    from trust import x509
    from trust.sm2 import SM2PublicKey
    root = make_root("Cache Root")
    leaf = make_leaf(root, "Cache Leaf")
    cert, issuer = parse_certificate(leaf.cert_der), parse_certificate(root.cert_der)
    checked = []
    original = SM2PublicKey.verify_digest
    monkeypatch.setattr(SM2PublicKey, "verify_digest", lambda self, *a, **k: checked.append(1) or original(self, *a, **k))
    verify_issued_by(cert, issuer)
    verify_issued_by(cert, issuer)
    assert len(checked) == 1
    forged = bytearray(leaf.cert_der)
    forged[-5] ^= 1
    with pytest.raises(InvalidSignature):
        verify_issued_by(parse_certificate(bytes(forged)), issuer)
    with pytest.raises(InvalidSignature):  # a failure is never kept: checked again, and fails again
        verify_issued_by(parse_certificate(bytes(forged)), issuer)
    assert len(checked) == 3
    monkeypatch.setattr(x509, "_SIGNATURES_KEPT", 1)
    other = make_leaf(root, "Cache Other")
    verify_issued_by(parse_certificate(other.cert_der), issuer)
    assert len(x509._SIGNATURES_CHECKED) <= 1  # bounded
