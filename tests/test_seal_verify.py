"""seal/verify.py: every corpus seal and signed value gets the verdict MANIFEST.tsv records
for integrity, signature and seal; our v4 and GM/T 0031 v1 structures (the latter built
here from the spec with asn1crypto, not with our encoder) verify VALID with the test root,
and tampering with any byte turns them INVALID."""

import csv
import hashlib
import re
import zipfile
from datetime import UTC, datetime, timedelta, timezone

import pytest
from asn1crypto import core
from hypothesis import HealthCheck, given, settings, strategies as st

from seal.ses import CertDigest, ExtData, build_seal_v4, build_signature_v4, parse_signature
from seal.verify import verify_seal, verify_ses_signature, verify_signed_value_for_ofd
from trust import oids
from trust.ber import (
    BIT_STRING,
    GENERALIZED_TIME,
    IA5_STRING,
    INTEGER,
    OCTET_STRING,
    OID,
    SEQUENCE,
    UTF8_STRING,
    encode_oid,
    tlv,
)
from trust.hashes import sm3
from trust.report import CheckName as C, CheckStatus as S, Code, Status
from trust.sm2 import decode_signature
from trust.x509 import load_certificates

from tests.certs import make_leaf
from tests.oracles import shared_file
from tests.test_path_validation import make_crl, serial_of, with_services

