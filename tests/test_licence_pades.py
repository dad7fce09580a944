"""licence/pades.py (issue #15, second slice): a licence PDF signed PAdES B-B by pyHanko
while the ECDSA key stays in the KeyStore; Poppler's pdfsig finds the signature valid and
covering the whole document, and finds a changed byte; pyHanko's own validation, with our
root as the only anchor, finds it intact, valid and trusted."""

import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from licence.pades import Appearance, KeyStoreSigner, sign_pdf
from licence.pdf import write_pdf
from ofd import layout as lm
from trust.db import session_factory
from trust.errors import InvalidInput

from tests.fixtures.licence import issue_demo_licence

pytestmark = pytest.mark.skipif(shutil.which("pdfsig") is None, reason="Poppler's pdfsig is the oracle")

DOCUMENT = lm.Document(pages=(lm.Page(items=(lm.Text(30, 40, "营业执照", 10), lm.Text(20, 60, "名称：福州测试科技有限公司", 4))),),
                      info=lm.DocInfo(title="营业执照", author="演示局"))


def _signed(ca, document=DOCUMENT, **options) -> bytes:
    engine, keystore, issued, chain, _root = ca
    with session_factory(engine)() as session:
        key = keystore.get(session, issued.key_id)
        signer = KeyStoreSigner(session, keystore, key, issued.der, chain)
        signed = sign_pdf(write_pdf(document), signer, reason="证照签发 licence issue", location="演示局", **options)
        session.commit()
    return signed


def _pdfsig(path, *args) -> str:
    return subprocess.run(["pdfsig", *map(str, args), str(path)], capture_output=True, text=True, timeout=60).stdout


def test_pdfsig_finds_the_signature_valid_over_the_whole_document(ca, tmp_path):
    (tmp_path / "l.pdf").write_bytes(_signed(ca, appearance=Appearance(box=(400, 80, 520, 200))))
    out = _pdfsig(tmp_path / "l.pdf")
    assert "Signature is Valid." in out and "Total document signed" in out, out
    assert "Signature Type: ETSI.CAdES.detached" in out and "SHA-256" in out, out
    # pdfsig's trust in our root: test_pdfsig_trusts_the_signer_once_our_root_is_in_its_nss_database


def test_a_changed_byte_of_the_face_is_found(ca, tmp_path):
    signed = bytearray(_signed(ca))
    position = signed.index(b"/Title")  # a byte of the signed revision, inside the covered range
    signed[position + 1] ^= 0x20
    (tmp_path / "changed.pdf").write_bytes(bytes(signed))
    assert "Signature is Invalid" in _pdfsig(tmp_path / "changed.pdf") or \
        "Digest Mismatch" in _pdfsig(tmp_path / "changed.pdf")


def test_pyhanko_validates_it_with_our_root_as_the_only_anchor(ca):
    from io import BytesIO

    from asn1crypto import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    signed = _signed(ca)
    context = ValidationContext(trust_roots=[x509.Certificate.load(ca[4])],
                                other_certs=[x509.Certificate.load(ca[3][0])], allow_fetching=False,
                                revocation_mode="soft-fail")
    (embedded,) = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = validate_pdf_signature(embedded, context)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.coverage.name == "ENTIRE_FILE"


def test_an_sm2_key_is_refused_for_pdf(ca):
    engine, keystore, _issued, _chain, _root = ca
    with session_factory(engine)() as session:
        sm2 = next(k for k in keystore.list(session) if k.algorithm == "SM2-with-SM3")
        with pytest.raises(InvalidInput, match="ECDSA or RSA"):
            KeyStoreSigner(session, keystore, sm2, b"", ())


def _b_t(ca, document=DOCUMENT) -> bytes:
    from licence.pades import KeyStoreTimeStamper
    engine, keystore, issued, chain, _root = ca
    with session_factory(engine)() as session:
        signer = KeyStoreSigner(session, keystore, keystore.get(session, issued.key_id), issued.der, chain)
        signed = sign_pdf(write_pdf(document), signer, reason="证照签发", location="演示局",
                          timestamper=KeyStoreTimeStamper(session, keystore))
        session.commit()
    return signed


