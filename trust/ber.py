"""X.690 BER and DER by hand: read as a tree of offsets, write as TLVs. The codec under the
GB/T 38540 seal structures (seal/ses.py, whose readers need what a declarative codec hides).

Reading keeps every value's exact bytes (signatures are verified over them, never over a
re-encoding) and notes the BER forms it meets (indefinite and non-minimal lengths,
constructed strings) instead of refusing them. A Reader gives typed values and collects
the deviations it tolerates as warnings, or as errors when the value is readable but
wrong. What cannot be read at all raises BerError; the standard's module says whose data
it was. Builders write DER.
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

from trust.errors import InvalidInput
from trust.report import Message

MAX_DEPTH = 48                 # nesting of the structures is < 10; BER indefinite lengths recurse

# universal tags (first identifier octet)
BOOLEAN, INTEGER, BIT_STRING, OCTET_STRING, OID = 0x01, 0x02, 0x03, 0x04, 0x06
UTF8_STRING, PRINTABLE_STRING, T61_STRING, IA5_STRING = 0x0C, 0x13, 0x14, 0x16
UTC_TIME, GENERALIZED_TIME, VISIBLE_STRING, BMP_STRING = 0x17, 0x18, 0x1A, 0x1E
SEQUENCE, CONTEXT_0 = 0x30, 0xA0
STRING_TAGS = {UTF8_STRING, PRINTABLE_STRING, T61_STRING, IA5_STRING, VISIBLE_STRING, BMP_STRING}


class BerError(InvalidInput):
    """BER or DER that cannot be read; en and zh say where and why."""


def _fail(en: str, zh: str) -> BerError:
    return BerError(en, zh)


# ---------------------------------------------------------------- reading

class Node:
    """One TLV of a BER/DER buffer, by offsets; children are parsed on demand."""

    __slots__ = ("_children", "ber", "body", "body_end", "buf", "depth", "end", "start", "tag")

    def __init__(self, buf, tag, start, body, body_end, end, depth, ber):
        self.buf, self.tag, self.start, self.body, self.body_end, self.end = buf, tag, start, body, body_end, end
        self.depth, self.ber, self._children = depth, ber, None

    @property
    def raw(self) -> bytes:
        return self.buf[self.start:self.end]

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def children(self) -> list["Node"]:
        if self._children is None:
            if not self.constructed:
                raise _fail(f"expected a constructed value at offset {self.start}", f"偏移 {self.start} 处应为构造类型")
            self._children = _read_all(self.buf, self.body, self.body_end, self.depth + 1, self.ber)
        return self._children

    def content(self) -> bytes:
        """Primitive contents; a BER constructed string is the concatenation of its segments."""
        if not self.constructed:
            return self.buf[self.body:self.body_end]
        self.ber.add("constructed string")
        parts = [c.content() for c in self.children()]
        if self.tag == BIT_STRING | 0x20:  # each segment leads with its unused-bit count; only the last's counts
            return (parts[-1][:1] if parts else b"") + b"".join(p[1:] for p in parts)
        return b"".join(parts)


def _read(buf: bytes, pos: int, limit: int, depth: int, ber: set) -> Node:
    if depth > MAX_DEPTH:
        raise _fail("nesting too deep", "嵌套层次过深")
    if pos + 2 > limit:
        raise _fail(f"truncated at offset {pos}", f"数据在偏移 {pos} 处被截断")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise _fail(f"unexpected high tag number at offset {pos}", f"偏移 {pos} 处出现不支持的标签")
    first = buf[pos + 1]
    body = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not tag & 0x20:
            raise _fail(f"indefinite length on a primitive value at offset {pos}", f"偏移 {pos} 处基本类型使用了不定长编码")
        ber.add("indefinite length")
        end = body
        while True:
            if end + 2 > limit:
                raise _fail(f"missing end-of-contents at offset {pos}", f"偏移 {pos} 处缺少结束标记")
            if buf[end] == 0 and buf[end + 1] == 0:
                return Node(buf, tag, pos, body, end, end + 2, depth, ber)
            end = _read(buf, end, limit, depth + 1, ber).end
    else:
        count = first & 0x7F
        if count > 4 or body + count > limit:
            raise _fail(f"impossible length at offset {pos}", f"偏移 {pos} 处长度不合法")
        length = int.from_bytes(buf[body:body + count], "big")
        if length < 0x80 or buf[body] == 0:
            ber.add("non-minimal length")
        body += count
    if body + length > limit:
        raise _fail(f"length {length} at offset {pos} runs past the end of the data",
                    f"偏移 {pos} 处的长度 {length} 超出数据末尾")
    return Node(buf, tag, pos, body, body + length, body + length, depth, ber)


def _read_all(buf: bytes, pos: int, end: int, depth: int, ber: set) -> list[Node]:
    nodes = []
    while pos < end:
        node = _read(buf, pos, end, depth, ber)
        nodes.append(node)
        pos = node.end
    return nodes


def read(data: bytes) -> tuple[Node, set]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail("input must be bytes", "输入必须是字节串")
    data, ber = bytes(data), set[str]()
    node = _read(data, 0, len(data), 0, ber)
    if node.end != len(data):
        raise _fail(f"{len(data) - node.end} trailing bytes after the structure", f"结构之后有 {len(data) - node.end} 字节多余数据")
    return node, ber


def read_inner(data: bytes, reader: "Reader") -> Node:
    """The first TLV of ``data``, a structure held inside another (an OCTET STRING's content),
    with the outer one's BER notes; the caller says what trailing bytes mean."""
    return _read(data, 0, len(data), 1, reader.ber)


def to_der(node: Node) -> bytes:
    """DER re-encoding of a BER tree (definite minimal lengths, primitive strings).
    Used only as a last resort for old producers that signed the DER form of what they wrote."""
    if node.constructed and node.tag & ~0x20 not in STRING_TAGS | {BIT_STRING, OCTET_STRING}:
        return tlv(node.tag, b"".join(to_der(c) for c in node.children()))
    return tlv(node.tag & ~0x20, node.content())


# ---------------------------------------------------------------- typed readers

class Reader:
    """Typed access to nodes, collecting the deviations it tolerates."""

    def __init__(self, ber: set):
        self.ber = ber
        self.warnings: list[Message] = []
        self.errors: list[Message] = []   # readable, but wrong: the verifier fails the format check

    def fault(self, *, zh: str, en: str) -> None:
        self.errors.append(Message(zh=zh, en=en))

    def warn(self, zh: str, en: str) -> None:
        message = Message(zh=zh, en=en)
        if message not in self.warnings:
            self.warnings.append(message)

    def expect(self, node: Node, tag: int, what: str, what_zh: str) -> Node:
        if node.tag != tag:
            raise _fail(f"{what}: expected tag 0x{tag:02X}, found 0x{node.tag:02X} at offset {node.start}",
                        f"{what_zh}：应为标签 0x{tag:02X}，在偏移 {node.start} 处为 0x{node.tag:02X}")
        return node

    def seq(self, node: Node, what: str, what_zh: str, sizes: Sequence[int]) -> list[Node]:
        self.expect(node, SEQUENCE, what, what_zh)
        items = node.children()
        if len(items) not in sizes:
            raise _fail(f"{what} has {len(items)} elements, expected {' or '.join(map(str, sizes))}",
                        f"{what_zh}有 {len(items)} 个元素，应为 {' 或 '.join(map(str, sizes))} 个")
        return items

    def integer(self, node: Node, what: str, what_zh: str) -> int:
        self.expect(node, INTEGER, what, what_zh)
        body = node.content()
        if not body or len(body) > 32:
            raise _fail(f"{what} is not a usable INTEGER", f"{what_zh}不是可用的 INTEGER")
        return int.from_bytes(body, "big", signed=True)

    def string(self, node: Node, tag: int, what: str, what_zh: str) -> str:
        if node.tag & ~0x20 not in STRING_TAGS:
            raise _fail(f"{what} is not a character string (tag 0x{node.tag:02X})",
                        f"{what_zh}不是字符串类型（标签 0x{node.tag:02X}）")
        if node.tag & ~0x20 != tag:
            self.warn(f"{what_zh}的字符串类型不符合标准", f"{what} has a string type other than the standard's")
        body = node.content()
        if body.endswith(b"\x00"):
            self.warn(f"{what_zh}末尾填充了 NUL 字节", f"{what} is padded with NUL bytes")
            body = body.rstrip(b"\x00")
        try:
            return body.decode("utf-16-be" if node.tag & ~0x20 == BMP_STRING else "utf-8")
        except UnicodeDecodeError:
            self.warn(f"{what_zh}不是合法的 UTF-8 文本", f"{what} is not valid UTF-8")
            return body.decode("gb18030", errors="replace")

    def octets(self, node: Node, what: str, what_zh: str, *, also_bit_string=False) -> bytes:
        base = node.tag & ~0x20
        if base == OCTET_STRING:
            return node.content()
        if also_bit_string and base == BIT_STRING:
            return self.bits(node, what, what_zh)
        raise _fail(f"{what} is not an OCTET STRING (tag 0x{node.tag:02X})", f"{what_zh}不是 OCTET STRING")

    def bits(self, node: Node, what: str, what_zh: str, *, also_octet_string=False) -> bytes:
        base = node.tag & ~0x20
        if base == OCTET_STRING and also_octet_string:
            self.warn(f"{what_zh}使用了 OCTET STRING 而非 BIT STRING", f"{what} is an OCTET STRING, not a BIT STRING")
            return node.content()
        if base != BIT_STRING:
            raise _fail(f"{what} is not a BIT STRING (tag 0x{node.tag:02X})", f"{what_zh}不是 BIT STRING")
        return self._whole_bytes(node.content(), what, what_zh)

    def _whole_bytes(self, body: bytes, what: str, what_zh: str) -> bytes:
        """Every BIT STRING here holds bytes (a signature, a digest, a token). Some producers
        write a non-zero unused-bits count over whole bytes (the trailing zero bits of the last
        byte, counted as for a named-bit list): the value is the same, so it is read as whole
        bytes with a warning. Unused bits that are not zero mean the value is not what the count
        says: an error of the format check (the bytes are kept, so the other checks still run)."""
        if len(body) < 2 or body[0] > 7:
            raise _fail(f"{what} is not a BIT STRING of whole bytes (unused-bits count {body[:1].hex() or 'missing'})",
                        f"{what_zh}不是整字节的 BIT STRING（未用位数 {body[:1].hex() or '缺失'}）")
        unused, value = body[0], body[1:]
        if unused:
            mask = (1 << unused) - 1
            if value[-1] & mask:
                self.fault(zh=f"{what_zh}声明末尾 {unused} 位未用，但这些位不为零",
                           en=f"{what} declares {unused} unused bits that are not zero")
            else:
                self.warn(zh=f"{what_zh}声明末尾 {unused} 位未用，但内容是整字节，按整字节读取",
                          en=f"{what} declares {unused} unused bits but holds whole bytes; read as whole bytes")
        return value

    def oid(self, node: Node, what: str, what_zh: str) -> str:
        self.expect(node, OID, what, what_zh)
        return decode_oid(node.content())

    def time(self, node: Node, what: str, what_zh: str, standard: int) -> datetime:
        if node.tag not in (UTC_TIME, GENERALIZED_TIME):
            raise _fail(f"{what} is not a time (tag 0x{node.tag:02X})", f"{what_zh}不是时间类型")
        if node.tag != standard:
            self.warn(f"{what_zh}使用了{'UTCTime' if node.tag == UTC_TIME else 'GeneralizedTime'}，与标准不符",
                      f"{what} is {'a UTCTime' if node.tag == UTC_TIME else 'a GeneralizedTime'}, not what the standard uses")
        text = node.content().decode("ascii", errors="replace")
        return parse_time(text, node.tag, self, what, what_zh)


def decode_oid(body: bytes) -> str:
    if not body or body[-1] & 0x80 or len(body) > 64:
        raise _fail("invalid OBJECT IDENTIFIER", "对象标识符不合法")
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def encode_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


_TIME = re.compile(r"(\d{12})(\d{2})?(?:[.,](\d{1,9}))?(Z|[+-]\d{4})?")
_TEXT_TIME = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?")


def _leading_digits(text: str) -> str:
    return text[:len(text) - len(text.lstrip("0123456789"))]


def parse_time(text: str, tag: int, reader: Reader, what: str, what_zh: str) -> datetime:
    """UTCTime or GeneralizedTime text → aware datetime. Tolerates GeneralizedTime with a
    two-digit year (10 or 12 digits are read as YYMMDDhhmm[ss], the usual producer slip,
    not as a 4-digit year without seconds) or without a zone (read as UTC), and fractions."""
    text = text.strip().rstrip("\x00")
    digits = _leading_digits(text)
    two_digit = tag == UTC_TIME or len(digits) in (10, 12)
    if two_digit:
        if tag == GENERALIZED_TIME:
            reader.warn(f"{what_zh}的 GeneralizedTime 使用了两位年份", f"{what} is a GeneralizedTime with a two-digit year")
        year = int(text[:2]) if text[:2].isdigit() else -1
        text = ("19" if year >= 50 else "20") + text
    m = _TIME.fullmatch(text)
    if not m:
        raise _fail(f"{what} is not a valid time: {text[:40]!r}", f"{what_zh}不是合法的时间：{text[:40]!r}")
    head, seconds, fraction, zone = m.groups()
    if zone is None:
        reader.warn(f"{what_zh}没有时区标记“Z”，按 UTC 读取", f"{what} has no time zone ('Z'); read as UTC")
    return _datetime(head[:4], head[4:6], head[6:8], head[8:10], head[10:12], seconds or "0", fraction,
                     zone or "Z", what, what_zh)


def parse_time_text(text: str, reader: Reader, what: str, what_zh: str) -> datetime:
    """Free-form time strings of v1 producers: ``yyyy-MM-dd HH:mm:ss`` (local: China time),
    ISO 8601, or the digits of a GeneralizedTime."""
    text = text.strip().rstrip("\x00")
    m = _TEXT_TIME.fullmatch(text)
    if m:
        y, mo, d, h, mi, s, fraction, zone = m.groups()
        if zone is None:
            reader.warn(f"{what_zh}没有时区，按北京时间读取", f"{what} has no time zone; read as China time (UTC+8)")
            zone = "+0800"  # v1 producers (ofdrw) write the local time of a Chinese server
        return _datetime(y, mo, d, h, mi, s or "0", fraction, zone.replace(":", ""), what, what_zh)
    if text[:1].isdigit():
        return parse_time(text, GENERALIZED_TIME if len(_leading_digits(text)) >= 14 else UTC_TIME,
                          reader, what, what_zh)
    raise _fail(f"{what} is not a time: {text[:40]!r}", f"{what_zh}不是时间：{text[:40]!r}")


def _datetime(y, mo, d, h, mi, s, fraction, zone, what, what_zh) -> datetime:
    try:
        offset = UTC if zone == "Z" else timezone(
            (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
        value = datetime(int(y), int(mo), int(d), int(h), int(mi), min(int(s), 59),
                         int((fraction or "0").ljust(6, "0")[:6]), tzinfo=offset)
    except ValueError:
        raise _fail(f"{what} is not a valid date", f"{what_zh}不是合法的日期") from None
    return value.astimezone(UTC)


# ---------------------------------------------------------------- building (DER)

def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def ia5_string(text: str, what: str, what_zh: str) -> bytes:
    if not text.isascii():
        raise InvalidInput(f"{what} must be ASCII (IA5String)", f"{what_zh}必须是 ASCII 字符（IA5String）")
    return tlv(IA5_STRING, text.encode())


def generalized_time(value: datetime) -> bytes:
    if value.tzinfo is None:
        raise InvalidInput("times must carry a time zone", "时间必须带时区")
    return tlv(GENERALIZED_TIME, value.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode())


def bit_string(value: bytes) -> bytes:
    return tlv(BIT_STRING, b"\x00" + value)