NOW = datetime.now(UTC).replace(microsecond=0)
PICTURE = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def _manifest() -> list[dict]:
    with shared_file("corpus", "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _seal_rows():
    return [(r["path"], r["what_it_is"]) for r in _manifest() if r["path"].startswith("seals/")]


def _signed_value_rows():
    rows = []
    for r in _manifest():
        path, text = r["path"], r["what_it_is"]
        if not path.startswith("signatures/") or path.endswith(".xml"):
            continue
        pair = re.search(r"[Pp]air(?:ed with)?:? (signatures/\S+?\.xml)", text)
        rows.append((path, pair.group(1) if pair else None, text))
    return rows


def _expected_seal(text: str):
    if "UNPARSEABLE" in text:
        return None
    return S.FAILED if "does NOT verify" in text else S.PASSED


@pytest.mark.parametrize("path,text", _seal_rows(), ids=[p for p, _ in _seal_rows()])
def test_corpus_seal_verdicts(path, text):
    report = verify_seal(shared_file("corpus", *path.split("/")).read_bytes())
    signature = report.signatures[0]
    expected = _expected_seal(text)
    if expected is None:
        assert signature.check_status(C.FORMAT) is S.FAILED and report.status is Status.INVALID
    else:
        assert signature.check_status(C.FORMAT) is S.PASSED
        assert signature.check_status(C.SEAL) is expected, [c.reason.en for c in signature.checks]
        assert signature.seal["esID"]


@pytest.mark.parametrize("name", ["UserV4.esl", "UserV1.esl"])
def test_fixture_seals_verify(name):
    report = verify_seal(shared_file("spec", "fixtures", name).read_bytes(), at=datetime(2021, 1, 1, tzinfo=UTC))
    signature = report.signatures[0]
    assert signature.check_status(C.SEAL) is S.PASSED
    assert signature.check_status(C.SEAL_VALIDITY) is S.PASSED
    assert signature.check_status(C.CHAIN) is S.INDETERMINATE  # no trusted root given
    root = load_certificates(shared_file("corpus", "certs", "ofdrw__ROOT_p12_cert_0x1719d2bdec7.pem").read_bytes())
    with_root = verify_seal(shared_file("spec", "fixtures", name).read_bytes(), trusted_roots=root,
                            at=datetime(2021, 1, 1, tzinfo=UTC)).signatures[0]
    # the ofdrw root lacks keyCertSign: chains, with a warning (see trust.path)
    assert with_root.check_status(C.CHAIN) is S.WARNING


@pytest.mark.parametrize("path,pair,text", _signed_value_rows(), ids=[r[0] for r in _signed_value_rows()])
def test_corpus_signed_value_verdicts(path, pair, text):
    value = shared_file("corpus", *path.split("/")).read_bytes()
    xml = shared_file("corpus", *pair.split("/")).read_bytes()
    sign_type = "Sign" if "Type=Sign" in text or "SignedData" in text else "Seal"
    known = re.search(r"public key = (certs/\S+?\.pem)", text)
    certificates = load_certificates(shared_file("corpus", *known.group(1).split("/")).read_bytes()) if known else ()
    report = verify_signed_value_for_ofd(value, xml, sign_type=sign_type, certificates=certificates)
    statuses = {c.check: c.status for c in report.checks}
    explain = [(c.check.value, c.status.value, c.reason.en) for c in report.checks]
    assert report.check_status(C.FORMAT) is S.PASSED, explain
    hash_match = re.search(r"(?:dataHash==SM3\(paired Signature.xml\)|==SM3\(Signature.xml\)): (True|False)", text)
    if hash_match:
        assert report.check_status(C.INTEGRITY) is (S.PASSED if hash_match.group(1) == "True" else S.FAILED), explain
    if "VERIFIES" in text.split("embedded seal")[0] and "FAILS" not in text:
        assert report.check_status(C.SIGNATURE) is S.PASSED, explain
    if "FAILS" in text or "EXPECT INVALID" in text:
        assert report.status is Status.INVALID
    if "FAILS: SM2 verify failed" in text:
        assert report.check_status(C.SIGNATURE) is S.FAILED, explain
    if "maker sig VERIFIES" in text:
        assert report.check_status(C.SEAL) is S.PASSED, explain
        assert report.seal and report.seal["esID"]
    if "bare DER SM2" in text:
        assert report.check_status(C.SIGNATURE) is S.PASSED and statuses[C.SEAL] is S.NOT_APPLICABLE, explain


def _ofd_member(name: str, member: str) -> bytes:
    with zipfile.ZipFile(shared_file("spec", "fixtures", name)) as package:
        return package.read(member)


def test_fixture_ofd_seal_signature():
    """SESV4SignDoc.ofd: what the OFD verifier passes in."""
    base = "Doc_0/Signs/Sign_0/"
    xml, value, esl = (_ofd_member("SESV4SignDoc.ofd", base + f) for f in ("Signature.xml", "SignedValue.dat", "Seal.esl"))
    report = verify_signed_value_for_ofd(value, xml, seal_esl=esl, sign_type="Seal", signature_id="s1")
    for name in (C.INTEGRITY, C.SIGNATURE, C.SEAL, C.SEAL_BINDING):
        assert report.check_status(name) is S.PASSED, name
    assert report.check_status(C.CHAIN) is S.INDETERMINATE and report.status is not Status.VALID
    assert report.id == "s1" and report.signer.startswith("CN=Test Certificate")
    other = verify_signed_value_for_ofd(value, xml, seal_esl=shared_file("spec", "fixtures", "UserV1.esl").read_bytes())
    assert other.check_status(C.SEAL_BINDING) is S.FAILED  # a Seal.esl that is not the embedded seal
    assert verify_signed_value_for_ofd(value, xml + b" ").check_status(C.INTEGRITY) is S.FAILED


def test_fixture_ofd_plain_signature():
    base = "Doc_0/Signs/Sign_0/"
    xml, value = (_ofd_member("DigitalSign.ofd", base + f) for f in ("Signature.xml", "SignedValue.dat"))
    user = load_certificates(shared_file("corpus", "certs", "ofdrw__USER_p12_cert_0x1719d2dab60.pem").read_bytes())
    report = verify_signed_value_for_ofd(value, xml, sign_type="Sign", certificates=user,
                                         signing_time=datetime(2020, 4, 22, 8, 22, 44, tzinfo=UTC))
    assert report.check_status(C.SIGNATURE) is S.PASSED and report.check_status(C.SEAL) is S.NOT_APPLICABLE
    assert report.check_status(C.CERTIFICATE) is S.PASSED
    assert verify_signed_value_for_ofd(value, xml + b" ", sign_type="Sign", certificates=user) \
        .check_status(C.SIGNATURE) is S.FAILED
    assert verify_signed_value_for_ofd(value, xml, sign_type="Sign").check_status(C.SIGNATURE) is S.INDETERMINATE


# ---------------------------------------------------------------- our own seals, v4


def _v4(seal_pki, *, valid_end=None, signer=None, time_info=None, data=b"<ofd:Signature/>") -> tuple[bytes, bytes]:
    _root, _inter, maker, default_signer = seal_pki
    signer = signer or default_signer
    seal = build_seal_v4(maker_cert=maker.cert_der, sign=maker.sign, es_id="T0001", vid="TRUST", seal_type=1,
                         name="测试专用章", cert_list=[default_signer.cert_der], create_date=NOW - timedelta(hours=2),
                         valid_start=NOW - timedelta(hours=2), valid_end=valid_end or NOW + timedelta(days=30),
                         picture_type="PNG", picture_data=PICTURE, picture_width=40, picture_height=40)
    signature = build_signature_v4(seal=seal, data_hash=sm3(data), property_info="/Doc_0/Signs/Sign_0/Signature.xml",
                                   signer_cert=signer.cert_der, sign=signer.sign,
                                   time_info=time_info or NOW - timedelta(hours=1),
                                   ext_datas=[ExtData("1.2.156.999.3", False, b"e")])
    return seal, signature


def _chain(seal_pki):
    return (seal_pki[0].cert_der,)


def test_our_v4_signature_is_valid(seal_pki):
    seal, signature = _v4(seal_pki)
    report = verify_ses_signature(signature, data=b"<ofd:Signature/>", trusted_roots=_chain(seal_pki))
    # the intermediate is not inside the signature: chain is INDETERMINATE without it
    assert report.check_status(C.CHAIN) is S.INDETERMINATE
    assert report.check_status(C.REVOCATION) is S.INDETERMINATE  # nothing settles it without a chain
    for name in (C.FORMAT, C.INTEGRITY, C.SIGNATURE, C.SEAL, C.SEAL_BINDING, C.SEAL_VALIDITY, C.CERTIFICATE):
        assert report.check_status(name) is S.PASSED, name
    assert report.check_status(C.TIMESTAMP) is S.NOT_APPLICABLE
    assert report.seal == {"esID": "T0001", "name": "测试专用章", "version": 4}
    # with the intermediate trusted directly, the chain passes
    trusted = verify_ses_signature(signature, data=b"<ofd:Signature/>", trusted_roots=(seal_pki[1].cert_der,))
    assert trusted.check_status(C.CHAIN) is S.PASSED
    # our test certificates name no CRL or OCSP service: nothing to check once the chain is trusted
    assert trusted.check_status(C.REVOCATION) is S.NOT_APPLICABLE
    assert trusted.status is Status.VALID
    by_hash = verify_ses_signature(signature, data_hash=sm3(b"<ofd:Signature/>"))
    assert by_hash.check_status(C.INTEGRITY) is S.PASSED
    assert verify_ses_signature(signature).check_status(C.INTEGRITY) is S.INDETERMINATE
    assert verify_ses_signature(signature, data=b"other").check_status(C.INTEGRITY) is S.FAILED
    seal_report = verify_seal(seal, trusted_roots=(seal_pki[1].cert_der,))
    assert seal_report.format == "seal" and seal_report.status is Status.VALID


def test_seal_rules(seal_pki):
    _seal, late = _v4(seal_pki, time_info=NOW + timedelta(days=60))     # signed after the seal expired
    assert _codes(verify_ses_signature(late, data=b"<ofd:Signature/>"))[C.SEAL_VALIDITY] is Code.EXPIRED
    stranger = make_leaf(seal_pki[1], "Not In The Seal")
    _seal, foreign = _v4(seal_pki, signer=stranger)
    report = verify_ses_signature(foreign, data=b"<ofd:Signature/>")
    assert report.check_status(C.SIGNATURE) is S.PASSED and report.check_status(C.SEAL_BINDING) is S.FAILED
    assert _codes(report)[C.SEAL_BINDING] is Code.SIG_CONSTRAINTS_FAILURE
    expired = make_leaf(seal_pki[1], "Expired Signer", not_before=NOW - timedelta(days=10), not_after=NOW - timedelta(days=5))
    _seal, old = _v4(seal_pki, signer=expired)
    assert _codes(verify_ses_signature(old, data=b"<ofd:Signature/>"))[C.CERTIFICATE] is Code.EXPIRED
    encipher = make_leaf(seal_pki[1], "Encryption Only", key_usage={"key_encipherment"})
    _seal, wrong_usage = _v4(seal_pki, signer=encipher)
    assert _codes(verify_ses_signature(wrong_usage, data=b"<ofd:Signature/>"))[C.CERTIFICATE] \
        is Code.SIG_CONSTRAINTS_FAILURE


def _codes(report) -> dict:
    """The code of each check that did not pass (one signature)."""
    return {c.check: c.code for c in report.checks if c.status in (S.FAILED, S.INDETERMINATE)}


def _tamper(signature: bytes, data: bytes, trusted_roots) -> list:
    """Flip a bit in every byte of TBS_Sign (the signed bytes) and in every 4th byte of the
    rest; return the changes that did not make the report INVALID. One change is by design
    not one (issue #13): a BIT STRING's unused-bits count, outside the signed bytes, raised
    over trailing zero bits leaves the value as it was; the report says so in its format
    check, and such a change is not returned."""
    tbs = parse_signature(signature).tbs_raw
    start = signature.find(tbs)
    positions = [*range(start, start + len(tbs)), *range(0, start), *range(start + len(tbs), len(signature), 4)]
    survivors = []
    for position in positions:
        changed = signature[:position] + bytes([signature[position] ^ 0x01]) + signature[position + 1:]
        report = verify_ses_signature(changed, data=data, trusted_roots=trusted_roots)
        tolerated = any("unused bits but holds whole bytes" in c.reason.en for c in report.checks)
        if report.status is not Status.INVALID and not (position >= start + len(tbs) and tolerated):
            survivors.append((position, [(c.check.value, c.status.value) for c in report.checks]))
    return survivors


def test_tampering_with_any_byte_of_v4_is_invalid(seal_pki):
    _seal, signature = _v4(seal_pki)
    assert _tamper(signature, b"<ofd:Signature/>", (seal_pki[1].cert_der,)) == []


# ---------------------------------------------------------------- GM/T 0031 v1, built from the spec

class Header(core.Sequence):
    _fields = [("id", core.IA5String), ("version", core.Integer), ("vid", core.IA5String)]


class PropertyV1(core.Sequence):
    _fields = [("type", core.Integer), ("name", core.UTF8String), ("cert_list", core.SequenceOf, {"spec": core.OctetString}),
               ("create_date", core.UTCTime), ("valid_start", core.UTCTime), ("valid_end", core.UTCTime)]


class Picture(core.Sequence):
    _fields = [("type", core.IA5String), ("data", core.OctetString), ("width", core.Integer), ("height", core.Integer)]


class SealInfo(core.Sequence):
    _fields = [("header", Header), ("es_id", core.IA5String), ("property", PropertyV1), ("picture", Picture)]


class SignedPartV1(core.Sequence):  # what the v1 maker signs: SEQUENCE{esealInfo, cert, signatureAlgorithm}
    _fields = [("eseal_info", SealInfo), ("cert", core.OctetString), ("algorithm", core.ObjectIdentifier)]


class SignInfo(core.Sequence):
    _fields = [("cert", core.OctetString), ("algorithm", core.ObjectIdentifier), ("sign_data", core.OctetBitString)]


class SealV1(core.Sequence):
    _fields = [("eseal_info", SealInfo), ("sign_info", SignInfo)]


class TbsSignV1(core.Sequence):
    _fields = [("version", core.Integer), ("eseal", SealV1), ("time_info", core.OctetBitString),
               ("data_hash", core.OctetBitString), ("property_info", core.IA5String),
               ("cert", core.OctetString), ("algorithm", core.ObjectIdentifier)]


class SignatureV1(core.Sequence):
    _fields = [("to_sign", TbsSignV1), ("signature", core.OctetBitString)]


def _v1(seal_pki, data: bytes) -> bytes:
    _root, _inter, maker, signer = seal_pki
    info = SealInfo({
        "header": {"id": "ES", "version": 1, "vid": "TEST"}, "es_id": "V1-0001",
        "property": {"type": 1, "name": "旧版测试章", "cert_list": [signer.cert_der],
                     "create_date": NOW - timedelta(hours=2), "valid_start": NOW - timedelta(hours=2),
                     "valid_end": NOW + timedelta(days=30)},
        "picture": {"type": "PNG", "data": PICTURE, "width": 40, "height": 40}})
    signed_part = SignedPartV1({"eseal_info": info, "cert": maker.cert_der, "algorithm": oids.SM2_WITH_SM3})
    seal = SealV1({"eseal_info": info, "sign_info": {"cert": maker.cert_der, "algorithm": oids.SM2_WITH_SM3,
                                                     "sign_data": maker.sign(signed_part.dump())}})
    tbs = TbsSignV1({"version": 1, "eseal": seal,
                     "time_info": (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8)))
                     .strftime("%Y-%m-%d %H:%M:%S").encode(),   # ofdrw style: local time text
                     "data_hash": sm3(data), "property_info": "/Doc_0/Signs/Sign_0/Signature.xml",
                     "cert": signer.cert_der, "algorithm": oids.SM2_WITH_SM3})
    return SignatureV1({"to_sign": tbs, "signature": signer.sign(tbs.dump())}).dump()


