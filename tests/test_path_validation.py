"""Path validation (trust.path) and revocation (trust.revocation): SM2 chains built with
tests/certs.py, CRLs and OCSP responses built here with asn1crypto and served from a
loopback HTTP server, an ECDSA chain checked against `openssl verify -crl_check`, and the
corpus certificates chaining as the manifest says."""

import hashlib
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp, x509 as asn1_x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings, strategies as st

from trust import oids
from trust.errors import InvalidInput
from trust.path import validate_path
from trust.report import CheckName as C, CheckStatus as S
from trust.revocation import Fetcher, RevocationState, check_revocation
from trust.x509 import load_certificates, parse_certificate

from certs import Issued, make_intermediate, make_leaf, make_root
from oracles import openssl, shared_file

NOW = datetime.now(UTC).replace(microsecond=0)
SM2_ALG = {"algorithm": oids.SM2_WITH_SM3}


def statuses(result):
    return {c.check.value: c.status for c in result.checks}


# ---------------------------------------------------------------- building blocks

def with_services(issued: Issued, issuer: Issued, *, crl_url: str | None = None,
                  ocsp_url: str | None = None) -> Issued:
    """``issued`` with a CRL distribution point and/or AIA OCSP URL, re-signed by ``issuer``."""
    cert = asn1_x509.Certificate.load(issued.cert_der)
    tbs = asn1_x509.TbsCertificate.load(cert["tbs_certificate"].dump())
    extensions = list(tbs["extensions"])
    if crl_url:
        extensions.append({"extn_id": "crl_distribution_points", "critical": False, "extn_value": [
            {"distribution_point": {"full_name": [_uri(crl_url)]}}]})
    if ocsp_url:
        extensions.append({"extn_id": "authority_information_access", "critical": False, "extn_value": [
            {"access_method": "ocsp", "access_location": _uri(ocsp_url)}]})
    tbs["extensions"] = extensions
    signed = asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": SM2_ALG,
                                    "signature_value": issuer.key.sign(tbs.dump())})
    return Issued(signed.dump(), issued.key)


def _uri(url: str) -> asn1_x509.GeneralName:
    return asn1_x509.GeneralName(name="uniform_resource_identifier", value=url)


def serial_of(issued: Issued) -> int:
    return asn1_x509.Certificate.load(issued.cert_der).serial_number


def make_crl(issuer: Issued, revoked=(), *, this_update=None, next_update=None, signer: Issued | None = None) -> bytes:
    """An SM2 CRL by ``issuer`` listing (serial, date, reason) entries."""
    this_update = this_update or NOW - timedelta(hours=1)
    next_update = next_update or NOW + timedelta(days=1)
    entries = [{"user_certificate": serial, "revocation_date": asn1_x509.Time(name="utc_time", value=date),
                "crl_entry_extensions": [{"extn_id": "crl_reason", "critical": False, "extn_value": reason}]}
               for serial, date, reason in revoked]
    tbs = asn1_crl.TbsCertList({
        "version": "v2", "signature": SM2_ALG, "issuer": issuer.subject,
        "this_update": asn1_x509.Time(name="utc_time", value=this_update),
        "next_update": asn1_x509.Time(name="utc_time", value=next_update),
        "revoked_certificates": entries or None,
    })
    key = (signer or issuer).key
    return asn1_crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": SM2_ALG,
                                     "signature": key.sign(tbs.dump())}).dump()


def _key_hash(issued: Issued) -> bytes:
    spki = asn1_x509.Certificate.load(issued.cert_der)["tbs_certificate"]["subject_public_key_info"]
    return hashlib.sha1(spki["public_key"].contents[1:]).digest()


