"""The OFD container: path resolution (spec §1), entry names, byte-exact re-zipping."""

import io
import zipfile

import pytest

from ofd.package import OFDFormatError, Package, check_entry_name, parse_xml, resolve, to_loc, write_package
from ofd.reader import read_ofd

from tests.oracles import shared_file


@pytest.mark.parametrize("base, loc, expected", [
    ("Doc_0/Document.xml", "Pages/Page_0/Content.xml", "Doc_0/Pages/Page_0/Content.xml"),
    ("Doc_0/Document.xml", "/Doc_0/Res/a.png", "Doc_0/Res/a.png"),
    ("OFD.xml", "Doc_0/Document.xml", "Doc_0/Document.xml"),
    ("Doc_0/Pages/Page_0/Content.xml", "../../Res/x.ttf", "Doc_0/Res/x.ttf"),
    ("Doc_0/Document.xml", "./PublicRes.xml", "Doc_0/PublicRes.xml"),
    ("Doc_0/Document.xml", "../../../etc/passwd", None),
])
def test_resolve(base, loc, expected):
    assert resolve(base, loc) == expected


def test_locate_tolerates_root_paths_written_as_relative_and_case():
    package = Package({"Doc_0/Document.xml": b"", "Doc_0/Tpls/Tpl_0/Content.xml": b"", "Doc_0/Res/a.png": b""})
    assert package.locate("Doc_0/Document.xml", "TPLS/Tpl_0/Content.xml") == "Doc_0/Tpls/Tpl_0/Content.xml"
    assert package.locate("Doc_0/PublicRes.xml", "Doc_0/Res/a.png") == "Doc_0/Res/a.png"
    assert package.locate("Doc_0/PublicRes.xml", "Doc_0\\Res\\a.png") == "Doc_0/Res/a.png"
    assert package.locate("Doc_0/Document.xml", "missing.xml") is None
    assert to_loc("Doc_0/Res/a.png") == "/Doc_0/Res/a.png"


def test_entry_names():
    assert check_entry_name("Doc_0/Res/印章.png") == "Doc_0/Res/印章.png"
    for bad in ("../x", "/x", "a\\b", "a//b", "", "C:/x"):
        with pytest.raises(OFDFormatError):
            check_entry_name(bad)


def test_gbk_entry_names_without_utf8_flag_are_decoded():
    package = Package.from_bytes(shared_file("corpus", "ofd", "unsigned",
                                             "ofdrw__chineseDir_windows_gbk_zipnames.ofd").read_bytes())
    assert "Doc_0/Res/这是一个中文目录/数据文件.txt" in package


def test_rezipping_keeps_every_part_byte_exact_and_names_utf8():
    original = Package.from_bytes(shared_file("spec", "fixtures", "SESV4SignDoc.ofd").read_bytes())
    parts = dict(original.parts)
    parts["Doc_0/Res/印章.txt"] = b"x"
    again = Package.from_bytes(write_package(parts))
    assert again.parts == parts
    with zipfile.ZipFile(io.BytesIO(write_package(parts))) as archive:
        assert all(info.flag_bits & 0x800 for info in archive.infolist() if not info.filename.isascii())
    assert read_ofd(write_package(parts)).signatures[0].id == "1"


def test_xml_parsing_is_namespace_tolerant_and_refuses_dtd():
    assert parse_xml(b"<Page><Content/></Page>").tag == "Page"
    with pytest.raises(OFDFormatError, match="DOCTYPE"):
        parse_xml(b"<!DOCTYPE a><a/>")
    with pytest.raises(OFDFormatError, match="well-formed"):
        parse_xml(b"<a>")
