"""A demo key custody as `trustctl init --demo` makes it, for the CLI tests of officers."""

import os
from pathlib import Path

from hsm.demo import set_up_demo_custody
from hsm.keystore import initialise_keystore
from trust.config import load_settings
from trust.db import make_engine, session_factory, upgrade


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