def test_b_t_with_a_time_stamp_from_our_own_tsa(ca, tmp_path):
    """PAdES B-T: the signature time stamp comes from the service's ECDSA TSA, in process;
    pyHanko finds the time stamp intact and trusted under our root, and pdfsig still finds
    the signature valid over the whole document."""
    from io import BytesIO

    from asn1crypto import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    _engine, _keystore, _issued, chain, root = ca
    signed = _b_t(ca)
    (tmp_path / "t.pdf").write_bytes(signed)
    assert "Signature is Valid." in _pdfsig(tmp_path / "t.pdf")
    context = ValidationContext(trust_roots=[x509.Certificate.load(root)],
                                other_certs=[x509.Certificate.load(chain[0])], allow_fetching=False,
                                revocation_mode="soft-fail")
    (embedded,) = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = validate_pdf_signature(embedded, context)
    assert status.valid and status.trusted and status.timestamp_validity is not None, status.pretty_print_details()
    stamp = status.timestamp_validity
    assert stamp.intact and stamp.valid and stamp.trusted, status.pretty_print_details()


def test_b_lta_carries_its_evidence_under_a_document_time_stamp(ca, tmp_path):
    """PAdES B-LTA: the DSS holds the chain and the CRLs of our CAs, and a document time stamp
    from our TSA covers the signature and them; pdfsig and pyHanko find both valid. (Validating
    at a moment after the certificates expired, from the evidence alone, is the next slice:
    pyHanko's ETSI EN 319 102-1 LTA validation, ades_lta_validation.)"""
    from io import BytesIO

    from asn1crypto import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext

    from licence.pades import KeyStoreTimeStamper, our_revocation_data
    engine, keystore, issued, chain, root = ca
    with session_factory(engine)() as session:
        signer = KeyStoreSigner(session, keystore, keystore.get(session, issued.key_id), issued.der, chain)
        long_term = our_revocation_data(session, keystore, "ecdsa")
        signed = sign_pdf(write_pdf(DOCUMENT), signer, reason="证照签发", location="演示局",
                          timestamper=KeyStoreTimeStamper(session, keystore), long_term=long_term)
        session.commit()
    (tmp_path / "lta.pdf").write_bytes(signed)
    out = _pdfsig(tmp_path / "lta.pdf")
    # the signature is valid; the revisions after it (DSS, document time stamp, the DSS for the
    # time stamp) are what B-LTA adds, which pyHanko's difference analysis below accepts
    assert "Signature is Valid." in out and "Signature #2" in out and "ECDSA TSA" in out, out
    reader = PdfFileReader(BytesIO(signed))
    dss = reader.root["/DSS"]
    assert len(dss["/Certs"]) >= 3 and len(dss["/CRLs"]) >= len(long_term.crls), dss
    signature, document_stamp = reader.embedded_signatures
    context = ValidationContext(trust_roots=[x509.Certificate.load(root)], allow_fetching=False,
                                crls=list(long_term.crls), other_certs=[x509.Certificate.load(chain[0])])
    status = validate_pdf_signature(signature, context)
    assert status.valid and status.trusted and status.timestamp_validity.trusted, status.pretty_print_details()
    assert status.modification_level.name == "LTA_UPDATES" and status.docmdp_ok is not False, status.pretty_print_details()
    stamped = validate_pdf_timestamp(document_stamp, context)
    assert stamped.valid and stamped.trusted, stamped


def test_b_lt_needs_a_time_stamp_authority(ca):
    from licence.pades import LongTerm
    engine, keystore, issued, chain, root = ca
    with session_factory(engine)() as session:
        signer = KeyStoreSigner(session, keystore, keystore.get(session, issued.key_id), issued.der, chain)
        with pytest.raises(InvalidInput, match="time stamp authority"):
            sign_pdf(write_pdf(DOCUMENT), signer, reason="r", location="l", long_term=LongTerm(roots=(root,)))


