"""Terminal tables that fit 100 columns: rich lays them out, wrapping the text columns and
the headings (every command's tables follow the same rule)."""
from __future__ import annotations

import io

TABLE_WIDTH = 100


def terminal_table(headers, rows, text_cols: int = 1, whole_cols: int = 1,
                   section_before_last: bool = False) -> str:
    """``rows`` of cell strings under ``headers``. The first ``text_cols`` columns are left-
    aligned text (the first ``whole_cols`` of them never wrap: names); the rest are numbers,
    right-aligned, never wrapped, their multi-word headings on two lines."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False)
    for i, head in enumerate(headers):
        words = head.split(" ")
        title = head if len(words) == 1 or i < text_cols else \
            " ".join(words[:-1]) + "\n" + words[-1]
        if i < whole_cols:
            table.add_column(title, justify="left", no_wrap=True)
        elif i < text_cols:
            table.add_column(title, justify="left", overflow="fold", min_width=6)
        else:
            table.add_column(title, justify="right", no_wrap=True)
    for j, row in enumerate(rows):
        table.add_row(*row, end_section=section_before_last and j == len(rows) - 2)
    buf = io.StringIO()
    Console(file=buf, width=TABLE_WIDTH, color_system=None, force_terminal=False,
            legacy_windows=False, emoji=False, highlight=False, markup=False).print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def fit_lines(text: str) -> str:
    """Every line of ``text`` wrapped to TABLE_WIDTH, continuation lines indented."""
    import textwrap
    out = []
    for line in text.split("\n"):
        if len(line) <= TABLE_WIDTH:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        out.append(textwrap.fill(line, TABLE_WIDTH, subsequent_indent=indent,
                                 break_on_hyphens=False, break_long_words=False))
    return "\n".join(out)
