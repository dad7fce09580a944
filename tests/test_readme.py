"""The README's commands run as a new user would run them: `trustctl init --demo`, the
server, then the shell block that takes a token, seals a digest through the API and
verifies the result with `trustctl verify` (curl, openssl and python3 as on any machine)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.server import TRUSTCTL, free_port
from tests.serving import clean_env, trustctl, trustctl_serve

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- the commands between these markers run in tests/test_readme.py -->\n```sh\n(.*?)```",
                   re.DOTALL)
LICENCE_BLOCK = re.compile(r"<!-- the licence commands between these markers run in tests/test_readme.py -->\n"
                           r"```sh\n(.*?)```", re.DOTALL)


@pytest.fixture
def demo_server(tmp_path):
    """`trustctl init --demo` (its output kept) and `trustctl serve` on a free port."""
    port = free_port()
    env = clean_env(TRUST_HOME=str(tmp_path / "var"), TRUST_PUBLIC_URL=f"http://127.0.0.1:{port}")
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    with trustctl_serve(env, port, tmp_path / "serve.log"):
        yield env, port, init.stdout


def run_block(block: re.Pattern, demo_server, tmp_path, **variables: str) -> subprocess.CompletedProcess:
    """A README shell block as a new user runs it beside the served demo: in a fresh folder
    with `.venv/bin/trustctl`, the client secret init printed in $SECRET, and ``variables``."""
    env, port, printed = demo_server
    secret = re.search(r"client_secret=(\S+?)（", printed).group(1)
    script = block.search((REPO / "README.md").read_text(encoding="utf-8")).group(1)
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "trustctl").symlink_to(TRUSTCTL)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "SECRET": secret, **variables}, timeout=120)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's commands use curl")
def test_sealing_a_digest_through_the_api_as_the_readme_shows(demo_server, tmp_path):
    es_id = re.search(r"esID (\d+)", demo_server[2]).group(1)
    done = run_block(BLOCK, demo_server, tmp_path, ESID=es_id)
    assert "VALID" in done.stdout and "INVALID" not in done.stdout
    assert (tmp_path / "decision.ses").stat().st_size > 1000


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's commands use curl")
def test_issuing_and_checking_a_licence_as_the_readme_shows(demo_server, tmp_path):
    issuer = re.search(r"issuer_code=(\S+)", demo_server[2]).group(1)
    done = run_block(LICENCE_BLOCK, demo_server, tmp_path, ISSUER=issuer)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("结果 Result: 有效 VALID") and lines[-2] == "有效", done.stdout
    assert lines[-1].startswith(f"http://127.0.0.1:{demo_server[1]}/v/1.2.156.3005.2.11100000MB0143028R001.{issuer}.")
