"""A PNG preview of one OFD page, for the verification page (Pillow).

It draws what ofd/writer.py produces, and most of what simple producers write: page
templates, paths (M, L, Q, B, C; arcs as straight segments), text runs (with the embedded
font when Pillow can load it, else WenQuanYi Zen Hei), images (PNG, JPEG, GIF, BMP, TIFF),
and the seal pictures of signatures at their StampAnnot boxes (with Clip).

It does NOT draw: rotations, skews and flips from CTMs (only scale and offset), clipping
areas, dashes, line caps and joins, shadings, patterns and transparency, composite
objects, annotations (other than stamp appearances), vertical text, CGTransform glyph
maps (the text code is drawn, not the glyph indices), JBIG2 images, and seal pictures that
are themselves OFD packages or SVG.
"""

import io
import itertools
import math

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from ofd.package import OFDFormatError, Package
from ofd.reader import Document, Page, PathItem, apply, numbers, read_package
from ofd.signature import parse_signature_xml
from ofd.writer import CJK_FONT
from seal.ses import parse_seal, parse_signature
from trust.errors import InvalidInput

MAX_PIXELS = 4000 * 4000
CURVE_STEPS = 12


def render_page(data: bytes, index: int = 0, *, dpi: int = 96) -> bytes:
    """The page `index` (0-based) of an OFD file as PNG bytes."""
    package = Package.from_bytes(data)
    document = read_package(package)
    if not 0 <= index < len(document.pages):
        raise InvalidInput(f"the document has no page {index + 1}", f"文档没有第 {index + 1} 页")
    page = document.pages[index]
    scale = dpi / 25.4
    _, _, width_mm, height_mm = page.box
    width, height = max(1, round(width_mm * scale)), max(1, round(height_mm * scale))
    if width * height > MAX_PIXELS:
        scale *= math.sqrt(MAX_PIXELS / (width * height))
        width, height = max(1, round(width_mm * scale)), max(1, round(height_mm * scale))
    canvas = Image.new("RGB", (width, height), "white")
    painter = _Painter(package, canvas, scale)
    for path in page.paths:
        painter.path(path)
    for image in page.images:
        if image.part:
            painter.picture(package.read(image.part), image.boundary)
    for run in page.texts:
        painter.text(document, run)
    _stamps(package, document, page, painter)
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


