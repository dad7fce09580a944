"""trust/cms.py: GB/T 35275 and PKCS#7 SignedData from real producers, from OpenSSL
(`openssl cms -sign`, the oracle for ECDSA/RSA) and built here for SM2, with and without
signed attributes, attached and detached; RFC 3161 tokens from `openssl ts -reply`,
alone and inside a SES_Signature."""

import hashlib
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms, core
from hypothesis import given, settings, strategies as st

from seal.ses import build_seal_v4, build_signature_v4
from seal.verify import verify_ses_signature
from trust import oids
from trust.cms import GM_DATA, GM_SIGNED_DATA, PKCS7_DATA, parse_signed_data, verify_signer, verify_time_stamp
from trust.errors import InvalidInput
from trust.hashes import sm3
from trust.report import CheckName as C, CheckStatus as S

from tests.certs import make_leaf, make_root
from tests.oracles import openssl, shared_file


def test_corpus_gomain_detached_with_signed_attributes():
    signed = parse_signed_data(shared_file("corpus", "signatures", "gomain_signeddata_ynca.SignedValue.dat").read_bytes())
    xml = shared_file("corpus", "signatures", "gomain_signeddata_ynca.Signature.xml").read_bytes()
    assert signed.content_type == GM_SIGNED_DATA and signed.econtent is None
    assert signed.signer_infos[0].signed_attrs[:1] == b"\x31"
    result = verify_signer(signed, content=xml)
    assert result.signature_valid and result.digest_matches
    assert result.signer.subject.startswith("CN=一部手机办事通设备证书")
    assert verify_signer(signed, content=xml + b" ").digest_matches is False
    assert not verify_signer(signed).signature_valid  # detached and no content given


def test_corpus_oesplugin_attached_hash_without_attributes():
    signed = parse_signed_data(
        shared_file("corpus", "signatures", "oesplugin_signeddata_attached_hash.SignedValue.dat").read_bytes())
    xml = shared_file("corpus", "signatures", "oesplugin_signeddata_attached_hash.Signature.xml").read_bytes()
    assert signed.econtent_type == GM_DATA and signed.econtent == sm3(xml)
    result = verify_signer(signed)
    assert result.signature_valid and result.digest_matches is None
    assert any("r‖s" in w.en for w in result.warnings)


# ---------------------------------------------------------------- SM2, built here

class ContentInfo(core.Sequence):
    _fields = [("content_type", core.ObjectIdentifier), ("content", cms.SignedData, {"explicit": 0})]


@pytest.fixture(scope="module")
def signer():
    root = make_root("CMS Root")
    return root, make_leaf(root, "CMS Signer")


def _sm2_signed_data(signer, content: bytes, *, attributes: bool, attached: bool, outer=GM_SIGNED_DATA,
                     signature_oid=oids.SM2_SIGN, inner="data", message_digest: bytes | None = None) -> bytes:
    _root, leaf = signer
    cert = cms.Certificate.load(leaf.cert_der)
    signer_info = {
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number}),
        "digest_algorithm": {"algorithm": oids.SM3},
        "signature_algorithm": {"algorithm": signature_oid},
    }
    if attributes:
        attrs = cms.CMSAttributes([
            {"type": "content_type", "values": [inner]},
            {"type": "message_digest", "values": [message_digest or sm3(content)]},
            {"type": "signing_time", "values": [cms.Time(name="utc_time", value=datetime.now(UTC))]},
        ])
        signer_info["signed_attrs"] = attrs
        signer_info["signature"] = leaf.sign(attrs.dump())  # over the SET OF encoding
    else:
        signer_info["signature"] = leaf.sign(content)
    encap = {"content_type": inner}
    if attached:  # asn1crypto types the content of "data" only; GM/T's data OID takes an OCTET STRING as is
        encap["content"] = content if inner == "data" else core.OctetString(content, explicit=0)
    signed = cms.SignedData({
        "version": "v1", "digest_algorithms": [{"algorithm": oids.SM3}], "encap_content_info": encap,
        "certificates": [cert], "signer_infos": [signer_info]})
    return ContentInfo({"content_type": outer, "content": signed}).dump()


@pytest.mark.parametrize("attributes", [True, False])
@pytest.mark.parametrize("attached", [True, False])
def test_sm2_signed_data(signer, attributes, attached):
    content = b"<ofd:Signature>...</ofd:Signature>"
    der = _sm2_signed_data(signer, content, attributes=attributes, attached=attached)
    signed = parse_signed_data(der)
    assert (signed.econtent == content) if attached else signed.econtent is None
    result = verify_signer(signed, content=None if attached else content)
    assert result.signature_valid and result.digest_matches is (True if attributes else None)
    if attributes:
        assert signed.signer_infos[0].signing_time is not None
    # a changed content is caught: by messageDigest, or by the signature itself
    if not attached:
        changed = verify_signer(signed, content=content + b"!")
        assert changed.digest_matches is False if attributes else not changed.signature_valid
    tampered = bytearray(der)
    tampered[-1] ^= 1  # the last byte of s: SignerInfo ends with the signature
    bad = verify_signer(parse_signed_data(bytes(tampered)), content=None if attached else content)
    assert not bad.signature_valid


def test_pkcs7_outer_oid_and_errors(signer):
    der = _sm2_signed_data(signer, b"x", attributes=True, attached=True, outer="1.2.840.113549.1.7.2")
    assert parse_signed_data(der).econtent_type == PKCS7_DATA
    for junk in (b"", b"\x30\x00", b"\x30\x03\x06\x01\x00", shared_file("spec", "fixtures", "UserV4.esl").read_bytes()):
        with pytest.raises(InvalidInput):
            parse_signed_data(junk)