def make_ocsp_response(request_der: bytes | None, issuer: Issued, cert: Issued, status: str = "good", *,
                       signer: Issued | None = None, nonce: bytes | None = None, revoked_at=None,
                       next_update=None) -> bytes:
    """A signed OCSP response about ``cert``; the request's nonce is echoed unless ``nonce`` is given."""
    if request_der is not None and nonce is None:
        request = asn1_ocsp.OCSPRequest.load(request_der)
        for extension in request["tbs_request"]["request_extensions"] or []:
            if extension["extn_id"].native == "nonce":
                nonce = extension["extn_value"].native
    signer = signer or issuer
    cert_id = {"hash_algorithm": {"algorithm": "sha1"},
               "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),
               "issuer_key_hash": _key_hash(issuer), "serial_number": serial_of(cert)}
    if status == "revoked":
        cert_status = asn1_ocsp.CertStatus(name="revoked", value={
            "revocation_time": revoked_at or NOW - timedelta(days=1), "revocation_reason": "key_compromise"})
    else:
        cert_status = asn1_ocsp.CertStatus(name=status, value=None)
    tbs = asn1_ocsp.ResponseData({
        "responder_id": asn1_ocsp.ResponderId(name="by_key", value=_key_hash(signer)),
        "produced_at": NOW,
        "responses": [{"cert_id": cert_id, "cert_status": cert_status, "this_update": NOW - timedelta(minutes=1),
                       "next_update": next_update or NOW + timedelta(hours=1)}],
        "response_extensions": [{"extn_id": "nonce", "extn_value": nonce}] if nonce is not None else None,
    })
    basic = asn1_ocsp.BasicOCSPResponse({
        "tbs_response_data": tbs, "signature_algorithm": SM2_ALG, "signature": signer.key.sign(tbs.dump()),
        "certs": [asn1_x509.Certificate.load(signer.cert_der)] if signer is not issuer else None})
    return asn1_ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": basic}}).dump()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- validity, constraints, names

def test_valid_chain_without_services():
    root = make_root()
    inter = make_intermediate(root)
    leaf = make_leaf(inter)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=[inter.cert_der])
    assert statuses(result) == {"certificate": S.PASSED, "chain": S.PASSED, "revocation": S.NOT_APPLICABLE}
    assert len(result.path) == 3


def test_expired_and_not_yet_valid():
    root = make_root()
    expired = make_leaf(root, not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    future = make_leaf(root, not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=400))
    for leaf in (expired, future):
        result = validate_path(leaf.cert_der, roots=[root.cert_der])
        assert result.status(C.CERTIFICATE) == S.FAILED
        assert result.status(C.CHAIN) == S.FAILED
    # at a time inside the validity period the expired one was fine
    assert validate_path(expired.cert_der, roots=[root.cert_der], at=NOW - timedelta(days=10)).status(C.CHAIN) == S.PASSED


def test_expired_intermediate():
    root = make_root()
    inter = make_intermediate(root, not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    leaf = make_leaf(inter)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=[inter.cert_der])
    assert result.status(C.CHAIN) == S.FAILED
    assert "Intermediate" in result.checks[1].reason.en


def test_wrong_key_usage():
    root = make_root()
    no_cert_sign = make_intermediate(root, key_usage={"digital_signature"})
    leaf = make_leaf(no_cert_sign)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=[no_cert_sign.cert_der])
    assert result.status(C.CHAIN) == S.FAILED and "keyCertSign" in result.checks[1].reason.en
    encipher_only = make_leaf(root, key_usage={"key_encipherment"})
    assert validate_path(encipher_only.cert_der, roots=[root.cert_der]).status(C.CERTIFICATE) == S.FAILED
    assert validate_path(encipher_only.cert_der, roots=[root.cert_der],
                         leaf_usage=frozenset({"key_encipherment"})).status(C.CERTIFICATE) == S.PASSED


def test_not_a_ca():
    root = make_root()
    end_entity = make_leaf(root, key_usage={"digital_signature", "key_cert_sign"})
    leaf = make_leaf(end_entity)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=[end_entity.cert_der])
    assert result.status(C.CHAIN) == S.FAILED and "not a CA" in result.checks[1].reason.en


def test_broken_chain_wrong_signature_and_missing_intermediate():
    root = make_root()
    inter = make_intermediate(root)
    impostor = make_intermediate(root)  # same name, other key: the leaf is not signed by it
    leaf = make_leaf(inter)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=[impostor.cert_der])
    assert result.status(C.CHAIN) == S.FAILED and "does not verify" in result.checks[1].reason.en
    assert result.status(C.REVOCATION) == S.INDETERMINATE
    missing = validate_path(leaf.cert_der, roots=[root.cert_der])
    assert missing.status(C.CHAIN) == S.INDETERMINATE
    # with both same-name intermediates the right one is found (AKI/SKI first, the signature decides)
    both = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=[impostor.cert_der, inter.cert_der])
    assert both.status(C.CHAIN) == S.PASSED


