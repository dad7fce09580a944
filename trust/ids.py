"""Identifiers: the unified social credit code (GB 32100-2015), the resident ID number
(GB 11643-1999) and the ISO 7064 MOD 37,36 check character of the e-licence identifier
(GB/T 36904-2018; the identifier's structure itself belongs to ``licence/``).

What each check system catches (each is a proof, and the tests try it exhaustively on the
vectors and at random on generated values):

- GB 32100 (MOD 31, weights 3^i mod 31): a substitution changes the weighted sum by
  (a - b) * w with 0 < |a - b| < 31 and w a power of 3, so by a nonzero amount modulo the
  prime 31; the expected check character changes. Every single substitution is caught.
- GB 11643 (ISO 7064 MOD 11-2, weights 2^k mod 11): the same argument modulo the prime 11
  for a digit, and the check character is unique for the other 17 characters.
- ISO 7064 MOD 37,36: one step is P -> S = (P + v) mod 36 (0 read as 36) -> 2S mod 37. For a
  fixed P it is one-to-one in v, and for a fixed v one-to-one in P (2 is invertible mod 37
  and S is never 0), so a changed character gives a different final P in 1..36, hence a
  different check character.
Nothing beyond single substitutions is claimed here.
"""

import random
import string
from dataclasses import dataclass
from datetime import date, timedelta

from trust.errors import InvalidInput

_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_DIGITS = "0123456789"


def _show(ch: str) -> str:
    """A character as a message can show it: quoted, or its code point if invisible."""
    return f"'{ch}'" if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"


def _require_str(value, what_en: str, what_zh: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"the {what_en} must be a string, got {type(value).__name__}",
                           f"{what_zh}必须是文本")
    return value


def _require_length(s: str, length: int, what_en: str, what_zh: str) -> None:
    if len(s) != length:
        raise InvalidInput(f"the {what_en} must have {length} characters, got {len(s)}",
                           f"{what_zh}应为{length}位，实际为{len(s)}位")


def _require_chars(s: str, allowed: str, what_en: str, what_zh: str,
                   allowed_en: str, allowed_zh: str, start: int = 1) -> None:
    """Name the first character of ``s`` outside ``allowed`` and its 1-based position."""
    for pos, ch in enumerate(s, start):
        if ch not in allowed:
            raise InvalidInput(
                f"character {_show(ch)} at position {pos} of the {what_en} is not allowed"
                f" (only {allowed_en})",
                f"{what_zh}第{pos}位的字符{_show(ch)}不允许使用（只允许{allowed_zh}）")


# --- GB 32100-2015: unified social credit code (统一社会信用代码) -----------------------

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_USCC_EN = "unified social credit code"
_USCC_ZH = "统一社会信用代码"

# Position 1, 登记管理部门代码. 1, 5, 9 and Y are in the standard's table; the others come
# from secondary tables only (spec §5 "[C, secondary]") and are accepted so that real
# codes are not refused. Position 2 (机构类别) is left unchecked beyond the character set:
# its table is per department and only partly known, so it is no reason to refuse a code.
USCC_DEPARTMENTS = {
    "1": "机构编制", "2": "外交", "3": "司法行政", "4": "文化", "5": "民政", "6": "旅游",
    "7": "宗教", "8": "工会", "9": "工商（市场监管）", "A": "中央军委改革和编制办公室",
    "N": "农业", "Y": "其他",
}


def uscc_check_char(body17: str) -> str:
    """The 18th character for the first 17 (weights 3^i mod 31, GB 32100-2015 §4.5)."""
    body17 = _require_str(body17, "credit code body", "统一社会信用代码前17位")
    _require_length(body17, 17, "credit code body", "统一社会信用代码前17位")
    _require_chars(body17, USCC_CHARSET, "credit code body", "统一社会信用代码前17位",
                   "digits and upper-case letters except I, O, S, V, Z",
                   "数字和除I、O、S、V、Z以外的大写字母")
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(body17, _USCC_WEIGHTS, strict=False))
    return USCC_CHARSET[-total % 31]


