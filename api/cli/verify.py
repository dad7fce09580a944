"""`trustctl verify FILE`: verify a sealed OFD, an electronic licence, a signed PDF (PAdES),
an electronic seal, a SES_Signature, a GB/T 35275 SignedData or a bare SM2 signature.

What FILE is comes from its bytes: a zip is an OFD document, and a licence when it carries
GB/T 36903 metadata (then the licence registry of this machine's service, when there is
one, decides its status too: licence/verify.py); DER that parses as a SESeal
is a seal (.esl); DER that parses as a SES_Signature, a SignedData (PKCS#7 or GB/T 35275
OIDs) or an SM2 signature (DER or 64-byte r‖s) is verified against `--data`, as it would be
inside an OFD. A bare signature names no signer: `--signer-cert` gives candidates (also for
OFD `Sign` signatures and SignedData without certificates). Exit codes
(trust.report.EXIT_CODES): 0 VALID, 1 INVALID, 2 INDETERMINATE, 3 the input cannot be read
(none of these formats at all).

`--qr IMAGE_OR_TEXT` verifies a licence QR offline (licence/qr_payload.py) with the key list
and status lists cached by `trustctl licence cache`; their signatures must chain to a root
given with `--trust-root` or trusted here for licences.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import click
from asn1crypto import pem

from api.cli import exits
from api.cli.report_text import render
from licence import qr_keys, qr_payload, registry as licences, status_list
from licence.verify import is_pdf, read_metadata, verify_licence
from ofd.verify import verify_ofd
from seal import registry, ses, verify as seal_verify
from trust import db, truststore
from trust.clock import iso_z, utc_now
from trust.config import load_settings
from trust.errors import InvalidInput, NotFound, StorageError, TrustError
from trust.report import EXIT_CODES, EXIT_UNREADABLE, Message, Report
from trust.x509 import Certificate, load_certificates


def _certificate(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return data


def _signer_certificates(path: str) -> tuple[Certificate, ...]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return load_certificates(data)
    except InvalidInput as e:
        raise InvalidInput(f"--signer-cert {path}: {e.en}", f"--signer-cert {path}：{e.zh}") from None


@dataclass(frozen=True)
class ServiceState:
    """What this machine's service adds to a verification, when it runs here: the roots its
    trust store trusts per purpose, and its seal and licence registries."""

    seal_roots: tuple[bytes, ...] = ()
    licence_roots: tuple[bytes, ...] = ()
    seal_status: Callable | None = None
    licence_lookup: Callable = field(default=lambda licence_id: None)


def verify_bytes(data: bytes, detached: bytes | None, trusted_roots: tuple[bytes, ...],
                 state: ServiceState = ServiceState(), signer_certs: tuple[Certificate, ...] = ()) -> Report:
    """The report for FILE's bytes; InvalidInput if they are none of the formats we verify.
    ``state``: the service's trust store and registries, so a seal suspended or a licence
    revoked here is reported. ``signer_certs``: candidate signers for values that carry none."""
    if is_pdf(data):  # PAdES: the roots the service trusts for licences and seals, and those given
        return verify_licence(data, lookup=state.licence_lookup,
                              trusted_roots=trusted_roots + state.licence_roots + state.seal_roots)
    if data[:4] == b"PK\x03\x04":
        roots = trusted_roots + state.seal_roots
        try:
            is_licence = read_metadata(data) is not None
        except TrustError:
            is_licence = False
        if is_licence:
            return verify_licence(data, lookup=state.licence_lookup, trusted_roots=roots + state.licence_roots,
                                  seal_status=state.seal_status)
        return verify_ofd(data, trusted_roots=roots, certificates=signer_certs, seal_status=state.seal_status)
    roots = trusted_roots + state.seal_roots
    try:
        ses.parse_seal(data)
        return seal_verify.verify_seal(data, trusted_roots=roots, seal_status=state.seal_status)
    except InvalidInput:
        pass
    try:
        ses.parse_signature(data)
    except InvalidInput:
        pass
    else:
        return Report("ses", (seal_verify.verify_ses_signature(data, data=detached, trusted_roots=roots,
                                                                seal_status=state.seal_status),))
    try:
        return seal_verify.verify_signed_value(data, data=detached, certificates=signer_certs, trusted_roots=roots)
    except InvalidInput:
        raise InvalidInput("not an OFD file, an electronic seal, a SES_Signature, a SignedData or an SM2 signature",
                           "不是 OFD 文件、电子印章、电子签章数据、签名数据或 SM2 签名值") from None


@contextmanager
def _service_state():
    """When this machine runs the service (TRUST_HOME initialised), its trust store's seal
    and licence roots and its registries take part. Otherwise none of them.

    No transaction stays open while verifying: the verifier may fetch OCSP answers from this
    very service, whose SQLite writer lock an open transaction here would hold."""
    settings = load_settings()
    if settings.sqlite_default and not (settings.home / "trust.db").exists():
        yield ServiceState()
        return
    engine = db.make_engine(settings.database_url)
    sessions = db.session_factory(engine)

    def seal_status(es_id: str, seal_der: bytes):
        with sessions() as session:
            return registry.status_lookup(session)(es_id, seal_der)

    def licence_lookup(licence_id: str):
        with sessions() as session:
            try:
                return licences.get(session, licence_id), licences.history(session, licence_id)
            except NotFound:
                return None

    state = ServiceState()
    try:
        if db.is_initialised(engine):
            with sessions() as session:
                state = ServiceState(tuple(cert.der for cert in truststore.trusted_roots(session, "seal")),
                                     tuple(cert.der for cert in truststore.trusted_roots(session, "licence")),
                                     seal_status, licence_lookup)
    except StorageError:  # a database that cannot be reached only leaves the registries out
        pass
    try:
        yield state
    finally:
        engine.dispose()


def _qr_text(value: str) -> str:
    """The QR's text: ``value`` itself, or what zbarimg reads from the image file it names."""
    if not os.path.isfile(value):
        return value
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        raise exits.Unreadable("reading a QR image needs zbarimg (apt-get install zbar-tools)",
                               "读取二维码图像需要 zbarimg（apt-get install zbar-tools）")
    done = subprocess.run([zbarimg, "--quiet", "--raw", value], capture_output=True, timeout=60)
    text = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not text:
        raise exits.Unreadable(f"no QR code could be read from {value}", f"无法从 {value} 读出二维码")
    return text.splitlines()[0]


