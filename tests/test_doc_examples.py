"""Every example in README.md and docs/*.md is run, and its shown output compared.

The convention (docs/architecture.md, "Docs are tested"):

- A ```console block holds commands: a line starting with `$ ` is a command, run with bash
  from the repository root (`archdsl` is this venv's); a command ending in `\\` continues on
  the next line. The lines after it, up to the next `$ ` line or the end of the block, are
  its expected stdout and stderr together. In expected output `...` (or `…`) inside a line
  matches any text on that line; a line holding only `...` matches any number of lines. A
  number that depends on floating-point rounding (a trained loss or accuracy) is shown by its
  meaning: `{>=90}` (or `{<0.5}`, `{>…}`, `{<=…}`) matches a number within that bound. A
  command whose exit status is not 0 shows it as a last line `[exit N]`.
- A ```python block is executed; a ```pycon block (`>>> ` prompts) is a doctest with
  ELLIPSIS. Both run in document order in one fresh Python process per doc file (one
  namespace), with the repository root as the working folder.
- A block right after `<!-- file: PATH -->` is not run: its text is written to PATH before the
  file's examples run (a spec the examples then use).
- A block right after `<!-- not run: reason -->` is skipped; the reason is required.

Commands and Python examples run in a temporary copy of the repository (its tracked and
untracked-but-not-ignored files), one copy per doc file, so whatever an example writes (a
drawing, an export, a run folder) lands there and never in the checkout. Each test is named
by doc file and the line of the block, so a failure says where to look.
"""

from __future__ import annotations

import contextlib
import difflib
import doctest
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ("console", "python", "pycon")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
MARK = re.compile(r"^<!--\s*(not run|file):\s*(.*?)\s*-->\s*$")
COMMAND_TIMEOUT = 300


@dataclass
class Block:
    doc: str            # path relative to the repository root
    line: int           # the line of the opening fence, 1-based
    lang: str
    text: str           # the contents, the fence's indentation removed
    mark: tuple[str, str] | None = None   # ("not run", reason) or ("file", path)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass
class Command:
    line: int           # the `$ ` line in the doc file
    command: str
    expected: list[str] = field(default_factory=list)
    status: int = 0


def doc_files() -> list[Path]:
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with the marker comment right above it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    doc = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3)
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mark = MARK.match(lines[k].strip()) if k >= 0 else None
        blocks.append(Block(doc, i + 1, lang, "\n".join(body),
                            (mark.group(1), mark.group(2)) if mark else None))
        i = j + 1
    return blocks


def parse_console(block: Block) -> list[Command]:
    """The commands of a console block with their expected output and exit status."""
    commands: list[Command] = []
    lines = block.text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            start, cmd = block.line + 1 + i, line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd += "\n" + lines[i]  # bash reads the backslash-newline as a continuation
            commands.append(Command(start, cmd))
        elif commands:
            commands[-1].expected.append(line)
        elif line.strip():
            raise AssertionError(f"{block.id}: console text before the first `$ ` command")
        i += 1
    for c in commands:
        while c.expected and not c.expected[-1].strip():
            c.expected.pop()
        m = re.fullmatch(r"\[exit (\d+)\]", c.expected[-1]) if c.expected else None
        if m:
            c.status = int(m.group(1))
            c.expected.pop()
    return commands


# `{>=90}`, `{<0.5}`: a number the example cannot fix to the digit (a trained accuracy or loss,
# which other kernels round otherwise), held to the bound that is its meaning
BOUND = re.compile(r"\{(>=|<=|>|<)(-?\d+(?:\.\d+)?)\}")
NUMBER = r"(?<![\d.])(-?\d+(?:\.\d+)?)(?!\.?\d)"
COMPARE = {">=": float.__ge__, "<=": float.__le__, ">": float.__gt__, "<": float.__lt__}


def _line_pattern(expected: str) -> tuple[re.Pattern, list[tuple[str, float]]]:
    """The regular expression of one expected line, and the bounds of its numbered groups."""
    parts, bounds, at = [], [], 0
    text = expected.rstrip()
    for m in BOUND.finditer(text):
        parts.append(".*".join(re.escape(p) for p in re.split(r"\.\.\.|…", text[at:m.start()])))
        parts.append(NUMBER)
        bounds.append((m.group(1), float(m.group(2))))
        at = m.end()
    parts.append(".*".join(re.escape(p) for p in re.split(r"\.\.\.|…", text[at:])))
    return re.compile("".join(parts)), bounds


