"""The layout model ofd/writer.py turns into an OFD package.

Page coordinates are millimetres from the top-left corner, y downward (GB/T 33190 §7.4).
Colours are RGB 0-255. A text run is placed by the left end of its baseline.
"""

from dataclasses import dataclass, field
from datetime import date

RGB = tuple[int, int, int]
BLACK: RGB = (0, 0, 0)


@dataclass(frozen=True)
class Text:
    x: float
    y: float                      # baseline
    text: str
    size: float = 4.0             # mm (4.2 mm ≈ 12 pt)
    font: str = "SimSun"
    color: RGB = BLACK
    char_spacing: float = 0.0     # extra mm after each character
    bold: bool = False


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    width: float = 0.25
    color: RGB = BLACK


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    width: float = 0.25
    stroke: RGB | None = BLACK
    fill: RGB | None = None


@dataclass(frozen=True)
class Path:
    """An OFD AbbreviatedData path in page millimetres ("M x y L x y C … B … Q … C")."""

    data: str
    width: float = 0.25
    stroke: RGB | None = BLACK
    fill: RGB | None = None


@dataclass(frozen=True)
class Image:
    x: float
    y: float
    w: float
    h: float
    data: bytes
    format: str = "PNG"           # PNG, JPEG, BMP, GIF, TIFF


@dataclass(frozen=True)
class Table:
    """A grid of cells, written as positioned text runs and ruling lines."""

    x: float
    y: float
    col_widths: tuple[float, ...]
    row_height: float
    rows: tuple[tuple[str, ...], ...]
    size: float = 3.5
    font: str = "SimSun"
    padding: float = 1.5
    ruled: bool = True

    def items(self) -> list:
        out: list = []
        bottom = self.y + self.row_height * len(self.rows)
        right = self.x + sum(self.col_widths)
        for r, row in enumerate(self.rows):
            top = self.y + r * self.row_height
            left = self.x
            for width, cell in zip(self.col_widths, row, strict=False):
                if cell:
                    baseline = top + (self.row_height + self.size * 0.8) / 2
                    out.append(Text(left + self.padding, baseline, cell, self.size, self.font))
                left += width
        if self.ruled:
            for r in range(len(self.rows) + 1):
                out.append(Line(self.x, self.y + r * self.row_height, right, self.y + r * self.row_height))
            left = self.x
            for width in (0.0, *self.col_widths):
                left += width
                out.append(Line(left, self.y, left, bottom))
        return out


@dataclass(frozen=True)
class Page:
    items: tuple = ()
    width: float = 210.0
    height: float = 297.0


@dataclass(frozen=True)
class DocInfo:
    title: str | None = None
    author: str | None = None
    subject: str | None = None
    abstract: str | None = None
    creation_date: date | None = None
    keywords: tuple[str, ...] = ()
    creator: str = "UIA eLicence"
    creator_version: str | None = None
    custom_datas: tuple[tuple[str, str], ...] = ()    # (Name, value), in order
    doc_id: str | None = None                        # 32 hex characters; random if None


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    format: str | None = None


@dataclass(frozen=True)
class CustomTag:
    namespace: str
    data: bytes                   # an XML document
    file_name: str | None = None  # under Doc_0/Tags/; Tag_<n>.xml if None
    type_id: str | None = None    # CustomTag@TypeID, which some viewers read instead of NameSpace


@dataclass(frozen=True)
class Document:
    pages: tuple[Page, ...]
    info: DocInfo = field(default_factory=DocInfo)
    attachments: tuple[Attachment, ...] = ()
    custom_tags: tuple[CustomTag, ...] = ()
    embed_fonts: bool = True      # embed a subset of a CJK font; False: reference the font name only
