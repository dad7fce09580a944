"""GB/T 35275 SignedData and bare SM2 signatures on their own (issue #13): `trustctl verify
VALUE --data DATA [--signer-cert CERT]` and `POST /api/v1/verify/ses` give the report the
same value gets inside an OFD; a bare value without its certificate stays INDETERMINATE
naming what is missing. SignedData is built here with and without signed attributes,
attached and detached, with both spellings of the OIDs; the corpus files hold on their own."""

import io
import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from api.cli.verify import verify as verify_command
from seal.verify import verify_signed_value
from trust import oids
from trust.cms import GM_DATA, GM_SIGNED_DATA
from trust.errors import InvalidInput
from trust.hashes import sm3
from trust.report import EXIT_CODES, EXIT_UNREADABLE, CheckName as C, CheckStatus as S, Status

from tests.certs import make_leaf, make_root
from tests.fixtures.api import problem
from tests.oracles import shared_file
from tests.test_cms import _sm2_signed_data

DATA = b"<ofd:Signature xmlns:ofd='http://www.ofdspec.org/2016'>...</ofd:Signature>"
PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"
CORPUS = ("corpus", "signatures")
BARE_CERT = ("corpus", "certs", "ofdrw__USER_p12_cert_0x1719d2dab60.pem")


@pytest.fixture(scope="module")
def signer():
    root = make_root("Alone Root")
    return root, make_leaf(root, "Alone Signer")


def _statuses(report) -> dict:
    (signature,) = report.signatures
    return {c.check: c.status for c in signature.checks}


@pytest.mark.parametrize("attributes", [True, False], ids=["signed-attrs", "no-attrs"])
@pytest.mark.parametrize("attached", [True, False], ids=["attached", "detached"])
@pytest.mark.parametrize("spelling", [(GM_SIGNED_DATA, GM_DATA, oids.SM2_SIGN),
                                      (PKCS7_SIGNED_DATA, "data", oids.SM2_WITH_SM3)], ids=["gbt35275", "pkcs7"])
def test_signed_data_alone_is_valid_and_any_change_is_invalid(signer, attributes, attached, spelling):
    outer, inner, signature_oid = spelling
    value = _sm2_signed_data(signer, DATA, attributes=attributes, attached=attached, outer=outer,
                             signature_oid=signature_oid, inner=inner)
    root = (signer[0].cert_der,)
    report = verify_signed_value(value, data=DATA, trusted_roots=root)
    assert report.format == "cms" and report.status is Status.VALID, report.signatures[0].checks
    changed = verify_signed_value(value, data=DATA.replace(b"...", b"..!"), trusted_roots=root)
    assert changed.status is Status.INVALID
    failed = {c for c, status in _statuses(changed).items() if status is S.FAILED}
    assert failed & {C.INTEGRITY, C.SIGNATURE}, _statuses(changed)


def test_signed_data_whose_message_digest_does_not_match_is_invalid_by_name(signer):
    value = _sm2_signed_data(signer, DATA, attributes=True, attached=False, message_digest=sm3(b"something else"))
    report = verify_signed_value(value, data=DATA, trusted_roots=(signer[0].cert_der,))
    assert report.status is Status.INVALID and _statuses(report)[C.INTEGRITY] is S.FAILED


def test_detached_signed_data_without_its_data_is_indeterminate(signer):
    value = _sm2_signed_data(signer, DATA, attributes=True, attached=False)
    report = verify_signed_value(value, data=None, trusted_roots=(signer[0].cert_der,))
    assert report.status is Status.INDETERMINATE
    assert _statuses(report)[C.INTEGRITY] is S.INDETERMINATE and _statuses(report)[C.SIGNATURE] is S.INDETERMINATE
    attached = _sm2_signed_data(signer, DATA, attributes=True, attached=True)
    assert verify_signed_value(attached, data=None, trusted_roots=(signer[0].cert_der,)).status is Status.VALID


