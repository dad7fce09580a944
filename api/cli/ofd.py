"""`trustctl ofd`: OFD documents."""

import sys

import click

from api.cli import exits
from ofd.package import Package
from ofd.reader import read_package
from ofd.render import render_page
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


@ofd.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1), help="页码，从 1 起 / Page number, from 1.")
@click.option("--dpi", default=150, show_default=True, type=click.IntRange(36, 600), help="分辨率 / Resolution.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="写出的 PNG 文件 / The PNG file to write.")
def render(file: str, page: int, dpi: int, out: str) -> None:
    """把一页画成 PNG，印章画在盖章处 / Draw one page as PNG, each seal at its stamp.

    What is drawn and what is not: ofd/render.py (no rotations, clipping areas, patterns)."""
    try:
        with open(file, "rb") as f:
            data = f.read()
        pages = len(read_package(Package.from_bytes(data), objects=False).pages)
    except (TrustError, OSError) as e:
        click.echo(f"无法读取 Unreadable: {getattr(e, 'zh', e)} / {e}", err=True)
        sys.exit(EXIT_UNREADABLE)
    if page > pages:
        raise click.BadParameter(f"the document has {pages} page(s) / 文档只有 {pages} 页", param_hint="--page")
    try:
        png = render_page(data, page - 1, dpi=dpi)
    except TrustError as e:
        exits.fail(e)
    with open(out, "wb") as f:
        f.write(png)
    click.echo(f"已写出 / Written: {out}（第 {page}/{pages} 页 / page {page} of {pages}, {dpi} dpi）")
