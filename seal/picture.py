"""Seal pictures (印模): drawing the round, oval and square seals, and validating uploads.

A seal's picture travels inside SES_Seal as SES_ESPictrueInfo (GB/T 38540, see
../shared/spec/eseal-gbt38540.md): a type ("PNG", "JPG", "GIF", "BMP", "SVG", or "OFD"
for a vector seal), the bytes, and the display size in whole millimetres.

The pictures drawn here follow the usual layout of Chinese official seals: a red ring,
the organisation's name along the upper arc with each character upright as seen from
outside the seal, a five-pointed star in the centre, the purpose (合同专用章…) straight
across below it and the seal code along the lower arc.

Drawing happens on a grey "ink" canvas SUPERSAMPLE times larger than the result, which is
then reduced and turned into red with the ink as alpha, so edges are smooth and everything
outside the ink is transparent. The PNG records its resolution (pHYs) chosen so that
pixels / resolution is the requested size in millimetres.
"""

import bisect
import io
import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTCollection
from lxml import etree
from PIL import Image, ImageDraw, ImageFont

from seal.ses import PICTURE_MAGIC
from trust import archive
from trust.archive import Limits, child, child_text, local
from trust.errors import InvalidInput

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")  # Debian fonts-wqy-zenhei
FONT_INDEX = 0                                                    # "WenQuanYi Zen Hei"
SEAL_RED = (230, 0, 18)
SUPERSAMPLE = 3
MM_PER_INCH = 25.4

MAX_PICTURE_BYTES = 512 * 1024
MAX_PIXELS = 4096 * 4096
PICTURE_TYPES = ("PNG", "JPG", "GIF", "BMP", "SVG", "OFD")
OFD_PICTURE_LIMITS = Limits(max_entries=200, max_entry_size=8 << 20, max_total_size=16 << 20,
                            max_xml_size=4 << 20)


class SealPictureError(InvalidInput):
    """A seal picture that cannot be drawn or that is not what its type says."""

    code = "invalid_seal_picture"


def _fail(en: str, zh: str) -> SealPictureError:
    return SealPictureError(f"seal picture: {en}", f"印章图像：{zh}")


@dataclass(frozen=True)
class Picture:
    """A validated seal picture: what SES_ESPictrueInfo holds, plus its pixel size."""

    type: str           # "PNG", "JPG", "GIF", "BMP", "SVG" or "OFD"
    data: bytes
    width_mm: int       # display size in whole millimetres, as SES_ESPictrueInfo stores it
    height_mm: int
    pixel_width: int    # 0 for vector pictures (SVG, OFD)
    pixel_height: int


# ---------------------------------------------------------------- font and text checks

@lru_cache(maxsize=1)
def _font_characters() -> frozenset[int]:
    """The code points the font draws: text with others is refused, not drawn as boxes."""
    if not FONT_PATH.is_file():
        raise SealPictureError(
            f"the CJK font {FONT_PATH} is missing; install the Debian package fonts-wqy-zenhei",
            f"缺少中文字体 {FONT_PATH}，请安装 Debian 软件包 fonts-wqy-zenhei")
    return frozenset(TTCollection(str(FONT_PATH)).fonts[FONT_INDEX].getBestCmap())


@lru_cache(maxsize=64)
def _font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size_px, index=FONT_INDEX)