def validate_uscc(code: str) -> str:
    """The code stripped and in upper case, or InvalidInput naming what is wrong.

    Strict: length, character set, the region digits and the check character. Tolerant:
    the department (any of ``USCC_DEPARTMENTS``), the category, and the embedded
    organisation code's own check (see ``uscc_org_code_ok``).
    """
    code = _require_str(code, _USCC_EN, _USCC_ZH).strip().translate(_ASCII_UPPER)
    _require_length(code, 18, _USCC_EN, _USCC_ZH)
    _require_chars(code, USCC_CHARSET, _USCC_EN, _USCC_ZH,
                   "digits and upper-case letters except I, O, S, V, Z",
                   "数字和除I、O、S、V、Z以外的大写字母")
    if code[0] not in USCC_DEPARTMENTS:
        raise InvalidInput(
            f"registration department code {_show(code[0])} (position 1) is unknown",
            f"统一社会信用代码第1位登记管理部门代码{_show(code[0])}未知")
    region = code[2:8]
    if any(ch not in _DIGITS for ch in region):
        raise InvalidInput(
            f"the registration region code (positions 3-8) must be digits, got '{region}'",
            f"统一社会信用代码第3-8位登记管理机关行政区划码必须是数字，实际为'{region}'")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidInput(
            f"the check character of the {_USCC_EN} is '{code[17]}', it should be '{expected}'",
            f"统一社会信用代码校验码错误：第18位为'{code[17]}'，应为'{expected}'")
    return code


# GB 11714-1997: organisation code = 8 characters + 1 check character (0-9 or X).
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def _org_code_check_char(body8: str) -> str:
    total = sum(int(ch, 36) * w for ch, w in zip(body8, _ORG_WEIGHTS, strict=False))  # A=10 ... Z=35
    c = 11 - total % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def uscc_org_code_ok(code: str) -> bool:
    """Whether positions 9-17 of a valid USCC are a GB 11714 organisation code.

    Kept out of ``validate_uscc`` on purpose. It adds no typo detection (the MOD 31 check
    already catches any single substitution there), so its only effect would be to refuse
    codes a registry issued off-standard. Registries did issue such codes (hutool issue
    #4119: real Xiamen codes from before 2016, e.g. 91350203M0001QKT19, fail even the USCC
    check character), and we cannot show that every real 主体标识码 passes GB 11714. Use it
    for a warning, not a refusal. Raises InvalidInput if ``code`` is not a valid USCC.
    """
    code = validate_uscc(code)
    return _org_code_check_char(code[8:16]) == code[16]


def generate_uscc(rng: random.Random, department: str = "9", category: str = "1",
                  region: str = "110000") -> str:
    """A valid test code, with a valid embedded organisation code."""
    org8 = "".join(rng.choice(USCC_CHARSET) for _ in range(8))
    body = department + category + region + org8 + _org_code_check_char(org8)
    return validate_uscc(body + uscc_check_char(body))


# --- GB 11643-1999: resident ID number (公民身份号码) --------------------------------------

_ID_EN = "resident ID number"
_ID_ZH = "公民身份号码"
_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_ID_CHECK_CHARS = "10X98765432"  # indexed by the weighted sum mod 11
OLDEST_BIRTH_DATE = date(1850, 1, 1)


@dataclass(frozen=True)
class ResidentId:
    number: str  # 18 characters, check character X in upper case
    region_code: str  # GB/T 2260 address code, 6 digits
    birth_date: date
    sex: str  # "M" (odd sequence) or "F" (even)
    sequence: str  # 3 digits


def resident_id_check_char(body17: str) -> str:
    """The 18th character for the first 17 digits (ISO 7064 MOD 11-2)."""
    body17 = _require_str(body17, "ID number body", "公民身份号码前17位")
    _require_length(body17, 17, "ID number body", "公民身份号码前17位")
    _require_chars(body17, _DIGITS, "ID number body", "公民身份号码前17位", "digits", "数字")
    return _ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(body17, _ID_WEIGHTS, strict=False)) % 11]


