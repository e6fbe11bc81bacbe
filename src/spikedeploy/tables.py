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
    titles, fixed = [], 0
    for i, head in enumerate(headers):
        words = head.split(" ")
        title = head if len(words) == 1 or i < text_cols else \
            " ".join(words[:-1]) + "\n" + words[-1]
        titles.append(title)
        if i < text_cols:
            # names keep their width where they can, and wrap (fold) where they cannot
            table.add_column(title, justify="left", overflow="fold",
                             min_width=6 if i >= whole_cols else 8)
            fixed += 8
        else:
            table.add_column(title, justify="right", no_wrap=True)
            fixed += max([len(line) for line in title.split("\n")] +
                         [len(str(r[i])) for r in rows])
    for j, row in enumerate(rows):
        table.add_row(*row, end_section=section_before_last and j == len(rows) - 2)
    # Numbers are never cropped: where even wrapped names leave too little room, the
    # table is as wide as its numbers need.
    width = max(TABLE_WIDTH, fixed + len(headers))
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False,
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
