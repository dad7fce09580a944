"""`trustctl audit`: check the audit chain and print its head.

Exit codes (api/cli/exits.py): 0 the chain is intact, 1 it is broken (`verify` names the
first bad record), 5 the database cannot be read or is not initialised.
"""

import dataclasses
import json
import sys

import click

from api.cli import exits
from trust import audit as audit_log
from trust.config import load_settings
from trust.db import check_ready, make_engine, session_factory
from trust.errors import AuditChainBroken, TrustError



@click.group(cls=exits.Group)
def audit() -> None:
    """审计日志 / Audit log."""


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
def verify(as_json: bool) -> None:
    """校验整条审计链 / Verify the whole audit chain."""
    report = _with_session(audit_log.verify_chain)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), ensure_ascii=False))
    else:
        click.echo(f"{'OK' if report.ok else 'BROKEN'}: {report.zh} / {report.en}")
    sys.exit(exits.OK if report.ok else exits.FAILED)


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
def head(as_json: bool) -> None:
    """打印最后一条记录的序号与杂凑值，供外部留存 / Print the last seq and hash, to keep elsewhere."""
    chain_head = _with_session(audit_log.head)
    if as_json:
        click.echo(json.dumps({"seq": chain_head.seq, "hash": chain_head.hash}))
    else:
        click.echo(f"{chain_head.seq} {chain_head.hash}")


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
