"""The time-stamp authority (RFC 3161) over real HTTP: ECDSA tokens judged by `openssl ts
-verify`, SM2 tokens by trust.cms.verify_time_stamp and `openssl pkeyutl`; the client."""

import socket
from datetime import timedelta

import pytest
from asn1crypto import tsp
from hypothesis import HealthCheck, given, settings, strategies as st

from ca import authority, revocation, tsa
from trust.cms import parse_signed_data, verify_time_stamp
from trust.errors import InvalidInput
from trust.report import CheckStatus, Code
from trust.revocation import Fetcher
from trust.x509 import parse_certificate

from tests.fixtures.ca import post, served, write_pem
from tests.oracles import STANDARD_ID, openssl

TSA_SUBJECT = {"C": "CN", "O": "Trust", "CN": "Time Stamping"}


def make_tsa(session, keystore, creds, hierarchy, family, tmp_path):
    root, issuing = authority.create_hierarchy(session, keystore, hierarchy, family, approval=creds)
    signer = authority.issue_with_new_key(session, keystore, f"{hierarchy}-issuing", "tsa", subject=TSA_SUBJECT,
                                          label=f"tsa/{hierarchy}")
    session.commit()
    write_pem(tmp_path / f"{hierarchy}-chain.pem", root.certificate, issuing.certificate)
    return root, signer


def test_a_revoked_tsa_fails_its_time_stamps_and_unknown_revocation_is_try_later(engine, session, keystore, creds,
                                                                                 tmp_path, monkeypatch):
    """The TSA's certificate is validated as a signer's is (trust.path): revocation from the
    CRL or OCSP it names, here served on loopback; #24's acceptance, at the time stamp."""
    data = b"SM2 signature value to stamp"
    loopback = Fetcher(frozenset({"127.0.0.1"}), time_limit=5.0)
    with served(engine, keystore, tmp_path) as base:
        monkeypatch.setenv("TRUST_PUBLIC_URL", base)  # the certificates point at the served CA
        root, signer = make_tsa(session, keystore, creds, "gm", "sm2", tmp_path)
        token = tsa.request_timestamp(f"{base}/tsa", data, hash="SM3")
        roots = (parse_certificate(root.certificate),)
        good = verify_time_stamp(token, data, trusted_roots=roots, fetch=loopback)
        assert good.status is CheckStatus.PASSED and good.code is None, good.reason
        unsure = verify_time_stamp(token, data, trusted_roots=roots)  # nothing may be fetched
        assert unsure.status is CheckStatus.INDETERMINATE and unsure.code is Code.TRY_LATER
        revocation.revoke(session, "gm-issuing", signer.serial, "keyCompromise", actor="test",
                          at=good.gen_time - timedelta(hours=1))
        session.commit()
        fresh = Fetcher(frozenset({"127.0.0.1"}), time_limit=5.0)  # the first one keeps OCSP answers a minute
        revoked = verify_time_stamp(token, data, trusted_roots=roots, fetch=fresh)
        assert revoked.status is CheckStatus.FAILED and revoked.code is Code.REVOKED, revoked.reason


def stamp(base, body, path="/tsa", content_type="application/timestamp-query"):
    return post(base, path, body, content_type)


def test_openssl_ts_verifies_our_ecdsa_tokens(engine, session, keystore, creds, tmp_path):
    make_tsa(session, keystore, creds, "ec", "ecdsa", tmp_path)
    data = tmp_path / "data.bin"
    data.write_bytes(b"a document to stamp")
    openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", tmp_path / "q.tsq")
    openssl("ts", "-query", "-data", data, "-sha256", "-out", tmp_path / "nocert.tsq")
    with served(engine, keystore, tmp_path) as base:
        status, kind, body = stamp(base, (tmp_path / "q.tsq").read_bytes())
        _, _, again = stamp(base, (tmp_path / "q.tsq").read_bytes())
        _, _, bare = stamp(base, (tmp_path / "nocert.tsq").read_bytes())
    assert parse_signed_data(tsa.TimeStampResp.load(bare)["time_stamp_token"].dump()).certificates == ()
    assert (status, kind) == (200, "application/timestamp-reply")
    (tmp_path / "r.tsr").write_bytes(body)
    verified = openssl("ts", "-verify", "-data", data, "-in", tmp_path / "r.tsr",
                       "-CAfile", tmp_path / "ec-chain.pem")
    assert b"Verification: OK" in verified.stdout
    openssl("ts", "-verify", "-queryfile", tmp_path / "q.tsq", "-in", tmp_path / "r.tsr",
            "-CAfile", tmp_path / "ec-chain.pem")  # nonce and imprint match the query
    text = openssl("ts", "-reply", "-in", tmp_path / "r.tsr", "-text").stdout.decode()
    assert "Status: Granted" in text and tsa.stamping_policy() in text
    serials = {tsp.TimeStampResp.load(b)["time_stamp_token"]["content"]["encap_content_info"]["content"]
               .parsed["serial_number"].native for b in (body, again)}
    assert len(serials) == 2
    other = tmp_path / "other.bin"
    other.write_bytes(b"another document")
    assert openssl("ts", "-verify", "-data", other, "-in", tmp_path / "r.tsr", "-CAfile",
                   tmp_path / "ec-chain.pem", check=False).returncode != 0


