"""The layout model (ofd/layout.py) written as PDF: the second writer of one layout, so a
licence's PDF shows the same fields at the same places as its OFD (ofd/writer.py).

Drawn with reportlab and the same CJK font the OFD embeds (a subset goes into the PDF),
glyphs advancing by the font's own widths as in the OFD. Coordinates are converted from
millimetres, y downward from the top, to points, y upward. The document information holds
the title, author and keywords, and every GB/T 36903 item by its Chinese name (a PDF name
may carry any bytes, #-escaped); the XMP packet carries the same items in the licence
metadata namespace, for readers that look there. Signing comes later (PAdES), over these
bytes.
"""

import io
import re
from datetime import UTC, date, datetime, time
from xml.sax.saxutils import escape

from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdf_canvas

from ofd import layout
from ofd.writer import CJK_FONT
from trust.errors import InvalidInput

PT_PER_MM = 72 / 25.4
FONT_NAME = "TrustCJK"
XMP_NAMESPACE = "urn:gbt36903:elicence:metadata"  # as licence.metadata.NAMESPACE: the same items
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def write_pdf(document: layout.Document, *, font_file: str = CJK_FONT) -> bytes:
    """The PDF for ``document``; the same document gives the same bytes (no clock, no random ID)."""
    if not document.pages:
        raise InvalidInput("a PDF document needs at least one page", "PDF 文档至少需要一页")
    _register_font(font_file)
    out = io.BytesIO()
    first = document.pages[0]
    canvas = pdf_canvas.Canvas(out, pagesize=(first.width * PT_PER_MM, first.height * PT_PER_MM), invariant=1,
                               pageCompression=1, initialFontName=FONT_NAME)
    _document_information(canvas, document)
    for page in document.pages:
        canvas.setPageSize((page.width * PT_PER_MM, page.height * PT_PER_MM))
        for item in page.items:
            for part in item.items() if isinstance(item, layout.Table) else (item,):
                _draw(canvas, part, page.height)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def points_box(page: layout.Page, x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
    """A box of the layout (millimetres from the page's top left) as PDF user space
    coordinates (points from the bottom left): x1, y1, x2, y2."""
    return (x * PT_PER_MM, (page.height - y - h) * PT_PER_MM, (x + w) * PT_PER_MM, (page.height - y) * PT_PER_MM)


def _register_font(font_file: str) -> None:
    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT_NAME, font_file, subfontIndex=0))


def _draw(canvas, item, page_height: float) -> None:
    def y(value: float) -> float:
        return (page_height - value) * PT_PER_MM

    if isinstance(item, layout.Text):
        text = canvas.beginText(item.x * PT_PER_MM, y(item.y))
        text.setFont(FONT_NAME, item.size * PT_PER_MM)
        text.setCharSpace(item.char_spacing * PT_PER_MM)
        canvas.setFillColorRGB(*_rgb(item.color))
        if item.bold:  # the OFD says Weight="700" of a font with one weight: fill and stroke the outline
            canvas.setStrokeColorRGB(*_rgb(item.color))
            canvas.setLineWidth(item.size * PT_PER_MM * 0.03)
            text.setTextRenderMode(2)
        text.textOut(item.text)
        canvas.drawText(text)
    elif isinstance(item, layout.Line):
        canvas.setStrokeColorRGB(*_rgb(item.color))
        canvas.setLineWidth(item.width * PT_PER_MM)
        canvas.line(item.x1 * PT_PER_MM, y(item.y1), item.x2 * PT_PER_MM, y(item.y2))
    elif isinstance(item, layout.Rect):
        _colours(canvas, item.stroke, item.fill, item.width)
        canvas.rect(item.x * PT_PER_MM, y(item.y + item.h), item.w * PT_PER_MM, item.h * PT_PER_MM,
                    stroke=item.stroke is not None, fill=item.fill is not None)
    elif isinstance(item, layout.Path):
        _colours(canvas, item.stroke, item.fill, item.width)
        canvas.drawPath(_path(canvas, item.data, y), stroke=item.stroke is not None, fill=item.fill is not None)
    elif isinstance(item, layout.Image):
        canvas.drawImage(ImageReader(io.BytesIO(item.data)), item.x * PT_PER_MM, y(item.y + item.h),
                         item.w * PT_PER_MM, item.h * PT_PER_MM, mask="auto")
    else:
        raise InvalidInput(f"the PDF writer cannot draw a {type(item).__name__}",
                           f"PDF 写出器不能绘制 {type(item).__name__}")


def _rgb(color) -> tuple[float, float, float]:
    return tuple(component / 255 for component in color)


def _colours(canvas, stroke, fill, width: float) -> None:
    if stroke is not None:
        canvas.setStrokeColorRGB(*_rgb(stroke))
        canvas.setLineWidth(width * PT_PER_MM)
    if fill is not None:
        canvas.setFillColorRGB(*_rgb(fill))


