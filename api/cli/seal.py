"""`trustctl seal`: the seal registry from the command line.

Importing, authorising, suspending, resuming, revoking and destroying seals are an
officer's acts, signed with their credential (``--credential`` or ``TRUST_OFFICER_KEY``)
and audited; making one takes two officers, one applying and another approving; listing,
showing and marking expired seals need none. `trustctl seal sign` uses a seal as one of its
authorised client applications would (``--client``), refused and audited otherwise, with
the officer who ran it named in the audit log.
"""

from datetime import timedelta
from pathlib import Path

import click
from asn1crypto import pem

from api.cli import exits
from api.cli.approvals import credential_option, credentials_option, json_option, print_json, read_file, run, run_as
from hsm import officers
from seal import making, registry, signing
from seal.picture import MAX_PICTURE_BYTES, picture_from_upload, seal_picture
from seal.registry import SEAL_TYPE_ZH, SealRecord, SealStatus, SealType
from trust import audit, truststore
from trust.clock import utc_now
from trust.errors import TrustError

MAX_CERT_BYTES = 64 * 1024
MAX_SEAL_BYTES = 4 * 1024 * 1024
MAX_DATA_BYTES = 256 * 1024 * 1024

_TYPES = click.Choice([t.value for t in SealType])
_STATUSES = click.Choice([s.value for s in SealStatus])


def _certificates(path: str) -> list[bytes]:
    data = read_file(path, MAX_CERT_BYTES)
    if pem.detect(data):
        return [der for _type, _headers, der in pem.unarmor(data, multiple=True)]
    return [data]


def _describe(record: SealRecord) -> str:
    return "\n".join([
        f"印章 / Seal {record.es_id}  {record.name}",
        f"  类型 / type:       {SEAL_TYPE_ZH[record.seal_type]} {record.seal_type}",
        f"  持有单位 / holder: {record.holder_name} ({record.holder_uscc})",
        f"  状态 / status:     {record.status.zh} {record.status}",
        f"  有效期 / validity: {record.valid_from:%Y-%m-%d %H:%M} — {record.valid_to:%Y-%m-%d %H:%M} UTC",
        f"  图像 / picture:    {record.picture_type} {record.picture_width_mm}×{record.picture_height_mm} mm",
        f"  来源 / origin:     {record.origin}; 签章密钥 / signing key: {record.holder_key_id or '-'}",
        f"  授权客户端 / clients:   {', '.join(record.client_ids) or '-'}",
        f"  授权操作员 / operators: {', '.join(record.operators) or '（任一 / any）'}",
    ])


@click.group(cls=exits.Group)
def seal() -> None:
    """电子印章：制章、登记、用章 / Electronic seals: making, registry, use."""


@seal.command()
@click.option("--holder-name", required=True, help="持有单位名称 / Holder organisation.")
@click.option("--uscc", required=True, help="统一社会信用代码 / Unified social credit code.")
@click.option("--type", "seal_type", type=_TYPES, default="official", show_default=True)
@click.option("--name", help="印章名称（默认为单位名称）/ Seal name (default: the holder's).")
@click.option("--picture", "picture_path", type=click.Path(exists=True, dir_okay=False),
              help="印章图像 PNG/JPG/GIF/BMP/SVG/OFD（默认按类型绘制）/ Picture file (default: drawn by type).")
@click.option("--purpose", help="绘制时印章下部的用途文字（默认按类型，如 合同专用章）/ Purpose text drawn below the star.")
@click.option("--code", help="绘制时沿下弧的印章编码（如公安备案的 13 位编码）/ Seal code drawn along the lower arc.")
@click.option("--dpi", type=click.IntRange(72, 600), default=300, show_default=True,
              help="绘制图像的分辨率 / Resolution of the drawn picture.")
@click.option("--holder-key", required=True, help="签章密钥的标识或标签 / Signing key id or label.")
@click.option("--holder-cert", type=click.Path(exists=True, dir_okay=False),
              help="签章证书（默认为本系统为该密钥签发的）/ Signing certificate (default: ours for the key).")
@click.option("--maker-key", required=True, help="制章密钥的标识或标签 / Seal-maker key id or label.")
@click.option("--maker-cert", type=click.Path(exists=True, dir_okay=False),
              help="制章者证书（默认为本系统为该密钥签发的）/ Seal-maker certificate (default: ours).")