def test_sm2_tokens_verify_with_our_verifier_and_openssl_pkeyutl(engine, session, keystore, creds, tmp_path):
    root, signer = make_tsa(session, keystore, creds, "gm", "sm2", tmp_path)
    make_tsa(session, keystore, creds, "ec", "ecdsa", tmp_path)  # SHA-256 imprints go there
    data = b"SM2 signature value to stamp"
    (tmp_path / "data.bin").write_bytes(data)
    openssl("ts", "-query", "-data", tmp_path / "data.bin", "-sm3", "-cert", "-out", tmp_path / "q.tsq")
    with served(engine, keystore, tmp_path) as base:
        _status, _, body = stamp(base, (tmp_path / "q.tsq").read_bytes())
        client_token = tsa.request_timestamp(f"{base}/tsa", data, hash="SM3")
        ecdsa_token = tsa.request_timestamp(f"{base}/tsa", data, hash="SHA-256")
    token = tsp.TimeStampResp.load(body)["time_stamp_token"].dump()
    roots = (parse_certificate(root.certificate),)
    for stamped in (token, client_token):
        # the TSA's certificate names revocation services this test does not serve
        result = verify_time_stamp(stamped, data, trusted_roots=roots)
        assert result.status is CheckStatus.INDETERMINATE and result.code is Code.TRY_LATER, result.reason
        assert "verifies" in result.reason.en
    assert verify_time_stamp(token, b"other", trusted_roots=roots).status is CheckStatus.FAILED
    assert verify_time_stamp(token, data).status is CheckStatus.INDETERMINATE  # no trusted root given
    tsa_keys = {parse_signed_data(t).certificates[0].public_key_info for t in (token, ecdsa_token)}
    assert len(tsa_keys) == 2  # SM3 imprints went to the SM2 TSA, SHA-256 ones to the ECDSA TSA

    signed = parse_signed_data(token)
    info = signed.signer_infos[0]
    assert (info.digest_algorithm, info.signature_algorithm) == ("1.2.156.10197.1.401", "1.2.156.10197.1.501")
    (tmp_path / "attrs.der").write_bytes(info.signed_attrs)
    (tmp_path / "sig.der").write_bytes(info.signature)
    write_pem(tmp_path / "tsa.pem", signer.der)
    openssl("x509", "-in", tmp_path / "tsa.pem", "-pubkey", "-noout", "-out", tmp_path / "tsa.pub")
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "tsa.pub", "-rawin", "-in", tmp_path / "attrs.der",
            "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.der")


def test_rejections_are_timestamp_replies_never_500(engine, session, keystore, creds, tmp_path):
    make_tsa(session, keystore, creds, "ec", "ecdsa", tmp_path)
    (tmp_path / "data.bin").write_bytes(b"x")
    openssl("ts", "-query", "-data", tmp_path / "data.bin", "-sha1", "-out", tmp_path / "sha1.tsq")
    openssl("ts", "-query", "-data", tmp_path / "data.bin", "-sha256", "-tspolicy", "1.2.3.4",
            "-out", tmp_path / "policy.tsq")
    with served(engine, keystore, tmp_path) as base:
        cases = [((tmp_path / "sha1.tsq").read_bytes(), "bad_alg"), (b"\x30\x03\x02\x01\x01", "bad_data_format"),
                 ((tmp_path / "policy.tsq").read_bytes(), "unaccepted_policy")]
        for body, fail_info in cases:
            status, kind, answer = stamp(base, body)
            assert (status, kind) == (200, "application/timestamp-reply")
            reply = tsa.TimeStampResp.load(answer)["status"]
            assert reply["status"].native == "rejection" and reply["fail_info"].native == {fail_info}
        (tmp_path / "rej.tsr").write_bytes(stamp(base, cases[0][0])[2])
        assert "Status: Rejected" in openssl("ts", "-reply", "-in", tmp_path / "rej.tsr", "-text").stdout.decode()
        status, kind, _ = stamp(base, b"\x30" * (tsa.MAX_REQUEST_BYTES + 1))
        assert (status, kind) == (413, "application/problem+json")
        status, kind, _ = stamp(base, b"\x30\x00", content_type="application/octet-stream")
        assert (status, kind) == (415, "application/problem+json")
        status, _, answer = stamp(base, (tmp_path / "sha1.tsq").read_bytes(), path="/tsa/nobody")
        assert status == 200 and tsa.TimeStampResp.load(answer)["status"]["status"].native == "rejection"
        with pytest.raises(InvalidInput, match="refused"):
            tsa.request_timestamp(f"{base}/tsa/nobody", b"x", hash="SHA-256")


@pytest.mark.parametrize("hash_name", ["SM3", "SHA-256"])
def test_client_gets_tokens_from_a_tsa_nobody_here_wrote(openssl_tsa, hash_name):
    """The client against `openssl ts -reply` (a province's existing TSA stands in): the
    token's imprint and nonce are checked by the client, its signature and chain by our
    verifier under the TSA's root, and the data it covers cannot be swapped."""
    data = "签章值 signature value".encode()
    token = tsa.request_timestamp(openssl_tsa.url, data, hash_name)
    root = parse_certificate(openssl_tsa.root_pem.encode()).der
    result = verify_time_stamp(token, data, trusted_roots=[root])
    assert result.status is CheckStatus.PASSED, result.reason
    assert verify_time_stamp(token, data + b"!", trusted_roots=[root]).status is CheckStatus.FAILED
    assert verify_time_stamp(token, data).status is CheckStatus.INDETERMINATE  # root not trusted
    assert openssl_tsa.requests == 1


def test_client_fails_fast_on_an_unreachable_tsa():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(tsa.TimeStampUnavailable, match="cannot be reached"):
        tsa.request_timestamp(f"http://127.0.0.1:{port}/tsa", b"data", timeout=2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_parse_request_fails_only_with_a_rejection(data):
    try:
        tsa.parse_request(data)
    except tsa.TimeStampRejected as error:
        assert error.fail_info and error.zh


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_client_reads_any_answer_without_crashing(data):
    try:
        tsa.token_from_response(data, "1.2.156.10197.1.401", bytes(32), 1)
    except InvalidInput as error:
        assert error.zh
