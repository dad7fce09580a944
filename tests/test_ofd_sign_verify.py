"""Sealing and signing OFD documents, and verifying them: ours, the spec fixtures, tampering."""

import io

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image as PILImage

from ofd.package import Package, write_package
from ofd.reader import read_ofd
from ofd.signature import Stamp, parse_signature_xml, sign_ofd
from ofd.verify import verify_ofd
from ofd.writer import write_ofd
from seal.ses import parse_signature
from trust.errors import InvalidInput
from trust.hashes import sm3
from trust.report import CheckName as C, CheckStatus as S, Status

from tests.fixtures.ofd import DOCUMENT, make_png, make_seal, seal_callback
from tests.oracles import STANDARD_ID, openssl, shared_file


def _roots(pki):
    return (pki[0].cert_der,)


def assert_valid(report):
    """VALID, every check of every signature passed or does not apply."""
    assert report.signatures
    for signature in report.signatures:
        for item in signature.checks:
            assert item.status in {S.PASSED, S.NOT_APPLICABLE}, (signature.id, item)
    assert report.status is Status.VALID


def test_sealed_document_verifies_valid(pki, sealed):
    report = verify_ofd(sealed, trusted_roots=_roots(pki))
    assert_valid(report)
    (signature,) = report.signatures
    assert signature.id == "s001" and signature.type == "Seal"
    assert signature.seal["name"] == "测试专用章" and "福州市市场监督管理局" in signature.signer
    for name in (C.FORMAT, C.INTEGRITY, C.SIGNATURE, C.SEAL, C.SEAL_BINDING, C.CHAIN, C.SCOPE):
        assert signature.check_status(name) is S.PASSED, name


def test_signature_files_follow_the_spec(sealed):
    package = Package.from_bytes(sealed)
    document = read_ofd(sealed)
    assert document.signatures_loc == "/Doc_0/Signs/Signatures.xml"
    (entry,) = document.signatures
    assert (entry.id, entry.type, entry.base_loc) == ("s001", "Seal", "/Doc_0/Signs/Sign_0/Signature.xml")
    xml = parse_signature_xml(package.read(entry.part))
    refs = {r.file_ref for r in xml.references}
    assert xml.check_method == "SM3" and xml.signature_method == "1.2.156.10197.1.501"
    assert "/Doc_0/Signs/Signatures.xml" not in refs       # continue-sign scope
    assert refs == {"/" + n for n in package.names()} - {"/Doc_0/Signs/Signatures.xml",
                                                          "/Doc_0/Signs/Sign_0/Signature.xml",
                                                          "/Doc_0/Signs/Sign_0/SignedValue.dat"}
    (stamp,) = xml.stamp_annots
    assert stamp.page_ref == document.pages[0].id and stamp.boundary == (150, 240, 40, 40)
    assert xml.seal_loc == "/Doc_0/Signs/Sign_0/Seal.esl"
    ses = parse_signature(package.read("Doc_0/Signs/Sign_0/SignedValue.dat"))
    assert ses.data_hash == sm3(package.read(entry.part))
    assert ses.property_info == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert ses.seal.raw == package.read("Doc_0/Signs/Sign_0/Seal.esl")


def test_preview_shows_the_seal_at_its_stamp(sealed):
    from ofd.render import render_page

    preview = PILImage.open(io.BytesIO(render_page(sealed, 0, dpi=72))).convert("RGB")
    scale = 72 / 25.4
    assert preview.getpixel((round(170 * scale), round(260 * scale))) == (220, 0, 0)
    assert preview.getpixel((round(140 * scale), round(260 * scale))) == (255, 255, 255)


def test_sm2_signature_in_signed_value_verifies_with_openssl(tmp_path, sealed):
    ses = parse_signature(Package.from_bytes(sealed).read("Doc_0/Signs/Sign_0/SignedValue.dat"))
    (tmp_path / "cert.der").write_bytes(ses.cert)
    openssl("x509", "-inform", "DER", "-in", tmp_path / "cert.der", "-pubkey", "-noout", "-out", tmp_path / "pub.pem")
    (tmp_path / "tbs.der").write_bytes(ses.tbs_raw)
    (tmp_path / "sig.der").write_bytes(ses.signature)
    out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-in", tmp_path / "tbs.der",
                  "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.der")
    assert b"Signature Verified Successfully" in out.stdout


def _parts(data: bytes) -> dict:
    return dict(Package.from_bytes(data).parts)