@click.option("--days", type=click.IntRange(1, 20 * 366), default=3 * 365, show_default=True,
              help="有效天数 / Validity in days.")
@click.option("--cert-list-type", type=click.Choice(["1", "2"]), default="1", show_default=True,
              help="1 列出证书，2 列出证书杂凑 / 1 certificates, 2 their SM3 digests.")
@click.option("--client", "client_ids", multiple=True, help="授权的客户端 / Authorised client id (repeat).")
@click.option("--operator", "operators", multiple=True, help="授权的操作员 / Authorised operator (repeat).")
@click.option("--out", type=click.Path(dir_okay=False), help="写出印章（.esl）/ Write the seal here.")
@credentials_option
def make(holder_name, uscc, seal_type, name, picture_path, purpose, code, dpi, holder_key, holder_cert, maker_key,
         maker_cert, days, cert_list_type, client_ids, operators, out, credential_paths) -> None:
    """制作并启用一枚印章：第一名安全员申请，第二名审批 / Make and activate a seal: the first
    officer applies, the second approves (``--credential A --credential B``)."""
    if len(credential_paths) != 2:
        raise click.UsageError("give two officers' credentials: the first applies, the second approves / "
                               "请给出两名安全员的凭据：第一名申请，第二名审批")
    name = name or holder_name
    if picture_path and (purpose or code):
        raise click.UsageError("--purpose and --code are drawn; not with --picture / 上传图像时不能再指定 --purpose、--code")
    try:
        picture = (picture_from_upload(picture_path, read_file(picture_path, MAX_PICTURE_BYTES)) if picture_path
                   else seal_picture(seal_type, holder_name, purpose=purpose, code=code or "", dpi=dpi))
    except TrustError as error:
        raise click.ClickException(f"{error.zh} / {error.en}") from error
    holder_certs = _certificates(holder_cert) if holder_cert else None
    maker_certs = _certificates(maker_cert) if maker_cert else None

    def work(session, keystore, acting):
        approver = officers.identify(session, acting.credentials[1], "seal.approve", uscc)
        holder = making.find_key(session, keystore, holder_key)
        maker = making.find_key(session, keystore, maker_key)
        now = utc_now().replace(microsecond=0)
        return making.make_and_register(
            session, keystore, holder_name=holder_name, holder_uscc=uscc, seal_type=seal_type, name=name,
            picture=picture, holder_key=holder,
            holder_cert=holder_certs[0] if holder_certs else making.certificate_for_key(session, holder),
            maker_key=maker, maker_cert=maker_certs[0] if maker_certs else making.certificate_for_key(session, maker),
            valid_from=now, valid_to=now + timedelta(days=days), actor=acting.officer.id, approver=approver.id,
            client_ids=client_ids, operators=operators, cert_list_type=int(cert_list_type))

    record = run_as("seal.make", uscc, work, credential_paths=credential_paths)
    if out:
        Path(out).write_bytes(record.seal)
    click.echo(_describe(record))


@seal.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--trust-root", "root_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="可信根（另加信任库中的印章根）/ Trusted root, besides the trust store's seal roots.")
@click.option("--holder-key", help="本系统中的签章密钥（可用此章签章）/ Our signing key for it, to sign with it here.")
@click.option("--holder-cert", type=click.Path(exists=True, dir_okay=False),
              help="持有者证书（印章只列杂凑时必需）/ Holder certificate (needed when the seal lists digests).")
@click.option("--holder-name", help="持有单位（默认取自证书）/ Holder (default: from the certificate).")
@click.option("--uscc", help="统一社会信用代码（默认取自证书）/ Credit code (default: from the certificate).")
@click.option("--type", "seal_type", type=_TYPES)
@credential_option
def import_(file, root_paths, holder_key, holder_cert, holder_name, uscc, seal_type, credential_path) -> None:
    """验证并登记外部制作的印章 / Verify and register a seal made elsewhere."""
    der = read_file(file, MAX_SEAL_BYTES)
    roots = [c for path in root_paths for c in _certificates(path)]
    certificate = _certificates(holder_cert)[0] if holder_cert else None

    def work(session, keystore, acting):
        key = making.find_key(session, keystore, holder_key).id if holder_key else None
        trusted = roots + [c.der for c in truststore.trusted_roots(session, "seal")]
        return making.import_seal(session, der, trusted_roots=trusted, holder_key_id=key, keystore=keystore,
                                  holder_certificate=certificate, holder_name=holder_name, holder_uscc=uscc,
                                  seal_type=seal_type, actor=acting.officer.id)

    click.echo(_describe(run_as("seal.import", Path(file).name, work, credential_paths=(credential_path,))))


