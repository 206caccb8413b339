"""The values the commands take on their command line: `--set NAME=VALUE` and `--input
CxHxW`, and the usage error a malformed one is."""

from __future__ import annotations

import re


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