def _text(value: str, what_en: str, what_zh: str, max_chars: int, *, required: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(f"the {what_en} must be text", f"{what_zh}必须是文本")
    value = " ".join(value.split())
    if required and not value:
        raise _fail(f"the {what_en} is empty", f"{what_zh}为空")
    if len(value) > max_chars:
        raise _fail(f"the {what_en} is longer than {max_chars} characters",
                    f"{what_zh}超过 {max_chars} 个字符")
    for char in value:
        if not char.isprintable():
            raise _fail(f"the {what_en} contains a control character", f"{what_zh}含有控制字符")
        if ord(char) not in _font_characters():
            raise _fail(f"the font has no glyph for {char!r} (U+{ord(char):04X}) in the {what_en}",
                        f"字体中没有{what_zh}中的字“{char}”（U+{ord(char):04X}）")
    return value


def _number(value, low: float, high: float, what_en: str, what_zh: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _fail(f"{what_en} must be a number from {low} to {high}", f"{what_zh}须为 {low} 到 {high} 之间的数")
    return float(value)


# ---------------------------------------------------------------- the ink canvas

class _Ink:
    """A supersampled grey canvas measured in millimetres; 255 is full ink."""

    def __init__(self, width_mm: float, height_mm: float, dpi: float):
        dpi = _number(dpi, 72, 600, "the resolution in dpi", "分辨率（dpi）")
        self.width_mm, self.height_mm = width_mm, height_mm
        self.pixels = (round(width_mm / MM_PER_INCH * dpi), round(height_mm / MM_PER_INCH * dpi))
        self.scale = SUPERSAMPLE * dpi / MM_PER_INCH  # canvas pixels per mm
        self.image = Image.new("L", (self.pixels[0] * SUPERSAMPLE, self.pixels[1] * SUPERSAMPLE), 0)
        self.draw = ImageDraw.Draw(self.image)

    def px(self, mm: float) -> float:
        return mm * self.scale

    def ring(self, cx: float, cy: float, rx: float, ry: float, width: float) -> None:
        """An elliptical ring whose outer edge is (rx, ry) around (cx, cy), all in mm."""
        # Pillow's boxes include x1, y1
        box = [self.px(cx - rx), self.px(cy - ry), self.px(cx + rx) - 1, self.px(cy + ry) - 1]
        self.draw.ellipse(box, outline=255, width=max(1, round(self.px(width))))

    def rectangle(self, x0: float, y0: float, x1: float, y1: float, width: float) -> None:
        box = [self.px(x0), self.px(y0), self.px(x1) - 1, self.px(y1) - 1]  # Pillow's boxes include x1, y1
        self.draw.rectangle(box, outline=255, width=max(1, round(self.px(width))))

    def star(self, cx: float, cy: float, radius: float) -> None:
        """A regular five-pointed star, one point straight up."""
        inner = radius * math.sin(math.radians(18)) / math.sin(math.radians(126))
        points = []
        for k in range(10):
            r = radius if k % 2 == 0 else inner
            angle = math.radians(36 * k)
            points.append((self.px(cx + r * math.sin(angle)), self.px(cy - r * math.cos(angle))))
        self.draw.polygon(points, fill=255)

    def glyph(self, char: str, cx: float, cy: float, width: float, height: float, angle: float = 0.0) -> None:
        """One character whose em box is `width` × `height` mm centred on (cx, cy), turned
        `angle` degrees clockwise. Seal lettering is condensed or widened to its box."""
        em = max(4, round(self.px(height)))
        side = round(em * 1.25)
        tile = Image.new("L", (side, side), 0)
        ImageDraw.Draw(tile).text((side / 2, side / 2), char, font=_font(em), fill=255, anchor="mm",
                                  stroke_width=max(1, round(em * 0.025)), stroke_fill=255)
        tile = tile.resize((max(1, round(side * width / height)), side), Image.Resampling.BICUBIC)
        if angle:
            tile = tile.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True)
        x, y = round(self.px(cx) - tile.width / 2), round(self.px(cy) - tile.height / 2)
        self.image.paste(255, (x, y, x + tile.width, y + tile.height), mask=tile)

    def png(self) -> bytes:
        """The picture as RGBA PNG: seal red where there is ink, transparent elsewhere."""
        alpha = self.image.reduce(SUPERSAMPLE)  # box average: the ink's coverage of each pixel
        picture = Image.new("RGBA", self.pixels, (*SEAL_RED, 0))
        picture.putalpha(alpha)
        # pHYs holds whole pixels per metre: choose it from the pixel count so the recorded
        # size is the requested one (42 mm at 300 dpi is 496 px at 11810 px/m = 41.998 mm).
        dpi = self.pixels[0] / self.width_mm * MM_PER_INCH, self.pixels[1] / self.height_mm * MM_PER_INCH
        out = io.BytesIO()
        picture.save(out, "PNG", dpi=dpi, optimize=True)
        return out.getvalue()


# ---------------------------------------------------------------- text along an ellipse

def _ellipse_point(cx, cy, rx, ry, angle):
    """The point at `angle` degrees clockwise from the top on the ellipse (rx, ry)."""
    a = math.radians(angle)
    return cx + rx * math.sin(a), cy - ry * math.cos(a)


def _outward(rx, ry, angle) -> float:
    """The clockwise turn (degrees) that makes a character's top face away from the centre."""
    a = math.radians(angle)
    return math.degrees(math.atan2(math.sin(a) / rx, math.cos(a) / ry))


def _arc_angles(rx, ry, centre: float, positions: list[float]) -> list[float]:
    """Angles of points at the given arc lengths (mm, signed, clockwise) from the point at
    `centre` degrees on the ellipse; equal arc lengths keep lettering evenly spaced."""
    steps = 720
    lengths, previous, total = [0.0], _ellipse_point(0, 0, rx, ry, centre - 180), 0.0
    for k in range(1, steps + 1):
        point = _ellipse_point(0, 0, rx, ry, centre - 180 + 360 * k / steps)
        total += math.dist(point, previous)
        lengths.append(total)
        previous = point
    middle = lengths[steps // 2]
    angles = []
    for s in positions:
        target = middle + s
        k = min(max(1, bisect.bisect_left(lengths, target)), steps)
        fraction = (target - lengths[k - 1]) / ((lengths[k] - lengths[k - 1]) or 1)
        angles.append(centre - 180 + 360 * (k - 1 + fraction) / steps)
    return angles


def _arc_length(rx, ry, centre, span) -> float:
    """Length (mm) of the ellipse's arc of `span` degrees centred on `centre`."""
    points = [_ellipse_point(0, 0, rx, ry, centre - span / 2 + span * k / 360) for k in range(361)]
    return sum(math.dist(p, q) for p, q in itertools.pairwise(points))


def _text_on_arc(ink: _Ink, text: str, cx, cy, rx, ry, *, top: bool, span: float, height: float,
                 max_step: float | None = None, aspect: float = 0.75) -> None:
    """Set `text` left to right inside the ellipse (rx, ry): on the upper arc with tops
    outward (top=True), or on the lower arc with tops towards the centre; the edge of each
    character nearest the ellipse touches it. Characters are `height` mm tall and condensed
    to fit (never below 0.45 × height wide: long texts get smaller letters instead).
    With `max_step`, they are evenly spaced over at most `span` degrees and at most
    `max_step` degrees apart (a code); without, the first and the last character's outer
    edges lie `span` degrees apart, as an official seal's name fills its arc however long."""
    if not text:
        return
    n = len(text)
    centre = 0.0 if top else 180.0
    if max_step is not None:
        span = min(span, n * max_step)
        pitch = _arc_length(rx - height / 2, ry - height / 2, centre, span) / n
        width = min(height * aspect, pitch * 0.9)
        height = min(height, width / 0.45)
        rx, ry = rx - height / 2, ry - height / 2
        pitch = _arc_length(rx, ry, centre, span) / n
    else:
        length = _arc_length(rx - height / 2, ry - height / 2, centre, span)
        width = min(height * aspect, 0.9 * length / max(n - 0.1, 1))  # the widest that leaves a gap
        height = min(height, width / 0.45)
        rx, ry = rx - height / 2, ry - height / 2
        length = _arc_length(rx, ry, centre, span)
        pitch = (length - width) / (n - 1) if n > 1 else 0.0
    offsets = [(i - (n - 1) / 2) * pitch for i in range(n)]
    if not top:
        offsets = [-s for s in offsets]  # left to right along the bottom runs anticlockwise
    for char, angle in zip(text, _arc_angles(rx, ry, centre, offsets), strict=True):
        x, y = _ellipse_point(cx, cy, rx, ry, angle)
        turn = _outward(rx, ry, angle)
        ink.glyph(char, x, y, width, height, turn if top else turn - 180)


def _text_across(ink: _Ink, text: str, cx, cy, *, height: float, max_width: float, aspect: float = 0.85) -> None:
    """Set `text` on one straight line centred on (cx, cy), condensed to fit `max_width`."""
    if not text:
        return
    pitch = min(height * aspect * 1.08, max_width / len(text))
    width = min(height * aspect, pitch / 1.08)
    for i, char in enumerate(text):
        ink.glyph(char, cx + (i - (len(text) - 1) / 2) * pitch, cy, width, height)


# ---------------------------------------------------------------- the seals

def name_span(characters: int) -> float:
    """Degrees of the ring an official seal's name fills: 200° for up to three characters,
    growing to 230° from eight on (the ends then stop above the purpose line), so a short
    name still spans most of the arc."""
    return 200 + 30 * min(1.0, max(0, characters - 3) / 5)


def round_seal(name: str, purpose: str = "", code: str = "", *, diameter_mm: float = 42, dpi: float = 300) -> bytes:
    """The round official seal (公章 and 专用章) as RGBA PNG.

    Proportions follow a 42 mm seal and scale with the diameter: ring 1.2 mm, star 14 mm
    across, name lettering 6.6 mm tall (smaller past about 20 characters) evenly spaced
    over 200° to 230° of the ring (name_span), purpose 4.5 mm tall across below the star, code
    2.3 mm tall along the lower arc. `dpi` is 72 to 600."""
    name = _text(name, "organisation name", "单位名称", 40, required=True)
    purpose = _text(purpose, "purpose", "印章用途", 12)
    code = _text(code, "seal code", "印章编码", 24)
    diameter = _number(diameter_mm, 20, 100, "the diameter in mm", "直径（毫米）")
    ink = _Ink(diameter, diameter, dpi)
    k = diameter / 42
    c = diameter / 2
    ink.ring(c, c, c, c, 1.2 * k)
    ink.star(c, c, 7.0 * k)
    inside = c - 1.2 * k  # the ring's inner edge
    _text_on_arc(ink, name, c, c, inside - 0.7 * k, inside - 0.7 * k, top=True, span=name_span(len(name)),
                 height=6.6 * k, aspect=0.9 if len(name) <= 4 else 0.75)  # few characters: fuller ones
    _text_across(ink, purpose, c, c + 9.9 * k, height=4.5 * k, max_width=21 * k)
    _text_on_arc(ink, code, c, c, inside - 0.6 * k, inside - 0.6 * k, top=False, span=90, height=2.3 * k,
                 max_step=6.5, aspect=0.6)
    return ink.png()


def oval_seal(name: str, purpose: str = "财务专用章", code: str = "", *, width_mm: float = 40,
              height_mm: float = 30, dpi: float = 300) -> bytes:
    """The oval seal (财务专用章 and the like) as RGBA PNG: the name along the upper arc,
    the purpose straight across the middle, the code along the lower arc, no star."""
    name = _text(name, "organisation name", "单位名称", 40, required=True)
    purpose = _text(purpose, "purpose", "印章用途", 12)
    code = _text(code, "seal code", "印章编码", 24)
    width = _number(width_mm, 20, 100, "the width in mm", "宽度（毫米）")
    height = _number(height_mm, 15, 100, "the height in mm", "高度（毫米）")
    ink = _Ink(width, height, dpi)
    k = min(width / 40, height / 30)
    rx, ry = width / 2, height / 2
    cx, cy = width / 2, height / 2
    ink.ring(cx, cy, rx, ry, 1.0 * k)
    inside = 1.0 * k + 0.6 * k
    _text_on_arc(ink, name, cx, cy, rx - inside, ry - inside, top=True, span=name_span(len(name)) - 30,
                 height=4.4 * k, aspect=0.75)
    _text_across(ink, purpose, cx, cy + 1.2 * k, height=4.4 * k, max_width=width - 12 * k, aspect=0.8)
    _text_on_arc(ink, code, cx, cy, rx - inside, ry - inside, top=False, span=100, height=2.0 * k,
                 max_step=8, aspect=0.6)
    return ink.png()


def personal_seal_text(name: str, suffix: str | None = None) -> str:
    """The characters a square personal seal shows: 3-character names take "印" and
    2-character names "之印" (张三丰印, 李四之印), 4-character names stand alone."""
    name = _text(name, "name", "姓名", 4, required=True)
    if suffix is None:
        suffix = {2: "之印", 3: "印"}.get(len(name), "")
    text = name + _text(suffix, "suffix", "后缀", 2)
    if len(text) not in (2, 4):
        raise _fail("a square personal seal shows 2 or 4 characters", "方形人名章须为 2 个或 4 个字")
    return text


def square_personal_seal(name: str, *, size_mm: float = 20, dpi: float = 300, suffix: str | None = None) -> bytes:
    """The square personal seal (人名章) as RGBA PNG, characters in columns read from the
    right, top to bottom: 张三丰印 is 张 三 in the right column, 丰 印 in the left."""
    text = personal_seal_text(name, suffix)
    size = _number(size_mm, 8, 60, "the size in mm", "边长（毫米）")
    ink = _Ink(size, size, dpi)
    border = size * 0.06
    ink.rectangle(0, 0, size, size, border)
    inner = size - 2 * border
    gap = size * 0.04
    cell = (inner - 3 * gap) / 2
    rows = 2 if len(text) == 4 else 1
    cell_height = cell if rows == 2 else inner - 2 * gap
    for i, char in enumerate(text):
        column, row = divmod(i, rows)
        x = size - (border + gap + cell / 2 + column * (cell + gap))
        y = border + gap + cell_height / 2 + row * (cell + gap)
        ink.glyph(char, x, y, cell, cell_height)
    return ink.png()


# The customary picture of each seal type (seal.registry.SealType values).
_PURPOSE_BY_TYPE = {"official": "", "contract": "合同专用章", "approval": "审批专用章", "finance": "财务专用章"}


def seal_picture(seal_type: str, name: str, *, purpose: str | None = None, code: str = "",
                 dpi: float = 300) -> Picture:
    """The customary picture for a seal type, validated: a round seal for official (公章,
    name and star only), contract and approval seals and other seals, an oval one for
    finance seals, a square one for personal seals (`name` is then the person's name).
    `purpose` replaces the type's usual text (e.g. "行政审批专用章")."""
    if seal_type == "personal":
        data = square_personal_seal(name, dpi=dpi)
    else:
        if seal_type != "other" and seal_type not in _PURPOSE_BY_TYPE:
            raise _fail(f"unknown seal type {str(seal_type)[:20]!r}", f"未知的印章类型 {str(seal_type)[:20]!r}")
        text = _PURPOSE_BY_TYPE.get(seal_type, "") if purpose is None else purpose
        draw = oval_seal if seal_type == "finance" else round_seal
        data = draw(name, text, code, dpi=dpi)
    return validate_picture(data, "PNG")


# ---------------------------------------------------------------- validating pictures

MAX_DISPLAY_MM = 300          # no seal is wider than this; larger means a wrong resolution
SVG_NS = "http://www.w3.org/2000/svg"
SVG_MAX_ELEMENTS = 20_000
SVG_MAX_DEPTH = 64
_PIL_FORMATS = {"PNG": "PNG", "JPG": "JPEG", "GIF": "GIF", "BMP": "BMP"}
_EXTENSIONS = {"png": "PNG", "jpg": "JPG", "jpeg": "JPG", "gif": "GIF", "bmp": "BMP", "svg": "SVG", "ofd": "OFD"}
_MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "in": MM_PER_INCH, "pt": MM_PER_INCH / 72, "pc": MM_PER_INCH / 6,
                "px": MM_PER_INCH / 96, "": MM_PER_INCH / 96}  # CSS units; a user unit is a 1/96 in pixel


def normalise_picture_type(value: str) -> str:
    """The picture type as SES_ESPictrueInfo spells it ("jpeg" → "JPG")."""
    if not isinstance(value, str):
        raise _fail("the picture type must be text", "图像类型必须是文本")
    name = value.strip().upper()
    name = "JPG" if name == "JPEG" else name
    if name not in PICTURE_TYPES:
        raise _fail(f"unsupported picture type {value[:20]!r}; use one of {', '.join(PICTURE_TYPES)}",
                    f"不支持的图像类型 {value[:20]!r}，可用：{'、'.join(PICTURE_TYPES)}")
    return name


def validate_picture(data: bytes, picture_type: str, *, max_bytes: int = MAX_PICTURE_BYTES,
                     width_mm: int | None = None, height_mm: int | None = None,
                     max_pixels: int = MAX_PIXELS) -> Picture:
    """Check that `data` really is a picture of the given type and find its size.

    Raster pictures are decoded by Pillow (only the decoder for the declared type, after
    checking the pixel count from the header); SVG is parsed with entities, DTDs and the
    network off and must not script or fetch anything; OFD goes through the bounded zip
    reader and its size is the page's PhysicalBox. The display size is `width_mm` ×
    `height_mm` when given, else the one the picture records (resolution, SVG units, OFD
    mm); a raster picture without a resolution needs the size given."""
    kind = normalise_picture_type(picture_type)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail("the picture must be bytes", "图像数据必须是字节串")
    data = bytes(data)
    if not data:
        raise _fail("the picture is empty", "图像数据为空")
    if len(data) > max_bytes:
        raise _fail(f"the picture is {len(data)} bytes, more than the {max_bytes} allowed",
                    f"图像大小 {len(data)} 字节，超过上限 {max_bytes} 字节")
    if kind in PICTURE_MAGIC and not data.startswith(PICTURE_MAGIC[kind]):
        raise _fail(f"the data is not a {kind} file (wrong signature bytes)", f"数据不是 {kind} 文件（文件头不符）")
    if kind == "SVG":
        size, pixels = _svg_size(data), (0, 0)
    elif kind == "OFD":
        size, pixels = _ofd_size(data), (0, 0)
    else:
        pixels, dpi = _decode_raster(data, kind, max_pixels)
        size = (pixels[0] / dpi[0] * MM_PER_INCH, pixels[1] / dpi[1] * MM_PER_INCH) if dpi else None
    if width_mm is not None or height_mm is not None:
        size = (_display_mm(width_mm, "width", "宽度"), _display_mm(height_mm, "height", "高度"))
    if size is not None and not all(math.isfinite(v) and v > 0 for v in size):
        raise _fail("the picture's recorded size is not a positive number", "图像记录的尺寸不是正数")
    if size is None:
        raise _fail(f"the {kind} picture records no resolution: give its width and height in mm",
                    f"该 {kind} 图像未记录分辨率，请给出宽度和高度（毫米）")
    width, height = (max(1, int(v + 0.5)) for v in size)
    if width > MAX_DISPLAY_MM or height > MAX_DISPLAY_MM:
        raise _fail(f"the picture would be {width} × {height} mm (over {MAX_DISPLAY_MM} mm): give its size in mm",
                    f"图像尺寸为 {width}×{height} 毫米（超过 {MAX_DISPLAY_MM} 毫米），请给出宽高（毫米）")
    return Picture(kind, data, width, height, pixels[0], pixels[1])


def picture_from_upload(filename: str, data: bytes, **options) -> Picture:
    """Validate an uploaded picture whose type is told by its content; a file name whose
    extension names another type is refused. `options` as for validate_picture."""
    found = sniff_picture_type(data)
    if found is None:
        raise _fail("the file is not a PNG, JPG, GIF, BMP, SVG or OFD picture",
                    "文件不是 PNG、JPG、GIF、BMP、SVG 或 OFD 图像")
    extension = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    named = _EXTENSIONS.get(extension)
    if named is not None and named != found:
        raise _fail(f"the file is named .{extension} but holds a {found} picture",
                    f"文件扩展名为 .{extension}，内容却是 {found} 图像")
    return validate_picture(data, found, **options)


def sniff_picture_type(data: bytes) -> str | None:
    """The picture type the leading bytes announce, or None."""
    head = bytes(data[:512]) if isinstance(data, (bytes, bytearray, memoryview)) else b""
    for kind, magics in PICTURE_MAGIC.items():
        if head.startswith(magics):
            return kind
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<") and b"<svg" in head:
        return "SVG"
    return None


def _display_mm(value, what_en: str, what_zh: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DISPLAY_MM:
        raise _fail(f"the {what_en} must be whole millimetres from 1 to {MAX_DISPLAY_MM}",
                    f"{what_zh}须为 1 到 {MAX_DISPLAY_MM} 的整数毫米")
    return value


def _decode_raster(data: bytes, kind: str, max_pixels: int) -> tuple[tuple[int, int], tuple[float, float] | None]:
    """Pixel size and recorded resolution (dpi) of a raster picture, after decoding it."""
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]]) as image:
            width, height = image.size
            if width < 1 or height < 1 or width * height > max_pixels:
                raise _fail(f"the picture is {width} × {height} pixels (at most {max_pixels} pixels)",
                            f"图像为 {width}×{height} 像素（上限 {max_pixels} 像素）")
            image.load()
            dpi = image.info.get("dpi")
    except SealPictureError:
        raise
    except Exception as e:  # Pillow's decoders report bad input with many exception types
        raise _fail(f"the data is not a readable {kind} picture ({type(e).__name__}: {str(e)[:200]})",
                    f"数据不是可读取的 {kind} 图像（{type(e).__name__}）") from None
    if dpi is not None:
        try:
            dpi = (float(dpi[0]), float(dpi[1]))
        except (TypeError, ValueError, IndexError):
            dpi = None
    if dpi is not None and not (1 <= dpi[0] <= 100_000 and 1 <= dpi[1] <= 100_000):
        dpi = None  # "0 dpi" and the like mean no resolution was recorded
    return (width, height), dpi