@seal.command("list")
@click.option("--uscc", help="持有单位 / Holder's credit code.")
@click.option("--status", type=_STATUSES)
@click.option("--type", "seal_type", type=_TYPES)
@click.option("--limit", type=click.IntRange(1, registry.MAX_LIST), default=100, show_default=True)
@json_option
def list_(uscc, status, seal_type, limit, as_json) -> None:
    """列出印章 / List seals."""
    records = run(lambda session, _keystore: registry.list_seals(
        session, holder_uscc=uscc, status=status, seal_type=seal_type, limit=limit), keystore=False)
    if as_json:
        print_json([r.summary() for r in records])
    elif not records:
        click.echo("没有印章 / No seals.")
    else:
        for r in records:
            click.echo(f"{r.es_id:19}  {r.status.zh:4} {r.status:9}  {SEAL_TYPE_ZH[r.seal_type]:6}  "
                       f"{r.name}  ({r.holder_uscc})")


@seal.command()
@click.argument("es_id")
@click.option("--out", type=click.Path(dir_okay=False), help="写出印章（.esl）/ Write the seal (.esl) here.")
@click.option("--picture", "picture_out", type=click.Path(dir_okay=False), help="写出图像 / Write the picture here.")
@json_option
def show(es_id, out, picture_out, as_json) -> None:
    """显示一枚印章及其状态历史 / Show a seal and its status history."""
    record, changes = run(lambda session, _keystore: (registry.get_seal(session, es_id),
                                                      registry.history(session, es_id)), keystore=False)
    if out and record.seal:
        Path(out).write_bytes(record.seal)
    if picture_out:
        Path(picture_out).write_bytes(record.picture)
    if as_json:
        print_json({**record.summary(), "history": changes})
        return
    click.echo(_describe(record))
    click.echo("  状态历史 / history:")
    for c in changes:
        click.echo(f"    {c.at:%Y-%m-%d %H:%M:%S}  {c.from_status or '-'} → {c.to_status}  {c.actor}  {c.reason}")


def _transition(es_id: str, to: SealStatus, reason: str, credential_path: str) -> None:
    record = run_as(f"seal.{to}", es_id, lambda session, _keystore, acting: registry.transition(
        session, es_id, to, actor=acting.officer.id, reason=reason), credential_paths=(credential_path,),
                    keystore=False)
    click.echo(f"{record.es_id}: {record.status.zh} / {record.status}")


@seal.command()
@click.argument("es_id")
@click.option("--reason", required=True, help="原因 / Reason.")
@credential_option
def suspend(es_id, reason, credential_path) -> None:
    """暂停使用印章 / Suspend a seal."""
    _transition(es_id, SealStatus.SUSPENDED, reason, credential_path)


@seal.command()
@click.argument("es_id")
@click.option("--reason", required=True, help="原因 / Reason.")
@credential_option
def resume(es_id, reason, credential_path) -> None:
    """恢复使用暂停的印章 / Resume a suspended seal."""
    _transition(es_id, SealStatus.ACTIVE, reason, credential_path)


@seal.command()
@click.argument("es_ids", nargs=-1)
@click.option("--holder", "holder_uscc", help="撤销此单位的全部印章 / Revoke every seal of this holder (USCC).")
@click.option("--reason", required=True, help="原因 / Reason.")
@credential_option
def revoke(es_ids, holder_uscc, reason, credential_path) -> None:
    """撤销印章（列出的，或某单位的全部）/ Revoke the seals listed, or all of a holder's."""
    if bool(es_ids) == bool(holder_uscc):
        raise click.UsageError("give esIDs or --holder, not both / 请给出印章标识或 --holder，二选一")
    revoked = run_as("seal.revoke", holder_uscc or ",".join(es_ids)[:200], lambda session, _keystore, acting:
                     registry.revoke_many(session, holder_uscc=holder_uscc, es_ids=list(es_ids) or None,
                                          actor=acting.officer.id, reason=reason),
                     credential_paths=(credential_path,), keystore=False)
    click.echo(f"已撤销 {len(revoked)} 枚 / Revoked {len(revoked)}: {' '.join(revoked)}")


