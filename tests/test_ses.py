"""seal/ses.py: GB/T 38540 structures we build parse back identically and are read by
OpenSSL; the SM2 signatures inside verify with `openssl pkeyutl`; every corpus seal and
signature parses (or fails cleanly); the parser survives fuzzing with its own error only."""

import base64
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from seal.ses import (
    CertDigest,
    ExtData,
    SealFormatError,
    build_seal_info_v4,
    build_seal_v4,
    build_signature_v4,
    parse_seal,
    parse_signature,
)
from trust import oids
from trust.errors import InvalidInput
from trust.hashes import sm3

from tests.certs import make_leaf, make_root
from tests.oracles import STANDARD_ID, openssl, shared_file

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki():
    root = make_root("Seal Test Root")
    maker = make_leaf(root, "Seal Maker 制章系统")
    signer = make_leaf(root, "Signer 某某局")
    return root, maker, signer


def seal_fields(signer_cert: bytes, **changes) -> dict:
    fields = dict(es_id="11010000000001", vid="TRUST", seal_type=1, name="测试局审批专用章",
                  cert_list=[signer_cert], create_date=NOW - timedelta(days=1), valid_start=NOW - timedelta(days=1),
                  valid_end=NOW + timedelta(days=365), picture_type="PNG", picture_data=PNG,
                  picture_width=40, picture_height=40,
                  ext_datas=[ExtData("1.2.156.999.1", False, b"ext")])
    fields.update(changes)
    return fields


def make_seal(pki, **changes) -> bytes:
    _root, maker, signer = pki
    return build_seal_v4(maker_cert=maker.cert_der, sign=maker.sign, **seal_fields(signer.cert_der, **changes))


def make_signature(pki, seal: bytes, data: bytes = b"<Signature/>", **options) -> bytes:
    signer = pki[2]
    return build_signature_v4(seal=seal, data_hash=sm3(data), property_info="/Doc_0/Signs/Sign_0/Signature.xml",
                              signer_cert=signer.cert_der, sign=signer.sign, time_info=NOW, **options)


def test_seal_round_trip(pki):
    _root, maker, signer = pki
    fields = seal_fields(signer.cert_der)
    der = make_seal(pki)
    seal = parse_seal(der)
    info = seal.seal_info
    assert seal.raw == der and seal.layout == 4 and seal.version == 4 and not seal.warnings
    assert (info.header_id, info.vid, info.es_id, info.type, info.name) == ("ES", "TRUST", fields["es_id"], 1, fields["name"])
    assert info.cert_list_type == 1 and info.cert_list == (signer.cert_der,)
    assert (info.create_date, info.valid_start, info.valid_end) == (fields["create_date"], fields["valid_start"], fields["valid_end"])
    assert (info.picture_type, info.picture_data, info.picture_width, info.picture_height) == ("PNG", PNG, 40, 40)
    assert info.ext_datas == (ExtData("1.2.156.999.1", False, b"ext"),)
    assert seal.cert == maker.cert_der and seal.sign_alg_id == oids.SM2_WITH_SM3
    # the same fields build the same bytes: nothing lost in the parse
    assert build_seal_info_v4(**fields) == info.raw
    maker.key.public_key().verify(seal.signed_value, info.raw)


def test_seal_with_certificate_digests(pki):
    digest = CertDigest("SM3", sm3(pki[2].cert_der))
    seal = parse_seal(make_seal(pki, cert_list=[], cert_digest_list=[digest]))
    assert seal.seal_info.cert_list_type == 2 and seal.seal_info.cert_digest_list == (digest,)


def test_signature_round_trip(pki):
    seal = make_seal(pki)
    der = make_signature(pki, seal, ext_datas=[ExtData("1.2.156.999.2", True, b"x")])
    ses = parse_signature(der)
    assert ses.raw == der and ses.layout == 4 and ses.version == 4 and not ses.warnings
    assert ses.seal.raw == seal and ses.time_info == NOW and ses.data_hash == sm3(b"<Signature/>")
    assert ses.property_info == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert ses.cert == pki[2].cert_der and ses.signature_alg_id == oids.SM2_WITH_SM3 and ses.time_stamp is None
    assert ses.ext_datas == (ExtData("1.2.156.999.2", True, b"x"),)
    assert der.find(ses.tbs_raw) == 4  # TBS_Sign is the first element, sliced out verbatim