def test_bare_signature_needs_its_certificate_and_the_right_one(signer):
    _root, leaf = signer
    value = leaf.sign(DATA)
    missing = verify_signed_value(value, data=DATA)
    assert missing.format == "sm2" and missing.status is Status.INDETERMINATE
    reason = next(c for c in missing.signatures[0].checks if c.check is C.SIGNATURE).reason.en
    assert "--signer-cert" in reason
    given_cert = verify_signed_value(value, data=DATA, certificates=(leaf.cert_der,), trusted_roots=(signer[0].cert_der,))
    assert given_cert.status is Status.VALID
    wrong = verify_signed_value(value, data=DATA, certificates=(make_leaf(signer[0], "Someone Else").cert_der,))
    assert wrong.status is Status.INVALID and _statuses(wrong)[C.SIGNATURE] is S.FAILED
    changed = verify_signed_value(value, data=DATA + b" ", certificates=(leaf.cert_der,))
    assert changed.status is Status.INVALID


@pytest.fixture(scope="module")
def fuzzed(signer) -> bytes:
    return _sm2_signed_data(signer, DATA, attributes=True, attached=False)


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7), cut=st.booleans())
def test_fuzz_values_alone(signer, fuzzed, position, bit, cut):
    """A changed value is reported or refused as unreadable (InvalidInput), never an exception
    of another kind. From the signed attributes on (after their [0] tag, which the signature does
    not cover: it is computed over the SET OF form), a change is never VALID: the attributes, the
    signature algorithm and the signature."""
    value = fuzzed
    signed_from = value.rindex(b"\xa0", 0, value.rindex(sm3(DATA))) + 1
    position %= len(value)
    changed = value[:position] if cut else value[:position] + bytes([value[position] ^ (1 << bit)]) + value[position + 1:]
    try:
        report = verify_signed_value(changed, data=DATA, trusted_roots=(signer[0].cert_der,))
    except InvalidInput:
        return
    assert report.signatures[0].checks
    if position >= signed_from:
        assert report.status is not Status.VALID


# ---------------------------------------------------------------- trustctl verify

def _run(*args) -> tuple[int, dict]:
    result = CliRunner().invoke(verify_command, [*map(str, args), "--json"])
    return result.exit_code, json.loads(result.output)


def _checks(answer: dict) -> dict:
    (signature,) = answer["signatures"]
    return {c["check"]: c["status"] for c in signature["checks"]}


@pytest.mark.parametrize("name", ["gomain_signeddata_ynca", "oesplugin_signeddata_attached_hash"])
def test_corpus_signed_data_verifies_on_its_own(name):
    """The manifest: both verify over their Signature.xml. The verdict is the certificates'
    (their roots are absent; the oesplugin signer's expired in 2021 and a value on its own
    carries no signing time), never "unreadable" (exit 3)."""
    value, xml = shared_file(*CORPUS, f"{name}.SignedValue.dat"), shared_file(*CORPUS, f"{name}.Signature.xml")
    code, answer = _run(value, "--data", xml)
    assert code != EXIT_UNREADABLE and answer["format"] == "cms", answer
    assert _checks(answer)["signature"] == "PASSED" and _checks(answer)["integrity"] == "PASSED"


def test_corpus_signed_data_with_changed_data_is_invalid(tmp_path):
    xml = shared_file(*CORPUS, "gomain_signeddata_ynca.Signature.xml").read_bytes()
    (tmp_path / "changed.xml").write_bytes(xml.replace(b"Signature", b"Signatura", 1))
    code, answer = _run(shared_file(*CORPUS, "gomain_signeddata_ynca.SignedValue.dat"), "--data", tmp_path / "changed.xml")
    assert code == EXIT_CODES[Status.INVALID] and _checks(answer)["integrity"] == "FAILED"


def test_corpus_bare_signature_with_and_without_signer_cert(tmp_path):
    value = shared_file(*CORPUS, "ofdrw_digitalsign_bare_sm2.SignedValue.dat")
    xml = shared_file(*CORPUS, "ofdrw_digitalsign_bare_sm2.Signature.xml")
    code, answer = _run(value, "--data", xml)
    assert code == EXIT_CODES[Status.INDETERMINATE] and answer["format"] == "sm2"
    assert _checks(answer)["signature"] == "INDETERMINATE"
    code, answer = _run(value, "--data", xml, "--signer-cert", shared_file(*BARE_CERT))
    assert _checks(answer)["signature"] == "PASSED" and _checks(answer)["integrity"] == "PASSED", answer
    other = shared_file("corpus", "certs", "ofdrw__sign_cert.pem")
    code, answer = _run(value, "--data", xml, "--signer-cert", other)
    assert code == EXIT_CODES[Status.INVALID] and _checks(answer)["signature"] == "FAILED"
    (tmp_path / "not-a-cert.pem").write_text("hello")
    code, answer = _run(value, "--data", xml, "--signer-cert", tmp_path / "not-a-cert.pem")
    assert code == EXIT_UNREADABLE and "--signer-cert" in answer["error"]["en"]