def test_long_term_signing_without_the_revocation_data_is_refused_by_name(ca):
    """B-LT with hard-fail revocation checking: a path whose CRLs are missing is not signed."""
    from licence.pades import KeyStoreTimeStamper, LongTerm
    engine, keystore, issued, chain, root = ca
    with session_factory(engine)() as session:
        signer = KeyStoreSigner(session, keystore, keystore.get(session, issued.key_id), issued.der, chain)
        with pytest.raises(InvalidInput, match="could not be signed"):
            sign_pdf(write_pdf(DOCUMENT), signer, reason="r", location="l",
                     timestamper=KeyStoreTimeStamper(session, keystore),
                     long_term=LongTerm(roots=(root,), intermediates=chain))


# ---------------------------------------------------------------- our verifier

def _lta(ca) -> bytes:
    from licence.pades import KeyStoreTimeStamper, our_revocation_data
    engine, keystore, issued, chain, _root = ca
    with session_factory(engine)() as session:
        signer = KeyStoreSigner(session, keystore, keystore.get(session, issued.key_id), issued.der, chain)
        signed = sign_pdf(write_pdf(DOCUMENT), signer, reason="证照签发", location="演示局",
                          timestamper=KeyStoreTimeStamper(session, keystore),
                          long_term=our_revocation_data(session, keystore, "ecdsa"))
        session.commit()
    return signed


def test_our_verifier_reports_each_signature_and_document_time_stamp(ca):
    from licence.pdf_verify import verify_pdf
    from trust.report import CheckName as C, CheckStatus as S, Status
    signed = _lta(ca)
    report = verify_pdf(signed, trusted_roots=(ca[4],))
    assert report.format == "pdf" and [s.type for s in report.signatures] == ["PAdES", "DocTimeStamp"]
    assert report.status is Status.VALID, report.to_dict()
    first = report.signatures[0]
    assert first.signer and "PDF" in first.signer
    for name in (C.INTEGRITY, C.SIGNATURE, C.CERTIFICATE, C.CHAIN, C.REVOCATION, C.TIMESTAMP, C.SCOPE):
        assert first.check_status(name) is S.PASSED, name
    untrusted = verify_pdf(signed)  # no root: INDETERMINATE, naming the chain
    assert untrusted.status is Status.INDETERMINATE and untrusted.signatures[0].check_status(C.CHAIN) is S.INDETERMINATE
    unsigned = verify_pdf(write_pdf(DOCUMENT))
    assert unsigned.signatures == () and unsigned.status is Status.INDETERMINATE


def test_our_verifier_finds_a_changed_byte_and_an_appended_change(ca):
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from licence.pdf_verify import verify_pdf
    from trust.report import CheckName as C, CheckStatus as S, Status
    signed = _signed(ca)
    changed = bytearray(signed)
    changed[changed.index(b"/Title") + 1] ^= 0x20
    report = verify_pdf(bytes(changed), trusted_roots=(ca[4],))
    assert report.status is Status.INVALID and report.signatures[0].check_status(C.INTEGRITY) is S.FAILED
    # an incremental update after signing that changes the page: INVALID by scope
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/MediaBox"] = generic.ArrayObject([generic.NumberObject(0)] * 2 + [generic.NumberObject(100)] * 2)
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    appended = verify_pdf(out.getvalue(), trusted_roots=(ca[4],))
    assert appended.status is Status.INVALID and appended.signatures[0].check_status(C.SCOPE) is S.FAILED, \
        appended.to_dict()