def test_v1_built_from_the_spec_verifies(seal_pki):
    signature = _v1(seal_pki, b"v1 data")
    parsed = parse_signature(signature)
    assert parsed.layout == 1 and parsed.seal.layout == 1 and parsed.version == 1
    assert abs(parsed.time_info - (NOW - timedelta(hours=1))) < timedelta(seconds=1)
    report = verify_ses_signature(signature, data=b"v1 data", trusted_roots=(seal_pki[1].cert_der,))
    assert report.status is Status.VALID
    for name in (C.FORMAT, C.INTEGRITY, C.SIGNATURE, C.SEAL, C.SEAL_BINDING, C.SEAL_VALIDITY, C.CERTIFICATE, C.CHAIN):
        assert report.check_status(name) is S.PASSED, name
    seal = SignatureV1.load(signature)["to_sign"]["eseal"].dump()
    assert verify_seal(seal).signatures[0].check_status(C.SEAL) is S.PASSED


def test_tampering_with_any_byte_of_v1_is_invalid(seal_pki):
    assert _tamper(_v1(seal_pki, b"v1 data"), b"v1 data", (seal_pki[1].cert_der,)) == []


def test_unreadable_input_is_a_failed_format_check():
    for junk in (b"", b"\x30\x03\x02\x01", b"garbage" * 10):
        assert verify_ses_signature(junk).check_status(C.FORMAT) is S.FAILED
        assert verify_seal(junk).status is Status.INVALID
        assert verify_signed_value_for_ofd(junk, b"<x/>").check_status(C.FORMAT) is S.FAILED


