"""`trustctl approvals`: list, approve and reject dual-control requests.

Officers act with their own credential (an SM2 private key file, mode 0600), given by
``--credential FILE`` or ``TRUST_OFFICER_KEY``. The helpers here (the credential options,
``run`` and ``run_as``, the printing of requests) are shared by `trustctl key`, `kek`,
`ca` and `trust`.

Exit codes: api/cli/exits.py (0 done, 1 refused or failed, 3 unknown id or unusable
credential, 4 usage error, 5 no service here).
"""

import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from api.cli import exits
from hsm import dual_control, officers
from hsm.dual_control import ApprovalRequest, RequestClosed
from hsm.keystore import open_keystore
from hsm.officers import Credential, Officer, PermissionDenied
from trust.config import load_settings
from trust.db import check_ready, make_engine, session_factory
from trust.errors import TrustError

T = TypeVar("T")

credential_option = click.option(
    "--credential", "credential_path", envvar="TRUST_OFFICER_KEY", required=True,
    type=click.Path(dir_okay=False),
    help="安全员凭据文件（SM2 私钥，权限 0600），或环境变量 TRUST_OFFICER_KEY / "
         "Officer credential file (SM2 private key, mode 0600), or TRUST_OFFICER_KEY.")
credentials_option = click.option(
    "--credential", "credential_paths", multiple=True, required=True, type=click.Path(dir_okay=False),
    help="安全员凭据，按审批策略人数重复给出 / An officer credential; repeat as the policy requires.")
json_option = click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")


def read_file(path: str, limit: int) -> bytes:
    """A file given on the command line, refused (usage error) when larger than ``limit`` bytes."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise click.UsageError(f"{path}: larger than {limit} bytes / 文件过大")
    return data


def load_credential(path: str) -> Credential:
    """An officer's credential file; one that cannot be used is an input error (exit 3)."""
    try:
        return officers.load_credential(path)
    except TrustError as e:
        raise exits.Unreadable(e.en, e.zh) from None


def run(work: Callable[..., T], *, credential_path: str | None = None, keystore: bool = True,
        keep_refusals: bool = False) -> T:
    """Call ``work(session, keystore[, credential])`` in one transaction and commit it.

    A refusal (PermissionDenied, RequestClosed; with ``keep_refusals`` any TrustError, for
    services that audit what they refuse) commits too, keeping its audit record; any other
    error rolls back. Errors are printed in Chinese and English and end the process with the
    exit code api/cli/exits.py gives them. Nothing is created where no service is initialised.
    """
    refusals = (TrustError,) if keep_refusals else (PermissionDenied, RequestClosed)
    try:
        credential = None if credential_path is None else load_credential(credential_path)
        settings = load_settings()
        engine = make_engine(settings.database_url, create=False)
        try:
            check_ready(engine)
            with session_factory(engine)() as session:
                args: list[Any] = [session, open_keystore(settings) if keystore else None]
                if credential is not None:
                    args.append(credential)
                try:
                    result = work(*args)
                except refusals:
                    session.commit()
                    raise
                session.commit()
                return result
        finally:
            engine.dispose()
    except TrustError as e:
        exits.fail(e)


@dataclasses.dataclass(frozen=True)
class Acting:
    """Who acts: the officer of the first credential, and every credential given (the
    others approve what needs dual control)."""
    officer: Officer
    credentials: tuple[Credential, ...]


def run_as(action: str, target: str, work: Callable[..., T], *, credential_paths: Sequence[str],
           keystore: bool = True, keep_refusals: bool = False) -> T:
    """``run`` for an officer's act: the first credential signs a statement of ``action`` on
    ``target`` (officers.identify), then ``work(session, keystore, acting)`` runs."""
    def acting(session, store):
        credentials = tuple(load_credential(path) for path in credential_paths)
        officer = officers.identify(session, credentials[0], action, target)
        return work(session, store, Acting(officer, credentials))

    return run(acting, keystore=keystore, keep_refusals=keep_refusals)


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), ensure_ascii=False, indent=2))


def describe(req: ApprovalRequest) -> str:
    action = dual_control.ACTIONS.get(req.action)
    what = f"{action.zh} / {action.en}" if action else req.action
    lines = [f"审批申请 / Approval request {req.id}",
             f"  操作 / action:      {req.action}（{what}）",
             f"  对象 / target:      {req.target}"]
    if req.parameters:
        lines.append(f"  参数 / parameters:  {json.dumps(req.parameters, ensure_ascii=False)}")
    lines += [f"  申请人 / requester: {req.requester}",
              f"  状态 / status:      {req.status.zh} / {req.status}",
              f"  已同意 / approvals: {len(req.approvals)}/{req.threshold}（{', '.join(req.approvals)}）",
              f"  过期 / expires:     {req.expires_at:%Y-%m-%d %H:%M:%S} UTC"]
    if req.status == dual_control.PENDING:
        lines.append(f"  尚需 {req.still_needed} 名其他安全员批准 / {req.still_needed} more officer(s) "
                     f"must approve: trustctl approvals approve {req.id}")
    if req.rejected_by:
        lines.append(f"  拒绝人 / rejected by: {req.rejected_by} {req.reason}".rstrip())
    if req.error:
        lines.append(f"  错误 / error:       {req.error}")
    return "\n".join(lines)


def report(req: ApprovalRequest) -> None:
    """Print a request; a request that ran and failed ends the process with exit code 1."""
    if req.status == dual_control.EXECUTED:
        click.echo("已达到批准人数，操作已执行 / Threshold reached: the action was carried out.")
    click.echo(describe(req))
    if req.status == dual_control.FAILED:
        sys.exit(exits.FAILED)


@click.group(cls=exits.Group)
def approvals() -> None:
    """双人控制审批 / Dual-control approvals."""


@approvals.command("list")
@click.option("--all", "show_all", is_flag=True, help="包括已结束的申请 / Include closed requests.")
@json_option
def list_(show_all: bool, as_json: bool) -> None:
    """列出审批申请 / List approval requests (pending ones by default)."""
    found = run(lambda session, _ks: dual_control.list_requests(session, pending_only=not show_all),
                keystore=False)
    if as_json:
        print_json(found)
    elif not found:
        click.echo("没有审批申请 / No approval requests.")
    else:
        click.echo("\n\n".join(describe(req) for req in found))


@approvals.command()
@click.argument("request_id")
@json_option
def show(request_id: str, as_json: bool) -> None:
    """显示一个审批申请 / Show one approval request."""
    req = run(lambda session, _ks: dual_control.get(session, request_id), keystore=False)
    if as_json:
        print_json(req)
    else:
        click.echo(describe(req))


@approvals.command()
@click.argument("request_id")
@credential_option
def approve(request_id: str, credential_path: str) -> None:
    """批准申请；达到人数即执行 / Approve a request; it runs once enough officers agree."""
    report(run(lambda session, keystore, credential: dual_control.approve(
        session, keystore, request_id, credential=credential), credential_path=credential_path))


@approvals.command()
@click.argument("request_id")
@click.option("--reason", default="", help="拒绝理由 / Why.")
@credential_option
def reject(request_id: str, reason: str, credential_path: str) -> None:
    """拒绝申请（申请人可撤回）/ Reject a request (the requester may withdraw it)."""
    report(run(lambda session, _ks, credential: dual_control.reject(
        session, request_id, credential=credential, reason=reason),
        credential_path=credential_path, keystore=False))
