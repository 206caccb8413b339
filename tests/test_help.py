"""Help and conventions of the `archdsl` command (issue 13): every command's help shows its
defaults and ends with examples and the doc to read; a mistyped command or option gets the
closest one; usage errors are one line on stderr, `archdsl CMD: error: …`, exit 2."""

import pytest

from archdsl.cli import build_parser
from helpers import run_cli

COMMANDS = ("check", "export", "draw", "train", "eval", "predict", "explain", "time", "fmt", "lsp")
DOCS = {"check": "docs/cli.md", "export": "docs/export.md", "draw": "docs/draw.md",
        "train": "docs/training.md", "eval": "docs/training.md", "predict": "docs/training.md",
        "explain": "docs/explain.md", "time": "docs/time.md", "fmt": "docs/editors.md",
        "lsp": "docs/editors.md"}


run = run_cli


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_ends_its_help_with_examples_and_its_doc(command, capsys):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    examples = out.split("\nexamples:\n", 1)[1].split("\n\n")[0].splitlines()
    assert 2 <= len(examples) <= 3
    assert all(f"{line} ".startswith(f"  archdsl {command} ") for line in examples)
    assert out.rstrip().endswith(f"more: {DOCS[command]}") or \
        f"more: {DOCS[command]} " in out


def test_defaults_are_shown_where_there_are_defaults(capsys):
    out = " ".join(run(capsys, "check", "--help")[1].split())
    assert "--format {table,json} output format (default: table)" in out
    out = run(capsys, "draw", "--help")[1]
    assert "TB: top to bottom, LR: left to right (default: TB)" in " ".join(out.split())
    out = " ".join(run(capsys, "eval", "--help")[1].split())
    assert "best, last, or a checkpoint file (default: best)" in out
    assert "--format {table,json} table: the summary, per-class accuracy and confusion matrix " \
           "as text; json: the same numbers as one JSON document (default: table)" in out
    out = " ".join(run(capsys, "predict", "--help")[1].split())
    assert "IMAGE image file(s) to classify, each resized to the spec's input size" in out


def test_train_shows_spec_and_dataset_as_required(capsys):
    out = run(capsys, "train", "--help")[1]
    assert out.startswith("usage: archdsl train SPEC DATASET [options]\n"
                          "       archdsl train --resume DIR [--epochs N] [options]\n")
    assert "SPEC                  .arch spec file (required, unless --resume)" in out


def test_a_mistyped_command_gets_the_closest(capsys):
    assert run(capsys, "chek", "specs/lenet5.arch") == (
        2, "", "archdsl: error: unknown command 'chek'; did you mean check?\n")
    assert run(capsys, "xyz")[2] == ("archdsl: error: unknown command 'xyz'; the commands are "
                                     "check, export, draw, train, eval, predict, explain, time, fmt, lsp\n")


def test_usage_errors_are_one_line_on_stderr(capsys):
    assert run(capsys, "check") == (2, "", "archdsl check: error: the following arguments are "
                                    "required: FILE (see archdsl check --help)\n")
    assert run(capsys, "check", "specs/lenet5.arch", "--frmat", "json") == (
        2, "", "archdsl check: error: unrecognized arguments: --frmat json; did you mean --format? "
               "(see archdsl check --help)\n")
    code, out, err = run(capsys, "draw", "specs/lenet5.arch", "--direction", "up")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("archdsl draw: error: argument --direction: invalid choice: 'up'")


def test_the_parser_is_one_line_per_command():
    names = list(build_parser()._subparsers._group_actions[0].choices)
    assert names == list(COMMANDS)
