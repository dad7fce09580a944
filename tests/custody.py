"""A demo key custody as `trustctl init --demo` makes it, for the CLI tests of officers."""

import os
from pathlib import Path

from hsm import officers
from hsm.demo import set_up_demo_custody
from hsm.keystore import initialise_keystore
from trust.config import load_settings
from trust.db import make_engine, session_factory, upgrade
from trust.duties import Duty


def demo_custody(tmp_path: Path, monkeypatch, db_url: str | None = None) -> Path:
    """TRUST_HOME with the master key file and three demo officers; the environment points at it."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    for name in [k for k in os.environ if k.startswith("TRUST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRUST_HOME", str(home))
    if db_url is not None:
        monkeypatch.setenv("TRUST_DATABASE_URL", db_url)
    engine = make_engine(load_settings().database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        initialise_keystore(session, load_settings())
        set_up_demo_custody(session, load_settings())
        session.commit()
    engine.dispose()
    return home


def enrol_administrator(home: Path, officer_id: str, duty: Duty, db_url: str | None = None) -> Path:
    """Enrol a fresh SM2 credential for one administrator duty in an initialised home (as an
    officer enrolls their own public key); the credential file, mode 0600, is returned."""
    credential, pem_text = officers.new_credential()
    path = home / f"{officer_id}.pem"
    officers.write_credential(path, pem_text)
    engine = make_engine(db_url or f"sqlite:///{home / 'trust.db'}")
    with session_factory(engine)() as session:
        officers.enrol(session, officer_id, officer_id, credential.private_key.public_key().to_pem(),
                       actor="test", duty=duty)
        session.commit()
    engine.dispose()
    return path