@pytest.mark.parametrize("junk", [b"", b"not a pdf", b"%PDF-1.7\n%garbage\n", b"%PDF-1.4\n" + b"0" * 5000])
def test_our_verifier_refuses_what_is_not_a_readable_pdf(junk):
    from licence.pdf_verify import verify_pdf
    try:
        report = verify_pdf(junk)
    except InvalidInput:
        return
    assert report.signatures == ()


def test_trustctl_verify_takes_a_pdf(ca, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from api.cli.verify import verify
    monkeypatch.setenv("TRUST_HOME", str(tmp_path / "no-service"))
    (tmp_path / "l.pdf").write_bytes(_lta(ca))
    (tmp_path / "root.der").write_bytes(ca[4])
    result = CliRunner().invoke(verify, [str(tmp_path / "l.pdf"), "--trust-root", str(tmp_path / "root.der")])
    assert result.exit_code == 0 and "格式 format: pdf" in result.output and "DocTimeStamp" in result.output, \
        result.output
    assert CliRunner().invoke(verify, [str(tmp_path / "l.pdf")]).exit_code == 2  # no root trusted


@pytest.fixture(scope="module")
def signed_sample(ca) -> bytes:
    return _signed(ca)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7), cut=st.booleans())
def test_fuzz_truncated_and_mutated_pdfs_only_report_or_refuse(ca, signed_sample, position, bit, cut):
    """The verifier's entry point: a cut or a flipped bit anywhere gives a report or our own
    InvalidInput, within the test's time limit; with our root trusted, never VALID once a signed
    byte changed. (The /Contents hex string is outside the byte ranges by design: a flip in its
    zero padding or in the CMS's unsigned parts may leave the signature valid.)"""
    import re

    from licence.pdf_verify import verify_pdf
    from trust.report import Status
    data = signed_sample
    a, b, c, d = map(int, re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", data).groups())
    position %= len(data)
    changed = data[:position] if cut else data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1:]
    try:
        report = verify_pdf(changed, trusted_roots=(ca[4],))
    except InvalidInput:
        return
    if cut or a <= position < a + b or c <= position < c + d:
        assert report.status is not Status.VALID, (position, bit, cut)


def test_encrypted_and_oversized_pdfs_are_refused_by_name():
    import io

    from reportlab.pdfgen import canvas as pdf_canvas

    from licence.pdf_verify import MAX_PDF_BYTES, verify_pdf
    out = io.BytesIO()
    locked = pdf_canvas.Canvas(out, encrypt="secret")
    locked.drawString(100, 100, "locked")
    locked.save()
    with pytest.raises(InvalidInput, match="encrypted"):
        verify_pdf(out.getvalue())
    with pytest.raises(InvalidInput, match="larger than"):
        verify_pdf(b"%PDF-1.7\n" + bytes(MAX_PDF_BYTES))


def test_a_byte_range_that_leaves_bytes_out_is_invalid(ca):
    """/ByteRange rewritten (same length, so the file still parses) to leave a stretch of the
    signed revision uncovered: the digest no longer matches, or the coverage is not the
    whole revision; never VALID."""
    import re

    from licence.pdf_verify import verify_pdf
    from trust.report import CheckName as C, CheckStatus as S, Status
    signed = _signed(ca)
    found = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", signed)
    a, b, c, d = map(int, found.groups())
    narrowed = f"/ByteRange [{a} {b - 10} {c} {d}]".encode()
    original = found.group(0)
    narrowed = narrowed.ljust(len(original))
    forged = signed.replace(original, narrowed, 1)
    report = verify_pdf(forged, trusted_roots=(ca[4],))
    first = report.signatures[0]
    assert report.status is Status.INVALID, report.to_dict()
    assert S.FAILED in (first.check_status(C.INTEGRITY), first.check_status(C.SCOPE), first.check_status(C.FORMAT))


