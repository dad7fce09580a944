"""Missing issuers fetched from AIA caIssuers URLs (trust.path): from our own served
/ca/{name}/cert, and from a loopback server serving DER, PEM and PKCS#7 certs-only bundles
(made by `openssl crl2pkcs7`), loops, slow, unreachable and disallowed hosts."""

import http.server
import socket
import threading
import time
from contextlib import contextmanager

import pytest
from asn1crypto import pem, x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings, strategies as st

from ca import authority
from trust import oids
from trust.errors import InvalidInput
from trust.path import MAX_ISSUER_FETCHES, ca_issuers_certificates, validate_path
from trust.report import CheckName as C, CheckStatus as S
from trust.revocation import Fetcher

from certs import Issued, make_intermediate, make_leaf, make_root
from tests.fixtures.ca import ORG, served, write_pem
from tests.oracles import openssl

LOOPBACK = Fetcher(frozenset({"127.0.0.1"}), time_limit=2.0)


def statuses(result):
    return tuple(c.status for c in result.checks)


# ---------------------------------------------------------------- our own CA, served

@pytest.mark.parametrize("family", ["ecdsa", "sm2"])
def test_a_leaf_validates_with_only_the_root_trusted(engine, session, keystore, creds, tmp_path, monkeypatch,
                                                     family):
    with served(engine, keystore, tmp_path) as base:
        monkeypatch.setenv("TRUST_PUBLIC_URL", base)
        root, issuing = authority.create_hierarchy(session, keystore, "h", family, approval=creds)
        authority.issue_with_new_key(session, keystore, "h-issuing", "ocsp-signer",
                                     subject={"C": "CN", "O": "Trust", "CN": "OCSP"}, label="ocsp/h")
        leaf = authority.issue_with_new_key(session, keystore, "h-issuing", "organisation-signing", subject=ORG,
                                            label="leaf")
        session.commit()
        fetcher = Fetcher(frozenset({"127.0.0.1"}))
        result = validate_path(leaf.der, roots=[root.certificate], fetch=fetcher)
        assert statuses(result) == (S.PASSED, S.PASSED, S.PASSED), result.checks
        assert [c.der for c in result.path] == [leaf.der, issuing.certificate, root.certificate]
        # fetching grants no trust: the fetched issuing CA does not make its own root trusted
        other_root, _ = authority.create_hierarchy(session, keystore, "other", family, approval=creds)
        session.commit()
        untrusted = validate_path(leaf.der, roots=[other_root.certificate], fetch=fetcher)
        assert untrusted.status(C.CHAIN) == S.INDETERMINATE
    # without fetching the issuer is simply missing
    assert validate_path(leaf.der, roots=[root.certificate]).status(C.CHAIN) == S.INDETERMINATE


def test_an_unreachable_or_disallowed_issuer_url_is_indeterminate_and_named(session, keystore, creds, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nobody listens once the socket is closed
    monkeypatch.setenv("TRUST_PUBLIC_URL", f"http://127.0.0.1:{closed}")
    root, _issuing = authority.create_hierarchy(session, keystore, "ec", "ecdsa", approval=creds)
    leaf = authority.issue(session, keystore, "ec-issuing", "organisation-signing", subject=ORG,
                           public_key=ec.generate_private_key(ec.SECP256R1()).public_key())
    url = f"http://127.0.0.1:{closed}/ca/ec-issuing/cert"
    for fetcher in (LOOPBACK, Fetcher(frozenset({"ca.example.gov.cn"}))):
        result = validate_path(leaf.der, roots=[root.certificate], fetch=fetcher)
        assert (result.status(C.CHAIN), result.status(C.REVOCATION)) == (S.INDETERMINATE, S.INDETERMINATE)
        reason = result.checks[1].reason
        assert url in reason.en and url in reason.zh


# ---------------------------------------------------------------- any server

@contextmanager
def static_server(files: dict[str, bytes], delay: float = 0.0):
    """Serves ``files`` by path on a loopback port; yields (base URL, hits per path)."""
    hits: dict[str, int] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits[self.path] = hits.get(self.path, 0) + 1
            body = files.get(self.path)
            time.sleep(delay)
            try:
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up: its time ran out

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def with_ca_issuers(issued: Issued, issuer: Issued, *urls: str) -> Issued:
    """``issued`` pointing at its issuer's certificate by AIA caIssuers, re-signed by ``issuer``."""
    cert = asn1_x509.Certificate.load(issued.cert_der)
    tbs = asn1_x509.TbsCertificate.load(cert["tbs_certificate"].dump())
    access = [{"access_method": "ca_issuers",
               "access_location": asn1_x509.GeneralName(name="uniform_resource_identifier", value=url)}
              for url in urls]
    tbs["extensions"] = [*tbs["extensions"], {"extn_id": "authority_information_access", "critical": False,
                                              "extn_value": access}]
    algorithm = {"algorithm": oids.SM2_WITH_SM3}
    signed = asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": algorithm,
                                    "signature_value": issuer.key.sign(tbs.dump())})
    return Issued(signed.dump(), issued.key)


