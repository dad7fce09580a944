"""`trustctl init`: create TRUST_HOME and the database; with --demo, a demo authority.

Safe to run every time (`make run` does): an initialised database is left alone.
"""

import click

from api.demo_sample import ROOT_NAME, write_sealed_sample
from ca.demo import set_up_demo_ca
from hsm import officers
from hsm.demo import set_up_demo_custody
from hsm.keystore import initialise_keystore, open_keystore
from trust import audit, db
from trust.config import Settings, load_settings
from trust.errors import TrustError


@click.command()
@click.option("--demo", is_flag=True, help="Also set up a demo authority to try the service with.")
def init(demo: bool) -> None:
    """初始化信任服务 / Initialise the trust service."""
    settings = load_settings()
    create_home(settings)
    engine = db.make_engine(settings.database_url)
    try:
        if db.is_initialised(engine):
            click.echo(f"已初始化，未作改动 / Already initialised, nothing changed: {settings.home}")
            return
        db.upgrade(engine)
        with db.session_factory(engine)() as session:
            audit.append(session, actor="trustctl", action="system.init", detail={"demo": demo})
            master_key_file = initialise_keystore(session, settings)
            custody = demo_ca = sample = None
            if demo:
                keystore = open_keystore(settings)
                custody = set_up_demo_custody(session, settings)
                approvers = [officers.load_credential(path) for _, path in custody.credentials[:2]]
                demo_ca = set_up_demo_ca(session, keystore, settings, approvers)
                sample = write_sealed_sample(session, keystore, settings.home, demo_ca)
            session.commit()
    except TrustError as error:
        raise click.ClickException(f"{error.zh} / {error.en}") from error
    finally:
        engine.dispose()
    click.echo(f"初始化完成 / Initialised: {settings.home}")
    if master_key_file is not None:
        click.echo(f"软件密钥库主密钥文件（请备份并妥善保管）/ Software keystore master key file "
                   f"(back it up, keep it secret): {master_key_file}")
    if custody is not None:  # printed only once it is saved, and only this once
        click.echo(custody.notice())
        click.echo(demo_ca.notice())
        click.echo(f"已盖章的示例文件 / Sealed sample: {sample}\n"
                   f"  trustctl verify {sample} --trust-root {sample.parent / ROOT_NAME}")


def create_home(settings: Settings) -> None:
    """TRUST_HOME holds the database and (later) key material: only its owner may enter."""
    if not settings.home.exists():
        settings.home.mkdir(parents=True)
        settings.home.chmod(0o700)  # explicit: mkdir's mode is subject to the umask

