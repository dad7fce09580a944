"""`trustctl`: the operator's command line. One module per command group."""

import click

from api.cli import (
    approvals,
    audit,
    backup,
    ca as ca_cli,
    exits,
    identity as identity_cli,
    init,
    kek,
    key,
    licence as licence_cli,
    ofd,
    seal as seal_cli,
    serve,
    trust,
    verify,
)

ENVIRONMENT = """\b
环境变量 Environment (README.md, Configuration):
  TRUST_HOME (./var), TRUST_DATABASE_URL, TRUST_KEYSTORE, TRUST_KEK_SOURCE, TRUST_PUBLIC_URL,
  TRUST_REVOCATION_HOSTS: hosts `verify` may fetch CRLs, OCSP answers and CA certificates from,
  TRUST_OFFICER_KEY: your officer credential file, instead of --credential"""


@click.group(cls=exits.Group, epilog=exits.HELP + "\n\n" + ENVIRONMENT)
@click.version_option(package_name="trust-service")
def main() -> None:
    """电子印章与电子证照信任服务 / Trust service command line.

    每个命令的说明见 trustctl COMMAND --help / each command's help: trustctl COMMAND --help.
    """


main.add_command(init.init)
main.add_command(serve.serve)
main.add_command(audit.audit)
main.add_command(backup.backup)
main.add_command(key.key)
main.add_command(approvals.approvals)
main.add_command(kek.kek)
main.add_command(ca_cli.ca)
main.add_command(trust.trust)
main.add_command(verify.verify)
main.add_command(ofd.ofd)
main.add_command(identity_cli.identity)
main.add_command(seal_cli.seal)
main.add_command(licence_cli.licence)
