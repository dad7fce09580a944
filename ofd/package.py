"""The OFD container (GB/T 33190 §7): a zip of parts, read and written with bounds.

Untrusted packages are read eagerly but never without limit: entry count, each entry's and
the total uncompressed size, and the compression ratio are bounded while inflating (the
declared sizes in the zip directory are not trusted). Entry names must be relative package
paths without traversal, backslashes or duplicates. XML parts are parsed by lxml with
entities, DTDs and network off, and with bounds on depth and attribute size.

Package paths (ST_Loc, spec §1): inside XML, a path starting with "/" is absolute from the
package root; any other path is relative to the directory of the XML file holding it.
Zip entry names have no leading slash.
"""

import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass

from lxml import etree

from trust.errors import InvalidInput

NS = "http://www.ofdspec.org/2016"


class OFDFormatError(InvalidInput):
    """The bytes are not an OFD package we are willing to read."""

    code = "ofd_format"


def _error(en: str, zh: str) -> OFDFormatError:
    return OFDFormatError(f"OFD: {en}", f"OFD 文件：{zh}")


@dataclass(frozen=True)
class Limits:
    max_entries: int = 10_000
    max_entry_size: int = 64 << 20
    max_total_size: int = 256 << 20
    max_ratio: int = 200            # uncompressed / compressed, checked once an entry exceeds ratio_floor
    ratio_floor: int = 1 << 20
    max_xml_size: int = 16 << 20
    max_xml_depth: int = 128
    max_attribute_size: int = 1 << 20


