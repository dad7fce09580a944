"""Tools nobody on the team wrote, used to judge our output: the system's OpenSSL 3 CLI."""

import shutil
import subprocess
from pathlib import Path

import pytest

STANDARD_ID = "distid:1234567812345678"


def openssl(*args: str | Path, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("the openssl CLI is required as a test oracle (apt-get install openssl)")
    result = subprocess.run([exe, *map(str, args)], input=input, capture_output=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed: {result.stderr.decode(errors='replace')}")
    return result


SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_file(*parts: str) -> Path:
    """A file of ../shared (spec fixtures, corpus). CI always has it beside the clone."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests expect ../shared beside the repository")
    return path
