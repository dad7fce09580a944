"""A real SoftHSM2 token for the tests: `from softhsm import softhsm` brings the fixture.

One token per test session, initialised with softhsm2-util in a temporary directory named
by SOFTHSM2_CONF (SoftHSM reads it once, when the module is first loaded in the process).
Missing SoftHSM is a skip with the reason locally and a failure with CI=true.
"""

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "trust-test"
PIN = "123456"
SO_PIN = "87654321"


@dataclass(frozen=True)
class SoftHSM:
    module: str
    token_label: str
    pin_file: Path
    directory: Path

    def env(self, **extra: str) -> dict[str, str]:
        """TRUST_* variables choosing this token (for open_keystore's KeyStoreConfig.from_env)."""
        return {"TRUST_PKCS11_MODULE": self.module, "TRUST_PKCS11_TOKEN_LABEL": self.token_label,
                "TRUST_PKCS11_PIN_FILE": str(self.pin_file), **extra}


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"SoftHSM2 is required in CI: {reason}")
    pytest.skip(f"SoftHSM2 not available: {reason}")


def init_softhsm(directory: Path) -> SoftHSM:
    """Write a SoftHSM config under ``directory``, point SOFTHSM2_CONF at it, init a token."""
    util = shutil.which("softhsm2-util")
    if util is None or not os.path.exists(MODULE):
        _unavailable(f"softhsm2-util or {MODULE} missing (Debian: apt-get install softhsm2)")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    done = subprocess.run([util, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", PIN,
                           "--so-pin", SO_PIN], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"softhsm2-util --init-token failed: {done.stdout}{done.stderr}")
    pin_file = directory / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return SoftHSM(MODULE, TOKEN_LABEL, pin_file, directory)


_shared: list[SoftHSM] = []


@pytest.fixture(scope="session")
def softhsm():
    """The process's one token. Each test module importing this fixture gets its own copy
    of it, but SoftHSM reads SOFTHSM2_CONF once per process, so they all share one token."""
    if not _shared:
        directory = Path(tempfile.mkdtemp(prefix="trust-softhsm-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        _shared.append(init_softhsm(directory))
    return _shared[0]