def _line_matches(pattern: tuple[re.Pattern, list], actual: str) -> bool:
    regex, bounds = pattern
    m = regex.fullmatch(actual.rstrip())
    return bool(m) and all(COMPARE[op](float(value), bound)
                           for value, (op, bound) in zip(m.groups(), bounds))


def lines_match(expected: list[str], actual: list[str]) -> bool:
    """`...` in a line matches any text; a line of only `...` matches any number of lines;
    `{>=90}` (or `{<0.5}`, `{>…}`, `{<=…}`) matches a number within that bound."""
    patterns = [None if e.strip() in ("...", "…") else _line_pattern(e) for e in expected]
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(patterns):
                memo[i, j] = j == len(actual)
            elif patterns[i] is None:
                memo[i, j] = match(i + 1, j) or (j < len(actual) and match(i, j + 1))
            else:
                memo[i, j] = (j < len(actual) and _line_matches(patterns[i], actual[j])
                              and match(i + 1, j + 1))
        return memo[i, j]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * (len(expected) + len(actual)) + 100))
    return match(0, 0)


def all_blocks() -> list[Block]:
    return [b for p in doc_files() for b in parse_blocks(p)]


def runnable(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.lang in RUN and b.mark is None]


# ---------------------------------------------------------------------------------------------
# Running one doc file's examples (cached: the first test of a file runs them all, in order)

def _environment(home: Path) -> dict[str, str]:
    venv_bin = ROOT / ".venv" / "bin"
    bin_dir = venv_bin if (venv_bin / "archdsl").exists() else Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ARCHDSL_", "PYTEST_", "FORCE_COLOR"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1",
               PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", TZ="UTC", COLUMNS="100",
               LC_ALL="C.UTF-8", MPLBACKEND="Agg", HOME=str(home))
    return env


