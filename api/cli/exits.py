"""One exit-code scheme for every `trustctl` command, and click's own errors in both languages.

    0  done; for `verify`: VALID
    1  refused or failed, a value the service refuses included (the message names it);
       for `verify`: INVALID
    2  `verify` only: INDETERMINATE (nothing wrong was found, but not everything could be checked)
    3  an input that cannot be found or read: a missing file, a file in none of the formats,
       an unknown id, an unusable credential file
    4  usage: the command line itself is wrong (an unknown command or option, a missing
       argument, a value of the wrong form, options that exclude each other)
    5  no service here: TRUST_HOME is not initialised (run `trustctl init`), or its database
       cannot be reached

`trustctl verify`'s 0–3 are the contract of trust.report.EXIT_CODES and EXIT_UNREADABLE.
"""

import sys
from typing import NoReturn

import click

from trust.errors import InvalidInput, NotFound, StorageError, TrustError
from trust.report import EXIT_UNREADABLE

OK, FAILED, INDETERMINATE, UNREADABLE, USAGE, NOT_READY = 0, 1, 2, EXIT_UNREADABLE, 4, 5

HELP = """\b
退出码 Exit codes:
  0 完成 / 有效: done, VALID
  1 拒绝、失败 / 无效: refused, failed, INVALID
  2 无法确定: INDETERMINATE (verify)
  3 输入不存在或无法读取: input not found or unreadable (file, id, credential)
  4 用法错误: usage error
  5 本机没有可用的服务: no service here (run trustctl init)"""


class Unreadable(InvalidInput):
    """A file named on the command line that cannot be read or is not what it must be: an
    officer credential, a certificate (exit 3)."""


def code_for(error: TrustError) -> int:
    if isinstance(error, StorageError):
        return NOT_READY
    if isinstance(error, (NotFound, Unreadable)):
        return UNREADABLE
    return FAILED


_PREFIX = {FAILED: "拒绝或失败 / Refused or failed", UNREADABLE: "无法读取 / Unreadable",
           NOT_READY: "服务未就绪 / No service here"}


def fail(error: TrustError) -> NoReturn:
    """Print ``error`` in both languages on stderr and end with its exit code."""
    code = code_for(error)
    click.echo(f"{_PREFIX[code]}: {error.zh} / {error.en}", err=True)
    sys.exit(code)


def _usage_zh(error: click.UsageError) -> str:
    """Click's messages are English; say the same in Chinese, by the kind of error."""
    if isinstance(error, click.NoSuchOption):
        return f"没有选项 {error.option_name}"
    if isinstance(error, (click.MissingParameter, click.BadParameter)):
        param = error.param
        name = (param.opts[0] if isinstance(param, click.Option) else param.human_readable_name) if param \
            else (error.param_hint or "")
        return f"缺少参数 {name}" if isinstance(error, click.MissingParameter) else f"参数 {name} 的值不合法"
    if error.message.startswith("No such command"):
        return "没有这个命令"
    return "命令用法错误"


class _ExitCodes:
    """Click's usage errors exit 4 with the message in Chinese and English (a missing or
    unreadable file named on the command line: 3); every other click error exits 1. Every
    group and command of trustctl has it, so each keeps the scheme when invoked on its own."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.BadParameter as error:
            if not isinstance(error, click.MissingParameter) and isinstance(getattr(error.param, "type", None), click.Path):
                # a file named on the command line that is missing or unreadable: an input error
                click.echo(f"无法读取 Unreadable: 文件不存在或无法读取 / {error.format_message()}", err=True)
                sys.exit(UNREADABLE)
            _usage(error)
        except click.UsageError as error:
            _usage(error)
        except click.ClickException as error:
            click.echo(f"错误 Error: {error.format_message()}", err=True)
            sys.exit(FAILED)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("已中止 / Aborted.", err=True)
            sys.exit(FAILED)


POINTER = "退出码与环境变量 / Exit codes and environment: trustctl --help"


class Command(_ExitCodes, click.Command):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("epilog", POINTER)
        super().__init__(*args, **kwargs)


class Group(_ExitCodes, click.Group):
    command_class = Command
    group_class = type  # subgroups are Groups too

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("epilog", POINTER)
        super().__init__(*args, **kwargs)


def _usage(error: click.UsageError) -> None:
    hint = f"\n{error.ctx.get_usage()}\n" if error.ctx is not None else ""
    click.echo(f"{hint}用法错误 Usage error: {_usage_zh(error)} / {error.format_message()}（trustctl --help）",
               err=True)
    sys.exit(USAGE)
