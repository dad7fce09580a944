"""The writer's packages are read back by an independent parser (easyofd, PyPI) and by ours."""

import base64
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fontTools.ttLib import TTFont
from PIL import Image as PILImage

from ofd import layout as lm
from ofd.package import Package
from ofd.reader import read_ofd
from ofd.text import document_text
from ofd.writer import write_ofd
from trust.errors import InvalidInput


def _png(color) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (24, 16), color).save(out, "PNG")
    return out.getvalue()


RED, BLUE = _png((200, 0, 0)), _png((0, 0, 200))
PAGES = (
    lm.Page(items=(
        lm.Text(30, 30, "营业执照", 10, color=(200, 0, 0), char_spacing=2),
        lm.Text(20, 50, "统一社会信用代码 91350100M000100Y43", 4),
        lm.Image(150, 20, 30, 20, RED),
        lm.Rect(10, 10, 190, 277),
        lm.Line(20, 60, 190, 60, width=0.5),
        lm.Table(20, 70, (40, 110), 8, (("名称", "福州某某科技有限公司"), ("住所", "福建省福州市鼓楼区某路1号"))),
    )),
    lm.Page(items=(lm.Text(20, 30, "第二页：经营范围", 5), lm.Image(20, 40, 60, 40, BLUE, "PNG"))),
    lm.Page(width=297, height=210, items=(lm.Text(20, 30, "横向第三页 landscape", 6),)),
)
DOCUMENT = lm.Document(
    pages=PAGES,
    info=lm.DocInfo(title="营业执照", author="福州市市场监督管理局", doc_id="5c0e0b7a9a1f4d7e8f3b2c6d1e0a9b88",
                   keywords=("营业执照", "电子证照"),
                   custom_datas=(("证照类型", "营业执照"), ("licenceNo", "91350100M000100Y43"))),
    attachments=(lm.Attachment("证照数据.json", b'{"name": "x"}', "json"),),
    custom_tags=(lm.CustomTag("urn:uia:licence", "<licence><name>福州某某科技有限公司</name></licence>".encode()),),
)


@pytest.fixture(scope="module")
def ofd_bytes() -> bytes:
    return write_ofd(DOCUMENT)


def _expected_runs(page: lm.Page) -> list[lm.Text]:
    runs = []
    for item in page.items:
        runs.extend(i for i in (item.items() if isinstance(item, lm.Table) else [item]) if isinstance(i, lm.Text))
    return runs


def test_easyofd_reads_pages_text_positions_and_images(ofd_bytes):
    from easyofd.parser_ofd.ofd_parser import OFDParser  # independent parser; imports are slow and noisy

    parsed = OFDParser(base64.b64encode(ofd_bytes).decode())()
    assert len(parsed) == 1
    doc = parsed[0]
    assert len(doc["page_info"]) == len(PAGES)
    images_by_id = {k: base64.b64decode(v["imgb64"]) for k, v in doc["images"].items()}
    for index, page in enumerate(PAGES):
        info = doc["page_info"][index]
        got = sorted((t["text"], round(float(t["pos"][0]), 2), round(float(t["pos"][1]), 2)) for t in info["text_list"])
        want = sorted((r.text, round(r.x, 2), round(r.y - r.size, 2)) for r in _expected_runs(page))
        assert got == want
        images = [i for i in page.items if isinstance(i, lm.Image)]
        assert len(info["img_list"]) == len(images)
        for item, found in zip(images, info["img_list"], strict=True):
            assert [round(float(v), 2) for v in found["pos"]] == [item.x, item.y, item.w, item.h]
            assert images_by_id[found["ResourceID"]] == item.data


def test_our_reader_reads_everything_back(ofd_bytes):
    document = read_ofd(ofd_bytes)
    assert document.info["Title"] == "营业执照" and document.info["Keywords"] == ["营业执照", "电子证照"]
    assert document.info["CustomDatas"] == {"证照类型": "营业执照", "licenceNo": "91350100M000100Y43"}
    assert [p.box for p in document.pages] == [(0, 0, 210, 297), (0, 0, 210, 297), (0, 0, 297, 210)]
    package = Package.from_bytes(ofd_bytes)
    for page, model in zip(document.pages, PAGES, strict=True):
        assert [(r.text, r.x, r.y, r.size) for r in page.texts] == \
            [(r.text, r.x, r.y, r.size) for r in _expected_runs(model)]
        images = [i for i in model.items if isinstance(i, lm.Image)]
        assert [package.read(i.part) for i in page.images] == [i.data for i in images]
        assert [i.boundary for i in page.images] == [(i.x, i.y, i.w, i.h) for i in images]
    first = document.pages[0].texts[0]
    assert first.color == (200, 0, 0) and first.delta_x == (12.0, 12.0, 12.0)
    assert len(document.pages[0].paths) == 1 + 1 + 3 + 3
    (attachment,) = document.attachments
    assert attachment.name == "证照数据.json" and package.read(attachment.part) == b'{"name": "x"}'
    (tag,) = document.custom_tags
    assert tag.namespace == "urn:uia:licence" and "福州某某科技有限公司" in package.read(tag.part).decode()
    assert document.missing == () and document.signatures == ()


