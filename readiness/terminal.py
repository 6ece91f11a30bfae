"""Aligned text tables for the terminal: the one formatter behind every table the CLI prints.

Widths are terminal columns, not code points: a Vietnamese name typed in decomposed form
(``Hà Nội`` as ``a`` + combining grave) takes as many columns as its composed form, and wide
(East Asian) characters take two. Columns grow to fit their longest cell; nothing is truncated.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def display_width(text: str) -> int:
    """Terminal columns taken by ``text``: combining marks take none, wide characters two."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns, on the left when ``right``-aligned."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


@dataclass(frozen=True)
class Column:
    """A column: its title, its minimum width (it grows to fit) and its alignment."""

    title: str
    width: int = 0
    right: bool = False


def format_rows(columns: Sequence[Column], rows: Iterable[Sequence[str]], sep: str = "  ",
                rule_sep: str | None = None, align_titles: bool = True) -> list[str]:
    """Header, rule and one line per row, every column as wide as its widest cell.

    The rule is a line of dashes as long as the header, or, with ``rule_sep`` (e.g. ``"-+-"``),
    one run of dashes per column joined by it. Titles align as their column unless ``align_titles``
    is off (then left, as ``psql`` prints them). Trailing spaces are stripped.
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([col.width, display_width(col.title)] + [display_width(r[i]) for r in cells])
              for i, col in enumerate(columns)]

    def line(values: Sequence[str], header: bool = False) -> str:
        return sep.join(pad(v, w, col.right and (align_titles or not header))
                        for v, w, col in zip(values, widths, columns)).rstrip()

    header = line([c.title for c in columns], header=True)
    rule = rule_sep.join("-" * w for w in widths) if rule_sep is not None else "-" * len(header)
    return [header, rule] + [line(r) for r in cells]
