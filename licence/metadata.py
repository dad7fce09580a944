"""GB/T 36903-2018 电子证照 元数据规范: the metadata items of a licence.

The item names are the standard's Chinese ones, as production systems carry them (spec
elicence-gbt369xx.md §3); the short codes (ZZBS, ZZMC, …) are those one national
real-estate licence system writes. The text of the standard was not obtained, so the
reader is tolerant: it takes the items by Chinese name or by code, in any order, ignores
items it does not know, and reads the end of validity as 长期 when it is empty, 长期 or
9999-12-31 (the last two are both seen; we write 长期, spec §3 [I]).

A licence file carries the metadata twice, both covered by the seal's References (spec
§4 [I]): as ``DocInfo/CustomDatas`` of OFD.xml (Name = Chinese item name), and as the XML
document of this module registered as a CustomTag under ``NAMESPACE``.
"""

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from lxml import etree

from trust.archive import ArchiveError, children, local, parse_xml
from trust.errors import InvalidInput

NAMESPACE = "urn:gbt36903:elicence:metadata"     # ours: the standard names no XML namespace [I]
FILE_NAME = "LicenceMeta.xml"                      # the metadata as a file: an OFD CustomTag, a PDF attachment
LONG_TERM = "长期"
_LONG_TERM_READ = {"", LONG_TERM, "9999-12-31"}
MAX_METADATA_BYTES = 256 * 1024


class HolderCodeType(StrEnum):
    """持证主体代码类型代码 (GB/T 36903; the full table was not obtained, spec §3)."""

    ID_NUMBER = "111"        # 公民身份号码 (GB 11643)
    CREDIT_CODE = "001"      # 统一社会信用代码 (GB 32100)

    @property
    def zh(self) -> str:
        return {"111": "公民身份号码", "001": "统一社会信用代码"}[self.value]


class MetadataError(InvalidInput):
    code = "licence_metadata"


# (our key, the standard's Chinese item name, the short code seen in production)
ITEMS: tuple[tuple[str, str, str], ...] = (
    ("licence_id", "证照标识", "ZZBS"),
    ("type_name", "证照类型名称", "ZZMC"),
    ("type_code", "证照类型代码", "ZZLXDM"),
    ("licence_no", "证照编号", "ZZBH"),
    ("issuer_name", "证照颁发机构", "ZZBFJG"),
    ("issuer_code", "证照颁发机构代码", "ZZBFJGDM"),
    ("issue_date", "证照颁发日期", "ZZBFRQ"),
    ("holder_name", "持证主体", "CZZT"),
    ("holder_code", "持证主体代码", "CZZTDM"),
    ("holder_code_type_name", "持证主体代码类型", "CZZTDMLX"),
    ("holder_code_type", "持证主体代码类型代码", "CZZTDMLXDM"),
    ("valid_from", "有效期起始日期", "ZZYXQQSRQ"),
    ("valid_to", "有效期截止日期", "ZZYXQJZRQ"),
    ("area_code", "证照所属管辖属地编码", "ZZSSGXSDBM"),
)
_BY_NAME = {name: key for key, name, _ in ITEMS} | {code: key for key, _, code in ITEMS}
# Other names production systems use for the same items (spec §3).
_BY_NAME |= {"证照名称": "type_name", "颁证单位": "issuer_name", "颁证单位代码": "issuer_code", "颁证日期": "issue_date"}


@dataclass(frozen=True)
class LicenceMetadata:
    licence_id: str
    type_name: str
    type_code: str
    licence_no: str
    issuer_name: str
    issuer_code: str
    issue_date: date
    holder_name: str
    holder_code: str
    holder_code_type: HolderCodeType
    valid_from: date
    valid_to: date | None                   # None: 长期 (no end)
    area_code: str | None = None
    face: tuple[tuple[str, str, str], ...] = ()   # 照面信息: (key, Chinese label, text as printed)

    @property
    def holder_code_type_name(self) -> str:
        return self.holder_code_type.zh

    def _texts(self) -> list[tuple[str, str, str]]:
        """(Chinese item name, code, text) for every item that has a value, in the standard's order."""
        out = []
        for key, name, code in ITEMS:
            value = getattr(self, key)
            if key == "valid_to" and value is None:
                value = LONG_TERM
            if value is not None:
                out.append((name, code, value.isoformat() if isinstance(value, date) else str(value)))
        return out

    def items(self) -> list[tuple[str, str]]:
        """(Chinese item name, text): the OFD's DocInfo/CustomDatas."""
        return [(name, text) for name, _, text in self._texts()]

    def to_xml(self) -> bytes:
        root = etree.Element(f"{{{NAMESPACE}}}LicenceMetadata", nsmap={None: NAMESPACE})
        for name, code, text in self._texts():
            element = etree.SubElement(root, f"{{{NAMESPACE}}}Item", Name=name, Code=code)
            element.text = text
        face = etree.SubElement(root, f"{{{NAMESPACE}}}Face")
        for key, label, text in self.face:
            element = etree.SubElement(face, f"{{{NAMESPACE}}}Field", Key=key, Label=label)
            element.text = text
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise MetadataError(f"licence metadata item {name} is not a date: {value[:40]!r}",
                            f"证照元数据项“{name}”不是日期：{value[:40]!r}") from None


def from_items(items) -> LicenceMetadata:
    """Metadata from (name, text) pairs, by Chinese name or code; unknown names are ignored."""
    found: dict[str, str] = {}
    for name, text in items:
        key = _BY_NAME.get((name or "").strip())
        if key is not None and key not in found:
            found[key] = (text or "").strip()
    missing = [name for key, name, _ in ITEMS
               if key not in found and key not in ("valid_to", "area_code", "holder_code_type_name")]
    if missing:
        raise MetadataError(f"licence metadata lacks {', '.join(missing)}", f"证照元数据缺少：{'、'.join(missing)}")
    try:
        code_type = HolderCodeType(found["holder_code_type"])
    except ValueError:
        raise MetadataError(f"unknown holder code type {found['holder_code_type'][:10]!r}",
                            f"未知的持证主体代码类型代码 {found['holder_code_type'][:10]!r}") from None
    valid_to = found.get("valid_to", "")
    return LicenceMetadata(
        licence_id=found["licence_id"], type_name=found["type_name"], type_code=found["type_code"],
        licence_no=found["licence_no"], issuer_name=found["issuer_name"], issuer_code=found["issuer_code"],
        issue_date=_date(found["issue_date"], "证照颁发日期"), holder_name=found["holder_name"],
        holder_code=found["holder_code"], holder_code_type=code_type,
        valid_from=_date(found["valid_from"], "有效期起始日期"),
        valid_to=None if valid_to in _LONG_TERM_READ else _date(valid_to, "有效期截止日期"),
        area_code=found.get("area_code") or None)


def from_xml(data: bytes) -> LicenceMetadata:
    """Read the metadata XML this module writes (or one like it: any namespace)."""
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError("the licence metadata is too large", "证照元数据过大")
    try:
        root = parse_xml(data, "LicenceMetadata")
    except ArchiveError as e:
        raise MetadataError(f"the licence metadata is not readable XML: {e.en}", f"证照元数据不是可读的 XML：{e.zh}") from None
    items = [(e.get("Name") or e.get("Code"), e.text) for e in children(root, "Item")]
    metadata = from_items(items)
    face = []
    for group in (e for e in root if local(e.tag) == "Face"):
        face += [(f.get("Key", ""), f.get("Label", ""), f.text or "") for f in children(group, "Field")]
    return replace(metadata, face=tuple(face))
