"""Seal pictures: Pillow decodes what we draw at the right size, and a small template
reader (FreeType glyphs rendered here, matched against the picture) finds the name, the
purpose and the code where a Chinese official seal has them, upright as one reads them."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, ImageDraw, ImageFont

from ofd import layout
from ofd.writer import write_ofd
from seal.picture import (
    FONT_PATH,
    SEAL_RED,
    Picture,
    SealPictureError,
    name_span,
    oval_seal,
    personal_seal_text,
    picture_from_upload,
    round_seal,
    seal_picture,
    sniff_picture_type,
    square_personal_seal,
    validate_picture,
)
from trust.errors import InvalidInput

NAME = "浙江省市场监督管理局"
PURPOSE = "合同专用章"
CODE = "3301060012345"
DISTRACTORS = "国人民政府办公室审批财务章印"


@pytest.fixture(scope="module")
def official():
    return round_seal(NAME, PURPOSE, CODE)


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGBA"
    image.load()
    return image


def alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image)[:, :, 3].astype(float)


def polar(image: Image.Image):
    """Each pixel's distance from the centre (mm) and angle clockwise from the top (°, -180..180)."""
    px_per_mm = image.info["dpi"][0] / 25.4
    h, w = image.height, image.width
    y, x = np.mgrid[0:h, 0:w]
    dx, dy = (x + 0.5 - w / 2) / px_per_mm, (y + 0.5 - h / 2) / px_per_mm
    return np.hypot(dx, dy), np.degrees(np.arctan2(dx, -dy))


# ---------------------------------------------------------------- a tiny glyph reader

def _signature(ink: np.ndarray) -> np.ndarray | None:
    """The ink's bounding box scaled to 24×24 and normalised: condensing does not matter."""
    rows, columns = np.nonzero(ink > 100)
    if len(rows) == 0:
        return None
    crop = Image.fromarray(ink[rows.min():rows.max() + 1, columns.min():columns.max() + 1].astype(np.uint8))
    v = np.asarray(crop.resize((24, 24), Image.Resampling.BILINEAR), dtype=float).ravel()
    v -= v.mean()
    return v / (np.linalg.norm(v) or 1)


def _template(char: str) -> np.ndarray:
    font = ImageFont.truetype(str(FONT_PATH), 96)
    tile = Image.new("L", (140, 140), 0)
    ImageDraw.Draw(tile).text((70, 70), char, font=font, fill=255, anchor="mm")
    return _signature(np.asarray(tile, dtype=float))


def read(ink: np.ndarray, candidates: str) -> tuple[str, float]:
    found = _signature(ink)
    assert found is not None, "no ink where a character should be"
    scores = {c: float(found @ _template(c)) for c in set(candidates)}
    best = max(scores, key=scores.get)
    return best, scores[best]


def read_arc(image: Image.Image, n: int, r_in: float, r_out: float, *, top: bool, candidates: str) -> tuple[str, float]:
    """Read `n` characters set along the arc between radii r_in..r_out (mm), left to right,
    tops outward on the upper arc or inward on the lower. Returns the text and the angular
    extent of its ink (°)."""
    a = alpha(image)
    r, theta = polar(image)
    if not top:
        theta = 180 - (theta + 360) % 360  # measured from the bottom, positive to the right
    sector = np.abs(theta) < (128 if top else 55)  # the name's arc, or the code's
    band = (r > r_in) & (r < r_out) & (a > 100) & sector
    angles = theta[band]
    start, end = angles.min(), angles.max()
    pitch = (end - start) / n
    text = ""
    for i in range(n):
        window = band & (np.abs(theta - (start + (i + 0.5) * pitch)) < pitch / 2)
        centre = float(np.average(theta[window], weights=a[window]))
        turn = centre if top else -centre
        # turn the picture so this character stands upright at the top (or bottom) centre
        upright = image.rotate(turn, resample=Image.Resampling.BICUBIC)
        r2, t2 = polar(upright)
        if not top:
            t2 = 180 - (t2 + 360) % 360
        ink = np.where((r2 > r_in) & (r2 < r_out) & (np.abs(t2) < pitch * 0.49), alpha(upright), 0)
        text += read(ink, candidates)[0]
    return text, end - start


