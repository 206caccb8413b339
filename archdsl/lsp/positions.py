"""Positions between archdsl and the editor. archdsl counts 1-based lines and columns in
code points (a Span); the editor counts from 0, and a column in the units the session
agreed on at `initialize`: UTF-16 code units unless the client asked for UTF-8 or UTF-32.
An emoji is one code point and two UTF-16 units, so columns after it differ."""

from __future__ import annotations

import re
from collections.abc import Callable

from lsprotocol import types as lsp

from ..diagnostics import Span


def split_lines(text: str) -> list[str]:
    """The lines of `text` as the editor numbers them (CR LF, CR and LF all end one)."""
    return re.split(r"\r\n|\r|\n", text)


class Columns:
    """The positions of one text (`lines`), converted with `units` (how many of the
    client's units a string is: `len` for code points)."""

    def __init__(self, lines: list[str], units: Callable[[str], int] = len):
        self.lines, self.units = lines, units

    def width(self, text: str) -> int:
        """`text`'s length in the client's units."""
        return len(text) if text.isascii() else self.units(text)

    def position(self, line: int, column: int) -> lsp.Position:
        """The editor's position of 1-based (line, column); a column past the line's end
        stays that far past it."""
        line, column = max(line - 1, 0), max(column - 1, 0)
        text = self.lines[line] if line < len(self.lines) else ""
        return lsp.Position(line, self.width(text[:column]) + max(column - len(text), 0))

    def range(self, span: Span | None) -> lsp.Range:
        """The editor's range of `span` (the first character when there is none)."""
        if span is None:
            return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 1))
        return lsp.Range(self.position(span.line, span.column),
                         self.position(span.end_line, span.end_column))

    def end(self) -> lsp.Position:
        """The position after the last character."""
        return lsp.Position(len(self.lines) - 1, self.width(self.lines[-1]))

    def from_client(self, position: lsp.Position, clip: bool = False) -> tuple[int, int]:
        """1-based (line, column) of an editor position. A character past its line's end is
        the line's end, as the protocol says; a line past the text's end is
        PositionOutside, or with `clip` the text's end."""
        if position.line >= len(self.lines):
            if not clip:
                raise PositionOutside(f"line {position.line} is past the document's end "
                                      f"(it has {len(self.lines)} lines, from 0)")
            return len(self.lines), len(self.lines[-1]) + 1
        text, units = self.lines[position.line], 0
        if text.isascii():
            return position.line + 1, min(position.character, len(text)) + 1
        for i, char in enumerate(text):
            if units >= position.character:
                return position.line + 1, i + 1
            units += self.units(char)
        return position.line + 1, len(text) + 1


class PositionOutside(ValueError):
    """A position that the document does not have."""
