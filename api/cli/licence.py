"""`trustctl licence`: the licence catalogue, issuers and licences from the command line.

Listing, showing and exporting need no credential, nor do ``expire`` (run from cron; it
only records what the dates already say), ``lta-renew`` (cron too: it adds document time
stamps from our TSA, audited as the licence service's) and ``make-pdfs`` (cron or after a
conversion: the PDF renditions of licences issued without one, audited likewise). Importing a type, registering an issuer,
issuing (as one of the issuer's client applications, like ``trustctl seal sign``) and
changing a licence's status, registering a consumer and answering a consumer's request for
conditionally shared fields are an officer's acts, signed with their credential
(``--credential`` or ``TRUST_OFFICER_KEY``) and audited with the officer named.
"""

import json
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import click

from api.cli import exits
from api.cli.approvals import credential_option, json_option, print_json, read_file, run, run_as
from identity.clients import get_client
from licence import conversion, issuance, qr_keys, registry, renewal, share_requests, sharing, types
from licence.catalogue import MAX_DEFINITION_BYTES
from licence.registry import TRANSITIONS
from trust import audit
from trust.clock import utc_now
from trust.config import load_settings

MAX_REQUEST_BYTES = 1024 * 1024
MAX_LIST_BYTES = 4 * 1024 * 1024


@click.group(cls=exits.Group)
def licence() -> None:
    """电子证照：目录、颁证单位、签发与状态 / Electronic licences: catalogue, issuers, issuance, status."""


@licence.group("types")
def types_() -> None:
    """证照目录（证照类型）/ The catalogue of licence types."""


@types_.command("list")
@json_option
def types_list(as_json: bool) -> None:
    """列出证照类型（最新版本）/ List licence types (latest versions)."""
    found = run(lambda session, _k: [(v.licence_type, v.version) for v in types.list_latest(session)], keystore=False)
    if as_json:
        print_json([{"type_code": t.type_code, "version": v, "name": t.name, "name_en": t.name_en} for t, v in found])
        return
    for licence_type, version in found:
        click.echo(f"{licence_type.type_code}  v{version}  {licence_type.name} / {licence_type.name_en}  "
                   f"({licence_type.defining_authority})")


@types_.command("show")
@click.argument("type_code")
@click.option("--version", type=click.IntRange(1), help="某一版本（默认最新）/ A version (default: the latest).")
@json_option
def types_show(type_code: str, version: int | None, as_json: bool) -> None:
    """显示证照类型及其照面字段；--json 给出完整定义 / Show a licence type and its face fields; --json: the whole definition."""
    found = run(lambda session, _k: types.get(session, type_code, version), keystore=False)
    definition = found.licence_type.definition
    if as_json:
        click.echo(json.dumps({"version": found.version, "definition": definition}, ensure_ascii=False, indent=2))
        return
    click.echo(f"{definition['name']} / {definition.get('name_en', '')}  {definition['type_code']}  "
               f"第 {found.version} 版 / version {found.version}")
    click.echo(f"  制定机关 / defined by: {definition.get('defining_authority', '')}")
    for field in definition.get("fields", []):
        click.echo(f"  {field['key']:<24} {field.get('label', '')} / {field.get('label_en', '')}  ({field.get('kind', '')})")


@types_.command("export")
@click.option("--out", type=click.Path(dir_okay=False), help="写入文件（默认标准输出）/ Write to a file.")
def types_export(out: str | None) -> None:
    """导出证照目录，供向国家平台报送 / Export the catalogue (JSON) for the national platform."""
    text = json.dumps(run(lambda session, _k: types.export(session), keystore=False), ensure_ascii=False, indent=2)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"已导出 / Exported: {out}")
    else:
        click.echo(text)


@types_.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@credential_option
def types_import(file: str, credential_path: str) -> None:
    """导入证照类型定义（JSON），变化则成为新版本 / Import a type definition; a changed one becomes a new version."""
    data = read_file(file, MAX_DEFINITION_BYTES)
    version, new = run_as("licence.type.import", file,
                          lambda session, _k, acting: types.import_type(session, data, actor=acting.officer.id),
                          credential_paths=(credential_path,), keystore=False)
    t = version.licence_type
    click.echo(f"{'已导入新版本 / Imported as a new version' if new else '与最新版本相同，未改动 / Same as the latest, unchanged'}: "
               f"{t.type_code} v{version.version} {t.name}")


