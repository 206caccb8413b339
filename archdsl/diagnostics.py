"""Source spans, diagnostics and their rendering with a source excerpt and a caret.

Errors are values (Diagnostic) in every stage; only the API raises SpecError and only
the CLI turns diagnostics into text and exit codes.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Iterable

from .codes import ERROR, WARNING
from .errors import ArchdslError


@dataclass(frozen=True)
class Span:
    """A region of a spec file: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: "Span") -> "Span":
        """The span from the start of this one to the end of `other`."""
        return replace(self, end_line=other.end_line, end_column=other.end_column)


@dataclass(frozen=True)
class Note:
    """A place that led to a diagnostic, such as the block call whose body holds it (like a C++
    compiler's "in instantiation of" notes); span None for a note that stands for several."""

    message: str
    span: Span | None = None

    def to_dict(self) -> dict:
        span = self.span
        return {"message": self.message, **_where(span)}


def _where(span: Span | None) -> dict:
    return {"file": span.file if span else None, "line": span.line if span else None,
            "column": span.column if span else None,
            "end_line": span.end_line if span else None,
            "end_column": span.end_column if span else None}


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a spec: what, where, and how to fix it; `notes` say how it was
    reached (the chain of block calls, innermost first)."""

    severity: str
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    label: str | None = None  # short text printed after the caret
    notes: tuple[Note, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def with_note(self, message: str, span: Span | None) -> "Diagnostic":
        """This diagnostic with one more note after its others."""
        return replace(self, notes=self.notes + (Note(message, span),))

    def without_notes(self) -> "Diagnostic":
        """The finding itself: two calls of one block that fail alike compare equal by it."""
        return replace(self, notes=()) if self.notes else self

    def to_dict(self) -> dict:
        """The JSON form used by `archdsl check --format json`."""
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            **_where(self.span),
            "hint": self.hint,
            "label": self.label,
            "notes": [n.to_dict() for n in self.notes],
        }


def called_here(block: str) -> str:
    """The note on a block call that led to a diagnostic in the block's body."""
    return f"in block `{block}`, called here"


MOST_NOTES = 10  # a chain of calls longer than this is shown by its ends


