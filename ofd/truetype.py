"""ISO/IEC 14496-22 (Open Font Format), TrueType outlines: reading a font once and cutting
the subset a document embeds.

A document embeds only the glyphs it shows. fontTools' general subsetter decompiles and
recompiles every glyph and table it keeps, some 40 ms a document for a CJK font; a licence
needs none of that. Here the font is read once: its table directory, the Unicode cmap, the
advances and where each glyph's outline lies; a subset then copies the outlines of the
glyphs wanted byte for byte (renumbering the components of composite glyphs), and writes
new loca, hmtx, cmap and post tables beside copies of head, hhea, maxp, OS/2, name and the
hinting tables. OpenType layout (GSUB, GPOS, GDEF), vertical metrics, bitmaps and per-glyph
device tables are left out: the writer places every glyph itself, horizontally.

Only fonts with TrueType outlines (a ``glyf`` table) are read; a CFF font is refused. A
font that is truncated or whose tables point outside the file fails with InvalidInput.
"""

import struct
from dataclasses import dataclass

from trust.errors import InvalidInput

_KEPT = (b"OS/2", b"cvt ", b"fpgm", b"gasp", b"name", b"prep")   # copied as they are
_WRITTEN = (b"cmap", b"glyf", b"head", b"hhea", b"hmtx", b"loca", b"maxp", b"post")
MAX_CHARS = 8000          # a cmap format 4 subtable holds at most ~8,000 segments

# composite glyph component flags (the 'glyf' table)
_ARGS_ARE_WORDS, _HAVE_SCALE, _MORE_COMPONENTS, _HAVE_XY_SCALE, _HAVE_2X2 = 0x1, 0x8, 0x20, 0x40, 0x80


class FontError(InvalidInput):
    pass


def _bad(what: str) -> FontError:
    return FontError(en=f"not a usable TrueType font: {what}", zh=f"不是可用的 TrueType 字体：{what}")


def _unpack(fmt: str, data: bytes, offset: int) -> tuple:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise _bad("a table ends early") from None


@dataclass(frozen=True)
class _Glyph:
    data: bytes
    components: tuple[tuple[int, int], ...]   # (offset of the glyph index in data, the index)