DEFAULT_LIMITS = Limits()


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name; names without the UTF-8 flag that are not ASCII are tried as UTF-8
    then GBK (Windows zip tools in China write GBK without saying so)."""
    name = info.filename
    if not info.flag_bits & 0x800 and not name.isascii():
        raw = name.encode("cp437")
        for encoding in ("utf-8", "gbk"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
    return name


def check_entry_name(name: str) -> str:
    """A zip entry name as a clean package path, or OFDFormatError."""
    if not name or "\\" in name or "\x00" in name:
        raise _error(f"entry name {name!r} contains a backslash or NUL", f"压缩包条目名 {name!r} 含反斜杠或空字符")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _error(f"entry name {name!r} is an absolute path", f"压缩包条目名 {name!r} 是绝对路径")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _error(f"entry name {name!r} is not a plain relative path", f"压缩包条目名 {name!r} 含非法路径成分")
    return name


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: int, limits: Limits) -> bytes:
    """Decompress one entry, stopping as soon as a limit is passed."""
    cap = min(limits.max_entry_size, budget)
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(1 << 16):
                out += chunk
                if len(out) > cap:
                    if cap == budget:
                        raise _error(f"uncompressed size exceeds {limits.max_total_size} bytes in total",
                                     f"解压后总大小超过 {limits.max_total_size} 字节")
                    raise _error(f"entry {name!r} exceeds {limits.max_entry_size} bytes uncompressed",
                                 f"条目 {name!r} 解压后超过 {limits.max_entry_size} 字节")
                if len(out) > limits.ratio_floor and len(out) > limits.max_ratio * max(info.compress_size, 1):
                    raise _error(f"entry {name!r} has a compression ratio above {limits.max_ratio} (zip bomb?)",
                                 f"条目 {name!r} 压缩比超过 {limits.max_ratio}（疑似压缩炸弹）")
    except OFDFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as e:
        raise _error(f"entry {name!r} cannot be read: {e}", f"条目 {name!r} 无法读取：{e}") from None
    return bytes(out)


class Package:
    """The parts of an OFD package by entry name, in zip order, with the bytes as stored."""

    def __init__(self, parts: dict[str, bytes], limits: Limits = DEFAULT_LIMITS):
        self.parts = parts
        self.limits = limits
        self._folded = {name.lower(): name for name in parts}

    @classmethod
    def from_bytes(cls, data: bytes, limits: Limits = DEFAULT_LIMITS) -> "Package":
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise _error("expected bytes", "需要字节串")
        try:
            archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
            infos = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError) as e:
            raise _error(f"not a zip archive ({e})", f"不是 ZIP 压缩包（{e}）") from None
        if len(infos) > limits.max_entries:
            raise _error(f"more than {limits.max_entries} entries", f"条目数超过 {limits.max_entries}")
        parts: dict[str, bytes] = {}
        total = 0
        for info in infos:
            name = check_entry_name(_entry_name(info))
            if name.endswith("/"):
                continue
            if name in parts:
                raise _error(f"duplicate entry {name!r}", f"重复的条目 {name!r}")
            if info.flag_bits & 0x1:
                raise _error(f"entry {name!r} is encrypted", f"条目 {name!r} 已加密")
            content = _inflate(archive, info, name, limits.max_total_size - total, limits)
            total += len(content)
            parts[name] = content
        return cls(parts, limits)

    def __contains__(self, name: str) -> bool:
        return name in self.parts

    def names(self) -> list[str]:
        return list(self.parts)

    def read(self, name: str) -> bytes:
        try:
            return self.parts[name]
        except KeyError:
            raise _error(f"part {name!r} is missing", f"缺少文件 {name!r}") from None

    def locate(self, base: str, loc: str) -> str | None:
        """The entry a ST_Loc in the part `base` names, or None. Producers are not strict
        about relative paths, so after the rule of §1 we try the path from the root and
        from the document directory (the first path component of `base`)."""
        loc = (loc or "").strip().replace("\\", "/")
        if not loc:
            return None
        candidates = [resolve(base, loc)]
        stripped = loc.lstrip("/").removeprefix("./")
        candidates.append(stripped)
        if "/" in base:
            candidates.append(base.split("/", 1)[0] + "/" + stripped)
        for candidate in candidates:
            if candidate and candidate in self.parts:
                return candidate
        for candidate in candidates:  # producers on case-insensitive file systems: "TPLS" for "Tpls"
            if candidate and candidate.lower() in self._folded:
                return self._folded[candidate.lower()]
        return None

    def xml(self, name: str) -> etree._Element:
        return parse_xml(self.read(name), name, self.limits)


def resolve(base: str, loc: str) -> str | None:
    """ST_Loc `loc` as found in part `base` → entry name (spec §1); None if it leaves the root."""
    loc = loc.strip()
    start = [] if loc.startswith("/") else posixpath.dirname(base).split("/")
    out: list[str] = [p for p in start if p]
    for component in loc.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            if not out:
                return None
            out.pop()
        else:
            out.append(component)
    return "/".join(out)


def to_loc(name: str) -> str:
    """Entry name → absolute ST_Loc, the form References use."""
    return "/" + name.lstrip("/")


_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                       dtd_validation=False, remove_blank_text=False, recover=False)


def parse_xml(data: bytes, name: str = "XML", limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """Parse one XML part safely; OFDFormatError on anything we refuse."""
    if len(data) > limits.max_xml_size:
        raise _error(f"{name} is larger than {limits.max_xml_size} bytes", f"{name} 超过 {limits.max_xml_size} 字节")
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as e:
        raise _error(f"{name} is not well-formed XML: {e}", f"{name} 不是格式正确的 XML：{e}") from None
    if root is None:
        raise _error(f"{name} is empty", f"{name} 为空")
    if root.getroottree().docinfo.doctype:
        raise _error(f"{name} has a DOCTYPE (DTDs and entities are refused)", f"{name} 含 DOCTYPE（拒绝 DTD 与实体）")
    _check_tree(root, name, limits)
    return root


def _check_tree(root: etree._Element, name: str, limits: Limits) -> None:
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limits.max_xml_depth:
            raise _error(f"{name} is nested deeper than {limits.max_xml_depth} levels",
                         f"{name} 嵌套层级超过 {limits.max_xml_depth}")
        if not isinstance(element.tag, str):
            if isinstance(element, etree._Entity):
                raise _error(f"{name} uses an entity reference", f"{name} 使用了实体引用")
            continue
        for value in element.attrib.values():
            if len(value) > limits.max_attribute_size:
                raise _error(f"{name} has an attribute longer than {limits.max_attribute_size} characters",
                             f"{name} 的属性值超过 {limits.max_attribute_size} 字符")
        stack.extend((child, depth + 1) for child in element)


def local(tag) -> str:
    """An element's name without namespace: readers accept any (or no) namespace."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def children(element, name: str) -> list:
    return [c for c in element if local(c.tag) == name]


def child(element, name: str):
    for c in element:
        if local(c.tag) == name:
            return c
    return None


def child_text(element, name: str) -> str | None:
    c = child(element, name) if element is not None else None
    return c.text.strip() if c is not None and c.text is not None else None


def write_package(parts: dict[str, bytes]) -> bytes:
    """Zip the parts in order (deflate, UTF-8 names). The stored content of every part is
    exactly the bytes given, so digests over parts survive re-zipping."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            check_entry_name(name)
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()