CORPUS_VALUES = [shared_file("corpus", "signatures", name).read_bytes() for name in (
    "gomain_signeddata_ynca.SignedValue.dat", "oesplugin_signeddata_attached_hash.SignedValue.dat",
    "kinggrid_v2_gmt0031.SignedValue.dat", "ofdrw_digitalsign_bare_sm2.SignedValue.dat", "antchain_v4.SignedValue.dat")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(min_value=0, max_value=len(CORPUS_VALUES) - 1), position=st.integers(min_value=0),
       bit=st.integers(min_value=0, max_value=7), cut=st.booleans(), noise=st.binary(max_size=64))
def test_fuzz_verifiers_only_report(which, position, bit, cut, noise):
    """Any input gives a report: flipped bits, truncations, random bytes. Never an exception."""
    value = CORPUS_VALUES[which]
    position %= len(value)
    changed = value[:position] if cut else value[:position] + bytes([value[position] ^ (1 << bit)]) + value[position + 1:]
    for candidate in (changed, noise):
        report = verify_signed_value_for_ofd(candidate, b"<ofd:Signature/>", seal_esl=noise or None)
        assert report.checks
        assert verify_ses_signature(candidate, data=b"x").checks
        assert verify_seal(candidate).signatures


def test_certificate_digest_list_binds_the_signer(seal_pki):
    _root, _inter, maker, signer = seal_pki
    for digest, expected in ((CertDigest("SM3", sm3(signer.cert_der)), S.PASSED),
                             (CertDigest("SHA-1", hashlib.sha1(signer.cert_der).digest()), S.PASSED),
                             (CertDigest("SM3", sm3(b"someone else")), S.FAILED),
                             (CertDigest("MD-UNKNOWN", b"\x00" * 16), S.INDETERMINATE)):
        seal = build_seal_v4(maker_cert=maker.cert_der, sign=maker.sign, es_id="D1", vid="T", seal_type=1, name="章",
                             cert_digest_list=[digest], create_date=NOW - timedelta(hours=2),
                             valid_start=NOW - timedelta(hours=2), valid_end=NOW + timedelta(days=1),
                             picture_type="PNG", picture_data=PICTURE, picture_width=40, picture_height=40)
        signature = build_signature_v4(seal=seal, data_hash=sm3(b"d"), property_info="d", signer_cert=signer.cert_der,
                                       sign=signer.sign, time_info=NOW - timedelta(hours=1))
        assert verify_ses_signature(signature, data=b"d").check_status(C.SEAL_BINDING) is expected, digest.type