# SVG: elements and attributes that run code or reach outside the picture.
_SVG_FORBIDDEN = {"script", "foreignObject", "iframe", "embed", "object", "audio", "video", "handler", "listener"}
_URL = re.compile(r"url\s*\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|bmp);base64,", re.IGNORECASE)


def _svg_size(data: bytes) -> tuple[float, float] | None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, recover=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as e:
        raise _fail(f"the SVG is not well-formed XML ({str(e)[:200]})", "SVG 不是格式正确的 XML") from None
    if root is None or root.getroottree().docinfo.doctype:
        raise _fail("the SVG has a DOCTYPE or no root (DTDs and entities are refused)", "SVG 含 DOCTYPE 或没有根元素（拒绝 DTD 与实体）")
    if root.tag != f"{{{SVG_NS}}}svg":
        raise _fail("the root element is not <svg> in the SVG namespace", "根元素不是 SVG 命名空间中的 <svg>")
    if root.getprevious() is not None:
        raise _fail("the SVG has processing instructions before the root (style sheets are refused)",
                    "SVG 根元素前有处理指令（拒绝外部样式表）")
    count, stack = 0, [(root, 1)]
    while stack:
        element, depth = stack.pop()
        count += 1
        if count > SVG_MAX_ELEMENTS or depth > SVG_MAX_DEPTH:
            raise _fail(f"the SVG has more than {SVG_MAX_ELEMENTS} elements or {SVG_MAX_DEPTH} levels",
                        f"SVG 元素超过 {SVG_MAX_ELEMENTS} 个或层级超过 {SVG_MAX_DEPTH}")
        if not isinstance(element.tag, str):
            raise _fail("the SVG has entities or processing instructions", "SVG 含实体或处理指令")
        _check_svg_element(element)
        stack.extend((sub, depth + 1) for sub in element)
    return _svg_dimensions(root)


