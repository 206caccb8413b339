"""archdsl fmt: one canonical layout, comments kept, the meaning unchanged, idempotent; and the
command's --check, --diff, stdin and atomic rewrite."""

import json
import os
import random
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from archdsl.fmt import FormatError, format_text
from archdsl.network import analyse
from archdsl.report import to_json
from fuzzgen import SPEC_TEXTS, grammatical_spec, strategy, valid_spec

ROOT = Path(__file__).resolve().parent.parent
_POSITION = {"line", "column", "end_line", "end_column", "file"}


def _meaning(text: str):
    """`archdsl check --format json` of `text` without positions (the formatter moves
    statements within their lines, and may drop blank lines), and without the spacing of
    the source text that messages quote."""
    network, diagnostics = analyse(text, "spec.arch")

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k not in _POSITION}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, str):
            value = re.sub(r"(line|column) \d+", r"\1 N", value)  # a position in words
            return re.sub(r"\s+", "", value)  # source text quoted with its spacing
        return value

    return plain(json.loads(json.dumps(to_json(network, diagnostics))))


def _comments(text: str) -> list[str]:
    return [m.group().rstrip() for m in re.finditer(r"#[^\n]*", text)]


def _assert_formats_well(text: str) -> str:
    out = format_text(text)
    assert format_text(out) == out, "not idempotent"
    assert _meaning(out) == _meaning(text)
    assert _comments(out) == _comments(text)
    assert all(line == line.rstrip() for line in out.split("\n"))
    return out


# ----------------------------------------------------------------------------- the layout

@pytest.mark.parametrize("given_text, canonical", [
    ("conv 64 k3 ;relu;;  maxpool 2\n", "conv 64 k3; relu; maxpool 2\n"),
    ("relu;\n;bn\n", "relu\nbn\n"),  # a `;` at a line's ends goes: the new line separates
    ("conv   c * 4   k3   s = 2\n", "conv c*4 k3 s=2\n"),
    ("conv 8 p = ( k - 1 ) // 2\n", "conv 8 p=(k - 1)//2\n"),
    ("conv 8 k3 s=-1\n", "conv 8 k3 s=-1\n"),
    ("conv (a+b) k3\n", "conv (a + b) k3\n"),
    ("residual <conv 8 k3|conv 8 k1>\n", "residual< conv 8 k3 | conv 8 k1 >\n"),
    ("add<>\n", "add< >\n"),
    ("arch net ( a = 1 ,b )\n", "arch net(a=1, b)\n"),
    ("block b(c){conv c k3}\n", "block b(c) { conv c k3 }\n"),
    ("repeat n-1{relu}\n", "repeat n - 1 { relu }\n"),
    ("repeat  n - 1   as  i{conv c + i k1}\n", "repeat n - 1 as i { conv c+i k1 }\n"),
    ("repeat 2 as i {\nrepeat i as j { relu }\n}\n", "repeat 2 as i {\n  repeat i as j { relu }\n}\n"),
    ("def  f ( v , d = 8 )=max( d , floor( v / d ) * d )\n",
     "def f(v, d=8) = max(d, floor(v / d) * d)\n"),
    ("conv (1 if c>=8 else 2)\n", "conv (1 if c >= 8 else 2)\n"),
    ("conv (a<b) (a>b) (a!=b) (a==-1)\n", "conv (a < b) (a > b) (a != b) (a == -1)\n"),
    ("conv max(c,-1) (c if t else -c)\n", "conv max(c, -1) (c if t else -c)\n"),
    ("conv c (x)\n", "conv c (x)\n"),  # two values: the space stays
    ("residual< repeat (1 if c<8 else 0) { relu } >\n",
     "residual< repeat (1 if c < 8 else 0) { relu } >\n"),
    ("conv max((1 if a<b else 2),\n c>d)\n", "conv max((1 if a < b else 2),\n         c > d)\n"),
    ("block b(c) {\n        conv c k3\n   relu\n}\n", "block b(c) {\n  conv c k3\n  relu\n}\n"),
    ("concat<\nconv 8 k1\n|conv 8 k3\n  relu\n>\n",
     "concat<\n  conv 8 k1\n| conv 8 k3\n  relu\n>\n"),
    ("block b {\nresidual<\nrelu\n>\n}\n", "block b {\n  residual<\n    relu\n  >\n}\n"),
    ("arch a(b=1, c=2,\nd=3)\n", "arch a(b=1, c=2,\n       d=3)\n"),  # lines up after `(`
    ("arch a(\nb=1,\nc=2\n)\n", "arch a(\n  b=1,\n  c=2\n)\n"),
    ("\n\nrelu\n\n\n\nbn\n\n\n", "relu\n\nbn\n"),  # one blank line at most, none at the ends
    ("block b {\n\n  relu\n\n}\n", "block b {\n  relu\n}\n"),
    ("relu", "relu\n"),
    ("relu\r\nbn\r\n", "relu\nbn\n"),
    ("", ""),
])
def test_canonical_layout(given_text, canonical):
    assert format_text(given_text) == canonical
    assert format_text(canonical) == canonical


