"""GB/T 38540-2020 (v4) and GM/T 0031-2014 (v1) electronic seal structures: parse and build.

``SESeal`` (Seal.esl) and ``SES_Signature`` (SignedValue.dat); the ASN.1 and the signing
rules are in ../shared/spec/eseal-gbt38540.md. The reader is hand-written over a BER
tree (the codec is trust/ber.py) rather than declarative: real producers deviate (BER indefinite lengths, OCTET
STRING where BIT STRING is due, times without ``Z``, raw r‖s signatures, NUL-padded
names), and every signed part must be kept as the exact bytes received, because
signatures are verified over those, never over a re-encoding. Each tolerated deviation
is recorded as a warning on the parsed value. The builders write DER, v4 only.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from trust import oids
from trust.ber import (
    BIT_STRING,
    BOOLEAN,
    CONTEXT_0,
    GENERALIZED_TIME,
    IA5_STRING,
    INTEGER,
    OCTET_STRING,
    OID,
    PRINTABLE_STRING,
    SEQUENCE,
    UTC_TIME,
    UTF8_STRING,
    BerError,
    Node,
    Reader,
    bit_string,
    encode_oid,
    generalized_time,
    ia5_string,
    integer,
    parse_time_text,
    read,
    read_inner,
    tlv,
    to_der,
)
from trust.clock import utc_now
from trust.errors import InvalidInput
from trust.report import Message
from trust.sm2 import decode_signature, encode_signature

PICTURE_TYPES = {"PNG", "JPG", "JPEG", "GIF", "BMP", "SVG", "OFD", "TIF", "TIFF"}
# The leading bytes of each binary picture type (SVG is text and has none).
PICTURE_MAGIC = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPG": (b"\xff\xd8\xff",), "GIF": (b"GIF87a", b"GIF89a"),
                 "BMP": (b"BM",), "OFD": (b"PK\x03\x04",)}


class SealFormatError(InvalidInput):
    """A SESeal or SES_Signature that cannot be read."""


def _fail(en: str, zh: str) -> SealFormatError:
    return SealFormatError(f"malformed electronic seal data: {en}", f"电子印章数据格式错误：{zh}")


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
        candidates: list[tuple[bytes, Message | None]]
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

def _seal_data(parse):
    """``parse`` with the codec's BerError said as a SealFormatError: whose data it was."""
    @functools.wraps(parse)
    def parsing(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except BerError as error:
            raise _fail(error.en, error.zh) from None
    return parsing


@_seal_data
def parse_seal(der: bytes) -> Seal:
    """Read a Seal.esl (SESeal, v1/v4/v5). Raises SealFormatError."""
    node, ber = read(der)
    reader = Reader(ber)
    seal = _seal(node, reader, "SESeal", "电子印章")
    return _with_ber_warning(seal, reader)


@_seal_data
def parse_signature(der: bytes) -> SesSignature:
    """Read a SignedValue.dat (SES_Signature, v1/v4/v5). Raises SealFormatError."""
    node, ber = read(der)
    reader = Reader(ber)
    items = reader.seq(node, "SES_Signature", "电子签章数据", (2, 4, 5))
    if len(items) == 2:
        result = _signature_v1(node, items, reader)
    else:
        result = _signature_v4(node, items, reader)
    return _with_ber_warning(result, reader)


def _with_ber_warning(value, reader: Reader):
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


def _seal(node: Node, reader: Reader, what: str, what_zh: str) -> Seal:
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
            fallback = tlv(SEQUENCE, to_der(items[0]) + to_der(cert_node) + to_der(alg_node))
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
    fallback = to_der(items[0]) if reader.ber else None
    return Seal(raw=node.raw, layout=4, seal_info=info,
                cert=reader.octets(items[1], "maker certificate", "制章者证书"),
                sign_alg_id=reader.oid(items[2], "signature algorithm", "签名算法标识"),
                signed_value=reader.bits(items[3], "maker signature", "制章者签名值", also_octet_string=True),
                cert_tlv=items[1].raw, sign_alg_tlv=items[2].raw, time_stamp=time_stamp, warnings=(),
                der_fallback=fallback if fallback != items[0].raw else None)


def _read_whole(data: bytes, reader: Reader, what: str, what_zh: str) -> Node:
    node = read_inner(data, reader)
    if node.end != len(data):
        raise _fail(f"{what} has trailing bytes", f"{what_zh}之后有多余数据")
    return node


def _optional_bits(node: Node, reader: Reader, what: str, what_zh: str) -> bytes:
    if node.tag == CONTEXT_0:
        inner = node.children()
        if len(inner) != 1:
            raise _fail(f"{what} [0] must hold one value", f"{what_zh} [0] 中应只有一个值")
        return reader.bits(inner[0], what, what_zh, also_octet_string=True)
    reader.warn(f"{what_zh}没有使用 [0] 显式标签", f"{what} is not wrapped in [0] EXPLICIT")
    return reader.bits(node, what, what_zh, also_octet_string=True)


def _seal_info(node: Node, reader: Reader, layout: int) -> SealInfo:
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


def _cert_list(node: Node, cert_list_type: int, reader: Reader):
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


def _ext_datas(node: Node, reader: Reader) -> tuple[ExtData, ...]:
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


def _signature_v4(node: Node, items: list[Node], reader: Reader) -> SesSignature:
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


def _signature_v1(node: Node, items: list[Node], reader: Reader) -> SesSignature:
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


def _v1_time(node: Node, reader: Reader) -> tuple[datetime | None, str]:
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


def _check_versions(version: int, seal: Seal, reader: Reader) -> None:
    if version != seal.version:
        reader.warn(f"签章信息版本号 {version} 与印章头版本号 {seal.version} 不一致",
                    f"TBS_Sign version {version} differs from the seal header version {seal.version}")


@_seal_data
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
    node, _ = read(value)
    parts = node.children() if node.tag == SEQUENCE else []
    if len(parts) != 2 or any(p.tag != INTEGER or not 0 < len(p.content()) <= 33 for p in parts):
        raise _fail("the signature is neither an SM2Signature nor 64-byte r‖s", "签名值既不是 SM2Signature 也不是 64 字节 r‖s")
    r, s = (int.from_bytes(p.content(), "big") for p in parts)
    return encode_signature(r, s), Message("签名值不是 DER 编码（整数未按有符号规则编码或使用了 BER）",
                                           "the signature value is not DER (unsigned INTEGERs or BER)")


# ---------------------------------------------------------------- building (DER, v4)

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
    header = tlv(SEQUENCE, ia5_string("ES", "", "") + integer(4) + ia5_string(vid, "vid", "厂商标识"))
    prop = tlv(SEQUENCE, integer(seal_type) + tlv(UTF8_STRING, name.encode()) + integer(cert_list_type)
               + tlv(SEQUENCE, certs) + generalized_time(create_date) + generalized_time(valid_start) + generalized_time(valid_end))
    picture = tlv(SEQUENCE, ia5_string(picture_type, "picture type", "图像类型") + tlv(OCTET_STRING, picture_data)
                  + integer(picture_width) + integer(picture_height))
    return tlv(SEQUENCE, header + ia5_string(es_id, "esID", "电子印章标识") + prop + picture
               + (_ext_datas_der(ext_datas) if ext_datas else b""))


def build_seal_v4(*, maker_cert: bytes, sign: Callable[[bytes], bytes], **seal_info) -> bytes:
    """DER SESeal v4: SES_SealInfo (from ``seal_info``, see build_seal_info_v4), the maker's
    certificate, SM2-with-SM3, and ``sign(DER(SES_SealInfo))`` (a DER SM2 signature)."""
    info = build_seal_info_v4(**seal_info)
    signature = sign(info)
    decode_signature(signature)
    return tlv(SEQUENCE, info + tlv(OCTET_STRING, maker_cert) + tlv(OID, encode_oid(oids.SM2_WITH_SM3))
               + bit_string(signature))


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
    return tlv(SEQUENCE, integer(version) + seal + generalized_time(time_info) + bit_string(data_hash)
               + ia5_string(property_info, "propertyInfo", "原文属性") + extra)


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
    token = tlv(CONTEXT_0, bit_string(time_stamp(signature))) if time_stamp else b""
    return tlv(SEQUENCE, tbs + tlv(OCTET_STRING, signer_cert) + tlv(OID, encode_oid(oids.SM2_WITH_SM3))
               + bit_string(signature) + token)
