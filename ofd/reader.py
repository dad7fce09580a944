"""Read an OFD document from any producer (GB/T 33190 §7-§11).

Tolerant where producers differ (namespaces or none, element order, relative paths that
are really root paths, path case, missing optional parts, template pages), strict where
safety needs it (package.py). The result is a plain model: pages with their text runs,
images and paths in page millimetres, the resources, metadata, attachments, custom tags
and the list of signatures, plus `links` (which part points at which) for scope checks.
"""

import math
import posixpath
from dataclasses import dataclass, field
from typing import overload

from ofd.package import OFDFormatError, Package
from trust.archive import child, child_text, children, local, resolve

Box = tuple[float, float, float, float]
Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
MAX_BLOCK_DEPTH = 32


@dataclass(frozen=True)
class Font:
    id: str
    name: str
    family: str | None
    part: str | None          # embedded font file, if any


@dataclass(frozen=True)
class Media:
    id: str
    type: str
    format: str | None
    part: str | None


@dataclass(frozen=True)
class TextRun:
    text: str
    x: float                  # page mm, first glyph's origin on the baseline
    y: float
    size: float               # mm
    font_id: str | None
    font: str | None          # FontName
    color: tuple[int, ...] | None
    delta_x: tuple[float, ...] = ()


@dataclass(frozen=True)
class ImageItem:
    resource_id: str
    boundary: Box
    part: str | None
    format: str | None


@dataclass(frozen=True)
class PathItem:
    boundary: Box
    data: str                 # AbbreviatedData, in the boundary's coordinates
    ctm: Matrix
    line_width: float
    stroke: tuple[int, ...] | None
    fill: tuple[int, ...] | None


@dataclass(frozen=True)
class Page:
    id: str
    index: int
    part: str | None
    box: Box
    texts: tuple[TextRun, ...]
    images: tuple[ImageItem, ...]
    paths: tuple[PathItem, ...]


@dataclass(frozen=True)
class Attachment:
    id: str
    name: str
    format: str | None
    part: str | None


@dataclass(frozen=True)
class CustomTag:
    namespace: str | None
    part: str | None


@dataclass(frozen=True)
class SignatureEntry:
    id: str
    type: str                 # "Seal" (the default) or "Sign"
    base_loc: str
    part: str | None          # the Signature.xml entry, None if missing
    relative: str | None = None


@dataclass(frozen=True)
class Document:
    version: str | None
    doc_type: str | None
    doc_root: str
    info: dict                # DocInfo fields by element name; "CustomDatas" → {Name: value}
    pages: tuple[Page, ...]
    fonts: dict
    media: dict
    attachments: tuple[Attachment, ...]
    custom_tags: tuple[CustomTag, ...]
    signatures_loc: str | None     # as declared in OFD.xml
    signatures_part: str | None    # the Signatures.xml entry, None if declared but missing
    signatures: tuple[SignatureEntry, ...]
    links: dict = field(default_factory=dict)      # part → set of parts it points at
    content: frozenset = frozenset()               # parts that draw the pages: pages, templates, resources
    missing: tuple[str, ...] = ()                  # locations pointed at but absent