def test_embedded_font_is_a_subset_with_the_used_glyphs(ofd_bytes):
    document = read_ofd(ofd_bytes)
    (font,) = document.fonts.values()
    data = Package.from_bytes(ofd_bytes).read(font.part)
    assert len(data) < 200_000
    cmap = TTFont(io.BytesIO(data)).getBestCmap()
    assert all(ord(c) in cmap for c in "营业执照统一社会信用代码经营范围横向")
    assert ord("龘") not in cmap


def test_standard_font_name_without_embedding():
    data = write_ofd(lm.Document(pages=(lm.Page(items=(lm.Text(10, 20, "仿宋文字", 5, font="FangSong"),)),),
                                embed_fonts=False))
    (font,) = read_ofd(data).fonts.values()
    assert font.name == "FangSong" and font.part is None


def test_text_in_reading_order(ofd_bytes):
    pages = document_text(ofd_bytes)
    assert pages[0].splitlines() == ["营业执照", "统一社会信用代码 91350100M000100Y43",
                                     "名称 福州某某科技有限公司", "住所 福建省福州市鼓楼区某路1号"]
    assert pages[1] == "第二页：经营范围" and pages[2] == "横向第三页 landscape"


def test_png_preview(ofd_bytes):
    from ofd.render import render_page

    preview = PILImage.open(io.BytesIO(render_page(ofd_bytes, 0, dpi=96))).convert("RGB")
    scale = 96 / 25.4
    assert preview.size == (round(210 * scale), round(297 * scale))
    assert preview.getpixel((round(165 * scale), round(30 * scale))) == (200, 0, 0)       # the red image
    title = preview.crop((round(30 * scale), round(21 * scale), round(80 * scale), round(31 * scale)))
    assert (200, 0, 0) in {colour for _, colour in title.getcolors(100_000)}              # red title text
    edge = preview.crop((round(10 * scale) - 2, round(100 * scale), round(10 * scale) + 3, round(100 * scale) + 1))
    assert min(colour[0] for _, colour in edge.getcolors()) < 100                         # the frame's left edge
    landscape = PILImage.open(io.BytesIO(render_page(ofd_bytes, 2, dpi=50)))
    assert landscape.size == (round(297 * 50 / 25.4), round(210 * 50 / 25.4))


def _one_line(text: str, doc_id: str = "0" * 32) -> lm.Document:
    return lm.Document(pages=(lm.Page(items=(lm.Text(10, 20, text, 5),)),), info=lm.DocInfo(doc_id=doc_id))


def _embedded_font(data: bytes) -> bytes:
    (font,) = read_ofd(data).fonts.values()
    return Package.from_bytes(data).read(font.part)


def test_the_font_is_parsed_once_per_process_and_subset_per_document(tmp_path):
    from PIL import ImageFont

    from ofd import writer

    first, second = (_embedded_font(write_ofd(_one_line(t))) for t in ("甲乙丙", "丁戊己"))
    assert writer._parsed_font(writer.CJK_FONT) is writer._parsed_font(writer.CJK_FONT)
    for data, own, other in ((first, "甲乙丙", "丁戊己"), (second, "丁戊己", "甲乙丙")):
        cmap = TTFont(io.BytesIO(data)).getBestCmap()
        assert all(ord(c) in cmap for c in own) and not any(ord(c) in cmap for c in other)
        face = ImageFont.truetype(io.BytesIO(data), 32)  # FreeType draws every glyph of the subset
        assert all(face.getmask(c).getbbox() for c in own)

    # a font file replaced on disk (another mtime) is parsed again
    copy = tmp_path / "font.ttc"
    copy.write_bytes(open(writer.CJK_FONT, "rb").read())
    parsed = writer._parsed_font(str(copy))
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert writer._parsed_font(str(copy)) is not parsed


def test_writing_is_deterministic_and_safe_from_several_threads():

    texts = [f"第{i}号 营业执照 福州{'甲乙丙丁戊己庚辛壬癸'[i]}" for i in range(6)]
    alone = [write_ofd(_one_line(t)) for t in texts]
    time.sleep(1.05)  # the embedded font carries no time of writing
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda t: write_ofd(_one_line(t)), texts))
    assert together == alone


def test_custom_tags_take_the_file_names_given_and_refuse_clashes():
    page = lm.Page(items=(lm.Text(10, 10, "标引"),))
    named = lm.CustomTag("urn:x", b"<a/>", file_name="Meta.xml", type_id="Meta")
    data = write_ofd(lm.Document(pages=(page,), custom_tags=(named,), embed_fonts=False))
    (tag,) = read_ofd(data).custom_tags
    assert tag.part == "Doc_0/Tags/Meta.xml" and tag.namespace == "urn:x"
    assert b'TypeID="Meta"' in Package.from_bytes(data).read("Doc_0/Tags/CustomTags.xml")
    for clash in ((named, named), (lm.CustomTag("urn:y", b"<b/>", file_name="CustomTags.xml"),),
                  (lm.CustomTag("urn:y", b"<b/>", file_name="../x.xml"),)):
        with pytest.raises(InvalidInput):
            write_ofd(lm.Document(pages=(page,), custom_tags=clash, embed_fonts=False))