def validate_resident_id(number: str, today: date | None = None) -> ResidentId:
    """Parse and check a resident ID number; ``today`` (default: the local date) bounds
    the birth date."""
    number = _require_str(number, _ID_EN, _ID_ZH).strip().translate(_ASCII_UPPER)
    _require_length(number, 18, _ID_EN, _ID_ZH)
    _require_chars(number[:17], _DIGITS, _ID_EN, _ID_ZH, "digits", "数字")
    _require_chars(number[17], _DIGITS + "X", _ID_EN, _ID_ZH, "a digit or X", "数字或X",
                   start=18)
    yyyymmdd = number[6:14]
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise InvalidInput(f"the birth date {yyyymmdd} is not a real calendar date",
                           f"公民身份号码中的出生日期{yyyymmdd}不是有效日期") from None
    if birth < OLDEST_BIRTH_DATE:
        raise InvalidInput(f"the birth date {yyyymmdd} is before {OLDEST_BIRTH_DATE.year}",
                           f"公民身份号码中的出生日期{yyyymmdd}早于{OLDEST_BIRTH_DATE.year}年")
    if today is None:
        today = date.today()
    if birth > today:
        raise InvalidInput(f"the birth date {yyyymmdd} is in the future (today is {today})",
                           f"公民身份号码中的出生日期{yyyymmdd}晚于今天（{today}）")
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        raise InvalidInput(
            f"the check character of the {_ID_EN} is '{number[17]}', it should be '{expected}'",
            f"公民身份号码校验码错误：第18位为'{number[17]}'，应为'{expected}'")
    sequence = number[14:17]
    return ResidentId(number=number, region_code=number[:6], birth_date=birth,
                      sex="M" if int(sequence) % 2 else "F", sequence=sequence)


def generate_resident_id(rng: random.Random, region: str = "110105",
                         birth: date | None = None, sex: str | None = None) -> str:
    """A valid test number; birth date (1900-2020) and sex are drawn from ``rng`` if not given."""
    if sex is None:
        sex = rng.choice("MF")
    if sex not in ("M", "F"):
        raise InvalidInput(f"sex must be 'M' or 'F', got {sex!r}", "性别只能是M或F")
    if birth is None:
        birth = date(1900, 1, 1) + timedelta(days=rng.randrange(44195))  # to 2020-12-31
    sequence = 2 * rng.randrange(500) + (sex == "M")
    body = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    number = body + resident_id_check_char(body)
    validate_resident_id(number)  # refuses a bad region or a future birth date
    return number


# --- ISO 7064 MOD 37,36 (hybrid): check character of the e-licence identifier ----------

MOD37_36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD37_36_VALUE = {ch: i for i, ch in enumerate(MOD37_36_ALPHABET)}


def mod37_36_check_char(body: str) -> str:
    """The check character over ``body`` (GB/T 36904: type code + issuer code + serial +
    version, without dots and without the root arc)."""
    body = _require_str(body, "check character input", "校验位计算的输入")
    if not body:
        raise InvalidInput("the check character input is empty", "校验位计算的输入为空")
    _require_chars(body, MOD37_36_ALPHABET, "check character input", "校验位计算的输入",
                   "digits and upper-case letters A-Z", "数字和大写字母A-Z")
    p = 36
    for ch in body:
        s = (p + _MOD37_36_VALUE[ch]) % 36 or 36
        p = s * 2 % 37
    return MOD37_36_ALPHABET[(37 - p) % 36]


def mod37_36_valid(s: str) -> bool:
    """Whether the last character of ``s`` is the MOD 37,36 check character of the rest.

    Equivalent to the standard's verification loop (valid iff the final S mod 36 == 1),
    since the check character is the unique c with P + c = 1 (mod 36).
    """
    s = _require_str(s, "check character input", "校验位计算的输入")
    if len(s) < 2 or any(ch not in _MOD37_36_VALUE for ch in s):
        return False
    return mod37_36_check_char(s[:-1]) == s[-1]
