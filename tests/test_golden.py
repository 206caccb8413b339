"""The compiler's outputs stay what they were: `check --format json`, `draw` (dot) and
`export --to python` of every spec in specs/ and tests/fixtures/ against tests/golden/
(written by tools/make_golden.py before the compiler's middle was rebuilt)."""

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from make_golden import COMMANDS, SPECS, golden_path  # noqa: E402

from archdsl.cli import main  # noqa: E402


def run(kind: str, spec: Path, tmp_path: Path) -> str:
    out = tmp_path / f"{spec.stem}.{kind}"
    argv = [a.format(spec=spec.relative_to(ROOT), out=out) for a in COMMANDS[kind]]
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    finally:
        os.chdir(cwd)
    text = stdout.getvalue() if kind == "json" else (out.read_text() if out.exists() else "")
    return f"exit {code}\n{text}"


@pytest.mark.parametrize("kind", sorted(COMMANDS))
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_output_unchanged(spec, kind, tmp_path):
    expected = golden_path(kind, spec).read_text()
    assert run(kind, spec, tmp_path) == expected
