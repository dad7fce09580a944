"""`trustctl verify FILE`: verify a sealed OFD, an electronic seal or a SES_Signature.

What FILE is comes from its bytes: a zip is an OFD document; DER that parses as a SESeal
is a seal (.esl); DER that parses as a SES_Signature is verified against `--data`. Exit
codes (trust.report.EXIT_CODES): 0 VALID, 1 INVALID, 2 INDETERMINATE, 3 the input cannot
be read (not an OFD, seal or SES_Signature at all).
"""

import json
import sys
from contextlib import contextmanager

import click
from asn1crypto import pem

from ofd.verify import verify_ofd
from seal import registry, ses, verify as seal_verify
from trust import db, truststore
from trust.config import load_settings
from trust.errors import InvalidInput, StorageError, TrustError
from trust.report import EXIT_CODES, EXIT_UNREADABLE, Report

CHECK_LABELS = {
    "format": "格式", "integrity": "完整性", "signature": "签名值", "seal": "印章", "seal_binding": "印章绑定",
    "seal_validity": "印章有效期", "certificate": "证书", "chain": "证书链", "revocation": "吊销状态",
    "timestamp": "时间戳", "scope": "保护范围",
}
STATUS_LABELS = {
    "VALID": "有效", "INVALID": "无效", "INDETERMINATE": "无法确定", "PASSED": "通过", "FAILED": "失败",
    "WARNING": "警告", "NOT_APPLICABLE": "不适用",
}


def _certificate(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return data


def verify_bytes(data: bytes, detached: bytes | None, trusted_roots: tuple[bytes, ...], seal_status=None) -> Report:
    """The report for FILE's bytes; InvalidInput if they are none of the formats we verify.
    ``seal_status``: our seal registry's lookup, so a seal suspended or revoked here is reported."""
    if data[:4] == b"PK\x03\x04":
        return verify_ofd(data, trusted_roots=trusted_roots, seal_status=seal_status)
    try:
        ses.parse_seal(data)
        return seal_verify.verify_seal(data, trusted_roots=trusted_roots, seal_status=seal_status)
    except InvalidInput:
        pass
    try:
        ses.parse_signature(data)
    except InvalidInput:
        raise InvalidInput("not an OFD file, an electronic seal or a SES_Signature",
                           "不是 OFD 文件、电子印章或电子签章数据") from None
    return Report("ses", (seal_verify.verify_ses_signature(data, data=detached, trusted_roots=trusted_roots,
                                                            seal_status=seal_status),))


@contextmanager
def _service_state():
    """When this machine runs the service (TRUST_HOME initialised), its trust store's seal
    roots and its seal registry take part: (roots, seal status lookup). Otherwise neither.

    No transaction stays open while verifying: the verifier may fetch OCSP answers from this
    very service, whose SQLite writer lock an open transaction here would hold."""
    settings = load_settings()
    if settings.sqlite_default and not (settings.home / "trust.db").exists():
        yield (), None
        return
    engine = db.make_engine(settings.database_url)
    sessions = db.session_factory(engine)

    def seal_status(es_id: str, seal_der: bytes):
        with sessions() as session:
            return registry.status_lookup(session)(es_id, seal_der)

    state = ((), None)
    try:
        if db.is_initialised(engine):
            with sessions() as session:
                state = (tuple(cert.der for cert in truststore.trusted_roots(session, "seal")), seal_status)
    except StorageError:  # a database that cannot be reached only leaves the registry out
        pass
    try:
        yield state
    finally:
        engine.dispose()


def render(report: Report) -> str:
    status = report.status.value
    lines = [f"结果 Result: {STATUS_LABELS[status]} {status}    格式 format: {report.format}"]
    if not report.signatures:
        lines.append("  文件中没有签名或签章 / the file carries no signature")
    for signature in report.signatures:
        s = signature.status.value
        lines.append("")
        lines.append(f"签名 Signature {signature.id} ({signature.type}): {STATUS_LABELS[s]} {s}")
        if signature.signer:
            lines.append(f"  签名者 signer: {signature.signer}")
        if signature.seal:
            lines.append(f"  印章 seal: {signature.seal.get('name')} ({signature.seal.get('esID')})")
        if signature.signing_time:
            lines.append(f"  签名时间 signing time: {signature.signing_time}")
        for item in signature.checks:
            name, st = item.check.value, item.status.value
            lines.append(f"  {CHECK_LABELS.get(name, name)} {name:<13} {STATUS_LABELS[st]} {st:<14} "
                         f"{item.reason.zh} / {item.reason.en}")
    for warning in report.warnings:
        lines.append(f"警告 warning: {warning.zh} / {warning.en}")
    return "\n".join(lines)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False),
              help="SES_Signature 的原文 / the data a detached SES_Signature signs.")
@click.option("--trust-root", "trust_roots", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="信任的根证书 (PEM/DER)，可重复 / a trusted root certificate, repeatable.")
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
def verify(file: str, data_file: str | None, trust_roots: tuple[str, ...], as_json: bool) -> None:
    """验证签章文件 / Verify a sealed OFD, a seal (.esl) or a SES_Signature."""
    try:
        with open(file, "rb") as f:
            data = f.read()
        detached = None
        if data_file:
            with open(data_file, "rb") as f:
                detached = f.read()
        roots = tuple(_certificate(path) for path in trust_roots)
        with _service_state() as (stored_roots, seal_status):
            report = verify_bytes(data, detached, roots + stored_roots, seal_status)
    except (TrustError, OSError, ValueError) as e:
        zh = getattr(e, "zh", str(e))
        if as_json:
            click.echo(json.dumps({"status": "UNREADABLE", "error": {"zh": zh, "en": str(e)}}, ensure_ascii=False))
        else:
            click.echo(f"无法读取 Unreadable: {zh} / {e}", err=True)
        sys.exit(EXIT_UNREADABLE)
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if as_json else render(report))
    sys.exit(EXIT_CODES[report.status])
