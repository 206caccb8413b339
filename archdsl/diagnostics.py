"""Source spans, diagnostics and their rendering with a source excerpt and a caret.

Errors are values (Diagnostic) in every stage; only the API raises SpecError and only
the CLI turns diagnostics into text and exit codes.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Iterable

ERROR = "error"
WARNING = "warning"


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
class Diagnostic:
    """One finding about a spec: what, where, and how to fix it."""

    severity: str
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    label: str | None = None  # short text printed after the caret

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_dict(self) -> dict:
        """The JSON form used by `archdsl check --format json`."""
        span = self.span
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": span.file if span else None,
            "line": span.line if span else None,
            "column": span.column if span else None,
            "end_line": span.end_line if span else None,
            "end_column": span.end_column if span else None,
            "hint": self.hint,
            "label": self.label,
        }


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


class SpecError(Exception):
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


class DiagnosticError(Exception):
    """Internal: carries one diagnostic out of a deep helper to the stage that collects them."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean …?' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
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
    """Render one diagnostic the way a compiler does:

        file:line:col: error[CODE]: message
          |
        9 |   the source line
          |   ^^^^ label
          = hint: ...
    """
    c = _COLORS if color else {k: "" for k in _COLORS}
    head = _headline(d)
    sev = f"{d.severity}[{d.code}]"
    head = head.replace(sev, f"{c[d.severity]}{sev}{c['reset']}{c['bold']}", 1) + c["reset"]
    lines = [head]
    span = d.span
    if span is not None and source is not None:
        src_lines = source.split("\n")
        if 1 <= span.line <= len(src_lines):
            text = src_lines[span.line - 1].replace("\t", " ")
            gutter = " " * len(str(span.line))
            start = max(span.column - 1, 0)
            if span.end_line == span.line:
                end = max(span.end_column - 1, start + 1)
            else:
                end = max(len(text.rstrip()), start + 1)
            text, start, end = _window(text, start, end)
            carets = "^" * (end - start)
            label = f" {d.label}" if d.label else ""
            lines.append(f"{gutter} |")
            lines.append(f"{span.line} | {text}")
            lines.append(f"{gutter} | {' ' * start}{c['caret']}{carets}{label}{c['reset']}")
            if d.hint:
                lines.append(f"{gutter} = hint: {d.hint}")
            return "\n".join(lines)
    if d.hint:
        lines.append(f"  = hint: {d.hint}")
    return "\n".join(lines)


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


__all__ = ["Span", "Diagnostic", "SpecError", "DiagnosticError", "error", "warning", "render",
           "render_all", "did_you_mean", "ERROR", "WARNING"]