class _Painter:
    def __init__(self, package: Package, canvas: Image.Image, scale: float):
        self.package, self.canvas, self.scale = package, canvas, scale
        self.draw = ImageDraw.Draw(canvas)
        self.fonts: dict = {}

    def px(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale, y * self.scale

    def path(self, item: PathItem) -> None:
        x0, y0 = item.boundary[0], item.boundary[1]
        for points, closed in _subpaths(item.data):
            mapped = []
            for point in points:
                x, y = apply(item.ctm, *point)
                mapped.append(self.px(x + x0, y + y0))
            if len(mapped) < 2:
                continue
            if item.fill and closed and len(mapped) > 2:
                self.draw.polygon(mapped, fill=_rgb(item.fill))
            if item.stroke:
                line = [*mapped, mapped[0]] if closed else mapped
                self.draw.line(line, fill=_rgb(item.stroke), width=max(1, round(item.line_width * self.scale)))

    def picture(self, data: bytes, box, clip=None) -> None:
        try:
            picture: Image.Image = Image.open(io.BytesIO(data))
            picture.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            return
        x, y, w, h = box
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        if size[0] * size[1] > MAX_PIXELS:
            return
        picture = picture.convert("RGBA").resize(size)
        offset = (round(x * self.scale), round(y * self.scale))
        if clip:
            cx, cy, cw, ch = (round(v * self.scale) for v in clip)
            picture = picture.crop((cx, cy, cx + cw, cy + ch))
            offset = (offset[0] + cx, offset[1] + cy)
        self.canvas.paste(picture, offset, picture)

    def font(self, document: Document, font_id: str | None, size_px: int):
        key = (font_id, size_px)
        if key not in self.fonts:
            font = document.fonts.get(font_id or "")
            loaded = None
            if font is not None and font.part:
                try:
                    loaded = ImageFont.truetype(io.BytesIO(self.package.read(font.part)), size_px)
                except OSError:
                    loaded = None
            self.fonts[key] = loaded or ImageFont.truetype(CJK_FONT, size_px)
        return self.fonts[key]

    def text(self, document: Document, run) -> None:
        size_px = max(1, round(run.size * self.scale))
        font = self.font(document, run.font_id, size_px)
        colour = _rgb(run.color or (0, 0, 0))
        x = run.x
        for i, char in enumerate(run.text):
            px, py = self.px(x, run.y)
            self.draw.text((px, py), char, font=font, fill=colour, anchor="ls")
            x += run.delta_x[i] if i < len(run.delta_x) else run.size * (1.0 if ord(char) > 0x2E80 else 0.5)


def _stamps(package: Package, document: Document, page: Page, painter: _Painter) -> None:
    for entry in document.signatures:
        if entry.part is None:
            continue
        try:
            xml = parse_signature_xml(package.read(entry.part), entry.part)
            stamps = [s for s in xml.stamp_annots if s.page_ref == page.id and s.boundary]
            if not stamps:
                continue
            picture = _seal_picture(package, entry.part, xml)
        except (InvalidInput, OFDFormatError):
            continue
        if picture is None:
            continue
        for stamp in stamps:
            painter.picture(picture, stamp.boundary, stamp.clip)


def _seal_picture(package: Package, base: str, xml) -> bytes | None:
    seal_part = package.locate(base, xml.seal_loc) if xml.seal_loc else None
    if seal_part:
        seal = parse_seal(package.read(seal_part))
    else:
        value_part = package.locate(base, xml.signed_value_loc or "")
        if value_part is None:
            return None
        try:
            seal = parse_signature(package.read(value_part)).seal
        except InvalidInput:
            return None   # a Sign signature: no seal picture
    return seal.seal_info.picture_data


def _subpaths(data: str) -> list[tuple[list[tuple[float, float]], bool]]:
    """AbbreviatedData → polylines (curves flattened), each with whether it is closed."""
    tokens = data.split()
    out: list = []
    points: list[tuple[float, float]] = []
    current = (0.0, 0.0)
    i = 0

    def take(n: int) -> list[float]:
        nonlocal i
        values = numbers(" ".join(tokens[i:i + n]), "AbbreviatedData")
        if len(values) != n:
            raise OFDFormatError("OFD: malformed AbbreviatedData", "OFD 文件：路径数据格式错误")
        i += n
        return values

    while i < len(tokens):
        op = tokens[i]
        i += 1
        if op in ("M", "S"):
            if len(points) > 1:
                out.append((points, False))
            x, y = take(2)
            current = (x, y)
            points = [current]
        elif op == "L":
            x, y = take(2)
            current = (x, y)
            points.append(current)
        elif op == "Q":
            x1, y1, x2, y2 = take(4)
            points += _bezier([current, (x1, y1), (x2, y2)])
            current = (x2, y2)
        elif op == "B":
            x1, y1, x2, y2, x3, y3 = take(6)
            points += _bezier([current, (x1, y1), (x2, y2), (x3, y3)])
            current = (x3, y3)
        elif op == "A":
            values = take(7)
            current = (values[5], values[6])
            points.append(current)
        elif op == "C":
            if len(points) > 1:
                out.append((points, True))
            points = [current]
        else:
            raise OFDFormatError(f"OFD: unknown path operator {op[:8]!r}", f"OFD 文件：未知的路径操作符 {op[:8]!r}")
    if len(points) > 1:
        out.append((points, False))
    return out


def _bezier(control: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for step in range(1, CURVE_STEPS + 1):
        t = step / CURVE_STEPS
        pts = control
        while len(pts) > 1:
            pts = [((1 - t) * a[0] + t * b[0], (1 - t) * a[1] + t * b[1]) for a, b in itertools.pairwise(pts)]
        out.append(pts[0])
    return out


def _rgb(color) -> tuple[int, int, int]:
    r, g, b = ([max(0, min(255, int(v))) for v in color[:3]] + [0, 0, 0])[:3]
    return r, g, b
