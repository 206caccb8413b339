"""The `archdsl` command: one module per command, each declaring its options (`add_check`) and
running as a thin shell over the library (`cmd_check`); boundary.py is the one place that
turns what a command raises into text and an exit code.

    check.py export.py draw.py   a spec checked, exported, drawn (never torch for check)
    explain.py                   the arithmetic behind each layer's numbers
    train.py evaluate.py predict.py   training, `archdsl eval`, `archdsl predict`
    timing.py fmt.py lsp.py      `archdsl time`, `archdsl fmt`, `archdsl lsp`
    boundary.py                  the error boundary (guarded)

A command module imports the heavy parts of the library inside its functions, so that `archdsl check` loads neither torch nor training.

Exit codes: 0 success, 1 a spec has errors (or warnings under --strict), or a training,
evaluation or prediction failed; 2 usage errors; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from ..command_values import EXIT_USAGE, Parser, epilog
from ..errors import UsageError
from .explain import add_explain
from .boundary import guarded, tolerant_output
from .check import add_check
from .draw import add_draw
from .evaluate import add_eval
from .export import add_export
from .fmt import add_fmt
from .lsp import add_lsp
from .predict import add_predict
from .timing import add_time
from .train import add_train

__all__ = ["main", "build_parser", "guarded"]


def build_parser() -> argparse.ArgumentParser:
    """The `archdsl` parser, a subcommand per command, in the order `--help` lists them."""
    from .. import __version__

    parser = Parser(prog="archdsl", description="Work with convolutional networks written in "
                                                "the .arch language.",
                    epilog=epilog(["archdsl check specs/resnet18.arch",
                                   "archdsl draw specs/vgg16.arch -o vgg16.png",
                                   "archdsl train specs/lenet5.arch digits"],
                                  "README.md, then docs/cli.md; `archdsl COMMAND --help`"))
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (add_check, add_export, add_draw, add_train, add_eval, add_predict, add_explain,
                add_time, add_fmt, add_lsp):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `archdsl ARGV…` (sys.argv's by default) and return its exit code."""
    tolerant_output()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # a value out of its option's range (train/config.py)
        command = next((a for a in argv if not a.startswith("-")), "")
        print(f"archdsl {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args.argv = argv
    return guarded(args.command, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
