"""The README as a script that cannot drift: every shell block marked `<!-- runs in
tests/test_readme.py -->` runs verbatim, in order, in one folder laid out as the repository
(`.venv/bin/trustctl`, `var/` holding the demo, `../shared/`), against `trustctl init --demo`
served as `make run` serves it. Variables set by one block reach the next, as in one
terminal; the person's part of the sign-in (the browser) is played over HTTP. Every
verification the README states is checked: the verdicts its comments give, the exit codes
it echoes, the outputs it names."""

import html
import re
import shlex
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from bench.server import TRUSTCTL, free_port

from tests.oracles import shared_file
from tests.serving import clean_env, trustctl, trustctl_serve

REPO = Path(__file__).resolve().parent.parent
MARKER = "<!-- runs in tests/test_readme.py -->\n"
BLOCK = re.compile(r"(<!-- runs in tests/test_readme\.py -->\n)?```sh\n(.*?)```", re.DOTALL)
VERDICT = re.compile(r"^结果 Result: \S+ (VALID|INVALID|INDETERMINATE)", re.MULTILINE)

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the README's commands use curl")


def readme_blocks() -> list[str]:
    """The marked blocks in order; every other shell block is the set-up (`make …`)."""
    blocks = []
    for marked, body in BLOCK.findall((REPO / "README.md").read_text(encoding="utf-8")):
        if marked:
            blocks.append(body)
        else:
            commands = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
            assert all(line.startswith("make ") for line in commands), f"an unmarked shell block:\n{body}"
    return blocks


def logical_lines(block: str) -> list[str]:
    return block.replace("\\\n", " ").splitlines()


def expected_verdicts(block: str) -> list[str]:
    """What the comments say each `trustctl verify` prints (not the --json ones)."""
    found = []
    for line in logical_lines(block):
        if "trustctl verify" in line and "--json" not in line:
            said = re.search(r"#\s*(VALID|INVALID|INDETERMINATE)", line)
            assert said, f"the README does not say what this prints: {line}"
            found.append(said.group(1))
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`trustctl init --demo`, and `trustctl serve` with the environment `make run` gives it;
    a folder laid out as the repository, `var/` being the demo's TRUST_HOME."""
    root = tmp_path_factory.mktemp("readme")
    port = free_port()
    home = root / "repo" / "var"
    env = clean_env(TRUST_HOME=str(home), TRUST_PUBLIC_URL=f"http://127.0.0.1:{port}")
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    (root / "repo" / ".venv" / "bin").mkdir(parents=True)
    (root / "repo" / ".venv" / "bin" / "trustctl").symlink_to(TRUSTCTL)
    (root / "shared").symlink_to(shared_file())
    served_env = {**env, "TRUST_REVOCATION_HOSTS": f"127.0.0.1:{port}"}  # as the Makefile's run target
    with trustctl_serve(served_env, port, root / "serve.log", workers=2):
        yield env, port, init.stdout, root / "repo"


def test_every_shell_block_is_marked_or_the_set_up():
    assert len(readme_blocks()) >= 7


def test_the_readme_runs_as_written(demo):
    env, port, printed, folder = demo
    password = re.search(r"demo-citizen\s+密码 / password: (\S+)", printed).group(1)
    state = folder / ".readme-state"
    code = None
    for index, block in enumerate(readme_blocks()):
        script = block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        wrapped = f"set -a\n[ -f {state} ] && . {state}\n{script}\nexport -p > {state}\n"
        extra = {"CODE": code} if code else {}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", wrapped], cwd=folder, capture_output=True,
                              text=True, env={**env, **extra}, timeout=180)
        where = f"README block {index + 1}:\n{block}\n--- stdout:\n{done.stdout}\n--- stderr:\n{done.stderr}"
        assert done.returncode == 0, where
        assert VERDICT.findall(done.stdout) == expected_verdicts(block), where
        for said in re.findall(r'\|\| echo "exit \$\?"\s*#[^\n]*?exit (\d)', block.replace("\\\n", " ")):
            assert f"exit {said}" in done.stdout, where
        if "oauth/authorize" in block:  # the person signs in and agrees in the browser
            code = _sign_in(done.stdout.strip().splitlines()[-1], port, password)
        _check_stated_outputs(block, done.stdout, where)


def _check_stated_outputs(block: str, out: str, where: str) -> None:
    if "api/v1/verify/ses" in block:
        assert "\nVALID\n" in f"\n{out}", where
    if "api/v1/verify " in block:
        assert "VALID 有效" in out, where
    if "grant_type=client_credentials" in block and "TOKEN=" not in block:
        assert '"token_type"' in out and '"Bearer"' in out, where
    if "grant_type=authorization_code" in block:
        assert '"id_token"' in out and '"refresh_token"' in out, where
    if "approvals approve" in block:
        assert "not your own request" in out or "own request" in out or "exit 1" in out, where
        assert "destroyed" in out and out.rstrip().splitlines()[-1].startswith("OK"), where
    if "var/samples/demo-sealed.ofd --json" in block:
        assert "'revocation'" in out and "'seal_binding'" in out, where


def _sign_in(url: str, port: int, password: str) -> str:
    """What the person does in the browser: log in as demo-citizen, agree; the code from the
    address the browser is sent to."""
    import requests
    base = f"http://127.0.0.1:{port}"
    browser = requests.Session()
    login = browser.get(url, timeout=10)
    assert login.status_code == 200 and "/login" in login.url, login.text[:500]
    answer = browser.post(base + "/login", allow_redirects=False, timeout=10, data={
        "csrf_token": _field(login.text, "csrf_token"), "next": _field(login.text, "next"),
        "username": "demo-citizen", "password": password})
    assert answer.status_code == 303, answer.text[:500]
    consent = browser.get(base + answer.headers["Location"], allow_redirects=False, timeout=10)
    back = browser.post(base + "/consent", allow_redirects=False, timeout=10, data={
        "csrf_token": _field(consent.text, "csrf_token"), "request": _field(consent.text, "request"),
        "decision": "allow"})
    location = back.headers["Location"]
    assert location.startswith("http://127.0.0.1:8080/callback"), location
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]


def _field(page: str, name: str) -> str:
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))


def test_the_demo_env_file_is_private_and_quoted(demo):
    _env, port, _printed, folder = demo
    path = folder / "var" / "demo.env"
    assert path.stat().st_mode & 0o777 == 0o600
    values = dict(line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines()
                  if line.startswith("export "))
    assert set(values) == {"SECRET", "ESID", "ISSUER", "TRUST_REVOCATION_HOSTS"}
    assert shlex.split(values["TRUST_REVOCATION_HOSTS"]) == [f"127.0.0.1:{port}"]