def numbers(text: str | None, what: str = "number array", limit: int = 4096) -> list[float]:
    """ST_Array with the "g n v" repeat shorthand of TextCode@DeltaX, at most `limit`
    values (a repeat count cannot make a small attribute allocate without bound)."""
    if not text:
        return []
    tokens = text.split()
    out: list[float] = []
    i = 0
    try:
        while i < len(tokens) and len(out) < limit:
            if tokens[i] == "g":
                count = int(tokens[i + 1])
                if count < 0:
                    raise ValueError("negative repeat count")
                out.extend([float(tokens[i + 2])] * min(count, limit - len(out)))
                i += 3
            else:
                out.append(float(tokens[i]))
                i += 1
    except (ValueError, IndexError):
        raise OFDFormatError(f"OFD: malformed {what} {text[:80]!r}", f"OFD 文件：{what} 格式错误 {text[:80]!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise OFDFormatError(f"OFD: non-finite value in {what}", f"OFD 文件：{what} 含非有限数值")
    return out


@overload
def box(text: str | None, default: Box) -> Box: ...


@overload
def box(text: str | None, default: None = None) -> Box | None: ...


def box(text: str | None, default: Box | None = None) -> Box | None:
    values = numbers(text, "box")
    if len(values) < 4:
        return default
    return values[0], values[1], values[2], values[3]


def matrix(text: str | None) -> Matrix:
    v = numbers(text, "CTM")
    return (v[0], v[1], v[2], v[3], v[4], v[5]) if len(v) >= 6 else IDENTITY


def apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f


def colour(element) -> tuple[int, ...] | None:
    """A colour's components; "#hh" hex tokens are accepted, anything unreadable is None
    (colour is cosmetic, a reader must not fail on it)."""
    if element is None or not element.get("Value"):
        return None
    try:
        values = [int(t[1:], 16) if t.startswith("#") else int(float(t)) for t in element.get("Value").split()[:4]]
    except (ValueError, OverflowError):
        return None
    return tuple(values) or None


class _Reader:
    def __init__(self, package: Package, *, objects: bool = True, contents: bool = True):
        self.package = package
        self.read_objects = objects and contents
        self.read_contents = contents
        self.links: dict[str, set[str]] = {}
        self.missing: list[str] = []
        self.fonts: dict[str, Font] = {}
        self.media: dict[str, Media] = {}
        self.draw_params: dict[str, tuple] = {}
        self.content: set[str] = set()

    def link(self, base: str, loc: str | None) -> str | None:
        """Resolve a location found in part `base`, record the link, return the part."""
        if not loc or not loc.strip():
            return None
        target = self.package.locate(base, loc)
        if target is None:
            self.missing.append(loc.strip())
        else:
            self.links.setdefault(base, set()).add(target)
        return target

    def read(self) -> Document:
        if "OFD.xml" not in self.package:
            located = self.package.locate("", "OFD.xml")
            if located is None:
                raise OFDFormatError("OFD: OFD.xml is missing (not an OFD package)", "OFD 文件：缺少 OFD.xml（不是 OFD 文件包）")
        entry = self.package.xml("OFD.xml")
        if local(entry.tag) != "OFD":
            raise OFDFormatError("OFD: the root of OFD.xml is not <OFD>", "OFD 文件：OFD.xml 的根元素不是 <OFD>")
        body = child(entry, "DocBody")
        if body is None:
            raise OFDFormatError("OFD: OFD.xml has no DocBody", "OFD 文件：OFD.xml 中没有 DocBody")
        doc_root = self.link("OFD.xml", child_text(body, "DocRoot"))
        if doc_root is None:
            raise OFDFormatError("OFD: the DocRoot document is missing", "OFD 文件：缺少 DocRoot 指向的文档")
        info = self.doc_info(child(body, "DocInfo"))
        signatures_loc = child_text(body, "Signatures")
        signatures_part = self.link("OFD.xml", signatures_loc)
        document = self.package.xml(doc_root)
        common = child(document, "CommonData")
        if common is None:
            raise OFDFormatError("OFD: Document.xml has no CommonData", "OFD 文件：Document.xml 中没有 CommonData")
        page_area = child(common, "PageArea")
        default_box = box(child_text(page_area, "PhysicalBox"), (0.0, 0.0, 210.0, 297.0)) if page_area is not None \
            else (0.0, 0.0, 210.0, 297.0)
        for name in ("PublicRes", "DocumentRes") if self.read_contents else ():
            for res in children(common, name):
                self.resources(self.link(doc_root, res.text))
        templates = {}
        for template in children(common, "TemplatePage"):
            templates[template.get("ID", "")] = self.link(doc_root, template.get("BaseLoc"))
        pages = []
        pages_element = child(document, "Pages")
        for index, page in enumerate(children(pages_element, "Page") if pages_element is not None else []):
            part = self.link(doc_root, page.get("BaseLoc"))
            pages.append(self.page(page.get("ID", str(index)), index, part, default_box, templates))
        self.annotations(self.link(doc_root, child_text(document, "Annotations")))
        attachments = self.attachments(self.link(doc_root, child_text(document, "Attachments")))
        custom_tags = self.custom_tags(self.link(doc_root, child_text(document, "CustomTags")))
        signatures = self.signatures(signatures_part)
        return Document(
            version=entry.get("Version"), doc_type=entry.get("DocType"), doc_root=doc_root, info=info,
            pages=tuple(pages), fonts=dict(self.fonts), media=dict(self.media), attachments=attachments,
            custom_tags=custom_tags, signatures_loc=signatures_loc, signatures_part=signatures_part,
            signatures=signatures, links=self.links, missing=tuple(self.missing), content=frozenset(self.content))

    def doc_info(self, element) -> dict:
        info: dict = {}
        if element is None:
            return info
        for item in element:
            name = local(item.tag)
            if name == "CustomDatas":
                info[name] = {c.get("Name", ""): (c.text or "") for c in children(item, "CustomData")}
            elif name == "Keywords":
                info[name] = [(k.text or "").strip() for k in children(item, "Keyword")]
            elif name:
                info[name] = (item.text or "").strip()
        return info

    def resources(self, part: str | None) -> None:
        if part is None:
            return
        res = self.package.xml(part)
        self.content.add(part)
        base_loc = (res.get("BaseLoc") or "").strip()
        base = (resolve(part, base_loc) if base_loc else None)
        if base is None:
            base = posixpath.dirname(part)
        anchor = posixpath.join(base, "_") if base else "_"

        def file(loc: str | None) -> str | None:
            if not loc or not loc.strip():
                return None
            target = self.package.locate(anchor, loc) or self.package.locate(part, loc)
            if target is None:
                self.missing.append(loc.strip())
            else:
                self.links.setdefault(part, set()).add(target)
                self.content.add(target)
            return target

        for group in res:
            kind = local(group.tag)
            if kind == "Fonts":
                for font in children(group, "Font"):
                    self.fonts[font.get("ID", "")] = Font(font.get("ID", ""), font.get("FontName", ""),
                                                          font.get("FamilyName"), file(child_text(font, "FontFile")))
            elif kind == "MultiMedias":
                for media in children(group, "MultiMedia"):
                    self.media[media.get("ID", "")] = Media(media.get("ID", ""), media.get("Type", ""),
                                                            media.get("Format"), file(child_text(media, "MediaFile")))
            elif kind == "DrawParams":
                for param in children(group, "DrawParam"):
                    self.draw_params[param.get("ID", "")] = (colour(child(param, "StrokeColor")),
                                                             colour(child(param, "FillColor")))

    def page(self, page_id: str, index: int, part: str | None, default_box: Box, templates: dict) -> Page:
        content = self.package.xml(part) if self.read_contents and part is not None else None
        texts: list[TextRun] = []
        images: list[ImageItem] = []
        paths: list[PathItem] = []
        page_box = default_box
        if content is not None and part is not None:
            self.content.add(part)
            for res in children(content, "PageRes"):
                self.resources(self.link(part, res.text))
            area = child(content, "Area")
            if area is not None:
                page_box = box(child_text(area, "PhysicalBox"), default_box)
            layers = []
            for template in children(content, "Template"):
                template_part = templates.get(template.get("TemplateID", ""))
                if template_part is not None:
                    self.links.setdefault(part, set()).add(template_part)
                    self.content.add(template_part)
                    template_xml = self.package.xml(template_part)
                    for res in children(template_xml, "PageRes"):
                        self.resources(self.link(template_part, res.text))
                    layers.extend(self.layers(template_xml))
            layers.extend(self.layers(content))
            for layer in layers if self.read_objects else ():
                self.objects(layer, texts, images, paths, 0)
        return Page(page_id, index, part, page_box, tuple(texts), tuple(images), tuple(paths))

    @staticmethod
    def layers(content) -> list:
        body = child(content, "Content")
        return children(body, "Layer") if body is not None else []

    def objects(self, block, texts: list, images: list, paths: list, depth: int) -> None:
        if depth > MAX_BLOCK_DEPTH:
            raise OFDFormatError("OFD: page blocks nested too deeply", "OFD 文件：页块嵌套过深")
        for item in block:
            kind = local(item.tag)
            if kind == "PageBlock":
                self.objects(item, texts, images, paths, depth + 1)
            elif kind == "TextObject":
                texts.extend(self.text_object(item))
            elif kind == "ImageObject":
                boundary = box(item.get("Boundary"), (0.0, 0.0, 0.0, 0.0))
                media = self.media.get(item.get("ResourceID", ""))
                images.append(ImageItem(item.get("ResourceID", ""), boundary, media.part if media else None,
                                        media.format if media else None))
            elif kind == "PathObject":
                boundary = box(item.get("Boundary"), (0.0, 0.0, 0.0, 0.0))
                stroke, fill = self.draw_params.get(item.get("DrawParam", ""), (None, None))
                stroke = colour(child(item, "StrokeColor")) or stroke
                fill = colour(child(item, "FillColor")) or fill
                paths.append(PathItem(boundary, child_text(item, "AbbreviatedData") or "", matrix(item.get("CTM")),
                                      (numbers(item.get("LineWidth"), "LineWidth") or [0.353])[0],
                                      stroke if item.get("Stroke", "true") != "false" else None,
                                      fill if item.get("Fill", "false") == "true" else None))

    def text_object(self, item) -> list[TextRun]:
        boundary = box(item.get("Boundary"), (0.0, 0.0, 0.0, 0.0))
        size_values = numbers(item.get("Size"), "Size")
        size = size_values[0] if size_values else 0.0
        ctm = matrix(item.get("CTM"))
        scale = math.sqrt(abs(ctm[0] * ctm[3] - ctm[1] * ctm[2])) or 1.0
        font_id = item.get("Font")
        font = self.fonts.get(font_id or "")
        fill = colour(child(item, "FillColor"))
        if fill is None and item.get("DrawParam"):
            fill = self.draw_params.get(item.get("DrawParam"), (None, None))[1]
        runs = []
        x = y = 0.0
        for code in children(item, "TextCode"):
            text = code.text or ""
            x = (numbers(code.get("X"), "X") or [x])[0]
            y = (numbers(code.get("Y"), "Y") or [y])[0]
            delta_x = tuple(numbers(code.get("DeltaX"), "DeltaX", limit=max(len(text) - 1, 0)))
            px, py = apply(ctm, x, y)
            runs.append(TextRun(text, round(boundary[0] + px, 3), round(boundary[1] + py, 3), round(size * scale, 3),
                                font_id, font.name if font else None, fill, delta_x))
            x += sum(delta_x[:max(len(text) - 1, 0)]) + (size if text else 0.0)
        return runs

    def annotations(self, part: str | None) -> None:
        if part is None:
            return
        for page in children(self.package.xml(part), "Page"):
            self.link(part, child_text(page, "FileLoc"))

    def attachments(self, part: str | None) -> tuple[Attachment, ...]:
        if part is None:
            return ()
        index = self.package.xml(part)
        return tuple(Attachment(a.get("ID", ""), a.get("Name", ""), a.get("Format"),
                                self.link(part, child_text(a, "FileLoc")))
                     for a in children(index, "Attachment"))

    def custom_tags(self, part: str | None) -> tuple[CustomTag, ...]:
        if part is None:
            return ()
        index = self.package.xml(part)
        tags = []
        for tag in children(index, "CustomTag"):
            self.link(part, child_text(tag, "SchemaLoc"))
            tags.append(CustomTag(tag.get("NameSpace") or tag.get("TypeID"), self.link(part, child_text(tag, "FileLoc"))))
        return tuple(tags)

    def signatures(self, part: str | None) -> tuple[SignatureEntry, ...]:
        return signature_entries(self.package, part)


def signature_entries(package: Package, part: str | None) -> tuple[SignatureEntry, ...]:
    """The entries of Signatures.xml (`part`), each with its Signature.xml located."""
    if part is None:
        return ()
    entries = []
    for signature in children(package.xml(part), "Signature"):
        base_loc = signature.get("BaseLoc", "")
        entries.append(SignatureEntry(signature.get("ID", ""), signature.get("Type") or "Seal", base_loc,
                                      package.locate(part, base_loc), signature.get("Relative")))
    return tuple(entries)


def read_package(package: Package, *, objects: bool = True, contents: bool = True) -> Document:
    """The document; with ``objects`` False, its structure alone (parts, links, resources,
    pages without their text, image and path objects): what a verifier needs. With
    ``contents`` False, not even the pages' content or the resources are read (the pages
    have their ID, part and the default box): what adding a signature needs."""
    return _Reader(package, objects=objects, contents=contents).read()


def read_ofd(data: bytes) -> Document:
    """Read an OFD file's bytes; OFDFormatError (an InvalidInput) if it cannot be read."""
    return read_package(Package.from_bytes(data))


def signature_parts(package: Package, signatures_part: str | None, entries) -> set[str]:
    """The parts that belong to the signature machinery: Signatures.xml, and every file in
    the directory of each Signature.xml (SignedValue, Seal.esl, producers' extras)."""
    parts: set[str] = set()
    if signatures_part:
        parts.add(signatures_part)
    for entry in entries:
        if entry.part is None:
            continue
        parts.add(entry.part)
        directory = posixpath.dirname(entry.part) + "/"
        parts.update(name for name in package.names() if name.startswith(directory))
    return parts