def test_untrusted_root_and_no_roots():
    root, other = make_root(), make_root("Other Root")
    leaf = make_leaf(root)
    assert validate_path(leaf.cert_der, roots=[other.cert_der]).status(C.CHAIN) == S.INDETERMINATE
    assert validate_path(leaf.cert_der, roots=[]).status(C.CHAIN) == S.INDETERMINATE


def test_path_length_exceeded():
    root = make_root()
    ca1 = make_intermediate(root, "CA 1", path_length=0)
    ca2 = make_intermediate(ca1, "CA 2")
    leaf = make_leaf(ca2)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=[ca1.cert_der, ca2.cert_der])
    assert result.status(C.CHAIN) == S.FAILED and "path length" in result.checks[1].reason.en
    ok_root = make_root(path_length=1)
    ca1 = make_intermediate(ok_root, "CA 1")
    leaf = make_leaf(ca1)
    assert validate_path(leaf.cert_der, roots=[ok_root.cert_der], intermediates=[ca1.cert_der]).status(C.CHAIN) == S.PASSED
    tight_root = make_root(path_length=0)
    ca1 = make_intermediate(tight_root, "CA 1")
    leaf = make_leaf(ca1)
    assert validate_path(leaf.cert_der, roots=[tight_root.cert_der], intermediates=[ca1.cert_der]).status(C.CHAIN) == S.FAILED


def test_root_without_key_cert_sign_is_a_warning():
    root = make_root(key_usage={"digital_signature"})
    leaf = make_leaf(root)
    assert validate_path(leaf.cert_der, roots=[root.cert_der]).status(C.CHAIN) == S.WARNING


# ---------------------------------------------------------------- CRL

def test_crl_given_good_and_revoked():
    root = make_root()
    inter = make_intermediate(root)
    leaf = with_services(make_leaf(inter), inter, crl_url="http://crl.invalid/inter.crl")
    inter_s = with_services(inter, root, crl_url="http://crl.invalid/root.crl")
    root_crl, empty = make_crl(root), make_crl(inter)
    kwargs = dict(roots=[root.cert_der], intermediates=[inter_s.cert_der])
    good = validate_path(leaf.cert_der, crls=[root_crl, empty], **kwargs)
    assert good.status(C.REVOCATION) == S.PASSED
    revoked = make_crl(inter, [(serial_of(leaf), NOW - timedelta(days=2), "key_compromise")])
    result = validate_path(leaf.cert_der, crls=[root_crl, revoked], **kwargs)
    assert result.status(C.REVOCATION) == S.FAILED and "revoked" in result.checks[2].reason.en
    # revoked after the signing time for a reason other than key compromise: still good then
    superseded = make_crl(inter, [(serial_of(leaf), NOW - timedelta(days=2), "superseded")])
    earlier = validate_path(leaf.cert_der, crls=[root_crl, superseded], at=NOW - timedelta(days=5), **kwargs)
    assert earlier.status(C.REVOCATION) == S.PASSED
    # the intermediate revoked by the root's CRL
    root_revokes = make_crl(root, [(serial_of(inter_s), NOW - timedelta(days=1), "ca_compromise")])
    assert validate_path(leaf.cert_der, crls=[root_revokes, empty], **kwargs).status(C.REVOCATION) == S.FAILED
    # no CRL for the intermediate and no fetching: not VALID
    assert validate_path(leaf.cert_der, crls=[empty], **kwargs).status(C.REVOCATION) == S.INDETERMINATE


def test_crl_forged_stale_or_without_crl_sign_is_not_trusted():
    root = make_root()
    leaf = with_services(make_leaf(root), root, crl_url="http://crl.invalid/root.crl")
    stranger = make_root()
    forged = make_crl(root, signer=stranger)
    stale = make_crl(root, this_update=NOW - timedelta(days=3), next_update=NOW - timedelta(days=1))
    for crl in (forged, stale, b"\x30\x03\x02\x01\x00", b"not a crl"):
        assert validate_path(leaf.cert_der, roots=[root.cert_der], crls=[crl]).status(C.REVOCATION) == S.INDETERMINATE
    no_crl_sign = make_root(key_usage={"key_cert_sign"})
    leaf = with_services(make_leaf(no_crl_sign), no_crl_sign, crl_url="http://crl.invalid/x.crl")
    result = validate_path(leaf.cert_der, roots=[no_crl_sign.cert_der], crls=[make_crl(no_crl_sign)])
    assert result.status(C.REVOCATION) == S.INDETERMINATE and "cRLSign" in result.checks[2].reason.en


