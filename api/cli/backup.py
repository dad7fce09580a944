"""`trustctl backup create|verify|restore` (hsm/backup.py): a consistent snapshot of the
database with a signed manifest; never the KEK or an officer's credential, which their
holders keep and bring to a restore.

Exit codes (api/cli/exits.py): 0 done, 1 refused, an altered backup or another
installation's, 3 no backup in the directory, 5 no service here.
"""

import json
from pathlib import Path

import click

from api.cli import exits
from api.cli.approvals import credential_option, run_as
from hsm import backup as backups
from hsm.keystore import KeyStoreConfig, open_keystore
from trust.config import load_settings
from trust.errors import TrustError


@click.group(cls=exits.Group)
def backup() -> None:
    """备份与恢复 / Backup and restore."""


@backup.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@credential_option
def create(directory: Path, credential_path: str) -> None:
    """备份到新目录（系统管理员）/ Back up into a new directory (the system administrator's act)."""
    actor = run_as("backup.create", str(directory), lambda _session, _keystore, acting: acting.officer.id,
                   credential_paths=(credential_path,), keystore=False)
    try:
        settings = load_settings()
        manifest = backups.create(settings.database_url, open_keystore(settings), directory, actor=actor)
    except TrustError as error:
        exits.fail(error)
    head = manifest["audit_head"]
    click.echo(f"已备份 / Backed up: {directory}  审计 / audit {head['seq']} {head['hash'][:16]}…  "
               f"密钥 / keys {len(manifest['keys'])}")
    click.echo("主密钥与安全员凭据不在备份中，请另行保管 / The KEK and the officers' credentials are not in "
               "the backup: keep them apart.")


def _verified_line(verified: backups.Verified) -> str:
    return (f"备份完好 / Backup OK: {verified.created_at}  安装 / installation {verified.installation[:16]}…  "
            f"审计 / audit {verified.audit_seq}  密钥 / keys {verified.keys}")


@backup.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / Machine-readable output.")
def verify(directory: Path, as_json: bool) -> None:
    """用本机的主密钥检查备份 / Check a backup, with this host's KEK, as a restore would."""
    try:
        settings = load_settings()
        verified = backups.verify(directory, open_keystore(settings), settings.database_url)
    except TrustError as error:
        exits.fail(error)
    click.echo(json.dumps(verified.__dict__) if as_json else _verified_line(verified))


@backup.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def restore(directory: Path) -> None:
    """恢复到空的 TRUST_HOME（仅可有主密钥文件）或空的 PostgreSQL 数据库 / Restore into an empty TRUST_HOME
    (the KEK file may be there) or an empty PostgreSQL database (TRUST_DATABASE_URL)."""
    try:
        settings = load_settings()
        kek_file = KeyStoreConfig.from_env(home=settings.home).kek_file
        allowed = (kek_file.name,) if kek_file.parent.resolve() == Path(settings.home).resolve() else ()
        verified = backups.restore(directory, settings.database_url, open_keystore(settings), allowed=allowed)
    except TrustError as error:
        exits.fail(error)
    click.echo(_verified_line(verified))
    click.echo(f"已恢复 / Restored into {settings.home}")
