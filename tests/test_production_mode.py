"""TRUST_MODE=production (#19): `trustctl serve` refuses the settings only a demo may have,
each refusal naming the setting and the fix; the embedded default refuses nothing."""

import pytest

from api.production import refusals
from trust.config import Mode, load_settings
from trust.db import make_engine, upgrade
from trust.errors import InvalidInput

from tests.serving import clean_env, trustctl

GOOD = {"TRUST_MODE": "production", "TRUST_KEYSTORE": "soft", "TRUST_KEK_SOURCE": "passphrase",
        "TRUST_POLICY_OID": "1.2.156.112562.1", "TRUST_PUBLIC_URL": "https://zwfw.example.gov.cn",
        "TRUST_PROXY_HOPS": "1"}


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / "home"
    init = trustctl(clean_env(TRUST_HOME=str(home)), "init", "--demo")
    assert init.returncode == 0, init.stderr
    return home


@pytest.fixture
def empty_home(tmp_path):
    """A migrated database without the demo."""
    home = tmp_path / "home"
    home.mkdir()
    engine = make_engine(f"sqlite:///{home / 'trust.db'}")
    upgrade(engine)
    engine.dispose()
    return home


def _refused(home, **changes) -> dict[str, str]:
    env = {**GOOD, "TRUST_HOME": str(home), **changes}
    env = {k: v for k, v in env.items() if v is not None}
    return {refusal.setting: refusal.en for refusal in refusals(load_settings(env), env)}


def test_good_production_settings_start(empty_home):
    assert _refused(empty_home) == {}


@pytest.mark.parametrize(("changes", "setting", "words"), [
    ({"TRUST_KEK_SOURCE": "file"}, "TRUST_KEYSTORE / TRUST_KEK_SOURCE", "TRUST_KEYSTORE=pkcs11"),
    ({"TRUST_KEK_SOURCE": None}, "TRUST_KEYSTORE / TRUST_KEK_SOURCE", "key-encryption key is a file"),
    ({"TRUST_POLICY_OID": None}, "TRUST_POLICY_OID", "example arc 2.999.86.1"),
    ({"TRUST_POLICY_OID": "2.999.1"}, "TRUST_POLICY_OID", "the arc your province registered"),
    ({"TRUST_PUBLIC_URL": "http://zwfw.example.gov.cn"}, "TRUST_PUBLIC_URL", "set an https:// URL"),
    ({"TRUST_PUBLIC_URL": None}, "TRUST_PUBLIC_URL", "http://127.0.0.1:8000 is not https"),
    ({"TRUST_PROXY_HOPS": None}, "TRUST_PROXY_HOPS", "or to 0 when clients connect directly"),
])
def test_each_demo_only_setting_is_refused_with_its_fix(empty_home, changes, setting, words):
    refused = _refused(empty_home, **changes)
    assert list(refused) == [setting] and words in refused[setting]


def test_an_hsm_or_a_kek_outside_the_disk_is_accepted(empty_home):
    assert _refused(empty_home, TRUST_KEYSTORE="pkcs11", TRUST_KEK_SOURCE="pkcs11") == {}
    assert _refused(empty_home, TRUST_PROXY_HOPS="0") == {}


def test_the_demos_people_are_refused(demo_home):
    refused = _refused(demo_home)
    assert list(refused) == ["trustctl init --demo"]
    for name in ("demo-citizen", "demo-enterprise", "demo-officer", "officer-1", "officer-2", "officer-3"):
        assert name in refused["trustctl init --demo"]


def test_the_embedded_default_refuses_nothing(demo_home):
    env = {"TRUST_HOME": str(demo_home)}
    assert load_settings(env).mode is Mode.EMBEDDED and refusals(load_settings(env), env) == []


def test_an_unknown_mode_is_an_error():
    with pytest.raises(InvalidInput, match="TRUST_MODE is embedded or production"):
        load_settings({"TRUST_MODE": "prod"})


def test_trustctl_serve_refuses_to_start_and_says_why(demo_home):
    """As an operator sees it: every refusal at once, each with its setting, exit 1, and no
    server started."""
    env = clean_env(TRUST_HOME=str(demo_home), TRUST_MODE="production", TRUST_PORT="1")
    served = trustctl(env, "serve")
    assert served.returncode == 1, served.stderr
    assert "Production mode refuses to start" in served.stderr
    for setting in ("TRUST_KEYSTORE / TRUST_KEK_SOURCE", "TRUST_POLICY_OID", "TRUST_PUBLIC_URL", "TRUST_PROXY_HOPS",
                    "trustctl init --demo"):
        assert f"  {setting}: " in served.stderr
    assert "listening" not in served.stdout
