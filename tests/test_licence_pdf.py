"""licence/pdf.py, the second writer of the one layout model (issue #15, first slice): a
licence's PDF shows the same fields at the same places as its OFD, read back by tools nobody
here wrote (Poppler's pdftotext, pdffonts, pdfinfo, pdfimages; zbarimg for the QR code; easyofd
for the OFD), with an embedded CJK font subset and the GB/T 36903 metadata in the document
information and the XMP packet."""

import re
import shutil
import subprocess

import pytest

from licence import identifier, issuance
from licence.pdf import write_pdf
from ofd import layout as lm
from ofd.writer import write_ofd
from trust.errors import InvalidInput

from tests.licence_support import CLIENT, VERIFY_URL, business_request, food_request, make_authority, physician_request
from tests.test_licence_issue import _easyofd_text

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="Poppler's tools read the PDF back")


@pytest.fixture
def authority(session, tmp_path):
    return make_authority(session, tmp_path)


def _document(authority, body) -> tuple[lm.Document, dict]:
    """A licence laid out exactly as issuance lays it out (licence.issuance.laid_out)."""
    ready = issuance.draft(authority.world.session, body, client_id=CLIENT)
    licence_id = identifier.build(ready.licence_type.type_code, ready.issuer.issuer_code, "20260000001", 1)
    record = ready.record(licence_id, None)
    return issuance.laid_out(ready, record, issuance.verify_url_for(VERIFY_URL, licence_id)), record


def _poppler(tool: str, *args) -> str:
    return subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=60, check=True).stdout


@pytest.mark.parametrize("request_of", [business_request, food_request, physician_request],
                         ids=["business", "food", "physician"])
def test_the_pdf_and_the_ofd_show_the_same_face(authority, tmp_path, request_of):
    document, record = _document(authority, request_of())
    (tmp_path / "l.pdf").write_bytes(pdf := write_pdf(document))
    assert pdf == write_pdf(document), "the same licence gives the same bytes"
    pdf_text = re.sub(r"\s+", "", _poppler("pdftotext", "-raw", tmp_path / "l.pdf", "-"))
    ofd_text = re.sub(r"\s+", "", _easyofd_text(write_ofd(document)))
    for _key, _label, value in record["printed"]:
        printed = re.sub(r"\s+", "", value)
        assert printed[:30] in pdf_text, (value, pdf_text[:300])
        assert printed[:30] in ofd_text, value
    fonts = _poppler("pdffonts", tmp_path / "l.pdf").splitlines()[2:]
    assert fonts and all(line.split()[-5:-3] == ["yes", "yes"] for line in fonts), fonts  # embedded, subset


def test_text_is_where_the_layout_puts_it(authority, tmp_path):
    document, _record = _document(authority, business_request())
    (tmp_path / "l.pdf").write_bytes(write_pdf(document))
    boxes = _poppler("pdftotext", "-bbox", tmp_path / "l.pdf", "-")
    page = document.pages[0]
    words = [(float(m[0]), float(m[1]), float(m[2]), float(m[3]), m[4]) for m in
             re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)</word>', boxes)]
    pt = 72 / 25.4
    checked = 0
    for item in page.items:
        if isinstance(item, lm.Text) and " " not in item.text and len(item.text) >= 2:
            found = [w for w in words if w[4] == item.text]
            assert found, item.text
            x_min, _y_min, _x_max, y_max, _ = found[0]
            assert abs(x_min / pt - item.x) < 0.5, (item.text, x_min / pt, item.x)
            assert abs(y_max / pt - item.y) < item.size * 0.35, (item.text, y_max / pt, item.y)  # the descent
            checked += 1
    assert checked >= 5


def test_metadata_in_the_document_information_and_xmp(authority, tmp_path):
    document, record = _document(authority, business_request())
    (tmp_path / "l.pdf").write_bytes(write_pdf(document))
    info = _poppler("pdfinfo", "-custom", tmp_path / "l.pdf")
    assert re.search(r"^Title:\s+营业执照$", info, re.MULTILINE)
    for name, value in document.info.custom_datas:
        assert re.search(rf"^{re.escape(name)}:\s+{re.escape(value)}$", info, re.MULTILINE), (name, value)
    xmp = _poppler("pdfinfo", "-meta", tmp_path / "l.pdf")
    assert record["licence_id"] in xmp and 'xmlns:elic="urn:gbt36903:elicence:metadata"' in xmp


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg reads the QR code")
def test_the_qr_code_in_the_pdf_opens_the_verification_page(authority, tmp_path):
    document, record = _document(authority, business_request())
    (tmp_path / "l.pdf").write_bytes(write_pdf(document))
    assert "image" in _poppler("pdfimages", "-list", tmp_path / "l.pdf")
    subprocess.run(["pdftoppm", "-r", "200", "-png", "-singlefile", tmp_path / "l.pdf", tmp_path / "page"],
                   check=True, timeout=60)
    decoded = _poppler("zbarimg", "--quiet", "--raw", tmp_path / "page.png").strip()
    assert decoded == issuance.verify_url_for(VERIFY_URL, record["licence_id"])


def test_every_item_of_the_model_is_drawn_and_bad_ones_are_refused(tmp_path):
    import io

    from PIL import Image
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(png, "PNG")
    document = lm.Document(pages=(
        lm.Page(items=(lm.Text(20, 20, "加粗 Bold", 6, bold=True, color=(200, 0, 0), char_spacing=0.5),
                      lm.Line(10, 30, 100, 30), lm.Rect(10, 40, 50, 20, fill=(0, 0, 200)),
                      lm.Path("S 10 70 L 50 70 B 60 80 70 60 80 70 Q 90 80 100 70 A 5 5 0 0 1 110 70 C", fill=(0, 150, 0)),
                      lm.Image(120, 20, 30, 30, png.getvalue(), "PNG"),
                      lm.Table(10, 100, (30, 60), 8, (("名称", "某某"), ("住所", "某某路")))),),
        lm.Page(items=(lm.Text(20, 20, "第二页", 5),), width=100, height=150)))
    (tmp_path / "all.pdf").write_bytes(write_pdf(document))
    assert "Pages:           2" in _poppler("pdfinfo", tmp_path / "all.pdf")
    text = _poppler("pdftotext", tmp_path / "all.pdf", "-")
    assert "加粗" in text and "某某路" in text and "第二页" in text
    with pytest.raises(InvalidInput, match="malformed path"):
        write_pdf(lm.Document(pages=(lm.Page(items=(lm.Path("M 1 L 2 3"),)),)))
    with pytest.raises(InvalidInput):
        write_pdf(lm.Document(pages=()))