def test_openssl_reads_our_structures_and_verifies_the_signature(pki, tmp_path):
    seal = make_seal(pki)
    der = make_signature(pki, seal)
    for name, data in (("seal.esl", seal), ("SignedValue.dat", der)):
        (tmp_path / name).write_bytes(data)
        dump = openssl("asn1parse", "-inform", "DER", "-in", tmp_path / name).stdout.decode()
        assert "SM2-with-SM3" in dump and "GENERALIZEDTIME" in dump
    ses = parse_signature(der)
    (tmp_path / "tbs.der").write_bytes(ses.tbs_raw)
    (tmp_path / "sig.der").write_bytes(ses.signature)
    (tmp_path / "signer.der").write_bytes(ses.cert)
    openssl("x509", "-inform", "DER", "-in", tmp_path / "signer.der", "-pubkey", "-noout", "-out", tmp_path / "signer.pub")
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "signer.pub", "-rawin", "-in",
                     tmp_path / "tbs.der", "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.der")
    assert b"Signature Verified Successfully" in result.stdout
    # the maker's signature over DER(SES_SealInfo), with the maker certificate the seal carries
    parsed = parse_seal(seal)
    (tmp_path / "info.der").write_bytes(parsed.seal_info.raw)
    (tmp_path / "maker_sig.der").write_bytes(parsed.signed_value)
    (tmp_path / "maker.der").write_bytes(parsed.cert)
    openssl("x509", "-inform", "DER", "-in", tmp_path / "maker.der", "-pubkey", "-noout", "-out", tmp_path / "maker.pub")
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "maker.pub", "-rawin", "-in", tmp_path / "info.der",
            "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "maker_sig.der")
    # a changed TBS no longer verifies
    (tmp_path / "tbs.der").write_bytes(ses.tbs_raw[:-1] + bytes([ses.tbs_raw[-1] ^ 1]))
    bad = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "signer.pub", "-rawin", "-in",
                  tmp_path / "tbs.der", "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.der",
                  check=False)
    assert bad.returncode != 0


def test_builders_refuse_bad_input(pki):
    with pytest.raises(InvalidInput):
        make_seal(pki, valid_end=NOW - timedelta(days=30))            # dates out of order
    with pytest.raises(InvalidInput):
        make_seal(pki, cert_list=[])                                  # nobody may use it
    with pytest.raises(InvalidInput):
        make_seal(pki, picture_width=0)
    with pytest.raises(InvalidInput):
        make_seal(pki, es_id="印章")                                   # IA5String
    seal = make_seal(pki)
    with pytest.raises(InvalidInput):
        build_signature_v4(seal=seal, data_hash=b"short", property_info="x", signer_cert=pki[2].cert_der,
                           sign=pki[2].sign)
    with pytest.raises(InvalidInput):
        build_seal_v4(maker_cert=pki[1].cert_der, sign=lambda m: b"not a signature", **seal_fields(pki[2].cert_der))


# ---------------------------------------------------------------- real producers

SEALS = sorted(p.name for p in shared_file("corpus", "seals").iterdir())
SIGNED_VALUES = ["antchain_v4", "anzhengtong_v4", "dianju_v4", "iofd_v1_INVALID", "kinggrid_v2_gmt0031",
                 "oesplugin_v4_raw64_sig"]


@pytest.mark.parametrize("name", SEALS)
def test_corpus_seals_parse_or_fail_cleanly(name):
    data = shared_file("corpus", "seals", name).read_bytes()
    if "corrupted" in name:
        with pytest.raises(SealFormatError) as error:
            parse_seal(data)
        assert error.value.zh and error.value.en
        return
    seal = parse_seal(data)
    assert seal.raw == data and seal.seal_info.header_id == "ES"
    assert seal.layout == (1 if "V1" in name or "v1" in name or "gmt0031" in name else 4)
    assert ("BER" in name) == any(w.en.startswith("the data is BER") for w in seal.warnings)


def test_version_is_told_by_structure_not_header():
    kinggrid = parse_seal(shared_file("corpus", "seals", "kinggrid__Seal_v2_gmt0031.esl").read_bytes())
    assert kinggrid.layout == 1 and kinggrid.version == 2
    assert any("version 2" in w.en for w in kinggrid.warnings)
    v5 = parse_seal(shared_file("corpus", "seals", "ofdrw__UserV5.esl").read_bytes())
    assert v5.layout == 4 and v5.version == 5 and not v5.warnings


