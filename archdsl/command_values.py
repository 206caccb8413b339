"""What the commands share, whichever module declares them: exit codes, the usage error, reading
a spec file, printing diagnostics, and the values of `--set NAME=VALUE` and `--input CxHxW`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from .errors import EXIT_FAILED as EXIT_SPEC, EXIT_OK, EXIT_USAGE, UsageError  # noqa: F401


def parse_value(text: str):
    """A --set value, read as the language reads a literal: a number (`64`, `-1`, `0.5`,
    `1e3`), true/false, a shape such as 7x7, or a bare word. Numbers are ASCII digits without
    `_` and within a float's range; `inf` and `nan` are words, as in a spec."""
    from .syntax import literal_value

    number = _NUMBER.fullmatch(text)
    if number or _SHAPE.fullmatch(text):
        parts = [number.group(2)] if number else text.split("x")
        values = [literal_value(p) for p in parts]
        if None in values:
            raise UsageError(f"the value {_shown(text)} is too large: numbers go up to about "
                             "1.8e308")
        if not number:
            return tuple(values)
        return -values[0] if number.group(1) == "-" else values[0]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        from .expand import Word

        return Word(text)
    raise UsageError(f"cannot read the value {_shown(text)}: give a number, true/false, a shape "
                     "like 7x7 or a word")


# The grammar's INT and FLOAT (grammars/archdsl.lark), with a sign, and its SHAPE.
_NUMBER = re.compile(r"([-+]?)([0-9]+|([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?"
                     r"|[0-9]+[eE][-+]?[0-9]+)")
_SHAPE = re.compile(r"[0-9]+(x[0-9]+)+")


def _shown(text: str) -> str:
    """A value echoed in a message: its repr, cut in the middle when long."""
    from .diagnostics import shorten

    return shorten(repr(text))


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
    from .syntax import literal_value

    if not re.fullmatch(r"[0-9]+(x[0-9]+)*", text.strip()):
        raise UsageError(f"--input takes CxHxW (e.g. --input 3x32x32) or a feature count, "
                         f"got {_shown(text)}")
    dims = tuple(literal_value(d) for d in text.strip().split("x"))
    if None in dims:
        raise UsageError(f"--input {_shown(text)} is too large: sizes go up to about 1.8e308")
    if len(dims) not in (1, 3) or min(dims) < 1:
        raise UsageError(f"--input takes CxHxW with sizes of at least 1 (e.g. 3x32x32), "
                         f"got {_shown(text)}")
    return dims


def color(stream) -> bool:
    """Whether to colour what goes to `stream` (a terminal, and NO_COLOR not set)."""
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def read_spec_file(file: str) -> str:
    """A spec file's text (standard input's for `-`, read once however often it is asked
    for), or a UsageError saying why it cannot be read."""
    if file == STDIN:  # read once per stream: `check - -` checks the same text twice
        if not _stdin_text or _stdin_text[0][0] is not sys.stdin:
            _stdin_text[:] = [(sys.stdin, read_spec_bytes(STDIN))]
        data = _stdin_text[0][1]
    else:
        data = read_spec_bytes(file)
    return data.decode("utf-8", errors="replace")  # U+FFFD, reported by the parser


def _stdin_bytes() -> bytes:
    from .network import MAX_SPEC_BYTES
    from .report import human_bytes

    stream = getattr(sys.stdin, "buffer", None)
    data = stream.read(MAX_SPEC_BYTES + 1) if stream is not None else \
        sys.stdin.read(MAX_SPEC_BYTES + 1).encode()
    if len(data) > MAX_SPEC_BYTES:
        raise UsageError(f"cannot read {STDIN_NAME}: it is larger than "
                         f"{human_bytes(MAX_SPEC_BYTES)}, the most a spec can be")
    return data


def read_spec_bytes(file: str) -> bytes:
    """A spec file's bytes (standard input's for `-`), at most a spec's size, undecoded (for
    fmt, which must not write back what it could not read); UsageError saying why not."""
    from .network import read_spec_data

    if file == STDIN:
        return _stdin_bytes()
    try:
        return read_spec_data(Path(file))
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


def add_spec_options(parser) -> None:
    """`--set NAME=VALUE` and `--input CxHxW`, as check, draw, export and explain take them."""
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                        help="override an `arch` parameter (repeatable), e.g. --set num_classes=10")
    parser.add_argument("--input", metavar="CxHxW",
                        help="check with this input shape instead of the spec's `input` line")