def test_a_time_stamp_taken_from_another_signature_fails_by_its_imprint(ca):
    """The signature time stamp token of another document put in this signature's unsigned
    attributes (the CMS re-encoded into the same /Contents space): the signature itself still
    verifies, but the time stamp's imprint is not its signature value's: timestamp FAILED."""
    import re

    from asn1crypto import cms

    from licence.pdf_verify import verify_pdf
    from trust.report import CheckName as C, CheckStatus as S, Status

    def contents(data: bytes):
        found = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", data)
        return found, cms.ContentInfo.load(bytes.fromhex(found.group(1).decode()))

    this = _b_t(ca)
    other = _b_t(ca, lm.Document(pages=(lm.Page(items=(lm.Text(30, 40, "另一份文件", 10),)),)))
    found, signed_data = contents(this)
    _, donor = contents(other)
    stamp = donor["content"]["signer_infos"][0]["unsigned_attrs"]
    signed_data["content"]["signer_infos"][0]["unsigned_attrs"] = stamp.copy()
    der = signed_data.dump().hex().encode()
    assert len(der) <= len(found.group(1))
    forged = this[:found.start(1)] + der.ljust(len(found.group(1)), b"0") + this[found.end(1):]
    report = verify_pdf(forged, trusted_roots=(ca[4],))
    first = report.signatures[0]
    assert first.check_status(C.SIGNATURE) is S.PASSED, report.to_dict()
    assert first.check_status(C.TIMESTAMP) is S.FAILED and report.status is Status.INVALID, report.to_dict()


# ---------------------------------------------------------------- licences issued as PDF too

@pytest.fixture(scope="module")
def demo_licence(ca):
    return issue_demo_licence(ca)


def test_the_demo_issuer_issues_each_licence_as_a_signed_pdf_too(ca, demo_licence, tmp_path):
    """With a PDF key registered for its issuer, a licence is an OFD sealed with SM2 and a PDF
    signed PAdES B-LTA with ECDSA, laid out alike: pdfsig and our verifier accept the PDF, and
    pdftotext reads the same face."""
    from licence.pdf_verify import verify_pdf
    from trust.report import Status
    root = ca[4]
    record, pdf = demo_licence
    (tmp_path / "licence.pdf").write_bytes(pdf)
    out = _pdfsig(tmp_path / "licence.pdf")
    assert "Signature is Valid." in out and "ECDSA TSA" in out, out
    report = verify_pdf(pdf, trusted_roots=(root,))
    assert report.status is Status.VALID and [s.type for s in report.signatures] == ["PAdES", "DocTimeStamp"]
    text = subprocess.run(["pdftotext", "-raw", str(tmp_path / "licence.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout.replace(" ", "")
    for _key, _label, value in record.record["printed"]:
        assert value.replace(" ", "")[:20] in text.replace("\n", ""), value


def test_the_pdf_carries_the_whole_metadata_as_a_signed_attachment(demo_licence, tmp_path):
    """LicenceMeta.xml, face included, is embedded in the signed update (pdfdetach, an
    independent reader, lists and saves it), so a QR payload's face SM3 is checked on a PDF
    as on an OFD."""
    from licence.pdf_verify import licence_metadata
    record, pdf = demo_licence
    (tmp_path / "l.pdf").write_bytes(pdf)
    assert "LicenceMeta.xml" in subprocess.run(["pdfdetach", "-list", str(tmp_path / "l.pdf")], capture_output=True,
                                               text=True, check=True, timeout=60).stdout
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "meta.xml"), str(tmp_path / "l.pdf")],
                   check=True, timeout=60)
    assert (tmp_path / "meta.xml").read_bytes() == record.metadata().to_xml()
    meta, changed = licence_metadata(pdf)
    assert meta == record.metadata() and not changed