def trim_notes(d: Diagnostic) -> Diagnostic:
    """`d` with a very long chain of notes cut to its first and last few, as C++ compilers
    skip instantiation contexts."""
    if len(d.notes) <= MOST_NOTES:
        return d
    head, tail = d.notes[:MOST_NOTES // 2], d.notes[-(MOST_NOTES // 2 - 1):]
    skipped = len(d.notes) - len(head) - len(tail)
    return replace(d, notes=head + (Note(f"… {skipped} more calls …"),) + tail)


LONGEST_WORD = 60  # a name echoed in a message beyond this is cut in the middle


def shorten(text: str | None) -> str | None:
    """`text` with every run of more than LONGEST_WORD non-blank characters cut to its start
    and end around `…`: a 5 MB identifier is not echoed whole."""
    if text is None or len(text) <= LONGEST_WORD:
        return text
    return re.sub(r"\S{%d,}" % (LONGEST_WORD + 1),
                  lambda m: f"{m.group()[:LONGEST_WORD - 12]}…{m.group()[-10:]}", text)


def error(code: str, message: str, span: Span | None = None, hint: str | None = None,
          label: str | None = None) -> Diagnostic:
    return Diagnostic(ERROR, code, shorten(message), span, shorten(hint), shorten(label))


def warning(code: str, message: str, span: Span | None = None, hint: str | None = None,
            label: str | None = None) -> Diagnostic:
    return Diagnostic(WARNING, code, shorten(message), span, shorten(hint), shorten(label))


class SpecError(ArchdslError):
    """Raised by the Python API when a spec has errors; carries every diagnostic."""

    def __init__(self, diagnostics: Iterable[Diagnostic], source: str | None = None):
        self.diagnostics = list(diagnostics)
        self.source = source
        errors = [d for d in self.diagnostics if d.is_error]
        first = errors[0] if errors else (self.diagnostics[0] if self.diagnostics else None)
        summary = _headline(first) if first else "invalid spec"
        if len(errors) > 1:
            summary += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        super().__init__(summary)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def render(self, color: bool = False) -> str:
        return render_all(self.diagnostics, self.source, color=color)

    def report(self, command: str, color: bool = False) -> str:
        """The diagnostics, each with its excerpt and caret."""
        return self.render(color=color)


class DiagnosticError(Exception):
    """Internal: carries one diagnostic out of a deep helper to the stage that collects them."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def span_text(source: str, span: Span) -> str:
    """The text of `source` that `span` covers (a hint's exact replacement is built from it)."""
    lines = source.split("\n")
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1:span.end_column - 1]
    inside = [lines[span.line - 1][span.column - 1:], *lines[span.line:span.end_line - 1],
              lines[span.end_line - 1][:span.end_column - 1]]
    return "\n".join(inside)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean …?' hint for a misspelt name, or None when nothing is close."""
    choices = sorted(set(choices))
    # A poor match (below 0.75) must at least start alike: `activation` is not `dilation`.
    close = [c for c in difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
             if difflib.SequenceMatcher(None, word, c).ratio() >= 0.75
             or c[:1].lower() == word[:1].lower()][:1]
    if not close and len(word) > 2:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"did you mean `{close[0]}`?" if close else None


def _headline(d: Diagnostic) -> str:
    where = f"{d.span.file}:{d.span.line}:{d.span.column}: " if d.span else ""
    return f"{where}{d.severity}[{d.code}]: {d.message}"


_COLORS = {ERROR: "\033[1;31m", WARNING: "\033[1;33m", "caret": "\033[1;36m", "bold": "\033[1m",
           "reset": "\033[0m"}


def render(d: Diagnostic, source: str | None, color: bool = False) -> str:
    """Render one diagnostic the way a compiler does, each note after it in the same form:

        file:line:col: error[CODE]: message
          |
        9 |   the source line
          |   ^^^^ label
          = hint: ...
        file:line:col: note: in block `b`, called here
          |
        12 | b 64
           | ^^^^
    """
    c = _COLORS if color else {k: "" for k in _COLORS}
    head = _headline(d)
    sev = f"{d.severity}[{d.code}]"
    head = head.replace(sev, f"{c[d.severity]}{sev}{c['reset']}{c['bold']}", 1) + c["reset"]
    lines = [head]
    excerpt = _excerpt(d.span, source, d.label, c)
    lines += excerpt
    if d.hint:
        gutter = excerpt[0][:-2] if excerpt else " "
        lines.append(f"{gutter} = hint: {d.hint}")
    for note in d.notes:
        where = f"{note.span.file}:{note.span.line}:{note.span.column}: " if note.span else ""
        lines.append(f"{where}{c['caret']}note{c['reset']}: {note.message}")
        lines += _excerpt(note.span, source, None, c)
    return "\n".join(lines)


def _excerpt(span: Span | None, source: str | None, label: str | None, c: dict) -> list[str]:
    """The source line of `span` with carets under it (and `label` after them), or nothing
    when there is no span or no source."""
    if span is None or source is None:
        return []
    src_lines = source.split("\n")
    if not 1 <= span.line <= len(src_lines):
        return []
    text = src_lines[span.line - 1].replace("\t", " ")
    gutter = " " * len(str(span.line))
    start = max(span.column - 1, 0)
    if span.end_line == span.line:
        end = max(span.end_column - 1, start + 1)
    else:
        end = max(len(text.rstrip()), start + 1)
    text, start, end = _window(text, start, end)
    carets = "^" * (end - start)
    label = f" {label}" if label else ""
    return [f"{gutter} |", f"{span.line} | {text}",
            f"{gutter} | {' ' * start}{c['caret']}{carets}{label}{c['reset']}"]


WIDEST_EXCERPT = 120  # columns of a source line shown; a longer one is cut around the span


def _window(text: str, start: int, end: int) -> tuple[str, int, int]:
    """The part of a long source line around [start, end), with `…` where it is cut, and
    the span's columns in it."""
    if len(text) <= WIDEST_EXCERPT:
        return text, start, end
    end = min(end, start + LONGEST_WORD)
    left = max(start - 40, 0)
    right = min(max(end + 20, left + WIDEST_EXCERPT - 2), len(text))
    before, after = ("…" if left else ""), ("…" if right < len(text) else "")
    shown = before + text[left:right] + after
    return shown, start - left + len(before), end - left + len(before)


def render_all(diagnostics: Iterable[Diagnostic], source: str | None, color: bool = False) -> str:
    return "\n\n".join(render(d, source, color) for d in diagnostics)


def sort_key(d: Diagnostic):
    s = d.span
    return (s.file, s.line, s.column) if s else ("", 0, 0)


__all__ = ["Span", "Note", "Diagnostic", "trim_notes", "SpecError", "DiagnosticError", "error", "warning", "render",
           "render_all", "did_you_mean", "span_text", "ERROR", "WARNING"]