def test_crl_fetched_from_distribution_point_and_cached(responder):
    root = make_root()
    leaf = with_services(make_leaf(root), root, crl_url=f"{responder.base}/root.crl")
    responder.files["/root.crl"] = make_crl(root)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=responder.fetcher)
    assert result.status(C.REVOCATION) == S.PASSED
    validate_path(leaf.cert_der, roots=[root.cert_der], fetch=responder.fetcher)
    assert responder.hits == ["/root.crl"]  # the second validation used the cache
    revoked_leaf = with_services(make_leaf(root), root, crl_url=f"{responder.base}/revoked.crl")
    responder.files["/revoked.crl"] = make_crl(root, [(serial_of(revoked_leaf), NOW - timedelta(hours=2), "key_compromise")])
    assert validate_path(revoked_leaf.cert_der, roots=[root.cert_der], fetch=responder.fetcher).status(C.REVOCATION) == S.FAILED


def test_fetching_only_from_configured_hosts(responder):
    root = make_root()
    leaf = with_services(make_leaf(root), root, crl_url=f"{responder.base}/root.crl")
    responder.files["/root.crl"] = make_crl(root)
    elsewhere = Fetcher(frozenset({"crl.example.gov.cn"}))
    result = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=elsewhere)
    assert result.status(C.REVOCATION) == S.INDETERMINATE and "not allowed" in result.checks[2].reason.en
    assert responder.hits == []
    disabled = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=False)
    assert disabled.status(C.REVOCATION) == S.INDETERMINATE


# ---------------------------------------------------------------- OCSP

def test_ocsp_good_and_revoked_with_nonce(responder):
    root = make_root()
    inter = make_intermediate(root)
    good = with_services(make_leaf(inter), inter, ocsp_url=f"{responder.base}/ocsp/inter")
    revoked = with_services(make_leaf(inter), inter, ocsp_url=f"{responder.base}/ocsp/inter")
    answers = {serial_of(good): "good", serial_of(revoked): "revoked"}

    def ocsp(request):
        serial = asn1_ocsp.OCSPRequest.load(request)["tbs_request"]["request_list"][0]["req_cert"]["serial_number"].native
        leaf = good if serial == serial_of(good) else revoked
        return make_ocsp_response(request, inter, leaf, answers[serial])

    responder.ocsp = ocsp
    kwargs = dict(roots=[root.cert_der], intermediates=[inter.cert_der], fetch=responder.fetcher)
    result = validate_path(good.cert_der, **kwargs)
    assert result.status(C.REVOCATION) == S.PASSED and "OCSP" in result.checks[2].reason.en
    result = validate_path(revoked.cert_der, **kwargs)
    assert result.status(C.REVOCATION) == S.FAILED and "revoked" in result.checks[2].reason.en
    # the responses are cached: judged again at an earlier time, without asking the responder
    hits = len(responder.hits)
    assert validate_path(good.cert_der, at=NOW - timedelta(days=2), **kwargs).status(C.REVOCATION) == S.PASSED
    assert validate_path(revoked.cert_der, at=NOW - timedelta(days=2), **kwargs).status(C.REVOCATION) == S.FAILED  # key compromise
    assert len(responder.hits) == hits


def test_ocsp_wrong_nonce_or_foreign_signer_is_not_trusted(responder):
    root = make_root()
    leaf = with_services(make_leaf(root), root, ocsp_url=f"{responder.base}/ocsp/root")
    kwargs = dict(roots=[root.cert_der], fetch=responder.fetcher)
    responder.ocsp = lambda request: make_ocsp_response(request, root, leaf, nonce=b"replayed-nonce")
    assert validate_path(leaf.cert_der, **kwargs).status(C.REVOCATION) == S.INDETERMINATE
    stranger = make_root("Stranger")
    responder.ocsp = lambda request: make_ocsp_response(request, root, leaf, signer=stranger)
    result = validate_path(leaf.cert_der, **kwargs)
    assert result.status(C.REVOCATION) == S.INDETERMINATE
    # a responder certificate issued by the CA but without id-kp-OCSPSigning is refused
    not_delegated = make_leaf(root, "Not a responder")
    responder.ocsp = lambda request: make_ocsp_response(request, root, leaf, signer=not_delegated)
    result = validate_path(leaf.cert_der, **kwargs)
    assert result.status(C.REVOCATION) == S.INDETERMINATE and "OCSPSigning" in result.checks[2].reason.en