def _check_svg_element(element) -> None:
    name = etree.QName(element).localname
    if name in _SVG_FORBIDDEN:
        raise _fail(f"the SVG contains <{name}>", f"SVG 含有 <{name}> 元素")
    texts = [element.text or ""] if name == "style" else []
    for attribute, value in element.attrib.items():
        attribute = etree.QName(attribute).localname.lower()
        if attribute.startswith("on") or (attribute == "attributename" and _active(value)):
            raise _fail(f"the SVG has an event handler or animates a link ({attribute})",
                        f"SVG 含事件处理属性或改写链接的动画（{attribute}）")
        if attribute == "href" and not _local_reference(value):
            raise _fail("the SVG refers to something outside itself (href)", "SVG 引用了外部资源（href）")
        texts.append(value)
    for text in texts:
        lowered = text.lower()
        if ("@import" in lowered or "image-set" in lowered or "\\" in text
                or any(not url.startswith("#") for url in _URL.findall(text))):
            raise _fail("the SVG refers to something outside itself (url, @import, image-set or a CSS escape)",
                        "SVG 引用了外部资源（url、@import、image-set 或 CSS 转义）")


def _active(attribute_name: str) -> bool:
    name = attribute_name.strip().lower().rsplit(":", 1)[-1]
    return name == "href" or name.startswith("on")