def test_signed_data_in_a_seal_signature_with_its_seal_file():
    """Some producers put a GB/T 35275 SignedData in a Type="Seal" signature beside a Seal.esl:
    the seal is checked on its own and must list the signer."""
    value = shared_file("corpus", "signatures", "gomain_signeddata_ynca.SignedValue.dat").read_bytes()
    xml = shared_file("corpus", "signatures", "gomain_signeddata_ynca.Signature.xml").read_bytes()
    esl = shared_file("corpus", "seals", "gomain__Seal_yunnan_png.esl").read_bytes()
    report = verify_signed_value_for_ofd(value, xml, seal_esl=esl, sign_type="Seal")
    assert report.check_status(C.SIGNATURE) is S.PASSED and report.check_status(C.INTEGRITY) is S.PASSED
    assert report.check_status(C.SEAL) is S.PASSED          # the seal file's maker signature
    assert report.check_status(C.SEAL_BINDING) is S.FAILED  # but this signer is not one it lists


# ---------------------------------------------------------------- deviations and refusals, checked by name

def _signed(body: bytes, cert: bytes, sign, *, raw_rs: bool = False, alg: str = oids.SM2_WITH_SM3) -> bytes:
    """SEQUENCE{body, OCTET STRING cert, OID alg, BIT STRING signature over body}: the shape
    of both SES_Seal v4 and SES_Signature v4, assembled by hand so a test can sign what our
    builders refuse to write."""
    signature = sign(body)
    if raw_rs:
        r, s = decode_signature(signature)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return tlv(SEQUENCE, body + tlv(OCTET_STRING, cert) + tlv(OID, encode_oid(alg)) + tlv(BIT_STRING, b"\0" + signature))