def _path(canvas, data: str, y):
    """OFD AbbreviatedData (GB/T 33190 §9.3.5): S/M move, L line, Q quadratic and B cubic
    Bézier, A arc (drawn as a straight line to its end point, as ofd/render.py does), C close."""
    path = canvas.beginPath()
    tokens = re.findall(rf"[SMLQBAC]|{_NUMBER}", data)
    current = (0.0, 0.0)
    i = 0

    def numbers(count: int) -> list[float]:
        nonlocal i
        values = tokens[i:i + count]
        if len(values) != count or any(v.isalpha() for v in values):
            raise InvalidInput(f"a malformed path: {data[:60]!r}", f"路径数据格式错误：{data[:60]!r}")
        i += count
        return [float(v) for v in values]

    while i < len(tokens):
        op = tokens[i]
        i += 1
        if op in "SM":
            cx, cy = numbers(2)
            current = (cx, cy)
            path.moveTo(current[0] * PT_PER_MM, y(current[1]))
        elif op == "L":
            cx, cy = numbers(2)
            current = (cx, cy)
            path.lineTo(current[0] * PT_PER_MM, y(current[1]))
        elif op == "Q":
            qx, qy, x, y2 = numbers(4)
            (x0, y0) = current  # a quadratic is the cubic with control points two thirds of the way
            c1 = (x0 + 2 / 3 * (qx - x0), y0 + 2 / 3 * (qy - y0))
            c2 = (x + 2 / 3 * (qx - x), y2 + 2 / 3 * (qy - y2))
            path.curveTo(c1[0] * PT_PER_MM, y(c1[1]), c2[0] * PT_PER_MM, y(c2[1]), x * PT_PER_MM, y(y2))
            current = (x, y2)
        elif op == "B":
            x1, y1, x2, y2, x3, y3 = numbers(6)
            path.curveTo(x1 * PT_PER_MM, y(y1), x2 * PT_PER_MM, y(y2), x3 * PT_PER_MM, y(y3))
            current = (x3, y3)
        elif op == "A":
            *_arc, x, y2 = numbers(7)
            path.lineTo(x * PT_PER_MM, y(y2))
            current = (x, y2)
        elif op == "C":
            path.close()
        else:
            raise InvalidInput(f"a malformed path: {data[:60]!r}", f"路径数据格式错误：{data[:60]!r}")
    return path


# ---------------------------------------------------------------- document information and XMP

class _Info(pdfdoc.PDFInfo):
    """reportlab's document information with extra entries (the GB/T 36903 items)."""

    def __init__(self, extra: dict[str, str], created: datetime | None):
        super().__init__()
        self.extra, self.created = extra, created

    def format(self, document):
        entries = {"Title": self.title, "Author": self.author, "Subject": self.subject, "Keywords": self.keywords,
                   "Creator": self.creator, "Producer": self.producer, **self.extra}
        values = {name: pdfdoc.PDFString(value) for name, value in entries.items() if value}
        if self.created is not None:
            stamp = pdfdoc.PDFString(self.created.strftime("D:%Y%m%d%H%M%SZ"))
            values["CreationDate"] = values["ModDate"] = stamp
        # written here: reportlab escapes a non-ASCII name by code point, a PDF name wants its UTF-8 bytes
        return b"<<\n" + b"\n".join(_name(k) + b" " + v.format(document) for k, v in values.items()) + b"\n>>"


def _name(key: str) -> bytes:
    """``key`` as a PDF name (ISO 32000-1 §7.3.5): regular ASCII characters as they are, every
    other byte of its UTF-8 form as #XX."""
    return b"/" + b"".join(bytes([b]) if 0x21 <= b <= 0x7E and chr(b) not in "#()<>[]{}/%" else f"#{b:02X}".encode()
                           for b in key.encode("utf-8"))


def _document_information(canvas, document: layout.Document) -> None:
    info = document.info
    created = datetime.combine(info.creation_date, time(0), tzinfo=UTC) \
        if isinstance(info.creation_date, date) else None
    extra = {name: value for name, value in info.custom_datas}
    details = _Info(extra, created)
    details.title, details.author = info.title or "", info.author or ""
    details.subject, details.keywords = info.subject or "", ", ".join(info.keywords)
    details.creator = " ".join(filter(None, (info.creator, info.creator_version)))
    details.producer = "trust-service (reportlab)"
    canvas._doc.info = details  # reportlab has no public way to add entries (pyproject bounds reportlab)
    canvas.setCatalogEntry("Metadata", pdfdoc.XMP(creator=lambda _doc: _xmp(info).encode("utf-8")))


def _xmp(info: layout.DocInfo) -> str:
    items = "".join(f'     <rdf:li rdf:parseType="Resource"><elic:name>{escape(name)}</elic:name>'
                    f'<elic:value>{escape(value)}</elic:value></rdf:li>\n' for name, value in info.custom_datas)
    return f'''<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:elic="{XMP_NAMESPACE}">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(info.title or "")}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{escape(info.author or "")}</rdf:li></rdf:Seq></dc:creator>
   <pdf:Keywords>{escape(", ".join(info.keywords))}</pdf:Keywords>
   <elic:items><rdf:Seq>
{items}   </rdf:Seq></elic:items>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>'''
