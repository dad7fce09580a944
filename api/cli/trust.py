"""`trustctl trust`: the trust store, roots trusted per purpose (seal, licence, token, tls).

Listing needs no credential; importing and removing a root are acts of a security
officer, who signs them with their credential, and are written to the audit log.
"""

import click

from api.cli import exits
from api.cli.approvals import credential_option, json_option, print_json, run, run_as
from trust import truststore
from trust.errors import InvalidInput
from trust.x509 import load_certificates

_PURPOSE = click.Choice(truststore.PURPOSES)


@click.group(cls=exits.Group)
def trust() -> None:
    """信任库（按用途的可信根证书）/ Trust store (trusted roots per purpose)."""


@trust.command("import")
@click.argument("purpose", type=_PURPOSE)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@credential_option
def import_(purpose: str, files: tuple[str, ...], credential_path: str) -> None:
    """从 PEM/DER 文件（可为证书包）导入可信根 / Import trusted roots from PEM/DER files (bundles too)."""
    contents = []
    for name in files:
        with open(name, "rb") as f:
            contents.append(f.read(truststore.MAX_FILE_BYTES + 1))
        try:
            load_certificates(contents[-1])
        except InvalidInput as e:
            exits.fail(exits.Unreadable(f"{name}: {e.en}", f"{name}：{e.zh}"))

    def work(session, _keystore, acting):
        return [root for data in contents
                for root in truststore.import_roots(session, purpose, data, actor=acting.officer.id)]

    added = run_as("trust.root.import", purpose, work, credential_paths=(credential_path,), keystore=False)
    for root in added:
        click.echo(f"已导入 / Imported {root.purpose} {root.fingerprint}  {root.subject}")
    if not added:
        click.echo("均已在信任库中 / All were already trusted.")


@trust.command("list")
@click.option("--purpose", type=_PURPOSE, help="只列出此用途 / Only this purpose.")
@json_option
def list_(purpose: str | None, as_json: bool) -> None:
    """列出可信根 / List trusted roots."""
    roots = run(lambda session, _keystore: truststore.list_roots(session, purpose), keystore=False)
    if as_json:
        print_json(roots)
    elif not roots:
        click.echo("信任库为空 / The trust store is empty.")
    else:
        for root in roots:
            click.echo(f"{root.purpose:8} {root.fingerprint}  {root.not_after:%Y-%m-%d}  {root.subject}")


@trust.command()
@click.argument("purpose", type=_PURPOSE)
@click.argument("fingerprint")
@credential_option
def remove(purpose: str, fingerprint: str, credential_path: str) -> None:
    """不再信任某个根（SHA-256 指纹）/ Stop trusting a root (SHA-256 fingerprint)."""
    run_as("trust.root.remove", f"{purpose}/{fingerprint}",
           lambda session, _keystore, acting: truststore.remove_root(session, purpose, fingerprint,
                                                                    actor=acting.officer.id),
           credential_paths=(credential_path,), keystore=False)
    click.echo(f"已移除 / Removed {purpose} {fingerprint}")
