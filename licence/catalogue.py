"""GB/T 36902-2018 电子证照 目录信息规范: the catalogue of licence types, as data.

Each type is one JSON file under ``licence/catalogue/`` (the shipped ones) or imported by
an officer: its type code (the defining authority's credit code + 3 digits, spec §2), names,
defining authority, holder kind and accepted holder code types, the face fields (照面信息),
the validity rule, which seal type of the issuing organisation seals it, and the layout
template of its face. ``load`` checks a definition strictly and names the first thing wrong
by its path in the JSON, so an officer's import fails before anything is stored.

A type is versioned (licence.types keeps every version); a licence records the version it
was issued under, so changing a type never changes a licence already issued.
"""

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from licence.metadata import HolderCodeType
from seal.registry import SealType
from trust.errors import InvalidInput
from trust.ids import validate_uscc

SHIPPED = Path(__file__).parent / "catalogue"
MAX_DEFINITION_BYTES = 256 * 1024
MAX_FIELDS = 60
MAX_TEXT = 4000                  # the longest face value of any kind (经营范围 runs to hundreds)
_TYPE_CODE = re.compile(r"[0-9A-Z]{18}\d{3}")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")


class CatalogueError(InvalidInput):
    code = "invalid_licence_type"


class FieldKind(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    DATE = "date"
    CREDIT_CODE = "credit_code"          # GB 32100
    ID_NUMBER = "id_number"              # GB 11643
    HOLDER_CODE = "holder_code"          # a credit code or an ID number, as the holder code type says
    ENUM = "enum"
    MONEY = "money"                      # yuan; printed in Chinese capital numerals
    REGION_CODE = "region_code"          # GB/T 2260, 6 digits


class Sharing(StrEnum):
    """共享类别 of a face field (who may receive it through the sharing service)."""

    UNCONDITIONAL = "无条件"
    CONDITIONAL = "有条件"
    NOT_SHARED = "不予共享"


class Source(StrEnum):
    """A face field printed from the licence record rather than typed in."""

    HOLDER_NAME = "holder_name"
    HOLDER_CODE = "holder_code"
    ISSUER_NAME = "issuer_name"
    ISSUE_DATE = "issue_date"
    VALID_FROM = "valid_from"
    VALID_TO = "valid_to"


class HolderKind(StrEnum):
    LEGAL_PERSON = "legal_person"        # 法人和其他组织
    NATURAL_PERSON = "natural_person"    # 自然人


class ValidityRule(StrEnum):
    LONG_TERM = "long_term"              # 长期
    YEARS = "years"                      # a number of years from the day of issue
    GIVEN = "given"                      # the issuer gives the end date


class Overflow(StrEnum):
    """What the layout does with a value wider than its box; never clip."""

    ERROR = "error"
    SHRINK = "shrink"                    # one line, smaller type down to min_size
    WRAP = "wrap"                        # several lines within the box's height
    WRAP_SHRINK = "wrap_shrink"          # wrap, and shrink until it fits


class QrForm(StrEnum):
    """What the face's QR code holds (licence/qr_payload.py)."""

    URL = "url"                          # the licence's page, the signed payload in the fragment
    PAYLOAD = "payload"                  # the signed payload alone (a phone's camera opens nothing)


class Agreement(StrEnum):
    """A face field that must agree with the holder's ID number (GB 11643)."""

    BIRTH_DATE = "id_number.birth_date"
    SEX = "id_number.sex"


@dataclass(frozen=True)
class FaceField:
    key: str
    label: str                           # as printed on the face
    label_en: str
    kind: FieldKind
    sharing: Sharing
    required: bool = True
    max_length: int | None = None
    options: tuple[str, ...] = ()        # for ENUM
    pattern: str | None = None           # a regular expression the whole text must match
    long_term: bool = False              # DATE: "长期" is accepted
    source: Source | None = None
    agrees_with: Agreement | None = None


@dataclass(frozen=True)
class Box:
    """Something printed on the face. ``field`` names a face field whose printed value goes
    in the box; ``text`` is fixed text; ``format`` composes several fields ("{a} 至 {b}").
    ``label`` is printed at (x, y) and the value from x + label_w. Millimetres from the
    top-left corner, y the baseline of the first line."""

    x: float
    y: float
    w: float
    size: float
    field: str | None = None
    text: str | None = None
    format: str | None = None
    label: str | None = None
    label_w: float = 0.0
    h: float | None = None               # for wrapping: the height the lines may take
    overflow: Overflow = Overflow.ERROR
    min_size: float | None = None
    align: str = "left"                  # left | center
    bold: bool = False


@dataclass(frozen=True)
class Template:
    width: float
    height: float
    boxes: tuple[Box, ...]
    seal: tuple[float, float]            # where the seal's centre goes
    qr: tuple[float, float, float] | None = None    # x, y, side of the 2-D code (GB/T 36905)
    border: bool = True
    qr_form: QrForm = QrForm.URL


@dataclass(frozen=True)
class LicenceType:
    type_code: str
    name: str
    name_en: str
    defining_authority: str
    defining_authority_code: str
    holder_kind: HolderKind
    holder_code_types: tuple[HolderCodeType, ...]
    fields: tuple[FaceField, ...]
    validity: ValidityRule
    validity_years: int | None
    seal_type: SealType
    licence_no: str                      # the face field that is the 证照编号
    template: Template
    definition: dict                     # the JSON it was loaded from, as stored and exported

    def field(self, key: str) -> FaceField:
        for field in self.fields:
            if field.key == key:
                return field
        raise KeyError(key)

    def fingerprint(self) -> str:
        """What makes two definitions the same version: the canonical JSON."""
        return canonical_json(self.definition)


def canonical_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- strict reading

def _fail(path: str, en: str, zh: str):
    raise CatalogueError(f"licence type definition, {path}: {en}", f"证照类型定义 {path}：{zh}")


def _get(obj: dict, key: str, kind, path: str, *, required: bool = True, default=None):
    if key not in obj:
        if required:
            _fail(f"{path}.{key}", "is missing", "缺失")
        return default
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        _fail(f"{path}.{key}", f"must be {names}", f"类型应为 {names}")
    if isinstance(value, str) and (not value.strip() or len(value) > MAX_TEXT):
        _fail(f"{path}.{key}", f"must be 1 to {MAX_TEXT} characters", f"须为 1 至 {MAX_TEXT} 个字符")
    return value


def _enum(enum, obj: dict, key: str, path: str, *, required: bool = True, default=None):
    value = _get(obj, key, str, path, required=required, default=None)
    if value is None:
        return default
    try:
        return enum(value)
    except ValueError:
        _fail(f"{path}.{key}", f"is not one of {', '.join(enum)}", f"须为 {'、'.join(enum)} 之一")


def _only(obj: dict, allowed: set[str], path: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        _fail(f"{path}.{unknown[0]}", "is not a known member", "不是可识别的成员")


def _number(obj: dict, key: str, path: str, *, required: bool = True, default=None, low=0.0, high=1000.0):
    value = _get(obj, key, (int, float), path, required=required, default=default)
    if value is not None and not low <= value <= high:
        _fail(f"{path}.{key}", f"must be {low} to {high}", f"须在 {low} 至 {high} 之间")
    return value


_FIELD_MEMBERS = {"key", "label", "label_en", "kind", "sharing", "required", "max_length", "options", "pattern",
                  "long_term", "source", "agrees_with"}


def _field(obj, path: str) -> FaceField:
    if not isinstance(obj, dict):
        _fail(path, "must be an object", "须为对象")
    _only(obj, _FIELD_MEMBERS, path)
    key = _get(obj, "key", str, path)
    if not _KEY.fullmatch(key):
        _fail(f"{path}.key", "is lower-case letters, digits and _, starting with a letter",
              "须为小写字母、数字和下划线，以字母开头")
    kind = _enum(FieldKind, obj, "kind", path)
    options = tuple(_get(obj, "options", list, path, required=kind == FieldKind.ENUM, default=[]))
    if kind == FieldKind.ENUM and (not options or not all(isinstance(o, str) and o.strip() for o in options)):
        _fail(f"{path}.options", "an enumeration lists its values as text", "枚举须列出文本取值")
    pattern = _get(obj, "pattern", str, path, required=False)
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as e:
            _fail(f"{path}.pattern", f"is not a regular expression: {e}", f"不是正则表达式：{e}")
    max_length = _get(obj, "max_length", int, path, required=False)
    if max_length is not None and not 0 < max_length <= MAX_TEXT:
        _fail(f"{path}.max_length", f"must be 1 to {MAX_TEXT}", f"须为 1 至 {MAX_TEXT}")
    return FaceField(
        key=key, label=_get(obj, "label", str, path), label_en=_get(obj, "label_en", str, path), kind=kind,
        sharing=_enum(Sharing, obj, "sharing", path), required=_get(obj, "required", bool, path, required=False,
                                                                      default=True),
        max_length=max_length, options=options, pattern=pattern,
        long_term=_get(obj, "long_term", bool, path, required=False, default=False),
        source=_enum(Source, obj, "source", path, required=False),
        agrees_with=_enum(Agreement, obj, "agrees_with", path, required=False))


_BOX_MEMBERS = {"x", "y", "w", "h", "size", "field", "text", "format", "label", "label_w", "overflow", "min_size",
                "align", "bold"}


def _box(obj, path: str, keys: set[str], width: float, height: float) -> Box:
    if not isinstance(obj, dict):
        _fail(path, "must be an object", "须为对象")
    _only(obj, _BOX_MEMBERS, path)
    field = _get(obj, "field", str, path, required=False)
    text = _get(obj, "text", str, path, required=False)
    fmt = _get(obj, "format", str, path, required=False)
    if sum(v is not None for v in (field, text, fmt)) != 1:
        _fail(path, "has exactly one of field, text and format", "须有且只有 field、text、format 之一")
    used = set(re.findall(r"\{([a-z0-9_]+)\}", fmt)) if fmt else {field} if field else set()
    if used - keys:
        _fail(path, f"names no face field {sorted(used - keys)[0]}", f"引用了不存在的照面项 {sorted(used - keys)[0]}")
    box = Box(x=_number(obj, "x", path, high=width), y=_number(obj, "y", path, high=height),
              w=_number(obj, "w", path, low=1, high=width), size=_number(obj, "size", path, low=1.5, high=30),
              field=field, text=text, format=fmt, label=_get(obj, "label", str, path, required=False),
              label_w=_number(obj, "label_w", path, required=False, default=0.0, high=width),
              h=_number(obj, "h", path, required=False, high=height),
              overflow=_enum(Overflow, obj, "overflow", path, required=False, default=Overflow.ERROR),
              min_size=_number(obj, "min_size", path, required=False, low=1.5, high=30),
              align=_get(obj, "align", str, path, required=False, default="left"),
              bold=_get(obj, "bold", bool, path, required=False, default=False))
    if box.align not in ("left", "center"):
        _fail(f"{path}.align", "is left or center", "须为 left 或 center")
    if box.x + box.w > width + 0.01 or box.label_w >= box.w:
        _fail(path, "does not fit the page (x + w beyond the width, or the label as wide as the box)",
              "超出页面（x + w 超过页宽，或标签与框同宽）")
    if box.overflow in (Overflow.WRAP, Overflow.WRAP_SHRINK) and (box.h is None or box.y + box.h > height):
        _fail(path, "a wrapping box needs a height h within the page", "可换行的框须给出页面内的高度 h")
    return box


def _template(obj, path: str, keys: set[str]) -> Template:
    if not isinstance(obj, dict):
        _fail(path, "must be an object", "须为对象")
    _only(obj, {"width", "height", "boxes", "seal", "qr", "qr_form", "border"}, path)
    width, height = _number(obj, "width", path, low=50, high=1000), _number(obj, "height", path, low=50, high=1000)
    boxes = _get(obj, "boxes", list, path)
    seal = _get(obj, "seal", list, path)
    if len(seal) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seal):
        _fail(f"{path}.seal", "is [x, y] of the seal's centre", "须为印章中心的 [x, y]")
    qr = _get(obj, "qr", list, path, required=False)
    if qr is not None and (len(qr) != 3 or not all(isinstance(v, (int, float)) for v in qr)):
        _fail(f"{path}.qr", "is [x, y, side]", "须为 [x, y, 边长]")
    qr_form = _get(obj, "qr_form", str, path, required=False, default=QrForm.URL.value)
    if qr_form not in set(QrForm):
        _fail(f"{path}.qr_form", "is url or payload", "须为 url 或 payload")
    return Template(width=width, height=height,
                    boxes=tuple(_box(b, f"{path}.boxes[{i}]", keys, width, height) for i, b in enumerate(boxes)),
                    seal=(float(seal[0]), float(seal[1])), qr=(float(qr[0]), float(qr[1]), float(qr[2])) if qr else None,
                    border=_get(obj, "border", bool, path, required=False, default=True), qr_form=QrForm(qr_form))


_TYPE_MEMBERS = {"type_code", "name", "name_en", "defining_authority", "defining_authority_code", "holder_kind",
                 "holder_code_types", "fields", "validity", "seal_type", "licence_no", "layout", "note"}


def load(definition) -> LicenceType:
    """A licence type from its JSON definition (bytes, text or the parsed object)."""
    if isinstance(definition, (bytes, str)):
        if len(definition) > MAX_DEFINITION_BYTES:
            _fail("$", "is too large", "过大")
        try:
            definition = json.loads(definition)
        except (ValueError, RecursionError) as e:
            _fail("$", f"is not JSON: {str(e)[:80]}", f"不是 JSON：{str(e)[:80]}")
    if not isinstance(definition, dict):
        _fail("$", "must be an object", "须为对象")
    path = "$"
    _only(definition, _TYPE_MEMBERS, path)
    type_code = _get(definition, "type_code", str, path)
    authority_code = _get(definition, "defining_authority_code", str, path)
    if not _TYPE_CODE.fullmatch(type_code):
        _fail(f"{path}.type_code", "is the defining authority's 18-character credit code and 3 digits",
              "须为证照定义机构的 18 位统一社会信用代码加 3 位数字")
    try:
        validate_uscc(authority_code)
    except InvalidInput as e:
        _fail(f"{path}.defining_authority_code", e.en, e.zh)
    if type_code[:18] != authority_code:
        _fail(f"{path}.type_code", "does not start with the defining authority's code", "未以证照定义机构代码开头")
    raw_fields = _get(definition, "fields", list, path)
    if not 0 < len(raw_fields) <= MAX_FIELDS:
        _fail(f"{path}.fields", f"lists 1 to {MAX_FIELDS} face fields", f"须列出 1 至 {MAX_FIELDS} 个照面项")
    fields = tuple(_field(f, f"{path}.fields[{i}]") for i, f in enumerate(raw_fields))
    keys = [f.key for f in fields]
    if len(set(keys)) != len(keys):
        _fail(f"{path}.fields", "has a key twice", "有重复的键")
    by_key = {f.key: f for f in fields}
    codes = _get(definition, "holder_code_types", list, path)
    try:
        holder_code_types = tuple(HolderCodeType(c) for c in codes)
    except ValueError:
        _fail(f"{path}.holder_code_types", "lists 111 (ID number) and/or 001 (credit code)",
              "须列出 111（公民身份号码）和/或 001（统一社会信用代码）")
    if not holder_code_types:
        _fail(f"{path}.holder_code_types", "lists at least one code type", "至少列出一种代码类型")
    validity = _get(definition, "validity", dict, path)
    _only(validity, {"rule", "years"}, f"{path}.validity")
    rule = _enum(ValidityRule, validity, "rule", f"{path}.validity")
    years = _get(validity, "years", int, f"{path}.validity", required=rule == ValidityRule.YEARS)
    if years is not None and not 0 < years <= 100:
        _fail(f"{path}.validity.years", "must be 1 to 100", "须为 1 至 100")
    licence_no = _get(definition, "licence_no", str, path)
    if licence_no not in by_key:
        _fail(f"{path}.licence_no", "names no face field", "未指向任何照面项")
    for field in fields:
        if field.agrees_with and HolderCodeType.ID_NUMBER not in holder_code_types:
            _fail(f"{path}.fields", f"{field.key} agrees with an ID number the holder never has",
                  f"{field.key} 须与公民身份号码一致，但持证主体无此代码")
    return LicenceType(
        type_code=type_code, name=_get(definition, "name", str, path), name_en=_get(definition, "name_en", str, path),
        defining_authority=_get(definition, "defining_authority", str, path),
        defining_authority_code=authority_code, holder_kind=_enum(HolderKind, definition, "holder_kind", path),
        holder_code_types=holder_code_types, fields=fields, validity=rule, validity_years=years,
        seal_type=_enum(SealType, definition, "seal_type", path), licence_no=licence_no,
        template=_template(_get(definition, "layout", dict, path), f"{path}.layout", set(keys)),
        definition=definition)


def shipped() -> dict[str, LicenceType]:
    """The types this service ships, by type code."""
    types = [load(path.read_bytes()) for path in sorted(SHIPPED.glob("*.json"))]
    return {t.type_code: t for t in types}