def test_a_later_update_is_a_change_of_the_information_only_beyond_moddate_and_producer(demo_licence):
    """pyHanko rewrites /ModDate and /Producer with every update it appends (the B-LTA document
    time stamp a second after the signature): not a rewrite of the licence's information;
    another /Title is."""
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from licence.pdf_verify import licence_metadata
    _record, pdf = demo_licence

    def appended(**values) -> bytes:
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
        info = writer.trailer["/Info"].get_object()
        for name, value in values.items():
            info[generic.NameObject(f"/{name}")] = generic.TextStringObject(value)
        writer.update_container(info)
        out = BytesIO()
        writer.write(out)
        return out.getvalue()

    assert licence_metadata(appended(ModDate="D:20990101000000Z", Producer="another tool"))[1] is False
    assert licence_metadata(appended(Title="另一份证照"))[1] is True


def test_pdfsig_trusts_the_signer_once_our_root_is_in_its_nss_database(ca, demo_licence, tmp_path):
    """Poppler's verdict on the certificate, as a relying party gets it: with the demo ECDSA
    root trusted and the CRLs of the file's DSS imported, "Certificate is Trusted"; without
    the root, the issuer is unknown. -no-ocsp: Poppler 22 reads NSS's error code even when
    the verification succeeded, so a soft-failed fetch from the OCSP responder the certificate
    names (not running in this test) would read as "Unknown issue"; later Poppler fixed it."""
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    from tests.oracles import nss_database
    _record, pdf = demo_licence
    (tmp_path / "l.pdf").write_bytes(pdf)
    dss = DocumentSecurityStore.read_dss(PdfFileReader(BytesIO(pdf)))
    crls = tuple(c.get_object().data for c in dss.crls)
    trusted = nss_database(tmp_path / "trusted", (ca[4],), crls)
    first = _pdfsig(tmp_path / "l.pdf", "-nssdir", trusted, "-no-ocsp").split("Signature #2")[0]
    assert "Signature is Valid." in first and "Certificate is Trusted." in first, first
    empty = nss_database(tmp_path / "empty", ())
    first = _pdfsig(tmp_path / "l.pdf", "-nssdir", empty, "-no-ocsp").split("Signature #2")[0]
    assert "Certificate issuer is unknown." in first, first


def test_the_signature_shows_the_seal_where_the_ofd_stamps_it(demo_licence, tmp_path):
    """The PDF's signature is a visible widget at the OFD stamp's box whose appearance is the
    seal's picture: Poppler draws red there, and the page content alone has none."""
    from io import BytesIO

    import numpy
    from PIL import Image
    from pyhanko.pdf_utils.reader import PdfFileReader
    _record, pdf = demo_licence
    reader = PdfFileReader(BytesIO(pdf))
    [widget] = [a.get_object() for a in reader.root["/Pages"]["/Kids"][0].get_object()["/Annots"]
                if a.get_object().get("/T") == "Signature1"]
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    assert 60 < x2 - x1 < 200 and abs((x2 - x1) - (y2 - y1)) < 1  # a round seal's square box, in points
    (tmp_path / "l.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "72", "-png", "-singlefile", str(tmp_path / "l.pdf"), str(tmp_path / "page")],
                   check=True, timeout=60)
    page = numpy.asarray(Image.open(tmp_path / "page.png").convert("RGB")).astype(int)
    height = page.shape[0]
    inside = page[int(height - y2):int(height - y1), int(x1):int(x2)]
    red = (inside[..., 0] > 150) & (inside[..., 1] < 90) & (inside[..., 2] < 90)
    assert red.mean() > 0.05, red.mean()
    subprocess.run(["pdftoppm", "-r", "72", "-png", "-singlefile", "-hide-annotations", str(tmp_path / "l.pdf"),
                    str(tmp_path / "bare")], check=True, timeout=60)
    bare = numpy.asarray(Image.open(tmp_path / "bare.png").convert("RGB")).astype(int)
    bare_inside = bare[int(height - y2):int(height - y1), int(x1):int(x2)]
    assert ((bare_inside[..., 0] > 150) & (bare_inside[..., 1] < 90) & (bare_inside[..., 2] < 90)).mean() < 0.01


