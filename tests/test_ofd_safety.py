"""Untrusted OFD packages: every hostile construction is refused with OFDFormatError (an
InvalidInput) and a clear message, within bounded time and memory; the reader is fuzzed."""

import io
import time
import tracemalloc
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ofd import layout
from ofd.package import Limits, OFDFormatError, Package
from ofd.reader import read_ofd
from ofd.verify import verify_ofd
from ofd.writer import write_ofd
from trust.errors import InvalidInput

OFD_XML = (b'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" '
           b'DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>x</ofd:DocID></ofd:DocInfo>'
           b'<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>')
DOCUMENT_XML = (b'<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"><ofd:CommonData><ofd:MaxUnitID>1</ofd:MaxUnitID>'
                b'<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea></ofd:CommonData>'
                b'<ofd:Pages/></ofd:Document>')


def _zip(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buffer.getvalue()


def _refused(data: bytes, fragment: str, limits: Limits | None = None) -> OFDFormatError:
    start = time.monotonic()
    with pytest.raises(OFDFormatError) as caught:
        if limits:
            Package.from_bytes(data, limits)
        else:
            read_ofd(data)
    assert time.monotonic() - start < 5
    assert isinstance(caught.value, InvalidInput)
    assert fragment in caught.value.en, caught.value.en
    assert caught.value.zh and caught.value.zh != caught.value.en
    return caught.value


def test_zip_bomb_is_refused_by_ratio_in_bounded_memory():
    bomb = _zip([("OFD.xml", OFD_XML), ("Doc_0/bomb.bin", bytes(100 << 20))])
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        _refused(bomb, "compression ratio")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20  # the ratio bound stops at 200 × the compressed size, not at 100 MiB


def test_entry_and_total_size_limits():
    stored = _zip([("a.bin", b"x" * 5000), ("b.bin", b"y" * 5000)], zipfile.ZIP_STORED)
    _refused(stored, "exceeds 4096 bytes uncompressed", Limits(max_entry_size=4096))
    _refused(stored, "in total", Limits(max_total_size=8000))
    _refused(stored, "more than 1 entries", Limits(max_entries=1))


@pytest.mark.parametrize("name", ["../evil.xml", "Doc_0/../../evil.xml", "/etc/passwd", "C:/evil.xml",
                                  "Doc_0\\Document.xml", "Doc_0//x.xml", "./OFD.xml"])
def test_bad_entry_names(name):
    _refused(_zip([("OFD.xml", OFD_XML), (name, b"x")]), "entry name")


def test_duplicate_entries():
    with pytest.warns(UserWarning):
        data = _zip([("OFD.xml", OFD_XML), ("OFD.xml", OFD_XML)])
    _refused(data, "duplicate entry 'OFD.xml'")


def test_not_a_zip():
    _refused(b"%PDF-1.7 not a zip", "not a zip")
    _refused(_zip([("readme.txt", b"hi")]), "OFD.xml is missing")


def _with_ofd_xml(xml: bytes, method=zipfile.ZIP_DEFLATED) -> bytes:
    return _zip([("OFD.xml", xml), ("Doc_0/Document.xml", DOCUMENT_XML)], method)


def test_external_entities_and_network_are_refused():
    for doctype in (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                    b'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>',
                    b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd">'):
        xml = b'<?xml version="1.0"?>' + doctype + OFD_XML.split(b"?>", 1)[1].replace(b"<ofd:DocID>x", b"<ofd:DocID>&x;")
        start = time.monotonic()
        with pytest.raises(OFDFormatError) as caught:
            read_ofd(_with_ofd_xml(xml))
        assert time.monotonic() - start < 2
        assert "DOCTYPE" in caught.value.en or "well-formed" in caught.value.en


def test_billion_laughs():
    lol = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(9)) + b"]>"
    xml = b'<?xml version="1.0"?>' + lol + OFD_XML.split(b"?>", 1)[1].replace(b"<ofd:DocID>x", b"<ofd:DocID>&j;")
    _refused(_with_ofd_xml(xml), "")


def test_deep_nesting_and_huge_attributes():
    deep = OFD_XML.replace(b"<ofd:DocID>x</ofd:DocID>", b"<a>" * 200 + b"</a>" * 200)
    _refused(_with_ofd_xml(deep), "nested deeper")
    deeper = OFD_XML.replace(b"<ofd:DocID>x</ofd:DocID>", b"<a>" * 100_000 + b"</a>" * 100_000)
    _refused(_with_ofd_xml(deeper, zipfile.ZIP_STORED), "OFD")
    huge = OFD_XML.replace(b'Version="1.0"', b'Version="1.0" X="' + b"A" * (2 << 20) + b'"')
    _refused(_with_ofd_xml(huge, zipfile.ZIP_STORED), "attribute longer")


def _small_ofd() -> bytes:
    return write_ofd(layout.Document(pages=(layout.Page(items=(layout.Text(10, 20, "样例 sample", 5),
                                                                 layout.Rect(5, 5, 50, 30))),),
                                     info=layout.DocInfo(doc_id="0" * 32), embed_fonts=False))


SMALL = _small_ofd()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data):
    try:
        read_ofd(data)
    except InvalidInput:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_mutated_package(mutations):
    data = bytearray(SMALL)
    for position, value in mutations:
        data[position] = value
    try:
        read_ofd(bytes(data))
        verify_ofd(bytes(data))
    except InvalidInput:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_fuzz_xml_text(text):
    xml = OFD_XML.replace(b"<ofd:DocID>x</ofd:DocID>", text.encode())
    try:
        read_ofd(_with_ofd_xml(xml))
    except InvalidInput:
        pass


def test_repeat_counts_cannot_allocate_without_bound():
    content = (b'<ofd:Page xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Content><ofd:Layer ID="1">'
               + b'<ofd:TextObject ID="2" Boundary="0 0 10 10" Font="1" Size="3"><ofd:TextCode X="0" Y="3" '
               b'DeltaX="g 999999999999 1 g 999999999 2">ab</ofd:TextCode></ofd:TextObject>' * 2000
               + b'</ofd:Layer></ofd:Content></ofd:Page>')
    document = DOCUMENT_XML.replace(b"<ofd:Pages/>", b'<ofd:Pages><ofd:Page ID="9" BaseLoc="P.xml"/></ofd:Pages>')
    data = _zip([("OFD.xml", OFD_XML), ("Doc_0/Document.xml", document), ("Doc_0/P.xml", content)])
    start = time.monotonic()
    (page,) = read_ofd(data).pages
    assert time.monotonic() - start < 5
    assert len(page.texts) == 2000 and page.texts[0].delta_x == (1.0,)


def test_the_depth_limit_is_exact_and_counts_comments_and_instructions_but_not_text():
    from trust.archive import DEFAULT_LIMITS, ArchiveError, parse_xml
    depth = DEFAULT_LIMITS.max_xml_depth
    parse_xml(b"<a>" * depth + b"text" + b"</a>" * depth)
    for inner in (b"<b/>", b"<!-- c -->", b"<?pi x?>"):
        with pytest.raises(ArchiveError, match="nested deeper"):
            parse_xml(b"<a>" * depth + inner + b"</a>" * depth)
