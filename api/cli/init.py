"""`trustctl init`: create TRUST_HOME and the database; with --demo, a demo authority.

Safe to run every time (`make run` does): an initialised database is left alone. The demo
also writes ``TRUST_HOME/demo.env`` (mode 0600), the shell variables the README's commands
use (`. var/demo.env`): the demo application's secret, the demo seal and issuer, and
TRUST_REVOCATION_HOSTS naming this service, so `trustctl verify` may ask it for OCSP answers
and CA certificates. Demo values only: a production service is initialised without --demo.
"""

import shlex
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import click

from api.cli import exits
from api.demo_sample import ROOT_NAME, write_sealed_sample
from ca.demo import set_up_demo_ca
from hsm import officers
from hsm.demo import set_up_demo_custody
from hsm.keystore import initialise_keystore, open_keystore
from identity import clients, demo as identity_demo, signing_keys
from licence import issuance, types as licence_types
from licence.demo import set_up_demo_licences
from seal.demo import make_demo_seal
from trust import audit, db
from trust.config import Settings, load_settings
from trust.errors import TrustError


@click.command(cls=exits.Command)
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
            keystore = open_keystore(settings)
            # Token keys exist before the first worker starts, so two workers never race to make one.
            signing_keys.ensure_signing_keys(session, keystore)
            licence_types.sync_shipped(session, actor="trustctl init")
            announce = _set_up_demo(session, keystore, settings) if demo else None
            session.commit()
    except TrustError as error:
        raise click.ClickException(f"{error.zh} / {error.en}") from error
    finally:
        engine.dispose()
    click.echo(f"初始化完成 / Initialised: {settings.home}")
    if master_key_file is not None:
        click.echo(f"软件密钥库主密钥文件（请备份并妥善保管）/ Software keystore master key file "
                   f"(back it up, keep it secret): {master_key_file}")
    if announce is not None:  # printed only once it is saved, and only this once
        announce()


def _set_up_demo(session, keystore, settings: Settings) -> Callable[[], None]:
    """The demo authority, in the caller's transaction; returns what prints its notices and
    writes var/demo.env, to call once it is committed."""
    custody = set_up_demo_custody(session, settings)
    approvers = [officers.load_credential(path) for _, path in custody.credentials[:2]]
    demo_ca = set_up_demo_ca(session, keystore, settings, approvers)
    identities = identity_demo.create_demo_identities(session, keystore, settings.home)
    client_id, client_secret = clients.register_demo_client(session)
    if client_secret is None:  # init --demo runs once, on an uninitialised database
        raise TrustError("the demo client exists already", "演示客户端已存在")
    demo_seal = make_demo_seal(session, keystore, client_id=client_id)
    sample = write_sealed_sample(session, keystore, settings.home, demo_seal, client_id)
    demo_licence = set_up_demo_licences(session, keystore, es_id=demo_seal, client_id=client_id,
                                        enterprise=identity_demo.ENTERPRISE, public_url=settings.public_url)

    def announce() -> None:
        click.echo(custody.notice())
        click.echo(demo_ca.notice())
        click.echo(f"已盖章的示例文件 / Sealed sample: {sample}\n"
                   f"  trustctl verify {sample} --trust-root {sample.parent / ROOT_NAME}")
        click.echo(identity_demo.notice(identities))
        click.echo(f"示范部门应用 / Demo department application: client_id={client_id}  "
                   f"client_secret={client_secret}（仅显示这一次 / shown this once）")
        click.echo(f"演示印章 / Demo seal: esID {demo_seal}, usable by {client_id}")
        issuer = demo_licence.record["issuer"]
        click.echo(f"演示颁证单位 / Demo issuer: {issuer['name']}  issuer_code={issuer['code']}")
        env_file = write_demo_env(settings, client_secret=client_secret, es_id=demo_seal, issuer_code=issuer["code"])
        click.echo(f"README 命令所用的变量 / Variables for the README's commands: . {env_file}")
        click.echo(f"演示营业执照 / Demo business licence: {demo_licence.licence_id}\n"
                   f"  核验页面 / Verification page: "
                   f"{issuance.verify_url_for(settings.public_url, demo_licence.licence_id)}\n"
                   f"  .venv/bin/trustctl licence file {demo_licence.licence_id} --out licence.ofd && "
                   f".venv/bin/trustctl verify licence.ofd")

    return announce


def write_demo_env(settings: Settings, *, client_secret: str, es_id: str, issuer_code: str) -> Path:
    """TRUST_HOME/demo.env, readable by its owner only (it holds the demo client secret)."""
    service = urllib.parse.urlsplit(settings.public_url).netloc
    values = {"SECRET": client_secret, "ESID": es_id, "ISSUER": issuer_code, "TRUST_REVOCATION_HOSTS": service}
    path = settings.home / "demo.env"
    text = "# trustctl init --demo: the demo's values for the README's commands; demo secrets, never reuse them\n" + \
        "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")
    return path


def create_home(settings: Settings) -> None:
    """TRUST_HOME holds the database and (later) key material: only its owner may enter."""
    if not settings.home.exists():
        settings.home.mkdir(parents=True)
        settings.home.chmod(0o700)  # explicit: mkdir's mode is subject to the umask