def test_one_changed_byte_in_any_protected_file_is_invalid_naming_it(pki, sealed):
    parts = _parts(sealed)
    xml = parse_signature_xml(parts["Doc_0/Signs/Sign_0/Signature.xml"])
    for reference in xml.references:
        name = reference.file_ref.lstrip("/")
        tampered = dict(parts)
        content = bytearray(tampered[name])
        content[len(content) // 2] ^= 0x01
        tampered[name] = bytes(content)
        report = verify_ofd(write_package(tampered), trusted_roots=_roots(pki))
        (signature,) = report.signatures
        assert report.status is Status.INVALID, name
        integrity = next(c for c in signature.checks if c.check is C.INTEGRITY)
        assert integrity.status is S.FAILED and reference.file_ref in integrity.reason.en, (name, integrity)
        assert reference.file_ref in integrity.reason.zh


def test_signature_xml_or_signed_value_changed_is_invalid(pki, sealed):
    for name in ("Doc_0/Signs/Sign_0/Signature.xml", "Doc_0/Signs/Sign_0/SignedValue.dat"):
        parts = _parts(sealed)
        content = bytearray(parts[name])
        content[-40] ^= 0x01
        parts[name] = bytes(content)
        assert verify_ofd(write_package(parts), trusted_roots=_roots(pki)).status is Status.INVALID, name


def test_deleting_a_page_is_invalid_naming_the_file(pki, sealed):
    parts = _parts(sealed)
    del parts["Doc_0/Pages/Page_1/Content.xml"]
    (signature,) = verify_ofd(write_package(parts), trusted_roots=_roots(pki)).signatures
    assert signature.status is Status.INVALID
    integrity = next(c for c in signature.checks if c.check is C.INTEGRITY)
    assert "removed after signing: /Doc_0/Pages/Page_1/Content.xml" in integrity.reason.en

    parts = _parts(sealed)
    document = parts["Doc_0/Document.xml"].decode()
    start = document.index("<ofd:Page ID", document.index("<ofd:Page ID") + 1)
    parts["Doc_0/Document.xml"] = (document[:start] + document[document.index("/>", start) + 2:]).encode()
    (signature,) = verify_ofd(write_package(parts), trusted_roots=_roots(pki)).signatures
    assert len(read_ofd(write_package(parts)).pages) == 1
    integrity = next(c for c in signature.checks if c.check is C.INTEGRITY)
    assert integrity.status is S.FAILED and "/Doc_0/Document.xml" in integrity.reason.en


def test_file_added_after_signing_is_a_scope_warning(pki, sealed):
    parts = _parts(sealed)
    parts["Doc_0/Res/extra.png"] = make_png()
    report = verify_ofd(write_package(parts), trusted_roots=_roots(pki))
    (signature,) = report.signatures
    scope = next(c for c in signature.checks if c.check is C.SCOPE)
    assert scope.status is S.WARNING and "/Doc_0/Res/extra.png" in scope.reason.en
    assert signature.check_status(C.INTEGRITY) is S.PASSED and report.status is Status.INDETERMINATE


def test_file_added_after_signing_that_the_document_uses_is_invalid(pki):
    """A page's image is missing at signing time; adding it later changes the signed page."""
    _, maker, signer, _ = pki
    parts = _parts(write_ofd(DOCUMENT))
    image = next(n for n in parts if n.endswith(".png"))
    image_bytes = parts.pop(image)
    seal = make_seal(maker, signer)
    sealed = sign_ofd(write_package(parts), seal_callback(seal, signer), seal=seal)
    assert_valid(verify_ofd(sealed, trusted_roots=_roots(pki)))
    parts = _parts(sealed)
    parts[image] = image_bytes
    (signature,) = verify_ofd(write_package(parts), trusted_roots=_roots(pki)).signatures
    scope = next(c for c in signature.checks if c.check is C.SCOPE)
    assert signature.status is Status.INVALID and scope.status is S.FAILED and "/" + image in scope.reason.en


def test_rezipping_keeps_the_signature_valid(pki, sealed):
    rezipped = write_package(dict(reversed(list(_parts(sealed).items()))))
    assert rezipped != sealed
    assert_valid(verify_ofd(rezipped, trusted_roots=_roots(pki)))


def test_two_sequential_seals_both_verify_and_the_second_protects_the_first(pki, sealed):
    _, maker, _, second_signer = pki
    seal = make_seal(maker, second_signer, "第二枚章")
    joint = sign_ofd(sealed, seal_callback(seal, second_signer), seal=seal, stamps=[Stamp(1, (100, 200, 40, 40))])
    report = verify_ofd(joint, trusted_roots=_roots(pki))
    assert [s.id for s in report.signatures] == ["s001", "s003"]
    assert_valid(report)
    parts = _parts(joint)
    second = parse_signature_xml(parts["Doc_0/Signs/Sign_1/Signature.xml"])
    refs = {r.file_ref for r in second.references}
    assert {"/Doc_0/Signs/Sign_0/Signature.xml", "/Doc_0/Signs/Sign_0/SignedValue.dat",
            "/Doc_0/Signs/Sign_0/Seal.esl"} <= refs
    assert second.stamp_annots[0].page_ref == read_ofd(joint).pages[1].id
    # every part the first signature protected kept its bytes
    first_parts = _parts(sealed)
    assert all(parts[n] == first_parts[n] for n in first_parts if n != "Doc_0/Signs/Signatures.xml")
    # altering the first signature breaks the second too, naming the file
    parts["Doc_0/Signs/Sign_0/SignedValue.dat"] = parts["Doc_0/Signs/Sign_0/SignedValue.dat"][:-1] + b"\x00"
    first, latest = verify_ofd(write_package(parts), trusted_roots=_roots(pki)).signatures
    assert first.status is Status.INVALID and latest.status is Status.INVALID
    assert "/Doc_0/Signs/Sign_0/SignedValue.dat" in next(c for c in latest.checks if c.check is C.INTEGRITY).reason.en


def test_sign_type_with_a_bare_sm2_signature(pki, unsigned):
    signer = pki[2]
    signed = sign_ofd(unsigned, lambda xml, loc: signer.sign(xml), sign_type="Sign")
    report = verify_ofd(signed, trusted_roots=_roots(pki), certificates=(signer.cert_der,))
    (signature,) = report.signatures
    assert signature.type == "Sign" and signature.check_status(C.SEAL) is S.NOT_APPLICABLE
    assert_valid(report)
    assert "Seal.esl" not in " ".join(Package.from_bytes(signed).names())


def test_a_fully_protected_document_cannot_be_signed_again(pki):
    data = shared_file("corpus", "ofd", "signed", "ofdrw__allprotected.ofd").read_bytes()
    with pytest.raises(InvalidInput, match=r"protects Signatures\.xml"):
        sign_ofd(data, lambda xml, loc: pki[2].sign(xml), sign_type="Sign")


def test_a_seal_signature_needs_a_seal(unsigned):
    with pytest.raises(InvalidInput):
        sign_ofd(unsigned, lambda xml, loc: b"")


@pytest.mark.parametrize("name, sign_type", [("SESV4SignDoc.ofd", "Seal"), ("DigitalSign.ofd", "Sign")])
def test_spec_fixtures_verify(name, sign_type):
    user_cert = shared_file("corpus", "certs", "ofdrw__USER_p12_cert_0x1719d2dab60.pem").read_bytes()
    from asn1crypto import pem
    report = verify_ofd(shared_file("spec", "fixtures", name).read_bytes(), certificates=(pem.unarmor(user_cert)[2],))
    (signature,) = report.signatures
    assert signature.type == sign_type
    assert signature.check_status(C.INTEGRITY) is S.PASSED
    assert signature.check_status(C.SIGNATURE) is S.PASSED
    assert signature.check_status(C.SEAL) is (S.PASSED if sign_type == "Seal" else S.NOT_APPLICABLE)
    assert signature.check_status(C.CHAIN) is not S.PASSED


def test_stamp_on_a_page_that_no_longer_exists(pki, sealed):
    parts = _parts(sealed)
    page_id = read_ofd(sealed).pages[0].id
    parts["Doc_0/Document.xml"] = parts["Doc_0/Document.xml"].replace(f'ID="{page_id}"'.encode(), b'ID="999"')
    (signature,) = verify_ofd(write_package(parts), trusted_roots=_roots(pki)).signatures
    fmt = next(c for c in signature.checks if c.check is C.FORMAT)
    assert fmt.status is S.FAILED and f"StampAnnot refers to pages that do not exist: {page_id}" in fmt.reason.en


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(part=st.sampled_from(["Doc_0/Signs/Sign_0/SignedValue.dat", "Doc_0/Signs/Sign_0/Signature.xml",
                             "Doc_0/Signs/Sign_0/Seal.esl", "Doc_0/Signs/Signatures.xml", "Doc_0/Document.xml"]),
       mutations=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_signature_parts_never_crash_the_verifier(pki, sealed, part, mutations):
    parts = _parts(sealed)
    content = bytearray(parts[part])
    for where, value in mutations:
        content[int(where * len(content))] = value
    parts[part] = bytes(content)
    try:
        report = verify_ofd(write_package(parts), trusted_roots=_roots(pki))
    except InvalidInput:
        return
    if bytes(content) != _parts(sealed)[part] and part != "Doc_0/Signs/Signatures.xml":  # the list is unprotected
        assert report.status is not Status.VALID
