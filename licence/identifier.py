"""GB/T 36904-2018 电子证照 标识规范: the licence identifier (证照标识).

    1.2.156.3005.2 . <type code> . <issuer code> . <serial> . <version> . <check>

The type code is the catalogue's (defining authority's credit code + 3 digits); the issuer
code is the issuing organisation's credit code, though real identifiers also carry a 6-digit
region code there, so any ``[0-9A-Z]+`` is read; the serial is the issuer's choice
(``[0-9A-Z]+``, our restriction, spec §2 [I]); the version is 3 digits, 001 for the first
issue; the check character is ISO 7064 MOD 37,36 over type + issuer + serial + version,
without dots and without the root (``trust.ids``, where the check system lives).
"""

import re
from dataclasses import dataclass

from trust.errors import InvalidInput
from trust.ids import mod37_36_check_char

ROOT = "1.2.156.3005.2"                  # 电子证照根代码
MAX_LENGTH = 128                         # longer than any real identifier (a 32-hex serial makes ~95)
MAX_VERSION = 999
_PART = re.compile(r"[0-9A-Z]{1,40}")
_SHAPE = re.compile(r"1\.2\.156\.3005\.2\.([0-9A-Z]+)\.([0-9A-Z]+)\.([0-9A-Z]+)\.(\d{3})\.([0-9A-Z])")


class InvalidLicenceId(InvalidInput):
    code = "invalid_licence_id"


@dataclass(frozen=True, order=True)
class LicenceId:
    type_code: str
    issuer_code: str
    serial: str
    version: int

    @property
    def check_char(self) -> str:
        return mod37_36_check_char(f"{self.type_code}{self.issuer_code}{self.serial}{self.version:03d}")

    @property
    def base(self) -> str:
        """What every version of one licence shares: type, issuer and serial."""
        return f"{self.type_code}.{self.issuer_code}.{self.serial}"

    def __str__(self) -> str:
        return f"{ROOT}.{self.base}.{self.version:03d}.{self.check_char}"

    def with_version(self, version: int) -> "LicenceId":
        return build(self.type_code, self.issuer_code, self.serial, version)


def build(type_code: str, issuer_code: str, serial: str, version: int = 1) -> LicenceId:
    """A licence identifier from its parts (each ``[0-9A-Z]``, 1 to 40 characters)."""
    for value, en, zh in ((type_code, "type code", "证照类型代码"), (issuer_code, "issuer code", "颁证单位代码"),
                          (serial, "serial", "流水号")):
        if not isinstance(value, str) or not _PART.fullmatch(value):
            raise InvalidLicenceId(f"the {en} of a licence identifier is 1 to 40 digits or upper-case letters",
                                   f"证照标识中的{zh}须为 1 至 40 位数字或大写字母")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise InvalidLicenceId(f"the version of a licence identifier is 1 to {MAX_VERSION}",
                               f"证照标识中的版本号须为 1 至 {MAX_VERSION}")
    return LicenceId(type_code, issuer_code, serial, version)


def parse(text) -> LicenceId:
    """Read and check a licence identifier; a wrong shape or check character is refused,
    naming what is wrong."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_LENGTH or not text.isascii():
        raise InvalidLicenceId(f"a licence identifier is 1 to {MAX_LENGTH} ASCII characters",
                               f"证照标识须为 1 至 {MAX_LENGTH} 个 ASCII 字符")
    text = text.strip()
    if not text.startswith(ROOT + "."):
        raise InvalidLicenceId(f"a licence identifier (GB/T 36904) starts with {ROOT}",
                               f"证照标识（GB/T 36904）须以 {ROOT} 开头")
    match = _SHAPE.fullmatch(text)
    if match is None:
        raise InvalidLicenceId("a licence identifier is root.type.issuer.serial.version.check: digits and upper-case "
                               "letters, a 3-digit version and one check character",
                               "证照标识须为“根代码.证照类型代码.颁证单位代码.流水号.版本号.校验位”，"
                               "由数字和大写字母组成，版本号 3 位，校验位 1 位")
    type_code, issuer_code, serial, version, check = match.groups()
    licence_id = build(type_code, issuer_code, serial, int(version))
    if licence_id.check_char != check:
        raise InvalidLicenceId(f"the check character of the licence identifier is wrong ({check}, expected "
                               f"{licence_id.check_char})", f"证照标识的校验位错误（为 {check}，应为 {licence_id.check_char}）")
    return licence_id
