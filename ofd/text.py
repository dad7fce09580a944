"""Page text in reading order: runs grouped into lines by baseline, lines top to bottom,
runs left to right, a space where a gap between runs is wider than a third of the size."""

import itertools

from ofd.reader import Page, TextRun, read_ofd


def _end(run: TextRun) -> float:
    advance = sum(run.delta_x[:max(len(run.text) - 1, 0)]) if run.delta_x else run.size * max(len(run.text) - 1, 0)
    return run.x + advance + run.size


def page_text(page: Page) -> str:
    runs = sorted((r for r in page.texts if r.text.strip()), key=lambda r: (r.y, r.x))
    lines: list[list[TextRun]] = []
    for run in runs:
        if lines and abs(lines[-1][0].y - run.y) <= max(lines[-1][0].size, run.size) * 0.5:
            lines[-1].append(run)
        else:
            lines.append([run])
    out = []
    for line in lines:
        line.sort(key=lambda r: r.x)
        text = line[0].text
        for previous, run in itertools.pairwise(line):
            gap = run.x - _end(previous)
            text += (" " if gap > run.size / 3 else "") + run.text
        out.append(text)
    return "\n".join(out)


def document_text(data: bytes) -> list[str]:
    """Each page's text, in page order."""
    return [page_text(page) for page in read_ofd(data).pages]
