"""What real producers write (issue #13), each deviation reproduced by a file made here:
BIT STRINGs whose unused-bits count contradicts their whole-byte content (the largest OFD
vendor's bank receipts), and hybrid seals whose version INTEGERs say 4 over the GM/T 0031
layout. They verify VALID with a warning naming the field; unused bits that are not zero,
a changed signed byte or a signature that does not verify stay INVALID, by name."""

from datetime import UTC, timedelta, timezone
from itertools import count

import pytest
from asn1crypto import pem, x509
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from api.cli.verify import verify as verify_command
from ofd.signature import Stamp, sign_ofd
from ofd.verify import verify_ofd
from ofd.writer import write_ofd
from seal.ses import SealFormatError, parse_seal, parse_signature
from seal.verify import verify_seal, verify_ses_signature, verify_signed_value_for_ofd
from trust import oids
from trust.ber import (
    BIT_STRING,
    IA5_STRING,
    INTEGER,
    OCTET_STRING,
    OID,
    SEQUENCE,
    UTC_TIME,
    UTF8_STRING,
    encode_oid,
    tlv,
)
from trust.hashes import sm3
from trust.path import validate_path
from trust.report import CheckName as C, CheckStatus as S, Status
from trust.sm2 import decode_signature

from tests.fixtures.ofd import DOCUMENT
from tests.oracles import STANDARD_ID, openssl, shared_file
from tests.test_seal_verify import NOW, PICTURE, _seal_info

ALG = tlv(OID, encode_oid(oids.SM2_WITH_SM3))


def _bits(value: bytes, unused: int) -> bytes:
    return tlv(BIT_STRING, bytes([unused]) + value)


def _sign_ending_in_zero_bits(signer, message: bytes, unused: int, *, raw_rs=False) -> bytes:
    """A signature whose last byte ends in ``unused`` zero bits: what a producer that counts the
    trailing zero bits as unused (as for a named-bit list) writes with that count."""
    for _ in range(3000):
        signature = signer.sign(message)
        if raw_rs:
            r, s = decode_signature(signature)
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if signature[-1] & ((1 << unused) - 1) == 0:
            return signature
    raise AssertionError("no signature ended in zero bits")


def _sign_ending_in_one_bits(signer, message: bytes, unused: int) -> bytes:
    for _ in range(3000):
        signature = signer.sign(message)
        if signature[-1] & ((1 << unused) - 1):
            return signature
    raise AssertionError("no signature ended in a one bit")


def _data_whose_digest_ends_in_zero_bits(unused: int) -> bytes:
    return next(d for d in (b"<ofd:Signature n='%d'/>" % i for i in count()) if sm3(d)[-1] & ((1 << unused) - 1) == 0)


def _v4_seal(seal_pki, *, unused=2, signature=None) -> bytes:
    info = _seal_info(seal_pki[3].cert_der)
    value = signature or _sign_ending_in_zero_bits(seal_pki[2], info, unused)
    return tlv(SEQUENCE, info + tlv(OCTET_STRING, seal_pki[2].cert_der) + ALG + _bits(value, unused))


def _v4_signature(seal_pki, seal: bytes, data: bytes, *, hash_unused=0, unused=2, raw_rs=False) -> bytes:
    tbs = tlv(SEQUENCE, tlv(INTEGER, b"\x04") + seal + tlv(0x18, (NOW - timedelta(hours=1)).strftime("%Y%m%d%H%M%SZ").encode())
              + _bits(sm3(data), hash_unused) + tlv(IA5_STRING, b"/Doc_0/Signs/Sign_0/Signature.xml"))
    value = _sign_ending_in_zero_bits(seal_pki[3], tbs, unused, raw_rs=raw_rs)
    return tlv(SEQUENCE, tbs + tlv(OCTET_STRING, seal_pki[3].cert_der) + ALG + _bits(value, unused))


def _format(report) -> str:
    return " | ".join(c.reason.en for c in report.checks if c.check is C.FORMAT)


def _roots(seal_pki):
    return (seal_pki[1].cert_der,)


# ---------------------------------------------------------------- unused bits over whole bytes