def _gtime(value: datetime, text: str = "%Y%m%d%H%M%SZ") -> bytes:
    return tlv(GENERALIZED_TIME, value.strftime(text).encode())


def _seal_info(signer_cert: bytes, *, create=None, start=None, end=None, time_format="%Y%m%d%H%M%SZ",
               picture_type="PNG", picture=PICTURE) -> bytes:
    """SES_SealInfo v4 (GB/T 38540 field order), its times written with ``time_format``."""
    create, start, end = (create or NOW - timedelta(hours=2), start or NOW - timedelta(hours=2),
                          end or NOW + timedelta(days=30))
    header = tlv(SEQUENCE, tlv(IA5_STRING, b"ES") + tlv(INTEGER, b"\x04") + tlv(IA5_STRING, b"TEST"))
    prop = tlv(SEQUENCE, tlv(INTEGER, b"\x01") + tlv(UTF8_STRING, "手工测试章".encode()) + tlv(INTEGER, b"\x01")
               + tlv(SEQUENCE, tlv(OCTET_STRING, signer_cert))
               + b"".join(_gtime(t, time_format) for t in (create, start, end)))
    pic = tlv(SEQUENCE, tlv(IA5_STRING, picture_type.encode()) + tlv(OCTET_STRING, picture)
              + tlv(INTEGER, b"\x28") + tlv(INTEGER, b"\x28"))
    return tlv(SEQUENCE, header + tlv(IA5_STRING, b"H0001") + prop + pic)