def test_ocsp_delegated_responder_and_given_response():
    root = make_root()
    delegated = make_leaf(root, "OCSP Responder", extended_key_usage=("ocsp_signing",))
    leaf = with_services(make_leaf(root), root, ocsp_url="http://ocsp.invalid/root")
    response = make_ocsp_response(None, root, leaf, signer=delegated)
    result = validate_path(leaf.cert_der, roots=[root.cert_der], ocsp=[response])
    assert result.status(C.REVOCATION) == S.PASSED
    revoked = make_ocsp_response(None, root, leaf, "revoked", signer=delegated)
    assert validate_path(leaf.cert_der, roots=[root.cert_der], ocsp=[revoked]).status(C.REVOCATION) == S.FAILED
    unknown = make_ocsp_response(None, root, leaf, "unknown")
    assert validate_path(leaf.cert_der, roots=[root.cert_der], ocsp=[unknown]).status(C.REVOCATION) == S.INDETERMINATE


def test_unreachable_ocsp_is_indeterminate_not_valid():
    root = make_root()
    leaf = with_services(make_leaf(root), root, ocsp_url=f"http://127.0.0.1:{free_port()}/ocsp/root")
    result = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=Fetcher(frozenset({"127.0.0.1"})))
    assert statuses(result) == {"certificate": S.PASSED, "chain": S.PASSED, "revocation": S.INDETERMINATE}
    assert "cannot be reached" in result.checks[2].reason.en


def test_slow_responder_hits_the_time_limit(responder):
    root = make_root()
    leaf = with_services(make_leaf(root), root, ocsp_url=f"{responder.base}/slow",
                         crl_url=f"{responder.base}/slow")
    started = time.monotonic()
    result = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=responder.fetcher)
    elapsed = time.monotonic() - started
    assert result.status(C.REVOCATION) == S.INDETERMINATE and "time limit" in result.checks[2].reason.en
    assert elapsed < responder.fetcher.time_limit + 1.0


def test_ocsp_falls_back_to_crl(responder):
    root = make_root()
    leaf = with_services(make_leaf(root), root, ocsp_url=f"http://127.0.0.1:{free_port()}/ocsp",
                         crl_url=f"{responder.base}/root.crl")
    responder.files["/root.crl"] = make_crl(root)
    assert validate_path(leaf.cert_der, roots=[root.cert_der], fetch=responder.fetcher).status(C.REVOCATION) == S.PASSED


# ---------------------------------------------------------------- ECDSA chain against openssl verify -crl_check

def _ecdsa_cert(subject: str, key, issuer_name, issuer_key, *, ca: bool, serial: int):
    builder = (cx509.CertificateBuilder()
               .subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key()).serial_number(serial)
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
               .add_extension(cx509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(cx509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                             crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(cx509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _ecdsa_crl(issuer_cert, issuer_key, revoked_serials):
    builder = (cx509.CertificateRevocationListBuilder().issuer_name(issuer_cert.subject)
               .last_update(NOW - timedelta(hours=1)).next_update(NOW + timedelta(days=1)))
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(cx509.RevokedCertificateBuilder().serial_number(serial)
                                                  .revocation_date(NOW - timedelta(minutes=30)).build())
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.mark.parametrize("revoke", [False, True])
def test_openssl_verify_crl_check_agrees_on_ecdsa(tmp_path: Path, revoke: bool):
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root_name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "ECDSA Root")])
    root = _ecdsa_cert("ECDSA Root", root_key, root_name, root_key, ca=True, serial=1)
    inter = _ecdsa_cert("ECDSA Intermediate", inter_key, root.subject, root_key, ca=True, serial=2)
    leaf = _ecdsa_cert("ECDSA Leaf", leaf_key, inter.subject, inter_key, ca=False, serial=3)
    crl = _ecdsa_crl(inter, inter_key, [3] if revoke else [])
    pem = serialization.Encoding.PEM
    for name, obj in (("root", root), ("inter", inter), ("leaf", leaf), ("crl", crl)):
        (tmp_path / f"{name}.pem").write_bytes(obj.public_bytes(pem))
    oracle = openssl("verify", "-crl_check", "-CAfile", str(tmp_path / "root.pem"),
                     "-untrusted", str(tmp_path / "inter.pem"), "-CRLfile", str(tmp_path / "crl.pem"),
                     str(tmp_path / "leaf.pem"), check=False)
    der = serialization.Encoding.DER
    ours = validate_path(leaf.public_bytes(der), roots=[root.public_bytes(der)], intermediates=[inter.public_bytes(der)],
                         crls=[crl.public_bytes(der)])
    assert ours.status(C.CHAIN) == S.PASSED
    # -crl_check checks the leaf only; our intermediate names no CRL, so its status does not apply
    assert (oracle.returncode == 0) == (ours.status(C.REVOCATION) == S.PASSED)
    assert ours.status(C.REVOCATION) == (S.FAILED if revoke else S.PASSED)