@pytest.mark.parametrize("unused", [1, 2, 5])
def test_a_maker_signature_with_a_wrong_unused_bits_count_verifies_with_a_warning(seal_pki, unused):
    report = verify_seal(_v4_seal(seal_pki, unused=unused), trusted_roots=_roots(seal_pki))
    assert report.status is Status.VALID, report.signatures[0].checks
    assert f"maker signature declares {unused} unused bits but holds whole bytes" in _format(report.signatures[0])
    assert any("maker signature declares" in w.en for w in report.warnings)


@pytest.mark.parametrize("raw_rs", [False, True], ids=["der", "raw-r-s"])
def test_signer_signature_and_data_hash_with_wrong_counts_verify_with_warnings(seal_pki, raw_rs):
    data = _data_whose_digest_ends_in_zero_bits(2)
    signature = _v4_signature(seal_pki, _v4_seal(seal_pki), data, hash_unused=2, raw_rs=raw_rs)
    report = verify_ses_signature(signature, data=data, trusted_roots=_roots(seal_pki))
    assert report.status is Status.VALID, report.checks
    text = _format(report)
    for field in ("maker signature", "signature", "dataHash"):
        assert f"{field} declares 2 unused bits but holds whole bytes" in text, field
    # inside an OFD the same value is read the same way
    assert verify_signed_value_for_ofd(signature, data, trusted_roots=_roots(seal_pki)).status is Status.VALID


def test_changing_any_signed_byte_of_a_deviating_signature_is_invalid(seal_pki):
    data = _data_whose_digest_ends_in_zero_bits(2)
    signature = _v4_signature(seal_pki, _v4_seal(seal_pki), data, hash_unused=2)
    tbs = parse_signature(signature).tbs_raw
    start = signature.find(tbs)
    survivors = []
    for position in range(start, start + len(tbs)):
        changed = signature[:position] + bytes([signature[position] ^ 0x01]) + signature[position + 1:]
        if verify_ses_signature(changed, data=data, trusted_roots=_roots(seal_pki)).status is not Status.INVALID:
            survivors.append(position)
    assert survivors == []


def test_unused_bits_that_are_not_zero_are_invalid_by_name(seal_pki):
    info = _seal_info(seal_pki[3].cert_der)
    bad_seal = _v4_seal(seal_pki, signature=_sign_ending_in_one_bits(seal_pki[2], info, 2))
    report = verify_seal(bad_seal, trusted_roots=_roots(seal_pki)).signatures[0]
    assert report.status is Status.INVALID and report.check_status(C.FORMAT) is S.FAILED
    assert "maker signature declares 2 unused bits that are not zero" in _format(report)
    assert report.check_status(C.SEAL) is S.PASSED  # the signature itself is right: only the encoding lies

    data = next(d for d in (b"x%d" % i for i in count()) if sm3(d)[-1] & 0x03)
    signature = _v4_signature(seal_pki, _v4_seal(seal_pki), data, hash_unused=2)
    report = verify_ses_signature(signature, data=data, trusted_roots=_roots(seal_pki))
    assert report.status is Status.INVALID and "dataHash declares 2 unused bits that are not zero" in _format(report)

    # the same seal as the Seal.esl beside a signature that carries none (a real SignedData)
    value = shared_file("corpus", "signatures", "gomain_signeddata_ynca.SignedValue.dat").read_bytes()
    xml = shared_file("corpus", "signatures", "gomain_signeddata_ynca.Signature.xml").read_bytes()
    plain = verify_signed_value_for_ofd(value, xml, seal_esl=bad_seal, sign_type="Seal")
    seal_check = next(c for c in plain.checks if c.check is C.SEAL)
    assert seal_check.status is S.FAILED and "not zero" in seal_check.reason.en


@pytest.mark.parametrize("body", [b"", b"\x08\xaa", b"\x02", b"\xff\x00\x00"], ids=["empty", "count-8", "no-bytes", "count-255"])
def test_impossible_bit_strings_are_format_errors(seal_pki, body):
    info = _seal_info(seal_pki[3].cert_der)
    seal = tlv(SEQUENCE, info + tlv(OCTET_STRING, seal_pki[2].cert_der) + ALG + tlv(BIT_STRING, body))
    with pytest.raises(SealFormatError, match="maker signature is not a BIT STRING of whole bytes"):
        parse_seal(seal)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=80))
