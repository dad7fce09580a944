"""Bounded reading of untrusted zip archives and XML: the safety every container format
here shares (OFD packages, and OFD seal pictures inside seals).

Archives are read eagerly but never without limit: entry count, each entry's and the total
uncompressed size, and the compression ratio are bounded while inflating (the declared
sizes in the zip directory are not trusted). Entry names must be relative paths without
traversal, backslashes or duplicates. XML is parsed by lxml with entities, DTDs and network
off, and with bounds on depth and attribute size. Every refusal is an ArchiveError; a format
module re-raises it as its own error.
"""

import functools
import io
import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass

from lxml import etree

from trust.errors import InvalidInput


class ArchiveError(InvalidInput):
    """A zip archive or XML document we are not willing to read."""

    code = "archive_format"


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
    """A zip entry name as a clean relative path, or ArchiveError."""
    if not name or "\\" in name or "\x00" in name:
        raise ArchiveError(f"entry name {name!r} contains a backslash or NUL", f"压缩包条目名 {name!r} 含反斜杠或空字符")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"entry name {name!r} is an absolute path", f"压缩包条目名 {name!r} 是绝对路径")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ArchiveError(f"entry name {name!r} is not a plain relative path", f"压缩包条目名 {name!r} 含非法路径成分")
    return name


def _stored_bytes(data: bytes, info: zipfile.ZipInfo) -> bytes | None:
    """An entry's bytes as stored, found through its local header; None when the header is
    not where the central directory says or names another file (zipfile then says why)."""
    start = info.header_offset
    header = data[start:start + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    name = data[start + _LOCAL_HEADER.size:start + _LOCAL_HEADER.size + name_length]
    if name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"):
        return None
    begin = start + _LOCAL_HEADER.size + name_length + extra_length
    stored = data[begin:begin + info.compress_size]
    return stored if len(stored) == info.compress_size else None


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")   # APPNOTE 4.3.7, up to the name and extra field lengths


@dataclass(frozen=True)
class StoredEntry:
    """An entry as its archive holds it: what write_zip copies, without compressing again,
    when the same ``content`` object is written back."""

    content: bytes
    method: int          # zipfile.ZIP_STORED or ZIP_DEFLATED
    crc: int
    data: bytes          # as stored (compressed when deflated)


def _inflate(data: bytes, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: int,
             limits: Limits) -> tuple[bytes, StoredEntry | None]:
    """Decompress one entry, stopping as soon as a limit is passed: a stored or deflated entry
    in one call of zlib bounded by the limits (its CRC checked), any other through zipfile.
    With the content, the entry as stored (None for other methods)."""
    cap = min(limits.max_entry_size, budget)
    stored = _stored_bytes(data, info) if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) else None
    if stored is None:
        return _inflate_stream(archive, info, name, cap, budget, limits), None
    by_ratio = max(limits.ratio_floor, limits.max_ratio * max(info.compress_size, 1))
    bound = min(cap, by_ratio)
    if info.compress_type == zipfile.ZIP_STORED:
        out = stored
    else:
        inflater = zlib.decompressobj(-15)
        try:
            out = inflater.decompress(stored, bound + 1)
        except zlib.error as e:
            raise ArchiveError(f"entry {name!r} cannot be read: {e}", f"条目 {name!r} 无法读取：{e}") from None
        if len(out) <= bound and not inflater.eof:
            raise ArchiveError(f"entry {name!r} cannot be read: its compressed data ends early",
                               f"条目 {name!r} 无法读取：压缩数据不完整")
    _check_size(name, len(out), cap, budget, by_ratio, limits)
    if zlib.crc32(out) != info.CRC or len(out) != info.file_size:
        raise ArchiveError(f"entry {name!r} cannot be read: its CRC or size is not what the archive says",
                           f"条目 {name!r} 无法读取：CRC 或大小与目录不符")
    content = bytes(out)
    return content, StoredEntry(content, info.compress_type, info.CRC, stored)