# Spaces separate a statement's arguments: at an argument's top level an operator is glued to
# its operands; everywhere else (parentheses, a def's body, a repeat count) it is spaced.
@pytest.mark.parametrize("given_text, canonical", [
    ("conv c * 4 k3 s = s // 2 g = c % 8\n", "conv c*4 k3 s=s//2 g=c%8\n"),
    ("pair c heads first + 2 * j\n", "pair c heads first+2*j\n"),
    ("conv (c*2)//g k3\n", "conv (c * 2)//g k3\n"),  # the group spaced, the argument glued
    ("stochasticdepth sd*(first+1+i)/end7()\n", "stochasticdepth sd*(first + 1 + i)/end7()\n"),
    ("conv max(c*2,8) k3\n", "conv max(c * 2, 8) k3\n"),  # a call's arguments
    ("conv (a+1 if c>=8 else b*2)\n", "conv (a + 1 if c >= 8 else b * 2)\n"),
    ("conv ((a+b)//2+c)\n", "conv ((a + b) // 2 + c)\n"),
    ("def f(x)=x*2+1\n", "def f(x) = x * 2 + 1\n"),  # a def's body
    ("def f(x)=-x%3\n", "def f(x) = -x % 3\n"),
    ("def f(x)=(x+1)*2\n", "def f(x) = (x + 1) * 2\n"),
    ("def f(x)=max(x,\n1)+2\n", "def f(x) = max(x,\n               1) + 2\n"),  # over lines
    ("def f(x)=x+1; conv c+1\nconv c+1\n", "def f(x) = x + 1; conv c+1\nconv c+1\n"),
    ("repeat n//2-1 as j { pair first+2*j }\n", "repeat n // 2 - 1 as j { pair first+2*j }\n"),
    ("repeat 1-keeps(s,c) { b c*e }\n", "repeat 1 - keeps(s, c) { b c*e }\n"),
    ("repeat n-1 { residual< conv c*2 k3 > }\n", "repeat n - 1 { residual< conv c*2 k3 > }\n"),
    ("arch a(w=2*3, d=-1)\n", "arch a(w=2 * 3, d=-1)\n"),  # defaults are inside parentheses
    ("block b(c, k=1) { conv c k=k p=(k-1)//2 }\n", "block b(c, k=1) { conv c k=k p=(k - 1)//2 }\n"),
    ("conv c (x-1)\n", "conv c (x - 1)\n"),
])
def test_operators_are_spaced_except_at_an_arguments_top_level(given_text, canonical):
    assert _assert_formats_well(given_text) == canonical
    assert format_text(canonical) == canonical


