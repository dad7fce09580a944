"""Layout model (ofd/layout.py) → OFD package bytes (GB/T 33190, spec ofd-signature.md §1-§2, §7).

CJK text: by default a subset of a CJK TrueType font (WenQuanYi Zen Hei from Debian's
fonts-wqy-zenhei) is embedded, holding only the glyphs used, so the appearance is fixed
and covered by the signature's References; with `embed_fonts=False` only the font name
is written and viewers substitute. Glyph advances come from the font's metrics.
"""

import functools
import itertools
import os
import unicodedata
import uuid
from datetime import date

from lxml import etree

from ofd import layout, truetype
from ofd.package import NS, write_package
from trust.errors import InvalidInput

CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
_MEDIA_EXT = {"PNG": "png", "JPEG": "jpg", "JPG": "jpg", "BMP": "bmp", "GIF": "gif", "TIFF": "tif", "TIF": "tif"}


def _e(parent, tag: str, text: str | None = None, **attributes):
    element = etree.SubElement(parent, f"{{{NS}}}{tag}", {k: v for k, v in attributes.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def _root(tag: str, **attributes):
    return etree.Element(f"{{{NS}}}{tag}", {k: v for k, v in attributes.items() if v is not None}, nsmap={"ofd": NS})


def _xml(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _n(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _ns(*values: float) -> str:
    return " ".join(_n(v) for v in values)


def _rgb(color) -> str:
    return " ".join(str(int(c)) for c in color)


class _ParsedFont:
    """A font file read once per process (fontNumber 0 of a collection), from which each
    document's subset is cut (ofd/truetype.py)."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            self.font = truetype.TrueTypeFont(f.read())
        self.name = self.font.name

    def advances(self, chars: set[str]) -> dict[str, float]:
        found = {c: self.font.advance(ord(c)) for c in chars}
        return {c: advance for c, advance in found.items() if advance is not None}

    def subset(self, chars: set[str]) -> bytes:
        """A TrueType font with only the glyphs of ``chars``."""
        return self.font.subset(chars)


def _parsed_font(path: str) -> _ParsedFont:
    """The process's parse of ``path``; a font file replaced on disk is parsed again."""
    return _parsed_font_at(os.path.realpath(path), os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _parsed_font_at(path: str, mtime_ns: int) -> _ParsedFont:
    return _ParsedFont(path)


class _Font:
    """One font resource: its name, optional embedded subset, and glyph advances in em."""

    def __init__(self, name: str, chars: set[str], embed: bool, font_file: str):
        self.name = name
        self.file: bytes | None = None
        self._advances: dict[str, float] = {}
        if not embed:
            return
        parsed = _parsed_font(font_file)
        self.name = parsed.name or name
        self._advances = parsed.advances(chars)
        self.file = parsed.subset(chars)

    def advance(self, char: str) -> float:
        return self._advances[char] if char in self._advances else _fallback_advance(char)


def _fallback_advance(char: str) -> float:
    """An em for a wide character, half for the others: for a font we do not embed."""
    return 1.0 if unicodedata.east_asian_width(char) in ("W", "F") else 0.5


def text_width(text: str, size: float, *, font_file: str = CJK_FONT) -> float:
    """The width in mm of ``text`` at ``size`` as ``write_ofd`` places it with the embedded
    font, so that a layout can wrap or shrink text before it is written."""
    advances = _parsed_font(font_file).advances(set(text))
    return sum(advances.get(c) or _fallback_advance(c) for c in text) * size


def _items(page: layout.Page) -> list:
    out = []
    for item in page.items:
        out.extend(item.items() if isinstance(item, layout.Table) else [item])
    return out


def write_ofd(document: layout.Document, *, font_file: str = CJK_FONT) -> bytes:
    """The OFD package for `document` (deterministic for a given DocID)."""
    if not document.pages:
        raise InvalidInput("an OFD document needs at least one page", "OFD 文档至少需要一页")
    ids = itertools.count(1)
    pages_items = [_items(page) for page in document.pages]
    parts: dict[str, bytes] = {}

    chars: dict[str, set[str]] = {}
    for item in itertools.chain.from_iterable(pages_items):
        if isinstance(item, layout.Text):
            chars.setdefault(item.font, set()).update(item.text)
    fonts: dict[str, tuple[str, _Font]] = {}
    for name in chars:
        fonts[name] = (str(next(ids)), _Font(name, chars[name], document.embed_fonts, font_file))

    media: list[tuple[str, str, str, bytes]] = []   # id, format, file name, data
    image_ids: dict[int, str] = {}
    for item in itertools.chain.from_iterable(pages_items):
        if isinstance(item, layout.Image):
            fmt = item.format.upper()
            if fmt not in _MEDIA_EXT:
                raise InvalidInput(f"unsupported image format {item.format!r}", f"不支持的图像格式 {item.format!r}")
            media_id = str(next(ids))
            image_ids[id(item)] = media_id
            media.append((media_id, fmt, f"image_{media_id}.{_MEDIA_EXT[fmt]}", item.data))

    page_parts = []
    for index, (page, items) in enumerate(zip(document.pages, pages_items, strict=True)):
        page_id = str(next(ids))
        content = _root("Page")
        area = _e(content, "Area")
        _e(area, "PhysicalBox", _ns(0, 0, page.width, page.height))
        layer = _e(_e(content, "Content"), "Layer", ID=str(next(ids)), Type="Body")
        for item in items:
            _object(layer, item, next(ids), fonts, image_ids, page)
        name = f"Doc_0/Pages/Page_{index}/Content.xml"
        parts[name] = _xml(content)
        page_parts.append((page_id, f"Pages/Page_{index}/Content.xml"))
    max_unit_id = next(ids) - 1

    # OFD.xml
    info = document.info
    ofd_root = _root("OFD", Version="1.0", DocType="OFD")
    body = _e(ofd_root, "DocBody")
    doc_info = _e(body, "DocInfo")
    _e(doc_info, "DocID", info.doc_id or uuid.uuid4().hex)
    for tag, value in (("Title", info.title), ("Author", info.author), ("Subject", info.subject),
                       ("Abstract", info.abstract)):
        if value:
            _e(doc_info, tag, value)
    _e(doc_info, "CreationDate", (info.creation_date or date.today()).isoformat())
    if info.keywords:
        keywords = _e(doc_info, "Keywords")
        for keyword in info.keywords:
            _e(keywords, "Keyword", keyword)
    _e(doc_info, "Creator", info.creator)
    if info.creator_version:
        _e(doc_info, "CreatorVersion", info.creator_version)
    if info.custom_datas:
        custom = _e(doc_info, "CustomDatas")
        for name, value in info.custom_datas:
            _e(custom, "CustomData", value, Name=name)
    _e(body, "DocRoot", "Doc_0/Document.xml")

    # Document.xml
    doc = _root("Document")
    common = _e(doc, "CommonData")
    _e(common, "MaxUnitID", str(max_unit_id))
    area = _e(common, "PageArea")
    first = document.pages[0]
    _e(area, "PhysicalBox", _ns(0, 0, first.width, first.height))
    _e(common, "PublicRes", "PublicRes.xml")
    if media:
        _e(common, "DocumentRes", "DocumentRes.xml")
    pages = _e(doc, "Pages")
    for page_id, loc in page_parts:
        _e(pages, "Page", ID=page_id, BaseLoc=loc)
    tag_parts = {}
    if document.custom_tags:
        _e(doc, "CustomTags", "Tags/CustomTags.xml")
        tags = _root("CustomTags")
        for i, custom in enumerate(document.custom_tags):
            name = custom.file_name or f"Tag_{i}.xml"
            if f"Doc_0/Tags/{name}" in tag_parts or name == "CustomTags.xml" or "/" in name:
                raise InvalidInput(f"custom custom file name {name!r} is taken or not a plain name",
                                   f"自定义标引文件名 {name!r} 重复或不是单纯的文件名")
            _e(_e(tags, "CustomTag", NameSpace=custom.namespace, TypeID=custom.type_id), "FileLoc", name)
            tag_parts[f"Doc_0/Tags/{name}"] = custom.data
        tag_parts["Doc_0/Tags/CustomTags.xml"] = _xml(tags)
    attach_parts = {}
    if document.attachments:
        _e(doc, "Attachments", "Attachs/Attachments.xml")
        attachments = _root("Attachments")
        for i, attachment in enumerate(document.attachments):
            file_name = f"attach_{i}" + (f".{attachment.format.lower()}" if attachment.format else "")
            element = _e(attachments, "Attachment", ID=f"a{i}", Name=attachment.name, Format=attachment.format,
                         Size=_n(len(attachment.data) / 1024))
            _e(element, "FileLoc", file_name)
            attach_parts[f"Doc_0/Attachs/{file_name}"] = attachment.data
        attach_parts["Doc_0/Attachs/Attachments.xml"] = _xml(attachments)

    public = _root("Res", BaseLoc="Res")
    font_list = _e(public, "Fonts")
    font_files = {}
    for _model_name, (font_id, font) in fonts.items():
        element = _e(font_list, "Font", ID=font_id, FontName=font.name, FamilyName=font.name)
        if font.file is not None:
            _e(element, "FontFile", f"font_{font_id}.ttf")
            font_files[f"Doc_0/Res/font_{font_id}.ttf"] = font.file

    ordered = {"OFD.xml": _xml(ofd_root), "Doc_0/Document.xml": _xml(doc), "Doc_0/PublicRes.xml": _xml(public)}
    if media:
        document_res = _root("Res", BaseLoc="Res")
        multimedias = _e(document_res, "MultiMedias")
        for media_id, fmt, file_name, _ in media:
            _e(_e(multimedias, "MultiMedia", ID=media_id, Type="Image", Format=fmt), "MediaFile", file_name)
        ordered["Doc_0/DocumentRes.xml"] = _xml(document_res)
    ordered.update(font_files)
    ordered.update({f"Doc_0/Res/{file_name}": data for _, _, file_name, data in media})
    ordered.update(parts)
    ordered.update(tag_parts)
    ordered.update(attach_parts)
    return write_package(ordered)


def _object(layer, item, unit_id: int, fonts: dict, image_ids: dict, page: layout.Page) -> None:
    uid = str(unit_id)
    if isinstance(item, layout.Text):
        font_id, font = fonts[item.font]
        advances = [font.advance(c) * item.size + item.char_spacing for c in item.text]
        width = max(sum(advances), item.size)
        text = _e(layer, "TextObject", ID=uid, Boundary=_ns(item.x, item.y - item.size, width, item.size * 1.25),
                  Font=font_id, Size=_n(item.size), Weight="700" if item.bold else None)
        if tuple(item.color) != layout.BLACK:
            _e(text, "FillColor", Value=_rgb(item.color))
        _e(text, "TextCode", item.text, X="0", Y=_n(item.size),
           DeltaX=_ns(*advances[:-1]) if len(advances) > 1 else None)
    elif isinstance(item, layout.Line):
        pad = item.width
        x0, y0 = min(item.x1, item.x2) - pad, min(item.y1, item.y2) - pad
        w, h = abs(item.x2 - item.x1) + 2 * pad, abs(item.y2 - item.y1) + 2 * pad
        path = _e(layer, "PathObject", ID=uid, Boundary=_ns(x0, y0, w, h), LineWidth=_n(item.width))
        _e(path, "StrokeColor", Value=_rgb(item.color))
        _e(path, "AbbreviatedData", f"M {_ns(item.x1 - x0, item.y1 - y0)} L {_ns(item.x2 - x0, item.y2 - y0)}")
    elif isinstance(item, layout.Rect):
        path = _e(layer, "PathObject", ID=uid, Boundary=_ns(item.x, item.y, item.w, item.h), LineWidth=_n(item.width),
                  Stroke="true" if item.stroke else "false", Fill="true" if item.fill else "false")
        if item.stroke:
            _e(path, "StrokeColor", Value=_rgb(item.stroke))
        if item.fill:
            _e(path, "FillColor", Value=_rgb(item.fill))
        _e(path, "AbbreviatedData", f"M 0 0 L {_n(item.w)} 0 L {_ns(item.w, item.h)} L 0 {_n(item.h)} C")
    elif isinstance(item, layout.Path):
        path = _e(layer, "PathObject", ID=uid, Boundary=_ns(0, 0, page.width, page.height), LineWidth=_n(item.width),
                  Stroke="true" if item.stroke else "false", Fill="true" if item.fill else "false")
        if item.stroke:
            _e(path, "StrokeColor", Value=_rgb(item.stroke))
        if item.fill:
            _e(path, "FillColor", Value=_rgb(item.fill))
        _e(path, "AbbreviatedData", item.data)
    elif isinstance(item, layout.Image):
        _e(layer, "ImageObject", ID=uid, Boundary=_ns(item.x, item.y, item.w, item.h),
           CTM=_ns(item.w, 0, 0, item.h, 0, 0), ResourceID=image_ids[id(item)])
    else:
        raise InvalidInput(f"unknown layout item {type(item).__name__}", f"未知的版面元素 {type(item).__name__}")