@licence.command("issuer")
@click.argument("type_code")
@click.option("--issuer", "issuer_code", required=True, help="颁证单位统一社会信用代码 / Issuer's credit code.")
@click.option("--name", "issuer_name", required=True, help="颁证单位名称 / Issuer's name.")
@click.option("--seal", "es_id", required=True, help="盖章所用印章的标识 / esID of the seal it seals with.")
@click.option("--client", "client_ids", multiple=True, help="可签发的客户端，可重复 / Client allowed to issue; repeat.")
@click.option("--area", "area_code", help="属地编码（6 位）/ Region code (6 digits).")
@credential_option
def issuer(type_code, issuer_code, issuer_name, es_id, client_ids, area_code, credential_path) -> None:
    """登记颁证单位：所用印章与可签发的客户端 / Register an issuer: its seal and its clients."""
    found = run_as("licence.issuer", f"{type_code}/{issuer_code}", lambda session, _k, acting: registry.register_issuer(
        session, type_code=type_code, issuer_code=issuer_code, issuer_name=issuer_name, es_id=es_id,
        client_ids=client_ids, area_code=area_code, actor=f"officer:{acting.officer.id}"),
        credential_paths=(credential_path,), keystore=False)
    click.echo(f"已登记 / Registered: {found.issuer_name} ({found.issuer_code}) issues {found.type_code} "
               f"with seal {found.es_id}; clients: {', '.join(found.client_ids) or '-'}")


@licence.command("rotate-key")
@click.option("--issuer", "issuer_code", required=True, help="颁证单位统一社会信用代码 / Issuer's credit code.")
@click.option("--algorithm", type=click.Choice(["sm2", "es256"]), default="sm2", show_default=True,
              help="二维码签名算法 / The QR payload's signature algorithm.")
@credential_option
def rotate_key(issuer_code: str, algorithm: str, credential_path: str) -> None:
    """为颁证单位生成新的证照二维码签名密钥，旧密钥退役但仍列出 / A new QR signing key for an issuer; the old one
    is retired and stays in the key list, so the codes it signed keep verifying."""
    key = run_as("licence.qr_key.rotate", issuer_code, lambda session, keystore, acting: qr_keys.rotate(
        session, keystore, issuer_code, algorithm=algorithm, actor=f"officer:{acting.officer.id}"),
        credential_paths=(credential_path,))
    click.echo(f"已生成 / Generated: {key.algorithm} key {key.kid.hex()} for {key.issuer_code}")


@licence.group("consumer")
def consumer() -> None:
    """证照使用方：可用证照的部门应用及其类型与用途 / Licence consumers: applications, their types and purposes."""


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.replace("，", ",").split(",") if part.strip()]


@consumer.command("add")
@click.argument("client_id")
@click.option("--types", "type_codes", multiple=True, required=True,
              help="可使用的证照类型代码，逗号分隔或重复 / Licence type codes it may use: comma-separated or repeated.")
@click.option("--purposes", multiple=True, required=True,
              help="登记的使用用途，逗号分隔或重复 / The purposes it may state: comma-separated or repeated.")
@credential_option
def consumer_add(client_id: str, type_codes: tuple[str, ...], purposes: tuple[str, ...], credential_path: str) -> None:
    """登记（或重新登记）证照使用方 / Register (or re-register) an application as a licence consumer."""
    def act(session, _keystore, acting):
        get_client(session, client_id)  # NotFound for an application that is not registered
        return sharing.add_consumer(session, client_id, types=_split(type_codes), purposes=_split(purposes),
                                    actor=f"officer:{acting.officer.id}")
    found = run_as("licence.consumer.add", client_id, act, credential_paths=(credential_path,), keystore=False)
    click.echo(f"已登记 / Registered: {found.client_id} uses {', '.join(found.types)} for {'、'.join(found.purposes)}")


@consumer.command("remove")
@click.argument("client_id")
@credential_option
def consumer_remove(client_id: str, credential_path: str) -> None:
    """注销证照使用方登记 / Remove an application's registration as a licence consumer."""
    run_as("licence.consumer.remove", client_id, lambda session, _k, acting: sharing.remove_consumer(
        session, client_id, actor=f"officer:{acting.officer.id}"), credential_paths=(credential_path,), keystore=False)
    click.echo(f"已注销 / Removed: {client_id}")


