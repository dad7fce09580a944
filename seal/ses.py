"""GB/T 38540-2020 (v4) and GM/T 0031-2014 (v1) electronic seal structures: parse and build.

``SESeal`` (Seal.esl) and ``SES_Signature`` (SignedValue.dat); the ASN.1 and the signing
rules are in ../shared/spec/eseal-gbt38540.md. The reader is hand-written over a BER
tree rather than declarative: real producers deviate (BER indefinite lengths, OCTET
STRING where BIT STRING is due, times without ``Z``, raw r‖s signatures, NUL-padded
names), and every signed part must be kept as the exact bytes received, because
signatures are verified over those, never over a re-encoding. Each tolerated deviation
is recorded as a warning on the parsed value. The builders write DER, v4 only.
"""

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

from trust import oids
from trust.clock import utc_now
from trust.errors import InvalidInput
from trust.report import Message
from trust.sm2 import decode_signature, encode_signature

MAX_DEPTH = 48                 # nesting of the structures is < 10; BER indefinite lengths recurse

# universal tags (first identifier octet)
BOOLEAN, INTEGER, BIT_STRING, OCTET_STRING, OID = 0x01, 0x02, 0x03, 0x04, 0x06
UTF8_STRING, PRINTABLE_STRING, T61_STRING, IA5_STRING = 0x0C, 0x13, 0x14, 0x16
UTC_TIME, GENERALIZED_TIME, VISIBLE_STRING, BMP_STRING = 0x17, 0x18, 0x1A, 0x1E
SEQUENCE, CONTEXT_0 = 0x30, 0xA0
_STRINGS = {UTF8_STRING, PRINTABLE_STRING, T61_STRING, IA5_STRING, VISIBLE_STRING, BMP_STRING}

PICTURE_TYPES = {"PNG", "JPG", "JPEG", "GIF", "BMP", "SVG", "OFD", "TIF", "TIFF"}
# The leading bytes of each binary picture type (SVG is text and has none).
PICTURE_MAGIC = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPG": (b"\xff\xd8\xff",), "GIF": (b"GIF87a", b"GIF89a"),
                 "BMP": (b"BM",), "OFD": (b"PK\x03\x04",)}


class SealFormatError(InvalidInput):
    """A SESeal or SES_Signature that cannot be read."""


def _fail(en: str, zh: str) -> SealFormatError:
    return SealFormatError(f"malformed electronic seal data: {en}", f"电子印章数据格式错误：{zh}")


# ---------------------------------------------------------------- BER tree

class _Node:
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

    def children(self) -> list["_Node"]:
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


def _read(buf: bytes, pos: int, limit: int, depth: int, ber: set) -> _Node:
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
                return _Node(buf, tag, pos, body, end, end + 2, depth, ber)
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
    return _Node(buf, tag, pos, body, body + length, body + length, depth, ber)


def _read_all(buf: bytes, pos: int, end: int, depth: int, ber: set) -> list[_Node]:
    nodes = []
    while pos < end:
        node = _read(buf, pos, end, depth, ber)
        nodes.append(node)
        pos = node.end
    return nodes


def _root(data: bytes) -> tuple[_Node, set]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail("input must be bytes", "输入必须是字节串")
    data, ber = bytes(data), set()
    node = _read(data, 0, len(data), 0, ber)
    if node.end != len(data):
        raise _fail(f"{len(data) - node.end} trailing bytes after the structure", f"结构之后有 {len(data) - node.end} 字节多余数据")
    return node, ber


def _der(node: _Node) -> bytes:
    """DER re-encoding of a BER tree (definite minimal lengths, primitive strings).
    Used only as a last resort for old producers that signed the DER form of what they wrote."""
    if node.constructed and node.tag & ~0x20 not in _STRINGS | {BIT_STRING, OCTET_STRING}:
        return tlv(node.tag, b"".join(_der(c) for c in node.children()))
    return tlv(node.tag & ~0x20, node.content())


# ---------------------------------------------------------------- typed readers