STDIN = "-"  # FILE `-`: the spec is read from standard input
STDIN_NAME = "<stdin>"  # … and its diagnostics name it so
_stdin_text: list[tuple] = []  # (the stream, its text)


def spec_source(file: str, params: dict) -> tuple[str, str, dict]:
    """What a command reads for SPEC, as (text, the name diagnostics give it, the `arch`
    parameters). SPEC may be a run folder written by `archdsl train`: its copy of the spec,
    with the parameters the run was trained with (num_classes from its data), `params` (the
    `--set` values) on top; so `archdsl export RUN` fits the run's weights."""
    if is_run_folder(file):
        spec, trained_with = run_spec(Path(file))
        return read_spec_file(str(spec)), str(spec), {**trained_with, **params}
    return read_spec_file(file), spec_name(file), params


def is_run_folder(file: str) -> bool:
    """Whether SPEC names a run folder (one with the config.json `archdsl train` writes)."""
    return file != STDIN and (Path(file) / "config.json").is_file()


def run_spec(run: Path) -> tuple[Path, dict]:
    """A run folder's copy of its spec and the parameters it was trained with (read from its
    config.json without importing training, which imports torch); UsageError if damaged."""
    config = run / "config.json"
    try:
        saved = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
        raise UsageError(f"cannot read {config}: {reason}") from None
    spec = saved.get("spec") if isinstance(saved, dict) else None
    params = saved.get("parameters") if isinstance(saved, dict) else None
    if not (isinstance(spec, str) and spec.endswith(".arch") and Path(spec).name == spec
            and isinstance(params, dict)):
        raise UsageError(f"{config} is damaged or not archdsl's: it names no spec copy and "
                         "parameters")
    if not (run / spec).is_file():
        raise UsageError(f"{run} has lost its copy of the spec, {spec}")
    return run / spec, params


def spec_name(file: str) -> str:
    """The name diagnostics give a spec: `<stdin>` for `-`, else the path as given."""
    return STDIN_NAME if file == STDIN else file


# ----------------------------------------------------------------------------- the parser


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (unless it says it already); an epilog of
    examples keeps its lines."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default in (None, False, [], argparse.SUPPRESS) or "default" in text.lower()
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return text
        shown = ", ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {shown})".lstrip()


def epilog(examples: list[str], doc: str) -> str:
    """A command's epilog: two or three examples, and the document to read."""
    lines = "\n".join(f"  {e}" for e in examples)
    return f"examples:\n{lines}\n\nmore: {doc}"


class Parser(argparse.ArgumentParser):
    """argparse with archdsl's usage errors: one line on stderr, `archdsl CMD: error: …`,
    exit 2; a mistyped command gets the closest one (`archdsl chek` -> did you mean check?).

    `arguments`, a function of the parser, declares its arguments when it is first used (to
    parse, or for its help): a command whose options come from a heavier module (train's from
    archdsl/train/config.py) gives them so, and the other commands never import that module."""

    def __init__(self, *args, arguments=None, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._undeclared = arguments

    def _declare(self) -> None:
        arguments, self._undeclared = self._undeclared, None
        if arguments is not None:
            arguments(self)

    def parse_known_args(self, args=None, namespace=None):
        self._declare()
        return super().parse_known_args(args, namespace)

    def format_usage(self):
        self._declare()
        return super().format_usage()

    def format_help(self):
        self._declare()
        return super().format_help()

    def error(self, message: str):
        choice = re.match(r"argument COMMAND: invalid choice: '(.*?)'", message)
        if choice:
            message = unknown_command(choice.group(1), self.commands())
        else:
            message += f" (see {self.prog} --help)"
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown option is blamed on the command it was given to,
        with the closest option it has."""
        import difflib

        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self.subparser(getattr(namespace, "command", None)) or self
            options = [o for a in parser._actions for o in a.option_strings]
            close = difflib.get_close_matches(extras[0].split("=")[0], options, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace

    def subparser(self, name):
        """The parser of subcommand `name`, or None."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices.get(name)
        return None

    def commands(self) -> list[str]:
        """The names of the subcommands, in the order they were declared."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return list(action.choices)
        return []


def unknown_command(word: str, commands: list[str]) -> str:
    """`unknown command 'chek'; did you mean check?` (or the list of commands)."""
    import difflib

    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.5)
    if close:
        return f"unknown command '{word}'; did you mean {close[0]}?"
    return f"unknown command '{word}'; the commands are {', '.join(commands)}"