def _check_size(name: str, size: int, cap: int, budget: int, by_ratio: int, limits: Limits) -> None:
    """Refuse an entry grown past the entry or total limit (``cap``, the smaller of them and
    what is left of the ``budget``) or past the compression ratio allowed (``by_ratio``)."""
    if size > cap:
        if cap == budget:
            raise ArchiveError(f"uncompressed size exceeds {limits.max_total_size} bytes in total",
                               f"解压后总大小超过 {limits.max_total_size} 字节")
        raise ArchiveError(f"entry {name!r} exceeds {limits.max_entry_size} bytes uncompressed",
                           f"条目 {name!r} 解压后超过 {limits.max_entry_size} 字节")
    if size > by_ratio:
        raise ArchiveError(f"entry {name!r} has a compression ratio above {limits.max_ratio} (zip bomb?)",
                           f"条目 {name!r} 压缩比超过 {limits.max_ratio}（疑似压缩炸弹）")


def _inflate_stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, cap: int, budget: int,
                    limits: Limits) -> bytes:
    """Any other compression method, through zipfile's reader, chunk by chunk."""
    by_ratio = max(limits.ratio_floor, limits.max_ratio * max(info.compress_size, 1))
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(1 << 16):
                out += chunk
                _check_size(name, len(out), cap, budget, by_ratio, limits)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as e:
        raise ArchiveError(f"entry {name!r} cannot be read: {e}", f"条目 {name!r} 无法读取：{e}") from None
    return bytes(out)


def read_zip(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, bytes]:
    """The entries of a zip archive by name, in archive order (directories left out)."""
    return read_zip_stored(data, limits)[0]


def read_zip_stored(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[dict[str, bytes], dict[str, StoredEntry]]:
    """read_zip's entries, and those stored or deflated as they are stored, for write_zip to
    copy when they are written back unchanged."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ArchiveError("expected bytes", "需要字节串")
    data = bytes(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError) as e:
        raise ArchiveError(f"not a zip archive ({e})", f"不是 ZIP 压缩包（{e}）") from None
    if len(infos) > limits.max_entries:
        raise ArchiveError(f"more than {limits.max_entries} entries", f"条目数超过 {limits.max_entries}")
    parts: dict[str, bytes] = {}
    as_stored: dict[str, StoredEntry] = {}
    total = 0
    for info in infos:
        name = check_entry_name(_entry_name(info))
        if name.endswith("/"):
            continue
        if name in parts:
            raise ArchiveError(f"duplicate entry {name!r}", f"重复的条目 {name!r}")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"entry {name!r} is encrypted", f"条目 {name!r} 已加密")
        content, entry = _inflate(data, archive, info, name, limits.max_total_size - total, limits)
        total += len(content)
        parts[name] = content
        if entry is not None:
            as_stored[name] = entry
    return parts, as_stored


def resolve(base: str, loc: str) -> str | None:
    """The entry a path `loc` written inside entry `base` names: from the root if it starts
    with "/", else from `base`'s directory (as OFD's ST_Loc); None if it leaves the root."""
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


_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                       dtd_validation=False, remove_blank_text=False, recover=False)


def parse_xml(data: bytes, name: str = "XML", limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """Parse one XML document safely; ArchiveError on anything we refuse."""
    if len(data) > limits.max_xml_size:
        raise ArchiveError(f"{name} is larger than {limits.max_xml_size} bytes", f"{name} 超过 {limits.max_xml_size} 字节")
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as e:
        raise ArchiveError(f"{name} is not well-formed XML: {e}", f"{name} 不是格式正确的 XML：{e}") from None
    if root is None:
        raise ArchiveError(f"{name} is empty", f"{name} 为空")
    if root.getroottree().docinfo.doctype:
        raise ArchiveError(f"{name} has a DOCTYPE (DTDs and entities are refused)", f"{name} 含 DOCTYPE（拒绝 DTD 与实体）")
    _check_tree(root, name, limits, len(data))
    return root


def _check_tree(root: etree._Element, name: str, limits: Limits, size: int) -> None:
    """Depth, entity references and attribute lengths within the limits; walked in libxml2
    (XPath and typed iteration), and attributes only when the document is larger than the
    longest attribute allowed (no attribute is longer than the bytes that hold it)."""
    if _deeper_than(limits.max_xml_depth)(root):
        raise ArchiveError(f"{name} is nested deeper than {limits.max_xml_depth} levels",
                           f"{name} 嵌套层级超过 {limits.max_xml_depth}")
    if next(root.iter(etree.Entity), None) is not None:
        raise ArchiveError(f"{name} uses an entity reference", f"{name} 使用了实体引用")
    if size > limits.max_attribute_size:
        for element in root.iter(tag=etree.Element):
            if any(len(value) > limits.max_attribute_size for value in element.attrib.values()):
                raise ArchiveError(f"{name} has an attribute longer than {limits.max_attribute_size} characters",
                                   f"{name} 的属性值超过 {limits.max_attribute_size} 字符")


@functools.lru_cache(maxsize=4)
def _deeper_than(depth: int) -> etree.XPath:
    """True for a document with a node other than text below ``depth`` levels of elements."""
    return etree.XPath("boolean(/" + "*/" * depth + "node()[not(self::text())])")


def local(tag) -> str:
    """An element's name without namespace: readers accept any (or no) namespace."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""  # lxml's "{namespace}name"


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


