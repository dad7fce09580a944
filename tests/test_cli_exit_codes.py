"""One exit-code scheme for the whole of `trustctl` (api/cli/exits.py, issue #14): each code
met the way a new user meets it, through the `trustctl` group as installed; messages in both
languages, click's own included; nothing is printed before the work succeeds, and nothing
is created where no service is initialised."""

import pytest
from click.testing import CliRunner

from api.cli import main

from tests.custody import demo_custody


def trustctl(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def home(tmp_path, monkeypatch):
    return demo_custody(tmp_path, monkeypatch)


def officer(home, n=1) -> str:
    return str(home / "officers" / f"officer-{n}.pem")


def test_help_names_every_exit_code_and_the_environment():
    shown = trustctl("--help").output
    for code in ("0 完成", "1 拒绝", "2 无法确定", "3 输入", "4 用法错误", "5 本机"):
        assert code in shown, code
    assert "TRUST_HOME" in shown and "TRUST_REVOCATION_HOSTS" in shown


def test_a_missing_file_is_unreadable_input_for_every_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUST_HOME", str(tmp_path / "home"))
    assert trustctl("verify", "/no/such/file").exit_code == 3       # the README's promise
    assert trustctl("verify", "/no/such/file", "--json").exit_code == 3
    missing = trustctl("trust", "import", "seal", "/no/such/root.pem")
    assert missing.exit_code == 3 and "无法读取" in missing.output and "does not exist" in missing.output
    assert trustctl("ofd", "text", "/no/such/file.ofd").exit_code == 3


def test_usage_errors_exit_4_in_both_languages():
    for args, zh in ((["nope"], "没有这个命令"), (["verify", "--bogus", "x"], "没有选项 --bogus"),
                     (["key", "show"], "缺少参数 KEY_ID"), (["key", "list", "--label"], "--label")):
        result = trustctl(*args)
        assert result.exit_code == 4, (args, result.output)
        assert "用法错误 Usage error" in result.output and zh in result.output, result.output


def test_unknown_ids_and_unusable_credentials_exit_3(home, tmp_path):
    unknown = trustctl("key", "show", "nope")
    assert unknown.exit_code == 3 and "无法读取 / Unreadable" in unknown.output
    assert "Refused" not in unknown.output
    (loose := tmp_path / "loose.pem").write_bytes(open(officer(home), "rb").read())
    loose.chmod(0o644)
    for credential in (str(loose), "/no/such/credential.pem"):
        result = trustctl("key", "generate", "--algorithm", "SM2-with-SM3", "--label", "x", "--usage", "seal",
                          "--credential", credential)
        assert result.exit_code == 3, (credential, result.output)


def test_nothing_is_printed_as_done_before_the_work_is(home):
    refused = trustctl("key", "generate", "--algorithm", "SM9", "--label", "x", "--usage", "seal",
                       "--credential", officer(home))
    assert refused.exit_code == 1 and "已生成" not in refused.output and "Generated" not in refused.output
    rotated = trustctl("key", "rotate", "no-such-label", "--credential", officer(home))
    assert rotated.exit_code != 0 and "已轮换" not in rotated.output
    done = trustctl("key", "generate", "--algorithm", "SM2-with-SM3", "--label", "x", "--usage", "seal",
                    "--credential", officer(home))
    assert done.exit_code == 0 and done.output.startswith("已生成 / Generated.")


def test_an_uninitialised_home_is_left_alone_and_says_run_init(tmp_path, monkeypatch):
    home = tmp_path / "never-initialised"
    monkeypatch.setenv("TRUST_HOME", str(home))
    monkeypatch.delenv("TRUST_DATABASE_URL", raising=False)
    for args in (["key", "list"], ["audit", "verify"], ["seal", "list"], ["identity", "list"]):
        result = trustctl(*args)
        assert result.exit_code == 5, (args, result.output)
        assert "trustctl init" in result.output, args
    assert not home.exists()


def _commands(command=main, path=("trustctl",)):
    import click
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, command


def test_every_command_that_lists_or_shows_has_json_and_every_help_points_to_the_codes():
    for path, command in _commands():
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        if path[-1] in ("list", "show", "head", "verify"):
            assert "--json" in options, " ".join(path)
        assert "trustctl --help" in trustctl(*path[1:], "--help").output, " ".join(path)