def test_the_glued_layout_of_expressions_is_not_canonical():
    """What fmt wrote before the spacing rule (every operator glued) is reformatted: the
    hand-written specs space their def bodies, parentheses, conditionals and repeat counts."""
    glued = ("def rounded(v, d=8) = max(d, floor(floor(v+d/2)/d)*d)\n"
             "def divisible(v, d=8) = (rounded(v, d)+d if rounded(v, d) < 0.9*v else rounded(v, d))\n"
             "block stage(c, n) {\n  repeat n-1 { conv divisible(c*4) k1 p=(k-1)//2 }\n}\n")
    assert format_text(glued) == (
        "def rounded(v, d=8) = max(d, floor(floor(v + d / 2) / d) * d)\n"
        "def divisible(v, d=8) = (rounded(v, d) + d if rounded(v, d) < 0.9 * v else rounded(v, d))\n"
        "block stage(c, n) {\n  repeat n - 1 { conv divisible(c * 4) k1 p=(k - 1)//2 }\n}\n")


def test_trailing_comments_line_up_at_the_first_comment_of_their_run():
    text = ("conv 64 k3 p1    # one\n"
            "relu # two\n"
            "conv 64 k3 p1; bn; relu; maxpool 2 # three sticks out\n"
            "bn         # four\n"
            "\n"
            "linear 10 #  alone\n"
            "  # a comment line keeps its text\n")
    assert format_text(text) == (
        "conv 64 k3 p1    # one\n"
        "relu             # two\n"
        "conv 64 k3 p1; bn; relu; maxpool 2 # three sticks out\n"  # kept where it was
        "bn               # four\n"
        "\n"
        "linear 10  #  alone\n"
        "# a comment line keeps its text\n")


def test_a_comment_that_sticks_out_stays_where_it_was_unless_the_code_reaches_it():
    # LANGUAGE.md's branches: long lines whose comments line up with each other, not with
    # the run's, keep their columns (specs/branches.arch holds them verbatim)
    text = ("relu  # one\n"
            "concat< conv 8 k1 | conv 8 k3 >   # two\n"
            "mul< identity | conv c/4 k1 >     # three\n")
    assert _assert_formats_well(text) == text
    # `;relu` becomes `; relu`: the code now reaches the comment, which goes two spaces after
    assert format_text("relu  # one\nconv 64 k3 p1;relu;bn # two\n") == (
        "relu  # one\nconv 64 k3 p1; relu; bn  # two\n")


def test_a_comment_line_is_indented_with_the_code_around_it():
    text = "block b {\n# first\n  relu  # after\n      # last\n}\n"
    assert format_text(text) == "block b {\n  # first\n  relu  # after\n  # last\n}\n"


@pytest.mark.parametrize("text", ["conv 64 k3,", "conv 10 -5", "residual< relu", "conv (1\n"])
def test_a_spec_with_syntax_errors_is_not_formatted(text):
    with pytest.raises(FormatError) as caught:
        format_text(text)
    assert caught.value.diagnostics and caught.value.diagnostics[0].code == "E-SYNTAX"


def test_semantic_errors_do_not_stop_the_formatter():
    text = "input 3x8x8\nconv   8 k99\nundefined_layer  2\n"
    assert format_text(text) == "input 3x8x8\nconv 8 k99\nundefined_layer 2\n"


# ----------------------------------------------------------------------------- properties

@pytest.mark.parametrize("name", sorted(SPEC_TEXTS))
def test_every_spec_formats_to_the_same_meaning_idempotently(name):
    _assert_formats_well(SPEC_TEXTS[name])