# ---------------------------------------------------------------- the corpus

def _corpus(name: str):
    return load_certificates(shared_file("corpus", "certs", name).read_bytes())


def test_corpus_tongsuo_same_name_trap():
    root, = _corpus("tongsuo__sm2-root-cert.pem")
    cert, = _corpus("tongsuo__sm2-cert.pem")
    first, = _corpus("tongsuo__sm2-first-crt.pem")
    # sm2-cert.pem has the root's DN but is issued by the root: a leaf, not the anchor itself
    for leaf in (cert, first):
        result = validate_path(leaf, roots=[root], intermediates=[cert], leaf_usage=None)
        assert result.status(C.CHAIN) in (S.PASSED, S.WARNING), result.checks[1].reason.en
        assert result.path[-1].der == root.der


def test_corpus_tongsuo_chain():
    root, sub = _corpus("tongsuo__sm2_chain-ca.crt")
    for name in ("tongsuo__sm2_client_sign.crt", "tongsuo__sm2_server_enc.crt"):
        leaf, = _corpus(name)
        result = validate_path(leaf, roots=[root], intermediates=[sub], leaf_usage=None)
        assert result.status(C.CHAIN) == S.PASSED, result.checks[1].reason.en
        assert [c.subject for c in result.path][1:] == [sub.subject, root.subject]
    expired, = _corpus("tongsuo__sm2_client_sign_expire.crt")
    assert validate_path(expired, roots=[root], intermediates=[sub], leaf_usage=None).status(C.CHAIN) == S.FAILED
    leaf, = _corpus("tongsuo__sm2-leaf.crt")
    middle, top = _corpus("tongsuo__sm2-chain-ca.crt")
    assert validate_path(leaf, roots=[top], intermediates=[middle], leaf_usage=None).status(C.CHAIN) in (S.PASSED, S.WARNING)


def test_corpus_noza_does_not_verify_with_the_sm2_id():
    # signed without Z: with the default ID (what GM/T 0015 requires) the link does not verify
    root, = _corpus("tongsuo__sm2-noza-root-cert.pem")
    cert, = _corpus("tongsuo__sm2-noza-cert.pem")
    assert validate_path(cert, roots=[root], leaf_usage=None).status(C.CHAIN) == S.FAILED


def test_corpus_realworld_issuer_not_in_corpus():
    leaf, = _corpus("realworld__dianju_v4__ses-signer_778800000023.cer")
    result = validate_path(leaf, roots=_corpus("tongsuo__sm2-root-cert.pem"))
    assert result.status(C.CHAIN) == S.INDETERMINATE