# ---------------------------------------------------------------- ECDSA and RSA, made by OpenSSL

@pytest.mark.parametrize("key", [["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-newkey", "rsa:2048"]],
                         ids=["ecdsa", "rsa"])
@pytest.mark.parametrize("mode", [[], ["-nodetach"], ["-noattr"]], ids=["detached", "attached", "no-attributes"])
def test_openssl_cms(tmp_path, key, mode):
    openssl("req", "-x509", *key, "-nodes", "-keyout", tmp_path / "k.pem", "-out", tmp_path / "c.pem",
            "-subj", "/CN=CMS Oracle", "-days", "2")
    (tmp_path / "data.bin").write_bytes(b"signed by openssl")
    openssl("cms", "-sign", "-binary", "-in", tmp_path / "data.bin", "-signer", tmp_path / "c.pem", "-inkey",
            tmp_path / "k.pem", "-outform", "DER", "-out", tmp_path / "s.der", *mode)
    signed = parse_signed_data((tmp_path / "s.der").read_bytes())
    attached = "-nodetach" in mode
    result = verify_signer(signed, content=None if attached else b"signed by openssl")
    assert result.signature_valid and result.digest_matches is not False
    if not attached:
        changed = verify_signer(signed, content=b"signed by someone else")
        assert changed.digest_matches is False or not changed.signature_valid


# ---------------------------------------------------------------- RFC 3161 time stamps


def test_time_stamp_token(tsa):
    stamp, tsa_cert = tsa
    token = stamp(b"signature value")
    good = verify_time_stamp(token, b"signature value", trusted_roots=[tsa_cert])
    assert good.status is S.PASSED and abs(good.gen_time - datetime.now(UTC)) < timedelta(minutes=5)
    assert verify_time_stamp(token, b"signature value").status is S.INDETERMINATE  # TSA not trusted
    assert verify_time_stamp(token, b"another value", trusted_roots=[tsa_cert]).status is S.FAILED
    assert verify_time_stamp(b"\x30\x00", b"x").status is S.FAILED
    sha = stamp(b"signature value", "-sha256")
    assert verify_time_stamp(sha, b"signature value", trusted_roots=[tsa_cert]).status is S.PASSED
    assert hashlib.sha256(b"signature value").digest() in sha


def test_time_stamp_inside_a_seal_signature(tsa):
    stamp, tsa_cert = tsa
    root = make_root("TS Root")
    maker, signer = make_leaf(root, "TS Maker"), make_leaf(root, "TS Signer")
    now = datetime.now(UTC)
    seal = build_seal_v4(maker_cert=maker.cert_der, sign=maker.sign, es_id="TS1", vid="T", seal_type=1, name="章",
                         cert_list=[signer.cert_der], create_date=now - timedelta(hours=1),
                         valid_start=now - timedelta(hours=1), valid_end=now + timedelta(days=1),
                         picture_type="PNG", picture_data=b"\x89PNG", picture_width=40, picture_height=40)
    signature = build_signature_v4(seal=seal, data_hash=sm3(b"doc"), property_info="doc", signer_cert=signer.cert_der,
                                   sign=signer.sign, time_stamp=stamp)
    report = verify_ses_signature(signature, data=b"doc", trusted_roots=(root.cert_der, tsa_cert.der))
    assert report.check_status(C.TIMESTAMP) is S.PASSED and report.check_status(C.CHAIN) is S.PASSED
    untrusted = verify_ses_signature(signature, data=b"doc", trusted_roots=(root.cert_der,))
    assert untrusted.check_status(C.TIMESTAMP) is S.INDETERMINATE
    # a token over something else
    other = build_signature_v4(seal=seal, data_hash=sm3(b"doc"), property_info="doc", signer_cert=signer.cert_der,
                               sign=signer.sign, time_stamp=lambda _signature: stamp(b"unrelated"))
    assert verify_ses_signature(other, data=b"doc", trusted_roots=(tsa_cert.der,)).check_status(C.TIMESTAMP) is S.FAILED


_CORPUS_CMS = shared_file("corpus", "signatures", "gomain_signeddata_ynca.SignedValue.dat").read_bytes()


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7), cut=st.booleans(),
       noise=st.binary(max_size=200))
def test_fuzz_signed_data(position, bit, cut, noise):
    position %= len(_CORPUS_CMS)
    changed = (_CORPUS_CMS[:position] if cut else
               _CORPUS_CMS[:position] + bytes([_CORPUS_CMS[position] ^ (1 << bit)]) + _CORPUS_CMS[position + 1:])
    for candidate in (changed, noise):
        try:
            signed = parse_signed_data(candidate)
        except InvalidInput:
            continue
        verify_signer(signed, content=b"x")
        assert verify_time_stamp(candidate, b"x").status in (S.FAILED, S.INDETERMINATE)


def test_bare_signed_data_without_content_info():
    """ofdrw-crypto 1.x (hello-integrity_v1.ofd): no ContentInfo, bare OIDs as digestAlgorithms,
    the curve OID as signature algorithm; eContent = SM3(OFDEntries.xml)."""
    with zipfile.ZipFile(shared_file("corpus", "ofd", "signed", "ofdrw__hello-integrity_v1.ofd")) as package:
        value, entries = package.read("signedvalue.dat"), package.read("OFDEntries.xml")
    signed = parse_signed_data(value)
    assert any("ContentInfo" in w.en for w in signed.warnings)
    assert signed.econtent == sm3(entries)
    result = verify_signer(signed)
    assert result.signature_valid and result.signer.subject.startswith("CN=Test Certificate")