@consumer.command("list")
@json_option
def consumer_list(as_json: bool) -> None:
    """列出证照使用方 / List the licence consumers."""
    found = run(lambda session, _k: sharing.consumers(session), keystore=False)
    if as_json:
        print_json([c.to_dict() for c in found])
        return
    for c in found:
        click.echo(f"{c.client_id}  {', '.join(c.types)}  {'、'.join(c.purposes)}")


@licence.group("requests")
def requests_() -> None:
    """使用方对有条件共享字段的申请，由颁证部门审批 / Consumers' requests for conditionally shared fields."""


@requests_.command("list")
@click.option("--status", type=click.Choice([s.value for s in share_requests.RequestStatus]),
              help="只列此状态 / Only requests in this state.")
@click.option("--issuer", "issuer_codes", multiple=True, help="颁证单位代码 / Of these issuers (credit codes).")
@json_option
def requests_list(status: str | None, issuer_codes: tuple[str, ...], as_json: bool) -> None:
    """列出申请，最早的在前；待审批的显示已等待时间 / List requests, oldest first; pending ones with their age."""
    wanted = share_requests.RequestStatus(status) if status else None
    found = run(lambda session, _k: share_requests.listed(session, status=wanted, issuer_codes=issuer_codes or None),
                keystore=False)
    now = utc_now()
    if as_json:
        print_json([r.to_dict(now) for r in found])
        return
    for r in found:
        state = f"待审批 pending {_age(now - r.requested_at)}" if r.status == share_requests.RequestStatus.PENDING \
            else f"{r.status.value} {r.answered_by}"
        click.echo(f"{r.id}  {r.client_id}  {r.licence_id}  {r.purpose}  {state}\n    {r.reason}")


def _age(age: timedelta) -> str:
    hours = int(age.total_seconds()) // 3600
    return f"{hours // 24} 天 {hours % 24} 小时 / {hours // 24} d {hours % 24} h"


@requests_.command("answer")
@click.argument("request_id")
@click.argument("decision", type=click.Choice(["approve", "refuse"]))
@click.option("--answer", "words", required=True, help="审批意见 / The officer's words (2–500 characters).")
@credential_option
def requests_answer(request_id: str, decision: str, words: str, credential_path: str) -> None:
    """批准（按申请期限）或拒绝申请 / Approve (for the period asked) or refuse a request."""
    found = run_as(f"licence.request.{decision}", request_id, lambda session, _k, acting: share_requests.answer(
        session, request_id, approve=decision == "approve", words=words, actor=f"officer:{acting.officer.id}"),
        credential_paths=(credential_path,), keystore=False)
    until = f" until {found.until:%Y-%m-%d %H:%M} UTC" if found.until else ""
    click.echo(f"{'已批准 / Approved' if found.status == 'approved' else '已拒绝 / Refused'}: {found.id}{until}")


@licence.command("usage")
@click.option("--by", "group", type=click.Choice(sharing.USAGE_GROUPS), default="consumer", show_default=True,
              help="按使用方、证照类型或月份统计 / Count by consumer, licence type or month.")
@json_option
def usage(group: str, as_json: bool) -> None:
    """证照使用频度：查询与比对次数 / How often licences are used: queries and comparisons."""
    found = run(lambda session, _k: sharing.usage(session, group), keystore=False)
    if as_json:
        print_json([{group: key, "uses": count} for key, count in found])
        return
    for key, count in found:
        click.echo(f"{key}  {count}")


@licence.command("keys")
@json_option
def keys(as_json: bool) -> None:
    """列出证照二维码签名密钥（即 /.well-known/licence-keys 所列）/ List the licence QR keys (as the key list)."""
    found = run(lambda session, _k: qr_keys.listed(session), keystore=False)
    if as_json:
        print_json([{"kid": k.key.kid.hex(), "algorithm": k.key.algorithm, "issuer_code": k.key.issuer_code,
                     "created_at": k.created_at, "retired_at": k.retired_at} for k in found])
        return
    for k in found:
        state = f"retired {k.retired_at:%Y-%m-%d}" if k.retired_at else "current"
        click.echo(f"{k.key.kid.hex()}  {k.key.algorithm:<18} {k.key.issuer_code}  {state}")