@pytest.mark.parametrize("revoke", [False, True])
def test_openssl_ocsp_responder_answers_our_request(tmp_path: Path, responder, revoke: bool):
    """Our RFC 6960 request, answered by `openssl ocsp` acting as the CA's responder (nonce echoed)."""
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root_name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "ECDSA Root")])
    root = _ecdsa_cert("ECDSA Root", root_key, root_name, root_key, ca=True, serial=1)
    inter = _ecdsa_cert("ECDSA Intermediate", inter_key, root.subject, root_key, ca=True, serial=2)
    leaf = (cx509.CertificateBuilder().subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "Leaf")]))
            .issuer_name(inter.subject).public_key(leaf_key.public_key()).serial_number(0x1234)
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
            .add_extension(cx509.AuthorityInformationAccess([cx509.AccessDescription(
                cx509.oid.AuthorityInformationAccessOID.OCSP,
                cx509.UniformResourceIdentifier(f"{responder.base}/ocsp/inter"))]), critical=False)
            .sign(inter_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "inter.pem").write_bytes(inter.public_bytes(pem))
    (tmp_path / "inter.key").write_bytes(inter_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                  serialization.NoEncryption()))
    expiry = (NOW + timedelta(days=30)).strftime("%y%m%d%H%M%SZ")
    revoked = (NOW - timedelta(hours=1)).strftime("%y%m%d%H%M%SZ") if revoke else ""
    (tmp_path / "index.txt").write_text(f"{'R' if revoke else 'V'}\t{expiry}\t{revoked}\t1234\tunknown\t/CN=Leaf\n")

    def ocsp(request: bytes) -> bytes:
        (tmp_path / "req.der").write_bytes(request)
        openssl("ocsp", "-index", tmp_path / "index.txt", "-CA", tmp_path / "inter.pem",
                "-rsigner", tmp_path / "inter.pem", "-rkey", tmp_path / "inter.key", "-ndays", "1",
                "-reqin", tmp_path / "req.der", "-respout", tmp_path / "resp.der")
        return (tmp_path / "resp.der").read_bytes()

    responder.ocsp = ocsp
    der = serialization.Encoding.DER
    result = validate_path(leaf.public_bytes(der), roots=[root.public_bytes(der)],
                           intermediates=[inter.public_bytes(der)], fetch=responder.fetcher)
    assert result.status(C.REVOCATION) == (S.FAILED if revoke else S.PASSED), result.checks[2].reason.en
    assert "OCSP" in result.checks[2].reason.en


# ---------------------------------------------------------------- malformed CRLs and OCSP responses

_FUZZ_ROOT = make_root("Fuzz Root")
_FUZZ_LEAF = make_leaf(_FUZZ_ROOT)
_FUZZ_CRL = make_crl(_FUZZ_ROOT, [(serial_of(_FUZZ_LEAF), NOW - timedelta(days=1), "key_compromise")])
_FUZZ_OCSP = make_ocsp_response(None, _FUZZ_ROOT, _FUZZ_LEAF, "revoked",
                                signer=make_leaf(_FUZZ_ROOT, "R", extended_key_usage=("ocsp_signing",)))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([_FUZZ_CRL, _FUZZ_OCSP]), st.integers(min_value=0), st.binary(min_size=1, max_size=4),
       st.booleans())
def test_malformed_revocation_data_is_never_good(base, position, patch, truncate):
    position %= len(base)
    data = base[:position] if truncate else base[:position] + patch + base[position + len(patch):]
    leaf, root = parse_certificate(_FUZZ_LEAF.cert_der), parse_certificate(_FUZZ_ROOT.cert_der)
    for kwargs in ({"crls": [data]}, {"ocsp_responses": [data]}):
        status = check_revocation(leaf, root, at=NOW, **kwargs)
        assert status.state in (RevocationState.UNKNOWN, RevocationState.REVOKED, RevocationState.NOT_APPLICABLE)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_as_revocation_data(data):
    leaf, root = parse_certificate(_FUZZ_LEAF.cert_der), parse_certificate(_FUZZ_ROOT.cert_der)
    assert check_revocation(leaf, root, at=NOW, crls=[data], ocsp_responses=[data]).state != RevocationState.GOOD


def test_unhandled_critical_extension_fails():
    root = make_root()
    leaf = make_leaf(root)
    cert = asn1_x509.Certificate.load(leaf.cert_der)
    tbs = asn1_x509.TbsCertificate.load(cert["tbs_certificate"].dump())
    permitted = [{"base": asn1_x509.GeneralName(name="dns_name", value="example.cn")}]
    tbs["extensions"] = [*tbs["extensions"], {"extn_id": "name_constraints", "critical": True,
                                              "extn_value": {"permitted_subtrees": permitted}}]
    signed = asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": SM2_ALG,
                                    "signature_value": root.key.sign(tbs.dump())}).dump()
    result = validate_path(signed, roots=[root.cert_der])
    assert result.status(C.CHAIN) == S.FAILED and "2.5.29.30" in result.checks[1].reason.en