@seal.command()
@click.argument("es_id")
@click.option("--reason", required=True, help="原因 / Reason.")
@credential_option
def destroy(es_id, reason, credential_path) -> None:
    """销毁已撤销、已过期或未启用的印章（不可恢复）/ Destroy a revoked, expired or never-used seal (final)."""
    _transition(es_id, SealStatus.DESTROYED, reason, credential_path)


@seal.command()
def expire() -> None:
    """将有效期已过的印章标记为已过期（可由 cron 运行，无需凭据：只反映时间）/ Mark the seals past
    their validity period expired (run it from cron; no credential: it only records the time)."""
    expired = run(lambda session, _keystore: registry.expire_due(session, actor="trustctl seal expire"),
                  keystore=False)
    click.echo(f"已过期 {len(expired)} 枚 / Expired {len(expired)}: {' '.join(expired)}")


@seal.command()
@click.argument("es_id")
@click.option("--client", "client_ids", multiple=True, help="授权的客户端（替换原有）/ Client id (replaces the list).")
@click.option("--operator", "operators", multiple=True, help="授权的操作员（替换原有）/ Operator (replaces the list).")
@click.option("--any-operator", is_flag=True, help="不限操作员 / Any operator of an authorised client.")
@credential_option
def authorise(es_id, client_ids, operators, any_operator, credential_path) -> None:
    """设定谁可以使用印章 / Set who may use a seal."""
    record = run_as("seal.authorise", es_id, lambda session, _keystore, acting: registry.authorise(
        session, es_id, client_ids=client_ids or None, operators=() if any_operator else (operators or None),
        actor=acting.officer.id), credential_paths=(credential_path,), keystore=False)
    click.echo(_describe(record))


@seal.command()
@click.argument("es_id")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), help="原文文件 / The data.")
@click.option("--digest", "digest_hex", help="原文的 SM3 杂凑（64 位十六进制）/ The data's SM3 digest, hex.")
@click.option("--client", "client_id", required=True, help="代表的客户端 / The client application.")
@click.option("--operator", help="操作员 / Operator (subject id).")
@click.option("--purpose", required=True, help="用章事由 / Purpose of the use.")
@click.option("--timestamp", default="none", show_default=True, help="none, local, 或 TSA 地址 / or a TSA URL.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="写出 SES_Signature（DER）/ Output file.")
@credential_option
def sign(es_id, data_path, digest_hex, client_id, operator, purpose, timestamp, out, credential_path) -> None:
    """用章：对原文或其 SM3 杂凑签章（操作的安全员记入审计日志）/ Seal data or its SM3 digest
    (SES_Signature v4); the officer who does it is named in the audit log."""
    if bool(data_path) == bool(digest_hex):
        raise click.UsageError("give --data or --digest, not both / 请给出 --data 或 --digest，二选一")
    try:
        digest = bytes.fromhex(digest_hex) if digest_hex else None
    except ValueError:
        raise click.UsageError("--digest is hexadecimal / --digest 须为十六进制") from None
    data = read_file(data_path, MAX_DATA_BYTES) if data_path else None

    def work(session, keystore, acting):
        # whoever can run trustctl here could sign as any client: the officer is on record
        audit.append(session, f"officer:{acting.officer.id}", "seal.sign-cli", es_id,
                     {"client_id": client_id, "operator": operator, "purpose": purpose})
        return signing.sign(session, keystore, es_id, data=data, digest=digest, client_id=client_id,
                            operator=operator, purpose=purpose, timestamp=timestamp)

    der = run_as("seal.sign", es_id, work, credential_paths=(credential_path,), keep_refusals=True)
    Path(out).write_bytes(der)
    click.echo(f"已签章 / Sealed: {out} ({len(der)} bytes)")