class TrueTypeFont:
    """A TrueType font (``font_number`` of a collection) read once, ready to subset."""

    def __init__(self, data: bytes, font_number: int = 0):
        self._data = data
        start = 0
        if data[:4] == b"ttcf":
            count, = _unpack(">I", data, 8)
            if not 0 <= font_number < count:
                raise _bad(f"the collection has no font number {font_number}")
            start, = _unpack(">I", data, 12 + 4 * font_number)
        version, tables = _unpack(">IH", data, start)
        if version == 0x4F54544F:  # "OTTO"
            raise _bad("it has CFF outlines, not TrueType ones")
        if version not in (0x00010000, 0x74727565):
            raise _bad("unknown sfnt version")
        self._tables: dict[bytes, bytes] = {}
        for i in range(tables):
            tag, _checksum, offset, length = _unpack(">4sIII", data, start + 12 + 16 * i)
            if offset + length > len(data):
                raise _bad(f"table {tag!r} lies outside the file")
            self._tables[tag] = data[offset:offset + length]
        for tag in _WRITTEN:
            if tag not in self._tables:
                raise _bad(f"it has no {tag.decode().strip()} table")
        head, hhea, maxp = self._tables[b"head"], self._tables[b"hhea"], self._tables[b"maxp"]
        self.units_per_em, = _unpack(">H", head, 18)
        long_loca, = _unpack(">h", head, 50)
        self.glyph_count, = _unpack(">H", maxp, 4)
        metrics_count, = _unpack(">H", hhea, 34)
        if not 0 < metrics_count <= self.glyph_count or not self.units_per_em:
            raise _bad("its metrics do not add up")
        hmtx = self._tables[b"hmtx"]
        if len(hmtx) < 4 * metrics_count + 2 * (self.glyph_count - metrics_count):
            raise _bad("its hmtx table ends early")
        self._metrics = list(struct.iter_unpack(">Hh", hmtx[:4 * metrics_count]))
        last_advance = self._metrics[-1][0]
        self._metrics += [(last_advance, lsb) for lsb, in struct.iter_unpack(
            ">h", hmtx[4 * metrics_count:4 * metrics_count + 2 * (self.glyph_count - metrics_count)])]
        loca = self._tables[b"loca"]
        self._loca = ([v * 2 for v in _unpack(f">{self.glyph_count + 1}H", loca, 0)] if long_loca == 0
                      else list(_unpack(f">{self.glyph_count + 1}I", loca, 0)))
        if any(a > b for a, b in zip(self._loca, self._loca[1:], strict=False)) or self._loca[-1] > len(self._tables[b"glyf"]):
            raise _bad("its glyph locations are out of order or outside the glyph table")
        self.cmap = _read_cmap(self._tables[b"cmap"], self.glyph_count)
        self.name = _full_name(self._tables.get(b"name", b""))

    def advance(self, codepoint: int) -> float | None:
        """The advance of the character's glyph in em, None when the font has no glyph for it."""
        glyph = self.cmap.get(codepoint)
        return None if glyph is None else self._metrics[glyph][0] / self.units_per_em

    def _glyph(self, glyph_id: int) -> _Glyph:
        data = self._tables[b"glyf"][self._loca[glyph_id]:self._loca[glyph_id + 1]]
        if len(data) < 10 or _unpack(">h", data, 0)[0] >= 0:
            return _Glyph(data, ())
        components, offset = [], 10
        while True:
            flags, component = _unpack(">HH", data, offset)
            if component >= self.glyph_count:
                raise _bad(f"glyph {glyph_id} is made of a glyph the font does not have")
            components.append((offset + 2, component))
            offset += 4 + (4 if flags & _ARGS_ARE_WORDS else 2)
            offset += 2 if flags & _HAVE_SCALE else 4 if flags & _HAVE_XY_SCALE else 8 if flags & _HAVE_2X2 else 0
            if not flags & _MORE_COMPONENTS:
                return _Glyph(data, tuple(components))

    def subset(self, chars) -> bytes:
        """A TrueType font with the glyphs of ``chars`` (and .notdef, and the components of
        composite glyphs); characters the font lacks are left out."""
        codepoints = sorted({ord(c) for c in chars if ord(c) in self.cmap})
        if len(codepoints) > MAX_CHARS:
            raise InvalidInput(en=f"a document embeds at most {MAX_CHARS} different characters of one font",
                               zh=f"一份文档嵌入同一字体的不同字符不超过 {MAX_CHARS} 个")
        wanted, glyphs, todo = {0: 0}, {}, [0, *(self.cmap[c] for c in codepoints)]
        while todo:  # new glyph ids in the order first met: deterministic for the same characters
            glyph_id = todo.pop(0)
            if glyph_id in glyphs:
                continue
            wanted.setdefault(glyph_id, len(wanted))
            glyphs[glyph_id] = self._glyph(glyph_id)
            todo.extend(component for _at, component in glyphs[glyph_id].components)
        order = sorted(wanted, key=wanted.__getitem__)
        glyf, loca = bytearray(), []
        for glyph_id in order:
            loca.append(len(glyf))
            outline = bytearray(glyphs[glyph_id].data)
            for at, component in glyphs[glyph_id].components:
                struct.pack_into(">H", outline, at, wanted[component])
            glyf += outline + bytes(-len(outline) % 4)
        loca.append(len(glyf))
        head = bytearray(self._tables[b"head"])
        struct.pack_into(">I", head, 8, 0)       # checkSumAdjustment, set once the file is whole
        struct.pack_into(">h", head, 50, 1)      # long loca offsets
        hhea, maxp = bytearray(self._tables[b"hhea"]), bytearray(self._tables[b"maxp"])
        struct.pack_into(">H", hhea, 34, len(order))
        struct.pack_into(">H", maxp, 4, len(order))
        post = bytearray(self._tables[b"post"][:32].ljust(32, b"\0"))
        struct.pack_into(">I", post, 0, 0x00030000)  # version 3: no glyph names
        tables = {tag: self._tables[tag] for tag in _KEPT if tag in self._tables}
        tables.update({
            b"head": bytes(head), b"hhea": bytes(hhea), b"maxp": bytes(maxp), b"post": bytes(post),
            b"glyf": bytes(glyf), b"loca": struct.pack(f">{len(loca)}I", *loca),
            b"hmtx": b"".join(struct.pack(">Hh", *self._metrics[g]) for g in order),
            b"cmap": _write_cmap({c: wanted[self.cmap[c]] for c in codepoints})})
        return _sfnt(tables)


def _read_cmap(cmap: bytes, glyph_count: int) -> dict[int, int]:
    """Unicode code point → glyph id from the best Unicode subtable (format 12, else 4)."""
    count, = _unpack(">H", cmap, 2)
    found: dict[tuple[int, int, int], int] = {}  # (platform, encoding, format) -> offset
    for i in range(count):
        platform, encoding, offset = _unpack(">HHI", cmap, 4 + 8 * i)
        if offset < len(cmap):
            found[(platform, encoding, _unpack(">H", cmap, offset)[0])] = offset
    for key in ((3, 10, 12), (0, 4, 12), (0, 6, 12), (3, 1, 4), (0, 3, 4), (0, 1, 4), (0, 0, 4)):
        if key in found:
            mapping = _format_12(cmap, found[key]) if key[2] == 12 else _format_4(cmap, found[key])
            return {c: g for c, g in mapping.items() if 0 < g < glyph_count}
    raise _bad("it has no Unicode cmap of format 4 or 12")