# ---------------------------------------------------------------- sizes and colours

@pytest.mark.parametrize("diameter, dpi", [(42, 300), (40, 600), (38, 150)])
def test_round_seal_has_the_requested_size(diameter, dpi):
    png = round_seal("某某市人民政府", diameter_mm=diameter, dpi=dpi)
    image = decode(png)
    assert image.size == (round(diameter / 25.4 * dpi),) * 2
    for pixels, resolution in zip(image.size, image.info["dpi"], strict=True):
        assert pixels / resolution * 25.4 == pytest.approx(diameter, abs=0.01)
    assert validate_picture(png, "PNG").width_mm == diameter


def test_round_seal_is_red_on_transparent(official):
    image = decode(official)
    a = alpha(image)
    rgb = np.asarray(image)[:, :, :3]
    r, _theta = polar(image)
    assert (a[r > 21.1] == 0).all(), "ink outside the seal"
    assert (rgb[a > 0] == SEAL_RED).all()
    ring = a[(r > 20.0) & (r < 20.6)]
    assert (ring > 250).mean() > 0.99, "the ring is not solid"
    assert (a[(r > 19.45) & (r < 19.7)] == 0).all(), "nothing may touch the ring from inside"
    assert 0.15 < (a[r < 21] > 128).mean() < 0.45


def test_star_in_the_centre(official):
    a, (r, theta) = alpha(decode(official)), polar(decode(official))
    def near(radius, angle):
        return a[(abs(r - radius) < 0.2) & (abs(((theta - angle) + 180) % 360 - 180) < 2)]
    for k in range(5):  # five points, one straight up, and nothing between them at the same radius
        assert near(6.0, 72 * k).mean() > 200
        assert near(6.0, 72 * k + 36).mean() < 20
    assert a[r < 1.5].min() == 255


def test_name_along_the_upper_arc_upright_from_outside(official):
    image = decode(official)
    text, extent = read_arc(image, len(NAME), 12.2, 19.5, top=True, candidates=NAME + DISTRACTORS)
    assert text == NAME
    assert 210 < extent < 245, "the name is spread over about 240°"
    r, theta = polar(image)
    a = alpha(image)
    name_ink = (r > 12.2) & (r < 19.5) & (a > 100) & (np.abs(theta) < 128)
    left, right = theta[name_ink].min(), theta[name_ink].max()
    assert abs(left + right) < 3, "the name is centred on the top"


def test_short_names_are_spread_too():
    text, extent = read_arc(decode(round_seal("某某公司")), 4, 12.2, 19.5, top=True, candidates="某公司国人")
    assert text == "某某公司"
    assert abs(extent - name_span(4)) < 12


@pytest.mark.parametrize("name", ["演示", "演示局", "某某市人民政府", "某某省某某市某某区市场监督管理局",
                                  "某某省某某市某某区人民政府办公室某某某某某某某某", "某" * 25])
def test_a_name_of_two_to_twenty_five_characters_spans_most_of_the_arc(name):
    """Issue #14: the demo seal's three characters sat thinly over the top of the ring. The
    angular extent of the red name pixels is what the seal shows: 200° for two or three
    characters, 230° from eight on, whatever the length."""
    image = decode(round_seal(name))
    r, theta = polar(image)
    ink = (r > 12.2) & (r < 19.5) & (alpha(image) > 100) & (np.abs(theta) < 135)
    left, right = theta[ink].min(), theta[ink].max()
    assert 195 <= right - left <= 235 and abs((right - left) - name_span(len(name))) < 6, (name, right - left)
    assert abs(left + right) < 3, "centred on the top"