def _licence_report(ca, data):
    from licence import registry
    from licence.verify import verify_licence
    with session_factory(ca[0])() as session:
        return verify_licence(data, lookup=lambda i: (registry.get(session, i), registry.history(session, i)),
                              trusted_roots=(ca[4],))


def test_a_licence_pdf_is_reported_as_the_licence_it_is_and_follows_its_status(ca, demo_licence):
    """The report on a licence PDF has the licence section and licence_status, like the OFD's;
    each PAdES signature says the level it reaches; suspending the licence makes the same file
    INVALID by licence_status while its signatures stay intact (revoking: the last test)."""
    from licence import registry
    from trust.report import CheckName as C, CheckStatus as S, Status
    record, pdf = demo_licence
    report = _licence_report(ca, pdf)
    assert report.status is Status.VALID, report.to_dict()
    assert report.licence["licence_id"] == record.licence_id and report.licence["status"] == "01"
    assert report.licence["holder"]["name"] == "演示科技有限公司"
    signature = report.signatures[0]
    assert signature.level == "B-LTA" and report.to_dict()["signatures"][0]["level"] == "B-LTA"
    assert signature.check_status(C.LICENCE_STATUS) is S.PASSED
    engine = ca[0]
    with session_factory(engine)() as session:
        registry.transition(session, record.licence_id, "suspend", actor="test", reason="测试暂扣")
        session.commit()
    suspended = _licence_report(ca, pdf)
    assert suspended.status is Status.INVALID and suspended.licence["status"] == "02"
    first = suspended.signatures[0]
    assert first.check_status(C.LICENCE_STATUS) is S.FAILED
    assert first.check_status(C.INTEGRITY) is S.PASSED and first.check_status(C.SIGNATURE) is S.PASSED
    with session_factory(engine)() as session:
        registry.transition(session, record.licence_id, "resume", actor="test", reason="测试恢复")
        session.commit()
    assert _licence_report(ca, pdf).status is Status.VALID


def test_what_a_later_update_writes_does_not_change_which_licence_it_is(ca, demo_licence):
    """The metadata is read from the signed revision, and the registry names the PDF by it:
    a document time stamp appended later keeps the file the registered one, and an update
    that rewrites the document information does not change the section but is warned of."""
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    from licence.pades import KeyStoreTimeStamper
    from licence.pdf_verify import signed_revision
    from trust.report import CheckName as C, CheckStatus as S, Status
    record, pdf = demo_licence
    engine, keystore = ca[0], ca[1]
    with session_factory(engine)() as session:
        out = BytesIO()
        signers.PdfTimeStamper(KeyStoreTimeStamper(session, keystore)).timestamp_pdf(
            IncrementalPdfFileWriter(BytesIO(pdf)), "sha256", output=out)
        session.commit()
    renewed = out.getvalue()
    assert signed_revision(renewed) == signed_revision(pdf) != pdf
    report = _licence_report(ca, renewed)
    assert report.status is Status.VALID and report.signatures[0].check_status(C.LICENCE_STATUS) is S.PASSED

    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    info = writer.trailer["/Info"].get_object()
    info[generic.NameObject("/持证主体")] = generic.TextStringObject("冒充有限公司")
    writer.update_container(info)
    forged = BytesIO()
    writer.write(forged)
    report = _licence_report(ca, forged.getvalue())  # pyHanko's policy allows it: we say what was signed
    assert report.licence["holder"]["name"] == "演示科技有限公司"
    assert any("rewritten after signing" in w.en for w in report.warnings), report.to_dict()
    from licence import registry
    with session_factory(engine)() as session:
        registry.transition(session, record.licence_id, "revoke", actor="test", reason="测试吊销")
        session.commit()
    revoked = _licence_report(ca, renewed)
    assert revoked.status is Status.INVALID and revoked.licence["status"] == "07"
    assert revoked.signatures[0].check_status(C.LICENCE_STATUS) is S.FAILED
    assert revoked.signatures[0].check_status(C.INTEGRITY) is S.PASSED