def test_fuzz_bit_string_contents(seal_pki, body):
    """Whatever the BIT STRING holds, the reader either reads it (warning or error recorded) or
    raises its own exception; the verifier always reports."""
    info = _seal_info(seal_pki[3].cert_der)
    seal = tlv(SEQUENCE, info + tlv(OCTET_STRING, seal_pki[2].cert_der) + ALG + tlv(BIT_STRING, body))
    try:
        parsed = parse_seal(seal)
    except SealFormatError:
        pass
    else:
        assert parsed.signed_value == body[1:]
        assert bool(parsed.errors) == bool(body[0] and body[-1] & ((1 << body[0]) - 1))
    assert verify_seal(seal).status is Status.INVALID


# ---------------------------------------------------------------- hybrid: version 4 over the GM/T 0031 layout

def _utc(value) -> bytes:
    return tlv(UTC_TIME, value.astimezone(UTC).strftime("%y%m%d%H%M%SZ").encode())


def _hybrid_seal(seal_pki, *, unused=2, version=4) -> bytes:
    """GM/T 0031's SESeal{esealInfo, SES_SignInfo{cert, alg, signData}} with header version 4,
    the maker's signature over SEQUENCE{esealInfo, cert, alg} written with ``unused`` unused bits."""
    header = tlv(SEQUENCE, tlv(IA5_STRING, b"ES") + tlv(INTEGER, bytes([version])) + tlv(IA5_STRING, b"VENDOR"))
    prop = tlv(SEQUENCE, tlv(INTEGER, b"\x01") + tlv(UTF8_STRING, "混合版本测试章".encode())
               + tlv(SEQUENCE, tlv(OCTET_STRING, seal_pki[3].cert_der))
               + b"".join(_utc(t) for t in (NOW - timedelta(hours=2), NOW - timedelta(hours=2), NOW + timedelta(days=30))))
    picture = tlv(SEQUENCE, tlv(IA5_STRING, b"PNG") + tlv(OCTET_STRING, PICTURE) + tlv(INTEGER, b"\x28") * 2)
    info = tlv(SEQUENCE, header + tlv(IA5_STRING, b"HYBRID-0001") + prop + picture)
    cert = tlv(OCTET_STRING, seal_pki[2].cert_der)
    signed = _sign_ending_in_zero_bits(seal_pki[2], tlv(SEQUENCE, info + cert + ALG), unused)
    return tlv(SEQUENCE, info + tlv(SEQUENCE, cert + ALG + _bits(signed, unused)))


def _hybrid_signature(seal_pki, seal: bytes, data: bytes, *, unused=2) -> bytes:
    """GM/T 0031's SES_Signature{TBS_Sign{version 4, seal, timeInfo, dataHash, propertyInfo, cert, alg}, signature}."""
    when = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    tbs = tlv(SEQUENCE, tlv(INTEGER, b"\x04") + seal + _bits(when.encode(), 0) + _bits(sm3(data), 0)
              + tlv(IA5_STRING, b"/Doc_0/Signs/Sign_0/Signature.xml") + tlv(OCTET_STRING, seal_pki[3].cert_der) + ALG)
    return tlv(SEQUENCE, tbs + _bits(_sign_ending_in_zero_bits(seal_pki[3], tbs, unused), unused))


def test_a_hybrid_seal_is_read_by_its_layout_and_verifies_with_warnings(seal_pki):
    seal = _hybrid_seal(seal_pki)
    parsed = parse_seal(seal)
    assert parsed.layout == 1 and parsed.version == 4 and not parsed.errors
    report = verify_seal(seal, trusted_roots=_roots(seal_pki))
    assert report.status is Status.VALID, report.signatures[0].checks
    text = _format(report.signatures[0])
    assert "the seal header says version 4 but the layout is GM/T 0031 (version 1)" in text
    assert "maker signature declares 2 unused bits but holds whole bytes" in text

    signature = _hybrid_signature(seal_pki, seal, b"<ofd:Signature/>")
    assert parse_signature(signature).layout == 1
    report = verify_ses_signature(signature, data=b"<ofd:Signature/>", trusted_roots=_roots(seal_pki))
    assert report.status is Status.VALID, report.checks
    assert "signature declares 2 unused bits but holds whole bytes" in _format(report)