def test_purpose_across_below_the_star(official):
    image = decode(official)
    a = alpha(image)
    px = image.info["dpi"][0] / 25.4
    c = image.width / 2
    r, _ = polar(image)
    rows = slice(int(c + 7.4 * px), int(c + 12.6 * px))
    strip = np.where(r < 16.2, a, 0)[rows, :]  # inside the code and the ends of the name
    columns = np.nonzero((strip > 100).any(axis=0))[0]
    start, end = columns.min(), columns.max() + 1
    assert abs((start + end) / 2 - c) < 0.3 * px, "the purpose is centred"
    pitch = (end - start) / len(PURPOSE)
    read_text = ""
    for i in range(len(PURPOSE)):
        cell = np.zeros_like(strip)
        lo, hi = int(start + i * pitch), int(start + (i + 1) * pitch)
        cell[:, lo:hi] = strip[:, lo:hi]
        read_text += read(cell, PURPOSE + DISTRACTORS)[0]
    assert read_text == PURPOSE
    gap = a[int(c + 5.8 * px):int(c + 7.2 * px), int(c - 8 * px):int(c + 8 * px)]
    assert (gap == 0).all(), "a gap between the star and the purpose"


def test_code_along_the_lower_arc(official):
    text, extent = read_arc(decode(official), len(CODE), 16.5, 19.5, top=False, candidates="0123456789")
    assert text == CODE
    assert extent < 95


def test_no_text_no_ink():
    """Ink in the name band grows with the name; without purpose and code, the lower half
    inside the ring is empty."""
    one, seven = (decode(round_seal(name)) for name in ("某", "某某市人民政府"))
    r, theta = polar(one)
    band = (r > 12.2) & (r < 19.5)
    assert (alpha(seven)[band] > 100).sum() > 5 * (alpha(one)[band] > 100).sum()
    assert (alpha(one)[(r > 7.5) & (r < 19.5) & (np.abs(theta) > 90)] == 0).all()


def test_oval_seal():
    png = oval_seal("杭州某某科技有限公司", code="3301060012345")
    image = decode(png)
    assert image.size == (472, 354)
    for pixels, resolution, mm in zip(image.size, image.info["dpi"], (40, 30), strict=True):
        assert pixels / resolution * 25.4 == pytest.approx(mm, abs=0.01)
    a = alpha(image)
    px = image.info["dpi"][0] / 25.4
    y, x = np.mgrid[0:image.height, 0:image.width]
    outside = ((x + 0.5 - image.width / 2) / (20.1 * px)) ** 2 + ((y + 0.5 - image.height / 2) / (15.1 * px)) ** 2 > 1
    assert (a[outside] == 0).all()
    assert a[image.height // 2, 2:int(1.2 * px)].max() == 255, "ring on the left"
    middle = a[int(image.height / 2 - 1.5 * px):int(image.height / 2 + 3.5 * px), :]
    assert (middle > 100).sum() > 2000, "财务专用章 across the middle"
    picture = validate_picture(png, "PNG")
    assert (picture.width_mm, picture.height_mm) == (40, 30)


@pytest.mark.parametrize("name, shown", [("张三丰", "张三丰印"), ("李四", "李四之印"), ("欧阳修远", "欧阳修远")])
def test_square_personal_seal(name, shown):
    assert personal_seal_text(name) == shown
    image = decode(square_personal_seal(name))
    assert image.size == (236, 236)
    a = alpha(image)
    assert a[:3, :].min() > 200 and a[:, -3:].min() > 200, "a frame to the edge"
    half = image.width // 2
    border = int(0.075 * image.width)
    # read from the right column, top to bottom, then the left column
    cells = [(slice(border, half), slice(half, -border)), (slice(half, -border), slice(half, -border)),
             (slice(border, half), slice(border, half)), (slice(half, -border), slice(border, half))]
    found = ""
    for rows, columns in cells:
        ink = np.zeros_like(a)
        ink[rows, columns] = a[rows, columns]
        found += read(ink, shown + DISTRACTORS)[0]
    assert found == shown


def test_two_characters_without_suffix():
    assert personal_seal_text("李四", "") == "李四"
    a = alpha(decode(square_personal_seal("李四", suffix="")))
    half, border = a.shape[1] // 2, int(0.075 * a.shape[1])
    a[:border], a[-border:], a[:, :border], a[:, -border:] = 0, 0, 0, 0
    assert read(np.where(np.arange(a.shape[1]) >= half, a, 0), "李四印")[0] == "李"
    assert read(np.where(np.arange(a.shape[1]) < half, a, 0), "李四印")[0] == "四"


@pytest.mark.parametrize("call", [
    lambda: round_seal(""),
    lambda: round_seal("某" * 41),
    lambda: round_seal("某某公司", "合同\x00专用章"),
    lambda: round_seal("某某公司\U000f0000"),          # no glyph in the font
    lambda: round_seal("某某公司", diameter_mm=500),
    lambda: round_seal("某某公司", dpi=10_000),
    lambda: round_seal(b"bytes"),
    lambda: oval_seal("某某公司", height_mm=0),
    lambda: square_personal_seal("某"),
    lambda: square_personal_seal("某某某某某"),
])
def test_bad_drawing_input_is_refused(call):
    with pytest.raises(SealPictureError) as caught:
        call()
    assert caught.value.zh and caught.value.en and caught.value.zh != caught.value.en


# ---------------------------------------------------------------- validating pictures

def _raster(fmt: str, **save) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (236, 236), SEAL_RED)
    image.save(out, fmt, **save)
    return out.getvalue()


