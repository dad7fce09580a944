"""`trustctl kek rotate`: ask for a new key-encryption key (a dual-control action).

The request runs when enough other officers approve it (`trustctl approvals approve`);
every software-held key is then re-wrapped under the new KEK in one transaction.
"""

import click

from api.cli import exits
from api.cli.approvals import credential_option, describe, run
from hsm import dual_control


@click.group(cls=exits.Group)
def kek() -> None:
    """密钥加密密钥（主密钥）/ The key-encryption key."""


@kek.command()
@credential_option
def rotate(credential_path: str) -> None:
    """申请轮换主密钥（须双人批准）/ Request a KEK rotation (needs dual-control approval)."""
    req = run(lambda session, keystore, credential: dual_control.request(
        session, keystore, "kek.rotate", "kek", {}, credential=credential), credential_path=credential_path)
    click.echo("已提交审批申请 / Approval request opened.")
    click.echo(describe(req))