@pytest.mark.parametrize("name", [*SIGNED_VALUES, "ofdrw__SignedValueV4", "ofdrw__SignedValueV5"])
def test_corpus_signatures_parse(name):
    path = shared_file("corpus", "signatures", name + (".dat" if name.startswith("ofdrw__") else ".SignedValue.dat"))
    ses = parse_signature(path.read_bytes())
    assert ses.raw.find(ses.tbs_raw) > 0 and ses.raw.find(ses.seal.raw) > 0
    assert len(ses.data_hash) == 32 and ses.cert[:1] == b"\x30"
    assert ses.layout == (1 if "v1" in name or "gmt0031" in name else 4)


def test_deviations_are_warnings():
    raw64 = parse_signature(shared_file("corpus", "signatures", "oesplugin_v4_raw64_sig.SignedValue.dat").read_bytes())
    assert len(raw64.signature) == 64 and raw64.ext_datas  # TBS extDatas [0]
    iofd = parse_signature(shared_file("corpus", "signatures", "iofd_v1_INVALID.SignedValue.dat").read_bytes())
    assert iofd.time_info == datetime(2020, 1, 25, 7, 31, 56, 377000, tzinfo=UTC)  # ISO text in a BIT STRING
    hebei = parse_seal(shared_file("corpus", "seals", "ofdrw__SESealData_hebei_gede.DER").read_bytes())
    assert any("critical FALSE" in w.en for w in hebei.warnings)


def test_time_deviations_are_tolerated_and_reported(pki):
    der = make_signature(pki, make_seal(pki))
    tbs = parse_signature(der).tbs_raw
    rest = der[der.find(tbs) + len(tbs):]
    stamp = b"\x18\x0f" + NOW.strftime("%Y%m%d%H%M%SZ").encode()
    for written, warning in ((b"\x18\x0e" + stamp[2:-1], "no time zone"),        # GeneralizedTime without Z
                             (b"\x18\x0d" + stamp[4:], "two-digit year"),         # YYMMDDhhmmssZ
                             (b"\x17\x0d" + stamp[4:], "UTCTime")):
        parsed = parse_signature(_seq(_replace_child(tbs, stamp, written) + rest))
        assert parsed.time_info == NOW and any(warning in w.en for w in parsed.warnings), warning


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(size)]) + size


def _seq(body: bytes) -> bytes:
    return b"\x30" + _len(len(body)) + body


def _replace_child(tbs: bytes, old: bytes, new: bytes) -> bytes:
    """TBS_Sign with one primitive child TLV replaced (its own length recomputed)."""
    header = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    body = tbs[header:]
    assert body.count(old) == 1
    return _seq(body.replace(old, new))


def test_nul_padded_names_are_read(pki):
    seal = parse_seal(make_seal(pki, name="测试章\x00\x00"))
    assert seal.seal_info.name == "测试章" and any("NUL" in w.en for w in seal.warnings)


# ---------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def sample(pki):
    seal = make_seal(pki)
    return seal, make_signature(pki, seal)


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    for parse in (parse_seal, parse_signature):
        try:
            parse(data)
        except SealFormatError:
            pass


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=0, max_value=80_000),
       which=st.sampled_from(["seal", "signature"]))
def test_fuzz_truncations_and_bit_flips(sample, cut, flip, which):
    data = sample[0] if which == "seal" else sample[1]
    parse = parse_seal if which == "seal" else parse_signature
    for variant in (data[:cut % len(data)], _flip(data, flip)):
        try:
            parse(variant)
        except SealFormatError:
            pass


def _flip(data: bytes, bit: int) -> bytes:
    position = (bit // 8) % len(data)
    return data[:position] + bytes([data[position] ^ (1 << (bit % 8))]) + data[position + 1:]


@pytest.mark.parametrize("length", [0x84FFFFFFFF, 0x88FFFFFFFFFFFFFFFF])
def test_huge_lengths_fail_fast(length):
    header = length.to_bytes((length.bit_length() + 7) // 8, "big")
    with pytest.raises(SealFormatError):
        parse_seal(b"\x30" + header + b"\x00" * 16)


def test_deep_nesting_and_endless_indefinite_lengths_fail_fast():
    with pytest.raises(SealFormatError):
        parse_seal(b"\x30\x80" * 5000)
    with pytest.raises(SealFormatError):
        parse_signature(b"\x30\x80" * 10 + b"\x00\x00" * 9)
    with pytest.raises(SealFormatError):
        parse_seal(struct.pack(">BB", 0x30, 0x80) + b"\x04\x80\x00\x00")   # indefinite primitive
    with pytest.raises(SealFormatError):
        parse_seal("not bytes")  # type: ignore[arg-type]