def _ses(seal_pki, seal: bytes, *, version: int = 4, data: bytes = b"data", time_format="%Y%m%d%H%M%SZ",
         raw_rs: bool = False, alg: str = oids.SM2_WITH_SM3, signer=None) -> bytes:
    signer = signer or seal_pki[3]
    tbs = tlv(SEQUENCE, tlv(INTEGER, bytes([version])) + seal + _gtime(NOW - timedelta(hours=1), time_format)
              + tlv(BIT_STRING, b"\0" + sm3(data)) + tlv(IA5_STRING, b"/Doc_0/Signs/Sign_0/Signature.xml"))
    return _signed(tbs, signer.cert_der, signer.sign, raw_rs=raw_rs, alg=alg)


def _hand_seal(seal_pki, **options) -> bytes:
    raw_rs = options.pop("raw_rs", False)
    alg = options.pop("alg", oids.SM2_WITH_SM3)
    return _signed(_seal_info(seal_pki[3].cert_der, **options), seal_pki[2].cert_der, seal_pki[2].sign, raw_rs=raw_rs, alg=alg)


def _warnings(report) -> str:
    return " | ".join(c.reason.en for c in report.checks if c.check is C.FORMAT)


def test_hand_assembled_seal_signature_is_valid(seal_pki):
    """The hand assembly is faithful: with nothing unusual it is VALID with no deviation."""
    report = verify_ses_signature(_ses(seal_pki, _hand_seal(seal_pki)), data=b"data", trusted_roots=(seal_pki[1].cert_der,))
    assert report.status is Status.VALID and "deviations" not in _warnings(report)


def test_unknown_algorithms_fail_the_check_that_names_them(seal_pki):
    unknown = "1.2.156.10197.1.599"
    seal = verify_seal(_hand_seal(seal_pki, alg=unknown), trusted_roots=(seal_pki[1].cert_der,))
    assert seal.status is Status.INVALID and seal.signatures[0].check_status(C.SEAL) is S.FAILED
    assert unknown in next(c for c in seal.signatures[0].checks if c.check is C.SEAL).reason.en
    signature = verify_ses_signature(_ses(seal_pki, _hand_seal(seal_pki), alg=oids.ECDSA_SHA256), data=b"data",
                                     trusted_roots=(seal_pki[1].cert_der,))
    assert signature.status is Status.INVALID and signature.check_status(C.SIGNATURE) is S.FAILED
    assert oids.ECDSA_SHA256 in next(c for c in signature.checks if c.check is C.SIGNATURE).reason.en
    assert signature.check_status(C.SEAL) is S.PASSED  # the seal itself is fine


@pytest.mark.parametrize("version", [3, 5, 99])
def test_a_signature_version_other_than_the_seals_is_a_warning(seal_pki, version):
    report = verify_ses_signature(_ses(seal_pki, _hand_seal(seal_pki), version=version), data=b"data",
                                  trusted_roots=(seal_pki[1].cert_der,))
    assert report.status is Status.VALID, report.checks
    assert f"TBS_Sign version {version} differs from the seal header version 4" in _warnings(report)
    assert parse_signature(_ses(seal_pki, _hand_seal(seal_pki), version=version)).version == version


