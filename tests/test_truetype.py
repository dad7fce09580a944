"""ofd/truetype.py: the subset a document embeds, checked against fontTools (an independent
reader of the same format): every character's outline, components and advance as in the
original font, checksums right; the cmap writer and reader as inverse; damaged fonts fail
with our FontError and nothing else."""

import functools
import io
import struct

import pytest
from fontTools.ttLib import TTFont
from hypothesis import HealthCheck, given, settings, strategies as st

from ofd import truetype
from ofd.truetype import FontError, TrueTypeFont
from ofd.writer import CJK_FONT

TEXT = "食品经营许可证福州测试餐饮有限公司统一社会信用代码（副本）；2026年12月7日 ABCxyz0123456789-·—"


@functools.lru_cache(maxsize=1)
def _font() -> TrueTypeFont:
    with open(CJK_FONT, "rb") as f:
        return TrueTypeFont(f.read())


@functools.lru_cache(maxsize=1)
def _original() -> TTFont:
    return TTFont(CJK_FONT, fontNumber=0)


def _composite_chars(count: int) -> str:
    original = _original()
    glyf, found = original["glyf"], []
    for codepoint, name in sorted(original.getBestCmap().items()):
        if glyf[name].isComposite():
            found.append(chr(codepoint))
            if len(found) == count:
                return "".join(found)
    raise AssertionError("the font has no composite glyphs")


def test_the_subset_holds_each_characters_outline_and_advance_as_the_original():
    chars = set(TEXT + _composite_chars(5))
    data = _font().subset(chars)
    subset = TTFont(io.BytesIO(data), checkChecksums=2)  # raises on a wrong table checksum
    original = _original()
    ours, theirs = subset.getBestCmap(), original.getBestCmap()
    assert set(ours) == {ord(c) for c in chars}
    for c in chars:
        mine, source = subset["glyf"][ours[ord(c)]], original["glyf"][theirs[ord(c)]]
        assert mine.isComposite() == source.isComposite(), c
        mine_points, mine_ends, mine_flags = mine.getCoordinates(subset["glyf"])
        source_points, source_ends, source_flags = source.getCoordinates(original["glyf"])
        assert list(mine_points) == list(source_points) and mine_ends == source_ends, c
        assert list(mine_flags) == list(source_flags), c
        assert subset["hmtx"][ours[ord(c)]] == original["hmtx"][theirs[ord(c)]], c
        assert _font().advance(ord(c)) == original["hmtx"][theirs[ord(c)]][0] / original["head"].unitsPerEm
    assert subset["maxp"].numGlyphs < 200 and "GSUB" not in subset and "vmtx" not in subset
    whole = struct.unpack(f">{len(data) // 4}I", data)
    assert sum(whole) & 0xFFFFFFFF == 0xB1B0AFBA  # head.checkSumAdjustment makes the file's sum the magic
    subset.save(io.BytesIO())  # fontTools can write it back


def test_the_same_characters_give_the_same_bytes_and_missing_ones_are_left_out():
    assert _font().subset(set(TEXT)) == _font().subset(set(reversed(TEXT)))
    with_missing = TTFont(io.BytesIO(_font().subset(set("证\U0001F600\uE000"))))
    assert set(with_missing.getBestCmap()) == {ord("证")}
    empty = TTFont(io.BytesIO(_font().subset(set())))
    assert empty["maxp"].numGlyphs == 1  # .notdef alone


def test_too_many_characters_are_refused():
    cmap = _font().cmap
    with pytest.raises(truetype.InvalidInput):
        _font().subset({chr(c) for c in list(cmap)[:truetype.MAX_CHARS + 1]})


_MAPPINGS = st.dictionaries(st.integers(1, 0x10FFFF).filter(lambda c: c != 0xFFFF), st.integers(1, 999), max_size=60)


@given(_MAPPINGS)
def test_cmap_written_reads_back(mapping):
    assert truetype._read_cmap(truetype._write_cmap(mapping), 1000) == mapping


@given(st.dictionaries(st.integers(1, 0xFFFE), st.integers(1, 999), max_size=60))
def test_cmap_format_4_alone_reads_back(mapping):
    written = truetype._write_cmap(mapping)
    assert struct.unpack(">H", written[2:4]) == (1,)  # no format 12 for the BMP alone
    assert truetype._read_cmap(written, 1000) == mapping


@functools.lru_cache(maxsize=1)
def _small() -> bytes:
    return _font().subset(set("证照"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_damaged_font_fails_with_our_error(data):
    font = bytearray(_small())
    for _ in range(data.draw(st.integers(1, 8))):
        font[data.draw(st.integers(0, len(font) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(font)))
    try:
        read = TrueTypeFont(bytes(font[:cut] if data.draw(st.booleans()) else font))
        read.subset(set("证照"))
    except FontError:
        pass


def test_a_cff_font_or_a_collection_without_the_font_is_refused():
    with pytest.raises(FontError, match="CFF"):
        TrueTypeFont(b"OTTO" + bytes(8))
    with pytest.raises(FontError, match="no font number 3"):
        TrueTypeFont(b"ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10", font_number=3)