@pytest.fixture(scope="module")
def sm2_chain():
    root = make_root("AIA Root")
    inter = make_intermediate(root, "AIA Issuing CA")
    return root, inter


def test_der_pem_and_pkcs7_bundles_are_read(sm2_chain, tmp_path):
    root, inter = sm2_chain
    write_pem(tmp_path / "inter.pem", inter.cert_der)
    write_pem(tmp_path / "both.pem", root.cert_der, inter.cert_der)
    p7c = openssl("crl2pkcs7", "-nocrl", "-certfile", tmp_path / "both.pem", "-outform", "DER").stdout
    files = {"/der": inter.cert_der, "/pem": (tmp_path / "inter.pem").read_bytes(), "/p7c": p7c}
    with static_server(files) as (base, hits):
        for name in files:
            leaf = with_ca_issuers(make_leaf(inter, "AIA Signer"), inter, f"{base}{name}")
            result = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=Fetcher(frozenset({"127.0.0.1"})))
            assert result.status(C.CHAIN) == S.PASSED, (name, result.checks)
            assert len(result.path) == 3
    assert hits == {"/der": 1, "/pem": 1, "/p7c": 1}


def test_a_fetched_impostor_does_not_chain(sm2_chain):
    root, inter = sm2_chain
    impostor = make_intermediate(root, "AIA Issuing CA")  # same name, another key
    with static_server({"/impostor": impostor.cert_der}) as (base, _hits):
        leaf = with_ca_issuers(make_leaf(inter, "AIA Signer"), inter, f"{base}/impostor")
        result = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=Fetcher(frozenset({"127.0.0.1"})))
    assert result.status(C.CHAIN) == S.FAILED


def test_loops_and_hops_are_bounded(sm2_chain):
    root, _inter = sm2_chain
    # a chain of CAs longer than the fetch budget, each pointing to the next; the last points back
    cas = [make_intermediate(root, "Hop 0")]
    for i in range(1, MAX_ISSUER_FETCHES + 2):
        cas.append(make_intermediate(cas[-1], f"Hop {i}"))
    files: dict[str, bytes] = {}
    with static_server(files) as (base, hits):
        for i, ca in enumerate(cas):
            parent = cas[i - 1] if i else root
            # each CA's AIA points at its own URL (a loop) and at its issuer's
            files[f"/hop{i}"] = with_ca_issuers(ca, parent, f"{base}/hop{i}", f"{base}/hop{max(i - 1, 0)}").cert_der
        top = len(cas) - 1
        leaf = with_ca_issuers(make_leaf(cas[top], "Deep Signer"), cas[top], f"{base}/hop{top}")
        started = time.monotonic()
        result = validate_path(leaf.cert_der, roots=[root.cert_der], fetch=Fetcher(frozenset({"127.0.0.1"})))
        assert time.monotonic() - started < 5
    assert result.status(C.CHAIN) in (S.INDETERMINATE, S.FAILED)
    assert sum(hits.values()) <= MAX_ISSUER_FETCHES and all(n == 1 for n in hits.values())
    assert "fetched already" in result.checks[1].reason.en or "too long" in result.checks[1].reason.en


def test_a_slow_server_runs_out_the_time_limit(sm2_chain):
    root, inter = sm2_chain
    with static_server({"/slow": inter.cert_der}, delay=1.0) as (base, _hits):
        leaf = with_ca_issuers(make_leaf(inter, "AIA Signer"), inter, f"{base}/slow")
        started = time.monotonic()
        result = validate_path(leaf.cert_der, roots=[root.cert_der],
                               fetch=Fetcher(frozenset({"127.0.0.1"}), time_limit=0.3))
        assert time.monotonic() - started < 1.0
    assert result.status(C.CHAIN) == S.INDETERMINATE and f"{base}/slow" in result.checks[1].reason.en


def test_what_a_ca_issuers_url_serves_is_checked(sm2_chain):
    _root, inter = sm2_chain
    assert ca_issuers_certificates(inter.cert_der)[0].der == inter.cert_der
    for bad in (b"", b"not a certificate", pem.armor("CERTIFICATE REQUEST", b"\x30\x00"),
                b"".join(pem.armor("CERTIFICATE", inter.cert_der) for _ in range(17))):
        with pytest.raises(InvalidInput):
            ca_issuers_certificates(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_ca_issuers_answers_fail_cleanly(data):
    try:
        ca_issuers_certificates(data)
    except InvalidInput:
        pass
