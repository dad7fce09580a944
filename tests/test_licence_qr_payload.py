"""The licence QR's offline payload (issue #16, first slice): Base45 by RFC 9285's vectors and
properties; CWT claims in a COSE_Sign1 signed through the KeyStore with SM2 (checked by
`openssl pkeyutl` over the Sig_structure) or ES256 (checked by python-cwt, an independent
COSE implementation); every changed byte fails; an unknown kid is INDETERMINATE; junk and
bounded fuzz give a format FAILED, never a crash."""

from datetime import UTC, date, datetime

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ca.authority import spki_of
from licence import identifier, qr_payload
from licence.layout import qr_code, qr_version
from licence.qr_payload import PREFIX, QrKey
from trust import base45
from trust.errors import InvalidInput
from trust.report import CheckName as C, CheckStatus as S, Status

from tests.oracles import openssl

ISSUER = "111100003AGYGLUY2Q"
FACE = (("name", "名称", "福州测试科技有限公司"), ("type", "类型", "有限责任公司（自然人投资或控股）"),
        ("legal_representative", "法定代表人", "张三"), ("registered_capital", "注册资本", "壹仟万元整"))


# ---------------------------------------------------------------- Base45

@pytest.mark.parametrize("data, text", [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"),
                                        (b"ietf!", "QED8WEX0"), (b"", "")])
def test_base45_rfc9285_vectors(data, text):
    assert base45.encode(data) == text and base45.decode(text) == data


@given(st.binary(max_size=600))
def test_base45_round_trip_and_alphabet(data):
    text = base45.encode(data)
    assert base45.decode(text) == data and set(text) <= set(base45.ALPHABET)
    assert len(text) == len(data) // 2 * 3 + len(data) % 2 * 2


@pytest.mark.parametrize("text", ["GGW", "ZZZ", "A", "ABCD", "abc", "BB8#", ":::"])
def test_base45_refuses_what_no_bytes_encode(text):
    with pytest.raises(InvalidInput):
        base45.decode(text)


def test_trimming_keeps_a_trailing_space_which_is_base45():
    assert base45.trim("  \tZZ:AB \r\n") == "ZZ:AB "  # a scanner's line end goes, a space (Base45) stays


# ---------------------------------------------------------------- signing and verifying

def _claims(**changes):
    values = dict(licence_id=f"1.2.156.3005.2.11100000MB0143028R001.{ISSUER}.20260000001.001.V", issuer_code=ISSUER,
                  version=1, issued_at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC), valid_from=date(2026, 12, 7),
                  valid_to=None, face=FACE, holder_name="福州测试科技有限公司", holder_code="91350100M000100Y43")
    values.update(changes)
    return qr_payload.new_claims(**values)


@pytest.fixture(params=["SM2-with-SM3", "ecdsa-with-SHA256"])
def signed(request, session, keystore):
    key = keystore.generate(session, request.param, f"qr/{request.param}", ["qr"], actor="test")
    spki = spki_of(keystore.public_key(session, key))
    text = qr_payload.sign(session, keystore, key, _claims(valid_to=date(2031, 12, 6)))
    session.commit()
    return text, QrKey(qr_payload.kid_of(request.param, spki), request.param, spki, ISSUER)


def test_a_signed_payload_verifies_from_the_key_list(signed):
    text, key = signed
    import segno
    code = segno.make(text, error="m", boost_error=False)
    assert text.startswith(PREFIX) and code.mode == "alphanumeric" and code.version <= 12, (len(text), code.version)
    report = qr_payload.verify(text, [key])
    first = report.signatures[0]
    assert report.format == "qr" and first.check_status(C.SIGNATURE) is S.PASSED
    assert first.check_status(C.CHAIN) is S.PASSED and first.check_status(C.FORMAT) is S.PASSED
    # no status list yet: never VALID on the payload alone
    assert first.check_status(C.LICENCE_STATUS) is S.INDETERMINATE and report.status is Status.INDETERMINATE
    assert report.licence["valid_to"] == "2031-12-06" and report.licence["version"] == 1
    assert qr_payload.verify(f"https://trust.example/v/x#{text}", [key]).signatures[0].check_status(C.SIGNATURE) \
        is S.PASSED