class _Reader:
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

    def expect(self, node: _Node, tag: int, what: str, what_zh: str) -> _Node:
        if node.tag != tag:
            raise _fail(f"{what}: expected tag 0x{tag:02X}, found 0x{node.tag:02X} at offset {node.start}",
                        f"{what_zh}：应为标签 0x{tag:02X}，在偏移 {node.start} 处为 0x{node.tag:02X}")
        return node

    def seq(self, node: _Node, what: str, what_zh: str, sizes: Sequence[int]) -> list[_Node]:
        self.expect(node, SEQUENCE, what, what_zh)
        items = node.children()
        if len(items) not in sizes:
            raise _fail(f"{what} has {len(items)} elements, expected {' or '.join(map(str, sizes))}",
                        f"{what_zh}有 {len(items)} 个元素，应为 {' 或 '.join(map(str, sizes))} 个")
        return items

    def integer(self, node: _Node, what: str, what_zh: str) -> int:
        self.expect(node, INTEGER, what, what_zh)
        body = node.content()
        if not body or len(body) > 32:
            raise _fail(f"{what} is not a usable INTEGER", f"{what_zh}不是可用的 INTEGER")
        return int.from_bytes(body, "big", signed=True)

    def string(self, node: _Node, tag: int, what: str, what_zh: str) -> str:
        if node.tag & ~0x20 not in _STRINGS:
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

    def octets(self, node: _Node, what: str, what_zh: str, *, also_bit_string=False) -> bytes:
        base = node.tag & ~0x20
        if base == OCTET_STRING:
            return node.content()
        if also_bit_string and base == BIT_STRING:
            return self.bits(node, what, what_zh)
        raise _fail(f"{what} is not an OCTET STRING (tag 0x{node.tag:02X})", f"{what_zh}不是 OCTET STRING")

    def bits(self, node: _Node, what: str, what_zh: str, *, also_octet_string=False) -> bytes:
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

    def oid(self, node: _Node, what: str, what_zh: str) -> str:
        self.expect(node, OID, what, what_zh)
        return decode_oid(node.content())

    def time(self, node: _Node, what: str, what_zh: str, standard: int) -> datetime:
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


def parse_time(text: str, tag: int, reader: _Reader, what: str, what_zh: str) -> datetime:
    """UTCTime or GeneralizedTime text → aware datetime. Tolerates GeneralizedTime with a
    two-digit year (10 or 12 digits are read as YYMMDDhhmm[ss], the usual producer slip,
    not as a 4-digit year without seconds) or without a zone (read as UTC), and fractions."""
    text = text.strip().rstrip("\x00")
    digits = re.match(r"\d*", text).group()
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