@licence.command("cache")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="写入的目录 / The folder to write into.")
@click.option("--url", help="信任服务地址（默认 TRUST_PUBLIC_URL）/ The trust service (default: TRUST_PUBLIC_URL).")
def cache(out_dir: str, url: str | None) -> None:
    """下载离线核验证照二维码所需的密钥列表与状态列表 / Download the key list and the status list an offline QR
    verifier needs (then: trustctl verify --qr … --keys … --status-list … --trust-root ROOT)."""
    base = (url or load_settings().public_url).rstrip("/")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for path, name in (("/.well-known/licence-keys", "licence-keys.cose"), ("/api/v1/status-lists/1", "status-list-1.cwt")):
        try:
            with urllib.request.urlopen(base + path, timeout=30) as answer:
                data = answer.read(MAX_LIST_BYTES + 1)
        except (OSError, ValueError) as e:
            click.echo(f"无法下载 / Cannot download {base + path}: {e}", err=True)
            sys.exit(exits.FAILED)
        if len(data) > MAX_LIST_BYTES:
            click.echo(f"过大 / Too large: {base + path}", err=True)
            sys.exit(exits.FAILED)
        (folder / name).write_bytes(data)
        click.echo(f"已保存 / Saved {folder / name} ({len(data)} bytes)")


@licence.command("issue")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--client", "client_id", required=True, help="代表的颁证部门客户端 / The issuing client application.")
@click.option("--idempotency-key", help="幂等键：重复执行不会重复签发 / Repeating with it never issues twice.")
@click.option("--out", type=click.Path(dir_okay=False), help="写出已签章的 OFD / Write the sealed OFD.")
@credential_option
def issue(file: str, client_id: str, idempotency_key: str | None, out: str | None, credential_path: str) -> None:
    """按 JSON 请求签发证照（与 POST /api/v1/licences 相同）/ Issue a licence from a JSON request (as the API)."""
    try:
        body = json.loads(read_file(file, MAX_REQUEST_BYTES))
    except ValueError as e:
        raise click.UsageError(f"{file}: not JSON / 不是 JSON: {e}") from None
    public_url = load_settings().public_url

    def work(session, keystore, acting):
        audit.append(session, f"officer:{acting.officer.id}", "licence.issue-cli", client_id,
                     {"idempotency_key": idempotency_key})
        record, new = issuance.issue(session, keystore, body, client_id=client_id, verify_url=public_url,
                                     idempotency_key=idempotency_key)
        return record, new, registry.ofd_file(session, record.licence_id)

    record, new, data = run_as("licence.issue", client_id, work, credential_paths=(credential_path,),
                               keep_refusals=True)
    if out:
        Path(out).write_bytes(data)
    click.echo(f"{'已签发 / Issued' if new else '此前已签发 / Issued before'}: {record.licence_id}")
    click.echo(f"  核验页面 / Verification page: {issuance.verify_url_for(public_url, record.licence_id)}")
    if out:
        click.echo(f"  文件 / File: {out}")


@licence.command("show")
@click.argument("licence_id")
@json_option
def show(licence_id: str, as_json: bool) -> None:
    """显示证照记录、状态与历史 / Show a licence's record, status and history."""
    record, history = run(lambda session, _k: (registry.get(session, licence_id),
                                               registry.history(session, licence_id)), keystore=False)
    if as_json:
        print_json({**record.to_dict(), "history": [h.to_dict() for h in history]})
        return
    r = record.record
    click.echo(f"证照 / Licence {record.licence_id}\n  {r['type_name']}  {r['holder']['name']}\n"
               f"  状态 / status: {record.status.zh} {record.status.value}"
               + (f"，被 {record.superseded_by} 取代 / superseded" if record.superseded_by else ""))
    for h in history:
        click.echo(f"  {h.at:%Y-%m-%d %H:%M:%S} {h.operation.value} → {h.to_status.value} {h.actor} {h.reason}")