_WRITTEN_LOCAL = struct.Struct("<L5H3L2H")          # APPNOTE 4.3.7 local file header
_WRITTEN_CENTRAL = struct.Struct("<L6H3L5H2L")      # 4.3.12 central directory file header
_WRITTEN_END = struct.Struct("<L4H2LH")             # 4.3.16 end of central directory record
_DOS_DATE = (2020 - 1980) << 9 | 1 << 5 | 1         # 2020-01-01 00:00, as every entry we write


def write_zip(parts: dict[str, bytes], stored: dict[str, StoredEntry] | None = None) -> bytes:
    """Zip the parts in order (deflate; UTF-8 names, flagged when not ASCII). The stored
    content of every part is exactly the bytes given, so digests over parts survive
    re-zipping. A part whose content is the very object of its entry in ``stored``
    (read_zip_stored) is copied as stored instead of compressed again: sealing a document
    changes three of its parts, and deflating the rest again was a third of its time (#18).

    Written here rather than by zipfile, which cannot copy compressed data; no ZIP64: an
    archive past 65,535 entries or 4 GiB is refused (trust.archive reads far less)."""
    stored = stored or {}
    out, central = bytearray(), bytearray()
    for name, content in parts.items():
        check_entry_name(name)
        entry = stored.get(name)
        if entry is not None and entry.content is content:
            method, crc, data = entry.method, entry.crc, entry.data
        else:
            deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
            method, crc, data = zipfile.ZIP_DEFLATED, zlib.crc32(content), deflater.compress(content) + deflater.flush()
        encoded = name.encode("utf-8")
        flags = 0 if name.isascii() else 0x800
        offset = len(out)
        if offset + len(data) + len(encoded) + _WRITTEN_LOCAL.size >= 1 << 32 or len(content) >= 1 << 32:
            raise ArchiveError("the archive would be larger than 4 GiB", "压缩包将超过 4 GiB")
        fields = (20, flags, method, 0, _DOS_DATE, crc, len(data), len(content), len(encoded))
        out += _WRITTEN_LOCAL.pack(0x04034B50, *fields, 0) + encoded + data
        central += _WRITTEN_CENTRAL.pack(0x02014B50, 3 << 8 | 20, *fields, 0, 0, 0, 0, 0o644 << 16, offset) + encoded
    count = len(parts)
    if count > 0xFFFF:
        raise ArchiveError("more than 65,535 entries to write", "要写入的条目超过 65535 个")
    return bytes(out + central + _WRITTEN_END.pack(0x06054B50, 0, 0, count, count, len(central), len(out), 0))
