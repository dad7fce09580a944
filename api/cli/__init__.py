"""`trustctl`: the operator's command line. One module per command group."""

import click

from api.cli import audit, init, serve


@click.group()
@click.version_option(package_name="trust-service")
def main() -> None:
    """电子印章与电子证照信任服务 / Trust service command line."""


main.add_command(init.init)
main.add_command(serve.serve)
main.add_command(audit.audit)