def test_a_hybrid_seal_whose_signature_does_not_verify_is_invalid(seal_pki):
    seal = bytearray(_hybrid_seal(seal_pki))
    position = seal.find("混合版本测试章".encode())
    seal[position] ^= 0x01  # one byte of the seal's name, under the maker's signature
    report = verify_seal(bytes(seal), trusted_roots=_roots(seal_pki)).signatures[0]
    assert report.status is Status.INVALID and report.check_status(C.SEAL) is S.FAILED


def test_trustctl_verifies_a_hybrid_seal_on_its_own(seal_pki, tmp_path, monkeypatch):
    monkeypatch.setenv("TRUST_HOME", str(tmp_path / "no-service"))
    (tmp_path / "seal.esl").write_bytes(_hybrid_seal(seal_pki))
    (tmp_path / "ca.pem").write_bytes(seal_pki[1].pem.encode())
    result = CliRunner().invoke(verify_command, [str(tmp_path / "seal.esl"), "--trust-root", str(tmp_path / "ca.pem")])
    assert result.exit_code == 0, result.output
    assert "GM/T 0031" in result.output and "unused bits" in result.output


# ---------------------------------------------------------------- certificates' signatures

def _certificate_with_count(leaf, issuer, unused: int, *, zero_bits=True) -> bytes:
    """``leaf``'s certificate re-signed by ``issuer`` and written with ``unused`` unused bits."""
    cert = x509.Certificate.load(leaf.cert_der)
    tbs = cert["tbs_certificate"].dump()
    pick = _sign_ending_in_zero_bits if zero_bits else _sign_ending_in_one_bits
    signature = pick(issuer, tbs, unused)
    return tlv(SEQUENCE, tbs + cert["signature_algorithm"].dump() + _bits(signature, unused))


def test_a_certificate_signature_with_a_wrong_count_is_refused_as_openssl_refuses_it(seal_pki, tmp_path):
    """Unlike the seal structures, no common verifier accepts a count over a certificate's
    signature (OpenSSL: "invalid bit string bits left"): neither do we, and we say why."""
    root, inter, _maker, signer = seal_pki
    odd = _certificate_with_count(signer, inter, 2)
    result = validate_path(odd, roots=(root.cert_der,), intermediates=(inter.cert_der,))
    chain = next(c for c in result.checks if c.check is C.CHAIN)
    assert chain.status is S.FAILED and "signatureValue declares 2 unused bits" in chain.reason.en
    for name, der in (("inter", inter.cert_der), ("leaf", odd)):
        (tmp_path / f"{name}.pem").write_bytes(pem.armor("CERTIFICATE", der))
    refused = openssl("verify", "-partial_chain", "-CAfile", tmp_path / "inter.pem", "-vfyopt", STANDARD_ID,
                      tmp_path / "leaf.pem", check=False)
    assert refused.returncode != 0 and b"bit string bits left" in refused.stderr


def test_deviating_signatures_inside_an_ofd_verify(seal_pki):
    """The same values as SignedValue.dat of a sealed OFD. (ofdrw, built on BouncyCastle 1.72,
    refuses any unused-bits count: "attempt to get non-octet aligned data from BIT STRING";
    the verifiers of the vendors' own clients read such files, and so do we, with a warning.)"""
    unsigned = write_ofd(DOCUMENT)
    hybrid = _hybrid_seal(seal_pki)
    for seal, make in ((_v4_seal(seal_pki), lambda xml, loc, seal: _v4_signature(seal_pki, seal, xml)),
                       (hybrid, lambda xml, loc, seal: _hybrid_signature(seal_pki, seal, xml))):
        sealed = sign_ofd(unsigned, lambda xml, loc, make=make, seal=seal: make(xml, loc, seal), seal=seal, stamps=[Stamp(0, (10, 10, 40, 40))])
        report = verify_ofd(sealed, trusted_roots=_roots(seal_pki))
        assert report.status is Status.VALID, report.to_dict()
        assert "unused bits but holds whole bytes" in _format(report.signatures[0])