def _copy_repository(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


class Python:
    """A fresh interpreter running this file's `worker()`: one namespace for a doc file."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, block: Block) -> str | None:
        self.proc.stdin.write(json.dumps({"lang": block.lang, "text": block.text,
                                          "name": block.id}) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            return f"the Python process died (exit {self.proc.wait()})"
        return json.loads(reply)["error"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _run_command(cmd: Command, cwd: Path, env: dict[str, str]) -> str | None:
    try:
        proc = subprocess.run(["bash", "-c", cmd.command], cwd=cwd, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"line {cmd.line}: `{cmd.command}` ran past {COMMAND_TIMEOUT} s"
    actual = proc.stdout.rstrip("\n").split("\n") if proc.stdout.strip() else []
    actual = [a.rstrip() for a in actual]
    while actual and not actual[-1]:
        actual.pop()
    if proc.returncode == cmd.status and lines_match(cmd.expected, actual):
        return None
    shown = actual + ([f"[exit {proc.returncode}]"] if proc.returncode else [])
    wanted = cmd.expected + ([f"[exit {cmd.status}]"] if cmd.status else [])
    diff = "\n".join(difflib.unified_diff(wanted, shown, "doc", "actual", lineterm=""))
    return f"line {cmd.line}: `{cmd.command}` printed something else:\n{diff}"


@lru_cache(maxsize=None)
def run_doc(doc: str) -> dict[int, str | None]:
    """Runs every example of one doc file in a temporary copy; block line -> error or None."""
    blocks = parse_blocks(ROOT / doc)
    results: dict[int, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="archdsl-docs-") as tmp:
        repo, home = Path(tmp) / "repo", Path(tmp) / "home"
        repo.mkdir()
        home.mkdir()
        _copy_repository(repo)
        for b in blocks:
            if b.mark and b.mark[0] == "file":
                (repo / b.mark[1]).parent.mkdir(parents=True, exist_ok=True)
                (repo / b.mark[1]).write_text(b.text + "\n", encoding="utf-8")
        env = _environment(home)
        python = None
        try:
            for b in runnable(blocks):
                if b.lang == "console":
                    try:
                        commands = parse_console(b)
                    except AssertionError as malformed:
                        results[b.line] = str(malformed)
                        continue
                    errors = [e for e in (_run_command(c, repo, env) for c in commands) if e]
                    results[b.line] = "\n\n".join(errors) or None
                else:
                    python = python or Python(repo, env)
                    results[b.line] = python.run(b)
        finally:
            if python:
                python.close()
    return results


# ---------------------------------------------------------------------------------------------
# The tests

def _ids(blocks: list[Block]) -> list[str]:
    return [b.id for b in blocks]


RUNNABLE = runnable(all_blocks())


def pytest_generate_tests(metafunc):  # noqa: D103 (pytest's hook, module level)
    if "block" in metafunc.fixturenames:
        metafunc.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))


def test_example(block: Block):
    """The example at this doc file and line runs and prints what the doc shows."""
    error = run_doc(block.doc).get(block.line)
    if error is not None:
        pytest.fail(f"{block.id} ({block.lang} block):\n{error}", pytrace=False)


def test_blocks_are_read_with_their_markers_and_indentation(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("# t\n\n<!-- not run: needs a GPU -->\n```console\n$ nvidia-smi\n```\n\n"
                   "- item\n\n  <!-- file: a.arch -->\n  ```\n  input 3x8x8\n  ```\n\n"
                   "```pycon\n>>> 1 + 1\n2\n```\n")
    skipped, spec, doctest_block = parse_blocks(doc)
    assert (skipped.line, skipped.lang, skipped.mark) == (4, "console", ("not run", "needs a GPU"))
    assert (spec.line, spec.text, spec.mark) == (11, "input 3x8x8", ("file", "a.arch"))
    assert (doctest_block.id, doctest_block.mark) == ("d.md:15", None)
    assert runnable([skipped, spec, doctest_block]) == [doctest_block]


def test_a_malformed_console_block_is_reported():
    with pytest.raises(AssertionError, match="before the first `\\$ ` command"):
        parse_console(Block("d.md", 1, "console", "output without a command"))


def test_there_are_examples_in_every_kind():
    langs = {b.lang for b in RUNNABLE}
    assert langs == set(RUN), f"runnable examples found: {sorted(langs)}"
    assert len(RUNNABLE) >= 20


def test_no_example_escapes_the_runner():
    """A `$ ` command or `>>> ` prompt shown outside a console/pycon block would never be run:
    in an indented code block, a plain fence, or a bash fence."""
    hidden = []
    for path in doc_files():
        blocks = parse_blocks(path)
        for b in blocks:
            if b.lang in ("console", "pycon") or b.mark:
                continue
            for n, line in enumerate(b.text.split("\n"), b.line + 1):
                if line.lstrip().startswith(("$ ", ">>> ")):
                    hidden.append(f"{b.id}: line {n} in a ```{b.lang} block")
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if re.match(r"^ {4,}(\$|>>>) ", line) and not any(
                    b.line < n <= b.line + b.text.count("\n") + 1 for b in blocks):
                hidden.append(f"{path.relative_to(ROOT)}:{n}: an indented code block")
    assert hidden == [], "examples the suite would not run:\n" + "\n".join(hidden)


def test_every_skip_says_why():
    bare = [b.id for b in all_blocks() if b.mark and not b.mark[1]]
    assert bare == []


def test_no_skip_marker_without_a_block():
    """A `<!-- not run: … -->` or `<!-- file: … -->` that is not right above a block."""
    stray = []
    for path in doc_files():
        lines = path.read_text(encoding="utf-8").split("\n")
        for n, line in enumerate(lines, 1):
            if MARK.match(line.strip()):
                rest = [x for x in lines[n:] if x.strip()]
                if not rest or not FENCE.match(rest[0]):
                    stray.append(f"{path.relative_to(ROOT)}:{n}")
    assert stray == []


# The runner's own rules, checked on small inputs

def test_lines_match_masks():
    assert lines_match(["a ... c"], ["a bbb c"])
    assert not lines_match(["a ... c"], ["a bbb d"])
    assert lines_match(["x", "...", "z"], ["x", "1", "2", "z"])
    assert lines_match(["x", "...", "z"], ["x", "z"])
    assert not lines_match(["x", "z"], ["x", "y", "z"])
    assert lines_match(["1.5 (x)"], ["1.5 (x)"]) and not lines_match(["1.5"], ["1x5"])


def test_lines_match_bounds_numbers():
    assert lines_match(["acc {>=90}%"], ["acc 98.3%"]) and lines_match(["acc {>=90}%"], ["acc 90%"])
    assert not lines_match(["acc {>=90}%"], ["acc 89.9%"])
    assert not lines_match(["acc {>=90}%"], ["acc 9.5%"])      # `9...%` would have matched
    assert lines_match(["loss {<0.5} acc ...%"], ["loss 0.0999 acc 97.1%"])
    assert lines_match(["loss {<0.5} acc ...%"], ["loss 0.1000 acc 97.1%"])
    assert not lines_match(["loss {<0.5} acc ...%"], ["loss 0.5 acc 97.1%"])
    assert not lines_match(["loss {<0.5}"], ["loss nan"])
    assert lines_match(["a ... b {>1} c ... d {<=2}"], ["a x b 1.5 c y d 2"])
    assert not lines_match(["a {>1}"], ["a 15x"])              # a whole number, nothing after
    assert lines_match(["{>=0} {>=0}"], ["12 3"]) and not lines_match(["{>=0}"], ["1 2"])


def test_console_parsing_reads_status_and_continuations(tmp_path):
    block = Block("d.md", 3, "console", "$ echo a \\\n  b\na b\n$ false\n[exit 1]")
    first, second = parse_console(block)
    assert (first.line, first.command, first.expected, first.status) == \
        (4, "echo a \\\n  b", ["a b"], 0)
    assert (second.line, second.expected, second.status) == (7, [], 1)
    assert _run_command(first, tmp_path, dict(os.environ)) is None
    assert _run_command(second, tmp_path, dict(os.environ)) is None
    wrong = Command(9, "echo c", ["d"])
    assert "-d\n+c" in _run_command(wrong, tmp_path, dict(os.environ))


def test_python_blocks_share_a_namespace_and_doctests_compare(tmp_path):
    python = Python(tmp_path, dict(os.environ))
    try:
        assert python.run(Block("d.md", 1, "python", "x = 6 * 7\nprint('ignored')")) is None
        assert python.run(Block("d.md", 5, "pycon", ">>> x\n42\n>>> y = [1] * 30\n")) is None
        assert python.run(Block("d.md", 9, "pycon", ">>> y\n[1, ..., 1]\n")) is None
        wrong = python.run(Block("d.md", 12, "pycon", ">>> x + 1\n42\n"))
        assert "Expected:\n    42\nGot:\n    43" in wrong
        assert "ZeroDivisionError" in python.run(Block("d.md", 15, "python", "1 / 0"))
    finally:
        python.close()


# ---------------------------------------------------------------------------------------------
# The Python side: `python tests/test_doc_examples.py --worker` runs blocks sent on stdin

def _too_long(signum, frame):
    raise TimeoutError(f"the example ran past {COMMAND_TIMEOUT} s")


def _run_block(request: dict, namespace: dict) -> str | None:
    out = io.StringIO()
    signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(COMMAND_TIMEOUT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if request["lang"] == "python":
                exec(compile(request["text"], request["name"], "exec"), namespace)
                return None
            test = doctest.DocTestParser().get_doctest(request["text"], namespace,
                                                       request["name"], request["name"], 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            report = io.StringIO()
            runner.run(test, out=report.write, clear_globs=False)
            namespace.update(test.globs)  # DocTest ran on a copy; later blocks see its names
            return report.getvalue() or None if runner.failures else None
    except BaseException:  # noqa: BLE001 (the example's failure is the result)
        return traceback.format_exc() + out.getvalue()
    finally:
        signal.alarm(0)


def worker() -> None:
    protocol = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a subprocess an example starts must not write into the protocol
    sys.path.insert(0, os.getcwd())  # as `python` started in the repository root has it
    namespace: dict = {"__name__": "__main__"}
    for line in sys.stdin:
        error = _run_block(json.loads(line), namespace)
        protocol.write(json.dumps({"error": error}) + "\n")
        protocol.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    worker()
