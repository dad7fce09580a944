"""`trustctl audit`: check the audit chain and its signed checkpoints, print its head, sign
a checkpoint and export it; the audit administrator's search, export and usage counts,
signed with their credential (trust.duties) and themselves audited.

Exit codes (api/cli/exits.py): 0 the chain is intact, 1 it is broken (`verify` names the
first bad record and every checkpoint finding), 3 an anchor file that cannot be read,
5 the database cannot be read or is not initialised.
"""

import dataclasses
import getpass
import json
import sys

import click

from api.cli import exits
from api.cli.approvals import credential_option, run_as
from hsm import checkpoints
from hsm.keystore import open_keystore
from trust import audit as audit_log, audit_query, events
from trust.config import load_settings
from trust.db import check_ready, make_engine, session_factory
from trust.errors import AuditChainBroken, TrustError


@click.group(cls=exits.Group)
def audit() -> None:
    """审计日志 / Audit log."""


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
@click.option("--anchor", "anchor_file", type=click.File("rb"),
              help="另行保存的检查点（audit checkpoint --export）/ A checkpoint kept elsewhere "
                   "(from `audit checkpoint --export`).")
def verify(as_json: bool, anchor_file) -> None:
    """校验整条审计链及其签名检查点 / Verify the whole audit chain and its signed checkpoints."""
    anchor = _anchor(anchor_file) if anchor_file else None

    def check(session):
        findings = checkpoints.verify_checkpoints(session, checkpoints.Policy.from_env())
        if anchor is not None:
            findings += checkpoints.check_anchor(session, anchor)
        return audit_log.verify_chain(session), findings

    report, findings = _with_session(check)
    ok = report.ok and not any(finding.fails for finding in findings)
    if not ok:
        events.emit("audit.verify.failed", events.Severity.CRITICAL, f"cli:{getpass.getuser()}", "", {
            "chain": report.en, "findings": [{"kind": str(f.kind), "seq": f.seq, "en": f.en} for f in findings]})
    if as_json:
        click.echo(json.dumps({**dataclasses.asdict(report), "ok": ok,
                               "findings": [{**dataclasses.asdict(f), "fails": f.fails} for f in findings]},
                              ensure_ascii=False))
    else:
        click.echo(f"{'OK' if ok else 'BROKEN'}: {report.zh} / {report.en}")
        for finding in findings:
            click.echo(f"  {'BROKEN' if finding.fails else 'WARNING'} [{finding.kind}] {finding.zh} / {finding.en}")
    sys.exit(exits.OK if ok else exits.FAILED)


def _anchor(file) -> checkpoints.Anchor:
    try:
        return checkpoints.parse_anchor(json.loads(file.read(1 << 16)))
    except (ValueError, UnicodeDecodeError, TrustError):
        exits.fail(exits.Unreadable("the anchor file is not an exported audit checkpoint",
                                    "锚点文件不是导出的审计检查点"))


@audit.command()
@click.option("--export", "export_file", type=click.File("w"),
              help="把最新的签名检查点写入文件，供另行保存 / Write the latest signed checkpoint to a file, "
                   "to keep elsewhere ('-': standard output).")
def checkpoint(export_file) -> None:
    """签署审计链头（检查点）/ Sign the audit chain's head (a checkpoint)."""
    def make(session, keystore):
        made = checkpoints.make_checkpoint(session, keystore)
        session.commit()
        return made, checkpoints.export(session, keystore) if export_file else None

    made, exported = _with_keystore(make)
    if made is not None:
        click.echo(f"检查点已签署 / Checkpoint signed: seq {made.seq} {made.hash}", err=export_file is not None)
    else:
        click.echo("链头已有检查点 / The head is checkpointed already", err=export_file is not None)
    if export_file:
        export_file.write(json.dumps(exported, ensure_ascii=False, indent=2) + "\n")


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
def head(as_json: bool) -> None:
    """打印最后一条记录的序号与杂凑值，供外部留存 / Print the last seq and hash, to keep elsewhere."""
    chain_head = _with_session(audit_log.head)
    if as_json:
        click.echo(json.dumps({"seq": chain_head.seq, "hash": chain_head.hash}))
    else:
        click.echo(f"{chain_head.seq} {chain_head.hash}")