def _format_4(cmap: bytes, at: int) -> dict[int, int]:
    seg_x2, = _unpack(">H", cmap, at + 6)
    segments = seg_x2 // 2
    ends = _unpack(f">{segments}H", cmap, at + 14)
    starts = _unpack(f">{segments}H", cmap, at + 16 + seg_x2)
    deltas = _unpack(f">{segments}h", cmap, at + 16 + 2 * seg_x2)
    ranges_at = at + 16 + 3 * seg_x2
    ranges = _unpack(f">{segments}H", cmap, ranges_at)
    mapping = {}
    for i, (start, end, delta, range_offset) in enumerate(zip(starts, ends, deltas, ranges, strict=True)):
        if end < start:
            raise _bad("its cmap has a bad character range")
        for c in range(start, min(end, 0xFFFE) + 1):
            if c in mapping:
                raise _bad("its cmap's segments overlap")
            if range_offset == 0:
                mapping[c] = (c + delta) & 0xFFFF
            else:
                glyph, = _unpack(">H", cmap, ranges_at + 2 * i + range_offset + 2 * (c - start))
                if glyph:
                    mapping[c] = (glyph + delta) & 0xFFFF
    return mapping


def _format_12(cmap: bytes, at: int) -> dict[int, int]:
    groups, = _unpack(">I", cmap, at + 12)
    if at + 16 + 12 * groups > len(cmap):
        raise _bad("its cmap lists more groups than it holds")
    mapping: dict[int, int] = {}
    last = -1
    for i in range(groups):
        start, end, glyph = _unpack(">III", cmap, at + 16 + 12 * i)
        if not last < start <= end <= 0x10FFFF:  # sorted, not overlapping: the ranges add up to the code space
            raise _bad("its cmap has a bad character range")
        last = end
        mapping.update(zip(range(start, end + 1), range(glyph, glyph + end - start + 1), strict=True))
    return mapping


def _write_cmap(mapping: dict[int, int]) -> bytes:
    """A (3,1) format 4 subtable for the BMP, and a (3,10) format 12 one when any character
    lies beyond it."""
    segments: list[list[int]] = []   # [start, end, first glyph]
    for c in sorted(k for k in mapping if k < 0xFFFF):
        if segments and c == segments[-1][1] + 1 and mapping[c] == segments[-1][2] + c - segments[-1][0]:
            segments[-1][1] = c
        else:
            segments.append([c, c, mapping[c]])
    segments.append([0xFFFF, 0xFFFF, 0])
    n = len(segments)
    power = 1 << (n.bit_length() - 1)
    format_4 = struct.pack(">HHHHHHH", 4, 16 + 8 * n, 0, 2 * n, 2 * power, power.bit_length() - 1, 2 * n - 2 * power)
    format_4 += struct.pack(f">{n}H", *(s[1] for s in segments)) + b"\0\0"
    format_4 += struct.pack(f">{n}H", *(s[0] for s in segments))
    format_4 += struct.pack(f">{n}H", *((s[2] - s[0]) & 0xFFFF if s[0] != 0xFFFF else 1 for s in segments))
    format_4 += bytes(2 * n)
    subtables = [((3, 1), format_4)]
    if any(c > 0xFFFF for c in mapping):
        groups = sorted(mapping.items())
        format_12 = struct.pack(">HHIII", 12, 0, 16 + 12 * len(groups), 0, len(groups))
        format_12 += b"".join(struct.pack(">III", c, c, g) for c, g in groups)
        subtables.append(((3, 10), format_12))
    header = struct.pack(">HH", 0, len(subtables))
    offset, records, bodies = 4 + 8 * len(subtables), b"", b""
    for (platform, encoding), body in subtables:
        records += struct.pack(">HHI", platform, encoding, offset + len(bodies))
        bodies += body
    return header + records + bodies


def _full_name(name: bytes) -> str:
    """The font's full name (name ID 4): in English from a Windows or Macintosh record when
    there is one, else in any language."""
    if len(name) < 6:
        return ""
    count, strings = _unpack(">HH", name, 2)
    found: dict[int, str] = {}  # 0: the English name, 1: any other
    for i in range(count):
        platform, _encoding, language, name_id, length, offset = _unpack(">HHHHHH", name, 6 + 12 * i)
        if name_id == 4:
            raw = name[strings + offset:strings + offset + length]
            text = raw.decode("utf-16-be", "replace") if platform in (0, 3) else raw.decode("mac-roman", "replace")
            english = (platform, language) in ((3, 0x409), (1, 0))
            found.setdefault(0 if english else 1, text)
    return found.get(0) or found.get(1) or ""


def _checksum(data: bytes) -> int:
    padded = data + bytes(-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def _sfnt(tables: dict[bytes, bytes]) -> bytes:
    """The font file: the table directory (tags sorted) and the tables, 4-byte aligned, with
    head.checkSumAdjustment set."""
    tags = sorted(tables)
    power = 1 << (len(tags).bit_length() - 1)
    directory = struct.pack(">IHHHH", 0x00010000, len(tags), 16 * power, power.bit_length() - 1,
                            16 * len(tags) - 16 * power)
    offset, body, head_at = 12 + 16 * len(tags), b"", 0
    for tag in tags:
        data = tables[tag]
        if tag == b"head":
            head_at = offset + len(body)
        directory += struct.pack(">4sIII", tag, _checksum(data), offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    font = bytearray(directory + body)
    struct.pack_into(">I", font, head_at + 8, (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)