def test_dates_out_of_order_in_a_received_seal_fail_the_seal_check(seal_pki):
    backwards = _hand_seal(seal_pki, start=NOW + timedelta(days=30), end=NOW - timedelta(hours=2))
    report = verify_seal(backwards, trusted_roots=(seal_pki[1].cert_der,))
    seal_check = next(c for c in report.signatures[0].checks if c.check is C.SEAL)
    assert report.status is Status.INVALID and seal_check.status is S.FAILED and "out of order" in seal_check.reason.en
    made_after_expiry = _hand_seal(seal_pki, create=NOW + timedelta(days=40))
    assert verify_seal(made_after_expiry).signatures[0].check_status(C.SEAL) is S.FAILED


def test_raw_r_s_signatures_verify_with_a_warning(seal_pki):
    report = verify_ses_signature(_ses(seal_pki, _hand_seal(seal_pki, raw_rs=True), raw_rs=True), data=b"data",
                                  trusted_roots=(seal_pki[1].cert_der,))
    assert report.status is Status.VALID
    for name in (C.SEAL, C.SIGNATURE):
        found = next(c for c in report.checks if c.check is name)
        assert "raw 64-byte r‖s" in found.reason.en, name


@pytest.mark.parametrize("time_format,warning", [("%Y%m%d%H%M%S", "no time zone"), ("%y%m%d%H%M%SZ", "two-digit year")])
def test_signed_time_deviations_stay_valid_with_a_warning(seal_pki, time_format, warning):
    seal = _hand_seal(seal_pki, time_format=time_format)
    report = verify_ses_signature(_ses(seal_pki, seal, time_format=time_format), data=b"data",
                                  trusted_roots=(seal_pki[1].cert_der,))
    assert report.status is Status.VALID, report.checks
    assert warning in _warnings(report)


def test_a_picture_that_is_not_its_type_is_a_warning(seal_pki):
    report = verify_seal(_hand_seal(seal_pki, picture=b"GIF89a" + b"\0" * 20), trusted_roots=(seal_pki[1].cert_der,))
    assert report.status is Status.VALID
    assert any("not a PNG file" in w.en for w in report.warnings)


def test_ber_seal_verifies_after_re_encoding_with_a_warning():
    report = verify_seal(shared_file("corpus", "seals", "ofdrw-hist-397ba770__UserV1_BER.esl").read_bytes())
    seal_check = next(c for c in report.signatures[0].checks if c.check is C.SEAL)
    assert seal_check.status is S.PASSED and "DER re-encoding" in seal_check.reason.en
    assert any("BER" in w.en for w in report.warnings)


def test_a_revoked_signer_certificate_makes_the_signature_invalid(seal_pki, responder, monkeypatch):
    """The signer's certificate names a CRL on a loopback server the verifier may ask."""
    monkeypatch.setenv("TRUST_REVOCATION_HOSTS", "127.0.0.1")
    _root, inter, _maker, _signer = seal_pki
    signer = with_services(make_leaf(inter, "Revoked Signer"), inter, crl_url=f"{responder.base}/inter.crl")
    seal = _signed(_seal_info(signer.cert_der), seal_pki[2].cert_der, seal_pki[2].sign)
    signature = _ses(seal_pki, seal, signer=signer)
    responder.files["/inter.crl"] = make_crl(inter)
    good = verify_ses_signature(signature, data=b"data", trusted_roots=(inter.cert_der,))
    assert good.check_status(C.REVOCATION) is S.PASSED and good.status is Status.VALID
    responder.files["/revoked.crl"] = make_crl(inter, [(serial_of(signer), NOW - timedelta(hours=3), "key_compromise")])
    revoked_signer = with_services(signer, inter, crl_url=f"{responder.base}/revoked.crl")
    seal = _signed(_seal_info(revoked_signer.cert_der), seal_pki[2].cert_der, seal_pki[2].sign)
    report = verify_ses_signature(_ses(seal_pki, seal, signer=revoked_signer), data=b"data", trusted_roots=(inter.cert_der,))
    assert report.check_status(C.REVOCATION) is S.FAILED and report.status is Status.INVALID
    assert _codes(report)[C.REVOCATION] is Code.REVOKED
