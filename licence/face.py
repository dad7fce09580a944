"""The face of a licence (照面信息): checking what an issuer sends, and the text printed.

``validate`` checks every face field the issuer types in against its catalogue entry and
reports every problem at once, each naming the field, so one round trip fixes a request.
Fields with a ``source`` (the holder's name and code, the issuer, the dates) come from the
licence record and may not be sent. ``printed`` gives each field's text as the face shows
it: dates as 2019年03月01日, money in Chinese capital numerals, 长期 for no end.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from licence.catalogue import Agreement, FaceField, FieldKind, LicenceType, Source
from licence.metadata import LONG_TERM, HolderCodeType
from trust.errors import InvalidInput
from trust.ids import validate_resident_id, validate_uscc

MAX_TEXT = 200                   # a text field without its own max_length
MAX_LONG_TEXT = 4000
MAX_YUAN = Decimal(10) ** 16     # up to 9,999 万亿: what the capital numerals below can write
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")   # never printed on a face
_REGION = re.compile(r"[1-8][0-9]{5}")


@dataclass(frozen=True)
class FieldError:
    key: str
    zh: str
    en: str

    def to_dict(self) -> dict:
        return {"field": self.key, "zh": self.zh, "en": self.en}


class FaceInvalid(InvalidInput):
    """One or more face fields are wrong; ``errors`` names each."""

    code = "invalid_face"

    def __init__(self, errors: list[FieldError]):
        self.errors = tuple(errors)
        super().__init__(en="; ".join(f"{e.key}: {e.en}" for e in errors),
                         zh="；".join(f"{e.key}：{e.zh}" for e in errors))


def normalise_text(value: str) -> str:
    """Names and texts are NFC-normalised and stripped before they are hashed or printed (spec §7)."""
    return unicodedata.normalize("NFC", value).strip()


def _text(field: FaceField, value) -> str:
    if not isinstance(value, str):
        raise InvalidInput("must be text", "须为文本")
    value = normalise_text(value)
    limit = field.max_length or (MAX_LONG_TEXT if field.kind == FieldKind.LONG_TEXT else MAX_TEXT)
    if not value:
        raise InvalidInput("is empty", "为空")
    if len(value) > limit:
        raise InvalidInput(f"is {len(value)} characters, at most {limit} allowed", f"共 {len(value)} 字，最多 {limit} 字")
    if CONTROL_CHARS.search(value) or (field.kind != FieldKind.LONG_TEXT and "\n" in value):
        raise InvalidInput("holds a control character or a line break", "含有控制字符或换行")
    return value


def parse_date(value) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise InvalidInput("is a date written YYYY-MM-DD", "须为 YYYY-MM-DD 格式的日期")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value.strip()} is not a calendar date", f"{value.strip()} 不是有效日期") from None


def _money(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput("is an amount in yuan, as text or a whole number (\"10000000\", \"1500.50\")",
                           "须为以元计的金额，文本或整数（如 \"10000000\"、\"1500.50\"）")
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise InvalidInput("is not an amount in yuan", "不是以元计的金额") from None
    if not amount.is_finite() or amount < 0 or amount >= MAX_YUAN or amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput("is an amount of yuan from 0 to 10^16 with at most two decimals",
                           "须为 0 至 10^16 元之间、至多两位小数的金额")
    return f"{amount:.2f}"


def canonical(field: FaceField, value, holder_code_type: HolderCodeType) -> str:
    """The canonical text of one typed-in value; raises InvalidInput with what is wrong."""
    kind = field.kind
    if kind == FieldKind.DATE:
        if field.long_term and isinstance(value, str) and value.strip() == LONG_TERM:
            return LONG_TERM
        return parse_date(value).isoformat()
    if kind == FieldKind.MONEY:
        return _money(value)
    text = _text(field, value)
    credit_code = holder_code_type == HolderCodeType.CREDIT_CODE
    if kind == FieldKind.CREDIT_CODE or (kind == FieldKind.HOLDER_CODE and credit_code):
        return validate_uscc(text)
    if kind in (FieldKind.ID_NUMBER, FieldKind.HOLDER_CODE):
        return validate_resident_id(text).number
    if kind == FieldKind.ENUM and text not in field.options:
        raise InvalidInput(f"is not one of: {', '.join(field.options)}", f"须为以下之一：{'、'.join(field.options)}")
    if kind == FieldKind.REGION_CODE and not _REGION.fullmatch(text):
        raise InvalidInput("is a 6-digit region code (GB/T 2260)", "须为 6 位行政区划代码（GB/T 2260）")
    if field.pattern and not re.fullmatch(field.pattern, text):
        raise InvalidInput(f"does not have the form {field.pattern}", f"格式不符（应为 {field.pattern}）")
    return text


def validate(licence_type: LicenceType, face, *, holder_code: str, holder_code_type: HolderCodeType) -> dict[str, str]:
    """The canonical text of every typed-in face field (optional ones left out when absent).
    Raises FaceInvalid naming every wrong, missing or unknown field."""
    if not isinstance(face, dict):
        raise FaceInvalid([FieldError("face", "照面信息须为对象", "the face fields must be an object")])
    errors: list[FieldError] = []
    known = {f.key for f in licence_type.fields}
    for key in face:
        if key not in known:
            errors.append(FieldError(str(key)[:40], f"不是{licence_type.name}的照面项",
                                     f"is not a face field of {licence_type.name_en}"))
    values: dict[str, str] = {}
    for field in licence_type.fields:
        given = face.get(field.key)
        if field.source is not None:
            if given is not None:
                errors.append(FieldError(field.key, f"“{field.label}”取自证照记录，不可填写",
                                         f"'{field.key}' is taken from the licence record and may not be given"))
            continue
        if given is None or given == "":
            if field.required:
                errors.append(FieldError(field.key, f"缺少“{field.label}”",
                                         f"'{field.key}' ({field.label_en}) is missing"))
            continue
        try:
            values[field.key] = canonical(field, given, holder_code_type)
        except InvalidInput as e:
            errors.append(FieldError(field.key, f"“{field.label}”{e.zh}", f"'{field.key}' ({field.label_en}) {e.en}"))
    if not errors:
        errors += _agreements(licence_type, values, holder_code, holder_code_type)
    if errors:
        raise FaceInvalid(errors)
    return values


def _agreements(licence_type: LicenceType, values: dict[str, str], holder_code: str,
                holder_code_type: HolderCodeType) -> list[FieldError]:
    out = []
    for field in licence_type.fields:
        if field.agrees_with is None or field.key not in values or holder_code_type != HolderCodeType.ID_NUMBER:
            continue
        person = validate_resident_id(holder_code)
        if field.agrees_with == Agreement.BIRTH_DATE and values[field.key] != person.birth_date.isoformat():
            out.append(FieldError(field.key, f"“{field.label}”与身份证号中的出生日期 {person.birth_date} 不一致",
                                  f"'{field.key}' differs from the birth date in the ID number ({person.birth_date})"))
        if field.agrees_with == Agreement.SEX and values[field.key] != {"M": "男", "F": "女"}[person.sex]:
            out.append(FieldError(field.key, f"“{field.label}”与身份证号所示性别不一致",
                                  f"'{field.key}' differs from the sex the ID number shows"))
    return out


# ---------------------------------------------------------------- printing

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_GROUPS = ("", "万", "亿", "万亿")


def _four(n: int) -> str:
    """0 < n < 10000 in capitals, with 零 for the zeros inside it."""
    out, zero = "", False
    for power, unit in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
        digit = n // power % 10
        if digit == 0:
            zero = bool(out)
        else:
            out += ("零" if zero else "") + _DIGITS[digit] + unit
            zero = False
    return out


def yuan_in_capitals(amount: Decimal) -> str:
    """An amount as written on financial documents: 10000000 → 壹仟万元整, 1005.5 → 壹仟零伍元伍角."""
    cents = int((amount * 100).to_integral_value())
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out, gap = "", False
    for index in range(len(_GROUPS) - 1, -1, -1):
        group = yuan // 10 ** (4 * index) % 10000
        if group == 0:
            gap = gap or bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"
        out += _four(group) + _GROUPS[index]
        gap = False
    if yuan:
        out += "元"
    if not jiao and not fen:
        return (out or "零元") + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    if fen:
        out += ("零" if yuan and not jiao else "") + _DIGITS[fen] + "分"
    return out


def date_text(value: str | date) -> str:
    if value == LONG_TERM:
        return LONG_TERM
    day = value if isinstance(value, date) else date.fromisoformat(value)
    return f"{day.year:04d}年{day.month:02d}月{day.day:02d}日"


def printed(licence_type: LicenceType, values: dict[str, str], record: dict[Source, str | None]) -> dict[str, str]:
    """Each face field's text as printed; ``record`` gives the sourced ones (a ``None``
    end of validity is 长期). An absent optional field prints as nothing."""
    out = {}
    for field in licence_type.fields:
        value = record.get(field.source) if field.source else values.get(field.key)
        if field.source == Source.VALID_TO and value is None:
            value = LONG_TERM
        if value is None:
            out[field.key] = ""
        elif field.kind == FieldKind.DATE:
            out[field.key] = date_text(value)
        elif field.kind == FieldKind.MONEY:
            out[field.key] = yuan_in_capitals(Decimal(value))
        else:
            out[field.key] = value
    return out