def test_validate_png_jpeg_bmp_with_resolution():
    for kind, fmt in (("PNG", "PNG"), ("JPG", "JPEG"), ("jpeg", "JPEG"), ("BMP", "BMP")):
        picture = validate_picture(_raster(fmt, dpi=(150, 150)), kind)
        assert picture == Picture(kind.upper().replace("JPEG", "JPG"), picture.data, 40, 40, 236, 236)


def test_validate_gif_needs_a_size():
    gif = _raster("GIF")
    with pytest.raises(SealPictureError, match="no resolution"):
        validate_picture(gif, "GIF")
    assert validate_picture(gif, "GIF", width_mm=40, height_mm=40).width_mm == 40


def test_type_must_match_content():
    png = round_seal("某某公司")
    for kind in ("JPG", "GIF", "BMP", "SVG", "OFD"):
        with pytest.raises(InvalidInput):
            validate_picture(png, kind)
    with pytest.raises(SealPictureError, match="unsupported picture type"):
        validate_picture(png, "WEBP")
    with pytest.raises(SealPictureError, match=r"named \.jpg"):
        picture_from_upload("seal.jpg", png)
    assert picture_from_upload("公章.PNG", png).type == "PNG"
    assert picture_from_upload("seal", png).type == "PNG"


def test_truncated_and_oversized():
    png = round_seal("某某公司")
    with pytest.raises(SealPictureError, match="not a readable PNG"):
        validate_picture(png[: len(png) // 2], "PNG")
    with pytest.raises(SealPictureError, match="more than"):
        validate_picture(png, "PNG", max_bytes=1000)
    with pytest.raises(SealPictureError):
        validate_picture(b"", "PNG")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding():
    with pytest.raises(SealPictureError, match="pixels"):
        validate_picture(_png_header_only(60_000, 60_000), "PNG")
    bomb = io.BytesIO()
    Image.new("1", (5000, 5000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 512 * 1024
    with pytest.raises(SealPictureError, match="pixels"):
        validate_picture(bomb.getvalue(), "PNG", width_mm=40, height_mm=40)


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
       'width="{w}" height="{h}" viewBox="0 0 420 420">{body}</svg>')


def test_svg_sizes():
    assert validate_picture(SVG.format(w="42mm", h="42mm", body="").encode(), "SVG").width_mm == 42
    assert validate_picture(SVG.format(w="4.2cm", h="1.5in", body="").encode(), "svg").height_mm == 38
    view_box_only = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 151.18 113.39"/>'
    picture = validate_picture(view_box_only, "SVG")
    assert (picture.width_mm, picture.height_mm, picture.pixel_width) == (40, 30, 0)
    with pytest.raises(SealPictureError, match="no resolution"):
        validate_picture(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG")
    assert validate_picture(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG", width_mm=40, height_mm=40)


@pytest.mark.parametrize("svg", [
    SVG.format(w="42mm", h="42mm", body="<script>alert(1)</script>"),
    SVG.format(w="42mm", h="42mm", body='<circle r="5" onload="alert(1)"/>'),
    SVG.format(w="42mm", h="42mm", body='<foreignObject><p xmlns="http://www.w3.org/1999/xhtml"/></foreignObject>'),
    SVG.format(w="42mm", h="42mm", body='<image xlink:href="http://example.com/x.png"/>'),
    SVG.format(w="42mm", h="42mm", body='<image href="file:///etc/passwd"/>'),
    SVG.format(w="42mm", h="42mm", body='<rect fill="url(https://example.com/p#a)"/>'),
    SVG.format(w="42mm", h="42mm", body='<style>@import "https://example.com/a.css";</style>'),
    '<?xml-stylesheet href="http://example.com/a.css"?>' + SVG.format(w="42mm", h="42mm", body=""),
    '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>' + SVG.format(w="42mm", h="42mm", body="&b;"),
    '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + SVG.format(w="42mm", h="42mm", body="<text>&x;</text>"),
    '<svg xmlns="http://example.com/not-svg" width="42mm" height="42mm"/>',
    SVG.format(w="42mm", h="42mm", body="<g>" * 100 + "</g>" * 100),
    SVG.format(w="1e400mm", h="42mm", body=""),
    "<svg",
])
def test_unsafe_or_broken_svg_refused(svg):
    with pytest.raises(InvalidInput):
        validate_picture(svg.encode(), "SVG")


def test_svg_local_references_are_fine():
    svg = SVG.format(w="42mm", h="42mm", body='<defs><path id="p" d="M0 0L1 1"/></defs><use href="#p"/>'
                     '<rect fill="url(#p)"/><style>circle {{ fill: red }}</style>')
    assert validate_picture(svg.encode(), "SVG").width_mm == 42


def test_ofd_picture():
    page = layout.Page(items=(layout.Image(0, 0, 40, 40, round_seal("某某公司", diameter_mm=40)),), width=40, height=40)
    ofd = write_ofd(layout.Document(pages=(page,), embed_fonts=False))
    picture = picture_from_upload("seal.ofd", ofd)
    assert (picture.type, picture.width_mm, picture.height_mm) == ("OFD", 40, 40)
    with pytest.raises(InvalidInput):
        validate_picture(ofd[:200], "OFD")
    with pytest.raises(InvalidInput):
        validate_picture(b"PK\x03\x04" + b"\0" * 100, "OFD")


def test_every_corpus_seal_picture_is_accepted():
    """Pictures of real producers' seals (OFD, BMP, GIF, PNG) pass the checks an import makes."""
    from seal.ses import SealFormatError, parse_seal

    from tests.oracles import shared_file
    seen = set()
    for path in sorted(shared_file("corpus", "seals").iterdir()):
        try:
            info = parse_seal(path.read_bytes()).seal_info
        except SealFormatError:
            continue
        picture = validate_picture(info.picture_data, info.picture_type, width_mm=info.picture_width,
                                   height_mm=info.picture_height)
        seen.add(picture.type)
    assert {"OFD", "BMP", "GIF", "PNG"} <= seen


def test_sniffing():
    assert sniff_picture_type(round_seal("某某公司")) == "PNG"
    assert sniff_picture_type(b"\xef\xbb\xbf<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>") == "SVG"
    assert sniff_picture_type(b"hello") is None
    with pytest.raises(SealPictureError):
        picture_from_upload("x.png", b"hello")


# ---------------------------------------------------------------- fuzz

_SEEDS = {
    "PNG": _raster("PNG", dpi=(300, 300)),
    "JPG": _raster("JPEG", dpi=(300, 300)),
    "GIF": _raster("GIF"),
    "BMP": _raster("BMP", dpi=(300, 300)),
    "SVG": SVG.format(w="42mm", h="42mm", body='<circle r="5" fill="red"/>').encode(),
    "OFD": write_ofd(layout.Document(pages=(layout.Page(items=(layout.Rect(5, 5, 30, 30),), width=40, height=40),),
                                     embed_fonts=False)),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(_SEEDS)), data=st.binary(max_size=600))
def test_fuzz_garbage(kind, data):
    try:
        picture = validate_picture(data, kind)
    except InvalidInput as e:
        assert e.zh and e.en
    else:
        assert picture.type == kind and picture.width_mm >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(_SEEDS)), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                           min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_fuzz_mutated(kind, flips, cut):
    data = bytearray(_SEEDS[kind])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    for attempt in (lambda: validate_picture(bytes(data), kind), lambda: picture_from_upload("x", bytes(data))):
        try:
            attempt()
        except InvalidInput as e:
            assert e.zh and e.en


@pytest.mark.parametrize("seal_type, size, purpose", [
    ("official", (42, 42), ""), ("contract", (42, 42), "合同专用章"), ("approval", (42, 42), "审批专用章"),
    ("finance", (40, 30), "财务专用章"), ("personal", (20, 20), None), ("other", (42, 42), "")])
def test_seal_picture_by_type(seal_type, size, purpose):
    picture = seal_picture(seal_type, "张三丰" if seal_type == "personal" else "某某市人民政府", code="3301060012345")
    assert (picture.type, picture.width_mm, picture.height_mm) == ("PNG", *size)
    if purpose is not None:
        expected = (oval_seal if seal_type == "finance" else round_seal)("某某市人民政府", purpose, "3301060012345")
        assert picture.data == expected


def test_seal_picture_purpose_and_unknown_type():
    assert seal_picture("approval", "某某市人民政府", purpose="行政审批专用章").data == round_seal("某某市人民政府", "行政审批专用章")
    with pytest.raises(SealPictureError):
        seal_picture("secret", "某某市人民政府")


@pytest.mark.parametrize("body", [
    '<a href="javascript:alert(1)"><circle r="5"/></a>',
    '<a><set attributeName="href" to="javascript:alert(1)"/></a>',
    '<circle r="5"><animate attributeName="xlink:href" values="http://example.com"/></circle>',
    '<style>rect { background: u\\72l(http://example.com/) }</style>',
    '<rect style="fill: image-set(\'http://example.com/a.png\' 1x)"/>',
    '<image href="data:image/svg+xml;base64,PHN2Zy8+"/>',
])
def test_svg_links_and_animations_refused(body):
    with pytest.raises(SealPictureError):
        validate_picture(SVG.format(w="42mm", h="42mm", body=body).encode(), "SVG")


def test_svg_with_embedded_raster_accepted():
    import base64
    png = base64.b64encode(square_personal_seal("张三丰")).decode()
    svg = SVG.format(w="20mm", h="20mm", body=f'<image width="420" height="420" href="data:image/png;base64,{png}"/>')
    assert validate_picture(svg.encode(), "SVG").width_mm == 20


def test_fuzz_seeds_are_valid_pictures():
    for kind, data in _SEEDS.items():
        assert validate_picture(data, kind, width_mm=40, height_mm=40).type == kind
    assert validate_picture(_SEEDS["OFD"], "OFD").width_mm == 40


def test_missing_font_is_a_clear_error(monkeypatch):
    import seal.picture

    monkeypatch.setattr(seal.picture, "FONT_PATH", seal.picture.Path("/nonexistent/wqy-zenhei.ttc"))
    seal.picture._font_characters.cache_clear()
    try:
        with pytest.raises(SealPictureError, match="fonts-wqy-zenhei"):
            round_seal("某某公司")
    finally:
        seal.picture._font_characters.cache_clear()
