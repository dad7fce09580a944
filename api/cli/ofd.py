"""`trustctl ofd`: OFD documents."""

import sys

import click

from api.cli import exits
from ofd.text import document_text
from trust.errors import TrustError
from trust.report import EXIT_UNREADABLE


@click.group(cls=exits.Group)
def ofd() -> None:
    """OFD 版式文档 / OFD documents."""


@ofd.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def text(file: str) -> None:
    """按阅读顺序打印每页文字 / Print each page's text in reading order."""
    try:
        with open(file, "rb") as f:
            pages = document_text(f.read())
    except (TrustError, OSError) as e:
        click.echo(f"无法读取 Unreadable: {getattr(e, 'zh', e)} / {e}", err=True)
        sys.exit(EXIT_UNREADABLE)
    for index, page in enumerate(pages):
        click.echo(f"--- 第 {index + 1} 页 / page {index + 1} ---")
        click.echo(page)