def _scrambled(text: str, rng: random.Random) -> str:
    """`text` without its comments, with its spacing, indentation and separators messed up
    in ways that do not change what it means."""
    lines = []
    for line in text.split("\n"):
        code = re.sub(r"#.*", "", line).strip()
        parts = re.findall(r"[0-9.]+[eE][-+]?[0-9]+|//|->|[<>=!]=|[A-Za-z_][A-Za-z_0-9]*\(|"
                           r"[A-Za-z_0-9.]+|\S", code)
        out = ""
        for part in parts:
            gap = rng.choice(["", " ", "   "])
            if part == "-" or not out or (re.match(r"\w", part[0]) and re.search(r"\w$", out)):
                gap = " " if out and part != "-" else ""  # never `a -b`; words stay apart
            if part[-1] == "(" and re.search(r"\w$", out):
                gap = " "  # `max(` stays a call and `stage (` two things: fmt keeps both
            out += gap + part
        if out and rng.random() < 0.3 and not out.endswith(("(", ",")):
            out += rng.choice([";", " ;", ";;"])
        lines.append(" " * rng.randint(0, 6) + out)
        if not out and rng.random() < 0.5:
            lines.append("")  # a second blank line
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(SPEC_TEXTS))
def test_layout_does_not_depend_on_how_the_spec_was_spaced(name):
    rng = random.Random(name)
    plain = "\n".join(re.sub(r"#.*", "", line) for line in SPEC_TEXTS[name].split("\n"))
    scrambled = _scrambled(plain, rng)
    assert format_text(scrambled) == format_text(plain)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(strategy(valid_spec))
def test_generated_valid_specs_format_well(text):
    _assert_formats_well(text)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking takes minutes
@given(strategy(grammatical_spec))
def test_generated_specs_format_well_or_are_refused_for_syntax(text):
    try:
        _assert_formats_well(text)
    except FormatError as exc:
        assert exc.diagnostics and {d.code for d in exc.diagnostics} <= {"E-SYNTAX", "E-NESTING"}


# ----------------------------------------------------------------------------- the command

def _run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "archdsl", "fmt", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_fmt_rewrites_a_file_atomically_and_then_check_passes(tmp_path):
    spec = tmp_path / "net.arch"
    spec.write_text("input 3x8x8\nconv 8 k3 ;relu\n")
    before = os.stat(spec).st_ino
    done = _run(str(spec))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"reformatted {spec}\n1 file reformatted\n"
    assert spec.read_text() == "input 3x8x8\nconv 8 k3; relu\n"
    assert os.stat(spec).st_ino != before  # a new file renamed into place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.arch"]  # no temporary left
    again = _run("--check", str(tmp_path))
    assert (again.returncode, again.stdout) == (0, "1 file already formatted\n")


def test_check_and_diff_write_nothing_and_exit_1(tmp_path):
    spec = tmp_path / "net.arch"
    spec.write_text("relu;\n")
    check = _run("--check", str(spec))
    assert (check.returncode, check.stdout) == (
        1, f"would reformat {spec}\n1 file would be reformatted\n")
    diff = _run("--diff", str(spec))
    assert diff.returncode == 1
    assert f"--- {spec}\n+++ {spec} (formatted)\n" in diff.stdout
    assert "-relu;\n+relu\n" in diff.stdout
    assert spec.read_text() == "relu;\n"


def test_a_file_with_syntax_errors_is_reported_and_left_alone(tmp_path):
    spec = tmp_path / "bad.arch"
    spec.write_text("conv 64 k3,\n")
    done = _run(str(spec))
    assert done.returncode == 1
    assert "error[E-SYNTAX]" in done.stderr and "not formatted: it has syntax errors" in done.stderr
    assert spec.read_text() == "conv 64 k3,\n"