def test_the_holder_code_compares_without_being_in_the_qr(signed):
    text, key = signed
    assert b"91350100M000100Y43" not in base45.decode(text[len(PREFIX):])
    assert qr_payload.verify(text, [key], holder_code="91350100m000100y43").licence["holder"]["code_matches"] is True
    wrong = qr_payload.verify(text, [key], holder_code="91350100M000100Y44")
    assert wrong.licence["holder"]["code_matches"] is False and wrong.warnings


def test_every_changed_byte_fails(signed):
    text, key = signed
    message = base45.decode(text[len(PREFIX):])
    for position in range(len(message)):
        changed = bytearray(message)
        changed[position] ^= 0x01
        report = qr_payload.verify(PREFIX + base45.encode(bytes(changed)), [key])
        first = report.signatures[0]
        assert first.check_status(C.SIGNATURE) is not S.PASSED, position  # absent when the format failed
        assert report.status is not Status.VALID


def test_a_key_not_in_the_list_is_indeterminate(signed, session, keystore):
    text, key = signed
    report = qr_payload.verify(text, [])
    first = report.signatures[0]
    assert first.check_status(C.CHAIN) is S.INDETERMINATE and first.check_status(C.SIGNATURE) is S.INDETERMINATE
    other = keystore.generate(session, key.algorithm, "qr/other", ["qr"], actor="test")
    spki = spki_of(keystore.public_key(session, other))
    impostor = QrKey(key.kid, key.algorithm, spki, ISSUER)  # same kid, another key: the signature decides
    assert qr_payload.verify(text, [impostor]).signatures[0].check_status(C.SIGNATURE) is S.FAILED
    assert qr_payload.verify(text, [impostor, key]).signatures[0].check_status(C.SIGNATURE) is S.PASSED


SERVICE = "https://trust.example.gov.cn"


@pytest.fixture(params=["SM2-with-SM3", "ecdsa-with-SHA256"])
def url_form(request, session, keystore):
    key = keystore.generate(session, request.param, f"qr/url/{request.param}", ["qr"], actor="test")
    spki = spki_of(keystore.public_key(session, key))
    text = qr_payload.sign(session, keystore, key, _claims(status=(1, 123_456)), page_url=SERVICE)
    session.commit()
    return text, QrKey(qr_payload.kid_of(request.param, spki), request.param, spki, ISSUER, SERVICE)


def test_the_url_form_opens_the_page_and_proves_the_licence_offline(url_form):
    """The phone's camera opens the page; the fragment, which never reaches a server, carries
    the payload without repeating the identifier the path already gives; within version 12."""
    text, key = url_form
    licence_id = _claims().licence_id
    address, _, payload = text.partition("#")
    assert address == f"HTTPS://TRUST.EXAMPLE.GOV.CN/V/{licence_id}" and payload.startswith(PREFIX)
    assert ISSUER.encode() not in base45.decode(payload[len(PREFIX):])
    assert qr_code(text).version <= qr_payload.HARD_LIMIT
    report = qr_payload.verify(text, [key])
    assert report.signatures[0].check_status(C.SIGNATURE) is S.PASSED and report.licence["licence_id"] == licence_id
    assert "%20" not in payload
    # as a browser's location.href gives it: scheme and host lower case, the fragment's spaces as %20
    href = f"{address.replace('HTTPS://TRUST.EXAMPLE.GOV.CN', SERVICE)}#{payload.replace(' ', '%20')}"
    assert qr_payload.verify(href, [key]).signatures[0].check_status(C.SIGNATURE) is S.PASSED