@audit.command()
@click.option("--since", help="起始时间（含），带时区的 ISO 8601 / From (inclusive), ISO 8601 with zone.")
@click.option("--until", help="截止时间（不含）/ Until (exclusive), ISO 8601 with zone.")
@click.option("--actor", help="操作者，可用 * 结尾作前缀 / Actor, or a prefix ending in * (client:*).")
@click.option("--action", help="动作，可用 * 结尾作前缀 / Action, or a prefix ending in * (licence.*).")
@click.option("--target", help="对象：密钥、印章、证照或客户端标识 / Object: a key, seal, licence or client id.")
@click.option("--purpose", help="证照用证事由 / The purpose a licence use declared.")
@click.option("--outcome", type=click.Choice(audit_query.OUTCOMES), help="结果 / Outcome.")
@click.option("--after", type=click.IntRange(0), default=0, help="从此序号之后 / After this sequence number.")
@click.option("--limit", type=click.IntRange(1, audit_query.MAX_PAGE), default=100, show_default=True,
              help="每页条数 / Records a page.")
@click.option("--format", "kind", type=click.Choice(["table", "json", "jsonl", "csv"]), default="table",
              show_default=True, help="jsonl、csv：全部匹配记录及其链杂凑 / jsonl, csv: every match with its chain hashes.")
@credential_option
def search(since, until, actor, action, target, purpose, outcome, after, limit, kind, credential_path) -> None:
    """检索、导出审计日志（本身记入审计）/ Search or export the audit log (itself audited)."""
    try:
        query = audit_query.Query(since=audit_query.parse_time(since, "--since"),
                                  until=audit_query.parse_time(until, "--until"), actor=actor,
                                  action=action, target=target, purpose=purpose, outcome=outcome)
    except TrustError as e:
        exits.fail(e)
    exporting = kind in ("jsonl", "csv")

    def read(session, _keystore, acting):
        reader = acting.officer.id
        if exporting:
            audit_query.record_reading(session, reader, "export", query)
            session.commit()
            records = audit_query.export(session, query)
            for line in (audit_query.csv_lines(records) if kind == "csv" else map(audit_query.json_line, records)):
                click.echo(line, nl=False)
            return
        records, following = audit_query.search(session, query, after=after, limit=limit)
        audit_query.record_reading(session, reader, "search", query, len(records))
        session.commit()
        if kind == "json":
            click.echo(json.dumps({"records": [audit_query.as_json(r) for r in records], "next": following},
                                  ensure_ascii=False))
            return
        for r in records:
            detail = json.dumps(r.detail, ensure_ascii=False, sort_keys=True)
            click.echo(f"{r.seq:>8}  {r.at.strftime('%Y-%m-%d %H:%M:%S')}Z  {r.actor}  {r.action}  {r.target}  "
                       f"{detail[:120]}")
        if following is not None:
            click.echo(f"（还有更多 / more: --after {following}）")

    run_as("audit.export" if exporting else "audit.search", "audit", read, credential_paths=(credential_path,),
           keystore=False)


@audit.command()
@click.option("--since", help="起始时间（含），带时区的 ISO 8601 / From (inclusive), ISO 8601 with zone.")
@click.option("--until", help="截止时间（不含）/ Until (exclusive), ISO 8601 with zone.")
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
@credential_option
def usage(since, until, as_json, credential_path) -> None:
    """使用频度：按月、动作、对象与客户端统计 / Uses by month, action, object and client."""
    try:
        query = audit_query.Query(since=audit_query.parse_time(since, "--since"),
                                  until=audit_query.parse_time(until, "--until"))
    except TrustError as e:
        exits.fail(e)

    def count(session, _keystore, acting):
        rows = audit_query.usage(session, query)
        audit_query.record_reading(session, acting.officer.id, "usage", query, len(rows))
        return rows

    rows = run_as("audit.usage", "audit", count, credential_paths=(credential_path,), keystore=False)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['month']}  {row['action']:<16} {row['object'] or '-':<40} {row['client']:<40} {row['count']:>8}")


def _with_keystore(work):
    try:
        settings = load_settings()
        engine = make_engine(settings.database_url, create=False)
        try:
            check_ready(engine)
            sessions = session_factory(engine)
            with sessions() as session:
                return work(session, open_keystore(settings, sessions))
        finally:
            engine.dispose()
    except TrustError as e:
        exits.fail(e)


def _with_session(read):
    try:
        engine = make_engine(load_settings().database_url, create=False)
        try:
            check_ready(engine)
            with session_factory(engine)() as session:
                return read(session)
        finally:
            engine.dispose()
    except TrustError as e:
        click.echo(f"{e.zh} / {e.en}", err=True)
        sys.exit(exits.FAILED if isinstance(e, AuditChainBroken) else exits.NOT_READY)