def _manifest_chain_claims():
    """(cert file, index, expectation, other file, other index) from the corpus manifest's CHAIN notes."""
    claims = []
    for line in shared_file("corpus", "MANIFEST.tsv").read_text().splitlines():
        path = line.split("\t", 1)[0]
        if not path.startswith("certs/"):
            continue
        for index, other, other_index in re.findall(r"cert(?:#(\d+))? signature VERIFIES with key of (certs/\S+?)(?:#(\d+))? \(", line):
            claims.append((path, int(index or 0), "issued", other, int(other_index or 0)))
        for other in re.findall(r"does NOT verify with key of same-DN cert (certs/\S+?);", line):
            claims.append((path, 0, "not issued", other, 0))
        for other in re.findall(r"verifies with key of (certs/\S+) ONLY WITHOUT Z", line):
            claims.append((path, 0, "not issued", other, 0))
        if re.search(r"issuer \(.*\) not in corpus", line):
            claims.append((path, 0, "no issuer", None, 0))
    return claims


@pytest.mark.parametrize("path, index, expectation, other, other_index", _manifest_chain_claims())
def test_corpus_chains_as_the_manifest_says(path, index, expectation, other, other_index):
    cert = _corpus(path.removeprefix("certs/"))[index]
    if expectation == "no issuer":
        every = [c for name in shared_file("corpus", "certs").iterdir() for c in load_certificates(name.read_bytes())]
        result = validate_path(cert, roots=[c for c in every if c.self_issued and c.der != cert.der],
                               intermediates=every, leaf_usage=None, at=cert.not_before)
        assert result.status(C.CHAIN) == S.INDETERMINATE, result.checks[1].reason.en
        return
    issuer = _corpus(other.removeprefix("certs/"))[other_index]
    at = max(cert.not_before, issuer.not_before)
    if expectation == "issued" and not (issuer.valid_at(at) and cert.valid_at(at)):
        # deliberately expired before its issuer began: the link verifies, the dates fail
        result = validate_path(cert, roots=[issuer], leaf_usage=None, at=at)
        assert result.status(C.CHAIN) == S.FAILED and "not valid at" in result.checks[1].reason.en
    elif expectation == "issued":
        result = validate_path(cert, roots=[issuer], leaf_usage=None, at=at)
        assert result.status(C.CHAIN) in (S.PASSED, S.WARNING), result.checks[1].reason.en
        assert result.path[-1].der == issuer.der
    else:
        unrelated = make_root("Unrelated Root").cert_der
        result = validate_path(cert, roots=[issuer] if issuer.der != cert.der else [unrelated],
                               intermediates=[issuer], leaf_usage=None, at=at)
        assert result.status(C.CHAIN) in (S.FAILED, S.INDETERMINATE), result.checks[1].reason.en


def test_default_fetcher_uses_configured_hosts(responder, monkeypatch):
    root = make_root()
    leaf = with_services(make_leaf(root), root, crl_url=f"{responder.base}/root.crl")
    responder.files["/root.crl"] = make_crl(root)
    monkeypatch.delenv("TRUST_REVOCATION_HOSTS", raising=False)
    assert validate_path(leaf.cert_der, roots=[root.cert_der], fetch=True).status(C.REVOCATION) == S.INDETERMINATE
    monkeypatch.setenv("TRUST_REVOCATION_HOSTS", f"crl.example.gov.cn, 127.0.0.1:{responder.port}")
    assert validate_path(leaf.cert_der, roots=[root.cert_der], fetch=True).status(C.REVOCATION) == S.PASSED
    assert responder.hits == ["/root.crl"]


def test_purpose_needs_a_session():
    with pytest.raises(InvalidInput):
        validate_path(make_root().cert_der, purpose="seal")


def test_many_same_name_candidates_stay_bounded():
    root = make_root()
    inter = make_intermediate(root)
    leaf = make_leaf(inter)
    decoys = [make_intermediate(root).cert_der for _ in range(80)]  # same name, other keys
    started = time.monotonic()
    result = validate_path(leaf.cert_der, roots=[root.cert_der], intermediates=decoys)
    assert result.status(C.CHAIN) in (S.FAILED, S.INDETERMINATE)
    assert time.monotonic() - started < 5
    assert validate_path(leaf.cert_der, roots=[root.cert_der],
                         intermediates=[*decoys, inter.cert_der]).status(C.CHAIN) == S.PASSED  # AKI/SKI first