@licence.command("file")
@click.argument("licence_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="写出 OFD / Output file.")
def file_(licence_id: str, out: str) -> None:
    """导出已签章的证照 OFD / Write a licence's sealed OFD."""
    data = run(lambda session, _k: registry.ofd_file(session, licence_id), keystore=False)
    Path(out).write_bytes(data)
    click.echo(f"已写出 / Written: {out} ({len(data)} bytes)")


def _status_command(act: str):
    @click.argument("licence_id")
    @click.option("--reason", required=True, help="理由 / Reason.")
    @credential_option
    def command(licence_id: str, reason: str, credential_path: str) -> None:
        found = run_as(f"licence.{act}", licence_id, lambda session, _k, acting: registry.transition(
            session, licence_id, act, actor=f"officer:{acting.officer.id}", reason=reason),
            credential_paths=(credential_path,), keystore=False)
        click.echo(f"{found.licence_id}: {found.status.zh} {found.status.value}")
    command.__doc__ = f"{registry.ACT_ZH[act]}证照 / {act.capitalize()} a licence."
    return licence.command(act)(command)


for _act in TRANSITIONS:
    if _act != "expire":
        _status_command(_act)


@licence.command("expire")
def expire() -> None:
    """将有效期届满的证照标记为失效（供定时任务）/ Mark licences past their validity expired (for cron)."""
    expired = run(lambda session, _k: registry.expire_due(session, actor="cron"), keystore=False)
    click.echo(f"已标记失效 / Marked expired: {len(expired)}")
    for licence_id in expired:
        click.echo(f"  {licence_id}")


@licence.command("convert")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--type", "type_code", required=True, help="证照类型代码 / The licence type code.")
@click.option("--issuer", "issuer_code", required=True, help="颁证单位统一社会信用代码 / The issuer's credit code.")
@click.option("--source", required=True, help="来源说明，如“2015—2020 年纸质证照档案” / Where the rows come from.")
@click.option("--client", "client_id", help="以颁证单位的哪个客户端签发（仅一个时可省略）/ The issuer's client application to "
                                            "issue as (may be left out when it has one).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="错误报告 CSV（默认 FILE.errors.csv）/ The error report (default: FILE.errors.csv).")
@credential_option
def convert(file: str, type_code: str, issuer_code: str, source: str, client_id: str | None, report_path: str | None,
            credential_path: str) -> None:
    """把存量证照表（.csv、.jsonl、.xlsx）逐行转换为电子证照；中断后重新运行只补未完成的行 / Convert a table of existing
    licences (.csv, .jsonl, .xlsx), one licence a row; run it again after an interruption to finish the rest.

    \b
    退出码 1：有行未能转换（见错误报告）。Exit 1: some rows were not converted (see the error report)."""
    data = read_file(file, conversion.MAX_FILE)
    public_url = load_settings().public_url
    report = Path(report_path or f"{file}.errors.csv")

    def work(session, keystore, acting):
        operator = f"officer:{acting.officer.id}"
        licence_type = types.get(session, type_code).licence_type
        rows = conversion.read_rows(data, file, licence_type)
        client = client_id or _only_client(session, type_code, issuer_code)
        origin = conversion.provenance(source, Path(file).name, data, operator)
        results, started = [], time.monotonic()

        def rate(_item) -> str:
            elapsed = time.monotonic() - started
            return f"{len(results) / elapsed:.1f} 行/s rows/s" if elapsed > 0 and results else ""

        with click.progressbar(length=len(rows), label="转换 / Converting", file=sys.stderr, show_pos=True,
                               show_eta=True, item_show_func=rate) as bar:
            for result in conversion.convert(session, keystore, rows, type_code=type_code, issuer_code=issuer_code,
                                             client_id=client, origin=origin, verify_url=public_url):
                results.append(result)
                bar.update(1, result)
        return results, time.monotonic() - started

    results, took = run_as("licence.convert", f"{type_code}/{issuer_code}", work, credential_paths=(credential_path,),
                           keep_refusals=True)
    counts = Counter(r.outcome for r in results)
    errors = [e for r in results for e in r.errors]
    report.write_bytes(conversion.error_report(errors))
    click.echo(f"已转换 / Converted: {counts[conversion.Outcome.CONVERTED]}  "
               f"此前已转换 / Done before: {counts[conversion.Outcome.DONE_BEFORE]}  "
               f"未转换 / Not converted: {counts[conversion.Outcome.FAILED]}  "
               f"({took:.1f} s, {len(results) / took if took else 0:.1f} 行/s rows/s)")
    click.echo(f"错误报告 / Error report: {report}")
    if counts[conversion.Outcome.FAILED]:
        sys.exit(1)


@licence.command("make-pdfs")
@click.option("--limit", type=click.IntRange(1), default=100_000, show_default=True,
              help="本次最多补签的份数 / At most this many PDFs this run.")
def make_pdfs(limit: int) -> None:
    """为尚无 PDF 的有效证照补签 PDF（如批量转换的证照；供定时任务，可重复运行）/ Make the PDFs of valid licences
    that have none (such as converted ones); for cron, safe to run again."""
    def work(session, keystore):
        pending = issuance.without_pdf(session, limit=limit)
        started = time.monotonic()

        def rate(_item) -> str:
            elapsed = time.monotonic() - started
            return f"{bar.pos / elapsed:.1f} 份/s PDFs/s" if elapsed > 0 and bar.pos else ""

        with click.progressbar(pending, label="补签 PDF / Making PDFs", file=sys.stderr, show_pos=True,
                               show_eta=True, item_show_func=rate) as bar:
            for licence_id in bar:
                issuance.add_pdf(session, keystore, licence_id, actor=registry.LICENCE_SERVICE)
                session.commit()
        return len(pending)

    made = run(work)
    click.echo(f"已补签 PDF / PDFs made: {made}")


def _only_client(session, type_code: str, issuer_code: str) -> str:
    clients = registry.get_issuer(session, type_code, issuer_code).client_ids
    if len(clients) != 1:
        raise click.UsageError(f"the issuer has {len(clients)} client applications: name one with --client / "
                               f"颁证单位有 {len(clients)} 个客户端，请用 --client 指定")
    return clients[0]


@licence.command("lta-renew")
@click.option("--within-days", type=click.IntRange(0, 3650), default=90, show_default=True,
              help="续期最新文档时间戳的时间戳服务证书在此天数内到期的 PDF / Renew PDFs whose newest document "
                   "time stamp's TSA certificate expires within this many days.")
@json_option
def lta_renew(within_days: int, as_json: bool) -> None:
    """为证照 PDF 追加新的文档时间戳（PAdES B-LTA，供定时任务；可重复运行）/ Add a fresh document time stamp to
    licence PDFs before their TSA certificate expires (PAdES B-LTA; for cron; safe to run again).

    \b
    退出码 1：有到期的 PDF 无法续期（本机时间戳服务证书并不更晚到期，请先更新它）。
    Exit 1: some PDFs are due but cannot be renewed (our TSA's certificate does not last longer: renew it first)."""
    within = timedelta(days=within_days)

    def work(session, keystore):
        ids = renewal.with_pdf(session)
        done = []
        with click.progressbar(length=len(ids), label="续期 / Renewing", file=sys.stderr,
                               show_pos=True) as bar:
            for result in renewal.renew_all(session, keystore, within=within, actor="cron"):
                done.append(result)
                bar.update(1)
        return done

    results = run(work)
    counts = Counter(r.outcome for r in results)
    stuck = [r for r in results if r.outcome is renewal.Outcome.TSA_EXPIRES_TOO]
    if as_json:
        print_json({"within_days": within_days, "renewed": counts[renewal.Outcome.RENEWED],
                    "not_due": counts[renewal.Outcome.NOT_DUE], "tsa_expires_too": len(stuck),
                    "licences": [r.to_dict() for r in results if r.outcome is not renewal.Outcome.NOT_DUE]})
    else:
        click.echo(f"已续期 / Renewed: {counts[renewal.Outcome.RENEWED]}  "
                   f"未到期 / Not due: {counts[renewal.Outcome.NOT_DUE]}  "
                   f"无法续期 / Cannot renew: {len(stuck)}")
        for r in results:
            if r.outcome is renewal.Outcome.RENEWED:
                click.echo(f"  {r.licence_id}  已续期 renewed")
    if stuck:
        first = min(r.stamp_expires for r in stuck)
        click.echo(f"{len(stuck)} 份 PDF 的时间戳将于 {first:%Y-%m-%d} 前到期，但本机时间戳服务证书并不更晚到期："
                   f"请先更新时间戳服务证书 / {len(stuck)} PDFs have time stamps expiring by {first:%Y-%m-%d} but our "
                   f"TSA's certificate does not last longer: renew the TSA certificate first", err=True)
        sys.exit(exits.FAILED)
