"""A licence's face laid out from its type's template into the layout model (ofd/layout.py).

The one layout model serves every writer: ofd.writer writes it as OFD, and a PDF writer
draws the same items at the same places. Text is measured with the font the writer embeds
(ofd.writer.text_width), so a value either fits its box as the template allows (one line,
shrunk, or wrapped within the box's height) or the licence is refused naming the field:
never a clipped licence.
"""

import io
import re
from dataclasses import dataclass
from typing import Any, cast

import segno
from segno.consts import ERROR_LEVEL_M
from segno.encoder import find_version, prepare_data

from licence.catalogue import Box, LicenceType, Overflow
from licence.metadata import FILE_NAME, NAMESPACE, LicenceMetadata
from ofd import layout
from ofd.writer import text_width
from trust.errors import InvalidInput
from trust.hashes import sm3

LINE_HEIGHT = 1.45               # baseline to baseline, in sizes
SHRINK_STEP = 0.1                # mm
BORDER = (176, 130, 60)          # the ochre frame of a licence face
_NO_LINE_START = set("，。、；：？！）》」』】,.;:?!)")
_SEGMENTS = re.compile(r"[0-9A-Z $%*+\-./:]+|[^0-9A-Z $%*+\-./:]+")


class LayoutError(InvalidInput):
    """A value that does not fit its box as the template allows."""

    code = "licence_layout"


@dataclass(frozen=True)
class Face:
    """What the face shows: each box's printed text comes from ``printed`` (by field key)."""

    licence_type: LicenceType
    printed: dict[str, str]
    qr_text: str | None = None


class _Measure:
    """Widths of one text's characters, measured once with the embedded font."""

    def __init__(self, text: str):
        self.em = {c: text_width(c, 1.0) for c in set(text)}

    def width(self, text: str, size: float) -> float:
        return sum(self.em[c] for c in text) * size

    def set_width(self, line: str, size: float) -> float:
        """The width a line takes in its box: closing punctuation may hang past the edge."""
        return self.width(line.rstrip("".join(_NO_LINE_START)) or line, size)


def _wrap(text: str, size: float, width: float, measure: _Measure) -> list[str]:
    """Greedy line breaking by character (Chinese has no spaces), keeping closing
    punctuation off the start of a line, and honouring the line breaks in the text."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, used = "", 0.0
        for char in paragraph:
            advance = measure.em[char] * size
            if line and used + advance > width + 0.01 and char not in _NO_LINE_START:
                lines.append(line)
                line, used = char, advance
            else:
                line, used = line + char, used + advance
        lines.append(line)
    return lines


def _sizes(box: Box):
    size = box.size
    smallest = box.min_size if box.overflow in (Overflow.SHRINK, Overflow.WRAP_SHRINK) and box.min_size else box.size
    while size >= smallest - 1e-9:
        yield round(size, 2)
        size -= SHRINK_STEP


def fit(box: Box, text: str, what: tuple[str, str]) -> tuple[float, list[str]]:
    """The size and lines ``text`` takes in ``box``; LayoutError naming ``what`` (en, zh) if none."""
    width = box.w - box.label_w
    wraps = box.overflow in (Overflow.WRAP, Overflow.WRAP_SHRINK)
    measure = _Measure(text)
    for size in _sizes(box):
        if wraps:
            lines = _wrap(text, size, width, measure)
            if size + (len(lines) - 1) * size * LINE_HEIGHT <= box.h and \
                    all(measure.set_width(line, size) <= width + 0.01 for line in lines):
                return size, lines
        elif measure.set_width(text, size) <= width + 0.01:
            return size, [text]
    en, zh = what
    raise LayoutError(f"{en} does not fit its place on the face ({len(text)} characters in {width:g} mm"
                      f"{'' if wraps else ', one line'}); shorten it", f"“{zh}”超出证照版面上的位置（{len(text)} 字，"
                      f"宽 {width:g} 毫米{'' if wraps else '，仅一行'}），请精简")


def _box_text(box: Box, face: Face) -> tuple[str, tuple[str, str]]:
    if box.text is not None:
        return box.text, (box.text, box.text)
    if box.field is not None:
        field = face.licence_type.field(box.field)
        return face.printed.get(box.field, ""), (f"'{field.key}' ({field.label_en})", field.label)
    pattern = box.format or ""  # the catalogue gives every box a field, a text or a format
    return pattern.format(**face.printed), (box.label or pattern, box.label or pattern)


def _box_items(box: Box, face: Face) -> list:
    text, what = _box_text(box, face)
    items: list = []
    if box.label:
        label_size = min(box.size, (box.label_w - 1.5) / max(text_width(box.label, 1.0), 0.01))
        items.append(layout.Text(box.x, box.y, box.label, round(label_size, 2)))
    if not text:
        return items
    size, lines = fit(box, text, what)
    left = box.x + box.label_w
    for index, line in enumerate(lines):
        x = left + (box.w - box.label_w - text_width(line, size)) / 2 if box.align == "center" else left
        items.append(layout.Text(x, box.y + index * size * LINE_HEIGHT, line, size, bold=box.bold))
    return items


def qr_code(text: str) -> segno.QRCode:
    """The QR code of ``text`` at error correction M, in segments: the QR alphanumeric
    characters in alphanumeric mode, the rest (a URL's ``#``, lower case) as bytes."""
    # segno's encoder takes a list of (content, mode) segments; its type hints name one value
    return segno.make(cast(Any, _segments(text)), error="m", micro=False)


def qr_version(text: str) -> int:
    """The version ``qr_code(text)`` takes, found without drawing it (fifty times faster)."""
    return find_version(prepare_data(_segments(text), None, None), ERROR_LEVEL_M, eci=False, micro=False)


def _segments(text: str) -> list[tuple[str, None]]:
    return [(m.group(0), None) for m in _SEGMENTS.finditer(text)]


def _qr(text: str, x: float, y: float, side: float) -> layout.Image:
    out = io.BytesIO()
    qr_code(text).save(out, kind="png", scale=4, border=0)
    return layout.Image(x, y, side, side, out.getvalue(), "PNG")


def page(face: Face) -> layout.Page:
    template = face.licence_type.template
    items: list = []
    if template.border:
        items += [layout.Rect(6, 6, template.width - 12, template.height - 12, width=1.2, stroke=BORDER),
                  layout.Rect(8.5, 8.5, template.width - 17, template.height - 17, width=0.35, stroke=BORDER)]
    for box in template.boxes:
        items += _box_items(box, face)
    if template.qr and face.qr_text:
        items.append(_qr(face.qr_text, *template.qr))
    return layout.Page(items=tuple(items), width=template.width, height=template.height)


def document(face: Face, meta: LicenceMetadata) -> layout.Document:
    """The licence as a one-page document carrying its GB/T 36903 metadata twice (spec §4):
    as DocInfo/CustomDatas and as a CustomTag; the DocID is derived from the identifier,
    so the same licence lays out to the same bytes."""
    info = layout.DocInfo(title=meta.type_name, author=meta.issuer_name,
                          creation_date=meta.issue_date, custom_datas=tuple(meta.items()),
                          doc_id=sm3(meta.licence_id.encode()).hex()[:32], keywords=(meta.type_name, meta.licence_id))
    return layout.Document(pages=(page(face),), info=info,
                           custom_tags=(layout.CustomTag(NAMESPACE, meta.to_xml(), file_name=FILE_NAME,
                                                         type_id="LicenceMeta"),))