def test_ofd_sign_signature_with_a_bare_value(tmp_path):
    """DigitalSign.ofd (ofdrw): a Type="Sign" bare value. Without the certificate it cannot be
    checked and says so; with it, the signature verifies (the ofdrw test root lacks keyCertSign,
    so the chain is a warning and the verdict INDETERMINATE even with its root)."""
    ofd = shared_file("spec", "fixtures", "DigitalSign.ofd")
    code, answer = _run(ofd)
    assert code == EXIT_CODES[Status.INDETERMINATE] and _checks(answer)["signature"] == "INDETERMINATE"
    reason = next(c for c in answer["signatures"][0]["checks"] if c["check"] == "signature")["reason"]["en"]
    assert "none was supplied" in reason
    code, answer = _run(ofd, "--signer-cert", shared_file(*BARE_CERT))
    assert _checks(answer)["signature"] == "PASSED" and _checks(answer)["integrity"] == "PASSED", answer


def test_our_signed_data_is_valid_through_the_cli(signer, tmp_path):
    (tmp_path / "value.p7s").write_bytes(_sm2_signed_data(signer, DATA, attributes=False, attached=False))
    (tmp_path / "data.xml").write_bytes(DATA)
    (tmp_path / "root.pem").write_text(signer[0].pem)
    code, answer = _run(tmp_path / "value.p7s", "--data", tmp_path / "data.xml", "--trust-root", tmp_path / "root.pem")
    assert code == 0 and answer["status"] == "VALID", answer
    text = CliRunner().invoke(verify_command, [str(tmp_path / "value.p7s"), "--data", str(tmp_path / "data.xml")])
    assert "Result" in text.output and text.exit_code == EXIT_CODES[Status.INDETERMINATE]


# ---------------------------------------------------------------- POST /api/v1/verify/ses

def _post(client, value: bytes, **parts):
    form = {"signature": (io.BytesIO(value), "value.dat")}
    for name, part in parts.items():
        form[name] = (io.BytesIO(part), name) if isinstance(part, bytes) else part
    return client.post("/api/v1/verify/ses", data=form, content_type="multipart/form-data")


def test_api_verifies_signed_data_and_bare_values(client):
    value = shared_file(*CORPUS, "gomain_signeddata_ynca.SignedValue.dat").read_bytes()
    xml = shared_file(*CORPUS, "gomain_signeddata_ynca.Signature.xml").read_bytes()
    answer = _post(client, value, data=xml).get_json()
    assert answer["format"] == "cms" and _checks(answer)["signature"] == "PASSED"
    problem(_post(client, value, digest=sm3(xml).hex()), 400, "invalid_input")

    bare = shared_file(*CORPUS, "ofdrw_digitalsign_bare_sm2.SignedValue.dat").read_bytes()
    bare_xml = shared_file(*CORPUS, "ofdrw_digitalsign_bare_sm2.Signature.xml").read_bytes()
    assert _checks(_post(client, bare, data=bare_xml).get_json())["signature"] == "INDETERMINATE"
    answer = _post(client, bare, data=bare_xml, signer_cert=shared_file(*BARE_CERT).read_bytes()).get_json()
    assert answer["format"] == "sm2" and _checks(answer)["signature"] == "PASSED", answer
    problem(_post(client, bare, data=bare_xml, signer_cert=b"not a certificate"), 400, "invalid_input")


def test_a_signature_algorithm_that_is_not_sm2_fails_by_name(signer):
    """The SignerInfo's algorithm is not covered by the signature, but a verifier must not read
    an SM2 signature under another algorithm's name (as it must not for SES: seal/verify.py)."""
    value = _sm2_signed_data(signer, DATA, attributes=True, attached=False, signature_oid=oids.ECDSA_SHA256)
    report = verify_signed_value(value, data=DATA, trusted_roots=(signer[0].cert_der,))
    check = next(c for c in report.signatures[0].checks if c.check is C.SIGNATURE)
    assert report.status is Status.INVALID and oids.ECDSA_SHA256 in check.reason.en