def test_check_on_a_folder_counts_the_files_left_alone_and_why(tmp_path):
    """Issue 25: `fmt --check DIR` said "1 file would be reformatted, 17 files already
    formatted" and left out the files it skipped for syntax errors."""
    (tmp_path / "a.arch").write_text("input 3x8x8\nrelu\n")
    (tmp_path / "b.arch").write_text("relu;relu\n")
    for name in ("bad1.arch", "bad2.arch"):
        (tmp_path / name).write_text("conv 64 k3,\n")
    done = _run("--check", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == ("1 file would be reformatted, 1 file already "
                                            "formatted, 2 files left alone: they have syntax "
                                            "errors")
    (tmp_path / "bad2.arch").unlink()
    done = _run("--check", str(tmp_path))
    assert done.stdout.splitlines()[-1].endswith(", 1 file left alone: it has syntax errors")


def test_stdin_to_stdout():
    done = _run("-", stdin="conv 8 k3 ;relu")
    assert (done.returncode, done.stdout) == (0, "conv 8 k3; relu\n")


def _archdsl(*args):
    """`archdsl ARGS...`: the CLI itself, with its one error boundary."""
    return subprocess.run([sys.executable, "-m", "archdsl", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv, status, one_line", [
    (["{tmp}/nothing.arch"], 2, "archdsl fmt: error: cannot read {tmp}/nothing.arch: No such "
                                "file or directory"),
    (["{tmp}/empty"], 2, "archdsl fmt: error: no .arch files in {tmp}/empty"),
    (["--bogus", "{tmp}/link.arch"], 2, "archdsl fmt: error: unrecognized arguments: --bogus "
                                        "(see archdsl fmt --help)"),
    ([], 2, "archdsl fmt: error: the following arguments are required: PATH (see archdsl fmt "
            "--help)"),
    (["-", "-"], 2, "archdsl fmt: error: `-` (standard input) may be given once: it can be "
                    "read only once"),
])
def test_a_usage_mistake_is_one_line_and_its_status(argv, status, one_line, tmp_path):
    """`archdsl fmt` (run as a separate process): one line of error, the usage status, no
    output, and nothing rewritten."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "real.arch").write_text("relu;\n")
    (tmp_path / "link.arch").symlink_to("real.arch")  # fmt replaces regular files only
    args = [a.format(tmp=tmp_path) for a in argv]
    cli = _archdsl("fmt", *args)
    assert (cli.returncode, cli.stdout, cli.stderr) == (status, "",
                                                        one_line.format(tmp=tmp_path) + "\n")
    assert (tmp_path / "real.arch").read_text() == "relu;\n"


UNFORMATTED = "input 3x8x8\nrelu;relu\n"


def test_fmt_keeps_a_files_permissions_and_refuses_a_read_only_one(tmp_path):
    """Issue 26, item 5: a private 0600 file came back 0644; a read-only file was replaced
    (and came back writable). The mode is kept, and a file nobody may write is left alone,
    the others still formatted (exit 1)."""
    private, read_only = tmp_path / "private.arch", tmp_path / "read_only.arch"
    for path in (private, read_only):
        path.write_text(UNFORMATTED)
    private.chmod(0o600)
    read_only.chmod(0o444)
    done = _run(str(tmp_path))
    assert done.returncode == 1
    assert private.read_text() == "input 3x8x8\nrelu; relu\n"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert read_only.read_text() == UNFORMATTED and stat.S_IMODE(read_only.stat().st_mode) == 0o444
    assert f"{read_only}: not formatted: it is read-only" in done.stderr
    assert done.stdout.endswith("1 file reformatted, 1 file left alone: it is read-only\n")


def test_fmt_refuses_a_byte_that_is_not_utf8_instead_of_replacing_it(tmp_path):
    """A non-UTF-8 byte in a comment became U+FFFD silently."""
    spec = tmp_path / "latin1.arch"
    spec.write_bytes(b"input 3x8x8  # caf\xe9\nrelu;relu\n")
    done = _run(str(spec))
    assert done.returncode == 1 and spec.read_bytes() == b"input 3x8x8  # caf\xe9\nrelu;relu\n"
    assert "byte 0xe9 at line 1, column 19 is not UTF-8" in done.stderr
    piped = subprocess.run(
        [sys.executable, "-m", "archdsl", "fmt", "-"], cwd=ROOT, input=b"relu # \xff\n",
        capture_output=True, timeout=120)
    assert piped.returncode == 1 and piped.stdout == b""
    assert b"<stdin>: not formatted: byte 0xff at line 1, column 8" in piped.stderr


def test_fmt_formats_through_a_symbolic_link_and_goes_on(tmp_path):
    """One symlinked .arch in a folder aborted the whole run: the file it points to is
    formatted, the link stays a link, the other files are formatted too, and a file reached
    twice (a link and its target) once."""
    (tmp_path / "specs").mkdir()
    target = tmp_path / "target.arch"
    target.write_text(UNFORMATTED)
    (tmp_path / "specs" / "link.arch").symlink_to(target)
    (tmp_path / "specs" / "other.arch").write_text(UNFORMATTED)
    (tmp_path / "specs" / "twice.arch").symlink_to(tmp_path / "specs" / "other.arch")
    done = _run(str(tmp_path / "specs"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "specs" / "link.arch").is_symlink()
    assert target.read_text() == (tmp_path / "specs" / "other.arch").read_text() == \
        "input 3x8x8\nrelu; relu\n"
    assert done.stdout.endswith("2 files reformatted\n")


def test_check_and_diff_on_stdin_write_no_text_and_fail_on_a_change():
    """Issue 26, item 6: `fmt --check -` and `fmt --diff -` ignored the flag (a CI check
    through stdin always passed)."""
    check = _run("--check", "-", stdin=UNFORMATTED)
    assert (check.returncode, check.stdout) == (1, "would reformat <stdin>\n"
                                                   "1 file would be reformatted\n")
    diff = _run("--diff", "-", stdin=UNFORMATTED)
    assert diff.returncode == 1 and "-relu;relu\n+relu; relu\n" in diff.stdout
    assert diff.stdout.startswith("--- <stdin>\n+++ <stdin> (formatted)\n")
    clean = _run("--check", "-", stdin="relu\n")
    assert (clean.returncode, clean.stdout) == (0, "1 file already formatted\n")


def test_stdin_among_files_keeps_standard_output_for_its_text(tmp_path):
    spec = tmp_path / "net.arch"
    spec.write_text(UNFORMATTED)
    done = _run("-", str(spec), stdin="relu;relu\n")
    assert (done.returncode, done.stdout) == (0, "relu; relu\n")
    assert done.stderr == f"reformatted {spec}\n2 files reformatted\n"


def test_a_named_pipe_is_named_as_such(tmp_path):
    """Issue 26, item 18: a FIFO was "No such file or directory"."""
    os.mkfifo(tmp_path / "pipe.arch")
    done = _archdsl("fmt", str(tmp_path / "pipe.arch"))
    assert done.returncode == 2
    assert f"cannot format {tmp_path}/pipe.arch: it is a named pipe (FIFO), not a file" in \
        done.stderr and "archdsl fmt - <" in done.stderr


def test_two_byte_order_marks_are_a_syntax_error_not_an_internal_one(tmp_path):
    """Issue 26, item 12: a file starting with two BOMs was an internal error in fmt."""
    spec = tmp_path / "boms.arch"
    spec.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbfinput 3x8x8\nrelu\n")
    done = _run(str(spec))
    assert done.returncode == 1 and "internal error" not in done.stderr
    assert "error[E-SYNTAX]" in done.stderr and "not formatted: it has syntax errors" in done.stderr
    with pytest.raises(FormatError):
        format_text("\ufeff\ufeffinput 3x8x8\n")
    assert format_text("\ufeffinput 3x8x8\n") == "input 3x8x8\n"


def test_fmt_leaves_formatted_specs_alone(tmp_path):
    for name, text in SPEC_TEXTS.items():
        (tmp_path / name).write_text(format_text(text))
    done = _run("--check", str(tmp_path))
    assert done.returncode == 0, done.stdout
    assert done.stdout == f"{len(SPEC_TEXTS)} files already formatted\n"


def test_every_spec_in_specs_is_formatted(capsys):
    """specs/ cannot drift from the formatter: `archdsl fmt --check specs/` exits 0."""
    from archdsl.cli import main as archdsl

    specs = sorted((ROOT / "specs").glob("*.arch"))
    assert archdsl(["fmt", "--check", str(ROOT / "specs")]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out == f"{len(specs)} files already formatted\n"
    unformatted = [p.name for p in specs if format_text(p.read_text()) != p.read_text()]
    assert unformatted == []
