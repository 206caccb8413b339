"""What the commands share, whichever module declares them: exit codes, the usage error, reading
a spec file, printing diagnostics, and the values of `--set NAME=VALUE` and `--input CxHxW`."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with the command line itself (exit code 2)."""


def parse_value(text: str):
    """A --set value: a number, true/false, a shape such as 7x7, or a bare word."""
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[0-9]+(x[0-9]+)+", text):
        return tuple(int(d) for d in text.split("x"))
    try:
        return float(text)
    except ValueError:
        pass
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        from .expand import Word

        return Word(text)
    raise UsageError(f"cannot read the value {text!r}: give a number, true/false, a shape like 7x7 "
                     "or a word")


def parse_sets(items: list[str]) -> dict:
    values = {}
    for item in items or ():
        name, eq, value = item.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
            raise UsageError(f"--set takes NAME=VALUE (e.g. --set num_classes=10), got {item!r}")
        values[name.strip()] = parse_value(value.strip())
    return values


def parse_input(text: str | None):
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]+(x[0-9]+)*", text.strip()):
        raise UsageError(f"--input takes CxHxW (e.g. --input 3x32x32) or a feature count, "
                         f"got {text!r}")
    dims = tuple(int(d) for d in text.strip().split("x"))
    if len(dims) not in (1, 3) or min(dims) < 1:
        raise UsageError(f"--input takes CxHxW with sizes of at least 1 (e.g. 3x32x32), got {text!r}")
    return dims


def color(stream) -> bool:
    """Whether to colour what goes to `stream` (a terminal, and NO_COLOR not set)."""
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def read_spec_file(file: str) -> str:
    """A spec file's text, or a UsageError saying why it cannot be read."""
    from .network import read_spec

    try:
        return read_spec(Path(file))
    except OSError as exc:
        reason = "it is a folder; give .arch files" if Path(file).is_dir() else \
            (exc.strerror or str(exc))
        raise UsageError(f"cannot read {file}: {reason}") from None


def print_diagnostics(diagnostics, text: str) -> None:
    """Every diagnostic with its excerpt and caret, on stderr."""
    from .diagnostics import render_all
    from .syntax import normalise_source

    if diagnostics:
        print(render_all(diagnostics, normalise_source(text), color=color(sys.stderr)),
              file=sys.stderr)