def _local_reference(href: str) -> bool:
    """A fragment of this document, or a raster picture embedded as a data: URL."""
    href = href.strip()
    return href.startswith("#") or _DATA_IMAGE.match(href) is not None


_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(mm|cm|in|pt|pc|px|)\s*$")


def _svg_dimensions(root) -> tuple[float, float] | None:
    """Size in mm from width/height (CSS units), else from the viewBox in user units."""
    given_width, given_height = (_LENGTH.match(root.get(attribute) or "") for attribute in ("width", "height"))
    if given_width and given_height:
        return (float(given_width.group(1)) * _MM_PER_UNIT[given_width.group(2)],
                float(given_height.group(1)) * _MM_PER_UNIT[given_height.group(2)])
    box = (root.get("viewBox") or "").replace(",", " ").split()
    try:
        width, height = float(box[2]), float(box[3])
    except (IndexError, ValueError):
        return None
    if not (0 < width < 1e6 and 0 < height < 1e6):
        raise _fail("the SVG viewBox is not a positive size", "SVG 的 viewBox 尺寸不是正数")
    return width * _MM_PER_UNIT["px"], height * _MM_PER_UNIT["px"]


def _ofd_size(data: bytes) -> tuple[float, float] | None:
    """Size in mm of an OFD seal picture: its first page's PhysicalBox, else the document's
    (OFD units are mm). Read with trust.archive's bounds; paths per OFD's ST_Loc rule."""
    try:
        parts = archive.read_zip(data, OFD_PICTURE_LIMITS)

        def xml(name: str | None):  # None: a location that leaves the package (archive.resolve)
            if name is None or name not in parts:
                raise _fail(f"the OFD lacks the part {str(name)[:80]!r}", f"OFD 缺少文件 {str(name)[:80]!r}")
            return archive.parse_xml(parts[name], name, OFD_PICTURE_LIMITS)

        root = xml("OFD.xml")
        if local(root.tag) != "OFD":
            raise _fail("OFD.xml has no <OFD> root", "OFD.xml 的根元素不是 <OFD>")
        body = child(root, "DocBody")
        document_loc = child_text(body, "DocRoot") if body is not None else None
        if not document_loc:
            raise _fail("the OFD has no document (DocBody/DocRoot)", "OFD 中没有文档（DocBody/DocRoot）")
        document_name = archive.resolve("OFD.xml", document_loc)
        document = xml(document_name)
        boxes = []
        pages = child(document, "Pages")
        page = child(pages, "Page") if pages is not None else None
        page_loc = page.get("BaseLoc") if page is not None else None
        if page_loc and document_name is not None:
            boxes.append(child(xml(archive.resolve(document_name, page_loc)), "Area"))
        common = child(document, "CommonData")
        boxes.append(child(common, "PageArea") if common is not None else None)
    except archive.ArchiveError as e:
        raise _fail(f"the OFD picture cannot be read: {e.en}", f"OFD 图像无法读取：{e.zh}") from None
    for area in boxes:
        numbers = (child_text(area, "PhysicalBox") or "").split() if area is not None else []
        if len(numbers) == 4:
            try:
                width, height = float(numbers[2]), float(numbers[3])
            except ValueError:
                continue
            return width, height
    return None