def test_the_url_forms_path_is_signed_and_needed(url_form):
    text, key = url_form
    address, _, payload = text.partition("#")
    other = identifier.parse(_claims().licence_id)
    other = identifier.build(other.type_code, other.issuer_code, "20260000002", 1)
    moved = qr_payload.verify(f"{address.rsplit('/', 1)[0]}/{other}#{payload}", [key])
    assert moved.signatures[0].check_status(C.SIGNATURE) is S.FAILED and moved.status is Status.INVALID
    for bare in (payload, f"https://trust.example.gov.cn/x#{payload}"):
        alone = qr_payload.verify(bare, [key])
        assert alone.signatures[0].check_status(C.FORMAT) is S.FAILED and "licence page" in alone.signatures[0].checks[0].reason.en
    message = base45.decode(payload[len(PREFIX):])
    for position in range(len(message)):
        changed = bytearray(message)
        changed[position] ^= 0x01
        report = qr_payload.verify(f"{address}#{PREFIX}{base45.encode(bytes(changed))}", [key])
        assert report.status is not Status.VALID and report.signatures[0].check_status(C.SIGNATURE) is not S.PASSED


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFXYZ:/.#%abc", min_size=1, max_size=600))
def test_the_version_found_before_signing_is_the_version_drawn(text):
    assert qr_version(text) == qr_code(text).version


def test_a_name_too_long_for_version_12_is_shortened_as_little_as_needed(session, keystore):
    key = keystore.generate(session, "SM2-with-SM3", "qr/long", ["qr"], actor="test")
    long_name = "江苏省某某市某某区某某某某某某某某餐饮管理服务连锁经营有限责任公司第一分公司"
    for page_url in (SERVICE, None):
        text = qr_payload.sign(session, keystore, key, _claims(holder_name=long_name, status=(1, 9)), page_url=page_url)
        shown = qr_payload.decode(text).claims.holder_name
        assert shown.endswith("…") and long_name.startswith(shown[:-1]) and len(shown) > 5
        assert qr_code(text).version == qr_payload.HARD_LIMIT
    short = qr_payload.sign(session, keystore, key, _claims(status=(1, 9)), page_url=SERVICE)
    assert qr_payload.decode(short).claims.holder_name == "福州测试科技有限公司"


def test_es256_payloads_verify_with_python_cwt(session, keystore):
    """python-cwt (an independent COSE/CWT implementation) verifies our ES256 COSE_Sign1 and
    reads the claims."""
    import cwt
    from cryptography.hazmat.primitives import serialization
    from cwt import COSE, COSEKey

    key = keystore.generate(session, "ecdsa-with-SHA256", "qr/es256", ["qr"], actor="test")
    public = keystore.public_key(session, key)
    text = qr_payload.sign(session, keystore, key, _claims())
    message = base45.decode(text[len(PREFIX):])
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    cose_key = COSEKey.from_pem(pem, alg="ES256", kid=qr_payload.kid_of("ecdsa-with-SHA256", spki_of(public)))
    payload = COSE.new().decode(message, cose_key)
    claims = cbor2.loads(payload)
    assert claims[1] == ISSUER and claims[qr_payload.LICENCE_CLAIM][1][2] == 1
    # the URL form: the COSE_Sign1 it signed is the one sent with the identifier put back
    address, _, sent = qr_payload.sign(session, keystore, key, _claims(), page_url=SERVICE).partition("#")
    decoded = qr_payload.decode(f"{address}#{sent}")
    protected, _, _, signature = cbor2.loads(base45.decode(sent[len(PREFIX):])).value
    whole = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, cbor2.dumps(decoded.claims.tocbor_value(), canonical=True),
                                           signature]), canonical=True)
    assert cbor2.loads(COSE.new().decode(whole, cose_key))[1] == ISSUER
    assert cwt.__version__


