"""Keeping the C reproducer within WIDTH columns (tabs at 8), so it survives being mailed.

The templates in c/ are written to fit; what the exporter generates is made
to fit here: comments and calls are wrapped as they are written, and `fit`
splits any string literal that still runs past the margin into adjacent
literals (which C joins), so long titles and expected-cell strings fit too.
"""

from __future__ import annotations

import textwrap

WIDTH = 72
TAB = 8
LONG_LITERAL = 16  # string literals at least this long may be split


def columns(line: str) -> int:
    return len(line.expandtabs(TAB))


def comment(text: str, indent: str = "\t") -> str:
    """`text` as a block comment at `indent`, wrapped (never inside a word)."""
    room = WIDTH - columns(indent) - 3
    lines = textwrap.wrap(text, room, break_long_words=False, break_on_hyphens=False)
    if len(lines) == 1 and columns(f"{indent}/* {lines[0]} */") <= WIDTH:
        return f"{indent}/* {lines[0]} */\n"
    body = "".join(f"{indent} * {x}\n" for x in lines[1:])
    return f"{indent}/* {lines[0]}\n{body}{indent} */\n"


def call(head: str, args: list[str], tail: str, indent: str = "\t") -> str:
    """`head(args)tail` on one line, or broken after commas, continued two tabs in."""
    one = f"{indent}{head}({', '.join(args)}){tail}"
    if columns(one) <= WIDTH:
        return one + "\n"
    lines, cur = [], f"{indent}{head}("
    for i, arg in enumerate(args):
        piece = arg + (", " if i < len(args) - 1 else f"){tail}")
        if columns(cur + piece.rstrip()) > WIDTH and cur.strip() not in ("", f"{head}("):
            lines.append(cur.rstrip())
            cur = indent + "\t\t"
        cur += piece
    lines.append(cur.rstrip())
    return "\n".join(lines) + "\n"


def _literal_end(line: str, start: int) -> int:
    """The index of the quote that closes the literal opened at `start`."""
    i = start + 1
    while line[i] != '"':
        i += 2 if line[i] == "\\" else 1
    return i


def _split(line: str, indent: str | None = None) -> list[str]:
    """A line too wide, with its widest string literal broken into pieces that fit, each
    continued one tab in from the line's own indent (`indent`, once it is continued: a
    literal of a thousand page letters takes many pieces, all at that indent)."""
    if columns(line) <= WIDTH or '"' not in line or line.lstrip().startswith(("/*", "*", "#")):
        return [line]
    start = line.index('"')
    end = _literal_end(line, start)
    if end - start < LONG_LITERAL:
        return [line]  # code around short literals is the templates' to fit
    if indent is None:
        indent = line[: len(line) - len(line.lstrip())] + "\t"
    room = WIDTH - columns(line[:start]) - 2  # the quotes
    if room < LONG_LITERAL:
        lead, rest = line[:start].rstrip(), indent + line[start:]
        return [lead, *_split(rest, indent)] if columns(rest) < columns(line) else [line]
    cut = start + 1 + room
    space = line.rfind(" ", start + 1, cut)
    if space > start + LONG_LITERAL // 2:
        cut = space + 1  # after a space, if there is one not too far back
    while line[cut - 1] == "\\" or (cut - 2 > start and line[cut - 2:cut] == "\\x"):
        cut -= 1
    if cut >= end:
        return [line]
    return [line[:cut] + '"', *_split(indent + '"' + line[cut:], indent)]


def fit(source: str) -> str:
    """The source with over-wide string literals split (see the module docstring)."""
    return "".join(f"{x}\n" for line in source.splitlines() for x in _split(line))


def too_wide(text: str) -> list[int]:
    """The 1-based numbers of the lines wider than WIDTH columns."""
    return [n for n, line in enumerate(text.splitlines(), 1) if columns(line) > WIDTH]


__all__ = ["WIDTH", "call", "columns", "comment", "fit", "too_wide"]
