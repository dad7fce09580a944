"""The verification report as `trustctl verify` prints it in a terminal: every line at most
100 columns (a Chinese character takes two), each certificate named by a short name (its
CN, else its O) and its full distinguished name given once, under `--verbose`. `--json`
keeps every reason as the verifier wrote it."""

import re
import unicodedata

from trust.report import Report

WIDTH = 100
CHECK_LABELS = {
    "format": "格式", "integrity": "完整性", "signature": "签名值", "seal": "印章", "seal_binding": "印章绑定",
    "seal_validity": "印章有效期", "certificate": "证书", "chain": "证书链", "revocation": "吊销状态",
    "timestamp": "时间戳", "scope": "保护范围", "licence_status": "证照状态",
}
STATUS_LABELS = {
    "VALID": "有效", "INVALID": "无效", "INDETERMINATE": "无法确定", "PASSED": "通过", "FAILED": "失败",
    "WARNING": "警告", "NOT_APPLICABLE": "不适用",
}
# A distinguished name as trust.x509 writes it: TYPE=value pairs joined by commas, the type
# a label (CN, O, …) or a dotted OID. A value ends at a comma or at the punctuation around it.
_DN = re.compile(r"(?:(?:[A-Z]{1,12}|\d+(?:\.\d+)+)=[^,，'“”（）()→;；\n]+,)+(?:[A-Z]{1,12}|\d+(?:\.\d+)+)=[^,，'“”（）()→;；\n]+")


_NO_LINE_START = set("）」』】〉》，。、；：！？）")


def columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def short_name(dn: str) -> str:
    """The CN of a distinguished name, else its O, else the name itself."""
    parts = dict(part.split("=", 1) for part in dn.split(",") if "=" in part)
    return (parts.get("CN") or parts.get("O") or dn).strip()


def wrap(text: str, indent: int, width: int = WIDTH) -> list[str]:
    """``text`` in lines of at most ``width`` columns, each indented by ``indent`` spaces;
    English breaks between words, Chinese between characters."""
    room = width - indent
    tokens = re.findall(r"[\x21-\x7e]+|\s+|.", text)
    lines, line = [], ""
    for token in tokens:
        if token.isspace():
            token = " "
        if columns(line) + columns(token) > room and line.strip():
            carried = ""
            if token in _NO_LINE_START and len(line.strip()) > 1:
                line, carried = line[:-1], line[-1]  # closing punctuation never starts a line
            lines.append(line.rstrip())
            line = "" if token == " " else carried + token
        else:
            line += token
        while columns(line) > room:  # a single word wider than the line: cut it
            cut = len(line)
            while columns(line[:cut]) > room:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    return [" " * indent + piece for piece in lines] or [" " * indent]


def render(report: Report, *, verbose: bool = False) -> str:
    status = report.status.value
    lines = [f"结果 Result: {STATUS_LABELS[status]} {status}    格式 format: {report.format}"]
    if report.licence:
        lines += _licence_lines(report.licence)
    if not report.signatures:
        lines.append("  文件中没有签名或签章 / the file carries no signature")
    for signature in report.signatures:
        lines += _signature_lines(signature, verbose)
    for warning in report.warnings:
        lines += wrap(f"警告 warning: {_shorten(warning.zh)} / {_shorten(warning.en)}", 0)
    return "\n".join(lines)


def _signature_lines(signature, verbose: bool) -> list[str]:
    s = signature.status.value
    lines = ["", f"签名 Signature {signature.id} ({signature.type}): {STATUS_LABELS[s]} {s}"]
    if signature.signer:
        lines += wrap(f"签名者 signer: {short_name(signature.signer)}", 2)
    if signature.seal:
        lines += wrap(f"印章 seal: {signature.seal.get('name')} ({signature.seal.get('esID')})", 2)
    if signature.signing_time:
        lines.append(f"  签名时间 signing time: {signature.signing_time}")
    for item in signature.checks:
        name, st = item.check.value, item.status.value
        head = f"  {CHECK_LABELS.get(name, name)} {name}"
        head += " " * max(1, 28 - columns(head)) + f"{STATUS_LABELS[st]} {st}"
        lines.append(head)
        lines += wrap(_shorten(item.reason.zh), 6)
        lines += wrap(_shorten(item.reason.en), 6)
    if verbose:
        names = _names(signature)
        if names:
            lines.append("  证书 certificates:")
            for dn in names:
                lines += wrap(f"{short_name(dn)}: {dn}", 4)
    return lines


def _names(signature) -> list[str]:
    """Every distinguished name the signature's report mentions, once each, in order."""
    found = [signature.signer] if signature.signer else []
    for item in signature.checks:
        for text in (item.reason.zh, item.reason.en):
            found += _DN.findall(text)
    return list(dict.fromkeys(dn.strip() for dn in found))


def _shorten(text: str) -> str:
    return _DN.sub(lambda m: short_name(m.group(0)), text)


def _licence_lines(section: dict) -> list[str]:
    """The licence section of a file's report, or of a QR's (which carries no type name, no
    issuer name and no holder code)."""
    issuer, holder = section["issuer"], section["holder"]
    lines = [f"证照 Licence: {section.get('type_name', '')}  {section['licence_id']}".replace(":   ", ": "),
             f"  颁证单位 issuer: {issuer.get('name', '')} ({issuer['code']})",
             f"  持证主体 holder: {holder['name']}" + (f" ({holder['code']})" if "code" in holder else ""),
             f"  有效期 validity: {section['valid_from']} 至 {section['valid_to']}"]
    if "code_matches" in holder:
        lines.append("  证件号码与输入一致 / the holder code given matches" if holder["code_matches"]
                     else "  证件号码与输入不符 / the holder code given does NOT match")
    if "status_list_issued_at" in section:
        lines.append(f"  状态列表 status list of {section['status_list_issued_at']}")
    elif "kid" in section:  # a QR's, checked without a status list
        lines.append("  未提供状态列表 / no status list given")
    elif section.get("status"):
        lines.append(f"  登记状态 registered status: {section['status_zh']} {section['status']} ({section['status_en']})"
                     + (f"，被 {section['superseded_by']} 取代 / superseded" if section.get("superseded_by") else ""))
    else:
        lines.append("  未在本平台登记 / not registered here: 请向颁证单位核实状态 / ask its issuer")
    return [piece for line in lines for piece in wrap(line.lstrip(), len(line) - len(line.lstrip()))]
