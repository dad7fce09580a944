"""`trustctl key`: the keys in custody, by security officers.

Listing and showing need no credential. Generating, rotating, suspending and resuming
are done by one officer, who signs the act with their credential; destroying a key only
opens a dual-control request, which runs when enough other officers approve it
(`trustctl approvals approve`).
"""

import click
from cryptography.hazmat.primitives import serialization

from api.cli import exits
from api.cli.approvals import credential_option, describe, json_option, print_json, run
from hsm import dual_control, officers
from hsm.keystore import KeyRef, KeyState, Usage, is_root_ca_key
from trust.keys import PublicKey
from trust.sm2 import SM2PublicKey


def _pem(public_key: PublicKey) -> str:
    if isinstance(public_key, SM2PublicKey):
        return public_key.to_pem()
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _describe(ref: KeyRef) -> str:
    root = "（根 CA 密钥 / root CA key）" if is_root_ca_key(ref) else ""
    return "\n".join([
        f"密钥 / Key {ref.id}{root}",
        f"  标签 / label:      {ref.label}  版本 / version {ref.version}",
        f"  算法 / algorithm:  {ref.algorithm}",
        f"  用途 / usages:     {', '.join(sorted(ref.usages))}",
        f"  状态 / state:      {ref.state}",
        f"  后端 / backend:    {ref.backend}",
        f"  可导出 / exportable: {'是 / yes' if ref.exportable else '否 / no'}",
        f"  创建 / created:    {ref.created_at:%Y-%m-%d %H:%M:%S} UTC",
    ])


@click.group(cls=exits.Group)
def key() -> None:
    """密钥管理 / Key custody."""


@key.command("list")
@click.option("--label", help="只列出此标签 / Only this label.")
@click.option("--all", "show_all", is_flag=True, help="包括已销毁的密钥 / Include destroyed keys.")
@json_option
def list_(label: str | None, show_all: bool, as_json: bool) -> None:
    """列出密钥 / List keys."""
    refs = run(lambda session, keystore: keystore.list(session, label=label, include_destroyed=show_all))
    if as_json:
        print_json(refs)
    elif not refs:
        click.echo("没有密钥 / No keys.")
    else:
        for ref in refs:
            click.echo(f"{ref.id}  {ref.label} v{ref.version}  {ref.algorithm}  {ref.state}  "
                       f"{','.join(sorted(ref.usages))}")


@key.command()
@click.argument("key_id")
@json_option
def show(key_id: str, as_json: bool) -> None:
    """显示一个密钥及其公钥 / Show a key and its public key."""
    def read(session, keystore):
        ref = keystore.get(session, key_id)
        return ref, _pem(keystore.public_key(session, ref))

    ref, public_pem = run(read)
    if as_json:
        print_json({"key": ref, "public_key": public_pem})
    else:
        click.echo(_describe(ref))
        click.echo(public_pem.rstrip())


@key.command()
@click.option("--algorithm", required=True,
              help="签名算法 / Signature algorithm: SM2-with-SM3, ES256, ES384, RS256, PS256, Ed25519.")
@click.option("--label", required=True, help="标签 / Label.")
@click.option("--usage", "usages", required=True, multiple=True, type=click.Choice([u.value for u in Usage]),
              help="用途，可重复 / Usage (repeatable).")
@click.option("--exportable", is_flag=True, help="允许经双人批准导出 / May be exported with approval.")
@credential_option
def generate(algorithm: str, label: str, usages: tuple[str, ...], exportable: bool, credential_path: str) -> None:
    """生成密钥 / Generate a key."""
    def work(session, keystore, credential):
        officer = officers.identify(session, credential, "key.generate", label)
        return keystore.generate(session, algorithm, label, usages, exportable=exportable, actor=officer.id)

    generated = run(work, credential_path=credential_path)
    click.echo("已生成 / Generated.")
    click.echo(_describe(generated))


@key.command()
@click.argument("label")
@credential_option
def rotate(label: str, credential_path: str) -> None:
    """轮换：新版本启用，旧版本只用于验证 / Rotate: a new version signs, old ones only verify."""
    def work(session, keystore, credential):
        officer = officers.identify(session, credential, "key.rotate", label)
        return keystore.rotate(session, label, actor=officer.id)

    rotated = run(work, credential_path=credential_path)
    click.echo("已轮换 / Rotated.")
    click.echo(_describe(rotated))


def _set_state(key_id: str, state: KeyState, reason: str, credential_path: str) -> KeyRef:
    def work(session, keystore, credential):
        officer = officers.identify(session, credential, f"key.{state.value}", key_id)
        return keystore.set_state(session, keystore.get(session, key_id), state, actor=officer.id,
                                  reason=reason)

    return run(work, credential_path=credential_path)


@key.command()
@click.argument("key_id")
@click.option("--reason", default="", help="理由 / Why.")
@credential_option
def suspend(key_id: str, reason: str, credential_path: str) -> None:
    """暂停使用密钥 / Suspend a key."""
    click.echo(_describe(_set_state(key_id, KeyState.SUSPENDED, reason, credential_path)))


@key.command()
@click.argument("key_id")
@click.option("--reason", default="", help="理由 / Why.")
@credential_option
def resume(key_id: str, reason: str, credential_path: str) -> None:
    """恢复已暂停的密钥 / Resume a suspended key."""
    click.echo(_describe(_set_state(key_id, KeyState.ACTIVE, reason, credential_path)))


@key.command()
@click.argument("key_id")
@credential_option
def destroy(key_id: str, credential_path: str) -> None:
    """申请销毁密钥（须双人批准）/ Request a key's destruction (needs dual-control approval)."""
    req = run(lambda session, keystore, credential: dual_control.request(
        session, keystore, "key.destroy", key_id, {}, credential=credential), credential_path=credential_path)
    click.echo("已提交审批申请 / Approval request opened.")
    click.echo(describe(req))