def parse_time_text(text: str, reader: _Reader, what: str, what_zh: str) -> datetime:
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
        return parse_time(text, GENERALIZED_TIME if len(re.match(r"\d*", text).group()) >= 14 else UTC_TIME,
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


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- parsed values

@dataclass(frozen=True)
class CertDigest:
    type: str          # digest algorithm label, e.g. "SM3"
    value: bytes       # hash of the signer certificate DER


@dataclass(frozen=True)
class ExtData:
    extn_id: str
    critical: bool
    extn_value: bytes


@dataclass(frozen=True)
class SealInfo:
    """SES_SealInfo; ``raw`` is the exact received TLV (what the v4 maker signs)."""

    raw: bytes
    header_id: str
    version: int                    # SES_Header.version as written
    vid: str
    es_id: str
    type: int
    name: str
    cert_list_type: int             # 1 certificates, 2 digests (v1: always 1)
    cert_list: tuple[bytes, ...]
    cert_digest_list: tuple[CertDigest, ...]
    create_date: datetime
    valid_start: datetime
    valid_end: datetime
    picture_type: str
    picture_data: bytes
    picture_width: int              # millimetres
    picture_height: int
    ext_datas: tuple[ExtData, ...]


@dataclass(frozen=True)
class Seal:
    """SESeal (v1: GM/T 0031 two-element layout; v4/v5: GB/T 38540 four/five elements)."""

    raw: bytes
    layout: int                     # 1 (GM/T 0031) or 4 (GB/T 38540, also v5), by structure
    seal_info: SealInfo
    cert: bytes                     # maker (制章者) certificate DER
    sign_alg_id: str
    signed_value: bytes             # maker signature as found (DER SM2Signature or raw r‖s)
    cert_tlv: bytes                 # exact TLVs, for v1's SEQUENCE{esealInfo, cert, alg}
    sign_alg_tlv: bytes
    time_stamp: bytes | None
    warnings: tuple[Message, ...]
    der_fallback: bytes | None = None   # DER re-encoding of the v1 signed SEQUENCE when received as BER
    errors: tuple[Message, ...] = ()    # encoding faults that make it invalid, though readable

    @property
    def version(self) -> int:
        return self.seal_info.version

    def maker_signed_messages(self) -> tuple[tuple[bytes, Message | None], ...]:
        """Candidate messages of the maker's signature, preferred first, each with the
        warning to give when it is the one that verifies (eseal-gbt38540.md §5, §7)."""
        seq3 = tlv(SEQUENCE, self.seal_info.raw + self.cert_tlv + self.sign_alg_tlv)
        if self.layout == 1:
            candidates = [(seq3, None)]
        else:
            candidates = [(self.seal_info.raw, None),
                          (seq3, Message("制章者签名按 GM/T 0031 规则（印章信息、证书与算法）计算",
                                         "the maker signed SEQUENCE{sealInfo, cert, alg} (the GM/T 0031 rule)"))]
        if self.der_fallback is not None:
            candidates.append((self.der_fallback, Message("制章者签名仅在 DER 重新编码后验证通过",
                                                          "the maker signature verifies only over a DER re-encoding")))
        return tuple(candidates)

    def summary(self) -> dict:
        return {"esID": self.seal_info.es_id, "name": self.seal_info.name, "version": self.version}


@dataclass(frozen=True)
class SesSignature:
    """SES_Signature; ``tbs_raw`` is the exact received TBS_Sign (what the signer signs)."""

    raw: bytes
    layout: int                     # 1 or 4, by structure
    version: int                    # TBS_Sign.version
    tbs_raw: bytes
    seal: Seal                      # embedded seal; seal.raw = the exact embedded bytes
    time_info: datetime | None
    time_info_text: str             # as written (v1 may carry a string or a token)
    data_hash: bytes
    property_info: str
    cert: bytes                     # signer certificate DER
    signature_alg_id: str
    signature: bytes                # as found (DER SM2Signature or raw r‖s)
    time_stamp: bytes | None        # RFC 3161 token over the signature value
    ext_datas: tuple[ExtData, ...]
    warnings: tuple[Message, ...]
    errors: tuple[Message, ...] = ()    # encoding faults that make it invalid, though readable


# ---------------------------------------------------------------- parsing

def parse_seal(der: bytes) -> Seal:
    """Read a Seal.esl (SESeal, v1/v4/v5). Raises SealFormatError."""
    node, ber = _root(der)
    reader = _Reader(ber)
    seal = _seal(node, reader, "SESeal", "电子印章")
    return _with_ber_warning(seal, reader)


def parse_signature(der: bytes) -> SesSignature:
    """Read a SignedValue.dat (SES_Signature, v1/v4/v5). Raises SealFormatError."""
    node, ber = _root(der)
    reader = _Reader(ber)
    items = reader.seq(node, "SES_Signature", "电子签章数据", (2, 4, 5))
    if len(items) == 2:
        result = _signature_v1(node, items, reader)
    else:
        result = _signature_v4(node, items, reader)
    return _with_ber_warning(result, reader)


def _with_ber_warning(value, reader: _Reader):
    for signature in (value.signed_value if isinstance(value, Seal) else value.signature,
                      *(() if isinstance(value, Seal) else (value.seal.signed_value,))):
        try:
            _value, note = signature_value(signature)
        except InvalidInput:
            continue  # unreadable: the verifier reports it as a failed signature
        if note:
            reader.warn(note.zh, note.en)
    if reader.ber:
        reader.warn("数据使用了 BER 编码而非 DER（" + "、".join(sorted(reader.ber)) + "）",
                    "the data is BER, not DER (" + ", ".join(sorted(reader.ber)) + ")")
    return replace(value, warnings=tuple(reader.warnings), errors=tuple(reader.errors))


def _seal(node: _Node, reader: _Reader, what: str, what_zh: str) -> Seal:
    items = reader.seq(node, what, what_zh, (2, 4, 5))
    if len(items) == 2:  # GM/T 0031: SESeal{esealInfo, SES_SignInfo}
        info = _seal_info(items[0], reader, layout=1)
        sign_info = items[1]
        if sign_info.tag & ~0x20 in (BIT_STRING, OCTET_STRING):
            reader.warn("SES_SignInfo 被包装在 BIT/OCTET STRING 中", "SES_SignInfo is wrapped in a BIT/OCTET STRING")
            inner = reader.bits(sign_info, "SES_SignInfo", "印章签名信息", also_octet_string=True) \
                if sign_info.tag & ~0x20 == BIT_STRING else sign_info.content()
            sign_info = _read_whole(inner, reader, "SES_SignInfo", "印章签名信息")
        cert_node, alg_node, value_node = reader.seq(sign_info, "SES_SignInfo", "印章签名信息", (3,))
        if info.version != 1:
            reader.warn(f"印章头版本号为 {info.version}，而结构为 GM/T 0031（版本 1）",
                        f"the seal header says version {info.version} but the layout is GM/T 0031 (version 1)")
        fallback = None
        if reader.ber:  # everything signed has been read by now, so any BER in it is recorded
            fallback = tlv(SEQUENCE, _der(items[0]) + _der(cert_node) + _der(alg_node))
        return Seal(raw=node.raw, layout=1, seal_info=info,
                    cert=reader.octets(cert_node, "maker certificate", "制章者证书"),
                    sign_alg_id=reader.oid(alg_node, "signature algorithm", "签名算法标识"),
                    signed_value=reader.bits(value_node, "maker signature", "制章者签名值", also_octet_string=True),
                    cert_tlv=cert_node.raw, sign_alg_tlv=alg_node.raw, time_stamp=None, warnings=(),
                    der_fallback=fallback)
    info = _seal_info(items[0], reader, layout=4)
    if info.version not in (4, 5):
        reader.warn(f"印章头版本号为 {info.version}，而结构为 GB/T 38540（版本 4）",
                    f"the seal header says version {info.version} but the layout is GB/T 38540 (version 4)")
    time_stamp = None
    if len(items) == 5:  # v5: timeStamp [0] EXPLICIT BIT STRING, or untagged
        time_stamp = _optional_bits(items[4], reader, "seal time stamp", "印章时间戳")
    fallback = _der(items[0]) if reader.ber else None
    return Seal(raw=node.raw, layout=4, seal_info=info,
                cert=reader.octets(items[1], "maker certificate", "制章者证书"),
                sign_alg_id=reader.oid(items[2], "signature algorithm", "签名算法标识"),
                signed_value=reader.bits(items[3], "maker signature", "制章者签名值", also_octet_string=True),
                cert_tlv=items[1].raw, sign_alg_tlv=items[2].raw, time_stamp=time_stamp, warnings=(),
                der_fallback=fallback if fallback != items[0].raw else None)


def _read_whole(data: bytes, reader: _Reader, what: str, what_zh: str) -> _Node:
    node = _read(data, 0, len(data), 1, reader.ber)
    if node.end != len(data):
        raise _fail(f"{what} has trailing bytes", f"{what_zh}之后有多余数据")
    return node


def _optional_bits(node: _Node, reader: _Reader, what: str, what_zh: str) -> bytes:
    if node.tag == CONTEXT_0:
        inner = node.children()
        if len(inner) != 1:
            raise _fail(f"{what} [0] must hold one value", f"{what_zh} [0] 中应只有一个值")
        return reader.bits(inner[0], what, what_zh, also_octet_string=True)
    reader.warn(f"{what_zh}没有使用 [0] 显式标签", f"{what} is not wrapped in [0] EXPLICIT")
    return reader.bits(node, what, what_zh, also_octet_string=True)


def _seal_info(node: _Node, reader: _Reader, layout: int) -> SealInfo:
    items = reader.seq(node, "SES_SealInfo", "印章信息", (4, 5))
    header, es_id, prop, picture = items[:4]
    h_id, h_version, h_vid = reader.seq(header, "SES_Header", "印章头", (3,))
    header_id = reader.string(h_id, IA5_STRING, "header id", "印章头标识")
    if header_id != "ES":
        raise _fail(f"the header id is {header_id[:20]!r}, not 'ES'", f"印章头标识为 {header_id[:20]!r}，不是“ES”")
    props = reader.seq(prop, "SES_ESPropertyInfo", "印章属性", (6, 7))
    if (len(props) == 6) != (layout == 1):
        reader.warn("印章属性的结构与印章版本不一致", "the seal property layout does not match the seal's version")
    standard_time = UTC_TIME if layout == 1 else GENERALIZED_TIME
    if len(props) == 7:
        cert_list_type = reader.integer(props[2], "certListType", "证书列表类型")
        cert_list_node, times = props[3], props[4:]
    else:
        cert_list_type, cert_list_node, times = 1, props[2], props[3:]
    certs, digests = _cert_list(cert_list_node, cert_list_type, reader)
    create_date, valid_start, valid_end = (
        reader.time(t, w, wz, standard_time)
        for t, w, wz in zip(times, ("createDate", "validStart", "validEnd"), ("制作日期", "有效期起始", "有效期终止"), strict=True))
    pic = reader.seq(picture, "SES_ESPictrueInfo", "印章图像", (4,))
    picture_type = reader.string(pic[0], IA5_STRING, "picture type", "图像类型")
    if picture_type.upper() not in PICTURE_TYPES:
        reader.warn(f"未知的印章图像类型 {picture_type[:20]!r}", f"unknown seal picture type {picture_type[:20]!r}")
    picture_data = reader.octets(pic[1], "picture data", "图像数据")
    magic = PICTURE_MAGIC.get("JPG" if picture_type.upper() == "JPEG" else picture_type.upper())
    if magic and not picture_data.startswith(magic):
        # the maker signed it as it is; the picture is not what its type says, so a viewer may not show it
        reader.warn(f"印章图像数据不是其类型 {picture_type[:20]} 的格式", f"the seal picture is not a {picture_type[:20]} file")
    ext_datas = _ext_datas(items[4], reader) if len(items) == 5 else ()
    return SealInfo(
        raw=node.raw, header_id=header_id,
        version=reader.integer(h_version, "header version", "印章头版本号"),
        vid=reader.string(h_vid, IA5_STRING, "vendor id", "厂商标识"),
        es_id=reader.string(es_id, IA5_STRING, "esID", "电子印章标识"),
        type=reader.integer(props[0], "seal type", "印章类型"),
        name=reader.string(props[1], UTF8_STRING, "seal name", "印章名称"),
        cert_list_type=cert_list_type, cert_list=certs, cert_digest_list=digests,
        create_date=create_date, valid_start=valid_start, valid_end=valid_end,
        picture_type=picture_type,
        picture_data=picture_data,
        picture_width=reader.integer(pic[2], "picture width", "图像宽度"),
        picture_height=reader.integer(pic[3], "picture height", "图像高度"),
        ext_datas=ext_datas)


def _cert_list(node: _Node, cert_list_type: int, reader: _Reader):
    reader.expect(node, SEQUENCE, "certList", "证书列表")
    entries = node.children()
    # The CHOICE is untagged; certListType says which arm (§2). Trust the entries' shape if it disagrees.
    as_digests = cert_list_type == 2
    if entries and (entries[0].tag == SEQUENCE) != as_digests:
        reader.warn("证书列表类型与列表内容不一致", "certListType does not match the certificate list's content")
        as_digests = entries[0].tag == SEQUENCE
    elif cert_list_type not in (1, 2):
        reader.warn(f"未知的证书列表类型 {cert_list_type}", f"unknown certListType {cert_list_type}")
    if not as_digests:
        certs = []
        for entry in entries:
            if entry.tag & ~0x20 == OCTET_STRING:
                certs.append(entry.content())
            else:
                reader.warn("证书列表中有不是证书的项，已忽略", "an entry of the certificate list is not a certificate; ignored")
        return tuple(certs), ()
    digests = []
    for entry in entries:
        kind, value = reader.seq(entry, "CertDigestObj", "证书杂凑", (2,))
        digests.append(CertDigest(reader.string(kind, PRINTABLE_STRING, "digest type", "杂凑类型"),
                                  reader.octets(value, "certificate digest", "证书杂凑值")))
    return (), tuple(digests)


def _ext_datas(node: _Node, reader: _Reader) -> tuple[ExtData, ...]:
    if node.tag == CONTEXT_0:
        inner = node.children()
        if len(inner) != 1:
            raise _fail("extDatas [0] must hold one SEQUENCE", "extDatas [0] 中应只有一个 SEQUENCE")
        node = inner[0]
    reader.expect(node, SEQUENCE, "extDatas", "自定义数据")
    result = []
    for ext in node.children():
        parts = reader.seq(ext, "ExtData", "自定义数据项", (2, 3))
        critical = False
        if len(parts) == 3:
            reader.expect(parts[1], BOOLEAN, "critical", "关键标志")
            critical = parts[1].content() not in (b"", b"\x00")
            if not critical:
                reader.warn("自定义数据显式写出了默认值 critical FALSE", "an ExtData writes the default critical FALSE")
        result.append(ExtData(reader.oid(parts[0], "extnID", "扩展标识"), critical,
                              reader.octets(parts[-1], "extnValue", "扩展值")))
    return tuple(result)


def _signature_v4(node: _Node, items: list[_Node], reader: _Reader) -> SesSignature:
    tbs = reader.seq(items[0], "TBS_Sign", "签章信息", (5, 6))
    version = reader.integer(tbs[0], "TBS_Sign version", "签章信息版本号")
    seal = _seal(tbs[1], reader, "embedded SESeal", "内嵌电子印章")
    time_info = reader.time(tbs[2], "timeInfo", "签章时间", GENERALIZED_TIME)
    data_hash = reader.bits(tbs[3], "dataHash", "原文杂凑值", also_octet_string=True)
    property_info = reader.string(tbs[4], IA5_STRING, "propertyInfo", "原文属性")
    ext_datas = _ext_datas(tbs[5], reader) if len(tbs) == 6 else ()
    time_stamp = _optional_bits(items[4], reader, "time stamp", "时间戳") if len(items) == 5 else None
    _check_versions(version, seal, reader)
    return SesSignature(
        raw=node.raw, layout=4, version=version, tbs_raw=items[0].raw, seal=seal,
        time_info=time_info, time_info_text=tbs[2].content().decode("ascii", errors="replace"),
        data_hash=data_hash, property_info=property_info,
        cert=reader.octets(items[1], "signer certificate", "签章者证书"),
        signature_alg_id=reader.oid(items[2], "signature algorithm", "签名算法标识"),
        signature=reader.bits(items[3], "signature", "签名值", also_octet_string=True),
        time_stamp=time_stamp, ext_datas=ext_datas, warnings=())


def _signature_v1(node: _Node, items: list[_Node], reader: _Reader) -> SesSignature:
    tbs = reader.seq(items[0], "TBS_Sign", "签章信息", (7,))
    version = reader.integer(tbs[0], "TBS_Sign version", "签章信息版本号")
    seal = _seal(tbs[1], reader, "embedded SESeal", "内嵌电子印章")
    time_info, time_text = _v1_time(tbs[2], reader)
    _check_versions(version, seal, reader)
    return SesSignature(
        raw=node.raw, layout=1, version=version, tbs_raw=items[0].raw, seal=seal,
        time_info=time_info, time_info_text=time_text,
        data_hash=reader.bits(tbs[3], "dataHash", "原文杂凑值", also_octet_string=True),
        property_info=reader.string(tbs[4], IA5_STRING, "propertyInfo", "原文属性"),
        cert=reader.octets(tbs[5], "signer certificate", "签章者证书"),
        signature_alg_id=reader.oid(tbs[6], "signature algorithm", "签名算法标识"),
        signature=reader.bits(items[1], "signature", "签名值", also_octet_string=True),
        time_stamp=None, ext_datas=(), warnings=())


def _v1_time(node: _Node, reader: _Reader) -> tuple[datetime | None, str]:
    """GM/T 0031 timeInfo: a BIT STRING holding a time string, a DER time or a time-stamp token."""
    if node.tag in (UTC_TIME, GENERALIZED_TIME):
        return reader.time(node, "timeInfo", "签章时间", node.tag), node.content().decode("ascii", "replace")
    body = reader.bits(node, "timeInfo", "签章时间", also_octet_string=True)
    if body[:1] in (bytes([UTC_TIME]), bytes([GENERALIZED_TIME])):
        try:
            inner = _read_whole(body, reader, "timeInfo", "签章时间")
            return reader.time(inner, "timeInfo", "签章时间", inner.tag), inner.content().decode("ascii", "replace")
        except SealFormatError:
            pass
    if body[:1] == bytes([SEQUENCE]):
        reader.warn("签章时间是时间戳令牌，未从中读取时间", "timeInfo holds a time-stamp token; its time was not read")
        return None, body.hex()
    text = body.decode("ascii", errors="replace")
    return parse_time_text(text, reader, "timeInfo", "签章时间"), text


def _check_versions(version: int, seal: Seal, reader: _Reader) -> None:
    if version != seal.version:
        reader.warn(f"签章信息版本号 {version} 与印章头版本号 {seal.version} 不一致",
                    f"TBS_Sign version {version} differs from the seal header version {seal.version}")


def signature_value(value: bytes) -> tuple[bytes, Message | None]:
    """A signature as DER SM2Signature, accepting raw r‖s and BER, with the deviation noted."""
    try:
        decode_signature(value)
        return value, None
    except InvalidInput:
        pass
    if len(value) == 64:
        r, s = int.from_bytes(value[:32], "big"), int.from_bytes(value[32:], "big")
        return encode_signature(r, s), Message("签名值为 64 字节裸格式 r‖s，而非 DER", "the signature is raw 64-byte r‖s, not DER")
    # BER, or INTEGERs written unsigned (a high bit without the leading zero DER requires)
    node, _ = _root(value)
    parts = node.children() if node.tag == SEQUENCE else []
    if len(parts) != 2 or any(p.tag != INTEGER or not 0 < len(p.content()) <= 33 for p in parts):
        raise _fail("the signature is neither an SM2Signature nor 64-byte r‖s", "签名值既不是 SM2Signature 也不是 64 字节 r‖s")
    r, s = (int.from_bytes(p.content(), "big") for p in parts)
    return encode_signature(r, s), Message("签名值不是 DER 编码（整数未按有符号规则编码或使用了 BER）",
                                           "the signature value is not DER (unsigned INTEGERs or BER)")


# ---------------------------------------------------------------- building (DER, v4)

def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _int(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _ia5(text: str, what: str, what_zh: str) -> bytes:
    if not text.isascii():
        raise InvalidInput(f"{what} must be ASCII (IA5String)", f"{what_zh}必须是 ASCII 字符（IA5String）")
    return tlv(IA5_STRING, text.encode())


def _gtime(value: datetime) -> bytes:
    if value.tzinfo is None:
        raise InvalidInput("times must carry a time zone", "时间必须带时区")
    return tlv(GENERALIZED_TIME, value.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode())


def _bits(value: bytes) -> bytes:
    return tlv(BIT_STRING, b"\x00" + value)


def _ext_datas_der(ext_datas: Sequence[ExtData]) -> bytes:
    # DER omits critical when it is the DEFAULT FALSE.
    return tlv(SEQUENCE, b"".join(
        tlv(SEQUENCE, tlv(OID, encode_oid(e.extn_id)) + (tlv(BOOLEAN, b"\xff") if e.critical else b"")
            + tlv(OCTET_STRING, e.extn_value)) for e in ext_datas))


def build_seal_info_v4(*, es_id: str, vid: str, seal_type: int, name: str,
                       cert_list: Sequence[bytes] = (), cert_digest_list: Sequence[CertDigest] = (),
                       create_date: datetime, valid_start: datetime, valid_end: datetime,
                       picture_type: str, picture_data: bytes, picture_width: int, picture_height: int,
                       ext_datas: Sequence[ExtData] = ()) -> bytes:
    """DER SES_SealInfo (GB/T 38540 §2 field order), the bytes the maker signs."""
    if bool(cert_list) == bool(cert_digest_list):
        raise InvalidInput("give either signer certificates or certificate digests",
                           "签章者证书列表与证书杂凑列表须二选一")
    if not create_date <= valid_start < valid_end:
        raise InvalidInput("seal dates must satisfy createDate ≤ validStart < validEnd",
                           "印章日期须满足 制作日期 ≤ 有效期起始 < 有效期终止")
    if picture_width <= 0 or picture_height <= 0:
        raise InvalidInput("picture width and height are positive millimetres", "图像宽高须为正的毫米数")
    if cert_list:
        cert_list_type, certs = 1, b"".join(tlv(OCTET_STRING, c) for c in cert_list)
    else:
        cert_list_type = 2
        certs = b"".join(tlv(SEQUENCE, tlv(PRINTABLE_STRING, d.type.encode()) + tlv(OCTET_STRING, d.value))
                         for d in cert_digest_list)
    header = tlv(SEQUENCE, _ia5("ES", "", "") + _int(4) + _ia5(vid, "vid", "厂商标识"))
    prop = tlv(SEQUENCE, _int(seal_type) + tlv(UTF8_STRING, name.encode()) + _int(cert_list_type)
               + tlv(SEQUENCE, certs) + _gtime(create_date) + _gtime(valid_start) + _gtime(valid_end))
    picture = tlv(SEQUENCE, _ia5(picture_type, "picture type", "图像类型") + tlv(OCTET_STRING, picture_data)
                  + _int(picture_width) + _int(picture_height))
    return tlv(SEQUENCE, header + _ia5(es_id, "esID", "电子印章标识") + prop + picture
               + (_ext_datas_der(ext_datas) if ext_datas else b""))


def build_seal_v4(*, maker_cert: bytes, sign: Callable[[bytes], bytes], **seal_info) -> bytes:
    """DER SESeal v4: SES_SealInfo (from ``seal_info``, see build_seal_info_v4), the maker's
    certificate, SM2-with-SM3, and ``sign(DER(SES_SealInfo))`` (a DER SM2 signature)."""
    info = build_seal_info_v4(**seal_info)
    signature = sign(info)
    decode_signature(signature)
    return tlv(SEQUENCE, info + tlv(OCTET_STRING, maker_cert) + tlv(OID, encode_oid(oids.SM2_WITH_SM3))
               + _bits(signature))


@functools.lru_cache(maxsize=64)
def _seal_layout_and_version(seal: bytes) -> tuple[int, int]:
    """What a signature takes from its seal, parsed once per seal (by content; a seal signs
    many documents, and parsing it was a tenth of sealing one: #18)."""
    parsed = parse_seal(seal)
    return parsed.layout, parsed.version


def build_tbs_sign_v4(*, seal: bytes, data_hash: bytes, property_info: str, time_info: datetime,
                      ext_datas: Sequence[ExtData] = ()) -> bytes:
    layout, version = _seal_layout_and_version(bytes(seal))
    if layout != 4:
        raise InvalidInput("a v4 signature needs a v4 seal", "GB/T 38540 签章须使用 GB/T 38540 印章")
    if len(data_hash) != 32:
        raise InvalidInput(f"dataHash is a 32-byte SM3 digest, got {len(data_hash)} bytes",
                           f"原文杂凑值应为 32 字节 SM3 摘要，实际为 {len(data_hash)} 字节")
    extra = tlv(CONTEXT_0, _ext_datas_der(ext_datas)) if ext_datas else b""
    return tlv(SEQUENCE, _int(version) + seal + _gtime(time_info) + _bits(data_hash)
               + _ia5(property_info, "propertyInfo", "原文属性") + extra)


def build_signature_v4(*, seal: bytes, data_hash: bytes, property_info: str, signer_cert: bytes,
                       sign: Callable[[bytes], bytes], time_info: datetime | None = None,
                       time_stamp: Callable[[bytes], bytes] | None = None,
                       ext_datas: Sequence[ExtData] = ()) -> bytes:
    """DER SES_Signature v4. ``sign(DER(TBS_Sign))`` returns a DER SM2 signature (from the
    KeyStore); ``time_stamp(signature)`` may return an RFC 3161 token over the signature value."""
    tbs = build_tbs_sign_v4(seal=seal, data_hash=data_hash, property_info=property_info,
                            time_info=time_info or utc_now(), ext_datas=ext_datas)
    signature = sign(tbs)
    decode_signature(signature)
    token = tlv(CONTEXT_0, _bits(time_stamp(signature))) if time_stamp else b""
    return tlv(SEQUENCE, tbs + tlv(OCTET_STRING, signer_cert) + tlv(OID, encode_oid(oids.SM2_WITH_SM3))
               + _bits(signature) + token)