def test_sm2_payloads_verify_with_openssl_over_the_sig_structure(session, keystore, tmp_path):
    from trust.sm2 import signature_from_raw
    key = keystore.generate(session, "SM2-with-SM3", "qr/sm2", ["qr"], actor="test")
    public = keystore.public_key(session, key)
    decoded = qr_payload.decode(qr_payload.sign(session, keystore, key, _claims()))
    (tmp_path / "tbs").write_bytes(decoded.to_be_signed)
    (tmp_path / "sig").write_bytes(signature_from_raw(decoded.signature))
    (tmp_path / "pub.pem").write_bytes(public.to_pem() if isinstance(public.to_pem(), bytes) else public.to_pem().encode())
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-digest", "sm3",
            "-pkeyopt", "distid:1234567812345678", "-in", tmp_path / "tbs", "-sigfile", tmp_path / "sig")
    (tmp_path / "tbs").write_bytes(decoded.to_be_signed + b"x")
    assert openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-digest", "sm3",
                   "-pkeyopt", "distid:1234567812345678", "-in", tmp_path / "tbs", "-sigfile", tmp_path / "sig",
                   check=False).returncode != 0


@pytest.mark.parametrize("text", ["", "hello", PREFIX, PREFIX + "A", PREFIX + "%%%", PREFIX + base45.encode(b"\xff"),
                                  PREFIX + base45.encode(cbor2.dumps([1, 2, 3])),
                                  PREFIX + base45.encode(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"", b""]))),
                                  PREFIX + "A" * 5000])
def test_junk_is_a_format_failure(text):
    report = qr_payload.verify(text, [])
    assert report.signatures[0].check_status(C.FORMAT) is S.FAILED and report.status is Status.INVALID


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.integers(-70000, 10), inner,
                                                                                  max_size=5), max_leaves=30))
def test_fuzz_any_cbor_inside_a_cose_sign1_is_refused_or_reported(value):
    for message in (cbor2.dumps(value), cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -7, 4: bytes(8)}), {},
                                                                         cbor2.dumps(value), bytes(64)]))):
        report = qr_payload.verify(PREFIX + base45.encode(message), [])
        assert report.status is not Status.VALID


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700))
def test_fuzz_random_bytes_are_a_format_failure(data):
    report = qr_payload.verify(PREFIX + base45.encode(data), [])
    assert report.status is not Status.VALID


def test_a_literal_percent_20_in_the_code_reads_right_as_scanned_and_as_a_browser_gives_it(session, keystore):
    """About one code in three hundred holds "%20" in its Base45; a browser's location.href
    also writes the fragment's spaces as %20: every reading is tried and the signature decides."""
    key = keystore.generate(session, "SM2-with-SM3", "qr/percent", ["qr"], actor="test")
    spki = spki_of(keystore.public_key(session, key))
    listed = QrKey(qr_payload.kid_of("SM2-with-SM3", spki), "SM2-with-SM3", spki, ISSUER)
    for _ in range(5000):  # a new salt each time
        text = qr_payload.sign(session, keystore, key, _claims(status=(1, 7)), page_url=SERVICE)
        address, _, payload = text.partition("#")
        if "%20" in payload and " " in payload:
            break
    else:
        pytest.fail("no code with a literal %20 and a space in 5,000 draws")
    href = f"{address}#{payload.replace(' ', '%20')}"
    assert qr_payload.readings(href)[0] != text and text in qr_payload.readings(href)
    for reading in (text, href):
        assert qr_payload.verify(reading, [listed]).signatures[0].check_status(C.SIGNATURE) is S.PASSED
    assert qr_payload.decode_any(href).claims.licence_id == _claims().licence_id
    assert qr_payload.readings("ZZ1:%20%20") == ["ZZ1:%20%20"]  # the payload alone is never a browser's
    many = "HTTPS://T.GOV.CN/V/X#ZZ1:" + "%20" * 1400  # never a million readings
    assert qr_payload.readings(many) == ["HTTPS://T.GOV.CN/V/X#ZZ1:" + " " * 1400]
    assert qr_payload.verify(many, [listed]).status is Status.INVALID