def verify_qr(value: str, keys_file: str | None, status_files: tuple[str, ...], holder_code: str | None,
              trusted_roots: tuple[bytes, ...], licence_file: bytes | None = None) -> Report:
    """A licence QR offline: its payload checked with the cached key list and status lists
    (`trustctl licence cache`), whose own signatures chain to ``trusted_roots``."""
    text = _qr_text(value)
    key_list = None
    if keys_file:
        with open(keys_file, "rb") as f:
            key_list = qr_keys.read_key_list(f.read(), trusted_roots=trusted_roots)
    lists = []
    for path in status_files:
        with open(path, "rb") as f:
            lists.append(status_list.read_token(f.read(), trusted_roots=trusted_roots))
    try:
        wanted = qr_payload.decode_any(text).claims.status
    except InvalidInput:
        wanted = None
    chosen = next((s for s in lists if wanted and s.uri.endswith(f"/status-lists/{wanted[0]}")),
                  lists[0] if lists else None)
    report = qr_payload.verify(text, [k.key for k in key_list.keys] if key_list else [], file=licence_file,
                               holder_code=holder_code, statuses=chosen)
    now = utc_now()
    if key_list is not None and key_list.stale(now) and report.licence is not None:
        report = replace(report, licence={**report.licence, "key_list_issued_at": iso_z(key_list.issued_at)},
                         warnings=(*report.warnings, Message(
                             zh=f"密钥列表签发于 {iso_z(key_list.issued_at)}，已超过其有效时长，请用 trustctl licence cache 更新",
                             en=f"the key list of {iso_z(key_list.issued_at)} is past its ttl: refresh it with "
                                f"trustctl licence cache")))
    return report


@click.command(cls=exits.Command)
@click.argument("file", required=False, type=click.Path(dir_okay=False))  # missing: unreadable input (exit 3)
@click.option("--qr", help="证照二维码：图像文件（用 zbarimg 读取）或其文本 / A licence QR: an image (read with zbarimg) "
                           "or its text; FILE, if given, is the licence it should be.")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False),
              help="缓存的密钥列表（trustctl licence cache）/ The cached key list, for --qr.")
@click.option("--status-list", "status_files", multiple=True, type=click.Path(dir_okay=False),
              help="缓存的状态列表，可重复 / A cached status list, for --qr; repeatable.")
@click.option("--holder-code", help="持证主体证件号码，与二维码比对 / The holder's code shown to you, compared with --qr's.")
@click.option("--data", "data_file", type=click.Path(dir_okay=False),
              help="SES_Signature 的原文 / the data a detached SES_Signature signs.")
@click.option("--signer-cert", "signer_certs", multiple=True, type=click.Path(dir_okay=False),
              help="签名者证书 (PEM/DER)，用于不含证书的签名值，可重复 / the signer's certificate, for signed values "
                   "that carry none (bare SM2 signatures), repeatable.")
@click.option("--trust-root", "trust_roots", multiple=True, type=click.Path(dir_okay=False),
              help="信任的根证书 (PEM/DER)，可重复 / a trusted root certificate, repeatable.")
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
@click.option("--verbose", "-v", is_flag=True, help="列出证书的完整名称 / Also list each certificate's full name.")
def verify(file: str | None, qr: str | None, keys_file: str | None, status_files: tuple[str, ...],
           holder_code: str | None, data_file: str | None, signer_certs: tuple[str, ...], trust_roots: tuple[str, ...],
           as_json: bool, verbose: bool) -> None:
    """验证签章文件或证照二维码 / Verify a sealed OFD or licence, a signed PDF, a seal (.esl), a SES_Signature, a
    SignedData or an SM2 signature; or, with --qr, a licence QR offline."""
    if file is None and qr is None:
        raise click.UsageError("give FILE, or --qr / 请给出 FILE 或 --qr")
    try:
        data = None
        if file is not None:
            with open(file, "rb") as f:
                data = f.read()
        roots = tuple(_certificate(path) for path in trust_roots)
        if qr is not None:
            with _service_state() as state:
                report = verify_qr(qr, keys_file, status_files, holder_code, roots + state.licence_roots, data)
        else:
            detached = None
            if data_file:
                with open(data_file, "rb") as f:
                    detached = f.read()
            signers = tuple(cert for path in signer_certs for cert in _signer_certificates(path))
            with _service_state() as state:
                report = verify_bytes(data or b"", detached, roots, state, signers)  # FILE given: checked above
    except (TrustError, OSError, ValueError) as e:
        if isinstance(e, OSError):
            e = TrustError(f"cannot read {e.filename}: {e.strerror}", f"无法读取文件 {e.filename}：{e.strerror}")
        zh = getattr(e, "zh", str(e))
        if as_json:
            click.echo(json.dumps({"status": "UNREADABLE", "error": {"zh": zh, "en": str(e)}}, ensure_ascii=False))
        else:
            click.echo(f"无法读取 Unreadable: {zh} / {e}", err=True)
        sys.exit(EXIT_UNREADABLE)
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if as_json else render(report, verbose=verbose))
    sys.exit(EXIT_CODES[report.status])
