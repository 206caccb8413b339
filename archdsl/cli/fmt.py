"""`archdsl fmt PATH...`: rewrite .arch files in the canonical layout (archdsl/fmt.py makes
it), each replaced atomically and only when the user may write it; `-` is standard input to
standard output; --check and --diff write nothing."""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

from ..command_values import (EXIT_OK, EXIT_SPEC, STDIN, UsageError, epilog, print_diagnostics,
                              read_spec_bytes)


def add_fmt(sub) -> None:
    """Declare `archdsl fmt PATH... [--check] [--diff]` on `sub` (the result of
    `parser.add_subparsers()`)."""
    parser = sub.add_parser(
        "fmt", help="rewrite .arch files in the canonical layout",
        description="Rewrite .arch files in archdsl's canonical layout (spacing, separators, "
                    "indentation, blank lines, aligned trailing comments); comments are kept "
                    "and each file is replaced atomically. A folder stands for the .arch files "
                    "in it and below; `-` reads stdin and writes the result to stdout.",
        epilog=epilog(["archdsl fmt specs/", "archdsl fmt --check specs/",
                       "archdsl fmt --diff mynet.arch"], "docs/editors.md"))
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".arch file, folder, or -")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file is not formatted")
    parser.add_argument("--diff", action="store_true",
                        help="write nothing; print a unified diff of the changes and exit 1 "
                             "if there are any")
    parser.set_defaults(func=cmd_fmt, command="fmt")


def _spec_files(paths: list[str]) -> list[str]:
    """The files PATH... stands for: folders searched for .arch files, each file once (a
    link and its target are one file), `-` (standard input) at most once."""
    if paths.count(STDIN) > 1:
        raise UsageError("`-` (standard input) may be given once: it can be read only once")
    files: list[str] = []
    for item in paths:
        path = Path(item)
        if item == STDIN or path.is_file():
            files.append(item)
        elif path.is_dir():
            found = sorted(str(p) for p in path.rglob("*.arch") if p.is_file())
            if not found:
                raise UsageError(f"no .arch files in {item}")
            files += found
        elif path.exists():  # a FIFO, a device: nothing fmt could rewrite in place
            raise UsageError(f"cannot format {item}: it is {_what(path)}, not a file; give "
                             f"its text on standard input instead (`archdsl fmt - < {item}`)")
        else:
            raise UsageError(f"cannot read {item}: No such file or directory")
    seen: set[str] = set()
    return [f for f in files if f == STDIN or not (os.path.realpath(f) in seen
                                                   or seen.add(os.path.realpath(f)))]


def _what(path: Path) -> str:
    import stat

    mode = path.stat().st_mode
    return ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


class _NotFormatted(Exception):
    """A file fmt leaves as it is, and why; the other files are still formatted. `reason` is
    the summary's words for it: (one file, several files)."""

    def __init__(self, message: str, reason: tuple[str, str] = ("cannot be formatted",
                                                                 "cannot be formatted")):
        super().__init__(message)
        self.reason = reason


def cmd_fmt(args) -> int:
    """Run `archdsl fmt`: format each file; 1 if one has errors or cannot be read or
    written, or (with --check or --diff) would change. Standard input's text goes to
    standard output (or its diff, or nothing with --check), and the lines about the files
    then go to stderr."""
    files = _spec_files(args.paths)
    to_stdout = STDIN in files and not (args.check or args.diff)
    report = sys.stderr if to_stdout else sys.stdout
    changed, failed = 0, []
    for file in files:
        try:
            changed += _format_one(args, file, report)
        except _NotFormatted as why:
            print(f"{'<stdin>' if file == STDIN else file}: not formatted: {why}",
                  file=sys.stderr)
            failed.append(why.reason)
    if files != [STDIN] or not to_stdout:
        _summary(args, changed, len(files) - changed - len(failed), failed, report)
    if failed or (changed and (args.check or args.diff)):
        return EXIT_SPEC
    return EXIT_OK


def _format_one(args, file: str, report) -> int:
    """Format one file (or stdin) as the flags say; 1 if its text changes (or would)."""
    from ..fmt import FormatError, format_text

    name = "<stdin>" if file == STDIN else file
    text = _read(file)
    try:
        formatted = format_text(text, name)
    except FormatError as exc:
        print_diagnostics(exc.diagnostics, text)
        raise _NotFormatted("it has syntax errors" if exc.diagnostics else str(exc),
                            ("has syntax errors", "have syntax errors")) from None
    if file == STDIN and not (args.check or args.diff):
        sys.stdout.write(formatted)
        return int(formatted != text)
    if formatted == text:
        return 0
    if args.diff:
        sys.stdout.writelines(difflib.unified_diff(
            text.splitlines(keepends=True), formatted.splitlines(keepends=True),
            name, f"{name} (formatted)"))
    elif args.check:
        print(f"would reformat {name}", file=report)
    else:
        _write(file, formatted)
        print(f"reformatted {file}", file=report)
    return 1


def _read(file: str) -> str:
    """The file's (or stdin's) text, strictly UTF-8: a byte that is not would come back as
    U+FFFD (in a comment, where the parser never sees it), so such a file is left alone."""
    try:
        data = read_spec_bytes(file)
    except UsageError as exc:
        raise _NotFormatted(str(exc).split(": ", 1)[-1], ("cannot be read",) * 2) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _NotFormatted(f"byte 0x{data[exc.start]:02x} at line {line}, column {column} is "
                            "not UTF-8, and formatting would replace it; save the file as "
                            "UTF-8 first", ("is not UTF-8", "are not UTF-8")) from None


def _write(file: str, formatted: str) -> None:
    """Replace the file (through a symbolic link: the file it points to, the link kept)
    keeping its permissions and owner; a file the user may not write is left alone."""
    from ..files import WriteError, atomic_write

    target = Path(os.path.realpath(file))
    before = target.stat()
    if not before.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise _NotFormatted("it is read-only, and fmt replaces only files you may write "
                            f"(make it writable, e.g. `chmod u+w {file}`, to format it)",
                            ("is read-only", "are read-only"))
    try:
        atomic_write(target, lambda tmp: Path(tmp).write_text(formatted, encoding="utf-8"),
                     keep=before)
    except WriteError as exc:
        raise _NotFormatted(str(exc), ("could not be written",) * 2) from None


def _summary(args, changed: int, unchanged: int, failed: list[tuple[str, str]],
             report) -> None:
    """`1 file would be reformatted, 17 files already formatted, 1 file left alone: it has
    syntax errors` (the files left alone counted by why)."""
    def files(n):
        return f"{n} file{'s' if n != 1 else ''}"

    verb = "would be reformatted" if args.check or args.diff else "reformatted"
    parts = ([f"{files(changed)} {verb}"] if changed else []) + \
        ([f"{files(unchanged)} already formatted"] if unchanged else []) + \
        ([_left_alone(failed)] if failed else [])
    if parts:
        print(", ".join(parts), file=sys.stderr if args.diff else report)


def _left_alone(reasons: list[tuple[str, str]]) -> str:
    """`1 file left alone: it has syntax errors`, `3 files left alone: 2 have syntax errors,
    1 is read-only`."""
    counts: dict[tuple[str, str], int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    n = len(reasons)
    head = f"{n} file{'s' if n != 1 else ''} left alone: "
    if len(counts) == 1:
        (one, several), = counts
        return head + (f"it {one}" if n == 1 else f"they {several}")
    return head + ", ".join(f"{k} {one if k == 1 else several}"
                            for (one, several), k in counts.items())
